//! A thin Key Vault data-plane client over the documented REST API: GET of secrets, keys and
//! certificates (latest or pinned) and their version listings, speaking the 401 bearer challenge.
//!
//! The challenge's scope is remembered per vault host, so after the first mount every request
//! carries a token on the first try (and a fresh challenge is still honoured). Throttling and
//! server faults are retried within the mount's deadline; Key Vault's error bodies become
//! messages that name the object and say what to fix.

mod challenge;
mod models;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

pub use challenge::scope_for as challenge_scope;
pub use challenge::ChallengeError;
pub use models::{
    parse_certificate, parse_key, parse_secret, parse_versions, CertificateBundle, KeyBundle,
    SecretBundle, VersionItem, VersionPage,
};

use crate::identity::{AccessToken, IdentityError};
use crate::metrics::{self, KeyVaultLabels, Metrics, ObjectTypeLabels};
use crate::net;
use crate::request::ObjectType;
use crate::retry::{self, Backoff, Deadline};

/// Data-plane API version; 7.4 is what the Go provider speaks, 7.5 is a superset.
pub const API_VERSION: &str = "7.5";

/// Largest body we accept for one object (Key Vault caps secrets at 25 KB; certificates with
/// long chains stay far below this).
const MAX_OBJECT_BODY: usize = 1024 * 1024;
/// Largest body of one page of a version listing.
const MAX_LIST_BODY: usize = 4 * 1024 * 1024;
/// Pages followed in one listing; 25 versions per page by default.
const MAX_PAGES: usize = 200;

/// Supplies bearer tokens for a scope, on behalf of one mount's identity.
pub trait Authenticator: Sync {
    fn token(
        &self,
        scope: &str,
    ) -> impl Future<Output = Result<Arc<AccessToken>, IdentityError>> + Send;
    /// Called when Key Vault refused a token, so it is not reused.
    fn invalidate(&self, token: &Arc<AccessToken>);
    /// The client id the identity acts as, to name it in permission errors.
    fn client_id(&self) -> Option<&str>;
}

/// One vault, as addressed by a mount.
#[derive(Debug, Clone)]
pub struct Vault {
    pub name: String,
    /// `https://<name>.<suffix>/`
    pub url: Url,
}

impl Vault {
    pub fn new(name: &str, dns_suffix: &str) -> Result<Vault, KvError> {
        let url = Url::parse(&format!("https://{name}.{dns_suffix}/")).map_err(|e| {
            KvError::Config(format!("vault URL for {name}.{dns_suffix} is invalid: {e}"))
        })?;
        Ok(Vault {
            name: name.to_string(),
            url,
        })
    }

    fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }
}

/// Why a Key Vault call failed, worded for the person who owns the SecretProviderClass.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("{kind} {name} was not found in key vault {vault} ({status} {code}): check objectName, objectVersion and keyvaultName")]
    NotFound {
        kind: &'static str,
        name: String,
        vault: String,
        status: u16,
        code: String,
    },
    #[error("{kind} {name} is disabled in key vault {vault} (403 {code}): enable it, or pin objectVersion to an enabled version")]
    Disabled {
        kind: &'static str,
        name: String,
        vault: String,
        code: String,
    },
    #[error(transparent)]
    Forbidden(Box<Forbidden>),
    #[error("key vault {vault} rejected the access token (401): {message}: check that tenantID is the tenant of the vault")]
    TokenRejected { vault: String, message: String },
    #[error("key vault {vault} is throttling requests (429) and retries within the mount deadline did not succeed: {message}")]
    Throttled { vault: String, message: String },
    #[error("key vault {vault} answered {status} {code}: {message}")]
    Status {
        vault: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("failed to reach key vault {vault} at {host}: {detail} (check keyvaultName, cloudName and the node's network access to the vault)")]
    Transport {
        vault: String,
        host: String,
        detail: String,
    },
    #[error("key vault {vault} sent an unusable response: {0}", vault = .1)]
    BadResponse(String, String),
    #[error(transparent)]
    Challenge(#[from] ChallengeError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Config(String),
}

