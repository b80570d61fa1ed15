//! A thin Key Vault data-plane client over the documented REST API: GET of secrets, keys and
//! certificates (latest or pinned) and their version listings, speaking the 401 bearer challenge.
//!
//! The challenge's scope is remembered per vault host, so after the first mount every request
//! carries a token on the first try (and a fresh challenge is still honoured). Throttling and
//! server faults are retried within the mount's deadline ([`crate::http`]); Key Vault's error
//! bodies become messages that name the object and say what to fix ([`error`]).

mod challenge;
mod error;
mod models;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use url::Url;

pub use challenge::scope_for as challenge_scope;
pub use error::KvError;
pub use models::{
    parse_certificate, parse_key, parse_secret, parse_versions, Object, SecretBundle, VersionItem,
};

use crate::http::{self, Answer, CallError, Event, Pause, Policy};
use crate::identity::{AccessToken, IdentityError};
use crate::metrics::Metrics;
use crate::retry::Deadline;
use crate::spec::ObjectType;

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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// One object of one vault: `version` `None` is the latest (and is ignored by listings).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub vault: Arc<Vault>,
    pub kind: ObjectType,
    pub name: String,
    pub version: Option<String>,
}

impl ObjectRef {
    fn url(&self) -> Url {
        // Names and versions were validated to [0-9A-Za-z-], so they need no escaping.
        let path = match &self.version {
            Some(v) => format!("{}/{}/{v}", collection(self.kind), self.name),
            None => format!("{}/{}", collection(self.kind), self.name),
        };
        let mut url = self.vault.url.join(&path).expect("validated path segments");
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        url
    }

    fn versions_url(&self) -> Url {
        let path = format!("{}/{}/versions", collection(self.kind), self.name);
        let mut url = self.vault.url.join(&path).expect("validated path segments");
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        url
    }

    /// "secret db-password", for messages.
    fn describe(&self) -> String {
        format!("{} {}", noun(self.kind), self.name)
    }
}

/// What a request does, which is also the permission it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Get,
    List,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::List => "list",
        }
    }
}

