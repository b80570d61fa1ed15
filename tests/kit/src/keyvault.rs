//! Fake Azure Key Vault data plane, one server for every vault: the vault is the first label of
//! the `Host` header and the Key Vault resource is `https://` plus the rest, so the same fake
//! serves `kv.vault.azure.net`, `kv.vault.usgovcloudapi.net` or `kv.vault.akv.test`.
//!
//! It answers like Key Vault (api-version 7.x): 401 with a bearer challenge when no or a bad
//! token is presented, 403/404 with Key Vault's error bodies, bundles with full-URL ids and 32-hex
//! versions, `/versions` listings paged with `nextLink`, `/secrets/{name}/` for the latest
//! version as the SDKs send it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::entra::TokenRegistry;
use crate::fault::{self, Faults};
use crate::https::ConnectionKiller;
use crate::seed::{self, Seed};

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvRecord {
    pub vault: String,
    pub path: String,
    /// `secret_get`, `secret_versions`, `key_get`, … (the fault and counter route).
    pub route: String,
    pub had_token: bool,
    pub status: u16,
    /// When the request arrived.
    pub at: tokio::time::Instant,
}

pub struct KeyVault {
    seed: Seed,
    tokens: Arc<TokenRegistry>,
    pub faults: Faults,
    /// Replaces the resource named in challenges (to test domain verification).
    challenge_resource: Mutex<Option<String>>,
    log: Mutex<Vec<KvRecord>>,
    /// Distinct values served (for leak checks).
    served: Mutex<std::collections::BTreeSet<String>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Secret,
    Key,
    Certificate,
}

impl Kind {
    fn from_collection(c: &str) -> Option<Kind> {
        match c {
            "secrets" => Some(Kind::Secret),
            "keys" => Some(Kind::Key),
            "certificates" => Some(Kind::Certificate),
            _ => None,
        }
    }
    fn singular(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Key => "key",
            Kind::Certificate => "certificate",
        }
    }
    fn collection(self) -> &'static str {
        match self {
            Kind::Secret => "secrets",
            Kind::Key => "keys",
            Kind::Certificate => "certificates",
        }
    }
    fn code(self) -> &'static str {
        match self {
            Kind::Secret => "Secret",
            Kind::Key => "Key",
            Kind::Certificate => "Certificate",
        }
    }
}

/// A version of any kind, with what the listing and the bundle need.
struct Version {
    id: String,
    enabled: bool,
    body: Value,
}

impl KeyVault {
    pub fn new(seed: Seed, tokens: Arc<TokenRegistry>) -> KeyVault {
        KeyVault {
            seed,
            tokens,
            faults: Faults::default(),
            challenge_resource: Mutex::default(),
            log: Mutex::default(),
            served: Mutex::default(),
        }
    }

    /// Makes challenges name `resource` instead of the vault's own (None restores it).
    pub fn set_challenge_resource(&self, resource: Option<&str>) {
        *self.challenge_resource.lock().unwrap() = resource.map(str::to_string);
    }

    pub fn requests(&self) -> Vec<KvRecord> {
        self.log.lock().unwrap().clone()
    }

