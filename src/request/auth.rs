//! Which identity a mount uses and the credential material it carries, decided exactly as the Go
//! provider's `buildAuthConfig`/`NewConfig` do (provider-behaviour §3.1), with its error texts
//! plus a sentence on what to fix; beyond it, certificate service principals and (opt-in) the
//! workload identity's client id from the pod's ServiceAccount.

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
    /// As [`AuthProblem::NoNodePublishSecret`], when the ServiceAccount lookup is enabled but
    /// could not apply.
    #[error("failed to get credentials, nodePublishSecretRef secret is not set: set clientID for workload identity, or reference a Secret with clientid and clientsecret in the volume's nodePublishSecretRef; the client id was not looked up in the pod's ServiceAccount (--client-id-from-service-account) because the driver sent no service-account token for {WORKLOAD_IDENTITY_AUDIENCE}: add it to spec.tokenRequests of the CSIDriver secrets-store.csi.k8s.io")]
    NoNodePublishSecretNorToken,
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
    #[error("the driver sent no valid ServiceAccount name ({0:?}) to look up the client id: the CSIDriver secrets-store.csi.k8s.io must set podInfoOnMount: true")]
    ServiceAccountName(String),
    #[error("ServiceAccount {namespace}/{name} has no azure.workload.identity/client-id annotation: annotate the ServiceAccount with azure.workload.identity/client-id or set clientID in the SecretProviderClass (or reference a service principal Secret in nodePublishSecretRef)")]
    ServiceAccountClientId { namespace: String, name: String },
    #[error("the {annotation} annotation of ServiceAccount {namespace}/{name} is not valid ({value:?}): use the identity's {what} GUID")]
    ServiceAccountAnnotation {
        namespace: String,
        name: String,
        annotation: &'static str,
        what: &'static str,
        value: String,
    },
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
    /// `csi.storage.k8s.io/serviceAccount.name`.
    pub service_account: &'a str,
    /// `--client-id-from-service-account`.
    pub client_id_from_service_account: bool,
}

/// The identity a mount uses.
#[derive(Debug)]
pub enum Decision {
    Credential(Credential),
    /// Workload identity whose client id the pod's ServiceAccount names (its
    /// `azure.workload.identity/client-id` annotation), to be read before the mount.
    FromServiceAccount {
        assertion: Secret,
        namespace: String,
        name: String,
    },
}

/// The node-publish secret's value for `wanted`, keys matched case-insensitively as upstream.
fn secret_value<'a>(
    secrets: Option<&'a BTreeMap<String, String>>,
    wanted: &str,
) -> Option<&'a str> {
    secrets?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(wanted))
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The workload-identity token when the client id is to come from the pod's ServiceAccount:
/// only with the flag, without a mode flag and `clientID` (which always win, as before), when
/// the node-publish secret carries no service principal key (which keeps service-principal SPCs
/// working unchanged, and their errors when a key is missing), and when the driver sent the
/// token the exchange needs (else the upstream error stands).
fn service_account_assertion(inputs: &AuthInputs) -> Option<Secret> {
    let service_principal = ["clientid", "clientsecret", "clientcertificate"]
        .iter()
        .any(|k| secret_value(inputs.secrets, k).is_some());
    if !inputs.client_id_from_service_account
        || inputs.mode != Mode::None
        || !inputs.client_id.is_empty()
        || service_principal
    {
        return None;
    }
    token_for(inputs.sa_tokens, WORKLOAD_IDENTITY_AUDIENCE).ok()
}

/// Whether the client id is to be read from the pod's ServiceAccount (then `tenantID` may come
/// from there too).
pub fn uses_service_account(inputs: &AuthInputs) -> bool {
    service_account_assertion(inputs).is_some()
}

/// Decides the credential, in the Go provider's order and with its texts.
pub fn credential(inputs: &AuthInputs) -> Result<Decision, AuthError> {
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
            return Ok(Decision::Credential(Credential::IdentityBinding {
                client_id: inputs.client_id.to_string(),
                assertion,
            }));
        }
        // Upstream demands the workload-identity token whenever clientID is set, even when a
        // mode flag then decides the credential; keep that so SPCs fail the same way.
        _ if !inputs.client_id.is_empty() => {
            let assertion = token_for(inputs.sa_tokens, WORKLOAD_IDENTITY_AUDIENCE)
                .map_err(|e| fail(AuthProblem::WorkloadIdentityToken(e)))?;
            if inputs.mode == Mode::None {
                return Ok(Decision::Credential(Credential::WorkloadIdentity {
                    client_id: inputs.client_id.to_string(),
                    assertion,
                }));
            }
        }
        _ => {}
    }
    if let Some(assertion) = service_account_assertion(inputs) {
        let (namespace, name) = (inputs.pod_namespace, inputs.service_account);
        if !is_dns_subdomain(name) || !is_dns_label(namespace) {
            return Err(fail(AuthProblem::ServiceAccountName(name.to_string())));
        }
        return Ok(Decision::FromServiceAccount {
            assertion,
            namespace: namespace.to_string(),
            name: name.to_string(),
        });
    }
    Ok(Decision::Credential(by_mode(inputs).map_err(fail)?))
}

