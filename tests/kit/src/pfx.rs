//! PKCS#12 files built from their ASN.1 parts (RFC 7292), for the producers that no tool on a
//! test machine imitates. `openssl pkcs12 -export -passout pass:` keys the MAC and the
//! encryption with the BMP-encoded empty password (two zero bytes); Key Vault, Windows and .NET
//! use the zero-length password, and their files have other habits too:
//!
//! - Key Vault (files it serves for certificates it created or imported; real samples in the
//!   test data of Azure/notation-azure-kv, `akv_imported_cert.pfx` and `cert_chain.pfx`): a
//!   plain data safe with the key in a pkcs8ShroudedKeyBag (3DES, 2000 iterations, 8-byte salt)
//!   first, then the certificates in an EncryptedData safe, also pbeWithSHAAnd3-KeyTripleDES-CBC
//!   at 2000 iterations; the leaf's bag carries localKeyID 01 00 00 00, the other certificates
//!   an empty attribute set; the key bag a GUID friendlyName and the Microsoft CSP name, and the
//!   PKCS#8 key a key-usage attribute; HMAC-SHA-1 with a 20-byte salt and 2000 iterations.
//! - Windows `Export-PfxCertificate` / .NET on Windows (the Go provider's `TestDecodePKCS12`
//!   fixture is one): the same, but the certificates encrypted with pbeWithSHAAnd40BitRC2-CBC
//!   and the MAC at the default single iteration (the field left out).
//!
//! Salts and IVs are derived from a counter, so a layout always builds the same bytes. Every
//! file made here is checked against `openssl pkcs12` (or, where the openssl command cannot
//! read it, OpenSSL's library through Python's `cryptography`) by the tests that use it.

use cbc::cipher::{block_padding::Pkcs7, BlockModeEncrypt, InnerIvInit, KeyIvInit};
use hmac::digest::{block_api::BlockSizeUser, Digest, FixedOutputReset, OutputSizeUser};
use hmac::{KeyInit, Mac, SimpleHmac};
use pkcs12::kdf::{derive_key, Pkcs12KeyType};
use pkcs5::der::Encode;

/// The password the MAC and the encryption are keyed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// Key Vault, Windows, .NET; OpenSSL's NULL password.
    ZeroLength,
    /// `openssl pkcs12 -passout pass:`: the BMPString terminator only.
    EmptyBmp,
    /// A real password: the file is protected.
    Text(String),
}

impl Password {
    /// The bytes the PKCS#12 KDF takes (BMPString with terminator, RFC 7292 appendix B.1).
    fn pkcs12(&self) -> Vec<u8> {
        match self {
            Password::ZeroLength => Vec::new(),
            Password::EmptyBmp => vec![0, 0],
            Password::Text(t) => bmp(t).into_iter().chain([0, 0]).collect(),
        }
    }

    /// The bytes PBKDF2 takes (UTF-8, as OpenSSL passes them): none for either empty password.
    fn pbes2(&self) -> Vec<u8> {
        match self {
            Password::Text(t) => t.as_bytes().to_vec(),
            _ => Vec::new(),
        }
    }
}

/// How a bag or safe is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// Not encrypted: a plain keyBag, or certificates in a data safe.
    None,
    /// pbeWithSHAAnd40BitRC2-CBC
    Rc2_40,
    /// pbeWithSHAAnd128BitRC2-CBC
    Rc2_128,
    /// pbeWithSHAAnd3-KeyTripleDES-CBC
    TripleDes,
    /// PBES2: PBKDF2 with `prf`, AES-`bits`-CBC.
    Aes { bits: u16, prf: Prf },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    HmacSha1,
    HmacSha256,
    HmacSha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacDigest {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// The integrity check: digest, iterations (1 is written by leaving the field out, as
/// Windows does) and salt length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacSpec {
    pub digest: MacDigest,
    pub iterations: u32,
    pub salt_len: usize,
}

