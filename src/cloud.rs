//! Azure cloud environments: which Entra ID authority, Key Vault DNS suffix and Key Vault resource
//! a mount talks to.
//!
//! Selected per mount from the SPC's `cloudName` (default `--cloud-name`), with the same names
//! and aliases go-autorest accepts. `AzureStackCloud` reads a JSON environment file named by the
//! SPC's `cloudEnvFileName` (or the process's `AZURE_ENVIRONMENT_FILEPATH`). Unlike the Go
//! provider, nothing here touches process-global state, so concurrent mounts with different
//! clouds cannot race.

use std::path::Path;

use serde::Deserialize;
use url::Url;

/// The endpoints of one Azure cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// Canonical name, e.g. `AzurePublicCloud`.
    pub name: String,
    /// Entra ID authority host, always ending in `/`, e.g. `https://login.microsoftonline.com/`.
    pub authority_host: Url,
    /// Key Vault resource without trailing slash, e.g. `https://vault.azure.net`; NMI and IMDS
    /// ask for tokens for this resource.
    pub key_vault_resource: String,
    /// Vault host suffix, e.g. `vault.azure.net`.
    pub key_vault_dns_suffix: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("cloudName {name} is not valid, error: autorest/azure: There is no cloud environment matching the name \"{upper}\"", upper = name.to_uppercase())]
    UnknownName { name: String },
    #[error("cloudName AzureStackCloud is not valid, error: no cloud environment file: set the cloudEnvFileName parameter to the path of the environment JSON file inside the provider container")]
    NoEnvFile,
    #[error("cloudName AzureStackCloud is not valid, error: open {path}: {}", crate::go::io_error_text(.source))]
    ReadEnvFile {
        path: String,
        source: std::io::Error,
    },
    #[error("cloudName AzureStackCloud is not valid, error: cloud environment file {path} is not valid JSON: {source}")]
    ParseEnvFile {
        path: String,
        source: serde_json::Error,
    },
    #[error("cloudName AzureStackCloud is not valid, error: cloud environment file {path}: {field} {problem}")]
    BadEnvField {
        path: String,
        field: &'static str,
        problem: String,
    },
}

/// A cloud named by the SPC or the `--cloud-name` flag, before any file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudName {
    Known(Cloud),
    /// `AzureStackCloud`: the endpoints come from a JSON environment file.
    Custom,
}

