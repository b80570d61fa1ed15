//! The Azure Instance Metadata Service token endpoint, for the node's system- or user-assigned
//! managed identity. IMDS documents retrying 404 and 410 (identity still being assigned), 429
//! and 5xx with backoff; we do so within the mount deadline.

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use super::token::TokenResponse;
use super::{AccessToken, IdentityError};
use crate::cache::CacheKey;
use crate::net;
use crate::retry::{self, Backoff, Deadline};

const MAX_BODY: usize = 64 * 1024;

#[derive(Deserialize, Default)]
struct ErrorResponse {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

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
    let fail = |detail: String| IdentityError::Imds {
        identity: identity.clone(),
        detail,
    };
    let mut url = endpoint
        .join("metadata/identity/oauth2/token")
        .map_err(|e| fail(format!("invalid IMDS URL: {e}")))?;
    url.query_pairs_mut()
        .append_pair("api-version", "2018-02-01")
        .append_pair("resource", resource);
    if let Some(id) = client_id {
        url.query_pairs_mut().append_pair("client_id", id);
    }
    let mut backoff = Backoff::new(6, Duration::from_millis(500), Duration::from_secs(8));
    loop {
        let sent = Instant::now();
        let result = http
            .get(url.clone())
            .header("Metadata", "true")
            .timeout(deadline.remaining().min(Duration::from_secs(15)))
            .send()
            .await;
        let resp = match result {
            Ok(resp) => resp,
            Err(e) => {
                let detail = format!("request to {endpoint} failed: {}", net::error_chain(&e));
                if backoff.wait(None, deadline).await {
                    continue;
                }
                return Err(fail(detail));
            }
        };
        let status = resp.status();
        let hint = retry::retry_after(resp.headers());
        let bytes = net::read_body(resp, MAX_BODY)
            .await
            .map_err(|e| fail(e.to_string()))?;
        if status.is_success() {
            let parsed: TokenResponse = serde_json::from_slice(&bytes).map_err(|_| {
                fail(format!(
                    "IMDS answered {status} with a body that is not a token response"
                ))
            })?;
            let (token, lifetime) = parsed
                .into_parts()
                .map_err(|what| fail(format!("IMDS {what}")))?;
            return Ok(AccessToken {
                token,
                expires_at: sent + lifetime,
                obtained_at: sent,
                key,
            });
        }
        let code = status.as_u16();
        if (matches!(code, 404 | 410) || retry::retryable_status(code))
            && backoff.wait(hint, deadline).await
        {
            continue;
        }
        let error: ErrorResponse = serde_json::from_slice(&bytes).unwrap_or_default();
        let mut detail = format!("IMDS answered {status}");
        if !error.error.is_empty() {
            detail.push_str(&format!(
                " {}: {}",
                error.error,
                error
                    .error_description
                    .chars()
                    .take(300)
                    .collect::<String>()
            ));
        }
        if code == 400 && client_id.is_some() {
            detail.push_str(" (check userAssignedIdentityID: it must be the client id of an identity assigned to this node's VM or scale set)");
        }
        return Err(fail(detail));
    }
}
