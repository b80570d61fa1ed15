//! Access tokens for Key Vault, for every identity mode: workload identity and service principal
//! (client secret or certificate) through the Entra ID v2 token endpoint, VM managed identity through IMDS, pod identity through
//! NMI. Tokens are cached per credential material (see [`crate::cache`]) and fetched once for
//! concurrent mounts.

mod assertion;
mod entra;
mod error;
mod imds;
mod nmi;
mod proven;
mod proxy;
mod token;

use std::sync::Arc;

use url::Url;

pub use error::{Endpoint, IdentityError, Problem};
pub use proven::Identity;
pub use proxy::{sni_for_cluster, ProxyError, TokenProxyConfig};
pub use token::AccessToken;

use crate::cache::{Cache, CacheKey, KeyBuilder, Source};
use crate::cloud::Cloud;
use crate::metrics::Metrics;
use crate::retry::Deadline;
use crate::spec::Credential;

/// Where the node-local identity endpoints are.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// `--imds-endpoint`, default `http://169.254.169.254`.
    pub imds_endpoint: Url,
    /// `--nmi-endpoint`, default `http://localhost:2579`.
    pub nmi_endpoint: Url,
    pub token_proxy: TokenProxyConfig,
    /// `--send-certificate-chain`: certificate service principals send `x5c` (subject name and
    /// issuer authentication).
    pub send_certificate_chain: bool,
}

/// Who a token is requested for.
#[derive(Clone, Copy)]
pub struct TokenRequest<'a> {
    pub cloud: &'a Cloud,
    pub tenant: &'a str,
    pub credential: &'a Credential,
    /// OAuth scope from the Key Vault challenge, e.g. `https://vault.azure.net/.default`.
    pub scope: &'a str,
}

/// Distinct credentials whose tokens are kept; far above one node's pods.
const TOKEN_CACHE_ENTRIES: usize = 16 * 1024;

/// Hands out access tokens; one per process, shared by all mounts.
pub struct Tokens {
    http: reqwest::Client,
    config: IdentityConfig,
    cache: Cache<AccessToken>,
    proxy: proxy::TokenProxy,
    metrics: Arc<Metrics>,
}

impl Tokens {
    /// `fallback_tls` is used for the token proxy when the service-account CA file is absent.
    pub fn new(
        http: reqwest::Client,
        config: IdentityConfig,
        fallback_tls: rustls::ClientConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Tokens {
            http,
            proxy: proxy::TokenProxy::new(config.token_proxy.clone(), fallback_tls),
            config,
            cache: Cache::new(TOKEN_CACHE_ENTRIES),
            metrics,
        }
    }

    /// The cache key `req` maps to: equal keys mean equal credential material and scope.
    pub fn key(&self, req: &TokenRequest) -> CacheKey {
        KeyBuilder::default()
            .key(&self.principal(req.cloud, req.tenant, req.credential))
            .part(req.scope)
            .finish()
    }

