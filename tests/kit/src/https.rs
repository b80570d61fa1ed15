//! Serves an axum router over TLS on a loopback port, HTTP/1.1 and HTTP/2, with the one fault
//! a router cannot produce itself: dropping the connection without an answer ("reset").

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Notify;
use tower::ServiceExt;

/// Request extension: notify it to drop the connection the request arrived on.
#[derive(Clone)]
pub struct ConnectionKiller(Arc<Notify>);

impl ConnectionKiller {
    /// Drops the connection; the handler should then never answer.
    pub async fn kill(&self) -> ! {
        self.0.notify_one();
        std::future::pending().await
    }
}

/// Request extension: the TLS server name the client asked for (SNI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sni(pub Option<String>);

/// The host a request was sent to, as the client named it: HTTP/2 carries it in the
/// `:authority` pseudo-header (the URI), HTTP/1.1 in `Host`.
pub fn request_host(uri: &axum::http::Uri, headers: &axum::http::HeaderMap) -> String {
    uri.authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// A running server; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds 127.0.0.1:0 and serves `router` with `tls`.
pub async fn serve(router: axum::Router, tls: Arc<rustls::ServerConfig>) -> Server {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            // Small HTTP/2 frames must not wait for delayed ACKs (Nagle), as on real front ends.
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let router = router.clone();
            connections.spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let killer = ConnectionKiller(Arc::new(Notify::new()));
                let notified = killer.0.clone();
                let sni = Sni(stream.get_ref().1.server_name().map(str::to_string));
                let service =
                    hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(killer.clone());
                        req.extensions_mut().insert(sni.clone());
                        router.clone().oneshot(req.map(axum::body::Body::new))
                    });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = connection => {}
                    _ = notified.notified() => {}
                }
            });
            // Reap finished connection tasks so the set does not grow without bound.
            while connections.try_join_next().is_some() {}
        }
    });
    Server { addr, task }
}
