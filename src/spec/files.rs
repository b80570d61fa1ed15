//! The files an object writes: the one definition that a mount, `mount --dry-run` and `lint`
//! all use, so they cannot disagree. In response order: for a secret with
//! `--write-cert-and-key-in-separate-files`, `<file>.crt` and `<file>.key` (only when the secret
//! turns out to be certificate-backed), then the object's own file, then its `jsonPaths` files.
//! With `objectVersionHistory` each version slot `i` writes the same set under `<file>/<i>`.

use super::{ObjectSpec, ObjectType};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// The object as written by default (after encodings and conversions).
    Whole,
    /// The certificates of a certificate-backed secret, with the separate-files flag.
    Certificates,
    /// The private key of a certificate-backed secret, with the separate-files flag.
    PrivateKey,
    /// The value selected by `jsonPaths[i]`.
    Json(usize),
}

/// One file an object writes, before anything is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSlot {
    pub path: String,
    /// The `ObjectVersion.id` reported for the file.
    pub uid: String,
    /// Its own mode, if set (`filePermission` of the entry or object); else the request's.
    pub mode: Option<u32>,
    pub role: FileRole,
}

impl FileSlot {
    /// Files that exist only when the provider runs with the separate-files flag and the secret
    /// is certificate-backed.
    pub fn is_conditional(&self) -> bool {
        matches!(self.role, FileRole::Certificates | FileRole::PrivateKey)
    }
}

impl ObjectSpec {
    /// The files of version slot `slot` (`None` for the single-version layout).
    pub fn files(&self, slot: Option<usize>) -> Vec<FileSlot> {
        let at = |path: &str| match slot {
            Some(i) => format!("{path}/{i}"),
            None => path.to_string(),
        };
        let (path, uid) = (at(&self.file_name), at(&self.uid()));
        let file = |path: String, uid: String, mode, role| FileSlot {
            path,
            uid,
            mode,
            role,
        };
        let mut out = Vec::new();
        if self.writes_whole() {
            if self.object_type == ObjectType::Secret {
                for (suffix, role) in [
                    (".crt", FileRole::Certificates),
                    (".key", FileRole::PrivateKey),
                ] {
                    out.push(file(
                        format!("{path}{suffix}"),
                        uid.clone(),
                        self.file_mode,
                        role,
                    ));
                }
            }
            out.push(file(path, uid, self.file_mode, FileRole::Whole));
        }
        for (i, selection) in self.json.iter().enumerate() {
            let path = at(&selection.file_name);
            out.push(file(
                path.clone(),
                format!("{}/jsonPaths/{path}", self.uid()),
                selection.file_mode.or(self.file_mode),
                FileRole::Json(i),
            ));
        }
        out
    }

    /// Every version slot the object may write: one, or `objectVersionHistory` of them.
    pub fn slots(&self) -> Vec<Option<usize>> {
        match self.has_history() {
            true => (0..self.history as usize).map(Some).collect(),
            false => vec![None],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::JsonSelection;
    use super::*;
    use crate::json_path::JsonPath;

    fn secret() -> ObjectSpec {
        ObjectSpec {
            file_mode: Some(0o600),
            ..ObjectSpec::test_secret("db")
        }
    }

    fn paths(files: &[FileSlot]) -> Vec<&str> {
        files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn single_secret_with_conditional_split_files() {
        let files = secret().files(None);
        assert_eq!(paths(&files), ["db.crt", "db.key", "db"]);
        assert!(files[0].is_conditional() && !files[2].is_conditional());
        assert!(files.iter().all(|f| f.uid == "secret/db"));
        let key = ObjectSpec {
            object_type: ObjectType::Key,
            ..secret()
        };
        assert_eq!(paths(&key.files(None)), ["db"]);
    }

    #[test]
    fn history_and_json_paths() {
        let mut o = secret();
        o.history = 2;
        o.vault = Some("kv-b".into());
        o.json = vec![JsonSelection {
            path: JsonPath::parse("a.b").unwrap(),
            file_name: "cfg/a".into(),
            file_mode: None,
        }];
        assert_eq!(o.slots(), [Some(0), Some(1)]);
        let files = o.files(Some(1));
        assert_eq!(paths(&files), ["db/1.crt", "db/1.key", "db/1", "cfg/a/1"]);
        assert_eq!(files[2].uid, "kv-b/secret/db/1");
        assert_eq!(files[3].uid, "kv-b/secret/db/jsonPaths/cfg/a/1");
        assert_eq!(
            files[3].mode,
            Some(0o600),
            "the object's mode is the default"
        );
        o.json_only = true;
        assert_eq!(paths(&o.files(None)), ["cfg/a"]);
    }
}