/// Key Vault refused the identity: what it said and the permission to grant.
#[derive(Debug, thiserror::Error)]
#[error("access denied by key vault {vault} (403 {code}): {message}: grant {identity} the \"{permission}\" permission on {kind}s (Azure RBAC role \"Key Vault {role} User\", or an access policy)")]
pub struct Forbidden {
    pub vault: String,
    pub code: String,
    pub message: String,
    pub identity: String,
    pub permission: &'static str,
    pub kind: &'static str,
    pub role: &'static str,
}

/// The Key Vault client; one per process, shared by all mounts.
pub struct KeyVault {
    http: reqwest::Client,
    /// Scope from the last challenge of each vault host.
    scopes: Mutex<HashMap<String, String>>,
    /// One unauthenticated discovery request per vault host at a time: concurrent first
    /// requests wait for its challenge instead of each paying a 401 round trip.
    discovery: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    metrics: Arc<Metrics>,
}

fn collection(kind: ObjectType) -> &'static str {
    match kind {
        ObjectType::Secret => "secrets",
        ObjectType::Key => "keys",
        ObjectType::Cert => "certificates",
    }
}

fn noun(kind: ObjectType) -> &'static str {
    match kind {
        ObjectType::Secret => "secret",
        ObjectType::Key => "key",
        ObjectType::Cert => "certificate",
    }
}

impl KeyVault {
    pub fn new(http: reqwest::Client, metrics: Arc<Metrics>) -> Self {
        KeyVault {
            http,
            scopes: Mutex::default(),
            discovery: Mutex::default(),
            metrics,
        }
    }

    /// Records one HTTP exchange with Key Vault.
    fn observe(&self, kind: ObjectType, operation: &'static str, status: u16, started: Instant) {
        let outcome = match status {
            0 => "transport_error",
            200..=299 => "ok",
            401 => "challenge",
            429 => "throttled",
            500..=599 => "server_error",
            _ => "client_error",
        };
        let labels = KeyVaultLabels {
            provider: metrics::PROVIDER,
            os_type: metrics::OS_TYPE,
            object_type: kind.as_str(),
            operation,
            outcome,
            status_code: status,
        };
        self.metrics
            .keyvault_request
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        if status == 429 {
            self.metrics
                .keyvault_throttled
                .get_or_create(&ObjectTypeLabels {
                    object_type: kind.as_str(),
                })
                .inc();
        }
    }

    fn count_retry(&self, kind: ObjectType) {
        self.metrics
            .keyvault_retries
            .get_or_create(&ObjectTypeLabels {
                object_type: kind.as_str(),
            })
            .inc();
    }

    /// GET a secret; `version` `None` is the latest.
    pub async fn get_secret(
        &self,
        vault: &Vault,
        name: &str,
        version: Option<&str>,
        auth: &impl Authenticator,
        deadline: Deadline,
    ) -> Result<SecretBundle, KvError> {
        self.get_object(
            vault,
            ObjectType::Secret,
            name,
            version,
            auth,
            deadline,
            models::parse_secret,
        )
        .await
    }

    /// GET a key's public JWK.
    pub async fn get_key(
        &self,
        vault: &Vault,
        name: &str,
        version: Option<&str>,
        auth: &impl Authenticator,
        deadline: Deadline,
    ) -> Result<KeyBundle, KvError> {
        self.get_object(
            vault,
            ObjectType::Key,
            name,
            version,
            auth,
            deadline,
            models::parse_key,
        )
        .await
    }

    /// GET a certificate's DER.
    pub async fn get_certificate(
        &self,
        vault: &Vault,
        name: &str,
        version: Option<&str>,
        auth: &impl Authenticator,
        deadline: Deadline,
    ) -> Result<CertificateBundle, KvError> {
        self.get_object(
            vault,
            ObjectType::Cert,
            name,
            version,
            auth,
            deadline,
            models::parse_certificate,
        )
        .await
    }