/// Everything that distinguishes one producer's PFX from another's.
#[derive(Debug, Clone)]
pub struct Layout {
    pub password: Password,
    pub mac: Option<MacSpec>,
    pub key_cipher: Cipher,
    pub cert_cipher: Cipher,
    pub iterations: u32,
    /// The key's safe before the certificates' (Key Vault, Windows) or after (OpenSSL).
    pub key_first: bool,
    /// localKeyID 01 00 00 00, GUID friendlyName, CSP name, key-usage attribute in the key.
    pub microsoft_attributes: bool,
    /// BER indefinite lengths on the outer structures (older Windows and Java tools).
    pub indefinite_lengths: bool,
}

impl Layout {
    /// As Key Vault serves a certificate it created or imported.
    pub fn key_vault() -> Layout {
        Layout {
            password: Password::ZeroLength,
            mac: Some(MacSpec {
                digest: MacDigest::Sha1,
                iterations: 2000,
                salt_len: 20,
            }),
            key_cipher: Cipher::TripleDes,
            cert_cipher: Cipher::TripleDes,
            iterations: 2000,
            key_first: true,
            microsoft_attributes: true,
            indefinite_lengths: false,
        }
    }

    /// As Windows `Export-PfxCertificate` and .NET on Windows write it.
    pub fn windows() -> Layout {
        Layout {
            mac: Some(MacSpec {
                digest: MacDigest::Sha1,
                iterations: 1,
                salt_len: 20,
            }),
            cert_cipher: Cipher::Rc2_40,
            ..Layout::key_vault()
        }
    }

    /// The PFX of `key` (PKCS#8 DER; empty for none) and `certs` (DER, in bag order; the
    /// first is the leaf).
    pub fn build(&self, key: &[u8], certs: &[&[u8]]) -> Vec<u8> {
        let mut salts = Salts(0);
        let key_safe = (!key.is_empty()).then(|| self.key_safe(key, &mut salts));
        let cert_safe = Some(self.cert_safe(certs, &mut salts));
        let safes: Vec<Vec<u8>> = if self.key_first {
            [key_safe, cert_safe]
        } else {
            [cert_safe, key_safe]
        }
        .into_iter()
        .flatten()
        .collect();
        let auth_safe = self.seq(&safes);
        let mut pfx = vec![
            int(3),
            self.seq(&[oid(DATA), self.ctx0(&octets(&auth_safe))]),
        ];
        if let Some(mac) = self.mac {
            pfx.push(self.mac_data(mac, &auth_safe, &mut salts));
        }
        self.seq(&pfx)
    }

    fn key_safe(&self, key: &[u8], salts: &mut Salts) -> Vec<u8> {
        let key = if self.microsoft_attributes {
            with_key_usage_attribute(key)
        } else {
            key.to_vec()
        };
        let mut attributes = vec![attribute(LOCAL_KEY_ID, &octets(&[1, 0, 0, 0]))];
        if self.microsoft_attributes {
            let guid = "{47630B1B-B41A-49B8-9D09-7253F94C6AAC}";
            attributes.push(attribute(FRIENDLY_NAME, &tlv(0x1e, &bmp(guid))));
            let csp = "Microsoft Enhanced Cryptographic Provider v1.0";
            attributes.push(attribute(MS_CSP_NAME, &tlv(0x1e, &bmp(csp))));
        }
        let bag = match self.key_cipher {
            Cipher::None => safe_bag(KEY_BAG, &key, &attributes),
            cipher => {
                let (algorithm, encrypted) = self.encrypt(cipher, &key, salts);
                let info = seq(&[algorithm, octets(&encrypted)]);
                safe_bag(SHROUDED_KEY_BAG, &info, &attributes)
            }
        };
        self.seq(&[oid(DATA), self.ctx0(&octets(&seq(&[bag])))])
    }

