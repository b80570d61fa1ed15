//! PKCS#12 (RFC 7292) decoding of the unprotected PFX files Key Vault serves, accepting what
//! Go's `golang.org/x/crypto/pkcs12` and OpenSSL accept.
//!
//! "No password" has two encodings in PKCS#12. The password is a BMPString with a two-byte
//! terminator, so OpenSSL's `-passout pass:` keys the MAC and the encryption with the two bytes
//! `00 00`; Key Vault, Windows (`Export-PfxCertificate`, CryptoAPI) and .NET use the zero-length
//! octet string. Go and OpenSSL try both; so does this module, for the MAC and for every
//! encrypted item: PBES1 (pbeWithSHAAnd3-KeyTripleDES-CBC, pbeWithSHAAnd128BitRC2-CBC,
//! pbeWithSHAAnd40BitRC2-CBC), PBES2 (PBKDF2 with HMAC-SHA-1/-224/-256/-384/-512 and
//! AES-128/192/256-CBC), shrouded and plain key bags, nested safe contents, and files without a
//! MAC. A MAC that matches neither empty password means the file is password protected.
//!
//! It replaces `p12-keystore` 0.4, whose decoder derives keys from the BMP encoding only (its
//! `pkcs12::kdf::derive_key_utf8` call), so every Key Vault- and Windows-made PFX failed with
//! "MAC tag mismatch", and which has no 128-bit RC2. Every piece below is a RustCrypto crate
//! the lock file already had through it, so nothing new is compiled:
//! - `pkcs12::kdf::derive_key` (RFC 7292 appendix B) takes raw password bytes, so both
//!   encodings can be given;
//! - `hmac` with `sha1`/`sha2` checks the MAC in constant time;
//! - `cbc` with `des` and `rc2` (with its effective key length) decrypts PBES1;
//! - `pkcs5` parses PBES2 parameters and decrypts (PBKDF2, `aes`);
//! - the container itself is read by `ber`, a small BER reader, because files from older
//!   Windows and Java tools use indefinite lengths, which the strict DER types of `cms`/`pkcs12`
//!   refuse, and keys are re-encoded by `pkcs8` as openssl and Go write them.
//!
//! All work on hostile input is bounded: input size, ASN.1 nesting, nested bags and their number,
//! iterations per key derivation and in total (so an attacker-made file costs at most a fraction
//! of a second), and no path panics.

use hmac::digest::{block_api::BlockSizeUser, Digest, FixedOutputReset, OutputSizeUser};
use hmac::{KeyInit, Mac, SimpleHmac};
use pkcs12::kdf::{derive_key, Pkcs12KeyType};
use pkcs5::der::Decode;
use zeroize::Zeroizing;

use super::ber::{self, BerError, Tlv, CONTEXT_0, INTEGER, OCTET_STRING, OID, SEQUENCE};
use super::pkcs8::{self, KeyError};

/// Far above any certificate chain (Key Vault caps a secret at 25 KB).
pub const MAX_PFX_BYTES: usize = 256 * 1024;
/// Iterations of one key derivation. Producers use 1 to 10,000 (Key Vault and Windows 2000,
/// OpenSSL 2048, Java 10,000); OWASP's advice for PBKDF2 is 600,000.
pub const MAX_ITERATIONS: u64 = 1_000_000;
/// Work for the whole file, counting every derivation and every second attempt, in SHA-1
/// compressions (see [`cost_weight`]): about a second of one core at worst, while a real file
/// with 600,000 PBKDF2-SHA-256 iterations everywhere needs half of it.
pub const MAX_WORK: u64 = 16 * MAX_ITERATIONS;
/// Safe contents inside safe contents (safeContentsBag); producers nest none.
const MAX_BAG_DEPTH: usize = 4;
/// Bags of every kind; a chain has a handful.
const MAX_BAGS: usize = 512;

