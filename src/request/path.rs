//! The driver's rules for file paths in a MountResponse (its atomic writer's `validatePath` plus
//! `filepath.Clean(p) == p`), checked up front so a bad `objectAlias` fails with a message naming
//! the object instead of a `FileWriteError` deep in the driver.

/// Why a file path would be refused by the driver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("file name must not be empty")]
    Empty,
    #[error("file name must be a relative path")]
    Absolute,
    #[error("file name must not contain '..'")]
    DotDot,
    #[error("file name must not contain NUL characters")]
    Nul,
    #[error("file name must be at most 4096 bytes long")]
    TooLong,
    #[error("file name components must be at most 255 bytes long")]
    ComponentTooLong,
    #[error(
        "file name \"{0}\" is not a clean path: remove empty, '.' and trailing '/' components"
    )]
    Unclean(String),
}

/// Checks a relative file path the way the driver will before writing it.
pub fn validate(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    // Upstream rejects any ".." substring, not only whole components; keep that (it is stricter).
    if path.contains("..") {
        return Err(PathError::DotDot);
    }
    if path.contains('\0') {
        return Err(PathError::Nul);
    }
    if path.len() > 4096 {
        return Err(PathError::TooLong);
    }
    let mut components = path.split('/');
    if components.any(|c| c.len() > 255) {
        return Err(PathError::ComponentTooLong);
    }
    if path.split('/').any(|c| c.is_empty() || c == ".") {
        return Err(PathError::Unclean(path.escape_debug().to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_clean_relative_paths() {
        for p in ["a", "dir/file", "a.b", "secret1/0", "x.crt", "a-b_c"] {
            assert_eq!(validate(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn rejects_what_the_driver_rejects() {
        let cases = [
            ("", PathError::Empty),
            ("/etc/passwd", PathError::Absolute),
            ("..", PathError::DotDot),
            ("../x", PathError::DotDot),
            ("a/../b", PathError::DotDot),
            ("..data", PathError::DotDot),
            ("a\0b", PathError::Nul),
        ];
        for (p, want) in cases {
            assert_eq!(validate(p), Err(want), "{p:?}");
        }
        for p in ["./a", "a/", "a//b", "a/./b", "."] {
            assert!(matches!(validate(p), Err(PathError::Unclean(_))), "{p}");
        }
        assert_eq!(validate(&"a".repeat(256)), Err(PathError::ComponentTooLong));
        assert_eq!(validate(&["a"; 2049].join("/")), Err(PathError::TooLong));
    }
}
