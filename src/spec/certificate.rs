//! A service principal's client certificate: the PEM of a node-publish Secret's
//! `clientcertificate` key, checked before anything is sent (the key belongs to the first
//! certificate, the certificate is valid now, the key is RSA as Entra ID requires), holding the
//! key ready to sign client assertions.
//!
//! The certificate identifies the credential (its SHA-256 thumbprint keys the token cache); the
//! key never leaves this type except into a signature.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{RsaKeyPair, RsaPublicKeyComponents};
use rustls::pki_types::pem::{self, PemObject, SectionKind};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;
use zeroize::Zeroizing;

/// More than any real certificate chain and key; refused before parsing.
const MAX_PEM: usize = 256 * 1024;
/// Certificates in one `clientcertificate`: leaf plus a generous chain.
const MAX_CERTIFICATES: usize = 16;

/// An RSA private key and the certificate chain it belongs to (leaf first).
pub struct ClientCertificate {
    /// DER of each certificate, leaf first, in the order given.
    chain: Vec<Vec<u8>>,
    /// ring keeps the key in its own memory, which it does not wipe on drop; the decoded DER
    /// it was read from is wiped.
    key: RsaKeyPair,
    sha1: [u8; 20],
    sha256: [u8; 32],
    not_before: i64,
    not_after: i64,
}

/// What is wrong with a `clientcertificate`, worded as what to fix. Never quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("is larger than {MAX_PEM} bytes: it should hold one certificate chain and its key")]
    TooLarge,
    #[error("is not valid PEM ({0}): it must hold the certificate (BEGIN CERTIFICATE), leaf first, and its unencrypted private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)")]
    NotPem(&'static str),
    #[error("holds an encrypted private key: store the key unencrypted (e.g. openssl pkey -in key.pem -out plain.pem; the Kubernetes Secret is what protects it)")]
    Encrypted,
    #[error("holds no certificate: add the certificate (BEGIN CERTIFICATE) of the private key, leaf first")]
    NoCertificate,
    #[error("holds more than {MAX_CERTIFICATES} certificates")]
    TooManyCertificates,
    #[error("holds no private key: add the certificate's unencrypted private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)")]
    NoKey,
    #[error("holds more than one private key: keep only the key of the leaf certificate")]
    SeveralKeys,
    #[error("certificate {0} is not a valid X.509 certificate")]
    BadCertificate(usize),
    #[error("holds an EC certificate or key: Entra ID accepts only RSA certificates for client assertions; issue an RSA certificate (2048 bits or more)")]
    Ec,
    #[error("the certificate's public key is neither RSA nor EC: Entra ID accepts only RSA certificates for client assertions")]
    UnsupportedKey,
    #[error("the private key is not an RSA key, so it does not belong to the RSA certificate")]
    KeyNotRsa,
    #[error("the RSA private key cannot be used: {0}")]
    KeyRejected(&'static str),
    #[error("the private key does not belong to the first certificate: put the certificate of this key first (leaf first, then its chain)")]
    KeyMismatch,
    #[error("the certificate (thumbprint {thumbprint}) expired at {not_after}: renew it, upload the new certificate to the app registration and update clientcertificate")]
    Expired {
        thumbprint: String,
        not_after: String,
    },
    #[error("the certificate (thumbprint {thumbprint}) is not valid before {not_before}: check the node's clock, or use a certificate that is already valid")]
    NotYetValid {
        thumbprint: String,
        not_before: String,
    },
}

/// The private key as the PEM labelled it.
enum KeyDer {
    Pkcs8(Zeroizing<Vec<u8>>),
    Pkcs1(Zeroizing<Vec<u8>>),
}

impl ClientCertificate {
    /// Reads the PEM of a `clientcertificate` and checks that its key belongs to its first
    /// certificate. Validity in time is checked separately ([`Self::check_validity`]).
    pub fn from_pem(text: &str) -> Result<ClientCertificate, CertificateError> {
        if text.len() > MAX_PEM {
            return Err(CertificateError::TooLarge);
        }
        // Both encryptions OpenSSL writes: PKCS#8 EncryptedPrivateKeyInfo, and the legacy
        // Proc-Type header inside an RSA PRIVATE KEY block.
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            || text.contains("Proc-Type: 4,ENCRYPTED")
        {
            return Err(CertificateError::Encrypted);
        }
        let (chain, key) = sections(text)?;
        let leaf = X509Certificate::from_der(&chain[0])
            .map_err(|_| CertificateError::BadCertificate(1))?
            .1;
        for (i, der) in chain.iter().enumerate().skip(1) {
            X509Certificate::from_der(der).map_err(|_| CertificateError::BadCertificate(i + 1))?;
        }
        let key = rsa_key(&leaf, key)?;
        let validity = leaf.validity();
        let (not_before, not_after) = (
            validity.not_before.timestamp(),
            validity.not_after.timestamp(),
        );
        let digest = |alg| ring::digest::digest(alg, &chain[0]);
        let sha1 = digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
        let sha256 = digest(&ring::digest::SHA256);
        Ok(ClientCertificate {
            sha1: sha1.as_ref().try_into().expect("SHA-1 is 20 bytes"),
            sha256: sha256.as_ref().try_into().expect("SHA-256 is 32 bytes"),
            chain,
            key,
            not_before,
            not_after,
        })
    }

    /// Fails when the leaf certificate is expired or not yet valid at `now`: Entra ID would
    /// refuse it with a less helpful error.
    pub fn check_validity(&self, now: SystemTime) -> Result<(), CertificateError> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        if now > self.not_after {
            return Err(CertificateError::Expired {
                thumbprint: self.thumbprint(),
                not_after: rfc3339(self.not_after),
            });
        }
        if now < self.not_before {
            return Err(CertificateError::NotYetValid {
                thumbprint: self.thumbprint(),
                not_before: rfc3339(self.not_before),
            });
        }
        Ok(())
    }

    /// The SHA-1 thumbprint in upper-case hex, as the Azure portal lists certificates.
    pub fn thumbprint(&self) -> String {
        hex::encode_upper(self.sha1)
    }

    /// SHA-256 of the leaf's DER: what identifies this credential in caches.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// JWS `x5t`: base64url SHA-1 of the leaf's DER.
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.sha1)
    }

    /// JWS `x5t#S256`: base64url SHA-256 of the leaf's DER.
    pub fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.sha256)
    }

    /// The certificates' DER, leaf first (for `x5c`).
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The key that signs client assertions.
    pub fn key(&self) -> &RsaKeyPair {
        &self.key
    }
}