mod oid {
    pub const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    pub const ENCRYPTED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x06];
    pub const KEY_BAG: &[u8] = &[
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x01,
    ];
    pub const SHROUDED_KEY_BAG: &[u8] = &[
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02,
    ];
    pub const CERT_BAG: &[u8] = &[
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x03,
    ];
    pub const SAFE_CONTENTS_BAG: &[u8] = &[
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x06,
    ];
    pub const X509_CERTIFICATE: &[u8] =
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x16, 0x01];
    pub const PBE_SHA1_3DES: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x03];
    pub const PBE_SHA1_RC2_128: &[u8] =
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x05];
    pub const PBE_SHA1_RC2_40: &[u8] =
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x06];
    pub const PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
    pub const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
    /// 2.16.840.1.101.3.4.2.x: SHA-256 (1), -384 (2), -512 (3), -224 (4), -512/224 (5), -512/256 (6).
    pub const SHA2_PREFIX: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pkcs12Error {
    #[error("the PFX is {0} bytes; at most {MAX_PFX_BYTES} are accepted")]
    TooLarge(usize),
    #[error("malformed {what}: {source}")]
    Malformed {
        what: &'static str,
        source: BerError,
    },
    #[error("PKCS#12 version {0} is not supported (version 3 is the only one)")]
    Version(u64),
    #[error("unsupported {what}: {detail}")]
    Unsupported { what: &'static str, detail: String },
    #[error("a key derivation asks for {0} iterations; at most {MAX_ITERATIONS} are accepted")]
    Iterations(u64),
    #[error(
        "the PFX's key derivations together cost more than the limit of {MAX_WORK} hash operations"
    )]
    Work,
    #[error("more than {MAX_BAGS} bags, or safe contents nested deeper than {MAX_BAG_DEPTH}")]
    TooManyBags,
    #[error("{0}")]
    PasswordProtected(&'static str),
    #[error("{0}")]
    Key(#[from] KeyError),
}

fn at(what: &'static str) -> impl Fn(BerError) -> Pkcs12Error {
    move |source| Pkcs12Error::Malformed { what, source }
}

/// What a PFX holds: PKCS#8 keys (re-encoded, see `pkcs8`) and DER certificates, in bag order.
#[derive(Default)]
pub struct Contents {
    pub keys: Vec<Vec<u8>>,
    pub certs: Vec<Vec<u8>>,
}

/// Counts only: the keys are secret.
impl std::fmt::Debug for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contents")
            .field("keys", &self.keys.len())
            .field("certs", &self.certs.len())
            .finish()
    }
}

/// The two encodings of the empty password, in the order Go and OpenSSL try them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Password {
    /// BMPString "" with its terminator: OpenSSL's `-passout pass:`, Go's encoding of "".
    Bmp,
    /// The zero-length password: Key Vault, Windows, .NET; OpenSSL's NULL password.
    Empty,
}

impl Password {
    fn bytes(self) -> &'static [u8] {
        match self {
            Password::Bmp => &[0, 0],
            Password::Empty => &[],
        }
    }

    /// Both, the one that worked before first.
    fn candidates(preferred: Option<Password>) -> [Password; 2] {
        match preferred {
            Some(Password::Empty) => [Password::Empty, Password::Bmp],
            _ => [Password::Bmp, Password::Empty],
        }
    }
}

/// Decodes a DER or BER PFX with an empty password.
pub fn decode(input: &[u8]) -> Result<Contents, Pkcs12Error> {
    decode_within(input, MAX_WORK)
}

/// [`decode`] with a work budget (tests use small ones).
fn decode_within(input: &[u8], work: u64) -> Result<Contents, Pkcs12Error> {
    if input.len() > MAX_PFX_BYTES {
        return Err(Pkcs12Error::TooLarge(input.len()));
    }
    let pfx = ber::parse(input).map_err(at("PFX"))?;
    let mut fields = pfx.children();
    let version = fields
        .expect(INTEGER)
        .and_then(|v| v.unsigned())
        .map_err(at("PFX"))?;
    if version != 3 {
        return Err(Pkcs12Error::Version(version));
    }
    let auth_safe = fields.expect(SEQUENCE).map_err(at("PFX"))?;
    let mac = fields.optional(SEQUENCE).map_err(at("PFX"))?;
    let (content_type, content) = content_info(&auth_safe)?;
    if content_type != oid::DATA {
        return Err(unsupported("PFX integrity mode", content_type));
    }
    let data = data_octets(content)?;
    let mut decoder = Decoder {
        work_left: work,
        preferred: None,
        bags: 0,
        contents: Contents::default(),
    };
    if let Some(mac) = mac {
        decoder.preferred = Some(decoder.verify_mac(&mac, &data)?);
    }
    let safe = ber::parse(&data).map_err(at("authenticated safe"))?;
    let mut infos = safe.children();
    while let Some(info) = infos.next().map_err(at("authenticated safe"))? {
        let (content_type, content) = content_info(&info)?;
        let safe_contents = match content_type {
            oid::DATA => Zeroizing::new(data_octets(content)?),
            oid::ENCRYPTED_DATA => decoder.encrypted_data(content)?,
            other => return Err(unsupported("content type in the PFX", other)),
        };
        decoder.bags(&safe_contents, 0)?;
    }
    Ok(decoder.contents)
}

/// ContentInfo: the content type and the `[0]` content, if any.
fn content_info<'a>(info: &Tlv<'a>) -> Result<(&'a [u8], Option<Tlv<'a>>), Pkcs12Error> {
    let mut fields = info.children();
    let content_type = fields.expect(OID).map_err(at("content info"))?;
    let content = fields
        .optional(CONTEXT_0)
        .and_then(|c| c.map(|c| c.children().expect_any()).transpose())
        .map_err(at("content info"))?;
    Ok((content_type.content, content))
}