    /// Requests answered 200: objects and listings actually served.
    pub fn served_requests(&self) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.status == 200)
            .count()
    }

    /// The vaults that were asked anything.
    pub fn vaults_asked(&self) -> std::collections::BTreeSet<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.vault.clone())
            .collect()
    }

    /// GETs of objects and listings (challenges excluded).
    pub fn object_requests(&self) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.status != 401)
            .count()
    }

    pub fn reset_log(&self) {
        self.log.lock().unwrap().clear();
        self.faults.reset_counts();
    }

    /// Every secret value, key or certificate served so far (for leak checks).
    pub fn served_values(&self) -> Vec<String> {
        self.served.lock().unwrap().iter().cloned().collect()
    }

    pub fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .fallback(handle)
            .with_state(self.clone())
    }

    fn versions(
        &self,
        vault: &seed::Vault,
        kind: Kind,
        name: &str,
        base: &str,
    ) -> Option<Vec<Version>> {
        let meta_of = |i: usize, m: &seed::Meta| {
            let v = m
                .version
                .clone()
                .unwrap_or_else(|| seed::version_id(name, i));
            (
                v,
                m.enabled.unwrap_or(true),
                m.created.unwrap_or(1_700_000_000 + i as i64 * 60),
            )
        };
        let attrs = |enabled: bool, created: i64| json!({"enabled": enabled, "created": created, "updated": created, "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90});
        Some(match kind {
            Kind::Secret
                if !vault
                    .secrets
                    .iter()
                    .any(|o| o.name.eq_ignore_ascii_case(name)) =>
            {
                // A certificate's backing secret, as Key Vault creates it on import.
                let o = vault
                    .certificates
                    .iter()
                    .find(|o| o.name.eq_ignore_ascii_case(name))?;
                o.versions.iter().enumerate().map(|(i, c)| {
                    let (v, enabled, created) = meta_of(i, &c.meta);
                    let id = format!("{base}/secrets/{}/{v}", o.name);
                    let (value, content_type) = match (&c.pfx, &c.pem) {
                        (Some(pfx), _) => (pfx.clone(), "application/x-pkcs12"),
                        (None, Some(pem)) => (pem.clone(), "application/x-pem-file"),
                        (None, None) => (c.cer.clone(), "application/pkix-cert"),
                    };
                    let body = json!({"value": value, "id": id, "contentType": content_type, "kid": format!("{base}/keys/{}/{v}", o.name), "managed": true, "attributes": attrs(enabled, created), "tags": {}});
                    Version { id, enabled, body }
                }).collect()
            }
            Kind::Key if !vault.keys.iter().any(|o| o.name.eq_ignore_ascii_case(name)) => {
                // A certificate's key: its public part, from the certificate.
                let o = vault
                    .certificates
                    .iter()
                    .find(|o| o.name.eq_ignore_ascii_case(name))?;
                o.versions.iter().enumerate().map(|(i, c)| {
                    let (v, enabled, created) = meta_of(i, &c.meta);
                    let id = format!("{base}/keys/{}/{v}", o.name);
                    let der = base64::engine::general_purpose::STANDARD.decode(&c.cer).unwrap_or_default();
                    let mut jwk = jwk_of_certificate(&der);
                    jwk.insert("kid".into(), json!(id));
                    Version { id, enabled, body: json!({"key": jwk, "attributes": attrs(enabled, created), "managed": true}) }
                }).collect()
            }
            Kind::Secret => {
                let o = vault
                    .secrets
                    .iter()
                    .find(|o| o.name.eq_ignore_ascii_case(name))?;
                o.versions.iter().enumerate().map(|(i, s)| {
                    let (v, enabled, created) = meta_of(i, &s.meta);
                    let id = format!("{base}/secrets/{}/{v}", o.name);
                    let mut body = json!({"value": s.value, "id": id, "attributes": attrs(enabled, created), "tags": {}});
                    if let Some(ct) = &s.content_type { body["contentType"] = json!(ct); }
                    if let Some(kid) = &s.kid { body["kid"] = json!(kid); body["managed"] = json!(true); }
                    Version { id, enabled, body }
                }).collect()
            }
            Kind::Key => {
                let o = vault
                    .keys
                    .iter()
                    .find(|o| o.name.eq_ignore_ascii_case(name))?;
                o.versions.iter().enumerate().map(|(i, k)| {
                    let (v, enabled, created) = meta_of(i, &k.meta);
                    let id = format!("{base}/keys/{}/{v}", o.name);
                    let mut jwk = k.jwk.clone();
                    jwk.insert("kid".into(), json!(id));
                    jwk.entry("key_ops").or_insert(json!(["verify", "sign"]));
                    Version { id, enabled, body: json!({"key": jwk, "attributes": attrs(enabled, created), "tags": {}}) }
                }).collect()
            }
            Kind::Certificate => {
                let o = vault
                    .certificates
                    .iter()
                    .find(|o| o.name.eq_ignore_ascii_case(name))?;
                o.versions
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let (v, enabled, created) = meta_of(i, &c.meta);
                        let id = format!("{base}/certificates/{}/{v}", o.name);
                        let der = base64::engine::general_purpose::STANDARD
                            .decode(&c.cer)
                            .unwrap_or_default();
                        let x5t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
                            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der),
                        );
                        let body = json!({
                            "id": id,
                            "kid": format!("{base}/keys/{}/{v}", o.name),
                            "sid": format!("{base}/secrets/{}/{v}", o.name),
                            "x5t": x5t,
                            "cer": c.cer,
                            "attributes": attrs(enabled, created),
                            "policy": {"id": format!("{base}/certificates/{}/policy", o.name)},
                        });
                        Version { id, enabled, body }
                    })
                    .collect()
            }
        })
    }
}

