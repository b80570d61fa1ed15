//! The Entra ID v2 token endpoint (`POST {authority}{tenant}/oauth2/v2.0/token`) for the client
//! credentials grant, with a client secret (service principal), a client assertion signed with a
//! certificate (certificate service principal) or a federated client assertion (the
//! service-account token of workload identity), and its AADSTS errors turned into advice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use url::Url;

use super::assertion::{Algorithm, Claims};
use super::token::OAuthError;
use super::{AccessToken, Endpoint, Identity, IdentityError, Problem, TokenRequest};
use crate::cache::CacheKey;
use crate::http::{self, Policy};
use crate::retry::Deadline;
use crate::secret::Secret;
use crate::spec::ClientCertificate;

pub enum Grant<'a> {
    Secret(&'a Secret),
    /// A token issued by someone Entra ID trusts (federation): used as it is.
    Assertion(&'a Secret),
    /// An assertion signed afresh for every attempt with the certificate's key.
    Certificate {
        certificate: &'a ClientCertificate,
        /// `--send-certificate-chain`: add `x5c` for subject name and issuer authentication.
        send_chain: bool,
    },
}

/// Which credential Entra ID judged, for advice on its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Secret,
    Federated,
    Certificate,
}

impl Grant<'_> {
    fn kind(&self) -> Kind {
        match self {
            Grant::Secret(_) => Kind::Secret,
            Grant::Assertion(_) => Kind::Federated,
            Grant::Certificate { .. } => Kind::Certificate,
        }
    }
}

/// Token responses are small; anything larger is not Entra ID.
const MAX_BODY: usize = 64 * 1024;

/// One client-credentials grant: where it goes and what it proves.
pub struct Exchange<'a> {
    pub http: &'a reqwest::Client,
    pub url: Url,
    /// The `Host` header, when it differs from the URL's (the identity-binding proxy).
    pub host: Option<&'a str>,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub grant: Grant<'a>,
    /// The client never uses a proxy (the identity-binding token proxy's own client).
    pub direct: bool,
    /// The tenant in the URL: AD FS (`adfs`) gets RS256 assertions, Entra ID PS256.
    pub tenant: &'a str,
}

/// Requests a token from the cloud's authority host.
pub async fn token(
    http: &reqwest::Client,
    req: &TokenRequest<'_>,
    client_id: &str,
    grant: Grant<'_>,
    key: CacheKey,
    deadline: Deadline,
) -> Result<AccessToken, IdentityError> {
    let endpoint = || Endpoint::Entra {
        client_id: client_id.to_string(),
        tenant: req.tenant.to_string(),
    };
    let url = req
        .cloud
        .authority_host
        .join(&format!("{}/oauth2/v2.0/token", req.tenant))
        .map_err(|e| {
            IdentityError::new(
                endpoint(),
                Problem::Url {
                    what: "token",
                    detail: e.to_string(),
                },
            )
        })?;
    let exchange = Exchange {
        http,
        url,
        host: None,
        client_id,
        scope: req.scope,
        grant,
        direct: false,
        tenant: req.tenant,
    };
    let identity = Identity {
        mode: req.credential.mode_name(),
        issuer: req.cloud.authority_host.to_string(),
        tenant: req.tenant.to_string(),
        client_id: client_id.to_string(),
    };
    exchange
        .run(key, identity, deadline)
        .await
        .map_err(|problem| IdentityError::new(endpoint(), problem))
}

impl Exchange<'_> {
    /// POSTs the grant and reads the token, issued to `identity`.
    pub async fn run(
        &self,
        key: CacheKey,
        identity: Identity,
        deadline: Deadline,
    ) -> Result<AccessToken, Problem> {
        let first = self.form()?;
        // A retried certificate grant carries a new assertion (its own jti): an endpoint that
        // saw the first one may refuse it as replayed. Signing cannot fail once it has worked,
        // but should it, the first assertion is still valid and is sent again.
        let sent = AtomicBool::new(false);
        let build = || {
            let fresh = matches!(self.grant, Grant::Certificate { .. })
                && sent.swap(true, Ordering::Relaxed);
            let body = match fresh {
                true => self.form().unwrap_or_else(|_| first.clone()),
                false => first.clone(),
            };
            let mut request = self.http.post(self.url.clone());
            if let Some(host) = self.host {
                request = request.header("host", host);
            }
            request
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(body.expose().to_string())
        };
        let policy = Policy {
            direct: self.direct,
            ..Policy::standard(MAX_BODY)
        };
        let answer = http::call(build, &policy, deadline, &|_| {})
            .await
            .map_err(|source| Problem::Unreachable {
                url: self.url.to_string(),
                source,
            })?;
        if answer.is_success() {
            return AccessToken::from_answer(&answer, self.url.as_str(), key, identity);
        }
        let error = OAuthError::of(&answer);
        Err(Problem::Refused(describe(
            answer.status,
            &error,
            self.grant.kind(),
        )))
    }

    /// The form body of one attempt.
    fn form(&self) -> Result<Secret, Problem> {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id),
            ("scope", self.scope),
        ];
        let signed;
        let assertion = match self.grant {
            Grant::Secret(secret) => {
                form.push(("client_secret", secret.expose()));
                None
            }
            Grant::Assertion(assertion) => Some(assertion),
            Grant::Certificate {
                certificate,
                send_chain,
            } => {
                let claims = Claims {
                    certificate,
                    client_id: self.client_id,
                    audience: self.url.as_str(),
                    algorithm: Algorithm::for_tenant(self.tenant),
                    send_chain,
                };
                signed = claims
                    .sign(SystemTime::now())
                    .map_err(|e| Problem::Setup(e.to_string()))?;
                Some(&signed)
            }
        };
        if let Some(assertion) = assertion {
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
            form.push(("client_assertion", assertion.expose()));
        }
        Ok(Secret::new(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&form)
                .finish(),
        ))
    }
}