/// The octets of id-data content (none when absent).
fn data_octets(content: Option<Tlv>) -> Result<Vec<u8>, Pkcs12Error> {
    match content {
        None => Ok(Vec::new()),
        Some(c) => Ok(c.octets().map_err(at("data content"))?.into_owned()),
    }
}

fn unsupported(what: &'static str, oid: &[u8]) -> Pkcs12Error {
    let detail = match pkcs5::ObjectIdentifier::from_bytes(oid) {
        Ok(oid) => match name_of(oid.as_bytes()) {
            Some(name) => format!("{name} ({oid})"),
            None => oid.to_string(),
        },
        Err(_) => "an invalid object identifier".to_string(),
    };
    Pkcs12Error::Unsupported { what, detail }
}

/// Names of what real files may carry but this decoder does not read.
fn name_of(oid: &[u8]) -> Option<&'static str> {
    const PKCS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01];
    let suffix = oid.strip_prefix(PKCS)?;
    Some(match suffix {
        [0x07, 0x02] => "signedData (public-key integrity mode)",
        [0x07, 0x03] => "envelopedData (public-key privacy mode)",
        [0x0c, 0x01, 0x01] => "pbeWithSHAAnd128BitRC4",
        [0x0c, 0x01, 0x02] => "pbeWithSHAAnd40BitRC4",
        [0x0c, 0x01, 0x04] => "pbeWithSHAAnd2-KeyTripleDES-CBC",
        [0x05, 0x0e] => "PBMAC1",
        _ => return None,
    })
}

/// The MAC's hash (RFC 7292 appendix B with HMAC).
#[derive(Debug, Clone, Copy)]
enum MacDigest {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha512_224,
    Sha512_256,
}

impl MacDigest {
    fn from_oid(oid: &[u8]) -> Option<MacDigest> {
        if oid == oid::SHA1 {
            return Some(MacDigest::Sha1);
        }
        Some(match oid.strip_prefix(oid::SHA2_PREFIX)? {
            [1] => MacDigest::Sha256,
            [2] => MacDigest::Sha384,
            [3] => MacDigest::Sha512,
            [4] => MacDigest::Sha224,
            [5] => MacDigest::Sha512_224,
            [6] => MacDigest::Sha512_256,
            _ => return None,
        })
    }

    fn weight(self) -> u64 {
        match self {
            MacDigest::Sha1 => cost_weight(Hash::Sha1),
            MacDigest::Sha224 | MacDigest::Sha256 => cost_weight(Hash::Sha256),
            _ => cost_weight(Hash::Sha512),
        }
    }

    fn matches(self, password: &[u8], mac: &MacParams, data: &[u8]) -> bool {
        use sha2_v011 as sha2;
        match self {
            MacDigest::Sha1 => hmac_matches::<sha1::Sha1>(password, mac, data),
            MacDigest::Sha224 => hmac_matches::<sha2::Sha224>(password, mac, data),
            MacDigest::Sha256 => hmac_matches::<sha2::Sha256>(password, mac, data),
            MacDigest::Sha384 => hmac_matches::<sha2::Sha384>(password, mac, data),
            MacDigest::Sha512 => hmac_matches::<sha2::Sha512>(password, mac, data),
            MacDigest::Sha512_224 => hmac_matches::<sha2::Sha512_224>(password, mac, data),
            MacDigest::Sha512_256 => hmac_matches::<sha2::Sha512_256>(password, mac, data),
        }
    }
}

/// Hash families by cost.
enum Hash {
    Sha1,
    Sha256,
    Sha512,
}

/// One iteration's cost in SHA-1 compressions (measured: SHA-256 about 2, SHA-512 about 6).
fn cost_weight(hash: Hash) -> u64 {
    match hash {
        Hash::Sha1 => 1,
        Hash::Sha256 => 2,
        Hash::Sha512 => 6,
    }
}

struct MacParams {
    expected: Vec<u8>,
    salt: Vec<u8>,
    iterations: u64,
}

fn hmac_matches<D>(password: &[u8], mac: &MacParams, data: &[u8]) -> bool
where
    D: Digest + FixedOutputReset + BlockSizeUser,
{
    let key = Zeroizing::new(derive_key::<D>(
        password,
        &mac.salt,
        Pkcs12KeyType::Mac,
        rounds(mac.iterations),
        <D as OutputSizeUser>::output_size(),
    ));
    let Ok(mut hmac) = <SimpleHmac<D> as KeyInit>::new_from_slice(&key) else {
        return false;
    };
    Mac::update(&mut hmac, data);
    hmac.verify_slice(&mac.expected).is_ok()
}

/// Iterations as the KDF takes them; callers have checked them against [`MAX_ITERATIONS`].
fn rounds(iterations: u64) -> i32 {
    i32::try_from(iterations.max(1)).unwrap_or(i32::MAX)
}

