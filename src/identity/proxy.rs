//! AKS identity binding: the workload's service-account token (audience
//! `api://AKSIdentityBinding`) is exchanged through the cluster's token proxy rather than at
//! Entra ID directly. The request is the Entra v2 client-assertion grant, sent to
//! `<proxy URL>/<tenant>/oauth2/v2.0/token` over TLS whose server name is the binding's SNI
//! (from `--sni-name` or computed from the API server certificate) and whose trust roots are the
//! service-account CA file, re-read whenever its content changes.
//!
//! The token proxy is always reached directly, whatever `HTTPS_PROXY` says: it is an in-cluster
//! endpoint an egress proxy has no business relaying, and the request is addressed to the SNI
//! name, which resolves nowhere but here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use url::Url;

use super::entra::{Exchange, Grant};
use super::{AccessToken, Endpoint, Identity, IdentityError, Problem, TokenRequest};
use crate::cache::CacheKey;
use crate::retry::Deadline;
use crate::secret::Secret;

/// Where and how to reach the identity-binding token proxy.
#[derive(Debug, Clone)]
pub struct TokenProxyConfig {
    /// `--token-proxy-url`, default `https://kubernetes.default.svc.cluster.local`.
    pub url: Url,
    /// `--sni-name`; computed from the API server's certificate when `None`.
    pub sni: Option<String>,
    /// `--token-proxy-ca-file`, default the pod's service-account `ca.crt`.
    pub ca_file: PathBuf,
    /// Port of `kubernetes.default.svc.cluster.local` for the SNI probe
    /// (`$KUBERNETES_SERVICE_PORT`, default 443).
    pub api_server_port: u16,
}

/// Why the token proxy cannot be used: its configuration or the cluster's CA and name.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("--token-proxy-url {url} {problem}")]
    Url { url: Url, problem: &'static str },
    #[error("CA file {path} {problem}")]
    CaFile { path: String, problem: String },
    #[error("failed to build the token proxy client: {0}")]
    Client(String),
    #[error("cannot resolve token proxy host {host}: {detail}")]
    Resolve { host: String, detail: String },
    #[error("{0}: set --sni-name")]
    Sni(String),
}

impl TokenProxyConfig {
    /// Checks the proxy URL as the Azure SDK does: https, no credentials, query or fragment.
    pub fn validate(&self) -> Result<(), ProxyError> {
        let u = &self.url;
        let problem = if u.scheme() != "https" {
            "must be an https URL"
        } else if !u.username().is_empty()
            || u.password().is_some()
            || u.query().is_some()
            || u.fragment().is_some()
        {
            "must not contain credentials, a query or a fragment"
        } else if u.host_str().is_none() {
            "has no host"
        } else {
            return Ok(());
        };
        Err(ProxyError::Url {
            url: u.clone(),
            problem,
        })
    }
}

/// The HTTP client for the current CA file content and SNI.
struct Connection {
    ca_digest: [u8; 32],
    sni: String,
    client: reqwest::Client,
}

pub struct TokenProxy {
    config: TokenProxyConfig,
    /// Extra roots (`--extra-ca-file`) used when the CA file does not exist.
    fallback_tls: rustls::ClientConfig,
    connection: Mutex<Option<Connection>>,
    computed_sni: Mutex<Option<String>>,
}

const MAX_CA_FILE: u64 = 1024 * 1024;

impl TokenProxy {
    pub fn new(config: TokenProxyConfig, fallback_tls: rustls::ClientConfig) -> Self {
        TokenProxy {
            config,
            fallback_tls,
            connection: Mutex::new(None),
            computed_sni: Mutex::new(None),
        }
    }

