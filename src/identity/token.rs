//! An access token and when it must be replaced.

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::{Identity, Problem};
use crate::cache::{CacheKey, Expiring};
use crate::http::Answer;
use crate::secret::Secret;

/// A bearer token and when it stops being usable.
pub struct AccessToken {
    pub token: Secret,
    pub expires_at: Instant,
    /// When the token was obtained, to size the refresh margin to its lifetime.
    pub obtained_at: Instant,
    /// The token cache key: identifies the credential material and scope it was issued for.
    pub key: CacheKey,
    /// Who the token was issued to.
    pub identity: Identity,
}

impl Expiring for AccessToken {
    /// Usable if it stays valid for a margin: 5 minutes as MSAL does, or half the lifetime for
    /// short-lived tokens, so a mount never starts with a token about to expire.
    fn is_fresh(&self) -> bool {
        let lifetime = self.expires_at.saturating_duration_since(self.obtained_at);
        let margin = Duration::from_secs(300).min(lifetime / 2);
        Instant::now() + margin < self.expires_at
    }

    fn weight(&self) -> usize {
        1
    }
}

/// An OAuth error answer (Entra ID's adds `error_codes`; IMDS sends the first two).
#[derive(Deserialize, Default)]
pub(super) struct OAuthError {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_description: String,
    #[serde(default)]
    pub error_codes: Vec<u64>,
}

impl OAuthError {
    /// The error of an answer's body; empty when it is not one.
    pub(super) fn of(answer: &Answer) -> OAuthError {
        serde_json::from_slice(&answer.body).unwrap_or_default()
    }
}

/// The OAuth token response of Entra ID and IMDS (`expires_in` is a number in Entra's v2
/// answers and a string in IMDS's).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
}

impl AccessToken {
    /// The token of a successful OAuth answer from `at` (a URL, or "IMDS").
    pub(super) fn from_answer(
        answer: &Answer,
        at: &str,
        key: CacheKey,
        identity: Identity,
    ) -> Result<AccessToken, Problem> {
        let parsed: TokenResponse =
            serde_json::from_slice(&answer.body).map_err(|_| Problem::NotTokenResponse {
                at: at.to_string(),
                status: answer.status,
            })?;
        let (token, lifetime) = parsed.into_parts().map_err(|what| Problem::Incomplete {
            at: at.to_string(),
            what,
        })?;
        Ok(AccessToken {
            token,
            expires_at: answer.sent + lifetime,
            obtained_at: answer.sent,
            key,
            identity,
        })
    }
}

impl TokenResponse {
    /// The token and its lifetime, or what is missing.
    fn into_parts(self) -> Result<(Secret, Duration), &'static str> {
        let token = self
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or("answered without an access_token")?;
        let secs = match self.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .filter(|s| *s > 0)
        .ok_or("answered without a valid expires_in")?;
        Ok((Secret::new(token), Duration::from_secs(secs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::KeyBuilder;

    #[test]
    fn token_response_forms() {
        let parse = |v: serde_json::Value| {
            serde_json::from_value::<TokenResponse>(v)
                .unwrap()
                .into_parts()
                .map(|(_, d)| d)
        };
        assert_eq!(
            parse(serde_json::json!({"access_token": "t", "expires_in": 3599})),
            Ok(Duration::from_secs(3599))
        );
        assert_eq!(
            parse(serde_json::json!({"access_token": "t", "expires_in": "60"})),
            Ok(Duration::from_secs(60))
        );
        assert!(parse(serde_json::json!({"access_token": "t", "expires_in": 0})).is_err());
        assert!(parse(serde_json::json!({"expires_in": 10})).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_margin() {
        let now = Instant::now();
        let token = |lifetime| AccessToken {
            token: Secret::new("t"),
            expires_at: now + lifetime,
            obtained_at: now,
            key: KeyBuilder::default().finish(),
            identity: Identity {
                mode: "test",
                issuer: String::new(),
                tenant: String::new(),
                client_id: String::new(),
            },
        };
        let hour = token(Duration::from_secs(3600));
        let minute = token(Duration::from_secs(60));
        assert!(hour.is_fresh() && minute.is_fresh());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(
            !minute.is_fresh(),
            "short-lived tokens are replaced after half their life"
        );
        tokio::time::advance(Duration::from_secs(3600 - 300 - 31)).await;
        assert!(!hour.is_fresh(), "replaced 5 minutes before expiry");
    }
}