    fn cert_safe(&self, certs: &[&[u8]], salts: &mut Salts) -> Vec<u8> {
        let bags: Vec<Vec<u8>> = certs
            .iter()
            .enumerate()
            .map(|(i, der)| {
                let bag = seq(&[oid(X509_CERTIFICATE), ctx0(&octets(der))]);
                let attributes = if i == 0 {
                    vec![attribute(LOCAL_KEY_ID, &octets(&[1, 0, 0, 0]))]
                } else if self.microsoft_attributes {
                    Vec::new()
                } else {
                    return seq(&[oid(CERT_BAG), ctx0(&bag)]);
                };
                safe_bag(CERT_BAG, &bag, &attributes)
            })
            .collect();
        let contents = seq(&bags);
        match self.cert_cipher {
            Cipher::None => self.seq(&[oid(DATA), self.ctx0(&octets(&contents))]),
            cipher => {
                let (algorithm, encrypted) = self.encrypt(cipher, &contents, salts);
                // EncryptedContentInfo: encryptedContent is [0] IMPLICIT OCTET STRING.
                let info = seq(&[oid(DATA), algorithm, tlv(0x80, &encrypted)]);
                let encrypted_data = seq(&[int(0), info]);
                self.seq(&[oid(ENCRYPTED_DATA), self.ctx0(&encrypted_data)])
            }
        }
    }

    /// (AlgorithmIdentifier, ciphertext).
    fn encrypt(&self, cipher: Cipher, plain: &[u8], salts: &mut Salts) -> (Vec<u8>, Vec<u8>) {
        let password = self.password.pkcs12();
        let pbes1 = |alg_oid: &[u8], key_len: usize, salt: Vec<u8>| {
            let derive = |kind, len| {
                derive_key::<sha1::Sha1>(&password, &salt, kind, self.iterations as i32, len)
            };
            let (key, iv) = (
                derive(Pkcs12KeyType::EncryptionKey, key_len),
                derive(Pkcs12KeyType::Iv, 8),
            );
            let encrypted = match key_len {
                24 => cbc::Encryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
                    .expect("3DES key")
                    .encrypt_padded_vec::<Pkcs7>(plain),
                _ => {
                    let rc2 = rc2::Rc2::new_with_eff_key_len(&key, key_len * 8);
                    cbc::Encryptor::<rc2::Rc2>::inner_iv_slice_init(rc2, &iv)
                        .expect("RC2 IV")
                        .encrypt_padded_vec::<Pkcs7>(plain)
                }
            };
            let params = seq(&[octets(&salt), int(self.iterations)]);
            (seq(&[oid(alg_oid), params]), encrypted)
        };
        match cipher {
            Cipher::None => unreachable!("not encrypted"),
            Cipher::Rc2_40 => pbes1(PBE_RC2_40, 5, salts.next(8)),
            Cipher::Rc2_128 => pbes1(PBE_RC2_128, 16, salts.next(8)),
            Cipher::TripleDes => pbes1(PBE_3DES, 24, salts.next(8)),
            Cipher::Aes { bits, prf } => self.pbes2(bits, prf, plain, salts),
        }
    }

    fn pbes2(&self, bits: u16, prf: Prf, plain: &[u8], salts: &mut Salts) -> (Vec<u8>, Vec<u8>) {
        use pkcs5::pbes2::{EncryptionScheme, Kdf, Parameters, Pbkdf2Params, Pbkdf2Prf, Salt};
        let iv: [u8; 16] = salts.next(16).try_into().expect("16 bytes");
        let encryption = match bits {
            128 => EncryptionScheme::Aes128Cbc { iv },
            192 => EncryptionScheme::Aes192Cbc { iv },
            _ => EncryptionScheme::Aes256Cbc { iv },
        };
        let prf = match prf {
            Prf::HmacSha1 => Pbkdf2Prf::HmacWithSha1,
            Prf::HmacSha256 => Pbkdf2Prf::HmacWithSha256,
            Prf::HmacSha512 => Pbkdf2Prf::HmacWithSha512,
        };
        let params = Parameters {
            kdf: Kdf::Pbkdf2(Pbkdf2Params {
                salt: Salt::new(salts.next(8)).expect("salt"),
                iteration_count: self.iterations,
                key_length: None,
                prf,
            }),
            encryption,
        };
        let encrypted = params
            .encrypt(self.password.pbes2(), plain)
            .expect("PBES2 encryption");
        let algorithm = seq(&[oid(PBES2), params.to_der().expect("PBES2 parameters")]);
        (algorithm, encrypted)
    }