    pub async fn token(
        &self,
        req: &TokenRequest<'_>,
        client_id: &str,
        assertion: &Secret,
        key: CacheKey,
        deadline: Deadline,
    ) -> Result<AccessToken, IdentityError> {
        let fail = |problem| {
            IdentityError::new(
                Endpoint::TokenProxy {
                    client_id: client_id.to_string(),
                    tenant: req.tenant.to_string(),
                    url: self.config.url.to_string(),
                },
                problem,
            )
        };
        let (client, sni) = self
            .client()
            .await
            .map_err(|e| fail(Problem::Setup(e.to_string())))?;
        // The request goes to the SNI name (resolved to the proxy's address) so TLS presents and
        // verifies that name; the Host header keeps the proxy's own authority.
        let mut url = self.config.url.clone();
        url.set_host(Some(&sni))
            .map_err(|e| fail(Problem::Setup(format!("SNI {sni}: {e}"))))?;
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}/{}/oauth2/v2.0/token", req.tenant));
        let authority = match self.config.url.port() {
            Some(p) => format!("{}:{p}", self.config.url.host_str().unwrap_or_default()),
            None => self.config.url.host_str().unwrap_or_default().to_string(),
        };
        let exchange = Exchange {
            http: &client,
            url,
            host: Some(&authority),
            client_id,
            scope: req.scope,
            grant: Grant::Assertion(assertion),
            direct: true,
            tenant: req.tenant,
        };
        let identity = Identity {
            mode: req.credential.mode_name(),
            issuer: self.config.url.to_string(),
            tenant: req.tenant.to_string(),
            client_id: client_id.to_string(),
        };
        let result = exchange.run(key, identity, deadline).await;
        if result.is_err() {
            // Force a fresh connection (and CA read) next time: the proxy may have moved.
            *self.connection.lock().await = None;
        }
        result.map_err(fail)
    }

    /// The client for the current CA content, rebuilt when the file changes.
    async fn client(&self) -> Result<(reqwest::Client, String), ProxyError> {
        let ca = read_ca(&self.config.ca_file).await?;
        let digest: [u8; 32] = Sha256::digest(ca.as_deref().unwrap_or_default()).into();
        let mut connection = self.connection.lock().await;
        if let Some(c) = connection.as_ref().filter(|c| c.ca_digest == digest) {
            return Ok((c.client.clone(), c.sni.clone()));
        }
        let tls = match &ca {
            Some(pem) => tls_with_roots(&self.config.ca_file, pem)?,
            None => self.fallback_tls.clone(),
        };
        let sni = match &self.config.sni {
            Some(sni) => sni.clone(),
            None => self.computed_sni(&tls).await?,
        };
        let addrs = proxy_addrs(&self.config.url).await?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .resolve_to_addrs(&sni, &addrs)
            .http1_only()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            // The proxy variables do not apply: the request is addressed to the binding's SNI
            // name, which only this client resolves (to the token proxy's in-cluster address);
            // a forward proxy could not resolve it.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ProxyError::Client(e.to_string()))?;
        *connection = Some(Connection {
            ca_digest: digest,
            sni: sni.clone(),
            client: client.clone(),
        });
        Ok((client, sni))
    }

    async fn computed_sni(&self, tls: &rustls::ClientConfig) -> Result<String, ProxyError> {
        let mut cached = self.computed_sni.lock().await;
        if let Some(sni) = cached.as_ref() {
            return Ok(sni.clone());
        }
        let sni = probe_sni(tls, self.config.api_server_port).await?;
        *cached = Some(sni.clone());
        Ok(sni)
    }
}

/// Reads the CA file; `None` when it does not exist (then the platform roots apply, as upstream).
async fn read_ca(path: &PathBuf) -> Result<Option<Vec<u8>>, ProxyError> {
    let fail = |problem: String| ProxyError::CaFile {
        path: path.display().to_string(),
        problem,
    };
    match tokio::fs::metadata(path).await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(format!("cannot be read: {e}"))),
        Ok(meta) if meta.len() > MAX_CA_FILE => {
            return Err(fail(format!("is larger than {MAX_CA_FILE} bytes")))
        }
        Ok(_) => {}
    }
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| fail(format!("cannot be read: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(fail("is empty".into()));
    }
    Ok(Some(bytes))
}

