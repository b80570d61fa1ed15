//! From a finding's field path (`spec.parameters.objects[2].objectType`) to its line and column:
//! the deepest part of the path that exists, entering the YAML inside strings (the `objects`
//! parameter and each of its objects) so an object's field is found on its own line. Checks name
//! fields; positions follow, so the two cannot disagree.

use crate::cli::yaml::{Node, Pos, Value};

#[derive(Debug, PartialEq)]
enum Step<'p> {
    Key(&'p str),
    Index(usize),
}

/// `a.b[1]["c.d"]` → `a`, `b`, `1`, `c.d`.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix("[\"") {
            let end = quoted.find("\"]").unwrap_or(quoted.len());
            out.push(Step::Key(&quoted[..end]));
            rest = quoted.get(end + 2..).unwrap_or("");
        } else if let Some(index) = rest.strip_prefix('[') {
            let end = index.find(']').unwrap_or(index.len());
            match index[..end].parse() {
                Ok(i) => out.push(Step::Index(i)),
                Err(_) => break,
            }
            rest = index.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out.push(Step::Key(&rest[..end]));
            rest = &rest[end..];
        }
        rest = rest.strip_prefix('.').unwrap_or(rest);
    }
    out
}

/// Where `path` is in `root`, or the nearest enclosing node that exists.
pub fn locate(root: &Node, path: &str) -> Pos {
    walk(root, &steps(path), root.pos)
}

fn walk(node: &Node, steps: &[Step], pos: Pos) -> Pos {
    let Some((step, rest)) = steps.split_first() else {
        return pos;
    };
    if let Value::Str { .. } = node.value {
        // Only a mapping or a sequence leads further (a plain string holds itself).
        let inner = node
            .embedded()
            .filter(|n| matches!(n.value, Value::Map(_) | Value::Seq(_)));
        return match inner {
            // `objects` holds its list under `array:`.
            Some(inner) => match (step, inner.get("array")) {
                (Step::Index(_), Some(array)) => walk(array, steps, pos),
                _ => walk(&inner, steps, pos),
            },
            None => pos,
        };
    }
    match step {
        Step::Key(key) => match node.entries().iter().find(|e| e.key == *key) {
            Some(entry) => {
                let at = match entry.value.value {
                    Value::Map(_) | Value::Seq(_) | Value::Null => entry.key_pos,
                    _ => entry.value.pos,
                };
                walk(&entry.value, rest, at)
            }
            None => pos,
        },
        Step::Index(i) => match node.items().get(*i) {
            Some(item) => walk(item, rest, item.pos),
            None => pos,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::yaml::documents;

    const SPC: &str = "kind: SecretProviderClass
metadata:
  labels:
    a.b/c: x
spec:
  parameters:
    tenantID: t
    objects: |
      array:
        - |
          objectName: s
          objectType: string
";

    #[test]
    fn paths_into_embedded_objects() {
        let root = documents(SPC).remove(0).unwrap().root;
        let at = |path| {
            let p = locate(&root, path);
            (p.line, p.column)
        };
        assert_eq!(at("spec.parameters.tenantID"), (7, 15));
        assert_eq!(at("spec.parameters"), (6, 3));
        assert_eq!(at("spec.parameters.objects[0]"), (11, 11));
        assert_eq!(at("spec.parameters.objects[0].objectType"), (12, 23));
        assert_eq!(at("spec.parameters.objects[5]"), (9, 7));
        assert_eq!(at("spec.parameters.keyvaultName"), (6, 3));
        assert_eq!(at("metadata.labels[\"a.b/c\"]"), (4, 12));
        assert_eq!(
            at("metadata.labels[\"a.b/c\"].deeper"),
            (4, 12),
            "a string that is not a document ends the walk"
        );
        assert_eq!(
            steps("a[1][\"x.y\"].b"),
            [
                Step::Key("a"),
                Step::Index(1),
                Step::Key("x.y"),
                Step::Key("b")
            ]
        );
    }
}