/// The credential of a mode flag, or else of the node-publish secret.
fn by_mode(inputs: &AuthInputs) -> Result<Credential, AuthProblem> {
    match inputs.mode {
        Mode::PodIdentity => {
            if inputs.pod_namespace.is_empty() || inputs.pod_name.is_empty() {
                return Err(AuthProblem::NoPodInfo);
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
            if inputs.secrets.is_none() {
                return Err(match inputs.client_id_from_service_account {
                    true => AuthProblem::NoNodePublishSecretNorToken,
                    false => AuthProblem::NoNodePublishSecret,
                });
            }
            let find = |wanted| secret_value(inputs.secrets, wanted);
            let client_id = find("clientid").ok_or(AuthProblem::NoClientId)?.to_string();
            match (find("clientsecret"), find("clientcertificate")) {
                (Some(_), Some(_)) => Err(AuthProblem::SecretAndCertificate),
                (Some(secret), None) => Ok(Credential::ServicePrincipal {
                    client_id,
                    secret: Secret::new(secret),
                }),
                (None, Some(pem)) => Ok(Credential::ServicePrincipalCertificate {
                    client_id,
                    certificate: Arc::new(certificate(pem).map_err(AuthProblem::Certificate)?),
                }),
                (None, None) => Err(AuthProblem::NoClientSecret),
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

/// A Kubernetes namespace name (RFC 1123 label).
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A Kubernetes object name such as a ServiceAccount's (RFC 1123 subdomain).
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
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
            service_account: "app",
            client_id_from_service_account: false,
        }
    }

    /// The credential decided, when it is one.
    fn decided(inputs: &AuthInputs) -> Credential {
        match credential(inputs).unwrap() {
            Decision::Credential(c) => c,
            other => panic!("not a credential: {other:?}"),
        }
    }

    const WI: &str = r#"{"api://AzureADTokenExchange":{"token":"sa-jwt","expirationTimestamp":"2030-01-01T00:00:00Z"}}"#;

    #[test]
    fn workload_identity_wins_over_secrets() {
        let secrets = BTreeMap::from([
            ("clientid".into(), "x".into()),
            ("clientsecret".into(), "y".into()),
        ]);
        let c = decided(&inputs(Mode::None, "cid", WI, Some(&secrets)));
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
        let c = decided(&inputs(Mode::None, "", "", Some(&secrets)));
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
            decided(&i),
            Credential::VmManagedIdentity {
                client_id: Some("uami".into())
            }
        );
        let c = decided(&inputs(Mode::PodIdentity, "cid", WI, None));
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
    fn service_account_lookup_applies_only_where_nothing_else_names_the_identity() {
        let lookup = |mode, client_id, tokens, secrets| {
            let mut i = inputs(mode, client_id, tokens, secrets);
            i.client_id_from_service_account = true;
            credential(&i)
        };
        assert!(matches!(
            lookup(Mode::None, "", WI, None).unwrap(),
            Decision::FromServiceAccount { ref namespace, ref name, .. } if namespace == "ns" && name == "app"
        ));
        let token_only = BTreeMap::from([(
            "csi.storage.k8s.io/serviceAccount.tokens".into(),
            "{}".into(),
        )]);
        assert!(
            matches!(lookup(Mode::None, "", WI, Some(&token_only)).unwrap(), Decision::FromServiceAccount { .. }),
            "a secrets map without service principal keys (tokens in secrets, K8s 1.35) still looks up"
        );
        let sp = BTreeMap::from([
            ("ClientID".into(), "id".into()),
            ("clientsecret".into(), "pw".into()),
        ]);
        assert!(matches!(
            lookup(Mode::None, "", WI, Some(&sp)).unwrap(),
            Decision::Credential(Credential::ServicePrincipal { .. })
        ));
        let id_only = BTreeMap::from([("clientid".into(), "id".into())]);
        assert!(
            lookup(Mode::None, "", WI, Some(&id_only))
                .unwrap_err()
                .to_string()
                .contains("could not find clientsecret"),
            "a partial service principal keeps its error"
        );
        assert!(matches!(
            lookup(Mode::None, "cid", WI, None).unwrap(),
            Decision::Credential(Credential::WorkloadIdentity { .. })
        ));
        assert!(matches!(
            lookup(Mode::VmManagedIdentity, "", WI, None).unwrap(),
            Decision::Credential(Credential::VmManagedIdentity { .. })
        ));
        let e = lookup(Mode::None, "", "", None).unwrap_err().to_string();
        assert!(e.starts_with("failed to build auth config for mode None: failed to get credentials, nodePublishSecretRef secret is not set") && e.contains("sent no service-account token for api://AzureADTokenExchange"), "{e}");
        let mut bad = inputs(Mode::None, "", WI, None);
        bad.client_id_from_service_account = true;
        bad.service_account = "../x";
        assert!(credential(&bad)
            .unwrap_err()
            .to_string()
            .contains("no valid ServiceAccount name"));
    }

    #[test]
    fn kubernetes_names() {
        assert!(
            is_dns_label("kube-system")
                && !is_dns_label("-a")
                && !is_dns_label("A")
                && !is_dns_label("")
        );
        assert!(
            is_dns_subdomain("app.v1") && !is_dns_subdomain("a..b") && !is_dns_subdomain("a/b")
        );
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
