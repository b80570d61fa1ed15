//! Retry policy shared by every outbound call: which answers are worth another try, how long to
//! wait (the server's `Retry-After` family first, else jittered exponential backoff), and the
//! mount deadline that bounds it all so a mount fails with a clear error before the kubelet's
//! ~2 minute CSI timeout instead of hanging.

use std::time::Duration;

use http::HeaderMap;
use tokio::time::Instant;

/// The instant by which the current mount must have answered.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Deadline(Instant::now() + budget)
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

/// Attempts and delays for one logical call.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    max_attempts: u32,
    base: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(max_attempts: u32, base: Duration, cap: Duration) -> Self {
        Backoff {
            attempt: 0,
            max_attempts,
            base,
            cap,
        }
    }

    /// The default for Key Vault and Entra ID: 4 attempts, 250 ms doubling up to 8 s.
    pub fn standard() -> Self {
        Backoff::new(4, Duration::from_millis(250), Duration::from_secs(8))
    }

    /// Waits before the next attempt. Returns false when attempts are used up or the wait
    /// (the server's hint, if any) would not end well before the deadline: then the caller
    /// reports the last failure instead of sleeping into a timeout.
    pub async fn wait(&mut self, hint: Option<Duration>, deadline: Deadline) -> bool {
        self.attempt += 1;
        if self.attempt >= self.max_attempts {
            return false;
        }
        let delay = hint.unwrap_or_else(|| {
            let exp = self.base.saturating_mul(1 << (self.attempt - 1).min(16));
            // Full jitter in [exp/2, exp]: spreads the retries of many pods hitting one vault.
            let exp = exp.min(self.cap);
            exp / 2 + exp.mul_f64(fastrand::f64() / 2.0)
        });
        // Leave room for the retried call itself.
        if delay + Duration::from_secs(1) >= deadline.remaining() {
            return false;
        }
        tokio::time::sleep(delay).await;
        true
    }
}

/// Statuses worth retrying: throttling, timeouts and server faults.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The server's requested delay: `retry-after-ms`, `x-ms-retry-after-ms`, then `Retry-After`
/// (seconds; an HTTP date is treated as "soon" since clocks may disagree).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = text(name).and_then(|v| v.parse::<u64>().ok()) {
            return Some(Duration::from_millis(ms));
        }
    }
    let value = text("retry-after")?;
    match value.parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs)),
        Err(_) => Some(Duration::from_secs(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn retry_after_variants() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("x-ms-retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        h.insert("retry-after-ms", HeaderValue::from_static("20"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(20)));
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_stops_at_attempts_and_deadline() {
        let deadline = Deadline::after(Duration::from_secs(60));
        let mut b = Backoff::new(3, Duration::from_millis(100), Duration::from_secs(1));
        assert!(b.wait(None, deadline).await);
        assert!(b.wait(None, deadline).await);
        assert!(!b.wait(None, deadline).await);
        let mut b = Backoff::standard();
        assert!(
            !b.wait(Some(Duration::from_secs(120)), deadline).await,
            "a hint past the deadline fails fast"
        );
    }
}
