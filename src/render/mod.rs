//! Turns fetched Key Vault objects into the files of a MountResponse: secret encodings,
//! certificate-backed secrets (PFX → PEM with chain ordering, PEM passthrough, raw PFX), keys as
//! PKIX public-key PEM, certificates as PEM, the optional split `.crt`/`.key` files, and the
//! values `jsonPaths` select from a JSON secret.

pub mod chain;
pub mod jwk;
mod pem;
pub mod pfx;

use base64::Engine;

pub use jwk::JwkError;
pub use pfx::PfxError;

use crate::json_path::{self, SelectError};
use crate::keyvault::{Object, SecretBundle};
use crate::secret::describe_json_error;
use crate::spec::{FileRole, ObjectEncoding, ObjectFormat, ObjectSpec};

/// Flags that change how objects are written.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// `--construct-pem-chain`: order PFX certificates leaf → intermediates → root.
    pub construct_pem_chain: bool,
    /// `--write-cert-and-key-in-separate-files`: also write `<file>.crt` and `<file>.key`.
    pub separate_cert_and_key: bool,
}

/// A file to return to the driver, with the ObjectVersion it reports.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: String,
    pub mode: u32,
    pub contents: Vec<u8>,
    pub uid: String,
    pub version: String,
}

impl std::fmt::Debug for RenderedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderedFile")
            .field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("bytes", &self.contents.len())
            .field("uid", &self.uid)
            .field("version", &self.version)
            .finish()
    }
}

/// Why an object could not be turned into files. Messages never include object content.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("secret value is not valid base64 (objectEncoding: base64 expects standard base64 with padding; first invalid input at byte offset {0})")]
    Base64(usize),
    #[error("secret value is not valid base64 (objectEncoding: base64 expects standard base64 with padding)")]
    Base64Length,
    #[error("secret value is not valid hex (objectEncoding: hex; first invalid input at byte offset {0})")]
    Hex(usize),
    #[error(
        "secret value is not valid hex (objectEncoding: hex expects an even number of hex digits)"
    )]
    HexLength,
    #[error(transparent)]
    Jwk(#[from] JwkError),
    #[error(transparent)]
    Pfx(#[from] PfxError),
    #[error("failed to get certificate. unknown content type '{0}'")]
    UnknownContentType(String),
    #[error("certificate-backed secret has no content type: Key Vault should have set application/x-pkcs12 or application/x-pem-file")]
    NoContentType,
    #[error("certificate value is empty")]
    EmptyCertificate,
    #[error(
        "secret value is not JSON ({0}): jsonPaths needs a secret whose value is a JSON document"
    )]
    NotJson(String),
    #[error("secret value nests arrays and objects deeper than {} levels: jsonPaths reads JSON documents up to that depth", json_path::MAX_DEPTH)]
    JsonTooDeep,
    #[error("jsonPaths path \"{path}\" selects nothing: {problem}")]
    JsonPath { path: String, problem: SelectError },
}

/// Where one object (or one version of it) is written.
pub struct Target<'a> {
    pub object: &'a ObjectSpec,
    /// Position in the `objectVersionHistory` layout, if the object uses it.
    pub slot: Option<usize>,
    /// Mode of files without their own `filePermission` (the request's).
    pub default_mode: u32,
}

/// An object's content: the whole file and, for a certificate-backed secret with the
/// separate-files flag, its certificates and key.
struct Contents {
    whole: Vec<u8>,
    split: Option<(Vec<u8>, Vec<u8>)>,
}

/// Renders one fetched object into the files of [`ObjectSpec::files`], in that order.
pub fn render(
    target: &Target,
    fetched: &Object,
    options: RenderOptions,
) -> Result<Vec<RenderedFile>, RenderError> {
    let contents = match fetched {
        Object::Secret(secret) => secret_contents(target.object, secret, options)?,
        Object::Key(key) => Contents {
            whole: jwk::public_key_pem(&key.jwk)?.into_bytes(),
            split: None,
        },
        Object::Cert(cert) if cert.cer.is_empty() => return Err(RenderError::EmptyCertificate),
        Object::Cert(cert) => Contents {
            whole: pem::encode("CERTIFICATE", &cert.cer).into_bytes(),
            split: None,
        },
    };
    let json = match target.object.json.is_empty() {
        true => None,
        false if json_path::too_deep(&contents.whole) => return Err(RenderError::JsonTooDeep),
        false => Some(
            serde_json::from_slice::<&serde_json::value::RawValue>(&contents.whole)
                .map_err(|e| RenderError::NotJson(describe_json_error(&e)))?,
        ),
    };
    let mut files = Vec::new();
    for slot in target.object.files(target.slot) {
        let bytes = match (slot.role, &contents.split, json) {
            (FileRole::Whole, ..) => contents.whole.clone(),
            (FileRole::Certificates, Some((crt, _)), _) => crt.clone(),
            (FileRole::PrivateKey, Some((_, key)), _) => key.clone(),
            (FileRole::Certificates | FileRole::PrivateKey, None, _) => continue,
            (FileRole::Json(i), _, Some(doc)) => {
                let selection = &target.object.json[i];
                let value =
                    selection
                        .path
                        .select(doc)
                        .map_err(|problem| RenderError::JsonPath {
                            path: selection.path.as_str().to_string(),
                            problem,
                        })?;
                json_path::file_contents(value)
            }
            (FileRole::Json(_), _, None) => unreachable!("jsonPaths files imply a parsed document"),
        };
        files.push(RenderedFile {
            path: slot.path,
            mode: slot.mode.unwrap_or(target.default_mode),
            contents: bytes,
            uid: slot.uid,
            version: fetched.version().to_string(),
        });
    }
    Ok(files)
}

