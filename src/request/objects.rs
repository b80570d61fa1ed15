//! The `objects` parameter: YAML with an `array:` of YAML strings, each describing one Key Vault
//! object, parsed and validated into [`ObjectSpec`]s.
//!
//! Field names, trimming and error texts follow the Go provider. Where it silently accepted
//! nonsense (an invalid `filePermission` became mode 0, `PFX` in capitals skipped the secret-only
//! check, an unknown `objectType` only failed after network calls) we fail up front, naming the
//! object and the fix.
//!
//! Beyond the Go provider, each opt-in: `optional`, `jsonPaths`/`jsonOnly` and a per-object
//! `keyvaultName`. An object without them parses exactly as before.

use serde::{de, Deserialize, Deserializer};

use super::{path, placeholder};
use crate::go;
use crate::json_path::{JsonPath, SyntaxError};
use crate::spec::{JsonSelection, ObjectEncoding, ObjectFormat, ObjectSpec, ObjectType};

/// A per-object problem; displayed with the Go provider's `failed to get objectType:…` prefix.
pub type ObjectError = crate::spec::ObjectError<ObjectProblem>;

#[derive(Debug, thiserror::Error)]
pub enum ObjectProblem {
    #[error("objectName is not set: give the name of the object in Key Vault")]
    MissingName,
    #[error("{field} \"{value}\" looks like a placeholder left from a template or tutorial: set it to {expected}", expected = placeholder::expected(field))]
    Placeholder { field: &'static str, value: String },
    #[error("objectName \"{0}\" is not a valid Key Vault object name: use 1-127 letters, digits and '-'")]
    InvalidName(String),
    #[error("objectVersion \"{0}\" is not a valid Key Vault version: use the 32-character version id, \"latest\" or leave it empty")]
    InvalidVersion(String),
    #[error("Invalid vaultObjectTypes. Should be secret, key, or cert")]
    InvalidType,
    #[error("invalid objectFormat: {0}, should be PEM or PFX")]
    InvalidFormat(String),
    #[error("PFX format only supported for objectType: secret")]
    PfxNotSecret,
    #[error("objectEncoding only supported for objectType: secret")]
    EncodingNotSecret,
    #[error("invalid objectEncoding: {0}, should be hex, base64 or utf-8")]
    InvalidEncoding(String),
    #[error("file permission must be a valid octal number: {0}")]
    InvalidPermission(String),
    #[error(
        "file permission {0} is out of range: use an octal mode from 0000 to 0777, e.g. \"0644\""
    )]
    PermissionOutOfRange(String),
    #[error(
        "objectVersionHistory {0} is too large: at most {MAX_HISTORY} versions can be written"
    )]
    HistoryTooLarge(i64),
    #[error(transparent)]
    Path(#[from] path::PathError),
    #[error("{field} must be \"true\" or \"false\", not \"{value}\"")]
    Bool { field: &'static str, value: String },
    #[error(
        "keyvaultName \"{0}\" is not a valid Key Vault name: use 3 to 24 letters, digits and '-'"
    )]
    VaultName(String),
    #[error("jsonPaths only supported for objectType: secret")]
    JsonPathsNotSecret,
    #[error("jsonPaths cannot be used with objectFormat: pfx (a PFX is not JSON)")]
    JsonPathsPfx,
    #[error("jsonOnly needs jsonPaths: without them nothing would be written")]
    JsonOnlyWithoutPaths,
    #[error("jsonPaths[{index}] path \"{path}\" is not valid: {problem}")]
    JsonPathSyntax {
        index: usize,
        path: String,
        problem: Box<SyntaxError>,
    },
    #[error(
        "jsonPaths[{0}] has no objectAlias: give the file name the selected value is written to"
    )]
    JsonPathAlias(usize),
    #[error("jsonPaths[{index}] {problem}")]
    JsonPathFile {
        index: usize,
        problem: Box<ObjectProblem>,
    },
}

/// Upper bound on `objectVersionHistory`: each version is a file and a GET.
pub const MAX_HISTORY: i64 = 200;
/// Upper bound on objects in one SPC, far above real use, so a hostile SPC cannot fan out.
pub const MAX_OBJECTS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    #[error("objects is not set")]
    Missing,
    #[error("failed to yaml unmarshal objects, error: {0}")]
    Yaml(String),
    #[error("unmarshal failed for keyVaultObjects at index {index}, error: {message}")]
    Element { index: usize, message: String },
    #[error(
        "objects lists {0} objects: at most {MAX_OBJECTS} are allowed in one SecretProviderClass"
    )]
    TooMany(usize),
    #[error(transparent)]
    Object(#[from] ObjectError),
}

