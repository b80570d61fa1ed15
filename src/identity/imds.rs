//! The Azure Instance Metadata Service token endpoint, for the node's system- or user-assigned
//! managed identity. IMDS documents retrying 404 and 410 (identity still being assigned), 429
//! and 5xx with backoff; we do so within the mount deadline.
//!
//! At its link-local address IMDS is never reached through a proxy (`net::proxy`): its answers
//! carry the node's tokens in clear text.

use std::time::Duration;

use url::Url;

use super::token::OAuthError;
use super::{AccessToken, Endpoint, Identity, IdentityError, Problem};
use crate::cache::CacheKey;
use crate::http::{self, Policy};
use crate::retry::{Backoff, Deadline};

const MAX_BODY: usize = 64 * 1024;

pub async fn token(
    http: &reqwest::Client,
    endpoint: &Url,
    client_id: Option<&str>,
    resource: &str,
    key: CacheKey,
    deadline: Deadline,
) -> Result<AccessToken, IdentityError> {
    let identity = match client_id {
        Some(id) => format!("user-assigned identity {id}"),
        None => "the system-assigned identity".to_string(),
    };
    let fail = |problem| IdentityError::new(Endpoint::Imds { identity }, problem);
    let mut url = match endpoint.join("metadata/identity/oauth2/token") {
        Ok(url) => url,
        Err(e) => {
            return Err(fail(Problem::Url {
                what: "IMDS",
                detail: e.to_string(),
            }))
        }
    };
    url.query_pairs_mut()
        .append_pair("api-version", "2018-02-01")
        .append_pair("resource", resource);
    if let Some(id) = client_id {
        url.query_pairs_mut().append_pair("client_id", id);
    }
    let policy = Policy {
        backoff: Backoff::new(6, Duration::from_millis(500), Duration::from_secs(8)),
        attempt_timeout: Duration::from_secs(15),
        max_body: MAX_BODY,
        also_retry: &[404, 410],
        pause: None,
        direct: false,
    };
    let build = || http.get(url.clone()).header("Metadata", "true");
    let answer = match http::call(build, &policy, deadline, &|_| {}).await {
        Ok(answer) => answer,
        Err(source) => {
            return Err(fail(Problem::Unreachable {
                url: endpoint.to_string(),
                source,
            }))
        }
    };
    if answer.is_success() {
        let identity = Identity {
            mode: "vm_managed_identity",
            issuer: endpoint.to_string(),
            tenant: String::new(),
            client_id: client_id.unwrap_or("system-assigned").to_string(),
        };
        return AccessToken::from_answer(&answer, "IMDS", key, identity).map_err(fail);
    }
    let error = OAuthError::of(&answer);
    let mut detail = format!("IMDS answered {}", status_text(answer.status));
    if !error.error.is_empty() {
        let description: String = error.error_description.chars().take(300).collect();
        detail.push_str(&format!(" {}: {description}", error.error));
    }
    if answer.status == 400 && client_id.is_some() {
        detail.push_str(" (check userAssignedIdentityID: it must be the client id of an identity assigned to this node's VM or scale set)");
    }
    Err(fail(Problem::Refused(detail)))
}

/// `404 Not Found`: the status with its reason phrase.
fn status_text(status: u16) -> String {
    match ::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}
