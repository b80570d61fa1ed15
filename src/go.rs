//! Go's spellings that the Go provider's users write and read: `strconv.ParseBool` and
//! `time.ParseDuration` for flags and SecretProviderClass parameters (one definition, used by the
//! flags and by the request parser, so both accept exactly what the Go provider accepted), and
//! the text of a failed system call as Go prints it, for error messages users grep.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoParseError {
    #[error("invalid boolean value {0:?}")]
    Bool(String),
    #[error("invalid duration {0:?}: use a number with units ms, s, m or h, e.g. 90s or 1m30s")]
    Duration(String),
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(text: &str) -> Result<bool, GoParseError> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(GoParseError::Bool(text.to_string())),
    }
}

/// Go's `time.ParseDuration` for the units that make sense here: `500ms`, `5s`, `1m30s`, `2h`.
pub fn parse_duration(text: &str) -> Result<Duration, GoParseError> {
    let invalid = || GoParseError::Duration(text.to_string());
    let mut rest = text.trim();
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += Duration::try_from_secs_f64(value * unit).map_err(|_| invalid())?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// An I/O error as Go's `syscall.Errno` prints it: `no such file or directory`, not Rust's
/// `No such file or directory (os error 2)`.
pub fn io_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .unwrap_or(&text)
            .to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["", "yes", "tRUE", " true"] {
            assert!(parse_bool(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn io_errors_read_like_go() {
        let missing = std::fs::read("/nonexistent/env.json").unwrap_err();
        assert_eq!(io_error_text(&missing), "no such file or directory");
        let dir = std::fs::read("/").unwrap_err();
        assert_eq!(io_error_text(&dir), "is a directory");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["5", "5x", "", "s", "1e400h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
