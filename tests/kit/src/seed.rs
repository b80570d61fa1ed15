//! Fixtures for the fakes, from YAML or built in code: tenants with their applications
//! (client secrets and federated credentials), and vaults with access policies and versioned
//! secrets, keys and certificates.
//!
//! ```yaml
//! tenants:
//!   - id: 72f988bf-86f1-41af-91ab-2d7cd011db47
//!     clients:
//!       - clientId: 11111111-1111-1111-1111-111111111111
//!         secret: sp-secret                     # client-credentials with a secret
//!         federated:                            # workload identity
//!           - subject: system:serviceaccount:default:demo
//!             # issuer defaults to the testkit issuer, audience to api://AzureADTokenExchange
//!         certificates: ["-----BEGIN CERTIFICATE-----..."]   # Certificates & secrets
//!         trustedCertificateSubjects:          # subject name and issuer authentication (x5c)
//!           - subjectName: app.example.test
//!             issuer: "-----BEGIN CERTIFICATE-----..."       # the CA trusted to issue it
//! serviceAccounts:                              # what the fake Kubernetes API serves
//!   - namespace: default
//!     name: app
//!     annotations: {azure.workload.identity/client-id: 11111111-1111-1111-1111-111111111111}
//! vaults:
//!   - name: kv-demo
//!     tenant: 72f988bf-86f1-41af-91ab-2d7cd011db47
//!     access:
//!       - clientId: 11111111-1111-1111-1111-111111111111
//!         secrets: [get, list]
//!         keys: [get]
//!         certificates: [get]
//!     secrets:
//!       - name: db-password
//!         versions:                             # oldest first; the last is the current one
//!           - value: old
//!           - value: hunter2
//!             contentType: text/plain
//!     keys:
//!       - name: signing
//!         versions:
//!           - jwk: {kty: EC, crv: P-256, x: "...", y: "..."}
//!     certificates:
//!       - name: web
//!         versions:
//!           - cer: "<base64 DER>"
//! ```
//! Versions get a deterministic 32-hex id and increasing creation times unless given.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    #[serde(default)]
    pub vaults: Vec<Vault>,
    /// The node's managed identities, served by the IMDS fake.
    #[serde(default)]
    pub imds: Option<Imds>,
    /// aad-pod-identity bindings, served by the NMI fake.
    #[serde(default)]
    pub nmi: Vec<NmiBinding>,
    /// ServiceAccounts, served by the Kubernetes API fake.
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccount>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAccount {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Imds {
    pub tenant: String,
    /// Client id of the system-assigned identity, if the VM has one.
    #[serde(default)]
    pub system_assigned: Option<String>,
    #[serde(default)]
    pub user_assigned: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NmiBinding {
    pub namespace: String,
    pub pod: String,
    pub client_id: String,
    pub tenant: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    pub id: String,
    #[serde(default)]
    pub clients: Vec<Client>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Client {
    pub client_id: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub federated: Vec<Federated>,
    /// PEM certificates registered on the application (client assertions signed with their key).
    #[serde(default)]
    pub certificates: Vec<String>,
    /// Subject name and issuer authentication: certificates presented in `x5c` with one of
    /// these subjects and issued (directly or through the chain) by the issuer.
    #[serde(default)]
    pub trusted_certificate_subjects: Vec<TrustedSubject>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustedSubject {
    pub subject_name: String,
    /// PEM of the CA certificate trusted to issue it.
    pub issuer: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Federated {
    pub subject: String,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vault {
    pub name: String,
    pub tenant: String,
    #[serde(default)]
    pub access: Vec<Access>,
    #[serde(default)]
    pub secrets: Vec<Object<SecretVersion>>,
    #[serde(default)]
    pub keys: Vec<Object<KeyVersion>>,
    #[serde(default)]
    pub certificates: Vec<Object<CertificateVersion>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Access {
    pub client_id: String,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub certificates: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Object<V> {
    pub name: String,
    pub versions: Vec<V>,
}

/// What every version has.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Meta {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub created: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretVersion {
    pub value: String,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(flatten)]
    pub meta: Meta,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyVersion {
    pub jwk: serde_json::Map<String, serde_json::Value>,
    #[serde(flatten)]
    pub meta: Meta,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateVersion {
    /// Base64 (standard) DER of the certificate.
    pub cer: String,
    /// The imported PKCS#12 (base64): Key Vault then serves it as the backing secret
    /// (`application/x-pkcs12`, with `kid`) and the certificate's public key as the key.
    #[serde(default)]
    pub pfx: Option<String>,
    /// The imported PEM (key and certificates), for `application/x-pem-file` certificates.
    #[serde(default)]
    pub pem: Option<String>,
    #[serde(flatten)]
    pub meta: Meta,
}

impl Seed {
    pub fn from_yaml(text: &str) -> Result<Seed, String> {
        yaml_serde::from_str(text).map_err(|e| e.to_string())
    }

    pub fn from_file(path: &std::path::Path) -> Result<Seed, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Seed::from_yaml(&text)
    }
}

/// The 32-hex version id of the `index`th version of `name`, when the seed gives none.
pub fn version_id(name: &str, index: usize) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{name}/{index}").as_bytes());
    hex::encode(&digest.as_ref()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shape() {
        let seed = Seed::from_yaml(
            r#"
tenants:
  - id: t1
    clients:
      - clientId: c1
        secret: s
        federated:
          - subject: system:serviceaccount:default:demo
vaults:
  - name: kv-demo
    tenant: t1
    access:
      - clientId: c1
        secrets: [get, list]
    secrets:
      - name: db-password
        versions:
          - value: old
            enabled: false
          - value: hunter2
            contentType: text/plain
            created: 1700000000
"#,
        )
        .unwrap();
        assert_eq!(
            seed.vaults[0].secrets[0].versions[1].meta.created,
            Some(1700000000)
        );
        assert_eq!(
            seed.vaults[0].secrets[0].versions[0].meta.enabled,
            Some(false)
        );
        assert_eq!(version_id("a", 0).len(), 32);
        assert!(Seed::from_yaml("vaults: [{name: x, tenant: t, bogus: 1}]").is_err());
    }
}
