//! Certificate-backed secrets stored as PKCS#12 (`application/x-pkcs12`): decoded with an empty
//! password in both of its encodings (`pkcs12`), as Key Vault, Windows, .NET and OpenSSL write
//! them, into PEM with every private key first (PKCS#8 `PRIVATE KEY` as openssl writes it, bag
//! and key attributes dropped) and then the certificates, chain-ordered when asked.

mod ber;
mod pkcs12;
mod pkcs8;

use base64::Engine;

use super::chain::{self, ChainError, Order};
use super::pem;
pub use pkcs12::Pkcs12Error;

#[derive(Debug, thiserror::Error)]
pub enum PfxError {
    #[error(
        "secret value is not base64 (a PKCS#12 secret from Key Vault is stored base64-encoded)"
    )]
    Base64,
    #[error("failed to decode PKCS#12 with an empty password: {0}")]
    Decode(Pkcs12Error),
    #[error("password-protected PFX files are not supported: {0}. Mount the file unchanged with objectFormat: pfx and give the application its password, or import the certificate into Key Vault with its password (Key Vault then stores it without one)")]
    PasswordProtected(&'static str),
    #[error("the PKCS#12 file holds no certificate")]
    NoCertificate,
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// PEM text of a PFX: keys, then certificates; and whether the chain was complete.
pub struct Decoded {
    pub keys: Vec<Vec<u8>>,
    pub certs: Vec<Vec<u8>>,
    pub order: Order,
}

impl Decoded {
    pub fn keys_pem(&self) -> String {
        self.keys
            .iter()
            .map(|k| pem::encode("PRIVATE KEY", k))
            .collect()
    }

    pub fn certs_pem(&self) -> String {
        self.certs
            .iter()
            .map(|c| pem::encode("CERTIFICATE", c))
            .collect()
    }

    /// Keys first, then certificates, as the Go provider writes them.
    pub fn pem(&self) -> String {
        self.keys_pem() + &self.certs_pem()
    }
}

/// Decodes the base64 PFX text Key Vault stores.
pub fn decode(value: &str, construct_chain: bool) -> Result<Decoded, PfxError> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| PfxError::Base64)?;
    let pkcs12::Contents { keys, certs } = pkcs12::decode(&der).map_err(|e| match e {
        Pkcs12Error::PasswordProtected(why) => PfxError::PasswordProtected(why),
        other => PfxError::Decode(other),
    })?;
    if certs.is_empty() {
        return Err(PfxError::NoCertificate);
    }
    let (certs, order) = if construct_chain {
        chain::order(certs)?
    } else {
        (certs, Order::Complete)
    };
    Ok(Decoded { keys, certs, order })
}

/// Splits PEM text into (all CERTIFICATE blocks, all other blocks), each in original order.
pub fn split_pem(text: &str) -> (String, String) {
    let (mut certs, mut others) = (String::new(), String::new());
    let mut block = String::new();
    let mut label: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(l) = trimmed
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            label = Some(l.to_string());
            block.clear();
        }
        if label.is_some() {
            block.push_str(trimmed);
            block.push('\n');
        }
        if trimmed.starts_with("-----END ") {
            match label.take().as_deref() {
                Some("CERTIFICATE") => certs.push_str(&block),
                Some(_) => others.push_str(&block),
                None => {}
            }
        }
    }
    (certs, others)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_groups_in_order() {
        let text = "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nAQ==\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nAg==\n-----END CERTIFICATE-----\n";
        let (certs, keys) = split_pem(text);
        assert_eq!(
            keys,
            "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"
        );
        assert_eq!(certs.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(certs.find("AQ==").unwrap() < certs.find("Ag==").unwrap());
    }

    /// The Go provider's own fixtures (tests/fixtures/go-provider/README.md): the first is a
    /// Windows-made PFX keyed with the zero-length password, which p12-keystore could not open.
    #[test]
    fn go_provider_decode_pkcs12_cases() {
        for (pfx, expected) in [
            (
                include_str!("../../tests/fixtures/go-provider/decode-pkcs12-one-certificate-and-key.pfx.b64"),
                include_str!("../../tests/fixtures/go-provider/decode-pkcs12-one-certificate-and-key.expected.pem"),
            ),
            (
                include_str!("../../tests/fixtures/go-provider/decode-pkcs12-multiple-certificates-and-one-key.pfx.b64"),
                include_str!("../../tests/fixtures/go-provider/decode-pkcs12-multiple-certificates-and-one-key.expected.pem"),
            ),
        ] {
            let decoded = decode(pfx, true).unwrap();
            assert_eq!(decoded.order, Order::Complete);
            assert_eq!(decoded.pem(), expected);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(decode("!!!", true), Err(PfxError::Base64)));
        assert!(matches!(decode("AAAA", true), Err(PfxError::Decode(_))));
        assert!(matches!(
            decode(
                &base64::engine::general_purpose::STANDARD.encode([0x30, 0x82, 0xff, 0xff]),
                true
            ),
            Err(PfxError::Decode(_))
        ));
    }
}