/// The JWK of a certificate's public key (RSA or EC on P-256/384/521).
fn jwk_of_certificate(der: &[u8]) -> serde_json::Map<String, Value> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    use x509_parser::public_key::PublicKey;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let mut jwk = serde_json::Map::new();
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return jwk;
    };
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            jwk.insert("kty".into(), json!("RSA"));
            let trim = |b: &[u8]| {
                b.iter()
                    .skip_while(|x| **x == 0)
                    .copied()
                    .collect::<Vec<u8>>()
            };
            jwk.insert("n".into(), json!(b64(&trim(rsa.modulus))));
            jwk.insert("e".into(), json!(b64(&trim(rsa.exponent))));
        }
        Ok(PublicKey::EC(point)) => {
            let data = point.data();
            let size = (data.len() - 1) / 2;
            let curve = match size {
                32 => "P-256",
                48 => "P-384",
                _ => "P-521",
            };
            jwk.insert("kty".into(), json!("EC"));
            jwk.insert("crv".into(), json!(curve));
            jwk.insert("x".into(), json!(b64(&data[1..1 + size])));
            jwk.insert("y".into(), json!(b64(&data[1 + size..])));
        }
        _ => {}
    }
    jwk
}

fn kv_error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let Some(inner) = inner {
        error["innererror"] = json!({"code": inner});
    }
    (status, axum::Json(json!({"error": error}))).into_response()
}

async fn handle(
    State(kv): State<Arc<KeyVault>>,
    Extension(killer): Extension<ConnectionKiller>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let at = tokio::time::Instant::now();
    let host = crate::https::request_host(&uri, &headers);
    let host_name = host.split(':').next().unwrap_or("").to_ascii_lowercase();
    let (vault_name, suffix) = host_name.split_once('.').unwrap_or((&host_name, ""));
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let kind = segments.first().and_then(|c| Kind::from_collection(c));
    let name = segments.get(1).copied().unwrap_or("");
    let rest = &segments[2.min(segments.len())..];
    let listing = rest.first() == Some(&"versions");
    let route = match kind {
        Some(k) => format!(
            "{}_{}",
            k.singular(),
            if listing { "versions" } else { "get" }
        ),
        None => "other".to_string(),
    };
    let bearer = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_string);
    let response = match kv.faults.enter(&route).await {
        Some(f) => fault::apply(f, Some(&killer), json!({"error": {"code": "Throttled", "message": "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"}})).await,
        None => kv.answer(vault_name, suffix, &host, kind, name, rest, listing, &query, bearer.as_deref()),
    };
    kv.log.lock().unwrap().push(KvRecord {
        vault: vault_name.to_string(),
        path: uri.path().to_string(),
        route,
        had_token: bearer.is_some(),
        status: response.status().as_u16(),
        at,
    });
    response
}

