//! Fake Entra ID v2 token endpoint: `POST /{tenant}/oauth2/v2.0/token` with the client
//! credentials grant (client secret, a client assertion signed with a registered certificate, or
//! a federated service-account token as client assertion), answering with opaque expiring tokens
//! or AADSTS errors shaped like the real ones; plus the OpenID discovery document MSAL-based
//! clients ask for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::json;
use tokio::time::Instant;

use crate::assertion::{self, Refusal, Verifier};
use crate::fault::{self, Faults};
use crate::https::{self, ConnectionKiller};
use crate::sa;
use crate::seed::Seed;

/// What the Key Vault fake needs to know about a token it is shown.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub tenant: String,
    pub client_id: String,
    /// The scope without `/.default`, e.g. `https://vault.azure.net`.
    pub resource: String,
    pub expires_at: Instant,
}

/// Tokens issued by the fake, shared with the Key Vault fake.
#[derive(Default)]
pub struct TokenRegistry {
    tokens: Mutex<HashMap<String, IssuedToken>>,
}

impl TokenRegistry {
    pub fn lookup(&self, token: &str) -> Option<IssuedToken> {
        self.tokens.lock().unwrap().get(token).cloned()
    }

    pub fn issue(&self, info: IssuedToken) -> String {
        let token = format!("fake-at-{}", hex::encode(random_bytes::<24>()));
        self.tokens.lock().unwrap().insert(token.clone(), info);
        token
    }

    /// Makes every token issued so far expired, as if the provider had cached them too long:
    /// Key Vault then answers 401 `invalid_token`.
    pub fn expire_all(&self) {
        let now = Instant::now();
        for token in self.tokens.lock().unwrap().values_mut() {
            token.expires_at = now;
        }
    }

    /// Every token issued so far (for leak checks).
    pub fn all(&self) -> Vec<String> {
        self.tokens.lock().unwrap().keys().cloned().collect()
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("random");
    bytes
}

/// One token request as the fake saw it (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub tenant: String,
    pub client_id: String,
    /// `secret`, `certificate` (an assertion the client signed) or `assertion` (federated).
    pub grant: &'static str,
    pub scope: String,
    /// HTTP status of the answer.
    pub status: u16,
}

pub struct Entra {
    seed: Seed,
    pub issuer: sa::Issuer,
    pub tokens: Arc<TokenRegistry>,
    pub faults: Faults,
    lifetime: Mutex<Duration>,
    log: Mutex<Vec<TokenRecord>>,
    /// Clients whose federated credentials were deleted since the seed.
    revoked: Mutex<std::collections::HashSet<String>>,
    /// Certificate assertions: verification and the `jti`s already used.
    verifier: Verifier,
    /// Every client assertion received (for leak checks).
    assertions: Mutex<Vec<String>>,
}

impl Entra {
    pub fn new(seed: Seed, tokens: Arc<TokenRegistry>) -> Entra {
        Entra {
            seed,
            issuer: sa::Issuer::default(),
            tokens,
            faults: Faults::default(),
            lifetime: Mutex::new(Duration::from_secs(3599)),
            log: Mutex::default(),
            revoked: Mutex::default(),
            verifier: Verifier::default(),
            assertions: Mutex::default(),
        }
    }

    /// Every client assertion presented so far (service-account tokens and signed ones).
    pub fn assertions(&self) -> Vec<String> {
        self.assertions.lock().unwrap().clone()
    }

    /// Deletes every federated credential of `client_id`, as an administrator revoking a
    /// workload's access: its service-account tokens are no longer exchanged.
    pub fn revoke_federation(&self, client_id: &str) {
        self.revoked.lock().unwrap().insert(client_id.to_string());
    }

    /// Lifetime of the access tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *self.lifetime.lock().unwrap() = lifetime;
    }

    /// Token requests answered so far.
    pub fn requests(&self) -> Vec<TokenRecord> {
        self.log.lock().unwrap().clone()
    }

    /// Number of token requests (any outcome).
    pub fn request_count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    pub fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/{tenant}/oauth2/v2.0/token", axum::routing::post(token))
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                axum::routing::get(discovery),
            )
            .with_state(self.clone())
    }
}

fn aadsts(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let trace = hex::encode(random_bytes::<8>());
    let now = "2026-01-01 00:00:00Z";
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {trace} Timestamp: {now}"),
        "error_codes": [code],
        "timestamp": now,
        "trace_id": trace,
        "correlation_id": trace,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, axum::Json(body)).into_response()
}

