//! Fakes of the node-local identity endpoints, over plain HTTP as on a node: the Instance
//! Metadata Service token endpoint (`GET /metadata/identity/oauth2/token`, `Metadata: true`) and
//! aad-pod-identity's NMI (`GET /host/token/` with `podns`/`podname`). Tokens they issue are
//! valid at the Key Vault fake.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::time::Instant;

use crate::entra::{IssuedToken, TokenRegistry};
use crate::fault::{Fault, Faults};
use crate::seed::Seed;

/// One token request (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub status: u16,
}

pub struct Node {
    seed: Seed,
    tokens: Arc<TokenRegistry>,
    pub imds_faults: Faults,
    pub nmi_faults: Faults,
    pub imds_log: Mutex<Vec<NodeRecord>>,
    pub nmi_log: Mutex<Vec<NodeRecord>>,
}

/// The IMDS and NMI fakes' addresses; they stop when dropped.
pub struct NodeServers {
    pub imds: SocketAddr,
    pub nmi: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for NodeServers {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

const LIFETIME: Duration = Duration::from_secs(3600);

fn epoch_after(d: Duration) -> u64 {
    (SystemTime::now() + d)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn record(headers: &HeaderMap, query: &BTreeMap<String, String>, status: u16) -> NodeRecord {
    NodeRecord {
        query: query.clone(),
        headers: headers
            .iter()
            .filter(|(k, _)| matches!(k.as_str(), "metadata" | "podns" | "podname"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        status,
    }
}

async fn fault_response(fault: Fault) -> Response {
    let body = json!({"error": "unavailable", "error_description": "injected fault"});
    crate::fault::apply(fault, None, body).await
}

impl Node {
    pub fn new(seed: Seed, tokens: Arc<TokenRegistry>) -> Arc<Node> {
        Arc::new(Node {
            seed,
            tokens,
            imds_faults: Faults::default(),
            nmi_faults: Faults::default(),
            imds_log: Mutex::default(),
            nmi_log: Mutex::default(),
        })
    }

    pub async fn serve(self: &Arc<Self>) -> NodeServers {
        let imds = axum::Router::new()
            .route(
                "/metadata/identity/oauth2/token",
                axum::routing::get(imds_token),
            )
            .with_state(self.clone());
        let nmi = axum::Router::new()
            .route("/host/token/", axum::routing::get(nmi_token))
            .with_state(self.clone());
        let mut tasks = Vec::new();
        let mut addrs = Vec::new();
        for router in [imds, nmi] {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .expect("bind");
            addrs.push(listener.local_addr().expect("addr"));
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            }));
        }
        NodeServers {
            imds: addrs[0],
            nmi: addrs[1],
            tasks,
        }
    }

    fn issue(&self, tenant: &str, client_id: &str, resource: &str) -> String {
        self.tokens.issue(IssuedToken {
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
            resource: resource.trim_end_matches('/').to_string(),
            expires_at: Instant::now() + LIFETIME,
        })
    }
}

async fn imds_token(
    State(node): State<Arc<Node>>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let response = match node.imds_faults.enter("imds").await {
        Some(f) => fault_response(f).await,
        None => imds_answer(&node, &query, &headers),
    };
    node.imds_log
        .lock()
        .unwrap()
        .push(record(&headers, &query, response.status().as_u16()));
    response
}

fn imds_answer(node: &Node, query: &BTreeMap<String, String>, headers: &HeaderMap) -> Response {
    let bad = |status: StatusCode, error: &str, description: &str| {
        (
            status,
            axum::Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    if query.get("api-version").map(String::as_str) != Some("2018-02-01") {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid api-version",
        );
    }
    let Some(resource) = query.get("resource").filter(|r| !r.is_empty()) else {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let Some(imds) = &node.seed.imds else {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        );
    };
    let client_id = match query.get("client_id") {
        Some(id) if imds.user_assigned.contains(id) => id.clone(),
        Some(_) => {
            return bad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Identity not found",
            )
        }
        None => match &imds.system_assigned {
            Some(id) => id.clone(),
            None => {
                return bad(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Identity not found",
                )
            }
        },
    };
    let token = node.issue(&imds.tenant, &client_id, resource);
    axum::Json(json!({
        "access_token": token,
        "client_id": client_id,
        "expires_in": LIFETIME.as_secs().to_string(),
        "expires_on": epoch_after(LIFETIME).to_string(),
        "ext_expires_in": LIFETIME.as_secs().to_string(),
        "not_before": epoch_after(Duration::ZERO).to_string(),
        "resource": resource,
        "token_type": "Bearer",
    }))
    .into_response()
}

async fn nmi_token(
    State(node): State<Arc<Node>>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let response = match node.nmi_faults.enter("nmi").await {
        Some(f) => fault_response(f).await,
        None => nmi_answer(&node, &query, &headers),
    };
    node.nmi_log
        .lock()
        .unwrap()
        .push(record(&headers, &query, response.status().as_u16()));
    response
}

fn nmi_answer(node: &Node, query: &BTreeMap<String, String>, headers: &HeaderMap) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (namespace, pod) = (header("podns"), header("podname"));
    if namespace.is_empty() || pod.is_empty() {
        return (StatusCode::BAD_REQUEST, "missing podname or podns header\n").into_response();
    }
    let Some(resource) = query.get("resource").filter(|r| !r.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            "parameter resource cannot be empty\n",
        )
            .into_response();
    };
    let Some(binding) = node
        .seed
        .nmi
        .iter()
        .find(|b| b.namespace == namespace && b.pod == pod)
    else {
        return (
            StatusCode::NOT_FOUND,
            format!("getting assigned identities for pod {namespace}/{pod} in CREATED state failed after 16 attempts, retry duration [5]s. Error: <nil>\n"),
        )
            .into_response();
    };
    let token = node.issue(&binding.tenant, &binding.client_id, resource);
    axum::Json(json!({
        "token": {
            "access_token": token,
            "refresh_token": "",
            "expires_in": LIFETIME.as_secs().to_string(),
            "expires_on": epoch_after(LIFETIME).to_string(),
            "not_before": epoch_after(Duration::ZERO).to_string(),
            "resource": resource,
            "token_type": "Bearer",
        },
        "clientid": binding.client_id,
    }))
    .into_response()
}
