//! The Entra ID v2 token endpoint (`POST {authority}{tenant}/oauth2/v2.0/token`) for the client
//! credentials grant, with a client secret (service principal) or a client assertion (the
//! federated service-account token of workload identity), and its AADSTS errors turned into
//! advice.

use url::Url;

use super::token::OAuthError;
use super::{AccessToken, Endpoint, Identity, IdentityError, Problem, TokenRequest};
use crate::cache::CacheKey;
use crate::http::{self, Policy};
use crate::retry::Deadline;
use crate::secret::Secret;

pub enum Grant<'a> {
    Secret(&'a Secret),
    Assertion(&'a Secret),
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
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id),
            ("scope", self.scope),
        ];
        match self.grant {
            Grant::Secret(secret) => form.push(("client_secret", secret.expose())),
            Grant::Assertion(assertion) => {
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
                form.push(("client_assertion", assertion.expose()));
            }
        }
        let body = Secret::new(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&form)
                .finish(),
        );
        let build = || {
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
        Err(Problem::Refused(describe(answer.status, &error)))
    }
}

/// Entra's own error, shortened to its first sentence group (the rest is trace ids), plus what
/// to fix for the codes users hit most.
fn describe(status: u16, error: &OAuthError) -> String {
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
    let advice = match code {
        Some(700016) => "check clientID and tenantID: the application is not registered in this tenant",
        Some(90002) | Some(900023) => "check tenantID: the tenant does not exist in this cloud",
        Some(7000215) | Some(7000222) => "the client secret is wrong or expired: update clientsecret in the nodePublishSecretRef Secret",
        Some(70021) | Some(700211) | Some(700212) | Some(700213) => "no federated identity credential matches the service-account token: check the credential's issuer (the cluster's OIDC issuer URL), subject system:serviceaccount:<namespace>:<service account> and audience api://AzureADTokenExchange",
        Some(700024) => "the service-account token has expired: the driver sends a fresh one on the next mount",
        Some(50027) | Some(50126) => "the service-account token is not a valid JWT for this issuer",
        Some(1002012) | Some(70011) => "the requested scope is not valid for Key Vault",
        _ => "",
    };
    if !advice.is_empty() {
        text.push_str(" (");
        text.push_str(advice);
        text.push(')');
    }
    text
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
        let text = describe(400, &e);
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
        assert!(describe(400, &e).contains("subject system:serviceaccount:"));
    }
}