#[derive(Deserialize)]
struct StringArray {
    #[serde(default)]
    array: Option<Vec<String>>,
}

/// The fields of an object, as [`RawObject`] names them; any other is ignored.
pub const FIELDS: &[&str] = &[
    "objectName",
    "objectAlias",
    "objectType",
    "objectVersion",
    "objectFormat",
    "objectEncoding",
    "filePermission",
    "objectVersionHistory",
    "optional",
    "keyvaultName",
    "jsonPaths",
    "jsonOnly",
];

/// The raw per-object YAML; every field may be any scalar, kept as text like yaml.v3 does.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawObject {
    #[serde(default, deserialize_with = "scalar")]
    object_name: String,
    #[serde(default, deserialize_with = "scalar")]
    object_alias: String,
    #[serde(default, deserialize_with = "scalar")]
    object_type: String,
    #[serde(default, deserialize_with = "scalar")]
    object_version: String,
    #[serde(default, deserialize_with = "scalar")]
    object_format: String,
    #[serde(default, deserialize_with = "scalar")]
    object_encoding: String,
    #[serde(default, deserialize_with = "scalar")]
    file_permission: String,
    #[serde(default, deserialize_with = "history")]
    object_version_history: i64,
    #[serde(default, deserialize_with = "scalar")]
    optional: String,
    #[serde(default, deserialize_with = "scalar")]
    keyvault_name: String,
    #[serde(default)]
    json_paths: Option<Vec<RawJsonPath>>,
    #[serde(default, deserialize_with = "scalar")]
    json_only: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawJsonPath {
    #[serde(default, deserialize_with = "scalar")]
    path: String,
    #[serde(default, deserialize_with = "scalar")]
    object_alias: String,
    #[serde(default, deserialize_with = "scalar")]
    file_permission: String,
}

/// Accepts a string, number or boolean scalar (or null) as text.
fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_unit<E: de::Error>(self) -> Result<String, E> {
            Ok(String::new())
        }
    }
    d.deserialize_any(V)
}

/// `objectVersionHistory` is an int32 upstream; also accept it quoted.
fn history<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let text = scalar(d)?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    text.parse::<i32>().map(i64::from).map_err(|_| {
        de::Error::custom(format!(
            "objectVersionHistory \"{text}\" is not a whole number"
        ))
    })
}

/// Parses the `objects` parameter. An empty `array` yields no objects (the Go provider then
/// answers with an empty response).
pub fn parse(objects: &str) -> Result<Vec<ObjectSpec>, ObjectsError> {
    parse_each(objects)?.into_iter().collect()
}

/// Parses the outer document, then each object on its own, so `lint` can report every bad
/// object instead of the first.
pub fn parse_each(objects: &str) -> Result<Vec<Result<ObjectSpec, ObjectsError>>, ObjectsError> {
    if objects.trim().is_empty() {
        return Err(ObjectsError::Missing);
    }
    let outer: StringArray =
        yaml_serde::from_str(objects).map_err(|e| ObjectsError::Yaml(e.to_string()))?;
    let items = outer.array.unwrap_or_default();
    if items.len() > MAX_OBJECTS {
        return Err(ObjectsError::TooMany(items.len()));
    }
    Ok(items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let raw: RawObject = if item.trim().is_empty() {
                RawObject::default()
            } else {
                yaml_serde::from_str(item).map_err(|e| ObjectsError::Element {
                    index,
                    message: e.to_string(),
                })?
            };
            Ok(validate(raw)?)
        })
        .collect())
}