async fn discovery(Path(tenant): Path<String>, headers: HeaderMap) -> Response {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("login.microsoftonline.com");
    axum::Json(json!({
        "token_endpoint": format!("https://{host}/{tenant}/oauth2/v2.0/token"),
        "authorization_endpoint": format!("https://{host}/{tenant}/oauth2/v2.0/authorize"),
        "issuer": format!("https://{host}/{tenant}/v2.0"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "jwks_uri": format!("https://{host}/{tenant}/discovery/v2.0/keys"),
        "tenant_region_scope": "NA",
    }))
    .into_response()
}

async fn token(
    State(entra): State<Arc<Entra>>,
    Path(tenant): Path<String>,
    Extension(killer): Extension<ConnectionKiller>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form: HashMap<String, String> = url_decode(&body);
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let scope = form.get("scope").cloned().unwrap_or_default();
    let grant = match form.get("client_assertion") {
        Some(a) if assertion::is_self_issued(a, &client_id) => "certificate",
        Some(_) => "assertion",
        None => "secret",
    };
    if let Some(a) = form.get("client_assertion") {
        entra.assertions.lock().unwrap().push(a.clone());
    }
    let url = format!(
        "https://{}{}",
        https::request_host(&uri, &headers),
        uri.path()
    );
    let response = match entra.faults.enter("token").await {
        Some(f) => fault::apply(f, Some(&killer), json!({"error": "temporarily_unavailable", "error_description": "AADSTS50196: The server terminated an operation because it encountered a client request loop."})).await,
        None => entra.answer(&tenant, &client_id, &scope, &form, &url),
    };
    entra.log.lock().unwrap().push(TokenRecord {
        tenant,
        client_id,
        grant,
        scope,
        status: response.status().as_u16(),
    });
    response
}

impl Entra {
    /// The token endpoint's decision for one request to `token_url` (also used behind the
    /// token proxy).
    pub fn answer(
        &self,
        tenant: &str,
        client_id: &str,
        scope: &str,
        form: &HashMap<String, String>,
        token_url: &str,
    ) -> Response {
        let Some(t) = self.seed.tenants.iter().find(|t| t.id == tenant) else {
            return aadsts(StatusCode::BAD_REQUEST, "invalid_request", 90002, &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."));
        };
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return aadsts(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
            );
        }
        let Some(client) = t.clients.iter().find(|c| c.client_id == client_id) else {
            return aadsts(StatusCode::BAD_REQUEST, "unauthorized_client", 700016, &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."));
        };
        let Some(resource) = scope
            .strip_suffix("/.default")
            .filter(|r| r.starts_with("https://"))
        else {
            return aadsts(StatusCode::BAD_REQUEST, "invalid_scope", 1002012, &format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."));
        };
        if let Some(assertion) = form.get("client_assertion") {
            if form.get("client_assertion_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            {
                return aadsts(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    50027,
                    "Invalid client_assertion_type.",
                );
            }
            // Entra ID answers 401 for a client credential it does not accept, 400 for a
            // federated token it does not.
            let judged = match assertion::is_self_issued(assertion, client_id) {
                true => self
                    .verifier
                    .verify(client, client_id, token_url, assertion)
                    .map_err(|r| (StatusCode::UNAUTHORIZED, r)),
                false => self
                    .federated(client, client_id, assertion)
                    .map_err(|r| (StatusCode::BAD_REQUEST, r)),
            };
            if let Err((status, r)) = judged {
                return aadsts(status, r.error, r.code, &r.description);
            }
        } else {
            let presented = form.get("client_secret").map(String::as_str).unwrap_or("");
            if client.secret.as_deref().is_none_or(|s| s != presented) {
                return aadsts(StatusCode::UNAUTHORIZED, "invalid_client", 7000215, &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."));
            }
        }
        let lifetime = *self.lifetime.lock().unwrap();
        let token = self.tokens.issue(IssuedToken {
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
            resource: resource.trim_end_matches('/').to_string(),
            expires_at: Instant::now() + lifetime,
        });
        axum::Json(json!({
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "ext_expires_in": lifetime.as_secs(),
            "access_token": token,
        }))
        .into_response()
    }

    /// Judges a service-account token presented under a federated identity credential.
    fn federated(
        &self,
        client: &crate::seed::Client,
        client_id: &str,
        assertion: &str,
    ) -> Result<(), Refusal> {
        let refuse = |error, code, description: &str| Refusal {
            error,
            code,
            description: description.to_string(),
        };
        let claims = self.issuer.verify(assertion).map_err(|_| {
            refuse(
                "invalid_client",
                50027,
                "JWT token is invalid or malformed.",
            )
        })?;
        if sa::Issuer::is_expired(&claims) {
            return Err(refuse(
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            ));
        }
        let issuer_ok = |f: &crate::seed::Federated| {
            f.issuer.as_deref().unwrap_or(&self.issuer.url) == claims.issuer
        };
        if !client.federated.iter().any(issuer_ok) {
            return Err(refuse("invalid_request", 700211, &format!("No matching federated identity record found for presented assertion issuer '{}'.", claims.issuer)));
        }
        let revoked = self.revoked.lock().unwrap().contains(client_id);
        let subject_ok =
            |f: &&crate::seed::Federated| !revoked && issuer_ok(f) && f.subject == claims.subject;
        let Some(federated) = client.federated.iter().find(subject_ok) else {
            return Err(refuse("invalid_request", 700213, &format!("No matching federated identity record found for presented assertion subject '{}'.", claims.subject)));
        };
        let audience = federated
            .audience
            .as_deref()
            .unwrap_or("api://AzureADTokenExchange");
        if !claims.audiences.iter().any(|a| a == audience) {
            return Err(refuse(
                "invalid_request",
                70021,
                "No matching federated identity record found for presented assertion audience.",
            ));
        }
        Ok(())
    }
}

/// Decodes an `application/x-www-form-urlencoded` body.
pub fn url_decode(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((decode(k), decode(v)))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