impl KeyVault {
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &self,
        vault_name: &str,
        suffix: &str,
        host: &str,
        kind: Option<Kind>,
        name: &str,
        rest: &[&str],
        listing: bool,
        query: &BTreeMap<String, String>,
        bearer: Option<&str>,
    ) -> Response {
        let Some(vault) = self
            .seed
            .vaults
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(vault_name))
        else {
            // Real DNS would not resolve an unknown vault; the closest answer a server can give.
            return kv_error(
                StatusCode::NOT_FOUND,
                "VaultNotFound",
                &format!("Vault {vault_name} does not exist."),
                None,
            );
        };
        let resource = format!("https://{suffix}");
        let challenge_resource = self
            .challenge_resource
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| resource.clone());
        let challenge = |extra: &str| {
            let value = format!(
                "Bearer authorization=\"https://login.microsoftonline.com/{}\", resource=\"{challenge_resource}\"{extra}",
                vault.tenant
            );
            value
        };
        let unauthorized = |extra: &str, message: &str| {
            let mut r = kv_error(StatusCode::UNAUTHORIZED, "Unauthorized", message, None);
            r.headers_mut()
                .insert("www-authenticate", challenge(extra).parse().unwrap());
            r
        };
        let Some(token) = bearer else {
            return unauthorized("", "AKV10000: Request is missing a Bearer or PoP token.");
        };
        let Some(issued) = self.tokens.lookup(token) else {
            return unauthorized(
                ", error=\"invalid_token\"",
                "AKV10022: Invalid token: the token was not issued by a trusted issuer.",
            );
        };
        if issued.expires_at <= Instant::now() {
            return unauthorized(
                ", error=\"invalid_token\"",
                "AKV10032: Invalid token: the token has expired.",
            );
        }
        if issued.resource != resource {
            return unauthorized(
                ", error=\"invalid_token\"",
                &format!(
                    "AKV10022: Invalid audience. Expected {resource}, found: {}.",
                    issued.resource
                ),
            );
        }
        if issued.tenant != vault.tenant {
            return unauthorized(", error=\"invalid_token\"", &format!("AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{}/, found https://sts.windows.net/{}/.", vault.tenant, issued.tenant));
        }
        let api_ok = query.get("api-version").is_some_and(|v| {
            v.strip_prefix("7.")
                .and_then(|m| m.split('-').next()?.parse::<u32>().ok())
                .is_some_and(|m| m >= 4)
                || v.starts_with("2025-")
        });
        if !api_ok {
            return kv_error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                "The request URI contains an invalid API version.",
                None,
            );
        }
        let Some(kind) = kind else {
            return kv_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "The requested resource was not found.",
                None,
            );
        };
        let permission = if listing { "list" } else { "get" };
        let granted = vault.access.iter().any(|a| {
            a.client_id == issued.client_id
                && match kind {
                    Kind::Secret => &a.secrets,
                    Kind::Key => &a.keys,
                    Kind::Certificate => &a.certificates,
                }
                .iter()
                .any(|p| p == permission)
        });
        if !granted {
            let message = format!(
                "The user, group or application 'appid={};oid=00000000-0000-0000-0000-000000000000;iss=https://sts.windows.net/{}/' does not have {}s {permission} permission on key vault '{};location=eastus'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
                issued.client_id, vault.tenant, kind.singular(), vault.name
            );
            return kv_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &message,
                Some("AccessDenied"),
            );
        }
        let base = format!("https://{host}");
        let not_found = |what: &str| {
            kv_error(
                StatusCode::NOT_FOUND,
                &format!("{}NotFound", kind.code()),
                &format!("A {} with (name/id) {what} was not found in this key vault. If you recently deleted this {} you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", kind.singular(), kind.singular()),
                None,
            )
        };
        let Some(versions) = self.versions(vault, kind, name, &base) else {
            // Key Vault lists no versions (200, empty) of an object that does not exist; only a
            // GET answers 404.
            if listing {
                return axum::Json(json!({"value": [], "nextLink": null})).into_response();
            }
            return not_found(name);
        };
        if listing {
            let max: usize = query
                .get("maxresults")
                .and_then(|m| m.parse().ok())
                .unwrap_or(25)
                .clamp(1, 25);
            let skip: usize = query
                .get("$skiptoken")
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            let page: Vec<Value> = versions
                .iter()
                .skip(skip)
                .take(max)
                .map(|v| {
                    let mut item = json!({"attributes": v.body["attributes"].clone()});
                    match kind {
                        Kind::Key => item["kid"] = json!(v.id),
                        _ => item["id"] = json!(v.id),
                    }
                    if let Some(ct) = v.body.get("contentType") {
                        item["contentType"] = ct.clone();
                    }
                    item
                })
                .collect();
            let next = (skip + max < versions.len()).then(|| {
                format!(
                    "{base}/{}/{name}/versions?api-version=7.5&maxresults={max}&$skiptoken={}",
                    kind.collection(),
                    skip + max
                )
            });
            return axum::Json(json!({"value": page, "nextLink": next})).into_response();
        }
        let version = match rest {
            [] | [""] => versions.last(),
            [v] => versions
                .iter()
                .find(|x| x.id.rsplit('/').next() == Some(*v)),
            _ => None,
        };
        let Some(version) = version else {
            return not_found(&format!("{name}/{}", rest.join("/")));
        };
        if !version.enabled {
            return kv_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &format!(
                    "Operation get is not allowed on a disabled {}.",
                    kind.singular()
                ),
                Some(&format!("{}Disabled", kind.code())),
            );
        }
        let served = match kind {
            Kind::Secret => version.body["value"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            Kind::Key => version.body["key"].to_string(),
            Kind::Certificate => version.body["cer"].as_str().unwrap_or_default().to_string(),
        };
        self.served.lock().unwrap().insert(served);
        axum::Json(version.body.clone()).into_response()
    }
}
