//! Private keys from a PFX re-encoded the way `openssl pkcs12 -nodes` and the Go provider
//! (`x509.MarshalPKCS8PrivateKey` after parsing) write them, so the PEM is byte-identical:
//! PKCS#8 version 0 without attributes (Windows and Key Vault put a key-usage attribute there),
//! rsaEncryption with NULL parameters, and EC keys without the curve repeated inside the
//! ECPrivateKey, the scalar padded to the curve's size. A key already in that form comes out
//! unchanged.

use super::ber::{self, BerError, Tlv, INTEGER, OCTET_STRING, OID, SEQUENCE};
use crate::render::pem;

/// rsaEncryption 1.2.840.113549.1.1.1 with NULL parameters.
const RSA_ALGORITHM: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
const RSA_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey 1.2.840.10045.2.1
const EC_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// Named curves and their scalar sizes: P-256, P-384, P-521, secp256k1.
const CURVES: &[(&[u8], usize)] = &[
    (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07], 32),
    (&[0x2b, 0x81, 0x04, 0x00, 0x22], 48),
    (&[0x2b, 0x81, 0x04, 0x00, 0x23], 66),
    (&[0x2b, 0x81, 0x04, 0x00, 0x0a], 32),
];
/// `[1]` constructed: the public key of an ECPrivateKey.
const CONTEXT_1: u8 = 0xa1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the private key is not PKCS#8: {0}")]
    Malformed(#[from] BerError),
    #[error("the private key has PKCS#8 version {0}")]
    Version(u64),
    #[error("the EC private key is longer than its curve allows")]
    EcScalar,
}

/// The key in the canonical form described above.
pub fn normalize(der: &[u8]) -> Result<Vec<u8>, KeyError> {
    let info = ber::parse(der)?;
    if info.tag != SEQUENCE {
        return Err(BerError::Tag {
            expected: SEQUENCE,
            found: info.tag,
        }
        .into());
    }
    let mut fields = info.children();
    match fields.expect(INTEGER)?.unsigned()? {
        0 | 1 => {}
        v => return Err(KeyError::Version(v)),
    }
    let algorithm = fields.expect(SEQUENCE)?;
    let private = fields.expect(OCTET_STRING)?.octets()?;
    let mut alg = algorithm.children();
    let oid = alg.expect(OID)?;
    let (algorithm, private) = match oid.content {
        RSA_OID => (RSA_ALGORITHM.to_vec(), private.into_owned()),
        EC_OID => {
            let size = alg.next()?.and_then(|curve| {
                CURVES
                    .iter()
                    .find(|(c, _)| curve.tag == OID && curve.content == *c)
                    .map(|(_, size)| *size)
            });
            (algorithm.raw.to_vec(), ec_private_key(&private, size)?)
        }
        _ => (algorithm.raw.to_vec(), private.into_owned()),
    };
    Ok(pem::sequence(&[
        vec![INTEGER, 1, 0],
        algorithm,
        pem::tlv(OCTET_STRING, &private),
    ]))
}