fn validate(raw: RawObject) -> Result<ObjectSpec, ObjectError> {
    let name = raw.object_name.trim().to_string();
    let version_text = raw.object_version.trim().to_string();
    let fail = |cause| ObjectError {
        object_type: raw.object_type.trim().to_string(),
        name: name.clone(),
        version: version_text.clone(),
        cause,
    };
    stand_ins(&raw).map_err(fail)?;
    // Same order as the Go provider's validate(): format, encoding, file name; then our additions.
    let object_type = match raw.object_type.trim() {
        "secret" => Some(ObjectType::Secret),
        "key" => Some(ObjectType::Key),
        "cert" => Some(ObjectType::Cert),
        _ => None,
    };
    let (format, encoding) = format_and_encoding(&raw, object_type).map_err(fail)?;
    let alias = raw.object_alias.trim();
    let file_name = if alias.is_empty() { &name } else { alias };
    path::validate(file_name).map_err(|e| fail(e.into()))?;
    let object_type = object_type
        .ok_or(ObjectProblem::InvalidType)
        .map_err(fail)?;
    let version = name_and_version(&name, &version_text).map_err(fail)?;
    let file_mode = match raw.file_permission.trim() {
        "" => None,
        text => Some(parse_mode(text).map_err(fail)?),
    };
    if raw.object_version_history > MAX_HISTORY {
        return Err(fail(ObjectProblem::HistoryTooLarge(
            raw.object_version_history,
        )));
    }
    let optional = parse_bool("optional", &raw.optional).map_err(fail)?;
    let vault = object_vault(raw.keyvault_name.trim()).map_err(fail)?;
    let json = json_selections(raw.json_paths.unwrap_or_default()).map_err(fail)?;
    let json_only = parse_bool("jsonOnly", &raw.json_only).map_err(fail)?;
    check_json(object_type, format, json.is_empty(), json_only).map_err(fail)?;
    Ok(ObjectSpec {
        file_name: file_name.to_string(),
        name,
        object_type,
        version,
        version_text,
        format,
        encoding,
        file_mode,
        history: raw.object_version_history.max(1) as u32,
        optional,
        vault,
        json,
        json_only,
        has_alias: !alias.is_empty(),
    })
}

/// Refuses fields left as placeholders, which may otherwise be valid names.
fn stand_ins(raw: &RawObject) -> Result<(), ObjectProblem> {
    let fields = [
        ("objectName", &raw.object_name),
        ("objectAlias", &raw.object_alias),
        ("objectVersion", &raw.object_version),
        ("keyvaultName", &raw.keyvault_name),
    ];
    let json_aliases = raw
        .json_paths
        .iter()
        .flatten()
        .map(|p| ("objectAlias", &p.object_alias));
    match fields
        .into_iter()
        .chain(json_aliases)
        .find(|(_, value)| placeholder::is_placeholder(value))
    {
        Some((field, value)) => Err(ObjectProblem::Placeholder {
            field,
            value: value.trim().escape_debug().to_string(),
        }),
        None => Ok(()),
    }
}

/// `objectFormat` and `objectEncoding`, which only secrets may use; with an unknown type, the
/// type's own error comes later, as upstream orders them.
fn format_and_encoding(
    raw: &RawObject,
    object_type: Option<ObjectType>,
) -> Result<(ObjectFormat, ObjectEncoding), ObjectProblem> {
    let not_secret = object_type.is_some_and(|t| t != ObjectType::Secret);
    let format = match raw.object_format.trim().to_ascii_lowercase().as_str() {
        "" | "pem" => ObjectFormat::Pem,
        "pfx" if not_secret => return Err(ObjectProblem::PfxNotSecret),
        "pfx" => ObjectFormat::Pfx,
        _ => {
            return Err(ObjectProblem::InvalidFormat(
                raw.object_format.trim().to_string(),
            ))
        }
    };
    let encoding = match raw.object_encoding.trim() {
        "" => ObjectEncoding::Utf8,
        _ if not_secret => return Err(ObjectProblem::EncodingNotSecret),
        text => match text.to_ascii_lowercase().as_str() {
            "utf-8" => ObjectEncoding::Utf8,
            "base64" => ObjectEncoding::Base64,
            "hex" => ObjectEncoding::Hex,
            _ => return Err(ObjectProblem::InvalidEncoding(text.to_string())),
        },
    };
    Ok((format, encoding))
}

/// Checks the name and reads the version (`None` for the latest); both become URL segments.
fn name_and_version(name: &str, version: &str) -> Result<Option<String>, ObjectProblem> {
    if name.is_empty() {
        return Err(ObjectProblem::MissingName);
    }
    if name.len() > 127 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(ObjectProblem::InvalidName(name.escape_debug().to_string()));
    }
    match version {
        "" | "latest" => Ok(None),
        v if v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Ok(Some(v.to_string()))
        }
        v => Err(ObjectProblem::InvalidVersion(v.escape_debug().to_string())),
    }
}

