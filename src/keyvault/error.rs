//! Key Vault's failures worded for the person who owns the SecretProviderClass: which object,
//! which vault, and what to change.

use serde::Deserialize;

use super::challenge::ChallengeError;
use super::{noun, Authenticator, ObjectRef};
use crate::http::Answer;
use crate::identity::IdentityError;
use crate::spec::ObjectType;

/// Why a Key Vault call failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("{kind} {name} was not found in key vault {vault} ({status} {code}): check objectName, objectVersion and keyvaultName")]
    NotFound {
        kind: &'static str,
        name: String,
        vault: String,
        status: u16,
        code: String,
    },
    #[error("{kind} {name} is disabled in key vault {vault} (403 {code}): enable it, or pin objectVersion to an enabled version")]
    Disabled {
        kind: &'static str,
        name: String,
        vault: String,
        code: String,
    },
    #[error(transparent)]
    Forbidden(Box<Forbidden>),
    #[error("key vault {vault} rejected the access token (401): {message}: check that tenantID is the tenant of the vault")]
    TokenRejected { vault: String, message: String },
    #[error("key vault {vault} is throttling requests (429) and retries within the mount deadline did not succeed: {message}")]
    Throttled { vault: String, message: String },
    #[error("key vault {vault} answered {status} {code}: {message}")]
    Status {
        vault: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("failed to reach key vault {vault} at {host}: {detail} (check keyvaultName, cloudName and the node's network access to the vault)")]
    Transport {
        vault: String,
        host: String,
        detail: String,
    },
    #[error("key vault {vault} sent an unusable response: {problem}")]
    BadResponse { vault: String, problem: String },
    #[error(transparent)]
    Challenge(#[from] ChallengeError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Config(String),
}

/// Key Vault refused the identity: what it said and the permission to grant.
#[derive(Debug, thiserror::Error)]
#[error("access denied by key vault {vault} (403 {code}): {message}: grant {identity} the \"{permission}\" permission on {kind}s (Azure RBAC role \"Key Vault {role} User\", or an access policy)")]
pub struct Forbidden {
    pub vault: String,
    pub code: String,
    pub message: String,
    pub identity: String,
    pub permission: &'static str,
    pub kind: &'static str,
    pub role: &'static str,
}

/// `{"error":{"code":…,"message":…,"innererror":{"code":…}}}`.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorDetail,
}

#[derive(Deserialize, Default)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    innererror: Option<Box<ErrorDetail>>,
}

impl ErrorDetail {
    /// The most specific code: the innermost `innererror.code`, else `code`.
    fn specific_code(&self) -> &str {
        match &self.innererror {
            Some(inner) if !inner.specific_code().is_empty() => inner.specific_code(),
            _ => &self.code,
        }
    }
}

fn error_message(body: &[u8]) -> String {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let message: String = parsed.error.message.chars().take(400).collect();
    if message.is_empty() {
        "no error message".into()
    } else {
        message
    }
}

impl KvError {
    /// Whether Key Vault failed rather than refused: throttling that outlasted the retries, a
    /// server error, a timeout or a transport error. Only these may be bridged with a stale
    /// copy; a refusal (401, 403, 404, a disabled object) never is.
    pub fn is_outage(&self) -> bool {
        match self {
            KvError::Throttled { .. } | KvError::Transport { .. } => true,
            KvError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }

    pub(super) fn bad_response(object: &ObjectRef, problem: String) -> KvError {
        KvError::BadResponse {
            vault: object.vault.name.clone(),
            problem,
        }
    }

    pub(super) fn token_rejected(object: &ObjectRef, body: &[u8]) -> KvError {
        KvError::TokenRejected {
            vault: object.vault.name.clone(),
            message: error_message(body),
        }
    }

    /// A final non-2xx, non-401 answer; `permission` is what the request needed.
    pub(super) fn from_status(
        object: &ObjectRef,
        permission: &'static str,
        answer: &Answer,
        auth: &impl Authenticator,
    ) -> KvError {
        let parsed: ErrorBody = serde_json::from_slice(&answer.body).unwrap_or_default();
        let code = parsed.error.specific_code().to_string();
        let or = |code: String, default: &str| match code.is_empty() {
            true => default.to_string(),
            false => code,
        };
        let message = error_message(&answer.body);
        let (vault, kind, name) = (object.vault.name.clone(), noun(object.kind), &object.name);
        match answer.status {
            // A vault that does not exist is a configuration error, not a missing object (an
            // `optional` object must not hide it).
            404 if code != "VaultNotFound" => KvError::NotFound {
                kind,
                name: name.clone(),
                vault,
                status: 404,
                code: or(code, "NotFound"),
            },
            403 if code.ends_with("Disabled") => KvError::Disabled {
                kind,
                name: name.clone(),
                vault,
                code,
            },
            403 => KvError::Forbidden(Box::new(Forbidden {
                vault,
                code: or(code, "Forbidden"),
                message,
                identity: match auth.client_id() {
                    Some(id) => format!("the identity with client id {id}"),
                    None => "the identity".into(),
                },
                permission,
                kind,
                role: match object.kind {
                    ObjectType::Secret => "Secrets",
                    ObjectType::Key => "Crypto",
                    ObjectType::Cert => "Certificate",
                },
            })),
            429 => KvError::Throttled { vault, message },
            status => KvError::Status {
                vault,
                status,
                code,
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn innermost_error_code() {
        let body: ErrorBody = serde_json::from_str(r#"{"error":{"code":"Forbidden","message":"m","innererror":{"code":"SecretDisabled"}}}"#).unwrap();
        assert_eq!(body.error.specific_code(), "SecretDisabled");
    }
}
