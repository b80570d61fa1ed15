//! The Entra fake's judgement of a client assertion signed with a certificate (OpenID Connect
//! `private_key_jwt`, as Microsoft documents it for certificate credentials), made with its own
//! code (ring, x509-parser) rather than the provider's: the header names a registered
//! certificate (`x5t#S256`, `x5t`) or presents a trusted chain (`x5c`, subject name and issuer
//! authentication); the signature verifies with that certificate's key (PS256 or RS256); the
//! claims are addressed to this token endpoint (`aud`), issued by the client about itself
//! (`iss` = `sub` = `client_id`), current (`nbf`, `exp`, and `exp` not far off) and used once
//! (`jti`). Refusals carry the AADSTS codes Entra ID answers with.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::seed::Client;

/// Clock skew Entra ID tolerates.
const SKEW: u64 = 300;
/// Longest assertion lifetime accepted: stricter than Entra ID (which documents no limit) so a
/// client that forgets to keep `exp` short is caught.
const MAX_LIFETIME: u64 = 15 * 60;

/// Why an assertion was refused: the AADSTS answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: &'static str,
    pub code: u32,
    pub description: String,
}

fn refuse(error: &'static str, code: u32, description: impl Into<String>) -> Refusal {
    Refusal {
        error,
        code,
        description: description.into(),
    }
}

fn malformed() -> Refusal {
    refuse(
        "invalid_client",
        50027,
        "JWT token is invalid or malformed.",
    )
}

/// Whether `assertion` claims to be issued by `client_id` itself (a certificate credential)
/// rather than by a federated issuer; read without verifying, as Entra ID must to choose.
pub fn is_self_issued(assertion: &str, client_id: &str) -> bool {
    decode(assertion).is_ok_and(|(_, claims, _, _)| claims["iss"] == client_id)
}

/// Header, claims, signing input and signature of a compact JWS.
fn decode(jwt: &str) -> Result<(Value, Value, String, Vec<u8>), Refusal> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let json = |part: &str| -> Result<Value, Refusal> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed())?;
        serde_json::from_slice(&bytes).map_err(|_| malformed())
    };
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| malformed())?;
    Ok((json(h)?, json(p)?, format!("{h}.{p}"), signature))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// A certificate known to the fake, with its thumbprints.
struct Known {
    der: Vec<u8>,
    sha1: Vec<u8>,
    sha256: Vec<u8>,
}

impl Known {
    fn new(der: Vec<u8>) -> Known {
        let digest = |alg| ring::digest::digest(alg, &der).as_ref().to_vec();
        Known {
            sha1: digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY),
            sha256: digest(&ring::digest::SHA256),
            der,
        }
    }

    fn cert(&self) -> X509Certificate<'_> {
        X509Certificate::from_der(&self.der)
            .expect("seeded certificate")
            .1
    }

    /// Whether the header's thumbprints name this certificate (every one given must match).
    fn named_by(&self, header: &Value) -> bool {
        let matches = |field: &str, digest: &[u8]| match header[field].as_str() {
            Some(t) => URL_SAFE_NO_PAD.decode(t).is_ok_and(|d| d == digest),
            None => true,
        };
        (header["x5t"].is_string() || header["x5t#S256"].is_string())
            && matches("x5t", &self.sha1)
            && matches("x5t#S256", &self.sha256)
    }
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("seeded PEM certificate")
}

/// Verifies assertions for one token endpoint; remembers every `jti` it accepted.
#[derive(Default)]
pub struct Verifier {
    seen: Mutex<HashSet<(String, String)>>,
}

impl Verifier {
    /// Judges `assertion`, presented by `client` as `client_id` at `token_url`.
    pub fn verify(
        &self,
        client: &Client,
        client_id: &str,
        token_url: &str,
        assertion: &str,
    ) -> Result<(), Refusal> {
        let (header, claims, input, signature) = decode(assertion)?;
        let key = signing_certificate(client, &header)?;
        verify_signature(&header, &key, &input, &signature)?;
        let jti = check_claims(&claims, client_id, token_url)?;
        if !self
            .seen
            .lock()
            .unwrap()
            .insert((client_id.to_string(), jti))
        {
            return Err(refuse(
                "invalid_client",
                50027,
                "JWT token is invalid or malformed. The jti claim of the client assertion was already used.",
            ));
        }
        Ok(())
    }
}

