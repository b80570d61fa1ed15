//! YAML documents with the line and column of every node, so `lint` can point at what it
//! reports. A stream is cut into documents at `---` lines, as kubectl cuts it, so a document
//! that does not parse is reported at its position while the others are still read. Plain
//! scalars are typed as Kubernetes' YAML 1.1 reader types them (`yes` and `on` are booleans):
//! that decides what the API server receives.

mod builder;
mod scalar;

use builder::parse_chunk;
use scalar::bool_of;

/// A position in the file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// A string; `literal` for a `|` block, whose lines are the file's lines one to one.
    Str {
        text: String,
        literal: bool,
    },
    /// A boolean or a number, as written.
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// One document of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 1-based, counting the documents that hold something.
    pub index: usize,
    pub root: Node,
}

/// A document that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {}, column {}: {message}", pos.line, pos.column)]
pub struct YamlError {
    pub document: usize,
    pub pos: Pos,
    pub message: String,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    /// The entries of a mapping; none for anything else.
    pub fn entries(&self) -> &[Entry] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    /// The items of a sequence; none for anything else.
    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    /// The items of the sequence at `key`.
    pub fn items_at(&self, key: &str) -> impl Iterator<Item = &Node> {
        self.get(key).map(Node::items).unwrap_or(&[]).iter()
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The string at `key`, or `""` when it is absent or not a string.
    pub fn str_at(&self, key: &str) -> &str {
        self.get(key).and_then(Node::as_str).unwrap_or("")
    }

    /// A boolean as Kubernetes reads it.
    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Scalar(text) => bool_of(text),
            _ => None,
        }
    }

    /// The text of a scalar of any type (`""` for null), as the value of a string parameter
    /// would read once quoted.
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.value {
            Value::Str { text, .. } | Value::Scalar(text) => Some(text),
            Value::Null => Some(""),
            _ => None,
        }
    }

    /// The YAML document inside a string (the `objects` parameter, each of its objects), with
    /// positions in the file when the string is a `|` block; otherwise every node is placed at
    /// the string itself.
    pub fn embedded(&self) -> Option<Node> {
        let Value::Str { text, literal } = &self.value else {
            return None;
        };
        let mut documents = documents(text).into_iter();
        let mut root = documents.next()?.ok()?.root;
        let origin = self.pos;
        root.relocate(&|pos| match literal {
            true => Pos {
                line: origin.line + pos.line - 1,
                column: origin.column + pos.column - 1,
            },
            false => origin,
        });
        Some(root)
    }

    fn relocate(&mut self, to: &dyn Fn(Pos) -> Pos) {
        self.pos = to(self.pos);
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.relocate(to)),
            Value::Map(entries) => {
                for entry in entries {
                    entry.key_pos = to(entry.key_pos);
                    entry.value.relocate(to);
                }
            }
            _ => {}
        }
    }

    fn depth(&self) -> usize {
        1 + match &self.value {
            Value::Seq(items) => items.iter().map(Node::depth).max().unwrap_or(0),
            Value::Map(entries) => entries.iter().map(|e| e.value.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }

    fn count(&self) -> usize {
        1 + match &self.value {
            Value::Seq(items) => items.iter().map(Node::count).sum(),
            Value::Map(entries) => entries.iter().map(|e| 1 + e.value.count()).sum(),
            _ => 0,
        }
    }
}

/// Every document of a stream, in order; empty documents (comments only) are left out.
pub fn documents(text: &str) -> Vec<Result<Document, YamlError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut found = Vec::new();
    for (first_line, chunk) in chunks(text) {
        let shift = |p: Pos| Pos {
            line: p.line + first_line - 1,
            column: p.column,
        };
        match parse_chunk(chunk) {
            Ok(roots) => found.extend(roots.into_iter().map(|mut root| {
                root.relocate(&shift);
                Ok(root)
            })),
            Err(e) => found.push(Err(YamlError {
                pos: shift(within(chunk, e.pos)),
                ..e
            })),
        }
    }
    found
        .into_iter()
        .enumerate()
        .map(|(i, doc)| match doc {
            Ok(root) => Ok(Document { index: i + 1, root }),
            Err(e) => Err(YamlError {
                document: i + 1,
                ..e
            }),
        })
        .collect()
}