/// An object's own `keyvaultName`, in lower case: vault names are case-insensitive, and one
/// spelling keeps ids and caches consistent.
fn object_vault(vault: &str) -> Result<Option<String>, ObjectProblem> {
    match vault {
        "" => Ok(None),
        vault if super::validate_vault_name(vault).is_err() => {
            Err(ObjectProblem::VaultName(vault.escape_debug().to_string()))
        }
        vault => Ok(Some(vault.to_ascii_lowercase())),
    }
}

/// `jsonPaths` only select from a secret's JSON text; `jsonOnly` needs them.
fn check_json(
    object_type: ObjectType,
    format: ObjectFormat,
    no_paths: bool,
    json_only: bool,
) -> Result<(), ObjectProblem> {
    if !no_paths && object_type != ObjectType::Secret {
        return Err(ObjectProblem::JsonPathsNotSecret);
    }
    if !no_paths && format == ObjectFormat::Pfx {
        return Err(ObjectProblem::JsonPathsPfx);
    }
    if json_only && no_paths {
        return Err(ObjectProblem::JsonOnlyWithoutPaths);
    }
    Ok(())
}

/// Go's `strconv.ParseBool`, with empty meaning false.
fn parse_bool(field: &'static str, text: &str) -> Result<bool, ObjectProblem> {
    match text.trim() {
        "" => Ok(false),
        text => go::parse_bool(text).map_err(|_| ObjectProblem::Bool {
            field,
            value: text.escape_debug().to_string(),
        }),
    }
}

fn json_selections(raw: Vec<RawJsonPath>) -> Result<Vec<JsonSelection>, ObjectProblem> {
    raw.into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let text = entry.path.trim();
            let path = JsonPath::parse(text).map_err(|problem| ObjectProblem::JsonPathSyntax {
                index,
                path: text.escape_debug().to_string(),
                problem: Box::new(problem),
            })?;
            let file_name = entry.object_alias.trim().to_string();
            if file_name.is_empty() {
                return Err(ObjectProblem::JsonPathAlias(index));
            }
            let in_entry = |problem: ObjectProblem| ObjectProblem::JsonPathFile {
                index,
                problem: Box::new(problem),
            };
            path::validate(&file_name).map_err(|e| in_entry(e.into()))?;
            let file_mode = match entry.file_permission.trim() {
                "" => None,
                text => Some(parse_mode(text).map_err(in_entry)?),
            };
            Ok(JsonSelection {
                path,
                file_name,
                file_mode,
            })
        })
        .collect()
}