/// The Key Vault client; one per process, shared by all mounts.
pub struct KeyVault {
    http: reqwest::Client,
    /// Scope from the last challenge of each vault host.
    scopes: Mutex<HashMap<String, String>>,
    /// One unauthenticated discovery request per vault host at a time: concurrent first
    /// requests wait for its challenge instead of each paying a 401 round trip.
    discovery: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Each vault's throttling pause, observed by every mount on the node.
    pauses: Mutex<HashMap<String, Arc<Pause>>>,
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
            pauses: Mutex::default(),
            metrics,
        }
    }

    /// The vault's pause: a 429 with Retry-After holds back every request to it.
    fn pause_of(&self, vault: &Vault) -> Arc<Pause> {
        self.pauses
            .lock()
            .expect("pauses lock")
            .entry(vault.host().to_string())
            .or_default()
            .clone()
    }

    /// GETs one object version.
    pub async fn get(
        &self,
        object: &ObjectRef,
        auth: &impl Authenticator,
        deadline: Deadline,
    ) -> Result<Object, KvError> {
        let body = self
            .get_body(object, Operation::Get, object.url(), auth, deadline)
            .await?;
        match object.kind {
            ObjectType::Secret => parse_secret(&body).map(Object::Secret),
            ObjectType::Key => parse_key(&body).map(Object::Key),
            ObjectType::Cert => parse_certificate(&body).map(Object::Cert),
        }
        .map_err(|e| KvError::bad_response(object, format!("{}: {e}", object.describe())))
    }

    /// Lists every version of an object, following `nextLink` pages on the same vault.
    pub async fn list_versions(
        &self,
        object: &ObjectRef,
        auth: &impl Authenticator,
        deadline: Deadline,
    ) -> Result<Vec<VersionItem>, KvError> {
        let mut url = object.versions_url();
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let body = self
                .get_body(object, Operation::List, url.clone(), auth, deadline)
                .await?;
            let page = parse_versions(&body).map_err(|e| {
                KvError::bad_response(object, format!("{}: {e}", object.describe()))
            })?;
            items.extend(page.items);
            match page.next_link {
                None => return Ok(items),
                Some(next) => url = next_page(object, &next)?,
            }
        }
        Err(KvError::bad_response(
            object,
            format!(
                "{} has more than {MAX_PAGES} pages of versions",
                object.describe()
            ),
        ))
    }

    /// A token for the vault of `object`, for the scope its host's challenge names (learnt once
    /// per host, with one unauthenticated request). Obtaining it proves the mount's identity.
    pub async fn authenticate(
        &self,
        object: &ObjectRef,
        auth: &impl Authenticator,
        deadline: Deadline,
    ) -> Result<Arc<AccessToken>, KvError> {
        let scope = self.scope(object, auth, deadline).await?;
        Ok(auth.token(&scope).await?)
    }

    /// The scope of the object's vault host, asking for its challenge if it is not known yet.
    async fn scope(
        &self,
        object: &ObjectRef,
        auth: &impl Authenticator,
        deadline: Deadline,
    ) -> Result<String, KvError> {
        let host = object.vault.host();
        let known = || self.scopes.lock().expect("scope lock").get(host).cloned();
        if let Some(scope) = known() {
            return Ok(scope);
        }
        // One discovery request per host at a time: concurrent first mounts wait for its
        // challenge instead of each paying the round trip.
        let lock = self
            .discovery
            .lock()
            .expect("discovery lock")
            .entry(host.to_string())
            .or_default()
            .clone();
        let _discovering = lock.lock().await;
        if let Some(scope) = known() {
            return Ok(scope);
        }
        let answer = self
            .send(object, Operation::Get, object.url(), None, deadline)
            .await?;
        match answer.status {
            401 => self.learn_scope(object, &answer),
            200..=299 => Err(KvError::bad_response(
                object,
                "answered a request without a token instead of challenging it".into(),
            )),
            _ => Err(KvError::from_status(object, "get", &answer, auth)),
        }
    }

    /// Reads and remembers the scope of a 401 challenge, if the vault's domain may use it.
    fn learn_scope(&self, object: &ObjectRef, answer: &Answer) -> Result<String, KvError> {
        let host = object.vault.host();
        let header = answer
            .headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok());
        let scope = challenge::scope_for(header, host)?;
        self.scopes
            .lock()
            .expect("scope lock")
            .insert(host.to_string(), scope.clone());
        Ok(scope)
    }

    /// One authenticated GET; the body of a 2xx answer. A token Key Vault refuses is dropped and
    /// replaced once (the cached one may have been revoked); a second refusal is an
    /// authorization problem, not a stale token.
    async fn get_body(
        &self,
        object: &ObjectRef,
        operation: Operation,
        url: Url,
        auth: &impl Authenticator,
        deadline: Deadline,
    ) -> Result<Vec<u8>, KvError> {
        let mut token = self.authenticate(object, auth, deadline).await?;
        let mut refused = false;
        loop {
            let answer = self
                .send(object, operation, url.clone(), Some(&token), deadline)
                .await?;
            match answer.status {
                200..=299 => return Ok(answer.body),
                401 if !refused => {
                    let scope = self.learn_scope(object, &answer)?;
                    auth.invalidate(&token);
                    refused = true;
                    token = auth.token(&scope).await?;
                }
                401 => return Err(KvError::token_rejected(object, &answer.body)),
                _ => {
                    return Err(KvError::from_status(
                        object,
                        operation.as_str(),
                        &answer,
                        auth,
                    ))
                }
            }
        }
    }

    /// One GET with retries, recorded in the metrics.
    async fn send(
        &self,
        object: &ObjectRef,
        operation: Operation,
        url: Url,
        token: Option<&AccessToken>,
        deadline: Deadline,
    ) -> Result<Answer, KvError> {
        let policy = Policy {
            pause: Some(self.pause_of(&object.vault)),
            ..Policy::standard(match operation {
                Operation::Get => MAX_OBJECT_BODY,
                Operation::List => MAX_LIST_BODY,
            })
        };
        let observe = |event| match event {
            Event::Exchange { status, elapsed } => {
                self.metrics.keyvault_exchange(
                    &object.vault.name,
                    object.kind,
                    operation.as_str(),
                    status,
                    elapsed,
                );
                tracing::trace!(vault = %object.vault.name, object = %object.name, status, elapsed_ms = elapsed.as_millis() as u64, authenticated = token.is_some(), "key vault response");
            }
            Event::Retry => self.metrics.keyvault_retry(&object.vault.name, object.kind),
        };
        let build = || {
            let request = self
                .http
                .get(url.clone())
                .header("accept", "application/json");
            match token {
                Some(t) => request.bearer_auth(t.token.expose()),
                None => request,
            }
        };
        http::call(build, &policy, deadline, &observe)
            .await
            .map_err(|e| match e {
                CallError::TooLarge(_) => KvError::bad_response(object, e.to_string()),
                CallError::Transport(detail) => KvError::Transport {
                    vault: object.vault.name.clone(),
                    host: object.vault.host().to_string(),
                    detail,
                },
                CallError::Paused(wait) => KvError::Throttled {
                    vault: object.vault.name.clone(),
                    message: format!(
                        "it asked for a pause of another {}s (Retry-After), which this mount's deadline does not leave",
                        wait.as_secs()
                    ),
                },
            })
    }
}

/// The next page of a listing, only if it stays on the vault: the token must never leave it.
fn next_page(object: &ObjectRef, next: &str) -> Result<Url, KvError> {
    let vault = &object.vault;
    let next = Url::parse(next)
        .map_err(|_| KvError::bad_response(object, "nextLink is not a URL".into()))?;
    if next.scheme() != "https"
        || next.host_str() != Some(vault.host())
        || next.port() != vault.url.port()
    {
        return Err(KvError::bad_response(
            object,
            format!(
                "nextLink points away from the vault ({})",
                next.host_str().unwrap_or("")
            ),
        ));
    }
    Ok(next)
}
