//! Which identity a mount uses and the credential material it carries, decided exactly as the Go
//! provider's `buildAuthConfig`/`NewConfig` do (provider-behaviour §3.1), with its error texts
//! plus a sentence on what to fix.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;

use crate::secret::{describe_json_error, Secret};
use crate::spec::{CertificateError, ClientCertificate, Credential};

/// Audience of the service-account token exchanged for workload identity.
pub const WORKLOAD_IDENTITY_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Audience of the service-account token presented to the AKS identity-binding token proxy.
pub const IDENTITY_BINDING_AUDIENCE: &str = "api://AKSIdentityBinding";

/// The identity mode named by the SPC's boolean flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    None,
    PodIdentity,
    VmManagedIdentity,
    AzureTokenProxy,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::None => "None",
            Mode::PodIdentity => "PodIdentity",
            Mode::VmManagedIdentity => "VMManagedIdentity",
            Mode::AzureTokenProxy => "AzureTokenProxy",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("failed to build auth config for mode {mode}: {problem}", mode = .mode.as_str())]
pub struct AuthError {
    pub mode: Mode,
    pub problem: AuthProblem,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthProblem {
    #[error("clientID is required for identity binding")]
    ProxyClientIdMissing,
    #[error("service account tokens are required for identity binding: add audience {IDENTITY_BINDING_AUDIENCE} to spec.tokenRequests of the CSIDriver secrets-store.csi.k8s.io")]
    ProxyTokensMissing,
    #[error("failed to parse service account token for identity binding, error: {0}")]
    ProxyToken(TokenError),
    #[error("failed to parse workload identity tokens, error: {0}")]
    WorkloadIdentityToken(TokenError),
    #[error("failed to get credentials, nodePublishSecretRef secret is not set: set clientID for workload identity, or reference a Secret with clientid and clientsecret in the volume's nodePublishSecretRef")]
    NoNodePublishSecret,
    #[error(
        "could not find clientid in secrets: the nodePublishSecretRef Secret needs a clientid key"
    )]
    NoClientId,
    #[error("could not find clientsecret in secrets: the nodePublishSecretRef Secret needs a clientsecret key (or clientcertificate: a PEM certificate and its private key)")]
    NoClientSecret,
    #[error("the nodePublishSecretRef Secret has both clientsecret and clientcertificate: keep the one the service principal should use")]
    SecretAndCertificate,
    #[error("clientcertificate in the nodePublishSecretRef Secret {0}")]
    Certificate(CertificateError),
    #[error(
        "pod information is not available. deploy a CSIDriver object to set podInfoOnMount: true"
    )]
    NoPodInfo,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("service account tokens not found: the CSIDriver secrets-store.csi.k8s.io must list audience {0} in spec.tokenRequests")]
    NotFound(&'static str),
    #[error("failed to unmarshal service account tokens, error: {0}")]
    Json(String),
    #[error("token for audience {0} not found: add it to spec.tokenRequests of the CSIDriver secrets-store.csi.k8s.io")]
    Audience(&'static str),
}

#[derive(Deserialize)]
struct SaToken {
    #[serde(default)]
    token: String,
}

/// Picks the token for `audience` from the driver's `serviceAccount.tokens` JSON.
fn token_for(tokens: &str, audience: &'static str) -> Result<Secret, TokenError> {
    if tokens.is_empty() {
        return Err(TokenError::NotFound(audience));
    }
    let parsed: HashMap<String, SaToken> =
        serde_json::from_str(tokens).map_err(|e| TokenError::Json(describe_json_error(&e)))?;
    match parsed.get(audience) {
        Some(t) if !t.token.is_empty() => Ok(Secret::new(t.token.clone())),
        _ => Err(TokenError::Audience(audience)),
    }
}

/// Everything the identity decision reads from a mount request.
pub struct AuthInputs<'a> {
    pub mode: Mode,
    pub client_id: &'a str,
    pub user_assigned_identity_id: &'a str,
    pub sa_tokens: &'a str,
    pub secrets: Option<&'a BTreeMap<String, String>>,
    pub pod_namespace: &'a str,
    pub pod_name: &'a str,
}

