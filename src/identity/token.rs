//! An access token and when it must be replaced.

use std::time::Duration;

use tokio::time::Instant;

use crate::cache::{CacheKey, Expiring};
use crate::secret::Secret;

/// A bearer token and when it stops being usable.
pub struct AccessToken {
    pub token: Secret,
    pub expires_at: Instant,
    /// When the token was obtained, to size the refresh margin to its lifetime.
    pub obtained_at: Instant,
    /// The token cache key: identifies the credential material and scope it was issued for.
    pub key: CacheKey,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::KeyBuilder;

    #[tokio::test(start_paused = true)]
    async fn refresh_margin() {
        let now = Instant::now();
        let token = |lifetime| AccessToken {
            token: Secret::new("t"),
            expires_at: now + lifetime,
            obtained_at: now,
            key: KeyBuilder::default().finish(),
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