/// An error found at the end of a piece is shown after its last content, not on the next
/// document's `---` line.
fn within(chunk: &str, pos: Pos) -> Pos {
    let lines: Vec<&str> = chunk.lines().collect();
    if pos.line <= lines.len() {
        return pos;
    }
    match lines.iter().rposition(|l| !l.trim().is_empty()) {
        Some(last) => Pos {
            line: last + 1,
            column: lines[last].chars().count() + 1,
        },
        None => pos,
    }
}

/// The stream cut at `---` lines, each piece with the number of its first line. The separator
/// line starts the next piece, so content after `---` on the same line stays in it.
fn chunks(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let (mut start, mut start_line, mut offset) = (0, 1, 0);
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let separator = line
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace));
        if separator && offset > start {
            out.push((start_line, &text[start..offset]));
            (start, start_line) = (offset, number + 1);
        }
        offset += line.len();
    }
    out.push((start_line, &text[start..]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        documents(text).remove(0).unwrap().root
    }

    #[test]
    fn positions_of_keys_and_values() {
        let root = one("# c\na: 1\nb:\n  - x\n  - {y: \"q\"}\n");
        assert_eq!(root.entries()[0].key_pos, Pos { line: 2, column: 1 });
        assert_eq!(root.get("a").unwrap().pos, Pos { line: 2, column: 4 });
        let b = root.get("b").unwrap();
        assert_eq!(
            b.items()[1].get("y").unwrap().pos,
            Pos { line: 5, column: 9 }
        );
    }

    #[test]
    fn kubernetes_scalar_types() {
        let root = one("a: yes\nb: '1'\nc: 1.5e3\nd: 0x1F\ne: 00000000-0000-0000-0000-000000000000\nf:\ng: !!str true\nh: off\ni: 1e\n");
        let is_str = |k: &str| root.get(k).unwrap().as_str().is_some();
        assert!(!is_str("a") && is_str("b") && !is_str("c") && !is_str("d") && is_str("e"));
        assert_eq!(root.get("f").unwrap().value, Value::Null);
        assert!(is_str("g") && is_str("i"));
        assert_eq!(root.get("h").unwrap().as_bool(), Some(false));
    }

    #[test]
    fn stream_cut_at_separators_and_errors_located() {
        let docs = documents("---\n# only a comment\n---\na: 1\n--- # x\nb: [\n---\nc: 3\n...\n");
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].as_ref().unwrap().root.get("a").unwrap().pos.line, 4);
        let e = docs[1].as_ref().unwrap_err();
        assert_eq!((e.document, e.pos), (2, Pos { line: 6, column: 5 }));
        let third = docs[2].as_ref().unwrap();
        assert_eq!((third.index, third.root.get("c").unwrap().pos.line), (3, 8));
        assert!(documents("a: 1\na: 2\n")[0]
            .as_ref()
            .unwrap_err()
            .message
            .contains("defined twice (first on line 1)"));
    }

    #[test]
    fn embedded_literal_blocks_keep_file_positions() {
        let root = one("p:\n  objects: |\n    array:\n      - |\n        objectName: s\n");
        let objects = root
            .get("p")
            .unwrap()
            .get("objects")
            .unwrap()
            .embedded()
            .unwrap();
        let item = &objects.get("array").unwrap().items()[0];
        assert_eq!(item.pos, Pos { line: 5, column: 9 });
        let object = item.embedded().unwrap();
        assert_eq!(
            object.get("objectName").unwrap().pos,
            Pos {
                line: 5,
                column: 21
            }
        );
        let folded = one("o: \"array: [a]\"\n")
            .get("o")
            .unwrap()
            .embedded()
            .unwrap();
        assert_eq!(folded.pos, Pos { line: 1, column: 4 });
    }

    #[test]
    fn aliases_expand_within_bounds() {
        let root = one("a: &x {k: v}\nb: *x\n");
        assert_eq!(root.get("b").unwrap().str_at("k"), "v");
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            bomb += &format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n", p = i - 1);
        }
        assert!(documents(&bomb)[0].is_err());
        let deep = "[".repeat(builder::MAX_DEPTH + 1) + &"]".repeat(builder::MAX_DEPTH + 1);
        assert!(documents(&deep)[0].is_err());
        let chain: String = (1..builder::MAX_DEPTH + 10)
            .map(|i| format!("a{i}: &a{i} [*a{}]\n", i - 1))
            .collect();
        let error = documents(&format!("a0: &a0 [x]\n{chain}"))
            .remove(0)
            .unwrap_err();
        assert!(error.message.contains("nested deeper than"), "{error}");
    }
}
