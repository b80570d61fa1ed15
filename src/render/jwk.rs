//! Key Vault keys (JWK, RFC 7517/7518) as PKIX `PUBLIC KEY` PEM, byte-identical to Go's
//! `x509.MarshalPKIXPublicKey` and `openssl pkey -pubout`: RSA and RSA-HSM as rsaEncryption,
//! EC and EC-HSM on P-256, P-384 and P-521 as id-ecPublicKey with the named curve.

use base64::Engine;

use super::pem;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwkError {
    #[error("failed to get key. key type '{0}' currently not supported")]
    KeyType(String),
    #[error("curve {0} is not supported")]
    Curve(String),
    #[error("key {0} is missing or not base64url")]
    Field(&'static str),
    #[error("key coordinate {0} has the wrong length for the curve")]
    Coordinate(&'static str),
}

/// rsaEncryption 1.2.840.113549.1.1.1
const RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
/// id-ecPublicKey 1.2.840.10045.2.1
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];

fn field(
    jwk: &serde_json::Map<String, serde_json::Value>,
    name: &'static str,
) -> Result<Vec<u8>, JwkError> {
    let text = jwk
        .get(name)
        .and_then(|v| v.as_str())
        .ok_or(JwkError::Field(name))?;
    // Key Vault sends base64url without padding; tolerate padding.
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| JwkError::Field(name))
}

/// The public key of a JWK as PEM.
pub fn public_key_pem(
    jwk: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, JwkError> {
    let kty = jwk.get("kty").and_then(|v| v.as_str()).unwrap_or_default();
    let spki = match kty {
        "RSA" | "RSA-HSM" => {
            let n = field(jwk, "n")?;
            let e = field(jwk, "e")?;
            let rsa_key = pem::sequence(&[pem::unsigned_integer(&n), pem::unsigned_integer(&e)]);
            pem::sequence(&[
                pem::sequence(&[RSA_ENCRYPTION.to_vec(), pem::NULL.to_vec()]),
                pem::bit_string(&rsa_key),
            ])
        }
        "EC" | "EC-HSM" => {
            let crv = jwk.get("crv").and_then(|v| v.as_str()).unwrap_or_default();
            let (oid, size) = match crv {
                "P-256" => (P256, 32),
                "P-384" => (P384, 48),
                "P-521" => (P521, 66),
                other => return Err(JwkError::Curve(other.to_string())),
            };
            let coordinate = |name| -> Result<Vec<u8>, JwkError> {
                let mut v = field(jwk, name)?;
                // Left-pad short encodings; reject values wider than the field.
                while v.len() > size && v[0] == 0 {
                    v.remove(0);
                }
                if v.len() > size {
                    return Err(JwkError::Coordinate(name));
                }
                let mut padded = vec![0; size - v.len()];
                padded.extend(v);
                Ok(padded)
            };
            let mut point = vec![0x04];
            point.extend(coordinate("x")?);
            point.extend(coordinate("y")?);
            pem::sequence(&[
                pem::sequence(&[EC_PUBLIC_KEY.to_vec(), oid.to_vec()]),
                pem::bit_string(&point),
            ])
        }
        other => return Err(JwkError::KeyType(other.to_string())),
    };
    Ok(pem::encode("PUBLIC KEY", &spki))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn jwk(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().unwrap().clone()
    }

    /// `openssl` generates a key, we rebuild its public key from JWK fields, and compare bytes.
    fn openssl_roundtrip(genpkey_args: &[&str], to_jwk: impl Fn(&str) -> serde_json::Value) {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let status = Command::new("openssl")
            .args(["genpkey", "-out", key.to_str().unwrap()])
            .args(genpkey_args)
            .status();
        let Ok(status) = status else {
            eprintln!("openssl not found: skipping independent check");
            return;
        };
        assert!(status.success());
        let public = Command::new("openssl")
            .args(["pkey", "-in", key.to_str().unwrap(), "-pubout"])
            .output()
            .unwrap();
        let text = Command::new("openssl")
            .args(["pkey", "-in", key.to_str().unwrap(), "-text", "-noout"])
            .output()
            .unwrap();
        let ours = public_key_pem(&jwk(to_jwk(&String::from_utf8_lossy(&text.stdout)))).unwrap();
        assert_eq!(ours, String::from_utf8_lossy(&public.stdout));
    }

    /// Hex bytes of a colon-separated block after `label` in `openssl -text` output.
    fn hex_block(text: &str, label: &str) -> Vec<u8> {
        let mut lines = text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(label));
        let first = lines.next().unwrap();
        let mut hex: String = first
            .split_once(':')
            .map(|(_, r)| r.trim().to_string())
            .unwrap_or_default();
        for line in lines {
            let t = line.trim();
            if t.is_empty() || !t.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                break;
            }
            hex.push_str(t);
        }
        hex.split(':')
            .filter(|h| !h.is_empty())
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect()
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn rsa_matches_openssl() {
        openssl_roundtrip(
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            |text| {
                let n = hex_block(text, "modulus:");
                serde_json::json!({"kty": "RSA-HSM", "n": b64(&n), "e": b64(&[1, 0, 1])})
            },
        );
    }

    /// Key Vault sends some RSA moduli with a leading zero byte (a two's-complement habit JWK
    /// does not ask for): with or without it, the PEM is openssl's.
    #[test]
    fn rsa_modulus_with_and_without_leading_zero() {
        for keep_zero in [true, false] {
            openssl_roundtrip(
                &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                |text| {
                    let mut n = hex_block(text, "modulus:");
                    // openssl prints the modulus as a DER INTEGER: 00 then 256 bytes.
                    assert_eq!((n.len(), n[0]), (257, 0));
                    if !keep_zero {
                        n.remove(0);
                    }
                    serde_json::json!({"kty": "RSA", "n": b64(&n), "e": "AQAB"})
                },
            );
        }
    }

    #[test]
    fn ec_curves_match_openssl() {
        for (curve, crv) in [("P-256", "P-256"), ("P-384", "P-384"), ("P-521", "P-521")] {
            openssl_roundtrip(
                &[
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    &format!("ec_paramgen_curve:{curve}"),
                ],
                |text| {
                    let point = hex_block(text, "pub:");
                    let size = (point.len() - 1) / 2;
                    serde_json::json!({"kty": "EC", "crv": crv, "x": b64(&point[1..1 + size]), "y": b64(&point[1 + size..])})
                },
            );
        }
    }

    #[test]
    fn unsupported_types_and_curves() {
        assert_eq!(
            public_key_pem(&jwk(serde_json::json!({"kty": "oct", "k": "AAAA"})))
                .unwrap_err()
                .to_string(),
            "failed to get key. key type 'oct' currently not supported"
        );
        assert_eq!(
            public_key_pem(&jwk(
                serde_json::json!({"kty": "EC", "crv": "P-256K", "x": "AA", "y": "AA"})
            ))
            .unwrap_err()
            .to_string(),
            "curve P-256K is not supported"
        );
        assert!(public_key_pem(&jwk(
            serde_json::json!({"kty": "RSA", "n": "!!", "e": "AQAB"})
        ))
        .is_err());
        assert!(public_key_pem(&jwk(
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(&[1; 40]), "y": b64(&[1; 32])})
        ))
        .is_err());
    }
}