impl CloudName {
    /// Looks a cloud name up case-insensitively, with go-autorest's aliases.
    pub fn parse(name: &str) -> Result<CloudName, CloudError> {
        let known = |name: &str, login: &str, vault: &str| {
            CloudName::Known(Cloud {
                name: name.to_string(),
                authority_host: Url::parse(login).expect("static URL"),
                key_vault_resource: format!("https://{vault}"),
                key_vault_dns_suffix: vault.to_string(),
            })
        };
        Ok(match name.to_ascii_uppercase().as_str() {
            "AZUREPUBLICCLOUD" | "AZURECLOUD" => known(
                "AzurePublicCloud",
                "https://login.microsoftonline.com/",
                "vault.azure.net",
            ),
            "AZUREUSGOVERNMENTCLOUD" | "AZUREUSGOVERNMENT" => known(
                "AzureUSGovernmentCloud",
                "https://login.microsoftonline.us/",
                "vault.usgovcloudapi.net",
            ),
            "AZURECHINACLOUD" => known(
                "AzureChinaCloud",
                "https://login.chinacloudapi.cn/",
                "vault.azure.cn",
            ),
            "AZUREGERMANCLOUD" => known(
                "AzureGermanCloud",
                "https://login.microsoftonline.de/",
                "vault.microsoftazure.de",
            ),
            "AZURESTACKCLOUD" => CloudName::Custom,
            _ => {
                return Err(CloudError::UnknownName {
                    name: name.to_string(),
                })
            }
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvFile {
    #[serde(default)]
    name: String,
    #[serde(default)]
    active_directory_endpoint: String,
    #[serde(default)]
    key_vault_endpoint: String,
    #[serde(rename = "keyVaultDNSSuffix", default)]
    key_vault_dns_suffix: String,
}

/// Upper bound for an environment file; real ones are well under 4 KiB.
const MAX_ENV_FILE: u64 = 64 * 1024;

/// Reads an AzureStackCloud environment file (go-autorest's JSON format; unknown fields ignored).
pub async fn load_env_file(path: &Path) -> Result<Cloud, CloudError> {
    let shown = path.display().to_string();
    let read = async {
        let meta = tokio::fs::metadata(path).await?;
        if meta.len() > MAX_ENV_FILE {
            return Err(std::io::Error::other(format!(
                "file is larger than {MAX_ENV_FILE} bytes"
            )));
        }
        tokio::fs::read(path).await
    };
    let bytes = read.await.map_err(|source| CloudError::ReadEnvFile {
        path: shown.clone(),
        source,
    })?;
    parse_env_file(&shown, &bytes)
}

/// Parses the JSON of an environment file; `path` is only used in messages.
pub fn parse_env_file(path: &str, bytes: &[u8]) -> Result<Cloud, CloudError> {
    let env: EnvFile =
        serde_json::from_slice(bytes).map_err(|source| CloudError::ParseEnvFile {
            path: path.to_string(),
            source,
        })?;
    let bad = |field, problem: &str| CloudError::BadEnvField {
        path: path.to_string(),
        field,
        problem: problem.to_string(),
    };
    let mut authority = Url::parse(&env.active_directory_endpoint)
        .map_err(|e| bad("activeDirectoryEndpoint", &format!("is not a URL: {e}")))?;
    if authority.scheme() != "https" {
        return Err(bad("activeDirectoryEndpoint", "must be an https URL"));
    }
    if !authority.path().ends_with('/') {
        let path = format!("{}/", authority.path());
        authority.set_path(&path);
    }
    let kv_endpoint = Url::parse(&env.key_vault_endpoint)
        .map_err(|e| bad("keyVaultEndpoint", &format!("is not a URL: {e}")))?;
    if kv_endpoint.scheme() != "https" {
        return Err(bad("keyVaultEndpoint", "must be an https URL"));
    }
    let suffix = env
        .key_vault_dns_suffix
        .trim()
        .trim_matches('.')
        .to_ascii_lowercase();
    if suffix.is_empty() || !suffix.split('.').all(is_dns_label) {
        return Err(bad(
            "keyVaultDNSSuffix",
            "must be a DNS name such as vault.azure.net",
        ));
    }
    Ok(Cloud {
        name: if env.name.is_empty() {
            "AzureStackCloud".to_string()
        } else {
            env.name
        },
        authority_host: authority,
        key_vault_resource: kv_endpoint.as_str().trim_end_matches('/').to_string(),
        key_vault_dns_suffix: suffix,
    })
}

fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        for (name, suffix) in [
            ("AzurePublicCloud", "vault.azure.net"),
            ("azurecloud", "vault.azure.net"),
            ("AzureUSGovernment", "vault.usgovcloudapi.net"),
            ("AZUREUSGOVERNMENTCLOUD", "vault.usgovcloudapi.net"),
            ("AzureChinaCloud", "vault.azure.cn"),
            ("AzureGermanCloud", "vault.microsoftazure.de"),
        ] {
            match CloudName::parse(name).unwrap() {
                CloudName::Known(c) => assert_eq!(c.key_vault_dns_suffix, suffix),
                CloudName::Custom => panic!("{name} is not custom"),
            }
        }
        assert_eq!(
            CloudName::parse("azurestackcloud").unwrap(),
            CloudName::Custom
        );
    }

    #[test]
    fn unknown_name_uses_autorest_text() {
        let err = CloudName::parse("Mars").unwrap_err().to_string();
        assert_eq!(err, "cloudName Mars is not valid, error: autorest/azure: There is no cloud environment matching the name \"MARS\"");
    }

    #[test]
    fn env_file_fields() {
        let cloud = parse_env_file(
            "env.json",
            br#"{"name":"AzureStackCloud","activeDirectoryEndpoint":"https://login.example.test","keyVaultEndpoint":"https://vault.example.test/","keyVaultDNSSuffix":"vault.example.test","other":1}"#,
        )
        .unwrap();
        assert_eq!(cloud.authority_host.as_str(), "https://login.example.test/");
        assert_eq!(cloud.key_vault_resource, "https://vault.example.test");
        assert_eq!(cloud.key_vault_dns_suffix, "vault.example.test");
    }

    #[test]
    fn env_file_rejects_plain_http_and_bad_suffix() {
        let http = parse_env_file("e", br#"{"activeDirectoryEndpoint":"http://x/","keyVaultEndpoint":"https://v/","keyVaultDNSSuffix":"v"}"#);
        assert!(http
            .unwrap_err()
            .to_string()
            .contains("activeDirectoryEndpoint must be an https URL"));
        let suffix = parse_env_file("e", br#"{"activeDirectoryEndpoint":"https://x/","keyVaultEndpoint":"https://v/","keyVaultDNSSuffix":"a/b"}"#);
        assert!(suffix
            .unwrap_err()
            .to_string()
            .contains("keyVaultDNSSuffix"));
    }
}
