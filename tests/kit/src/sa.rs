//! A stand-in for a cluster's service-account token issuer: mints JWTs with the claims the
//! kubelet's tokens carry, signed (HS256) with a key only the fake Entra ID knows, so a forged or
//! altered token fails verification like it would at Entra ID.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;

/// Issuer URL used in tokens unless a test picks another.
pub const DEFAULT_ISSUER: &str = "https://oidc.testkit.local/cluster";

#[derive(Clone)]
pub struct Issuer {
    key: ring::hmac::Key,
    pub url: String,
    /// Every token minted, for leak checks.
    minted: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// The claims Entra ID checks against a federated credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
    pub expires: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Default for Issuer {
    fn default() -> Self {
        let rng = ring::rand::SystemRandom::new();
        Issuer {
            key: ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng).expect("hmac key"),
            url: DEFAULT_ISSUER.to_string(),
            minted: Default::default(),
        }
    }
}

impl Issuer {
    /// A token for pod `pod` of service account `namespace/sa`, valid for `lifetime`.
    pub fn token(
        &self,
        namespace: &str,
        sa: &str,
        pod: &str,
        audience: &str,
        lifetime: Duration,
    ) -> String {
        let iat = now();
        self.sign(&json!({
            "aud": [audience],
            "exp": iat + lifetime.as_secs(),
            "iat": iat,
            "nbf": iat,
            "iss": self.url,
            "sub": format!("system:serviceaccount:{namespace}:{sa}"),
            "kubernetes.io": {
                "namespace": namespace,
                "pod": {"name": pod, "uid": crate::seed::version_id(pod, 0)},
                "serviceaccount": {"name": sa, "uid": crate::seed::version_id(sa, 1)},
            },
        }))
    }

    /// Signs arbitrary claims (tests craft expired or mis-addressed tokens with it).
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT","kid":"testkit"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{payload}");
        let signature = ring::hmac::sign(&self.key, signing_input.as_bytes());
        let token = format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        );
        self.minted.lock().unwrap().push(token.clone());
        token
    }

    /// Every token signed so far.
    pub fn minted(&self) -> Vec<String> {
        self.minted.lock().unwrap().clone()
    }

    /// Verifies a token's signature and reads its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, &'static str> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("malformed");
        };
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| "malformed")?;
        ring::hmac::verify(
            &self.key,
            format!("{header}.{payload}").as_bytes(),
            &signature,
        )
        .map_err(|_| "signature")?;
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).map_err(|_| "malformed")?)
                .map_err(|_| "malformed")?;
        let audiences = match &claims["aud"] {
            serde_json::Value::String(a) => vec![a.clone()],
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Claims {
            issuer: claims["iss"].as_str().unwrap_or_default().to_string(),
            subject: claims["sub"].as_str().unwrap_or_default().to_string(),
            audiences,
            expires: claims["exp"].as_u64().unwrap_or(0),
        })
    }

    pub fn is_expired(claims: &Claims) -> bool {
        claims.expires <= now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let issuer = Issuer::default();
        let token = issuer.token(
            "ns",
            "app",
            "pod-1",
            "api://AzureADTokenExchange",
            Duration::from_secs(600),
        );
        let claims = issuer.verify(&token).unwrap();
        assert_eq!(claims.subject, "system:serviceaccount:ns:app");
        assert_eq!(claims.audiences, vec!["api://AzureADTokenExchange"]);
        let mut forged = token.clone();
        forged.insert(forged.len() - 5, 'x');
        assert!(issuer.verify(&forged).is_err());
        assert!(
            Issuer::default().verify(&token).is_err(),
            "another issuer's key"
        );
    }
}