    /// Identifies the credential material a mount presents (without scope): two mounts with
    /// equal principals would obtain the same tokens, so may share what those tokens fetch.
    pub fn principal(&self, cloud: &Cloud, tenant: &str, credential: &Credential) -> CacheKey {
        let req = TokenRequest {
            cloud,
            tenant,
            credential,
            scope: "",
        };
        let k = KeyBuilder::default();
        match req.credential {
            Credential::WorkloadIdentity {
                client_id,
                assertion,
            } => k
                .part("workload-identity")
                .part(req.cloud.authority_host.as_str())
                .part(req.tenant)
                .part(client_id)
                .part(assertion.expose()),
            Credential::ServicePrincipal { client_id, secret } => k
                .part("service-principal")
                .part(req.cloud.authority_host.as_str())
                .part(req.tenant)
                .part(client_id)
                .part(secret.expose()),
            // The thumbprint, not the key: the parser proved that the mount holds the key of
            // exactly this certificate.
            Credential::ServicePrincipalCertificate {
                client_id,
                certificate,
            } => k
                .part("service-principal-certificate")
                .part(req.cloud.authority_host.as_str())
                .part(req.tenant)
                .part(client_id)
                .part(&hex::encode(certificate.sha256())),
            Credential::VmManagedIdentity { client_id } => k
                .part("imds")
                .part(self.config.imds_endpoint.as_str())
                .part(client_id.as_deref().unwrap_or("<system-assigned>")),
            Credential::PodIdentity { namespace, name } => k
                .part("nmi")
                .part(self.config.nmi_endpoint.as_str())
                .part(namespace)
                .part(name)
                .part(&req.cloud.key_vault_resource),
            Credential::IdentityBinding {
                client_id,
                assertion,
            } => k
                .part("identity-binding")
                .part(self.config.token_proxy.url.as_str())
                .part(
                    self.config
                        .token_proxy
                        .sni
                        .as_deref()
                        .unwrap_or("<computed>"),
                )
                .part(req.tenant)
                .part(client_id)
                .part(assertion.expose()),
        }
        .finish()
    }

    /// A token for `req`, from the cache when the same credential material got one recently.
    pub async fn token(
        &self,
        req: &TokenRequest<'_>,
        deadline: Deadline,
    ) -> Result<Arc<AccessToken>, IdentityError> {
        let key = self.key(req);
        let result = self
            .cache
            .get_or_fetch(key, || Box::pin(self.fetch(req, key, deadline)))
            .await;
        let mode = req.credential.mode_name();
        match &result {
            Ok((_, Source::Cache)) => self.metrics.cache_lookup("token", true),
            Ok((_, Source::Upstream)) => {
                self.metrics.cache_lookup("token", false);
                self.metrics.token_request(mode, true);
            }
            Err(_) => self.metrics.token_request(mode, false),
        }
        let (token, source) = result?;
        tracing::debug!(mode = req.credential.mode_name(), key = ?key, ?source, "access token");
        Ok(token)
    }

    /// Drops a token Key Vault refused, so the next call fetches a new one.
    pub fn invalidate(&self, token: &Arc<AccessToken>) {
        self.cache.invalidate(&token.key, token);
    }

    async fn fetch(
        &self,
        req: &TokenRequest<'_>,
        key: CacheKey,
        deadline: Deadline,
    ) -> Result<AccessToken, IdentityError> {
        match req.credential {
            Credential::WorkloadIdentity {
                client_id,
                assertion,
            } => {
                let grant = entra::Grant::Assertion(assertion);
                entra::token(&self.http, req, client_id, grant, key, deadline).await
            }
            Credential::ServicePrincipal { client_id, secret } => {
                let grant = entra::Grant::Secret(secret);
                entra::token(&self.http, req, client_id, grant, key, deadline).await
            }
            Credential::ServicePrincipalCertificate {
                client_id,
                certificate,
            } => {
                let grant = entra::Grant::Certificate {
                    certificate,
                    send_chain: self.config.send_certificate_chain,
                };
                entra::token(&self.http, req, client_id, grant, key, deadline).await
            }
            Credential::VmManagedIdentity { client_id } => {
                let resource = req.scope.trim_end_matches("/.default");
                imds::token(
                    &self.http,
                    &self.config.imds_endpoint,
                    client_id.as_deref(),
                    resource,
                    key,
                    deadline,
                )
                .await
            }
            Credential::PodIdentity { namespace, name } => {
                nmi::token(
                    &self.http,
                    &self.config.nmi_endpoint,
                    namespace,
                    name,
                    &req.cloud.key_vault_resource,
                    key,
                    deadline,
                )
                .await
            }
            Credential::IdentityBinding {
                client_id,
                assertion,
            } => {
                self.proxy
                    .token(req, client_id, assertion, key, deadline)
                    .await
            }
        }
    }
}