    fn mac_data(&self, mac: MacSpec, data: &[u8], salts: &mut Salts) -> Vec<u8> {
        let salt = salts.next(mac.salt_len);
        let password = self.password.pkcs12();
        let (digest_oid, value) = match mac.digest {
            MacDigest::Sha1 => (
                SHA1,
                hmac::<sha1::Sha1>(&password, &salt, mac.iterations, data),
            ),
            MacDigest::Sha224 => (
                SHA224,
                hmac::<sha2_v011::Sha224>(&password, &salt, mac.iterations, data),
            ),
            MacDigest::Sha256 => (
                SHA256,
                hmac::<sha2_v011::Sha256>(&password, &salt, mac.iterations, data),
            ),
            MacDigest::Sha384 => (
                SHA384,
                hmac::<sha2_v011::Sha384>(&password, &salt, mac.iterations, data),
            ),
            MacDigest::Sha512 => (
                SHA512,
                hmac::<sha2_v011::Sha512>(&password, &salt, mac.iterations, data),
            ),
        };
        let digest_info = seq(&[seq(&[oid(digest_oid), vec![0x05, 0x00]]), octets(&value)]);
        let mut fields = vec![digest_info, octets(&salt)];
        // iterations INTEGER DEFAULT 1: DER leaves the default out.
        if mac.iterations != 1 {
            fields.push(int(mac.iterations));
        }
        seq(&fields)
    }

    /// A SEQUENCE, with an indefinite length when the layout asks for BER.
    fn seq(&self, parts: &[Vec<u8>]) -> Vec<u8> {
        self.indefinite(0x30, parts)
    }

    fn ctx0(&self, inner: &[u8]) -> Vec<u8> {
        self.indefinite(0xa0, &[inner.to_vec()])
    }

    fn indefinite(&self, tag: u8, parts: &[Vec<u8>]) -> Vec<u8> {
        if !self.indefinite_lengths {
            return tlv(tag, &parts.concat());
        }
        let mut out = vec![tag, 0x80];
        out.extend(parts.concat());
        out.extend([0, 0]);
        out
    }
}

/// HMAC keyed by the PKCS#12 KDF (RFC 7292 appendix B, ID 3).
fn hmac<D>(password: &[u8], salt: &[u8], iterations: u32, data: &[u8]) -> Vec<u8>
where
    D: Digest + FixedOutputReset + BlockSizeUser,
{
    let len = <D as OutputSizeUser>::output_size();
    let key = derive_key::<D>(password, salt, Pkcs12KeyType::Mac, iterations as i32, len);
    let mut mac = <SimpleHmac<D> as KeyInit>::new_from_slice(&key).expect("HMAC key");
    Mac::update(&mut mac, data);
    mac.finalize().into_bytes().to_vec()
}

/// The PKCS#8 key with the `[0]` key-usage attribute Windows and Key Vault add.
fn with_key_usage_attribute(pkcs8: &[u8]) -> Vec<u8> {
    let (header, _) = der_header(pkcs8);
    let usage = seq(&[oid(KEY_USAGE), tlv(0x31, &[0x03, 0x02, 0x00, 0x10])]);
    let mut body = pkcs8[header..].to_vec();
    body.extend(tlv(0xa0, &usage));
    tlv(0x30, &body)
}

/// Header length and content length of a DER value.
fn der_header(der: &[u8]) -> (usize, usize) {
    match der[1] {
        n if n < 0x80 => (2, usize::from(n)),
        n => {
            let k = usize::from(n & 0x7f);
            let len = der[2..2 + k]
                .iter()
                .fold(0, |l, b| l << 8 | usize::from(*b));
            (2 + k, len)
        }
    }
}

fn safe_bag(kind: &[u8], value: &[u8], attributes: &[Vec<u8>]) -> Vec<u8> {
    seq(&[oid(kind), ctx0(value), tlv(0x31, &attributes.concat())])
}

