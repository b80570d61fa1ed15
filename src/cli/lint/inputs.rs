//! What `lint` reads: files, directories (every `*.yaml` and `*.yml` below them, hidden
//! directories such as `.git` left out, in name order) and `-` for standard input.

use std::path::{Path, PathBuf};

/// One text to lint and the name findings give it.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// A path that cannot be linted.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no .yaml or .yml files in this directory")]
    NoManifests { path: String },
}

impl InputError {
    pub fn path(&self) -> &str {
        match self {
            InputError::Read { path, .. } | InputError::NoManifests { path } => path,
        }
    }
}

/// The sources the paths name, and the paths that cannot be read.
pub fn read(paths: &[PathBuf]) -> (Vec<Source>, Vec<InputError>) {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        let read_error = |source| InputError::Read {
            path: name.clone(),
            source,
        };
        if path.as_os_str() == "-" {
            match std::io::read_to_string(std::io::stdin()) {
                Ok(text) => sources.push(Source { name, text }),
                Err(e) => errors.push(read_error(e)),
            }
        } else if path.is_dir() {
            let mut files = Vec::new();
            if let Err(e) = manifests_in(path, &mut files) {
                errors.push(read_error(e));
                continue;
            }
            if files.is_empty() {
                errors.push(InputError::NoManifests { path: name });
            }
            for file in files {
                match std::fs::read_to_string(&file) {
                    Ok(text) => sources.push(Source {
                        name: file.display().to_string(),
                        text,
                    }),
                    Err(source) => errors.push(InputError::Read {
                        path: file.display().to_string(),
                        source,
                    }),
                }
            }
        } else {
            match std::fs::read_to_string(path) {
                Ok(text) => sources.push(Source { name, text }),
                Err(e) => errors.push(read_error(e)),
            }
        }
    }
    (sources, errors)
}

fn manifests_in(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if path.is_dir() && !hidden {
            manifests_in(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_searched_recursively_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("b");
        std::fs::create_dir_all(sub.join(".git")).unwrap();
        std::fs::write(dir.path().join("a.yml"), "a: 1").unwrap();
        std::fs::write(sub.join("c.yaml"), "c: 1").unwrap();
        std::fs::write(sub.join("notes.txt"), "x").unwrap();
        std::fs::write(sub.join(".git").join("d.yaml"), "d: 1").unwrap();
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let (sources, errors) = read(&[
            dir.path().to_path_buf(),
            empty,
            dir.path().join("gone.yaml"),
        ]);
        let names: Vec<&str> = sources.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(names, ["a: 1", "c: 1"]);
        assert!(matches!(errors[0], InputError::NoManifests { .. }));
        assert!(matches!(errors[1], InputError::Read { .. }));
    }
}