    /// GET one object version and read its bundle with `parse`.
    #[allow(clippy::too_many_arguments)]
    async fn get_object<T>(
        &self,
        vault: &Vault,
        kind: ObjectType,
        name: &str,
        version: Option<&str>,
        auth: &impl Authenticator,
        deadline: Deadline,
        parse: fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, KvError> {
        let url = object_url(vault, kind, name, version);
        let body = self
            .get_body(
                vault,
                url,
                kind,
                name,
                "get",
                auth,
                deadline,
                MAX_OBJECT_BODY,
            )
            .await?;
        parse(&body).map_err(|e| bad_response(vault, kind, name, e))
    }

    /// Lists every version of an object, following `nextLink` pages on the same vault.
    pub async fn list_versions(
        &self,
        vault: &Vault,
        kind: ObjectType,
        name: &str,
        auth: &impl Authenticator,
        deadline: Deadline,
    ) -> Result<Vec<VersionItem>, KvError> {
        let mut url = vault
            .url
            .join(&format!("{}/{name}/versions", collection(kind)))
            .map_err(|e| KvError::Config(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let body = self
                .get_body(
                    vault,
                    url.clone(),
                    kind,
                    name,
                    "list",
                    auth,
                    deadline,
                    MAX_LIST_BODY,
                )
                .await?;
            let page =
                models::parse_versions(&body).map_err(|e| bad_response(vault, kind, name, e))?;
            items.extend(page.items);
            match page.next_link {
                None => return Ok(items),
                Some(next) => {
                    let next = Url::parse(&next).map_err(|_| {
                        KvError::BadResponse("nextLink is not a URL".into(), vault.name.clone())
                    })?;
                    // The token must only ever go to the vault itself.
                    if next.scheme() != "https"
                        || next.host_str() != Some(vault.host())
                        || next.port() != vault.url.port()
                    {
                        return Err(KvError::BadResponse(
                            format!(
                                "nextLink points away from the vault ({})",
                                next.host_str().unwrap_or("")
                            ),
                            vault.name.clone(),
                        ));
                    }
                    url = next;
                }
            }
        }
        Err(KvError::BadResponse(
            format!(
                "{} {name} has more than {MAX_PAGES} pages of versions",
                noun(kind)
            ),
            vault.name.clone(),
        ))
    }

    /// One authenticated GET with challenge handling and retries; the body of a 2xx answer.
    #[allow(clippy::too_many_arguments)]
    async fn get_body(
        &self,
        vault: &Vault,
        url: Url,
        kind: ObjectType,
        name: &str,
        permission: &'static str,
        auth: &impl Authenticator,
        deadline: Deadline,
        max_body: usize,
    ) -> Result<Vec<u8>, KvError> {
        let host = vault.host().to_string();
        let scope_of = |host: &str| self.scopes.lock().expect("scope lock").get(host).cloned();
        let mut known_scope = scope_of(&host);
        // Held until this request's challenge names the scope (or it fails).
        let mut discovering = None;
        if known_scope.is_none() {
            let lock = self
                .discovery
                .lock()
                .expect("discovery lock")
                .entry(host.clone())
                .or_default()
                .clone();
            let guard = lock.lock_owned().await;
            known_scope = scope_of(&host);
            if known_scope.is_none() {
                discovering = Some(guard);
            }
        }
        let mut token = match known_scope {
            Some(scope) => Some(auth.token(&scope).await?),
            None => None,
        };
        let mut challenges = 0;
        let mut backoff = Backoff::standard();
        loop {
            let started = Instant::now();
            let mut request = self
                .http
                .get(url.clone())
                .header("accept", "application/json")
                .timeout(deadline.remaining().min(Duration::from_secs(30)));
            if let Some(t) = &token {
                request = request.bearer_auth(t.token.expose());
            }
            let resp = match request.send().await {
                Ok(resp) => resp,
                Err(e) => {
                    self.observe(kind, permission, 0, started);
                    let detail = net::error_chain(&e);
                    if backoff.wait(None, deadline).await {
                        self.count_retry(kind);
                        tracing::debug!(vault = %vault.name, %detail, "retrying key vault request");
                        continue;
                    }
                    return Err(KvError::Transport {
                        vault: vault.name.clone(),
                        host,
                        detail,
                    });
                }
            };
            let status = resp.status().as_u16();
            self.observe(kind, permission, status, started);
            tracing::trace!(vault = %vault.name, object = name, status, elapsed_ms = started.elapsed().as_millis() as u64, authenticated = token.is_some(), "key vault response");
            if status == 401 {
                let header = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = net::read_body(resp, 64 * 1024).await.unwrap_or_default();
                let scope = challenge::scope_for(header.as_deref(), &host)?;
                challenges += 1;
                if let Some(rejected) = token.take() {
                    auth.invalidate(&rejected);
                    // One fresh token is worth a try (the cached one may have been revoked);
                    // a second refusal is an authorization problem, not a stale token.
                    if challenges > 2 {
                        return Err(KvError::TokenRejected {
                            vault: vault.name.clone(),
                            message: error_message(&body),
                        });
                    }
                }
                self.scopes
                    .lock()
                    .expect("scope lock")
                    .insert(host.clone(), scope.clone());
                discovering.take();
                token = Some(auth.token(&scope).await?);
                continue;
            }
            let hint = retry::retry_after(resp.headers());
            if retry::retryable_status(status) {
                let body = net::read_body(resp, 64 * 1024).await.unwrap_or_default();
                if backoff.wait(hint, deadline).await {
                    self.count_retry(kind);
                    continue;
                }
                return Err(status_error(
                    vault, kind, name, permission, status, &body, auth,
                ));
            }
            let body = match net::read_body(resp, max_body).await {
                Ok(body) => body,
                Err(e @ net::BodyError::TooLarge(_)) => {
                    return Err(KvError::BadResponse(e.to_string(), vault.name.clone()))
                }
                Err(e) => {
                    if backoff.wait(None, deadline).await {
                        self.count_retry(kind);
                        continue;
                    }
                    return Err(KvError::Transport {
                        vault: vault.name.clone(),
                        host,
                        detail: e.to_string(),
                    });
                }
            };
            if !(200..300).contains(&status) {
                return Err(status_error(
                    vault, kind, name, permission, status, &body, auth,
                ));
            }
            return Ok(body);
        }
    }
}

fn bad_response(vault: &Vault, kind: ObjectType, name: &str, problem: String) -> KvError {
    KvError::BadResponse(
        format!("{} {name}: {problem}", noun(kind)),
        vault.name.clone(),
    )
}

fn object_url(vault: &Vault, kind: ObjectType, name: &str, version: Option<&str>) -> Url {
    // Names and versions were validated to [0-9A-Za-z-], so they need no escaping.
    let path = match version {
        Some(v) => format!("{}/{name}/{v}", collection(kind)),
        None => format!("{}/{name}", collection(kind)),
    };
    let mut url = vault.url.join(&path).expect("validated path segments");
    url.query_pairs_mut()
        .append_pair("api-version", API_VERSION);
    url
}

fn error_message(body: &[u8]) -> String {
    let parsed: models::ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let message: String = parsed.error.message.chars().take(400).collect();
    if message.is_empty() {
        "no error message".into()
    } else {
        message
    }
}

fn status_error(
    vault: &Vault,
    kind: ObjectType,
    name: &str,
    permission: &'static str,
    status: u16,
    body: &[u8],
    auth: &impl Authenticator,
) -> KvError {
    let parsed: models::ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.error.specific_code().to_string();
    let message = error_message(body);
    let vault_name = vault.name.clone();
    match status {
        // A vault that does not exist is a configuration error, not a missing object (an
        // `optional` object must not hide it).
        404 if code != "VaultNotFound" => KvError::NotFound {
            kind: noun(kind),
            name: name.to_string(),
            vault: vault_name,
            status,
            code: if code.is_empty() {
                "NotFound".into()
            } else {
                code
            },
        },
        403 if code.ends_with("Disabled") => KvError::Disabled {
            kind: noun(kind),
            name: name.to_string(),
            vault: vault_name,
            code,
        },
        403 => KvError::Forbidden(Box::new(Forbidden {
            vault: vault_name,
            code: if code.is_empty() {
                "Forbidden".into()
            } else {
                code
            },
            message,
            identity: match auth.client_id() {
                Some(id) => format!("the identity with client id {id}"),
                None => "the identity".into(),
            },
            permission,
            kind: noun(kind),
            role: match kind {
                ObjectType::Secret => "Secrets",
                ObjectType::Key => "Crypto",
                ObjectType::Cert => "Certificate",
            },
        })),
        429 => KvError::Throttled {
            vault: vault_name,
            message,
        },
        _ => KvError::Status {
            vault: vault_name,
            status,
            code,
            message,
        },
    }
}
