//! aad-pod-identity's Node Managed Identity endpoint (`GET <nmi>/host/token/?resource=…` with
//! `podns`/`podname` headers), with the Go provider's error texts. Deprecated upstream, still
//! used. Upstream never retried; NMI itself calls IMDS and passes on its throttling and outages,
//! so 429, 5xx and transport errors are retried within the mount deadline like IMDS's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use super::{AccessToken, IdentityError};
use crate::cache::CacheKey;
use crate::net;
use crate::retry::{self, Backoff, Deadline};
use crate::secret::Secret;

const MAX_BODY: usize = 64 * 1024;

#[derive(Deserialize)]
struct NmiResponse {
    token: Option<NmiToken>,
    #[serde(default)]
    clientid: String,
}

#[derive(Deserialize)]
struct NmiToken {
    #[serde(default)]
    access_token: String,
    expires_on: Option<serde_json::Value>,
}

pub async fn token(
    http: &reqwest::Client,
    endpoint: &Url,
    namespace: &str,
    name: &str,
    resource: &str,
    key: CacheKey,
    deadline: Deadline,
) -> Result<AccessToken, IdentityError> {
    let mut url = endpoint
        .join("host/token/")
        .map_err(|e| IdentityError::Nmi(format!("invalid NMI URL: {e}")))?;
    url.query_pairs_mut().append_pair("resource", resource);
    let mut backoff = Backoff::standard();
    let (sent, status, bytes) = loop {
        let sent = Instant::now();
        let result = http
            .get(url.clone())
            .header("podns", namespace)
            .header("podname", name)
            .timeout(deadline.remaining().min(Duration::from_secs(30)))
            .send()
            .await;
        let resp = match result {
            Ok(resp) => resp,
            Err(e) if backoff.wait(None, deadline).await => {
                tracing::debug!(error = %net::error_chain(&e), "retrying NMI");
                continue;
            }
            Err(e) => {
                return Err(IdentityError::Nmi(format!(
                    "failed to reach NMI at {endpoint}: {}",
                    net::error_chain(&e)
                )))
            }
        };
        let status = resp.status();
        let hint = retry::retry_after(resp.headers());
        let bytes = net::read_body(resp, MAX_BODY)
            .await
            .map_err(|e| IdentityError::Nmi(format!("NMI response: {e}")))?;
        if retry::retryable_status(status.as_u16()) && backoff.wait(hint, deadline).await {
            continue;
        }
        break (sent, status, bytes);
    };
    if !status.is_success() {
        let body = String::from_utf8_lossy(&bytes);
        return Err(IdentityError::Nmi(format!(
            "nmi response failed with status code: {}, response body: {}",
            status.as_u16(),
            body.trim().chars().take(500).collect::<String>()
        )));
    }
    let missing = || {
        IdentityError::Nmi(
            "nmi did not return expected values in response: token and clientid".into(),
        )
    };
    let parsed: NmiResponse = serde_json::from_slice(&bytes).map_err(|_| missing())?;
    let token = parsed.token.ok_or_else(missing)?;
    if token.access_token.is_empty() || parsed.clientid.is_empty() {
        return Err(missing());
    }
    // expires_on is epoch seconds (a string or a number); unparsable means already expired, as
    // upstream treats it, so the token is used for this mount only.
    let expires_on = match token.expires_on {
        Some(serde_json::Value::String(s)) => s.parse::<f64>().ok(),
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        _ => None,
    };
    let now_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let lifetime = expires_on
        .map(|e| e - now_epoch)
        .filter(|s| *s > 0.0 && s.is_finite())
        .map(Duration::from_secs_f64)
        .unwrap_or_default();
    Ok(AccessToken {
        token: Secret::new(token.access_token),
        expires_at: sent + lifetime,
        obtained_at: sent,
        key,
    })
}
