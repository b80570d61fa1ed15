//! Fault injection and request accounting shared by the fakes: latency for every request,
//! queued faults for the next N requests of a route (throttling with each `Retry-After` flavour,
//! server errors, dropped connections before or in the middle of a body, slow headers, slow
//! bodies, broken JSON, oversized bodies, HTML instead of JSON), and per-route counters.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::https::ConnectionKiller;

/// How a throttled answer says when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    None,
    /// `Retry-After: <seconds>`
    Seconds(u64),
    /// `retry-after-ms: <ms>`
    Millis(u64),
    /// `x-ms-retry-after-ms: <ms>`
    MsMillis(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An error status (429, 500, 503, …) with a service-style JSON body.
    Status {
        status: u16,
        retry_after: RetryAfter,
    },
    /// Close the connection without answering.
    Reset,
    /// 200 with a body that is not JSON.
    InvalidJson,
    /// Answer (503) only after this long: headers that do not come.
    Stall(Duration),
    /// 200 and the first bytes of a JSON body, then nothing for this long.
    SlowBody(Duration),
    /// 200 and the first bytes of a body, then the connection breaks.
    ResetMidBody,
    /// 200 with a syntactically valid JSON body of about this many bytes.
    Oversized(usize),
    /// 200 with an HTML page, as a misconfigured proxy or gateway sends.
    WrongContentType,
}

impl Fault {
    pub fn throttle(retry_after: RetryAfter) -> Fault {
        Fault::Status {
            status: 429,
            retry_after,
        }
    }

    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            retry_after: RetryAfter::None,
        }
    }
}

struct Queued {
    route: Option<String>,
    remaining: usize,
    fault: Fault,
}

/// Faults and counters of one fake.
#[derive(Default)]
pub struct Faults {
    queue: Mutex<Vec<Queued>>,
    latency: Mutex<Duration>,
    counts: Mutex<BTreeMap<String, usize>>,
    /// Requests inside their latency now, and the most ever seen at once.
    in_flight: Mutex<(usize, usize)>,
}

impl Faults {
    /// The next `times` requests of `route` (any route when `None`) get `fault`.
    pub fn inject(&self, route: Option<&str>, times: usize, fault: Fault) {
        self.queue.lock().unwrap().push(Queued {
            route: route.map(str::to_string),
            remaining: times,
            fault,
        });
    }

    /// Delay before every answer (emulated network and service time).
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap() = latency;
    }

    /// Requests seen per route since the last reset.
    pub fn count(&self, route: &str) -> usize {
        self.counts.lock().unwrap().get(route).copied().unwrap_or(0)
    }

    /// Requests seen on every route.
    pub fn total(&self) -> usize {
        self.counts.lock().unwrap().values().sum()
    }

    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.counts.lock().unwrap().clone()
    }

    pub fn reset_counts(&self) {
        self.counts.lock().unwrap().clear();
        self.in_flight.lock().unwrap().1 = 0;
    }

    /// The most requests that were waiting out their latency at the same time since the last
    /// reset: above 1 proves requests were sent concurrently, without timing anything.
    pub fn max_in_flight(&self) -> usize {
        self.in_flight.lock().unwrap().1
    }

    pub fn clear_faults(&self) {
        self.queue.lock().unwrap().clear();
    }

    /// Counts the request, waits the latency, and returns the fault to apply, if any.
    pub async fn enter(&self, route: &str) -> Option<Fault> {
        *self
            .counts
            .lock()
            .unwrap()
            .entry(route.to_string())
            .or_default() += 1;
        let latency = *self.latency.lock().unwrap();
        if !latency.is_zero() {
            {
                let mut f = self.in_flight.lock().unwrap();
                f.0 += 1;
                f.1 = f.1.max(f.0);
            }
            tokio::time::sleep(latency).await;
            self.in_flight.lock().unwrap().0 -= 1;
        }
        let mut queue = self.queue.lock().unwrap();
        let index = queue
            .iter()
            .position(|q| q.remaining > 0 && q.route.as_deref().is_none_or(|r| r == route))?;
        queue[index].remaining -= 1;
        let fault = queue[index].fault.clone();
        if queue[index].remaining == 0 {
            queue.remove(index);
        }
        Some(fault)
    }
}

/// A 200 JSON response whose body is `first`, then `rest` once `then` has resolved (its error
/// breaks the connection mid-body).
fn streamed(
    first: &'static str,
    then: impl std::future::Future<Output = Result<&'static str, std::io::Error>> + Send + 'static,
) -> Response {
    use futures_util::StreamExt;
    let head =
        futures_util::stream::iter([Ok::<_, std::io::Error>(axum::body::Bytes::from(first))]);
    let tail = futures_util::stream::once(then).map(|r| r.map(axum::body::Bytes::from));
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        axum::body::Body::from_stream(head.chain(tail)),
    )
        .into_response()
}

/// Turns a fault into the answer (or the dropped connection). Without a `killer` (plain HTTP
/// fakes), `Reset` never answers, the closest a handler can come.
pub async fn apply(
    fault: Fault,
    killer: Option<&ConnectionKiller>,
    body: serde_json::Value,
) -> Response {
    match fault {
        Fault::Reset => match killer {
            Some(killer) => killer.kill().await,
            None => std::future::pending().await,
        },
        Fault::Stall(duration) => {
            tokio::time::sleep(duration).await;
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
        Fault::SlowBody(duration) => streamed("{\"value\": \"", async move {
            tokio::time::sleep(duration).await;
            Ok("\"}")
        }),
        Fault::ResetMidBody => streamed("{\"value\": \"", async {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected reset",
            ))
        }),
        Fault::Oversized(bytes) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            format!("{{\"padding\": \"{}\"}}", "a".repeat(bytes)),
        )
            .into_response(),
        Fault::WrongContentType => (
            StatusCode::OK,
            [("content-type", "text/html")],
            "<html><head><title>502 Bad Gateway</title></head><body>upstream unavailable</body></html>",
        )
            .into_response(),
        Fault::InvalidJson => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"value\": tru",
        )
            .into_response(),
        Fault::Status {
            status,
            retry_after,
        } => {
            let mut response = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                axum::Json(body),
            )
                .into_response();
            let headers = response.headers_mut();
            match retry_after {
                RetryAfter::None => {}
                RetryAfter::Seconds(s) => {
                    headers.insert("retry-after", s.to_string().parse().unwrap());
                }
                RetryAfter::Millis(ms) => {
                    headers.insert("retry-after-ms", ms.to_string().parse().unwrap());
                }
                RetryAfter::MsMillis(ms) => {
                    headers.insert("x-ms-retry-after-ms", ms.to_string().parse().unwrap());
                }
            }
            response
        }
    }
}