fn tls_with_roots(path: &std::path::Path, pem: &[u8]) -> Result<rustls::ClientConfig, ProxyError> {
    let fail = |problem: String| ProxyError::CaFile {
        path: path.display().to_string(),
        problem,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| fail(format!("is not valid PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| fail(format!("holds a certificate rustls rejects: {e}")))?;
    }
    if roots.is_empty() {
        return Err(fail("holds no certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ProxyError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

async fn proxy_addrs(url: &Url) -> Result<Vec<SocketAddr>, ProxyError> {
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let port = url.port_or_known_default().unwrap_or(443);
    let fail = |detail: String| ProxyError::Resolve {
        host: host.to_string(),
        detail,
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| fail(e.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(fail("no address".into()));
    }
    Ok(addrs)
}

const API_SERVER: &str = "kubernetes.default.svc.cluster.local";

/// Dials the API server and derives the SNI from its `hcp-kubernetes.<cluster id>.svc.cluster.local`
/// certificate name, as AKS defines it.
async fn probe_sni(tls: &rustls::ClientConfig, port: u16) -> Result<String, ProxyError> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls.clone()));
    let probe = async {
        let tcp = tokio::net::TcpStream::connect((API_SERVER, port)).await?;
        let name = ServerName::try_from(API_SERVER).expect("static name");
        connector.connect(name, tcp).await
    };
    let sni = |problem: String| ProxyError::Sni(problem);
    let stream = tokio::time::timeout(Duration::from_secs(10), probe)
        .await
        .map_err(|_| {
            sni(format!(
                "timed out probing {API_SERVER}:{port} for the identity-binding SNI"
            ))
        })?
        .map_err(|e| {
            sni(format!(
                "probing {API_SERVER}:{port} for the identity-binding SNI failed: {e}"
            ))
        })?;
    let (_, session) = stream.get_ref();
    let leaf = session
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| sni("the API server presented no certificate".into()))?;
    let cluster_id = dns_names(leaf.as_ref())
        .iter()
        .find_map(|n| {
            n.strip_prefix("hcp-kubernetes.")?
                .strip_suffix(".svc.cluster.local")
                .map(str::to_string)
        })
        .ok_or_else(|| sni("the API server certificate has no hcp-kubernetes.<cluster id>.svc.cluster.local name".into()))?;
    Ok(sni_for_cluster(&cluster_id))
}

/// The DNS names of a certificate; none if it does not parse.
fn dns_names(der: &[u8]) -> Vec<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect()
}

/// `"a" + base32hex(sha256("identity-binding" + cluster id)) + ".ests.aks"`, lower case.
pub fn sni_for_cluster(cluster_id: &str) -> String {
    let digest = Sha256::digest(format!("identity-binding{cluster_id}").as_bytes());
    format!("a{}.ests.aks", base32hex_lower(&digest))
}

/// RFC 4648 base32 with the extended hex alphabet, unpadded, lower case.
fn base32hex_lower(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32hex_matches_rfc4648_vectors() {
        // RFC 4648 §10, base32hex, upper case there.
        for (input, want) in [
            ("", ""),
            ("f", "co"),
            ("fo", "cpng"),
            ("foo", "cpnmu"),
            ("foob", "cpnmuog"),
            ("fooba", "cpnmuoj1"),
            ("foobar", "cpnmuoj1e8"),
        ] {
            assert_eq!(base32hex_lower(input.as_bytes()), want);
        }
    }

    #[test]
    fn sni_shape() {
        let sni = sni_for_cluster("abc123");
        assert!(sni.starts_with('a') && sni.ends_with(".ests.aks"));
        // 32 bytes → 52 base32 characters.
        assert_eq!(sni.len(), 1 + 52 + ".ests.aks".len());
        assert_eq!(sni, sni.to_lowercase());
    }

    #[test]
    fn proxy_url_rules() {
        let cfg = |u: &str| TokenProxyConfig {
            url: Url::parse(u).unwrap(),
            sni: None,
            ca_file: PathBuf::from("/nonexistent"),
            api_server_port: 443,
        };
        assert!(cfg("https://kubernetes.default.svc.cluster.local")
            .validate()
            .is_ok());
        assert!(cfg("http://proxy").validate().is_err());
        assert!(cfg("https://u:p@proxy").validate().is_err());
        assert!(cfg("https://proxy/?x=1").validate().is_err());
    }
}