/// PBES1 ciphers of RFC 7292 appendix C.
#[derive(Debug, Clone, Copy)]
enum Pbes1Cipher {
    TripleDes,
    Rc2_128,
    Rc2_40,
}

impl Pbes1Cipher {
    fn key_len(self) -> usize {
        match self {
            Pbes1Cipher::TripleDes => 24,
            Pbes1Cipher::Rc2_128 => 16,
            Pbes1Cipher::Rc2_40 => 5,
        }
    }

    /// CBC with PKCS#7 padding; None when the padding is wrong (the wrong password).
    fn decrypt(self, key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        use cbc::cipher::{block_padding::Pkcs7, BlockModeDecrypt, InnerIvInit, KeyIvInit};
        match self {
            Pbes1Cipher::TripleDes => cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv)
                .ok()?
                .decrypt_padded_vec::<Pkcs7>(data)
                .ok(),
            Pbes1Cipher::Rc2_128 | Pbes1Cipher::Rc2_40 => {
                let rc2 = rc2::Rc2::new_with_eff_key_len(key, key.len() * 8);
                cbc::Decryptor::<rc2::Rc2>::inner_iv_slice_init(rc2, iv)
                    .ok()?
                    .decrypt_padded_vec::<Pkcs7>(data)
                    .ok()
            }
        }
    }
}

/// How an encrypted item is protected.
enum Scheme {
    Pbes1 {
        cipher: Pbes1Cipher,
        salt: Vec<u8>,
        iterations: u64,
    },
    Pbes2(Box<pkcs5::pbes2::Parameters>),
}

impl Scheme {
    fn parse(algorithm: &Tlv) -> Result<Scheme, Pkcs12Error> {
        let mut fields = algorithm.children();
        let oid = fields.expect(OID).map_err(at("encryption algorithm"))?;
        let cipher = match oid.content {
            oid::PBE_SHA1_3DES => Pbes1Cipher::TripleDes,
            oid::PBE_SHA1_RC2_128 => Pbes1Cipher::Rc2_128,
            oid::PBE_SHA1_RC2_40 => Pbes1Cipher::Rc2_40,
            oid::PBES2 => {
                let params = fields.expect(SEQUENCE).map_err(at("PBES2 parameters"))?;
                let params = pkcs5::pbes2::Parameters::from_der(params.raw).map_err(|e| {
                    Pkcs12Error::Unsupported {
                        what: "PBES2 parameters",
                        detail: e.to_string(),
                    }
                })?;
                return Ok(Scheme::Pbes2(Box::new(params)));
            }
            other => return Err(unsupported("encryption algorithm", other)),
        };
        let params = fields.expect(SEQUENCE).map_err(at("PBES1 parameters"))?;
        let mut params = params.children();
        let salt = params.expect(OCTET_STRING).and_then(|s| s.octets());
        let iterations = params.expect(INTEGER).and_then(|i| i.unsigned());
        Ok(Scheme::Pbes1 {
            cipher,
            salt: salt.map_err(at("PBES1 parameters"))?.into_owned(),
            iterations: iterations.map_err(at("PBES1 parameters"))?,
        })
    }

    /// What one attempt costs: (iterations, work per iteration for [`MAX_WORK`]).
    fn cost(&self) -> Result<(u64, u64), Pkcs12Error> {
        use pkcs5::pbes2::{Kdf, Pbkdf2Prf};
        match self {
            // Key blocks of SHA-1 output, plus one for the IV.
            Scheme::Pbes1 {
                cipher, iterations, ..
            } => Ok((*iterations, cipher.key_len().div_ceil(20) as u64 + 1)),
            Scheme::Pbes2(params) => match &params.kdf {
                Kdf::Pbkdf2(p) => {
                    let (output, hash) = match p.prf {
                        Pbkdf2Prf::HmacWithSha224 => (28, Hash::Sha256),
                        Pbkdf2Prf::HmacWithSha256 => (32, Hash::Sha256),
                        Pbkdf2Prf::HmacWithSha384 => (48, Hash::Sha512),
                        Pbkdf2Prf::HmacWithSha512 => (64, Hash::Sha512),
                        _ => (20, Hash::Sha1),
                    };
                    let blocks = params.encryption.key_size().div_ceil(output) as u64;
                    // HMAC: two compressions an iteration.
                    Ok((u64::from(p.iteration_count), 2 * blocks * cost_weight(hash)))
                }
                // scrypt: no PKCS#12 producer uses it, and its memory cost is another bound to keep.
                _ => Err(Pkcs12Error::Unsupported {
                    what: "PBES2 key derivation",
                    detail: params.kdf.oid().to_string(),
                }),
            },
        }
    }