/// The certificates (leaf first) and the one private key of the PEM text.
fn sections(text: &str) -> Result<(Vec<Vec<u8>>, KeyDer), CertificateError> {
    let mut chain = Vec::new();
    let mut key = None;
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(text.as_bytes()) {
        let (kind, der) = section.map_err(|e| CertificateError::NotPem(pem_problem(&e)))?;
        let found = match kind {
            SectionKind::Certificate if chain.len() == MAX_CERTIFICATES => {
                return Err(CertificateError::TooManyCertificates)
            }
            SectionKind::Certificate => {
                chain.push(der);
                continue;
            }
            SectionKind::PrivateKey => KeyDer::Pkcs8(Zeroizing::new(der)),
            SectionKind::RsaPrivateKey => KeyDer::Pkcs1(Zeroizing::new(der)),
            SectionKind::EcPrivateKey => return Err(CertificateError::Ec),
            // Public keys, CRLs and the like carry nothing we need.
            _ => continue,
        };
        if key.replace(found).is_some() {
            return Err(CertificateError::SeveralKeys);
        }
    }
    if chain.is_empty() && key.is_none() {
        return Err(CertificateError::NotPem("no PEM block found"));
    }
    if chain.is_empty() {
        return Err(CertificateError::NoCertificate);
    }
    Ok((chain, key.ok_or(CertificateError::NoKey)?))
}

/// The kind of a PEM syntax error, without the input (the PEM holds a private key).
fn pem_problem(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a BEGIN line without its END line",
        pem::Error::IllegalSectionStart { .. } => "a malformed BEGIN line",
        pem::Error::Base64Decode(_) => "a block that is not valid base64",
        _ => "unreadable",
    }
}

/// The RSA key pair, checked against the leaf certificate's public key.
fn rsa_key(leaf: &X509Certificate, key: KeyDer) -> Result<RsaKeyPair, CertificateError> {
    let public = leaf
        .public_key()
        .parsed()
        .map_err(|_| CertificateError::BadCertificate(1))?;
    let PublicKey::RSA(public) = public else {
        return Err(match public {
            PublicKey::EC(_) => CertificateError::Ec,
            _ => CertificateError::UnsupportedKey,
        });
    };
    let pair = match &key {
        KeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der),
        KeyDer::Pkcs1(der) => RsaKeyPair::from_der(der),
    }
    .map_err(|e| match e.to_string().as_str() {
        "WrongAlgorithm" => CertificateError::KeyNotRsa,
        "TooSmall" => CertificateError::KeyRejected(
            "it is shorter than 2048 bits, which Entra ID refuses (AADSTS50032)",
        ),
        "TooLarge" => CertificateError::KeyRejected("it is longer than 4096 bits"),
        "InvalidEncoding" | "VersionNotSupported" => {
            CertificateError::KeyRejected("it is not a valid PKCS#8 or PKCS#1 RSA key")
        }
        "PrivateModulusLenNotMultipleOf512Bits" => {
            CertificateError::KeyRejected("its length is not a multiple of 512 bits")
        }
        _ => CertificateError::KeyRejected("its components are inconsistent"),
    })?;
    let ours = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    let trim = |b: &[u8]| {
        let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
        b[start..].to_vec()
    };
    if trim(&ours.n) != trim(public.modulus) || trim(&ours.e) != trim(public.exponent) {
        return Err(CertificateError::KeyMismatch);
    }
    Ok(pair)
}