/// The certificate whose key must have signed: a registered one the header names, or the
/// `x5c` leaf of a trusted subject and issuer.
fn signing_certificate(client: &Client, header: &Value) -> Result<Known, Refusal> {
    let thumbprint = header["x5t"]
        .as_str()
        .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
        .map(hex::encode_upper)
        .unwrap_or_default();
    let registered = client
        .certificates
        .iter()
        .map(|pem| Known::new(pem_der(pem)))
        .find(|k| k.named_by(header));
    if let Some(known) = registered {
        if known.cert().validity().not_after.timestamp() < now() as i64 {
            return Err(refuse("invalid_client", 700027, format!("Client assertion failed signature validation. [Reason - The key used is expired., Thumbprint of key used by client: '{thumbprint}']")));
        }
        if let Some(leaf) = header["x5c"].as_array().and_then(|c| c.first()) {
            let presented = leaf.as_str().and_then(|l| STANDARD.decode(l).ok());
            if presented.as_deref() != Some(known.der.as_slice()) {
                return Err(refuse("invalid_client", 700027, "Client assertion failed signature validation. [Reason - The x5c leaf is not the certificate x5t names.]"));
            }
        }
        return Ok(known);
    }
    if !client.trusted_certificate_subjects.is_empty() && header["x5c"].is_array() {
        return trusted_chain(client, header);
    }
    Err(refuse("invalid_client", 700027, format!("The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]", client.client_id)))
}

/// The `x5c` leaf, when the header names it, its chain leads to a trusted issuer and its
/// subject is trusted.
fn trusted_chain(client: &Client, header: &Value) -> Result<Known, Refusal> {
    let chain: Vec<Known> = header["x5c"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            c.as_str()
                .and_then(|c| STANDARD.decode(c).ok())
                .map(Known::new)
        })
        .collect::<Option<_>>()
        .filter(|c: &Vec<Known>| !c.is_empty())
        .ok_or_else(malformed)?;
    let leaf = &chain[0];
    if !leaf.named_by(header) {
        return Err(refuse("invalid_client", 700027, "Client assertion failed signature validation. [Reason - The x5c leaf is not the certificate x5t names.]"));
    }
    let parsed: Vec<X509Certificate> = chain.iter().map(Known::cert).collect();
    let linked = parsed
        .windows(2)
        .all(|w| w[0].verify_signature(Some(w[1].public_key())).is_ok());
    let names = subject_names(&parsed[0]);
    let trusted = client.trusted_certificate_subjects.iter().any(|t| {
        let issuer = Known::new(pem_der(&t.issuer));
        let issuer = issuer.cert();
        let last = parsed.last().expect("not empty");
        let anchored = last.verify_signature(Some(issuer.public_key())).is_ok();
        linked && anchored && names.contains(&t.subject_name)
    });
    if !trusted {
        return Err(refuse("invalid_client", 700030, format!("Invalid certificate - subject name in certificate isn't authorized. SubjectNames/SubjectAlternativeNames (up to 10) in token certificate are: {}", names.join(", "))));
    }
    Ok(Known::new(chain[0].der.clone()))
}

/// The subject's common names and DNS names.
fn subject_names(cert: &X509Certificate) -> Vec<String> {
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(d) = name {
                names.push(d.to_string());
            }
        }
    }
    names
}

fn verify_signature(
    header: &Value,
    key: &Known,
    input: &str,
    signature: &[u8],
) -> Result<(), Refusal> {
    let algorithm: &dyn ring::signature::VerificationAlgorithm = match header["alg"].as_str() {
        Some("PS256") => &ring::signature::RSA_PSS_2048_8192_SHA256,
        Some("RS256") => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        other => {
            return Err(refuse(
                "invalid_client",
                5002738,
                format!(
                    "Invalid JWT token. '{}' is not a supported signature algorithm.",
                    other.unwrap_or("")
                ),
            ))
        }
    };
    if header["typ"] != "JWT" {
        return Err(malformed());
    }
    let cert = key.cert();
    let public = &cert.public_key().subject_public_key.data;
    ring::signature::UnparsedPublicKey::new(algorithm, public)
        .verify(input.as_bytes(), signature)
        .map_err(|_| refuse("invalid_client", 700027, format!("Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '{}']", hex::encode_upper(&key.sha1))))
}

/// Checks the claims and returns the `jti`.
fn check_claims(claims: &Value, client_id: &str, token_url: &str) -> Result<String, Refusal> {
    let audience_ok = match &claims["aud"] {
        Value::String(a) => a == token_url,
        Value::Array(list) => list.iter().any(|a| a == token_url),
        _ => false,
    };
    if !audience_ok {
        return Err(refuse(
            "invalid_client",
            50027,
            format!(
                "Invalid JWT token. The audience of the client assertion is not '{token_url}'."
            ),
        ));
    }
    if claims["iss"] != claims["sub"] {
        return Err(refuse(
            "invalid_client",
            50048,
            "Subject mismatches Issuer claim in the client assertion.",
        ));
    }
    if claims["sub"] != client_id {
        return Err(refuse(
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let (Some(exp), Some(nbf)) = (claims["exp"].as_u64(), claims["nbf"].as_u64()) else {
        return Err(malformed());
    };
    let now = now();
    if exp <= now || nbf > now + SKEW || exp > now + MAX_LIFETIME {
        return Err(refuse("invalid_client", 700024, format!("Client assertion is not within its valid time range. Current time: {now}, assertion valid from {nbf}, expiry time of assertion {exp}.")));
    }
    match claims["jti"].as_str() {
        Some(jti) if !jti.is_empty() => Ok(jti.to_string()),
        _ => Err(malformed()),
    }
}