    /// One attempt: Ok(None) when this password does not decrypt it.
    fn decrypt(
        &self,
        password: Password,
        data: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, Pkcs12Error> {
        match self {
            Scheme::Pbes1 {
                cipher,
                salt,
                iterations,
            } => {
                let derive = |kind, len| {
                    Zeroizing::new(derive_key::<sha1::Sha1>(
                        password.bytes(),
                        salt,
                        kind,
                        rounds(*iterations),
                        len,
                    ))
                };
                let key = derive(Pkcs12KeyType::EncryptionKey, cipher.key_len());
                let iv = derive(Pkcs12KeyType::Iv, 8);
                Ok(cipher.decrypt(&key, &iv, data).map(Zeroizing::new))
            }
            Scheme::Pbes2(params) => match params.decrypt(password.bytes(), data) {
                Ok(plain) => Ok(Some(Zeroizing::new(plain))),
                Err(pkcs5::Error::DecryptFailed) => Ok(None),
                Err(e) => Err(Pkcs12Error::Unsupported {
                    what: "PBES2 encryption",
                    detail: e.to_string(),
                }),
            },
        }
    }
}

/// Decoding state: the work budget, the password that worked, and what was found.
struct Decoder {
    work_left: u64,
    preferred: Option<Password>,
    bags: usize,
    contents: Contents,
}

impl Decoder {
    fn spend(&mut self, iterations: u64, per_iteration: u64) -> Result<(), Pkcs12Error> {
        if iterations > MAX_ITERATIONS {
            return Err(Pkcs12Error::Iterations(iterations));
        }
        let cost = iterations.max(1).saturating_mul(per_iteration);
        self.work_left = self.work_left.checked_sub(cost).ok_or(Pkcs12Error::Work)?;
        Ok(())
    }

    /// Checks the MAC with both empty passwords; returns the one that matches.
    fn verify_mac(&mut self, mac_data: &Tlv, data: &[u8]) -> Result<Password, Pkcs12Error> {
        let parse = || -> Result<(&[u8], MacParams), BerError> {
            let mut fields = mac_data.children();
            let mut digest_info = fields.expect(SEQUENCE)?.children();
            let algorithm = digest_info.expect(SEQUENCE)?.children().expect(OID)?;
            let expected = digest_info.expect(OCTET_STRING)?.octets()?.into_owned();
            let salt = fields.expect(OCTET_STRING)?.octets()?.into_owned();
            // iterations INTEGER DEFAULT 1
            let iterations = match fields.optional(INTEGER)? {
                Some(i) => i.unsigned()?,
                None => 1,
            };
            let params = MacParams {
                expected,
                salt,
                iterations,
            };
            Ok((algorithm.content, params))
        };
        let (algorithm, params) = parse().map_err(at("MAC data"))?;
        let digest = MacDigest::from_oid(algorithm)
            .ok_or_else(|| unsupported("MAC algorithm", algorithm))?;
        for password in Password::candidates(None) {
            self.spend(params.iterations, digest.weight())?;
            if digest.matches(password.bytes(), &params, data) {
                return Ok(password);
            }
        }
        Err(Pkcs12Error::PasswordProtected(
            "its integrity check (MAC) fails with an empty password",
        ))
    }

    /// Decrypts with either empty password; `valid` tells a right plaintext from garbage that
    /// happened to have valid padding.
    fn decrypt(
        &mut self,
        algorithm: &Tlv,
        data: &[u8],
        what: &'static str,
    ) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
        let scheme = Scheme::parse(algorithm)?;
        let (iterations, per_iteration) = scheme.cost()?;
        for password in Password::candidates(self.preferred) {
            self.spend(iterations, per_iteration)?;
            if let Some(plain) = scheme.decrypt(password, data)? {
                if is_one_sequence(&plain) {
                    self.preferred = Some(password);
                    return Ok(plain);
                }
            }
        }
        Err(Pkcs12Error::PasswordProtected(what))
    }

