//! Why no token could be obtained: which endpoint, for whom, and what went wrong there.

use std::fmt;

use crate::http::CallError;

/// The token endpoint that failed and the identity asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Entra {
        client_id: String,
        tenant: String,
    },
    /// AKS identity binding's token proxy (Entra's protocol through the cluster).
    TokenProxy {
        client_id: String,
        tenant: String,
        url: String,
    },
    Imds {
        /// "user-assigned identity ID" or "the system-assigned identity".
        identity: String,
    },
    /// aad-pod-identity's NMI; its errors keep the Go provider's bare texts.
    Nmi,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Entra { client_id, tenant } => write!(
                f,
                "failed to acquire an access token from Entra ID for client id {client_id} in tenant {tenant}"
            ),
            Endpoint::TokenProxy {
                client_id,
                tenant,
                url,
            } => write!(
                f,
                "failed to acquire an access token from Entra ID for client id {client_id} in tenant {tenant}: identity binding: token proxy {url}"
            ),
            Endpoint::Imds { identity } => {
                write!(f, "failed to acquire an access token from IMDS for {identity}")
            }
            Endpoint::Nmi => f.write_str("NMI"),
        }
    }
}

/// What went wrong at the endpoint. Texts never include credential material or tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("invalid {what} URL: {detail}")]
    Url { what: &'static str, detail: String },
    /// Local configuration of the hop (token proxy CA file, SNI, client).
    #[error("{0}")]
    Setup(String),
    #[error("request to {url} failed: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: CallError,
    },
    #[error("{at} answered {status} with a body that is not a token response")]
    NotTokenResponse { at: String, status: u16 },
    #[error("{at} {what}")]
    Incomplete { at: String, what: &'static str },
    /// Entra ID or IMDS refused, with its own error and what to fix.
    #[error("{0}")]
    Refused(String),
    #[error("nmi response failed with status code: {status}, response body: {body}")]
    NmiStatus { status: u16, body: String },
    #[error("nmi did not return expected values in response: token and clientid")]
    NmiIncomplete,
}

/// A token request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityError {
    pub endpoint: Endpoint,
    pub problem: Problem,
}

impl IdentityError {
    pub fn new(endpoint: Endpoint, problem: Problem) -> IdentityError {
        IdentityError { endpoint, problem }
    }
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.endpoint {
            Endpoint::Nmi => write!(f, "{}", self.problem),
            _ => write!(f, "{}: {}", self.endpoint, self.problem),
        }
    }
}

impl std::error::Error for IdentityError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.problem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        let e = IdentityError::new(
            Endpoint::Imds {
                identity: "the system-assigned identity".into(),
            },
            Problem::Incomplete {
                at: "IMDS".into(),
                what: "answered without an access_token",
            },
        );
        assert_eq!(e.to_string(), "failed to acquire an access token from IMDS for the system-assigned identity: IMDS answered without an access_token");
        let e = IdentityError::new(Endpoint::Nmi, Problem::NmiIncomplete);
        assert_eq!(
            e.to_string(),
            "nmi did not return expected values in response: token and clientid"
        );
    }
}
