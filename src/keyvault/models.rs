//! Key Vault's JSON bodies (api-version 7.x): secret, key and certificate bundles, version
//! listings and error responses, reduced to what rendering needs.

use serde::Deserialize;

use crate::secret::{describe_json_error, Secret};

/// Why a 2xx body is not what Key Vault sends; never quotes the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    Json(String),
    #[error("has no {0}")]
    Missing(&'static str),
    #[error("has {0} without a version")]
    NoVersion(&'static str),
    #[error("has a cer that is not base64")]
    CerBase64,
}

/// One object version as fetched.
pub enum Object {
    Secret(SecretBundle),
    Key(KeyBundle),
    Cert(CertificateBundle),
}

impl Object {
    pub fn version(&self) -> &str {
        match self {
            Object::Secret(s) => &s.version,
            Object::Key(k) => &k.version,
            Object::Cert(c) => &c.version,
        }
    }

    /// Roughly the memory it holds, for cache bounds.
    pub fn weight(&self) -> usize {
        256 + match self {
            Object::Secret(s) => s.value.expose().len(),
            Object::Key(k) => k
                .jwk
                .values()
                .map(|v| v.as_str().map_or(16, str::len))
                .sum(),
            Object::Cert(c) => c.cer.len(),
        }
    }
}

#[derive(Deserialize, Default, Debug)]
pub struct Attributes {
    pub enabled: Option<bool>,
    pub created: Option<i64>,
}

/// A secret as Key Vault returns it. Certificate-backed secrets carry `kid` and a content type.
pub struct SecretBundle {
    pub value: Secret,
    pub version: String,
    pub content_type: Option<String>,
    pub kid: Option<String>,
}

#[derive(Deserialize)]
struct RawSecret {
    pub value: Option<String>,
    pub id: Option<String>,
    #[serde(rename = "contentType")]
    pub content_type: Option<String>,
    pub kid: Option<String>,
}

/// A key's public part as a JWK (Key Vault never returns private key material here).
pub struct KeyBundle {
    pub jwk: serde_json::Map<String, serde_json::Value>,
    pub version: String,
}

#[derive(Deserialize)]
struct RawKey {
    pub key: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A certificate's DER (`cer`), leaf only.
pub struct CertificateBundle {
    pub cer: Vec<u8>,
    pub version: String,
}

#[derive(Deserialize)]
struct RawCertificate {
    pub id: Option<String>,
    pub cer: Option<String>,
}

/// One entry of a `/versions` listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionItem {
    pub version: String,
    pub enabled: bool,
    /// Seconds since the epoch; 0 when Key Vault omitted it (sorted last, as upstream).
    pub created: i64,
}

#[derive(Deserialize)]
struct RawVersions {
    #[serde(default)]
    pub value: Vec<RawVersionItem>,
    #[serde(rename = "nextLink")]
    pub next_link: Option<String>,
}

#[derive(Deserialize)]
struct RawVersionItem {
    pub id: Option<String>,
    pub kid: Option<String>,
    pub attributes: Option<Attributes>,
}

/// Reads a secret bundle.
pub fn parse_secret(body: &[u8]) -> Result<SecretBundle, BodyError> {
    let raw: RawSecret = serde_json::from_slice(body).map_err(|e| json(&e))?;
    let id = raw.id.ok_or(BodyError::Missing("id"))?;
    Ok(SecretBundle {
        value: Secret::new(raw.value.ok_or(BodyError::Missing("value"))?),
        version: version_of(&id).ok_or(BodyError::NoVersion("an id"))?,
        content_type: raw.content_type,
        kid: raw.kid.filter(|k| !k.is_empty()),
    })
}

/// Reads a key bundle.
pub fn parse_key(body: &[u8]) -> Result<KeyBundle, BodyError> {
    let raw: RawKey = serde_json::from_slice(body).map_err(|e| json(&e))?;
    let jwk = raw.key.ok_or(BodyError::Missing("key"))?;
    let kid = jwk
        .get("kid")
        .and_then(|v| v.as_str())
        .ok_or(BodyError::Missing("kid"))?;
    Ok(KeyBundle {
        version: version_of(kid).ok_or(BodyError::NoVersion("a kid"))?,
        jwk,
    })
}

/// Reads a certificate bundle.
pub fn parse_certificate(body: &[u8]) -> Result<CertificateBundle, BodyError> {
    use base64::Engine;
    let raw: RawCertificate = serde_json::from_slice(body).map_err(|e| json(&e))?;
    let id = raw.id.ok_or(BodyError::Missing("id"))?;
    let cer = raw.cer.ok_or(BodyError::Missing("cer"))?;
    Ok(CertificateBundle {
        cer: base64::engine::general_purpose::STANDARD
            .decode(cer)
            .map_err(|_| BodyError::CerBase64)?,
        version: version_of(&id).ok_or(BodyError::NoVersion("an id"))?,
    })
}

/// One page of a version listing.
pub struct VersionPage {
    pub items: Vec<VersionItem>,
    pub next_link: Option<String>,
}

/// Reads one page of a `/versions` listing; entries without a usable id are skipped.
pub fn parse_versions(body: &[u8]) -> Result<VersionPage, BodyError> {
    let raw: RawVersions = serde_json::from_slice(body).map_err(|e| json(&e))?;
    let items = raw
        .value
        .into_iter()
        .filter_map(|item| {
            let version = version_of(item.id.as_deref().or(item.kid.as_deref())?)?;
            let attrs = item.attributes.unwrap_or_default();
            Some(VersionItem {
                version,
                enabled: attrs.enabled.unwrap_or(false),
                created: attrs.created.unwrap_or(0),
            })
        })
        .collect();
    Ok(VersionPage {
        items,
        next_link: raw.next_link.filter(|l| !l.is_empty()),
    })
}

fn json(e: &serde_json::Error) -> BodyError {
    BodyError::Json(describe_json_error(e))
}

/// The version segment of an object id `https://<vault>/<collection>/<name>/<version>`.
pub fn version_of(id: &str) -> Option<String> {
    let path = url::Url::parse(id).ok()?.path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [_, _, version] if !version.is_empty() => Some(version.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_ids() {
        assert_eq!(
            version_of("https://kv.vault.azure.net/secrets/s1/4387e9f3d6e14c459867679a90fd0f79")
                .as_deref(),
            Some("4387e9f3d6e14c459867679a90fd0f79")
        );
        assert_eq!(version_of("https://kv.vault.azure.net/secrets/s1"), None);
        assert_eq!(version_of("not a url"), None);
    }
}
