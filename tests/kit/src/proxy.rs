//! Fake AKS identity-binding token proxy: an HTTPS endpoint that only answers when the client
//! presents the binding's SNI, forwards `POST /{tenant}/oauth2/v2.0/token` to the Entra fake's
//! logic (so the service-account token must match a federated credential with audience
//! `api://AKSIdentityBinding`), and records what it saw.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use crate::entra::{self, Entra};
use crate::fault::{self, Faults};
use crate::https::{self, ConnectionKiller, Server, Sni};
use crate::tls::TestCa;

/// One request as the proxy saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRecord {
    pub sni: Option<String>,
    pub host: String,
    pub path: String,
    pub status: u16,
}

pub struct TokenProxy {
    pub sni: String,
    entra: Arc<Entra>,
    pub faults: Faults,
    log: Mutex<Vec<ProxyRecord>>,
}

/// A running proxy and the CA file that trusts it.
pub struct RunningProxy {
    pub proxy: Arc<TokenProxy>,
    pub server: Server,
    pub ca_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl RunningProxy {
    /// Flags for the provider: proxy URL (its loopback address), SNI and CA file.
    pub fn provider_args(&self) -> Vec<String> {
        vec![
            format!("--token-proxy-url=https://{}", self.server.addr),
            format!("--sni-name={}", self.proxy.sni),
            format!("--token-proxy-ca-file={}", self.ca_file.display()),
        ]
    }
}

impl TokenProxy {
    /// Serves a proxy whose certificate is valid for `sni` only, signed by its own CA.
    pub async fn start(sni: &str, entra: Arc<Entra>) -> RunningProxy {
        let proxy = Arc::new(TokenProxy {
            sni: sni.to_string(),
            entra,
            faults: Faults::default(),
            log: Mutex::default(),
        });
        let ca = TestCa::new("cluster CA");
        let router = axum::Router::new()
            .route("/{tenant}/oauth2/v2.0/token", axum::routing::post(token))
            .with_state(proxy.clone());
        let server = https::serve(router, ca.server_config(&[sni.to_string()])).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, ca.pem()).expect("write CA");
        RunningProxy {
            proxy,
            server,
            ca_file,
            _dir: dir,
        }
    }

    pub fn requests(&self) -> Vec<ProxyRecord> {
        self.log.lock().unwrap().clone()
    }
}

async fn token(
    State(proxy): State<Arc<TokenProxy>>,
    Path(tenant): Path<String>,
    Extension(sni): Extension<Sni>,
    Extension(killer): Extension<ConnectionKiller>,
    headers: HeaderMap,
    uri: Uri,
    body: String,
) -> Response {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let response = if sni.0.as_deref() != Some(proxy.sni.as_str()) {
        (StatusCode::FORBIDDEN, "unexpected server name\n").into_response()
    } else if let Some(f) = proxy.faults.enter("token").await {
        let body = serde_json::json!({"error": "temporarily_unavailable", "error_description": "injected fault"});
        fault::apply(f, Some(&killer), body).await
    } else {
        let form = entra::url_decode(&body);
        let client_id = form.get("client_id").cloned().unwrap_or_default();
        let scope = form.get("scope").cloned().unwrap_or_default();
        let url = format!("https://{host}{}", uri.path());
        proxy.entra.answer(&tenant, &client_id, &scope, &form, &url)
    };
    proxy.log.lock().unwrap().push(ProxyRecord {
        sni: sni.0,
        host,
        path: uri.path().to_string(),
        status: response.status().as_u16(),
    });
    response
}