/// Decides the credential, in the Go provider's order and with its texts.
pub fn credential(inputs: &AuthInputs) -> Result<Credential, AuthError> {
    let fail = |problem| AuthError {
        mode: inputs.mode,
        problem,
    };
    match inputs.mode {
        Mode::AzureTokenProxy => {
            if inputs.client_id.is_empty() {
                return Err(fail(AuthProblem::ProxyClientIdMissing));
            }
            if inputs.sa_tokens.is_empty() {
                return Err(fail(AuthProblem::ProxyTokensMissing));
            }
            let assertion = token_for(inputs.sa_tokens, IDENTITY_BINDING_AUDIENCE)
                .map_err(|e| fail(AuthProblem::ProxyToken(e)))?;
            return Ok(Credential::IdentityBinding {
                client_id: inputs.client_id.to_string(),
                assertion,
            });
        }
        // Upstream demands the workload-identity token whenever clientID is set, even when a
        // mode flag then decides the credential; keep that so SPCs fail the same way.
        _ if !inputs.client_id.is_empty() => {
            let assertion = token_for(inputs.sa_tokens, WORKLOAD_IDENTITY_AUDIENCE)
                .map_err(|e| fail(AuthProblem::WorkloadIdentityToken(e)))?;
            if inputs.mode == Mode::None {
                return Ok(Credential::WorkloadIdentity {
                    client_id: inputs.client_id.to_string(),
                    assertion,
                });
            }
        }
        _ => {}
    }
    match inputs.mode {
        Mode::PodIdentity => {
            if inputs.pod_namespace.is_empty() || inputs.pod_name.is_empty() {
                return Err(fail(AuthProblem::NoPodInfo));
            }
            Ok(Credential::PodIdentity {
                namespace: inputs.pod_namespace.to_string(),
                name: inputs.pod_name.to_string(),
            })
        }
        Mode::VmManagedIdentity => Ok(Credential::VmManagedIdentity {
            client_id: Some(inputs.user_assigned_identity_id)
                .filter(|id| !id.is_empty())
                .map(str::to_string),
        }),
        Mode::None | Mode::AzureTokenProxy => {
            let secrets = inputs
                .secrets
                .ok_or_else(|| fail(AuthProblem::NoNodePublishSecret))?;
            let find = |wanted: &str| {
                secrets
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(wanted))
                    .map(|(_, v)| v.trim())
                    .filter(|v| !v.is_empty())
            };
            let client_id = find("clientid")
                .ok_or_else(|| fail(AuthProblem::NoClientId))?
                .to_string();
            match (find("clientsecret"), find("clientcertificate")) {
                (Some(_), Some(_)) => Err(fail(AuthProblem::SecretAndCertificate)),
                (Some(secret), None) => Ok(Credential::ServicePrincipal {
                    client_id,
                    secret: Secret::new(secret),
                }),
                (None, Some(pem)) => Ok(Credential::ServicePrincipalCertificate {
                    client_id,
                    certificate: Arc::new(
                        certificate(pem).map_err(|e| fail(AuthProblem::Certificate(e)))?,
                    ),
                }),
                (None, None) => Err(fail(AuthProblem::NoClientSecret)),
            }
        }
    }
}