const PKCS12: &str = "application/x-pkcs12";
const PEM_FILE: &str = "application/x-pem-file";

/// A secret's content after `objectEncoding` and, for a certificate-backed secret, the
/// conversion its content type and `objectFormat` ask for.
fn secret_contents(
    object: &ObjectSpec,
    secret: &SecretBundle,
    options: RenderOptions,
) -> Result<Contents, RenderError> {
    let value = secret.value.expose();
    let encoding = object.encoding;
    if secret.kid.is_none() {
        return Ok(Contents {
            whole: decode(value.as_bytes(), encoding)?,
            split: None,
        });
    }
    // Certificate-backed (Key Vault created this secret for a certificate).
    let (content, split) = match secret.content_type.as_deref() {
        None => return Err(RenderError::NoContentType),
        Some(PEM_FILE) => (
            value.to_string(),
            options.separate_cert_and_key.then(|| pfx::split_pem(value)),
        ),
        Some(PKCS12) if object.format == ObjectFormat::Pfx => {
            // The raw PFX (base64 text; binary with objectEncoding base64). The split files are
            // derived from it, unencoded; upstream wrote them empty.
            // A password-protected PFX cannot be split, but its raw bytes are what objectFormat
            // pfx asks for (the application holds the password): then no split files.
            let split = match options.separate_cert_and_key {
                true => match pfx::decode(value, options.construct_pem_chain) {
                    Ok(decoded) => Some((
                        decoded.certs_pem().into_bytes(),
                        decoded.keys_pem().into_bytes(),
                    )),
                    Err(PfxError::PasswordProtected(_)) => {
                        tracing::warn!(object = %object.name, "the PFX is password-protected: it is written as stored, without the .crt and .key files");
                        None
                    }
                    Err(e) => return Err(e.into()),
                },
                false => None,
            };
            return Ok(Contents {
                whole: decode(value.as_bytes(), encoding)?,
                split,
            });
        }
        Some(PKCS12) => {
            let decoded = pfx::decode(value, options.construct_pem_chain)?;
            if decoded.order == chain::Order::Incomplete {
                tracing::warn!(object = %object.name, "certificate chain is not complete due to missing intermediate/root certificates in the cert from key vault");
            }
            let split = options
                .separate_cert_and_key
                .then(|| (decoded.certs_pem(), decoded.keys_pem()));
            (decoded.pem(), split)
        }
        Some(other) => {
            return Err(RenderError::UnknownContentType(
                other.chars().take(100).collect(),
            ))
        }
    };
    let split = match split {
        Some((crt, key)) => Some((
            decode(crt.as_bytes(), encoding)?,
            decode(key.as_bytes(), encoding)?,
        )),
        None => None,
    };
    Ok(Contents {
        whole: decode(content.as_bytes(), encoding)?,
        split,
    })
}

/// Applies `objectEncoding` to a secret's (post-processing) content.
pub fn decode(content: &[u8], encoding: ObjectEncoding) -> Result<Vec<u8>, RenderError> {
    match encoding {
        ObjectEncoding::Utf8 => Ok(content.to_vec()),
        ObjectEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|e| match e {
                base64::DecodeError::InvalidByte(offset, _)
                | base64::DecodeError::InvalidLastSymbol(offset, _) => RenderError::Base64(offset),
                _ => RenderError::Base64Length,
            }),
        ObjectEncoding::Hex => hex::decode(content).map_err(|e| match e {
            hex::FromHexError::InvalidHexCharacter { index, .. } => RenderError::Hex(index),
            _ => RenderError::HexLength,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(decode(b"abc", ObjectEncoding::Utf8).unwrap(), b"abc");
        assert_eq!(
            decode(b"aGVsbG8=", ObjectEncoding::Base64).unwrap(),
            b"hello"
        );
        assert_eq!(
            decode(b"68656c6c6f", ObjectEncoding::Hex).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn decode_errors_do_not_quote_content() {
        let e = decode(b"ab$Zcd==", ObjectEncoding::Base64)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("offset 2") && !e.contains('$') && !e.contains("36"),
            "{e}"
        );
        let e = decode(b"aZ", ObjectEncoding::Hex).unwrap_err().to_string();
        assert!(e.contains("offset 1") && !e.contains('Z'), "{e}");
        assert!(matches!(
            decode(b"abc", ObjectEncoding::Hex),
            Err(RenderError::HexLength)
        ));
    }
}
