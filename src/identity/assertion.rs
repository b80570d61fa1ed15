//! The client assertion a certificate service principal presents instead of a client secret: a
//! JWT signed with the certificate's key, as Microsoft documents for certificate credentials
//! (header `alg`, `typ`, `x5t`, `x5t#S256`, optionally `x5c`; claims `aud` the token endpoint,
//! `iss` = `sub` = the client id, a unique `jti`, `nbf`/`iat` now, `exp` 10 minutes later).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::json;

use crate::secret::Secret;
use crate::spec::ClientCertificate;

/// How long an assertion may be used: short, as Microsoft asks (5-10 minutes).
const LIFETIME: Duration = Duration::from_secs(600);

/// The JWS algorithm of the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RSASSA-PSS with SHA-256: what Microsoft documents (and MSAL sends) for Entra ID.
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256: what AD FS (tenant `adfs`) understands, as MSAL does.
    Rs256,
}

impl Algorithm {
    /// The algorithm for a token endpoint of `tenant`.
    pub fn for_tenant(tenant: &str) -> Algorithm {
        match tenant.eq_ignore_ascii_case("adfs") {
            true => Algorithm::Rs256,
            false => Algorithm::Ps256,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Ps256 => "PS256",
            Algorithm::Rs256 => "RS256",
        }
    }

    fn encoding(self) -> &'static dyn ring::signature::RsaEncoding {
        match self {
            Algorithm::Ps256 => &ring::signature::RSA_PSS_SHA256,
            Algorithm::Rs256 => &ring::signature::RSA_PKCS1_SHA256,
        }
    }
}

/// Why no assertion could be made; only a failing random number generator can cause it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("could not sign the client assertion: the system random number generator failed")]
pub struct SignError;

/// What one assertion asserts.
pub struct Claims<'a> {
    pub certificate: &'a ClientCertificate,
    pub client_id: &'a str,
    /// The token endpoint URL the assertion is sent to.
    pub audience: &'a str,
    pub algorithm: Algorithm,
    /// Send `x5c` (the chain) for subject name and issuer authentication.
    pub send_chain: bool,
}

impl Claims<'_> {
    /// A fresh assertion (new `jti`) issued at `now`.
    pub fn sign(&self, now: SystemTime) -> Result<Secret, SignError> {
        let rng = SystemRandom::new();
        let mut header = json!({
            "alg": self.algorithm.name(),
            "typ": "JWT",
            "x5t": self.certificate.x5t(),
            "x5t#S256": self.certificate.x5t_s256(),
        });
        if self.send_chain {
            let chain: Vec<String> = self
                .certificate
                .chain()
                .iter()
                .map(|c| STANDARD.encode(c))
                .collect();
            header["x5c"] = json!(chain);
        }
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = json!({
            "aud": self.audience,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": jti(&rng)?,
            "nbf": iat,
            "iat": iat,
            "exp": iat + LIFETIME.as_secs(),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = self.certificate.key();
        let mut signature = vec![0u8; key.public().modulus_len()];
        key.sign(
            self.algorithm.encoding(),
            &rng,
            input.as_bytes(),
            &mut signature,
        )
        .map_err(|_| SignError)?;
        Ok(Secret::new(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(&signature)
        )))
    }
}

/// A random (version 4) UUID, as MSAL uses for `jti`.
fn jti(rng: &SystemRandom) -> Result<String, SignError> {
    let mut b = [0u8; 16];
    rng.fill(&mut b).map_err(|_| SignError)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RSA key and its certificate, from the Go provider's fixtures.
    const PEM: &str = include_str!(
        "../../tests/fixtures/go-provider/decode-pkcs12-one-certificate-and-key.expected.pem"
    );

    fn part(jwt: &str, i: usize) -> serde_json::Value {
        let text = jwt.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
    }

    #[test]
    fn signed_as_microsoft_documents() {
        let certificate = ClientCertificate::from_pem(PEM).unwrap();
        let claims = Claims {
            certificate: &certificate,
            client_id: "cid",
            audience: "https://login.example/t/oauth2/v2.0/token",
            algorithm: Algorithm::Ps256,
            send_chain: true,
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        let jwt = claims.sign(now).unwrap();
        let jwt = jwt.expose();
        let (header, payload) = (part(jwt, 0), part(jwt, 1));
        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["x5t#S256"], certificate.x5t_s256());
        assert_eq!(header["x5c"][0], STANDARD.encode(&certificate.chain()[0]));
        assert_eq!(payload["iss"], "cid");
        assert_eq!(payload["sub"], "cid");
        assert_eq!(payload["exp"], 1_600_000_600);
        let (input, signature) = jwt.rsplit_once('.').unwrap();
        let public =
            ring::signature::RsaPublicKeyComponents::<Vec<u8>>::from(certificate.key().public());
        public
            .verify(
                &ring::signature::RSA_PSS_2048_8192_SHA256,
                input.as_bytes(),
                &URL_SAFE_NO_PAD.decode(signature).unwrap(),
            )
            .expect("a PS256 signature by the certificate's key");
        let again = claims.sign(now).unwrap();
        assert_ne!(part(jwt, 1)["jti"], part(again.expose(), 1)["jti"]);
    }

    #[test]
    fn algorithm_by_tenant_and_jti_shape() {
        assert_eq!(Algorithm::for_tenant("adfs"), Algorithm::Rs256);
        assert_eq!(Algorithm::for_tenant("ADFS"), Algorithm::Rs256);
        assert_eq!(
            Algorithm::for_tenant("contoso.onmicrosoft.com"),
            Algorithm::Ps256
        );
        let rng = SystemRandom::new();
        let (a, b) = (jti(&rng).unwrap(), jti(&rng).unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4", "version 4");
    }
}