/// Parses an octal file mode like Go's `strconv.ParseInt(s, 8, 32)`, then insists on 0..=0o777.
fn parse_mode(text: &str) -> Result<u32, ObjectProblem> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let value = u32::from_str_radix(digits, 8).map_err(|_| {
        ObjectProblem::InvalidPermission(format!(
            "strconv.ParseInt: parsing \"{text}\": invalid syntax"
        ))
    })?;
    if value > 0o777 {
        return Err(ObjectProblem::PermissionOutOfRange(text.to_string()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(item: &str) -> Result<ObjectSpec, ObjectsError> {
        let yaml = format!("array:\n  - |\n{}", indent(item));
        parse(&yaml).map(|mut v| v.remove(0))
    }

    fn indent(s: &str) -> String {
        s.lines().map(|l| format!("    {l}\n")).collect()
    }

    fn err(item: &str) -> String {
        one(item).unwrap_err().to_string()
    }

    #[test]
    fn parses_fields_with_trimming_and_defaults() {
        let o = one("objectName: ' secret1 '\nobjectType: secret\nobjectAlias: dir/alias\nobjectVersion: \"\"\nfilePermission: 0755\nunknownKey: x").unwrap();
        assert_eq!(o.name, "secret1");
        assert_eq!(o.file_name, "dir/alias");
        assert_eq!(o.version, None);
        assert_eq!(o.file_mode, Some(0o755));
        assert_eq!(o.encoding, ObjectEncoding::Utf8);
        assert_eq!(o.format, ObjectFormat::Pem);
        assert_eq!(o.history, 1);
        assert_eq!(o.uid(), "secret/secret1");
    }

    #[test]
    fn quoted_and_bare_scalars() {
        let o = one("objectName: 12345\nobjectType: secret\nfilePermission: \"0600\"\nobjectVersionHistory: \"3\"").unwrap();
        assert_eq!(o.name, "12345");
        assert_eq!(o.file_mode, Some(0o600));
        assert_eq!(o.history, 3);
    }

    #[test]
    fn latest_means_no_version() {
        assert_eq!(
            one("objectName: a\nobjectType: key\nobjectVersion: latest")
                .unwrap()
                .version,
            None
        );
        let o =
            one("objectName: a\nobjectType: key\nobjectVersion: 0123456789abcdef0123456789abcdef")
                .unwrap();
        assert_eq!(
            o.version.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
    }

    #[test]
    fn upstream_error_texts() {
        assert_eq!(
            err("objectName: secret1\nobjectType: secret\nobjectFormat: pkcs"),
            "failed to get objectType:secret, objectName:secret1, objectVersion:: invalid objectFormat: pkcs, should be PEM or PFX"
        );
        assert!(err("objectName: k\nobjectType: key\nobjectFormat: PFX")
            .ends_with(": PFX format only supported for objectType: secret"));
        assert!(
            err("objectName: k\nobjectType: key\nobjectEncoding: base64")
                .ends_with(": objectEncoding only supported for objectType: secret")
        );
        assert!(
            err("objectName: s\nobjectType: secret\nobjectEncoding: utf-16")
                .ends_with(": invalid objectEncoding: utf-16, should be hex, base64 or utf-8")
        );
        assert!(err("objectType: secret").ends_with(": file name must not be empty"));
        assert!(
            err("objectName: s\nobjectType: secret\nobjectAlias: /etc/x")
                .ends_with(": file name must be a relative path")
        );
        assert!(err("objectName: s\nobjectType: secret\nobjectAlias: ../x")
            .ends_with(": file name must not contain '..'"));
        assert!(err("objectName: s\nobjectType: Secret")
            .ends_with(": Invalid vaultObjectTypes. Should be secret, key, or cert"));
        assert!(
            err("objectName: s\nobjectType: secret\nfilePermission: 0999")
                .contains("file permission must be a valid octal number")
        );
        assert!(
            err("objectName: s\nobjectType: secret\nfilePermission: 1777")
                .contains("file permission 1777 is out of range")
        );
        assert!(err("objectName: s\nobjectType: secret\nobjectAlias: a/./b")
            .contains("is not a clean path"));
        assert!(err("objectName: ../s\nobjectType: secret\nobjectAlias: x")
            .contains("is not a valid Key Vault object name"));
        assert!(err("objectName: s\nobjectType: secret\nobjectVersion: a/b")
            .contains("is not a valid Key Vault version"));
        assert!(err("objectAlias: x\nobjectType: secret").contains("objectName is not set"));
    }

    #[test]
    fn outer_and_element_yaml_errors() {
        assert_eq!(parse("  ").unwrap_err().to_string(), "objects is not set");
        assert!(parse("array: [")
            .unwrap_err()
            .to_string()
            .starts_with("failed to yaml unmarshal objects, error: "));
        let e = parse("array:\n  - |\n    objectName: [\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("unmarshal failed for keyVaultObjects at index 0, error: "),
            "{e}"
        );
        for text in [
            "array: 5",
            "a: b: c",
            "{{",
            "array:\n\t- x",
            "- a\n- b",
            "array: {a: b}",
            "&a [*a]",
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(
                e.starts_with("failed to yaml unmarshal objects, error: "),
                "{text:?}: {e}"
            );
        }
        assert!(parse("array: []").unwrap().is_empty());
        assert!(parse("array:").unwrap().is_empty());
    }

    #[test]
    fn opt_in_fields() {
        let o = one("objectName: s\nobjectType: secret").unwrap();
        assert!(!o.optional && o.vault.is_none() && o.json.is_empty() && o.writes_whole());
        let o = one("objectName: s\nobjectType: secret\noptional: true\nkeyvaultName: kv-other")
            .unwrap();
        assert!(o.optional);
        assert_eq!(o.vault.as_deref(), Some("kv-other"));
        assert_eq!(o.uid(), "kv-other/secret/s");
        assert!(
            one("objectName: s\nobjectType: secret\noptional: \"False\"")
                .map(|o| !o.optional)
                .unwrap()
        );

        let o = one("objectName: s\nobjectType: secret\njsonOnly: \"true\"\njsonPaths:\n  - path: db.password\n    objectAlias: db/password\n    filePermission: \"0600\"\n  - path: users[0]\n    objectAlias: first").unwrap();
        assert!(
            !o.writes_whole(),
            "jsonOnly without objectAlias drops the whole secret"
        );
        assert_eq!(o.json.len(), 2);
        assert_eq!(o.json[0].path.as_str(), "db.password");
        assert_eq!(o.json[0].file_name, "db/password");
        assert_eq!(o.json[0].file_mode, Some(0o600));
        assert_eq!(o.json[1].file_mode, None);
        let o = one("objectName: s\nobjectType: secret\nobjectAlias: all.json\njsonOnly: true\njsonPaths:\n  - {path: a, objectAlias: a}").unwrap();
        assert!(
            o.writes_whole(),
            "an objectAlias keeps the whole secret, as documented"
        );
    }

    #[test]
    fn fields_are_the_ones_read() {
        let with = |field: &str| {
            one(&format!(
                "objectName: s\nobjectType: secret\n{field}: {{a: b}}"
            ))
        };
        for field in FIELDS {
            assert!(
                with(field).is_err(),
                "{field} is read (a mapping is never valid)"
            );
        }
        assert!(with("objectname").is_ok(), "other fields are ignored");
    }

    #[test]
    fn placeholders_are_refused_naming_the_field() {
        assert_eq!(
            err("objectName: <secret-name>\nobjectType: secret"),
            "failed to get objectType:secret, objectName:<secret-name>, objectVersion:: objectName \"<secret-name>\" looks like a placeholder left from a template or tutorial: set it to the name of the secret, key or certificate in Key Vault"
        );
        assert!(
            err("objectName: s\nobjectType: secret\nobjectVersion: xxxxxxxx")
                .contains(": objectVersion \"xxxxxxxx\" looks like a placeholder")
        );
        assert!(
            err("objectName: s\nobjectType: secret\nkeyvaultName: ${VAULT}")
                .contains(": keyvaultName \"${VAULT}\" looks like a placeholder")
        );
        assert!(err(
            "objectName: s\nobjectType: secret\njsonPaths: [{path: a, objectAlias: '{{ .file }}'}]"
        )
        .contains(": objectAlias \"{{ .file }}\" looks like a placeholder"));
        assert!(one(
            "objectName: s\nobjectType: secret\nobjectVersion: 0123456789abcdef0123456789abcdef"
        )
        .is_ok());
    }

    #[test]
    fn opt_in_field_errors() {
        let base = "objectName: s\nobjectType: secret\n";
        let e = |rest: &str| err(&format!("{base}{rest}"));
        assert!(e("optional: maybe")
            .ends_with(": optional must be \"true\" or \"false\", not \"maybe\""));
        assert!(
            e("jsonOnly: yes\njsonPaths: [{path: a, objectAlias: a}]").contains("jsonOnly must be")
        );
        assert!(e("keyvaultName: kv_x").ends_with(": keyvaultName \"kv_x\" is not a valid Key Vault name: use 3 to 24 letters, digits and '-'"));
        assert!(e("jsonOnly: true")
            .ends_with(": jsonOnly needs jsonPaths: without them nothing would be written"));
        assert!(e("jsonPaths: [{path: 'a..b', objectAlias: x}]")
            .contains("jsonPaths[0] path \"a..b\" is not valid: empty key at byte 2"));
        assert!(e("jsonPaths: [{path: a, objectAlias: x}, {path: b}]").ends_with(": jsonPaths[1] has no objectAlias: give the file name the selected value is written to"));
        assert!(e("jsonPaths: [{path: a, objectAlias: ../x}]")
            .ends_with(": jsonPaths[0] file name must not contain '..'"));
        assert!(
            e("jsonPaths: [{path: a, objectAlias: x, filePermission: 9}]")
                .contains("jsonPaths[0] file permission must be a valid octal number")
        );
        assert!(
            e("objectFormat: pfx\njsonPaths: [{path: a, objectAlias: x}]")
                .ends_with("jsonPaths cannot be used with objectFormat: pfx (a PFX is not JSON)")
        );
        assert!(
            err("objectName: k\nobjectType: key\njsonPaths: [{path: a, objectAlias: x}]")
                .ends_with(": jsonPaths only supported for objectType: secret")
        );
        assert!(matches!(
            one(&format!("{base}jsonPaths: notalist")),
            Err(ObjectsError::Element { .. })
        ));
    }

    #[test]
    fn bounds() {
        let many = format!(
            "array:\n{}",
            "  - 'objectName: a\n\n    objectType: secret'\n".repeat(MAX_OBJECTS + 1)
        );
        assert!(matches!(parse(&many), Err(ObjectsError::TooMany(_))));
        assert!(
            err("objectName: s\nobjectType: secret\nobjectVersionHistory: 100000")
                .contains("too large")
        );
    }
}