/// ECPrivateKey (RFC 5915) without `[0] parameters`, the scalar at the curve's size.
fn ec_private_key(der: &[u8], size: Option<usize>) -> Result<Vec<u8>, KeyError> {
    let key = ber::parse(der)?;
    let mut fields = key.children();
    let version = fields.expect(INTEGER)?;
    let scalar = fields.expect(OCTET_STRING)?.octets()?;
    let mut scalar: &[u8] = &scalar;
    let mut public: Option<Tlv> = None;
    while let Some(field) = fields.next()? {
        if field.tag == CONTEXT_1 {
            public = Some(field);
        }
    }
    let mut padded = Vec::new();
    if let Some(size) = size {
        while scalar.len() > size {
            match scalar.split_first() {
                Some((0, rest)) => scalar = rest,
                _ => return Err(KeyError::EcScalar),
            }
        }
        padded.resize(size - scalar.len(), 0);
    }
    padded.extend_from_slice(scalar);
    let mut parts = vec![version.raw.to_vec(), pem::tlv(OCTET_STRING, &padded)];
    if let Some(public) = public {
        parts.push(public.raw.to_vec());
    }
    Ok(pem::sequence(&parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::pfx::ber::CONTEXT_0;
    use std::process::Command;

    const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

    fn ec_pkcs8(inner: &[u8]) -> Vec<u8> {
        ec_pkcs8_with(inner, None)
    }

    fn ec_pkcs8_with(inner: &[u8], attributes: Option<Vec<u8>>) -> Vec<u8> {
        let mut fields = vec![
            vec![INTEGER, 1, 0],
            pem::sequence(&[pem::tlv(OID, EC_OID), P256.to_vec()]),
            pem::tlv(OCTET_STRING, inner),
        ];
        fields.extend(attributes);
        pem::sequence(&fields)
    }

    #[test]
    fn canonical_keys_are_unchanged() {
        let inner = pem::sequence(&[
            vec![INTEGER, 1, 1],
            pem::tlv(OCTET_STRING, &[7; 32]),
            pem::tlv(CONTEXT_1, &pem::bit_string(&[4; 65])),
        ]);
        let key = ec_pkcs8(&inner);
        assert_eq!(normalize(&key).unwrap(), key);
    }

    #[test]
    fn attributes_parameters_and_short_scalars_are_normalized() {
        let public = pem::tlv(CONTEXT_1, &pem::bit_string(&[4; 65]));
        let want = ec_pkcs8(&pem::sequence(&[
            vec![INTEGER, 1, 1],
            pem::tlv(OCTET_STRING, &[[0u8; 2].as_slice(), &[7; 30]].concat()),
            public.clone(),
        ]));
        let inner = pem::sequence(&[
            vec![INTEGER, 1, 1],
            pem::tlv(OCTET_STRING, &[7; 30]),
            pem::tlv(CONTEXT_0, P256),
            public,
        ]);
        // [0] attributes: the key-usage attribute Windows and Key Vault write.
        let attributes = pem::tlv(
            CONTEXT_0,
            &pem::sequence(&[
                pem::tlv(OID, &[0x55, 0x1d, 0x0f]),
                pem::tlv(0x31, &pem::bit_string(&[0x10])),
            ]),
        );
        assert_eq!(
            normalize(&ec_pkcs8_with(&inner, Some(attributes))).unwrap(),
            want
        );
    }

    #[test]
    fn rsa_without_null_parameters_gets_them() {
        let without = pem::sequence(&[
            vec![INTEGER, 1, 0],
            pem::sequence(&[pem::tlv(OID, RSA_OID)]),
            pem::tlv(OCTET_STRING, &[0x30, 0x00]),
        ]);
        let with = pem::sequence(&[
            vec![INTEGER, 1, 0],
            RSA_ALGORITHM.to_vec(),
            pem::tlv(OCTET_STRING, &[0x30, 0x00]),
        ]);
        assert_eq!(normalize(&without).unwrap(), with);
        assert_eq!(normalize(&with).unwrap(), with);
    }

    #[test]
    fn malformed_keys_are_errors() {
        assert!(normalize(&[]).is_err());
        assert!(normalize(&[0x04, 0x00]).is_err());
        assert_eq!(
            normalize(&pem::sequence(&[vec![INTEGER, 1, 5]])).unwrap_err(),
            KeyError::Version(5)
        );
        let long = ec_pkcs8(&pem::sequence(&[
            vec![INTEGER, 1, 1],
            pem::tlv(OCTET_STRING, &[7; 33]),
        ]));
        assert_eq!(normalize(&long).unwrap_err(), KeyError::EcScalar);
    }

    /// What openssl writes for an EC key whose SEC1 form carries the curve: our normal form.
    #[test]
    fn matches_openssl_for_sec1_keys_with_parameters() {
        let Ok(out) = Command::new("openssl")
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-outform",
                "DER",
            ])
            .output()
        else {
            eprintln!("openssl not found: skipping independent check");
            return;
        };
        let sec1 = &out.stdout[..];
        let mut fields = ber::parse(sec1).unwrap().children();
        fields.expect(INTEGER).unwrap();
        fields.expect(OCTET_STRING).unwrap();
        assert!(
            fields.optional(CONTEXT_0).unwrap().is_some(),
            "SEC1 with the curve"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.der");
        std::fs::write(&path, sec1).unwrap();
        let pkcs8 = Command::new("openssl")
            .args([
                "pkcs8", "-topk8", "-nocrypt", "-inform", "DER", "-outform", "DER", "-in",
            ])
            .arg(&path)
            .output()
            .unwrap()
            .stdout;
        assert_eq!(normalize(&ec_pkcs8(sec1)).unwrap(), pkcs8);
    }
}
