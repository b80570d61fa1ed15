//! Turns fetched Key Vault objects into the files of a MountResponse: secret encodings,
//! certificate-backed secrets (PFX → PEM with chain ordering, PEM passthrough, raw PFX), keys as
//! PKIX public-key PEM, certificates as PEM, the optional split `.crt`/`.key` files, and the
//! values `jsonPaths` select from a JSON secret.

pub mod chain;
pub mod jwk;
mod pem;
pub mod pfx;

use base64::Engine;

pub use chain::ChainError;
pub use jwk::JwkError;
pub use pfx::PfxError;

use crate::keyvault::{CertificateBundle, KeyBundle, SecretBundle};
use crate::request::json_path::{self, SelectError};
use crate::request::{ObjectEncoding, ObjectFormat, ObjectSpec};

/// Flags that change how objects are written.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// `--construct-pem-chain`: order PFX certificates leaf → intermediates → root.
    pub construct_pem_chain: bool,
    /// `--write-cert-and-key-in-separate-files`: also write `<file>.crt` and `<file>.key`.
    pub separate_cert_and_key: bool,
}

/// One object version as fetched.
pub enum Fetched {
    Secret(SecretBundle),
    Key(KeyBundle),
    Cert(CertificateBundle),
}

impl Fetched {
    pub fn version(&self) -> &str {
        match self {
            Fetched::Secret(s) => &s.version,
            Fetched::Key(k) => &k.version,
            Fetched::Cert(c) => &c.version,
        }
    }
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
    #[error("jsonPaths path \"{path}\" selects nothing: {problem}")]
    JsonPath { path: String, problem: SelectError },
}

/// Where and how one object (or one version of it) is written.
pub struct Target<'a> {
    pub object: &'a ObjectSpec,
    pub path: String,
    pub uid: String,
    pub mode: u32,
    /// Position in the `objectVersionHistory` layout, if the object uses it.
    pub history: Option<usize>,
}

/// Renders one fetched object into its files, extra files first as upstream orders them.
pub fn render(
    target: &Target,
    fetched: &Fetched,
    options: RenderOptions,
) -> Result<Vec<RenderedFile>, RenderError> {
    let file = |path: String, contents: Vec<u8>| RenderedFile {
        path,
        mode: target.mode,
        contents,
        uid: target.uid.clone(),
        version: fetched.version().to_string(),
    };
    match fetched {
        Fetched::Secret(secret) => {
            let files = secret_files(target, secret, options)?;
            // The main file comes last; its content is what the pod would read.
            let (_, content) = files.last().expect("a secret always has its main file");
            let selected = match target.object.json.is_empty() {
                true => Vec::new(),
                false => json_files(target, content)?,
            };
            let mut out = Vec::new();
            if target.object.writes_whole() {
                out.extend(
                    files.into_iter().map(|(suffix, contents)| {
                        file(format!("{}{suffix}", target.path), contents)
                    }),
                );
            }
            out.extend(
                selected
                    .into_iter()
                    .map(|(path, mode, contents)| RenderedFile {
                        uid: format!("{}/jsonPaths/{path}", target.object.uid()),
                        mode,
                        ..file(path, contents)
                    }),
            );
            Ok(out)
        }
        Fetched::Key(key) => Ok(vec![file(
            target.path.clone(),
            jwk::public_key_pem(&key.jwk)?.into_bytes(),
        )]),
        Fetched::Cert(cert) => {
            if cert.cer.is_empty() {
                return Err(RenderError::EmptyCertificate);
            }
            Ok(vec![file(
                target.path.clone(),
                pem::encode("CERTIFICATE", &cert.cer).into_bytes(),
            )])
        }
    }
}

/// The files `jsonPaths` select from a secret's content, as (path, mode, contents): strings raw,
/// any other value as compact JSON; the mode is the entry's own, else the object's.
fn json_files(target: &Target, content: &[u8]) -> Result<Vec<(String, u32, Vec<u8>)>, RenderError> {
    let doc: &serde_json::value::RawValue = serde_json::from_slice(content)
        .map_err(|e| RenderError::NotJson(crate::request::json_error(&e)))?;
    target
        .object
        .json
        .iter()
        .map(|selection| {
            let value = selection
                .path
                .select(doc)
                .map_err(|problem| RenderError::JsonPath {
                    path: selection.path.as_str().to_string(),
                    problem,
                })?;
            let contents = json_path::file_contents(value);
            let path = match target.history {
                Some(i) => format!("{}/{i}", selection.file_name),
                None => selection.file_name.clone(),
            };
            Ok((path, selection.file_mode.unwrap_or(target.mode), contents))
        })
        .collect()
}

const PKCS12: &str = "application/x-pkcs12";
const PEM_FILE: &str = "application/x-pem-file";

/// A secret's files as (path suffix, contents): with `--write-cert-and-key-in-separate-files`,
/// certificate-backed secrets get `.crt` and `.key` first, as upstream orders them.
fn secret_files(
    target: &Target,
    secret: &SecretBundle,
    options: RenderOptions,
) -> Result<Vec<(&'static str, Vec<u8>)>, RenderError> {
    let value = secret.value.expose();
    let encoding = target.object.encoding;
    if secret.kid.is_none() {
        return Ok(vec![("", decode(value.as_bytes(), encoding)?)]);
    }
    // Certificate-backed (Key Vault created this secret for a certificate).
    let (content, split) = match secret.content_type.as_deref() {
        None => return Err(RenderError::NoContentType),
        Some(PEM_FILE) => (
            value.to_string(),
            options.separate_cert_and_key.then(|| pfx::split_pem(value)),
        ),
        Some(PKCS12) if target.object.format == ObjectFormat::Pfx => {
            // The raw PFX (base64 text; binary with objectEncoding base64). The split files are
            // derived from it; upstream wrote them empty.
            let split = match options.separate_cert_and_key {
                true => {
                    let decoded = pfx::decode(value, options.construct_pem_chain)?;
                    Some((decoded.certs_pem(), decoded.keys_pem()))
                }
                false => None,
            };
            let main = decode(value.as_bytes(), encoding)?;
            let mut files = Vec::new();
            if let Some((crt, key)) = split {
                files.push((".crt", crt.into_bytes()));
                files.push((".key", key.into_bytes()));
            }
            files.push(("", main));
            return Ok(files);
        }
        Some(PKCS12) => {
            let decoded = pfx::decode(value, options.construct_pem_chain)?;
            if decoded.order == chain::Order::Incomplete {
                tracing::warn!(object = %target.object.name, "certificate chain is not complete due to missing intermediate/root certificates in the cert from key vault");
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
    let mut files = Vec::new();
    if let Some((crt, key)) = split {
        files.push((".crt", decode(crt.as_bytes(), encoding)?));
        files.push((".key", decode(key.as_bytes(), encoding)?));
    }
    files.push(("", decode(content.as_bytes(), encoding)?));
    Ok(files)
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