    /// EncryptedData (CMS): the decrypted SafeContents.
    fn encrypted_data(&mut self, content: Option<Tlv>) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
        let Some(content) = content else {
            return Ok(Zeroizing::new(Vec::new()));
        };
        let parse = || -> Result<_, BerError> {
            let mut fields = content.children();
            fields.expect(INTEGER)?;
            let mut info = fields.expect(SEQUENCE)?.children();
            info.expect(OID)?;
            let algorithm = info.expect(SEQUENCE)?;
            // [0] IMPLICIT OCTET STRING, primitive or in pieces.
            let encrypted = match info.next()? {
                Some(e) if e.tag & !0x20 == 0x80 => Some(e.octets()?.into_owned()),
                _ => None,
            };
            Ok((algorithm, encrypted))
        };
        let (algorithm, encrypted) = parse().map_err(at("encrypted data"))?;
        match encrypted {
            None => Ok(Zeroizing::new(Vec::new())),
            Some(data) => self.decrypt(
                &algorithm,
                &data,
                "its certificates cannot be decrypted with an empty password",
            ),
        }
    }

    /// Collects the keys and certificates of one SafeContents.
    fn bags(&mut self, safe_contents: &[u8], depth: usize) -> Result<(), Pkcs12Error> {
        if safe_contents.is_empty() {
            return Ok(());
        }
        if depth > MAX_BAG_DEPTH {
            return Err(Pkcs12Error::TooManyBags);
        }
        let sequence = ber::parse(safe_contents).map_err(at("safe contents"))?;
        let mut bags = sequence.children();
        while let Some(bag) = bags.next().map_err(at("safe contents"))? {
            self.bags += 1;
            if self.bags > MAX_BAGS {
                return Err(Pkcs12Error::TooManyBags);
            }
            let mut fields = bag.children();
            let kind = fields.expect(OID).map_err(at("safe bag"))?;
            let value = fields
                .expect(CONTEXT_0)
                .and_then(|v| v.children().expect_any())
                .map_err(at("safe bag"))?;
            match kind.content {
                oid::KEY_BAG => {
                    let key = pkcs8::normalize(value.raw)?;
                    self.contents.keys.push(key);
                }
                oid::SHROUDED_KEY_BAG => self.shrouded_key(&value)?,
                oid::CERT_BAG => self.certificate(&value)?,
                oid::SAFE_CONTENTS_BAG => self.bags(value.raw, depth + 1)?,
                // CRLs and secret bags are nothing the provider writes.
                _ => {}
            }
        }
        Ok(())
    }

    /// EncryptedPrivateKeyInfo (RFC 5958).
    fn shrouded_key(&mut self, value: &Tlv) -> Result<(), Pkcs12Error> {
        let mut fields = value.children();
        let algorithm = fields.expect(SEQUENCE).map_err(at("shrouded key bag"))?;
        let data = fields
            .expect(OCTET_STRING)
            .and_then(|d| d.octets())
            .map_err(at("shrouded key bag"))?;
        let plain = self.decrypt(
            &algorithm,
            &data,
            "its private key cannot be decrypted with an empty password",
        )?;
        let key = pkcs8::normalize(&plain)?;
        self.contents.keys.push(key);
        Ok(())
    }

    /// CertBag: X.509 certificates are kept; SDSI certificates are skipped.
    fn certificate(&mut self, value: &Tlv) -> Result<(), Pkcs12Error> {
        let mut fields = value.children();
        let kind = fields.expect(OID).map_err(at("certificate bag"))?;
        if kind.content != oid::X509_CERTIFICATE {
            return Ok(());
        }
        let der = fields
            .expect(CONTEXT_0)
            .and_then(|c| c.children().expect(OCTET_STRING))
            .and_then(|c| c.octets())
            .map_err(at("certificate bag"))?;
        self.contents.certs.push(der.into_owned());
        Ok(())
    }
}

