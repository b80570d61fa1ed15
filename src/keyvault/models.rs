//! Key Vault's JSON bodies (api-version 7.x): secret, key and certificate bundles, version
//! listings and error responses, reduced to what rendering needs.

use serde::Deserialize;

use crate::secret::Secret;

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
pub(super) struct RawSecret {
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
pub(super) struct RawKey {
    pub key: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A certificate's DER (`cer`), leaf only.
pub struct CertificateBundle {
    pub cer: Vec<u8>,
    pub version: String,
}

#[derive(Deserialize)]
pub(super) struct RawCertificate {
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
pub(super) struct RawVersions {
    #[serde(default)]
    pub value: Vec<RawVersionItem>,
    #[serde(rename = "nextLink")]
    pub next_link: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawVersionItem {
    pub id: Option<String>,
    pub kid: Option<String>,
    pub attributes: Option<Attributes>,
}

/// `{"error":{"code":…,"message":…,"innererror":{"code":…}}}`.
#[derive(Deserialize, Default)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub error: ErrorDetail,
}

#[derive(Deserialize, Default)]
pub(super) struct ErrorDetail {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    pub innererror: Option<Box<ErrorDetail>>,
}

impl ErrorDetail {
    /// The most specific code: the innermost `innererror.code`, else `code`.
    pub fn specific_code(&self) -> &str {
        match &self.innererror {
            Some(inner) if !inner.specific_code().is_empty() => inner.specific_code(),
            _ => &self.code,
        }
    }
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

    #[test]
    fn innermost_error_code() {
        let body: ErrorBody = serde_json::from_str(r#"{"error":{"code":"Forbidden","message":"m","innererror":{"code":"SecretDisabled"}}}"#).unwrap();
        assert_eq!(body.error.specific_code(), "SecretDisabled");
    }
}
