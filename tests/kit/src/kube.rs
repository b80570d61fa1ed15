//! Fake Kubernetes API server: `GET /api/v1/namespaces/{namespace}/serviceaccounts/{name}` over
//! TLS on 127.0.0.1 (a certificate for the IP, as a cluster's service address has), serving the
//! seed's ServiceAccounts to bearer tokens it issued: 401 for a token it does not know, 403
//! (with the RBAC message) for a token without `get` on serviceaccounts, 404 for an unknown
//! ServiceAccount, each as a `Status` object. It writes what a pod finds: the token file, the CA
//! file, and the service host and port for the environment.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::https::{self, Server};
use crate::seed::Seed;
use crate::tls::TestCa;

/// The identity the provider's token stands for, as RBAC messages name it.
const PROVIDER_USER: &str = "system:serviceaccount:kube-system:akv-csi-provider";

/// One request as the fake saw it (no token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeRecord {
    pub path: String,
    pub status: u16,
}

pub struct KubeApi {
    accounts: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// Tokens issued, and whether RBAC lets them get serviceaccounts.
    tokens: Mutex<HashMap<String, bool>>,
    log: Mutex<Vec<KubeRecord>>,
}

/// A running fake API server and the files a pod would have.
pub struct FakeKube {
    pub api: Arc<KubeApi>,
    server: Server,
    dir: tempfile::TempDir,
}

impl FakeKube {
    pub async fn start(seed: &Seed) -> FakeKube {
        let ca = TestCa::new("testkit cluster CA");
        let accounts = seed
            .service_accounts
            .iter()
            .map(|a| ((a.namespace.clone(), a.name.clone()), a.annotations.clone()))
            .collect();
        let api = Arc::new(KubeApi {
            accounts,
            tokens: Mutex::default(),
            log: Mutex::default(),
        });
        let router = axum::Router::new()
            .route(
                "/api/v1/namespaces/{namespace}/serviceaccounts/{name}",
                axum::routing::get(service_account),
            )
            .with_state(api.clone());
        let server = https::serve(router, ca.server_config(&["127.0.0.1".to_string()])).await;
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.crt"), ca.pem()).expect("write CA");
        let kube = FakeKube { api, server, dir };
        kube.rotate_token(true);
        kube
    }

    /// Writes a new token into the token file, as the kubelet rotates a projected token;
    /// `allowed`: whether RBAC grants it `get` on serviceaccounts. The old token stays valid.
    pub fn rotate_token(&self, allowed: bool) -> String {
        let token = format!("kube-sa-token-{}", hex::encode(random_bytes()));
        self.api
            .tokens
            .lock()
            .unwrap()
            .insert(token.clone(), allowed);
        std::fs::write(self.token_file(), &token).expect("write token");
        token
    }

    pub fn token_file(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`, as a pod's environment has them.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("KUBERNETES_SERVICE_HOST".into(), "127.0.0.1".into()),
            (
                "KUBERNETES_SERVICE_PORT".into(),
                self.server.addr.port().to_string(),
            ),
        ]
    }

    /// The provider flags that turn the lookup on and point at the pod's files.
    pub fn provider_args(&self) -> Vec<String> {
        vec![
            "--client-id-from-service-account".into(),
            format!("--kube-token-file={}", self.token_file().display()),
            format!("--kube-ca-file={}", self.ca_file().display()),
        ]
    }

    /// Requests served so far.
    pub fn requests(&self) -> Vec<KubeRecord> {
        self.api.log.lock().unwrap().clone()
    }

    /// Every token issued (for leak checks).
    pub fn tokens(&self) -> Vec<String> {
        self.api.tokens.lock().unwrap().keys().cloned().collect()
    }
}

fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("random");
    bytes
}

/// A `Status` object, as the API server answers errors.
fn status(code: StatusCode, reason: &str, message: String, name: &str) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"name": name, "kind": "serviceaccounts"},
        "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

async fn service_account(
    State(api): State<Arc<KubeApi>>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    let allowed = api.tokens.lock().unwrap().get(token).copied();
    let response = match allowed {
        None => status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".into(),
            &name,
        ),
        Some(false) => status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("serviceaccounts \"{name}\" is forbidden: User \"{PROVIDER_USER}\" cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"{namespace}\""),
            &name,
        ),
        Some(true) => match api.accounts.get(&(namespace.clone(), name.clone())) {
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("serviceaccounts \"{name}\" not found"),
                &name,
            ),
            Some(annotations) => {
                let mut object = json!({
                    "kind": "ServiceAccount",
                    "apiVersion": "v1",
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "uid": crate::seed::version_id(&name, 2),
                        "resourceVersion": "1234",
                        "creationTimestamp": "2026-01-01T00:00:00Z",
                    },
                });
                // The API server leaves out an empty map.
                if !annotations.is_empty() {
                    object["metadata"]["annotations"] = json!(annotations);
                }
                axum::Json(object).into_response()
            }
        },
    };
    api.log.lock().unwrap().push(KubeRecord {
        path: format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}"),
        status: response.status().as_u16(),
    });
    response
}