fn attribute(kind: &[u8], value: &[u8]) -> Vec<u8> {
    seq(&[oid(kind), tlv(0x31, value)])
}

fn bmp(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Deterministic salts and IVs.
struct Salts(u8);

impl Salts {
    fn next(&mut self, len: usize) -> Vec<u8> {
        self.0 = self.0.wrapping_add(1);
        (0..len)
            .map(|i| self.0.wrapping_mul(31).wrapping_add(i as u8 * 7))
            .collect()
    }
}

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn ctx0(inner: &[u8]) -> Vec<u8> {
    tlv(0xa0, inner)
}

fn octets(bytes: &[u8]) -> Vec<u8> {
    tlv(0x04, bytes)
}

fn oid(content: &[u8]) -> Vec<u8> {
    tlv(0x06, content)
}

fn int(n: u32) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let mut digits: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    if digits.first().is_none_or(|b| b & 0x80 != 0) {
        digits.insert(0, 0);
    }
    tlv(0x02, &digits)
}

const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const ENCRYPTED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x06];
const KEY_BAG: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x01,
];
const SHROUDED_KEY_BAG: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02,
];
const CERT_BAG: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x03,
];
const PBE_3DES: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x03];
const PBE_RC2_128: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x05];
const PBE_RC2_40: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x06];
const X509_CERTIFICATE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x16, 0x01];
const LOCAL_KEY_ID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x15];
const FRIENDLY_NAME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x14];
/// 1.3.6.1.4.1.311.17.1, the Microsoft CSP name.
const MS_CSP_NAME: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x11, 0x01];
const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
const PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
const SHA224: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04];

/// What an independent PKCS#12 reader found in a PFX: PEM blocks exactly as it printed them,
/// keys and certificates apart, each in the reader's order.
#[derive(Debug, Default)]
pub struct Reference {
    pub keys: Vec<String>,
    pub certs: Vec<String>,
}

impl Reference {
    fn from_pem(text: &str) -> Reference {
        let mut reference = Reference::default();
        let mut block = String::new();
        for line in text.lines() {
            if line.starts_with("-----BEGIN ") || !block.is_empty() {
                block.push_str(line);
                block.push('\n');
            }
            if line.starts_with("-----END ") {
                let taken = std::mem::take(&mut block);
                match line.contains("CERTIFICATE") {
                    true => reference.certs.push(taken),
                    false => reference.keys.push(taken),
                }
            }
        }
        reference
    }
}

/// `openssl pkcs12 -nodes -passin pass:` (with the legacy provider for RC2 and DES): openssl
/// tries the BMP-encoded empty password and, when the MAC does not match it, the zero-length
/// one. Err with openssl's message when it cannot read the file.
pub fn openssl_reference(pfx: &[u8]) -> Result<Reference, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("in.pfx");
    std::fs::write(&path, pfx).map_err(|e| e.to_string())?;
    let out = std::process::Command::new("openssl")
        .args(["pkcs12", "-nodes", "-passin", "pass:", "-legacy", "-in"])
        .arg(&path)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(Reference::from_pem(&String::from_utf8_lossy(&out.stdout)))
}

/// OpenSSL's library (`PKCS12_parse`) through Python's `cryptography`, for the one shape the
/// openssl command cannot read: no MAC and the zero-length password (the command only falls
/// back to it when a MAC fails). The key and its certificate, then the other certificates.
pub fn python_reference(pfx: &[u8]) -> Result<Reference, String> {
    let script = "import sys\nfrom cryptography.hazmat.primitives.serialization import pkcs12, Encoding, PrivateFormat, NoEncryption\nk, c, extra = pkcs12.load_key_and_certificates(sys.stdin.buffer.read(), None)\nout = k.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()) if k else b''\nfor x in ([c] if c else []) + extra:\n    out += x.public_bytes(Encoding.PEM)\nsys.stdout.buffer.write(out)\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    use std::io::Write;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(pfx)
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(Reference::from_pem(&String::from_utf8_lossy(&out.stdout)))
}
