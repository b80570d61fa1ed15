//! One outbound HTTP call, as every hop (Key Vault, Entra ID, IMDS, NMI, the token proxy) makes
//! it: send with a per-attempt timeout inside the mount's [`Deadline`], retry transport errors,
//! interrupted bodies and retryable statuses (honouring `Retry-After`) with backoff, read the
//! body within a size bound, and report each exchange to the caller's metrics.
//!
//! The caller builds the request and classifies the final answer; it never loops itself. Calls
//! to one server may share a [`Pause`]: when it answers 429 with `Retry-After`, every call to
//! it waits that long instead of discovering the throttle on its own.
//!
//! A transport error of a call that went through a proxy names the proxy (without its
//! credentials): the hop's own message says which endpoint failed, this says the proxy was in
//! between.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::http::HeaderMap;
use tokio::time::Instant;

use crate::net;
use crate::retry::{self, Backoff, Deadline};

/// How one logical call is retried and bounded.
#[derive(Debug, Clone)]
pub struct Policy {
    pub backoff: Backoff,
    /// Upper bound of one attempt, headers and body.
    pub attempt_timeout: Duration,
    /// Largest body accepted; a larger one is an error, not retried.
    pub max_body: usize,
    /// Statuses retried besides throttling, timeouts and server faults (IMDS: 404 and 410
    /// while an identity is being assigned).
    pub also_retry: &'static [u16],
    /// Shared with every call to the same server.
    pub pause: Option<Arc<Pause>>,
    /// The call's client always connects directly (the identity-binding token proxy), so its
    /// errors never name a proxy from the environment.
    pub direct: bool,
}

/// A pause a server asked for (429 with `Retry-After`), observed by every call to it.
#[derive(Debug, Default)]
pub struct Pause {
    until: Mutex<Option<Instant>>,
}

impl Pause {
    /// Nobody calls before `by` from now (a longer pause already set stays).
    fn extend(&self, by: Duration) {
        let until = Instant::now() + by;
        let mut current = self.until.lock().expect("pause lock");
        if current.is_none_or(|c| c < until) {
            *current = Some(until);
        }
    }

    /// How long calls must still wait.
    pub fn remaining(&self) -> Option<Duration> {
        let until = (*self.until.lock().expect("pause lock"))?;
        Some(until.saturating_duration_since(Instant::now())).filter(|d| !d.is_zero())
    }
}

impl Policy {
    /// Entra ID, Key Vault, NMI: 4 attempts, 30 s each.
    pub fn standard(max_body: usize) -> Policy {
        Policy {
            backoff: Backoff::standard(),
            attempt_timeout: Duration::from_secs(30),
            max_body,
            also_retry: &[],
            pause: None,
            direct: false,
        }
    }
}

/// The final answer of a call: any status the policy does not retry, or the last retryable one.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// When the answered attempt was sent (token lifetimes count from here).
    pub sent: Instant,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What a call reports to its caller's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// One attempt ended: its status (0 when no response arrived) and duration.
    Exchange { status: u16, elapsed: Duration },
    /// Another attempt follows.
    Retry,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No usable response after the retries the deadline allowed.
    #[error("{0}")]
    Transport(String),
    #[error("response body is larger than {0} bytes")]
    TooLarge(usize),
    /// The server asked every caller to wait longer than the deadline allows.
    #[error("the server asked callers to wait {}s (429 with Retry-After), beyond the deadline", .0.as_secs())]
    Paused(Duration),
}

/// Makes the call; `build` creates the request afresh for every attempt.
pub async fn call(
    build: impl Fn() -> reqwest::RequestBuilder,
    policy: &Policy,
    deadline: Deadline,
    observe: &(dyn Fn(Event) + Sync),
) -> Result<Answer, CallError> {
    let mut backoff = policy.backoff.clone();
    let mut last: Option<Result<Answer, CallError>> = None;
    loop {
        if let Some(wait) = policy.pause.as_ref().and_then(|p| p.remaining()) {
            if wait + Duration::from_secs(1) >= deadline.remaining() {
                return last.unwrap_or(Err(CallError::Paused(wait)));
            }
            tokio::time::sleep(wait).await;
        }
        let sent = Instant::now();
        let attempt = attempt(build(), policy, deadline).await;
        let status = match &attempt {
            Ok(answer) => answer.status,
            Err(Failure { status, .. }) => *status,
        };
        observe(Event::Exchange {
            status,
            elapsed: sent.elapsed(),
        });
        let (hint, this) = match attempt {
            Ok(answer) if !retryable(policy, answer.status) => return Ok(answer),
            Ok(answer) => (retry::retry_after(&answer.headers), Ok(answer)),
            Err(Failure {
                error: e @ CallError::TooLarge(_),
                ..
            }) => return Err(e),
            Err(failure) => (None, Err(failure.error)),
        };
        if let (Some(pause), Some(hint), Ok(answer)) = (&policy.pause, hint, &this) {
            if answer.status == 429 {
                pause.extend(hint);
            }
        }
        if !backoff.wait(hint, deadline).await {
            return this;
        }
        if let Err(e) = &this {
            tracing::debug!(error = %e, "retrying after a transport error");
        }
        last = Some(this);
        observe(Event::Retry);
    }
}