/// Entra's own error, shortened to its first sentence group (the rest is trace ids), plus what
/// to fix for the codes users hit most.
fn describe(status: u16, error: &OAuthError, kind: Kind) -> String {
    let description = error
        .error_description
        .split(" Trace ID:")
        .next()
        .unwrap_or("")
        .lines()
        .next()
        .unwrap_or("")
        .trim();
    let mut text = format!(
        "{status} {}",
        if error.error.is_empty() {
            "error"
        } else {
            &error.error
        }
    );
    if !description.is_empty() {
        text.push_str(": ");
        text.extend(description.chars().take(400));
    }
    let code = error.error_codes.first().copied().or_else(|| {
        let digits: String = description
            .strip_prefix("AADSTS")?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    });
    if let Some(advice) = code.and_then(|code| advice(code, kind)) {
        text.push_str(" (");
        text.push_str(advice);
        text.push(')');
    }
    text
}

/// What to fix for an AADSTS code, given the credential Entra ID judged.
fn advice(code: u64, kind: Kind) -> Option<&'static str> {
    Some(match (code, kind) {
        (700016, _) => "check clientID and tenantID: the application is not registered in this tenant",
        (90002 | 900023, _) => "check tenantID: the tenant does not exist in this cloud",
        (7000215 | 7000222, _) => "the client secret is wrong or expired: update clientsecret in the nodePublishSecretRef Secret",
        (70021 | 700211 | 700212 | 700213, _) => "no federated identity credential matches the service-account token: check the credential's issuer (the cluster's OIDC issuer URL), subject system:serviceaccount:<namespace>:<service account> and audience api://AzureADTokenExchange",
        (700027, _) => "the certificate in clientcertificate is not registered on the application, has expired there, or does not match its signature: upload the certificate (the thumbprint above) under Certificates & secrets of the app registration, or, for subject name and issuer authentication, run the provider with --send-certificate-chain=true",
        (700030, _) => "the certificate's subject is not trusted by the application (trustedCertificateSubjects): check the subject name, and that the chain in clientcertificate leads to the trusted issuer",
        (50032, _) => "the certificate's RSA key is too short: use a key of 2048 bits or more",
        (700024, Kind::Certificate) => "the client assertion is outside its valid time: check the node's clock",
        (700024, _) => "the service-account token has expired: the driver sends a fresh one on the next mount",
        (50027 | 50048 | 700021, Kind::Certificate) => "Entra ID refused the client assertion: check that clientid is the application (client) id and tenantID the application's tenant",
        (50027 | 50126, _) => "the service-account token is not a valid JWT for this issuer",
        (1002012 | 70011, _) => "the requested scope is not valid for Key Vault",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_by_code() {
        let e = OAuthError {
            error: "unauthorized_client".into(),
            error_description: "AADSTS700016: Application with identifier 'x' was not found in the directory 'y'. Trace ID: abc Correlation ID: def".into(),
            error_codes: vec![700016],
        };
        let text = describe(400, &e, Kind::Secret);
        assert!(text.starts_with(
            "400 unauthorized_client: AADSTS700016: Application with identifier 'x' was not found"
        ));
        assert!(!text.contains("Trace ID"));
        assert!(text.contains("check clientID and tenantID"));
        let e = OAuthError {
            error: "invalid_client".into(),
            error_description: "AADSTS700213: No matching federated identity record found".into(),
            error_codes: vec![],
        };
        assert!(describe(400, &e, Kind::Federated).contains("subject system:serviceaccount:"));
        let e = OAuthError {
            error: "invalid_client".into(),
            error_description: "AADSTS700024: Client assertion is not within its valid time range."
                .into(),
            error_codes: vec![700024],
        };
        assert!(describe(400, &e, Kind::Certificate).contains("check the node's clock"));
        assert!(describe(400, &e, Kind::Federated).contains("the driver sends a fresh one"));
    }
}