/// The certificate of a `clientcertificate`, valid now.
fn certificate(pem: &str) -> Result<ClientCertificate, CertificateError> {
    let certificate = ClientCertificate::from_pem(pem)?;
    certificate.check_validity(SystemTime::now())?;
    Ok(certificate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(
        mode: Mode,
        client_id: &'a str,
        tokens: &'a str,
        secrets: Option<&'a BTreeMap<String, String>>,
    ) -> AuthInputs<'a> {
        AuthInputs {
            mode,
            client_id,
            user_assigned_identity_id: "",
            sa_tokens: tokens,
            secrets,
            pod_namespace: "ns",
            pod_name: "pod",
        }
    }

    const WI: &str = r#"{"api://AzureADTokenExchange":{"token":"sa-jwt","expirationTimestamp":"2030-01-01T00:00:00Z"}}"#;

    #[test]
    fn workload_identity_wins_over_secrets() {
        let secrets = BTreeMap::from([
            ("clientid".into(), "x".into()),
            ("clientsecret".into(), "y".into()),
        ]);
        let c = credential(&inputs(Mode::None, "cid", WI, Some(&secrets))).unwrap();
        assert!(
            matches!(c, Credential::WorkloadIdentity { ref client_id, ref assertion } if client_id == "cid" && assertion.expose() == "sa-jwt")
        );
    }

    #[test]
    fn service_principal_keys_are_case_insensitive() {
        let secrets = BTreeMap::from([
            ("ClientID".into(), "id".into()),
            ("CLIENTSECRET".into(), "pw".into()),
        ]);
        let c = credential(&inputs(Mode::None, "", "", Some(&secrets))).unwrap();
        assert!(
            matches!(c, Credential::ServicePrincipal { ref client_id, .. } if client_id == "id")
        );
    }

    #[test]
    fn error_texts() {
        let e = |i: AuthInputs| credential(&i).unwrap_err().to_string();
        assert!(e(inputs(Mode::None, "", "", None)).starts_with("failed to build auth config for mode None: failed to get credentials, nodePublishSecretRef secret is not set"));
        let empty = BTreeMap::new();
        assert!(e(inputs(Mode::None, "", "", Some(&empty))).starts_with(
            "failed to build auth config for mode None: could not find clientid in secrets"
        ));
        let id_only = BTreeMap::from([("clientid".into(), "x".into())]);
        assert!(e(inputs(Mode::None, "", "", Some(&id_only)))
            .contains("could not find clientsecret in secrets"));
        assert!(e(inputs(Mode::None, "cid", "", None)).starts_with("failed to build auth config for mode None: failed to parse workload identity tokens, error: service account tokens not found"));
        assert!(e(inputs(Mode::None, "cid", "{", None))
            .contains("failed to unmarshal service account tokens, error: "));
        assert!(e(inputs(
            Mode::None,
            "cid",
            r#"{"other":{"token":"t"}}"#,
            None
        ))
        .contains("token for audience api://AzureADTokenExchange not found"));
        assert!(e(inputs(Mode::AzureTokenProxy, "", WI, None))
            .ends_with("AzureTokenProxy: clientID is required for identity binding"));
        assert!(e(inputs(Mode::AzureTokenProxy, "cid", "", None))
            .contains("service account tokens are required for identity binding"));
        assert!(e(inputs(Mode::AzureTokenProxy, "cid", WI, None)).contains("failed to parse service account token for identity binding, error: token for audience api://AKSIdentityBinding not found"));
        assert!(e(inputs(Mode::PodIdentity, "cid", "", None)).starts_with("failed to build auth config for mode PodIdentity: failed to parse workload identity tokens"));
    }

    #[test]
    fn mode_flags_pick_their_credential() {
        let mut i = inputs(Mode::VmManagedIdentity, "", "", None);
        i.user_assigned_identity_id = "uami";
        assert_eq!(
            credential(&i).unwrap(),
            Credential::VmManagedIdentity {
                client_id: Some("uami".into())
            }
        );
        let c = credential(&inputs(Mode::PodIdentity, "cid", WI, None)).unwrap();
        assert!(matches!(c, Credential::PodIdentity { .. }));
    }

    #[test]
    fn service_principal_with_both_or_a_bad_certificate() {
        let both = BTreeMap::from([
            ("clientid".into(), "id".into()),
            ("clientsecret".into(), "pw".into()),
            ("ClientCertificate".into(), "pem".into()),
        ]);
        let e = credential(&inputs(Mode::None, "", "", Some(&both))).unwrap_err();
        assert!(
            e.to_string()
                .contains("both clientsecret and clientcertificate"),
            "{e}"
        );
        let bad = BTreeMap::from([
            ("clientid".into(), "id".into()),
            ("clientcertificate".into(), "not pem".into()),
        ]);
        let e = credential(&inputs(Mode::None, "", "", Some(&bad))).unwrap_err();
        assert!(e.to_string().starts_with("failed to build auth config for mode None: clientcertificate in the nodePublishSecretRef Secret is not valid PEM (no PEM block found)"), "{e}");
    }

    #[test]
    fn malformed_tokens_do_not_echo_values() {
        let e = credential(&inputs(
            Mode::None,
            "cid",
            r#"{"api://AzureADTokenExchange":{"token":12345678}}"#,
            None,
        ))
        .unwrap_err()
        .to_string();
        assert!(!e.contains("12345678"), "{e}");
    }
}
