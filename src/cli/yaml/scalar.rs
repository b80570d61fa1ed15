//! Scalars typed as Kubernetes' YAML 1.1 reader types them.

use saphyr_parser::{ScalarStyle, Tag};

use super::Value;

/// A scalar typed as Kubernetes' YAML 1.1 reader types it: quoted and block scalars and `!!str`
/// are strings; plain ones may be null, booleans or numbers.
pub(super) fn scalar(text: String, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    let core = tag
        .filter(|t| t.is_yaml_core_schema())
        .map(|t| t.suffix.as_str());
    let literal = style == ScalarStyle::Literal;
    if style != ScalarStyle::Plain || core == Some("str") {
        return Value::Str { text, literal };
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        t if bool_of(t).is_some() || is_number(t) => Value::Scalar(text),
        _ => Value::Str { text, literal },
    }
}

/// YAML 1.1 booleans, which Kubernetes' reader still uses.
pub(super) fn bool_of(text: &str) -> Option<bool> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

/// Go's `ParseInt(s, 0, 64)` and `ParseFloat` forms, plus YAML's `.inf` and `.nan`.
fn is_number(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let digits =
        |s: &str, radix: u32| !s.is_empty() && s.chars().all(|c| c == '_' || c.is_digit(radix));
    if let Some(rest) = unsigned.strip_prefix("0x").or(unsigned.strip_prefix("0X")) {
        return digits(rest, 16);
    }
    if let Some(rest) = unsigned.strip_prefix("0b").or(unsigned.strip_prefix("0o")) {
        return digits(rest, 8);
    }
    if matches!(
        unsigned,
        ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN"
    ) {
        return true;
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (whole.is_empty() || digits(whole, 10))
                && (fraction.is_empty() || digits(fraction, 10))
                && !(whole.is_empty() && fraction.is_empty())
        }
        None => digits(mantissa, 10),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e), 10));
    mantissa_ok && exponent_ok
}