fn retryable(policy: &Policy, status: u16) -> bool {
    retry::retryable_status(status) || policy.also_retry.contains(&status)
}

/// A failed attempt, with the status if headers had arrived.
struct Failure {
    status: u16,
    error: CallError,
}

async fn attempt(
    request: reqwest::RequestBuilder,
    policy: &Policy,
    deadline: Deadline,
) -> Result<Answer, Failure> {
    let sent = Instant::now();
    let resp = request
        .timeout(deadline.remaining().min(policy.attempt_timeout))
        .send()
        .await
        .map_err(|e| Failure {
            status: 0,
            error: transport(policy, error_chain(&e), e.url()),
        })?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let url = resp.url().clone();
    let body = read_body(resp, policy.max_body)
        .await
        .map_err(|error| match error {
            CallError::Transport(detail) => transport(policy, detail, Some(&url)),
            e => e,
        })
        .map_err(|error| Failure { status, error })?;
    Ok(Answer {
        status,
        headers,
        body,
        sent,
    })
}

/// A transport error, naming the proxy the environment routes `url` through, if any.
fn transport(policy: &Policy, detail: String, url: Option<&url::Url>) -> CallError {
    let proxy = match (policy.direct, url, net::proxy::environment()) {
        (false, Some(url), Ok(env)) => env.proxy_for(url),
        _ => None,
    };
    CallError::Transport(match proxy {
        Some(proxy) => format!("through proxy {proxy}: {detail}"),
        None => detail,
    })
}

/// Reads a response body, refusing more than `max` bytes so a misbehaving endpoint cannot make
/// the provider buffer without bound.
async fn read_body(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, CallError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(CallError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        CallError::Transport(format!("failed to read response body: {}", error_chain(&e)))
    })? {
        if body.len() + chunk.len() > max {
            return Err(CallError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An error with its sources, e.g. "error sending request: connection refused", for messages
/// that must say what actually went wrong. Our URLs never carry credentials, so they may show.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A plain HTTP server answering each connection with the next of `replies` (the last one
    /// repeats); returns its URL and the number of requests seen.
    async fn serve(replies: Vec<&'static str>) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let n = count.fetch_add(1, Ordering::SeqCst);
                let reply = replies[n.min(replies.len() - 1)];
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(reply.as_bytes()).await;
            }
        });
        (url, seen)
    }

    fn client() -> reqwest::Client {
        let tls = crate::net::tls_config(&[]).unwrap();
        reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .build()
            .unwrap()
    }

    fn policy() -> Policy {
        Policy {
            backoff: Backoff::new(3, Duration::from_millis(1), Duration::from_millis(2)),
            ..Policy::standard(16)
        }
    }

    async fn run(
        replies: Vec<&'static str>,
        policy: &Policy,
    ) -> (Result<Answer, CallError>, usize, Vec<Event>) {
        let (url, seen) = serve(replies).await;
        let client = client();
        let events = Mutex::new(Vec::new());
        let result = call(
            || client.get(&url),
            policy,
            Deadline::after(Duration::from_secs(10)),
            &|e| events.lock().unwrap().push(e),
        )
        .await;
        let events = events.into_inner().unwrap();
        (result, seen.load(Ordering::SeqCst), events)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
    const BUSY: &str =
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const GONE: &str = "HTTP/1.1 410 Gone\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const HUGE: &str = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n";

    #[tokio::test]
    async fn retries_retryable_statuses_then_answers() {
        let (answer, seen, events) = run(vec![BUSY, OK], &policy()).await;
        let answer = answer.unwrap();
        assert_eq!(
            (answer.status, answer.body.as_slice(), seen),
            (200, &b"ok"[..], 2)
        );
        assert_eq!(events.iter().filter(|e| **e == Event::Retry).count(), 1);
        let (answer, seen, _) = run(vec![BUSY], &policy()).await;
        assert_eq!(
            (answer.unwrap().status, seen),
            (503, 3),
            "the last answer after 3 attempts"
        );
    }

    #[tokio::test]
    async fn extra_statuses_and_body_bound() {
        let (answer, seen, _) = run(vec![GONE, OK], &policy()).await;
        assert_eq!(
            (answer.unwrap().status, seen),
            (410, 1),
            "410 is final by default"
        );
        let imds = Policy {
            also_retry: &[410],
            ..policy()
        };
        let (answer, seen, _) = run(vec![GONE, OK], &imds).await;
        assert_eq!((answer.unwrap().status, seen), (200, 2));
        let (answer, seen, _) = run(vec![HUGE, OK], &policy()).await;
        assert_eq!(
            (answer.unwrap_err(), seen),
            (CallError::TooLarge(16), 1),
            "not retried"
        );
    }

    #[tokio::test]
    async fn transport_errors_are_retried_and_reported() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let client = client();
        let exchanges = AtomicUsize::new(0);
        let result = call(
            || client.get(&url),
            &policy(),
            Deadline::after(Duration::from_secs(10)),
            &|e| {
                if let Event::Exchange { status: 0, .. } = e {
                    exchanges.fetch_add(1, Ordering::SeqCst);
                }
            },
        )
        .await;
        assert!(
            matches!(result, Err(CallError::Transport(ref d)) if d.contains("error sending request")),
            "{result:?}"
        );
        assert_eq!(exchanges.load(Ordering::SeqCst), 3);
    }
}
