//! The `path` of a `jsonPaths` entry: which value of a JSON secret becomes a file.
//!
//! Syntax: keys separated by dots (`db.password`), array indexes in brackets (`users[0].name`,
//! `[2]` on a top-level array), and keys in single or double quotes inside brackets when they
//! contain `.` or `[` (`labels["app.kubernetes.io/name"]`; inside double quotes `\"` and `\\`
//! escape). No wildcards or filters: one path selects one value.
//!
//! Selection works on the secret's own text: the selected value is returned as written, so a
//! number keeps its exact digits (`1e3`, a 30-digit id) instead of passing through a float.
//!
//! Errors name the path and the step that failed, never a value of the secret.

use std::collections::HashMap;

use serde_json::value::RawValue;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A parsed path; the text is kept for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("path is empty: give a key such as \"password\" or \"db.password\"")]
    Empty,
    #[error("empty key at byte {0}: use \"a.b\", not \"a..b\" or a trailing dot")]
    EmptyKey(usize),
    #[error("unclosed '[' at byte {0}: use [0] for an index or [\"key\"] for a quoted key")]
    Unclosed(usize),
    #[error("\"{0}\" in brackets is neither an index nor a quoted key: use [0] or [\"key\"]")]
    BadBracket(String),
    #[error("expected '.' or '[' at byte {0}")]
    Expected(usize),
}