/// `2025-01-31T12:00:00Z` for a Unix time.
fn rfc3339(unix: i64) -> String {
    match x509_parser::time::ASN1Time::from_timestamp(unix) {
        Ok(t) => {
            let t = t.to_datetime();
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        Err(_) => format!("Unix time {unix}"),
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("thumbprint", &self.thumbprint())
            .field("certificates", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Equal certificates are equal credentials: only the holder of the leaf's private key gets
/// past [`ClientCertificate::from_pem`].
impl PartialEq for ClientCertificate {
    fn eq(&self, other: &Self) -> bool {
        self.chain == other.chain
    }
}

impl Eq for ClientCertificate {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An RSA key and its certificate (valid 2020-05-22 to 2021-05-22), from the Go provider.
    const PEM: &str = include_str!(
        "../../tests/fixtures/go-provider/decode-pkcs12-one-certificate-and-key.expected.pem"
    );

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    #[test]
    fn reads_key_and_certificate_and_checks_time() {
        let cert = ClientCertificate::from_pem(PEM).unwrap();
        assert_eq!(
            cert.thumbprint(),
            "7549A36217DB90A6C642594775E9C829664067C8"
        );
        assert_eq!(cert.chain().len(), 1);
        assert_eq!(
            cert.x5t(),
            URL_SAFE_NO_PAD.encode(hex::decode(cert.thumbprint()).unwrap())
        );
        let debug = format!("{cert:?}");
        assert!(debug.contains("<redacted>") && debug.contains(&cert.thumbprint()));
        for line in PEM.lines().filter(|l| l.len() > 40) {
            assert!(
                !debug.contains(line),
                "Debug shows no key or certificate bytes"
            );
        }
        assert!(cert.check_validity(at(1_600_000_000)).is_ok(), "2020-09-13");
        assert_eq!(
            cert.check_validity(at(1_700_000_000)).unwrap_err().to_string(),
            "the certificate (thumbprint 7549A36217DB90A6C642594775E9C829664067C8) expired at 2021-05-22T16:23:26Z: renew it, upload the new certificate to the app registration and update clientcertificate"
        );
        assert!(matches!(
            cert.check_validity(at(1_500_000_000)),
            Err(CertificateError::NotYetValid { ref not_before, .. }) if not_before == "2020-05-22T16:23:26Z"
        ));
    }

    #[test]
    fn refuses_what_cannot_sign() {
        let (key, certificate) = PEM.split_at(PEM.find("-----BEGIN CERTIFICATE-----").unwrap());
        let err = |text: &str| ClientCertificate::from_pem(text).unwrap_err();
        assert_eq!(err(certificate), CertificateError::NoKey);
        assert_eq!(err(key), CertificateError::NoCertificate);
        assert_eq!(
            err(&format!("{key}{key}{certificate}")),
            CertificateError::SeveralKeys
        );
        assert!(
            ClientCertificate::from_pem(&format!("{certificate}{key}")).is_ok(),
            "the key may follow the certificates"
        );
        let ec = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(err(&format!("{ec}{certificate}")), CertificateError::Ec);
        let encrypted = key.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY");
        assert_eq!(
            err(&format!("{encrypted}{certificate}")),
            CertificateError::Encrypted
        );
        let garbled = certificate.replacen("MII", "M!I", 1);
        assert!(matches!(
            err(&format!("{key}{garbled}")),
            CertificateError::NotPem(_)
        ));
        assert_eq!(err("hello"), CertificateError::NotPem("no PEM block found"));
        assert_eq!(err(&"x".repeat(MAX_PEM + 1)), CertificateError::TooLarge);
        let not_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(
            err(&format!("{key}{not_der}")),
            CertificateError::BadCertificate(1)
        );
    }
}
