//! Construction of the one HTTP client every outbound call shares: rustls with the platform's
//! root certificates plus `--extra-ca-file`, connection pooling (HTTP/2 where the server offers
//! it), connect and request timeouts, and `--resolve` overrides.
//!
//! `--resolve` sends connections for matching host names to a fixed address while the URL, the
//! `Host` header, TLS SNI and certificate verification keep the real name. That is how private
//! endpoints, air-gapped clouds, the tests and the demo reach a vault without changing its URL.
//!
//! Proxies come from the environment ([`proxy`]). A proxied destination is resolved by the
//! proxy, so `--resolve` applies to direct connections and to the proxy's own host name.

pub mod proxy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// How outbound connections are made.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub resolve: Vec<ResolveRule>,
    pub extra_ca_files: Vec<PathBuf>,
    pub connect_timeout: Duration,
    /// Upper bound for one HTTP exchange, including reading the body.
    pub request_timeout: Duration,
    pub user_agent: String,
}

/// `PATTERN=ADDR:PORT`: a host name, or `*.suffix` for every host under `suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveRule {
    pattern: HostPattern,
    addr: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// Stored with its leading dot: `.vault.azure.net`.
    Suffix(String),
}

impl ResolveRule {
    fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match &self.pattern {
            HostPattern::Exact(h) => host == *h,
            HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

/// A `--resolve` value that is not `PATTERN=ADDR:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--resolve {rule:?}: {problem}")]
pub struct ResolveRuleError {
    rule: String,
    problem: String,
}

impl FromStr for ResolveRule {
    type Err = ResolveRuleError;

    fn from_str(s: &str) -> Result<Self, ResolveRuleError> {
        let fail = |problem: String| ResolveRuleError {
            rule: s.to_string(),
            problem,
        };
        let (pattern, addr) = s
            .split_once('=')
            .ok_or_else(|| fail("expected PATTERN=ADDR:PORT".into()))?;
        let addr: SocketAddr = addr.parse().map_err(|_| {
            fail(format!(
                "{addr:?} is not an IP address with a port, e.g. 10.0.0.4:443"
            ))
        })?;
        let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
        let valid = |h: &str| {
            !h.is_empty()
                && h.split('.').all(|l| {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        };
        let pattern = match pattern.strip_prefix("*.") {
            Some(suffix) if valid(suffix) => HostPattern::Suffix(format!(".{suffix}")),
            None if valid(&pattern) => HostPattern::Exact(pattern),
            _ => return Err(fail("pattern must be a host name or *.suffix".into())),
        };
        Ok(ResolveRule { pattern, addr })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("failed to read --extra-ca-file {path}: {message}")]
    CaFile { path: String, message: String },
    #[error("--extra-ca-file {0} holds no PEM certificate")]
    CaFileEmpty(String),
    #[error("failed to build the HTTP client: {0}")]
    Client(String),
    #[error(transparent)]
    Proxy(#[from] proxy::ProxyEnvError),
}

/// Resolver that applies `--resolve` rules first and the system resolver otherwise.
struct OverrideResolver {
    rules: Arc<[ResolveRule]>,
}

impl Resolve for OverrideResolver {
    fn resolve(&self, name: Name) -> Resolving {
        if let Some(rule) = self.rules.iter().find(|r| r.matches(name.as_str())) {
            let addr = rule.addr;
            return Box::pin(async move { Ok(Box::new(std::iter::once(addr)) as Addrs) });
        }
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Port 0 lets the connector apply the URL's port.
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(Box::new(addrs.collect::<Vec<_>>().into_iter()) as Addrs)
        })
    }
}

/// The rustls configuration used for every TLS connection.
pub fn tls_config(extra_ca_files: &[PathBuf]) -> Result<rustls::ClientConfig, NetError> {
    let mut roots = rustls::RootCertStore::empty();
    // Missing or unreadable platform certificates are not fatal: a private cloud may rely on
    // --extra-ca-file alone.
    let native = rustls_native_certs::load_native_certs();
    for err in &native.errors {
        tracing::warn!(error = %err, "could not load some platform root certificates");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(count = added, "platform root certificates loaded");
    for path in extra_ca_files {
        let shown = path.display().to_string();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| NetError::CaFile {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(NetError::CaFileEmpty(shown));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| NetError::CaFile {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Builds the shared HTTP client on top of [`tls_config`], with the proxies of the environment.
pub fn client(config: &NetConfig, tls: rustls::ClientConfig) -> Result<reqwest::Client, NetError> {
    let builder = match proxy::environment()?.reqwest_proxy() {
        Some(proxy) => reqwest::Client::builder().proxy(proxy),
        None => reqwest::Client::builder().no_proxy(),
    };
    builder
        .tls_backend_preconfigured(tls)
        .dns_resolver(OverrideResolver {
            rules: config.resolve.clone().into(),
        })
        .connect_timeout(config.connect_timeout)
        // Small HTTP/2 frames must not wait for delayed ACKs (Nagle's algorithm).
        .tcp_nodelay(true)
        .timeout(config.request_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(config.user_agent.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| NetError::Client(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_rules() {
        let exact: ResolveRule = "login.example.test=127.0.0.1:8443".parse().unwrap();
        assert!(exact.matches("login.example.test"));
        assert!(exact.matches("LOGIN.example.test."));
        assert!(!exact.matches("x.login.example.test"));
        let wild: ResolveRule = "*.vault.example.test=[::1]:443".parse().unwrap();
        assert!(wild.matches("kv1.vault.example.test"));
        assert!(!wild.matches("vault.example.test"));
        assert!(!wild.matches("kv1.vault.example.test.evil"));
    }

    #[test]
    fn rejects_bad_rules() {
        for bad in [
            "nohost",
            "a=b",
            "=1.2.3.4:1",
            "a b=1.2.3.4:1",
            "*.=1.2.3.4:1",
            "x=1.2.3.4",
        ] {
            assert!(bad.parse::<ResolveRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn extra_ca_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a cert").unwrap();
        assert!(matches!(
            tls_config(&[empty]),
            Err(NetError::CaFileEmpty(_))
        ));
        assert!(matches!(
            tls_config(&[dir.path().join("missing.pem")]),
            Err(NetError::CaFile { .. })
        ));
    }
}
