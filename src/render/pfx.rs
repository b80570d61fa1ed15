//! Certificate-backed secrets stored as PKCS#12 (`application/x-pkcs12`): decoded with the empty
//! password Key Vault uses, both modern (PBES2/AES-256, SHA-256 MAC) and legacy (3DES/RC2,
//! SHA-1) encodings, into PEM with every private key first (PKCS#8 `PRIVATE KEY`, bag attributes
//! dropped) and then the certificates, chain-ordered when asked.

use base64::Engine;

use super::chain::{self, ChainError, Order};
use super::pem;

#[derive(Debug, thiserror::Error)]
pub enum PfxError {
    #[error(
        "secret value is not base64 (a PKCS#12 secret from Key Vault is stored base64-encoded)"
    )]
    Base64,
    #[error("failed to decode PKCS#12 with an empty password: {0} (password-protected PFX files are not supported)")]
    Decode(String),
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
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(&der, "")
        .map_err(|e| PfxError::Decode(e.to_string()))?;
    let keys: Vec<Vec<u8>> = archive
        .keys
        .iter()
        .map(|k| k.key.as_der().to_vec())
        .collect();
    let certs: Vec<Vec<u8>> = archive
        .certs
        .iter()
        .map(|c| c.cert.as_der().to_vec())
        .collect();
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