/// Why a path selected nothing; names steps and JSON types, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("no key \"{key}\" in the object at {at}")]
    NoKey { key: String, at: String },
    #[error("index {index} is out of range: the array at {at} has {len} elements")]
    OutOfRange {
        index: usize,
        at: String,
        len: usize,
    },
    #[error("{at} is {found}, not {wanted}")]
    WrongType {
        at: String,
        found: &'static str,
        wanted: &'static str,
    },
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, SyntaxError> {
        if text.is_empty() {
            return Err(SyntaxError::Empty);
        }
        let bytes = text.as_bytes();
        let mut steps = Vec::new();
        let mut i = 0;
        // A key may start the path or follow a dot; after a bracket only '.' or '[' may follow.
        let mut expect_key = true;
        while i < bytes.len() {
            match bytes[i] {
                b'[' => {
                    let (step, next) = bracket(text, i)?;
                    steps.push(step);
                    i = next;
                    expect_key = false;
                }
                b'.' if !expect_key => {
                    i += 1;
                    expect_key = true;
                    if i == bytes.len() {
                        return Err(SyntaxError::EmptyKey(i));
                    }
                }
                _ if expect_key => {
                    let end = text[i..]
                        .find(['.', '['])
                        .map_or(text.len(), |offset| i + offset);
                    if end == i {
                        return Err(SyntaxError::EmptyKey(i));
                    }
                    steps.push(Step::Key(text[i..end].to_string()));
                    i = end;
                    expect_key = false;
                }
                _ => return Err(SyntaxError::Expected(i)),
            }
        }
        Ok(JsonPath {
            text: text.to_string(),
            steps,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value the path selects in `root`, a valid JSON document.
    pub fn select<'v>(&self, root: &'v RawValue) -> Result<&'v RawValue, SelectError> {
        let mut current = root;
        for (n, step) in self.steps.iter().enumerate() {
            let at = || self.prefix(n);
            let found = type_name(current);
            // `current` is part of a document that parsed, so these parses succeed; a duplicate
            // key resolves to its last value, as everywhere in serde_json.
            current = match (step, found) {
                (Step::Key(key), "an object") => {
                    let map: HashMap<String, &'v RawValue> =
                        serde_json::from_str(current.get()).unwrap_or_default();
                    *map.get(key).ok_or_else(|| SelectError::NoKey {
                        key: key.clone(),
                        at: at(),
                    })?
                }
                (Step::Index(index), "an array") => {
                    let items: Vec<&'v RawValue> =
                        serde_json::from_str(current.get()).unwrap_or_default();
                    *items.get(*index).ok_or_else(|| SelectError::OutOfRange {
                        index: *index,
                        at: at(),
                        len: items.len(),
                    })?
                }
                (step, found) => {
                    return Err(SelectError::WrongType {
                        at: at(),
                        found,
                        wanted: match step {
                            Step::Key(_) => "an object",
                            Step::Index(_) => "an array",
                        },
                    })
                }
            };
        }
        Ok(current)
    }

    /// The path up to (not including) step `n`, for messages: "the top level" or "\"db\"".
    fn prefix(&self, n: usize) -> String {
        if n == 0 {
            return "the top level".to_string();
        }
        let mut out = String::new();
        for step in &self.steps[..n] {
            match step {
                Step::Key(k) if !out.is_empty() && plain(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Step::Key(k) if plain(k) => out.push_str(k),
                Step::Key(k) => out.push_str(&format!("[{k:?}]")),
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        format!("\"{out}\"")
    }
}

fn plain(key: &str) -> bool {
    !key.is_empty() && !key.contains(['.', '[', ']', '"', '\''])
}

/// The JSON type of a value, from its first character.
fn type_name(v: &RawValue) -> &'static str {
    match v.get().trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// The deepest nesting of arrays and objects a JSON secret may have, as serde_json allows for
/// its own values: deeper documents are refused before they are parsed.
pub const MAX_DEPTH: usize = 128;

/// Whether `text` nests arrays and objects deeper than [`MAX_DEPTH`] (strings are skipped; the
/// text need not be valid JSON, parsing reports that).
pub fn too_deep(text: &[u8]) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// What a selected value is written as: a string's text, any other value's JSON without
/// insignificant whitespace (its numbers, escapes and key order as the secret has them).
pub fn file_contents(value: &RawValue) -> Vec<u8> {
    if let Ok(text) = serde_json::from_str::<String>(value.get()) {
        return text.into_bytes();
    }
    let mut out = Vec::with_capacity(value.get().len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in value.get().as_bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            continue;
        }
        out.push(b);
    }
    out
}

/// Parses `[…]` starting at `open`; returns the step and the index after `]`.
fn bracket(text: &str, open: usize) -> Result<(Step, usize), SyntaxError> {
    let rest = &text[open + 1..];
    match rest.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            let mut key = String::new();
            let mut chars = rest.char_indices().skip(1);
            while let Some((offset, c)) = chars.next() {
                match c {
                    '\\' if quote == '"' => match chars.next() {
                        Some((_, escaped @ ('"' | '\\'))) => key.push(escaped),
                        _ => return Err(SyntaxError::BadBracket(rest.to_string())),
                    },
                    c if c == quote => {
                        let close = open + 1 + offset + 1;
                        if text.as_bytes().get(close) != Some(&b']') {
                            return Err(SyntaxError::Unclosed(open));
                        }
                        return Ok((Step::Key(key), close + 1));
                    }
                    c => key.push(c),
                }
            }
            Err(SyntaxError::Unclosed(open))
        }
        _ => {
            let close = rest.find(']').ok_or(SyntaxError::Unclosed(open))?;
            let inner = &rest[..close];
            let index = match inner.bytes().all(|b| b.is_ascii_digit()) && !inner.is_empty() {
                true => inner.parse::<usize>().ok(),
                false => None,
            }
            .ok_or_else(|| SyntaxError::BadBracket(inner.to_string()))?;
            Ok((Step::Index(index), open + 1 + close + 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(text: &str) -> Vec<Step> {
        JsonPath::parse(text).unwrap().steps
    }

    fn key(k: &str) -> Step {
        Step::Key(k.to_string())
    }

    #[test]
    fn syntax() {
        assert_eq!(steps("password"), [key("password")]);
        assert_eq!(steps("db.password"), [key("db"), key("password")]);
        assert_eq!(
            steps("users[0].name"),
            [key("users"), Step::Index(0), key("name")]
        );
        assert_eq!(steps("[2]"), [Step::Index(2)]);
        assert_eq!(
            steps("a[1][12]"),
            [key("a"), Step::Index(1), Step::Index(12)]
        );
        assert_eq!(
            steps(r#"labels["app.kubernetes.io/name"]"#),
            [key("labels"), key("app.kubernetes.io/name")]
        );
        assert_eq!(steps(r#"["a\"b\\c"]"#), [key(r#"a"b\c"#)]);
        assert_eq!(steps("['x y'].z"), [key("x y"), key("z")]);
        assert_eq!(steps("ключ.名前"), [key("ключ"), key("名前")]);
        assert_eq!(steps("a-b_c$d"), [key("a-b_c$d")]);
    }

    #[test]
    fn syntax_errors() {
        use SyntaxError::*;
        let err = |t| JsonPath::parse(t).unwrap_err();
        assert_eq!(err(""), Empty);
        assert_eq!(err("a..b"), EmptyKey(2));
        assert_eq!(err(".a"), EmptyKey(0));
        assert_eq!(err("a."), EmptyKey(2));
        assert_eq!(err("a[0"), Unclosed(1));
        assert_eq!(err("a[\"x"), Unclosed(1));
        assert_eq!(err("a[\"x\""), Unclosed(1));
        assert_eq!(err("a[x]"), BadBracket("x".into()));
        assert_eq!(err("a[]"), BadBracket("".into()));
        assert_eq!(err("a[-1]"), BadBracket("-1".into()));
        assert_eq!(err("a[0]b"), Expected(4));
        assert!(matches!(err("a[99999999999999999999999]"), BadBracket(_)));
    }

    #[test]
    fn readme_examples() {
        let doc: &RawValue = serde_json::from_str(
            r#"{"db": {"user": "app", "password": "pw", "hosts": ["db-0", "db-1"]}, "port": 5432}"#,
        )
        .unwrap();
        let err = |t: &str| {
            JsonPath::parse(t)
                .unwrap()
                .select(doc)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("db.hosts[5]"),
            "index 5 is out of range: the array at \"db.hosts\" has 2 elements"
        );
        assert_eq!(
            err("db.pasword"),
            "no key \"pasword\" in the object at \"db\""
        );
    }

    #[test]
    fn depth_bound() {
        let nested = |n: usize| "[".repeat(n) + &"]".repeat(n);
        assert!(!too_deep(nested(MAX_DEPTH).as_bytes()));
        assert!(too_deep(nested(MAX_DEPTH + 1).as_bytes()));
        assert!(too_deep(nested(50_000).as_bytes()));
        let in_strings = format!("{{\"a\": \"{}\", \"b\": \"\\\"[[\"}}", "[".repeat(1000));
        assert!(!too_deep(in_strings.as_bytes()));
    }

    #[test]
    fn selection() {
        let doc = r#"{"db": {"password": "pw", "port": 5432}, "users": [{"name": "ann"}], "a.b": 1,
            "id": 123456789012345678901234567890, "f": 1e3, "esc": "a\"b\u00e9", "ws": [ 1 , { "k" : "v w" } ]}"#;
        let doc: &RawValue = serde_json::from_str(doc).unwrap();
        let sel = |t: &str| {
            JsonPath::parse(t)
                .unwrap()
                .select(doc)
                .map(|v| String::from_utf8(file_contents(v)).unwrap())
        };
        assert_eq!(sel("db.password").unwrap(), "pw");
        assert_eq!(sel("users[0].name").unwrap(), "ann");
        assert_eq!(sel("[\"a.b\"]").unwrap(), "1");
        assert_eq!(sel("db").unwrap(), r#"{"password":"pw","port":5432}"#);
        assert_eq!(sel("id").unwrap(), "123456789012345678901234567890");
        assert_eq!(sel("f").unwrap(), "1e3");
        assert_eq!(sel("esc").unwrap(), "a\"bé");
        assert_eq!(sel("ws").unwrap(), r#"[1,{"k":"v w"}]"#);
        assert_eq!(
            sel("db.user").unwrap_err().to_string(),
            "no key \"user\" in the object at \"db\""
        );
        assert_eq!(
            sel("users[3]").unwrap_err().to_string(),
            "index 3 is out of range: the array at \"users\" has 1 elements"
        );
        assert_eq!(
            sel("db.password.x").unwrap_err().to_string(),
            "\"db.password\" is a string, not an object"
        );
        assert_eq!(
            sel("[0]").unwrap_err().to_string(),
            "the top level is an object, not an array"
        );
        assert_eq!(
            sel("users[0][\"x.y\"]").unwrap_err().to_string(),
            "no key \"x.y\" in the object at \"users[0]\""
        );
    }
}
