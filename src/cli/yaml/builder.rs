//! Builds the tree of one piece of a stream from saphyr-parser's events, expanding aliases
//! within bounds.

use saphyr_parser::{Event, Parser, Span};

use super::scalar::scalar;
use super::{Entry, Node, Pos, Value, YamlError};

/// Nodes one document may hold, aliases expanded: far above any manifest, low enough that an
/// alias bomb stops in milliseconds.
pub(super) const MAX_NODES: usize = 1_000_000;
/// Nesting depth of one document.
pub(super) const MAX_DEPTH: usize = 256;

/// The documents of one piece that hold something.
pub(super) fn parse_chunk(chunk: &str) -> Result<Vec<Node>, YamlError> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(chunk) {
        let (event, span) = event.map_err(|e| {
            builder.error(
                Pos {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                },
                e.info(),
            )
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.roots)
}

enum Frame {
    Seq(Pos, usize, Vec<Node>),
    Map(Pos, usize, Vec<Entry>, Option<(String, Pos)>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Anchored nodes with their size and depth, which an alias adds to the document.
    anchors: std::collections::HashMap<usize, (Node, usize, usize)>,
    nodes: usize,
    roots: Vec<Node>,
}

impl Builder {
    fn error(&self, pos: Pos, message: impl Into<String>) -> YamlError {
        YamlError {
            document: 0,
            pos,
            message: message.into(),
        }
    }

    fn event(&mut self, event: Event, span: Span) -> Result<(), YamlError> {
        let pos = Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        };
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let node = Node {
                    pos,
                    value: scalar(text.into_owned(), style, tag.as_deref()),
                };
                self.finish(node, anchor)?;
            }
            Event::SequenceStart(anchor, _) => self.open(Frame::Seq(pos, anchor, Vec::new()))?,
            Event::MappingStart(anchor, _) => {
                self.open(Frame::Map(pos, anchor, Vec::new(), None))?
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(pos, anchor, items)) => (
                        Node {
                            pos,
                            value: Value::Seq(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Map(pos, anchor, entries, _)) => (
                        Node {
                            pos,
                            value: Value::Map(entries),
                        },
                        anchor,
                    ),
                    None => return Err(self.error(pos, "unbalanced collection")),
                };
                self.finish(node, anchor)?;
            }
            Event::Alias(id) => {
                let &(_, size, depth) = self
                    .anchors
                    .get(&id)
                    .ok_or_else(|| self.error(pos, "unknown anchor"))?;
                self.count(size, pos)?;
                if self.stack.len() + depth > MAX_DEPTH {
                    return Err(self.error(pos, format!("nested deeper than {MAX_DEPTH} levels")));
                }
                let node = self.anchors[&id].0.clone();
                self.push(node)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame) -> Result<(), YamlError> {
        let pos = match &frame {
            Frame::Seq(pos, ..) | Frame::Map(pos, ..) => *pos,
        };
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error(pos, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn count(&mut self, added: usize, pos: Pos) -> Result<(), YamlError> {
        self.nodes += added;
        match self.nodes > MAX_NODES {
            true => Err(self.error(
                pos,
                format!("more than {MAX_NODES} nodes (aliases expanded)"),
            )),
            false => Ok(()),
        }
    }

    /// A complete node: remembered if anchored, then placed.
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        self.count(1, node.pos)?;
        if anchor != 0 {
            let (size, depth) = (node.count(), node.depth());
            self.anchors.insert(anchor, (node.clone(), size, depth));
        }
        self.push(node)
    }

    fn push(&mut self, node: Node) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => {
                if node.value != Value::Null {
                    self.roots.push(node);
                }
            }
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, key)) => match key.take() {
                None => *key = Some((node.scalar_text().unwrap_or("").to_string(), node.pos)),
                Some((key, key_pos)) => {
                    if let Some(first) = entries.iter().find(|e| e.key == key) {
                        let message = format!(
                            "mapping key {key:?} is defined twice (first on line {}): kubectl refuses the document",
                            first.key_pos.line
                        );
                        return Err(self.error(key_pos, message));
                    }
                    entries.push(Entry {
                        key,
                        key_pos,
                        value: node,
                    });
                }
            },
        }
        Ok(())
    }
}