/// Whether `plain` is exactly one SEQUENCE (a SafeContents or a PrivateKeyInfo).
fn is_one_sequence(plain: &[u8]) -> bool {
    ber::parse(plain).is_ok_and(|t| t.tag == SEQUENCE && t.raw.len() == plain.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::pfx::{Cipher, Layout, MacDigest as Mac, MacSpec, Password as Pw, Prf};

    /// A P-256 key (PKCS#8 as openssl writes it) and a two-certificate chain.
    fn material() -> (Vec<u8>, Vec<Vec<u8>>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["leaf.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let other = rcgen::CertificateParams::new(vec!["other.test".into()])
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        (
            key.serialize_der(),
            vec![leaf.der().to_vec(), other.der().to_vec()],
        )
    }

    fn build(layout: &Layout, key: &[u8], certs: &[Vec<u8>]) -> Vec<u8> {
        let certs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
        layout.build(key, &certs)
    }

    /// Every cipher for the key and the certificates, every MAC and none, and both encodings of
    /// the empty password; keys come out without the Microsoft attributes.
    #[test]
    fn every_layout_with_either_empty_password() {
        let (key, certs) = material();
        let ciphers = [
            Cipher::None,
            Cipher::Rc2_40,
            Cipher::Rc2_128,
            Cipher::TripleDes,
            Cipher::Aes {
                bits: 128,
                prf: Prf::HmacSha1,
            },
            Cipher::Aes {
                bits: 192,
                prf: Prf::HmacSha256,
            },
            Cipher::Aes {
                bits: 256,
                prf: Prf::HmacSha512,
            },
        ];
        let macs = [
            None,
            Some(Mac::Sha1),
            Some(Mac::Sha224),
            Some(Mac::Sha256),
            Some(Mac::Sha384),
            Some(Mac::Sha512),
        ];
        for password in [Pw::ZeroLength, Pw::EmptyBmp] {
            for (i, mac) in macs.iter().enumerate() {
                for (j, key_cipher) in ciphers.iter().enumerate() {
                    // Each certificate cipher with each key cipher, MACs in rotation.
                    let cert_cipher = ciphers[(j + i) % ciphers.len()];
                    let layout = Layout {
                        password: password.clone(),
                        mac: mac.map(|digest| MacSpec {
                            digest,
                            iterations: 3,
                            salt_len: 20,
                        }),
                        key_cipher: *key_cipher,
                        cert_cipher,
                        iterations: 5,
                        key_first: j % 2 == 0,
                        microsoft_attributes: i % 2 == 0,
                        indefinite_lengths: false,
                    };
                    let contents = decode(&build(&layout, &key, &certs))
                        .unwrap_or_else(|e| panic!("{layout:?}: {e}"));
                    assert_eq!(contents.keys, std::slice::from_ref(&key), "{layout:?}");
                    assert_eq!(contents.certs, certs, "{layout:?}");
                }
            }
        }
    }

    #[test]
    fn producer_presets_and_ber() {
        let (key, certs) = material();
        let ber = Layout {
            indefinite_lengths: true,
            ..Layout::windows()
        };
        for layout in [Layout::key_vault(), Layout::windows(), ber] {
            let contents = decode(&build(&layout, &key, &certs)).unwrap();
            assert_eq!(format!("{contents:?}"), "Contents { keys: 1, certs: 2 }");
            assert_eq!(
                (contents.keys, contents.certs),
                (vec![key.clone()], certs.clone())
            );
        }
    }

    #[test]
    fn a_real_password_is_reported_as_such() {
        let (key, certs) = material();
        let protected = Layout {
            password: Pw::Text("hunter2".into()),
            ..Layout::key_vault()
        };
        let err = decode(&build(&protected, &key, &certs)).unwrap_err();
        assert_eq!(
            err,
            Pkcs12Error::PasswordProtected(
                "its integrity check (MAC) fails with an empty password"
            )
        );
        let no_mac = Layout {
            mac: None,
            key_first: false,
            ..protected.clone()
        };
        assert!(
            matches!(decode(&build(&no_mac, &key, &certs)), Err(Pkcs12Error::PasswordProtected(m)) if m.contains("certificates"))
        );
        let key_only = Layout {
            cert_cipher: Cipher::None,
            ..no_mac
        };
        assert!(
            matches!(decode(&build(&key_only, &key, &certs)), Err(Pkcs12Error::PasswordProtected(m)) if m.contains("private key"))
        );
    }

    /// RFC 7292 appendix B as golang.org/x/crypto/pkcs12 (pbkdf_test.go) and OpenSSL
    /// (`openssl kdf ... PKCS12KDF`, 3.0) compute it, for "sesame", "" in BMP, and zero length.
    #[test]
    fn kdf_vectors() {
        let hex = |s: &str| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
        };
        let sesame: Vec<u8> = "sesame"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .chain([0, 0])
            .collect();
        let key = |pass: &[u8], salt: &str| {
            derive_key::<sha1::Sha1>(pass, &hex(salt), Pkcs12KeyType::EncryptionKey, 2048, 24)
        };
        assert_eq!(
            key(&sesame, "ffffffffffffffff"),
            hex("7cd9fd3e2b3be7691a44e3bef0f9ea0fb9b897d4e325d9d1")
        );
        assert_eq!(
            key(&[0, 0], "f37e05b518324b4b"),
            hex("00f759ff47d14dd03665d5943cb3c4a39a2555c02aed66e1")
        );
        assert_eq!(
            key(&[], "f37e05b518324b4b"),
            hex("3f436895c7bf6e6eeb2d931e8dfab9732788a40d7717497f")
        );
    }

    /// The same derivations, live against the installed openssl, for every ID and a SHA-2 MAC key.
    #[test]
    fn kdf_matches_openssl() {
        let run = |pass: &str, id: u8, digest: &str, len: usize| -> Option<Vec<u8>> {
            let out = std::process::Command::new("openssl")
                .args([
                    "kdf",
                    "-keylen",
                    &len.to_string(),
                    "-kdfopt",
                    &format!("digest:{digest}"),
                    "-kdfopt",
                    &format!("hexpass:{pass}"),
                    "-kdfopt",
                    "hexsalt:0102030405060708",
                    "-kdfopt",
                    "iter:1000",
                    "-kdfopt",
                    &format!("id:{id}"),
                    "PKCS12KDF",
                ])
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout).trim().replace(':', "");
            Some(
                (0..text.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
                    .collect(),
            )
        };
        if run("", 1, "SHA1", 8).is_none() {
            eprintln!("openssl not found: skipping independent check");
            return;
        }
        let salt = [1, 2, 3, 4, 5, 6, 7, 8];
        for (pass, hexpass) in [(&[][..], ""), (&[0, 0][..], "0000")] {
            for (id, kind) in [
                (1, Pkcs12KeyType::EncryptionKey),
                (2, Pkcs12KeyType::Iv),
                (3, Pkcs12KeyType::Mac),
            ] {
                let ours = derive_key::<sha1::Sha1>(pass, &salt, kind, 1000, 24);
                assert_eq!(
                    Some(ours),
                    run(hexpass, id, "SHA1", 24),
                    "id {id} pass {hexpass:?}"
                );
            }
            let ours = derive_key::<sha2_v011::Sha512>(pass, &salt, Pkcs12KeyType::Mac, 1000, 64);
            assert_eq!(Some(ours), run(hexpass, 3, "SHA512", 64));
        }
    }

    #[test]
    fn hostile_files_are_bounded_errors() {
        let (key, certs) = material();
        let file = build(&Layout::key_vault(), &key, &certs);
        // MAC: 2 × 2000 (the BMP password is tried first); key and certificates: 3 × 2000 each.
        assert!(decode_within(&file, 16_000).is_ok());
        assert_eq!(decode_within(&file, 15_999).unwrap_err(), Pkcs12Error::Work);
        let mut decoder = Decoder {
            work_left: MAX_WORK,
            preferred: None,
            bags: 0,
            contents: Contents::default(),
        };
        assert_eq!(
            decoder.spend(MAX_ITERATIONS + 1, 1),
            Err(Pkcs12Error::Iterations(MAX_ITERATIONS + 1))
        );
        assert_eq!(decoder.spend(MAX_ITERATIONS, 6), Ok(()));
        assert_eq!(decoder.spend(MAX_ITERATIONS, 11), Err(Pkcs12Error::Work));
        assert!(matches!(
            decode(&[0x30; MAX_PFX_BYTES + 1]),
            Err(Pkcs12Error::TooLarge(_))
        ));
        let good = build(&Layout::key_vault(), &key, &certs);
        for cut in [1, 10, good.len() / 2, good.len() - 1] {
            assert!(decode(&good[..cut]).is_err(), "truncated at {cut}");
        }
        // Flipping any byte never panics (and a flipped MAC or ciphertext is an error).
        for i in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[i] ^= 0x5a;
            let _ = decode(&bad);
        }
    }

    /// A MAC-less, unencrypted PFX around one SafeContents, built by hand.
    fn plain_pfx(safe_contents: &[u8]) -> Vec<u8> {
        use crate::render::pem::{sequence, tlv};
        let data = |content: &[u8]| {
            sequence(&[
                tlv(OID, oid::DATA),
                tlv(CONTEXT_0, &tlv(OCTET_STRING, content)),
            ])
        };
        let auth_safe = sequence(&[data(safe_contents)]);
        sequence(&[vec![INTEGER, 1, 3], data(&auth_safe)])
    }

    fn cert_bag(der: &[u8]) -> Vec<u8> {
        use crate::render::pem::{sequence, tlv};
        let cert = sequence(&[
            tlv(OID, oid::X509_CERTIFICATE),
            tlv(CONTEXT_0, &tlv(OCTET_STRING, der)),
        ]);
        sequence(&[tlv(OID, oid::CERT_BAG), tlv(CONTEXT_0, &cert)])
    }

    #[test]
    fn nested_safe_contents_and_bag_limits() {
        use crate::render::pem::{sequence, tlv};
        let nest = |inner: Vec<u8>| {
            sequence(&[sequence(&[
                tlv(OID, oid::SAFE_CONTENTS_BAG),
                tlv(CONTEXT_0, &inner),
            ])])
        };
        let mut contents = sequence(&[cert_bag(b"not parsed here")]);
        for _ in 0..MAX_BAG_DEPTH {
            contents = nest(contents);
        }
        let found = decode(&plain_pfx(&contents)).unwrap();
        assert_eq!(found.certs, [b"not parsed here".to_vec()]);
        assert!(found.keys.is_empty());
        assert_eq!(
            decode(&plain_pfx(&nest(contents))).unwrap_err(),
            Pkcs12Error::TooManyBags
        );
        let many = sequence(&vec![cert_bag(b"c"); MAX_BAGS + 1]);
        assert_eq!(
            decode(&plain_pfx(&many)).unwrap_err(),
            Pkcs12Error::TooManyBags
        );
    }

    #[test]
    fn unsupported_algorithms_are_named() {
        use crate::render::pem::{sequence, tlv};
        // pbeWithSHAAnd128BitRC4, which OpenSSL's legacy provider can still write.
        let rc4 = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x01];
        let algorithm = sequence(&[
            tlv(OID, &rc4),
            sequence(&[tlv(OCTET_STRING, &[1; 8]), vec![INTEGER, 1, 1]]),
        ]);
        let shrouded = sequence(&[algorithm, tlv(OCTET_STRING, &[0; 16])]);
        let bag = sequence(&[tlv(OID, oid::SHROUDED_KEY_BAG), tlv(CONTEXT_0, &shrouded)]);
        let err = decode(&plain_pfx(&sequence(&[bag]))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported encryption algorithm: pbeWithSHAAnd128BitRC4 (1.2.840.113549.1.12.1.1)"
        );
    }
}
