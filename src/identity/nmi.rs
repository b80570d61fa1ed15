//! aad-pod-identity's Node Managed Identity endpoint (`GET <nmi>/host/token/?resource=…` with
//! `podns`/`podname` headers), with the Go provider's error texts. Deprecated upstream, still
//! used. Upstream never retried; NMI itself calls IMDS and passes on its throttling and outages,
//! so 429, 5xx and transport errors are retried within the mount deadline like IMDS's.
//!
//! NMI's default address is loopback, which is never proxied (`net::proxy`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use url::Url;

use super::{AccessToken, Endpoint, Identity, IdentityError, Problem};
use crate::cache::CacheKey;
use crate::http::{self, Policy};
use crate::retry::Deadline;
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
    let fail = |problem| IdentityError::new(Endpoint::Nmi, problem);
    let mut url = endpoint.join("host/token/").map_err(|e| {
        fail(Problem::Url {
            what: "NMI",
            detail: e.to_string(),
        })
    })?;
    url.query_pairs_mut().append_pair("resource", resource);
    let build = || {
        http.get(url.clone())
            .header("podns", namespace)
            .header("podname", name)
    };
    let answer = http::call(build, &Policy::standard(MAX_BODY), deadline, &|_| {})
        .await
        .map_err(|source| {
            fail(Problem::Unreachable {
                url: endpoint.to_string(),
                source,
            })
        })?;
    if !answer.is_success() {
        let body = String::from_utf8_lossy(&answer.body);
        return Err(fail(Problem::NmiStatus {
            status: answer.status,
            body: body.trim().chars().take(500).collect(),
        }));
    }
    let parsed: NmiResponse =
        serde_json::from_slice(&answer.body).map_err(|_| fail(Problem::NmiIncomplete))?;
    let token = parsed.token.ok_or_else(|| fail(Problem::NmiIncomplete))?;
    if token.access_token.is_empty() || parsed.clientid.is_empty() {
        return Err(fail(Problem::NmiIncomplete));
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
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or_default();
    Ok(AccessToken {
        token: Secret::new(token.access_token),
        expires_at: answer.sent + lifetime,
        obtained_at: answer.sent,
        key,
        // NMI says which identity is bound to the pod: pods bound to one identity share.
        identity: Identity {
            mode: "pod_identity",
            issuer: endpoint.to_string(),
            tenant: String::new(),
            client_id: parsed.clientid,
        },
    })
}
