//! A test PKI generated at run time: root → intermediate → leaf chains in EC (P-256) or RSA,
//! optionally a leaf without Subject Key Identifier, and PKCS#12 files made by a Rust library
//! (p12-keystore, modern AES-256/SHA-256) and, when installed, by the `openssl` command line
//! (its modern default and the legacy 3DES/SHA-1 encoding), the two producers users meet.

use std::process::Command;

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    EcP256,
    Rsa2048,
    /// Ed25519 keys derived from the certificate's name: signatures are deterministic too, so the
    /// whole chain (and everything rendered from it) is the same on every run.
    Ed25519Fixed,
}

/// One certificate.
#[derive(Debug, Clone)]
pub struct Cert {
    pub name: String,
    pub der: Vec<u8>,
}

impl Cert {
    pub fn pem(&self) -> String {
        pem("CERTIFICATE", &self.der)
    }

    pub fn base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.der)
    }
}

/// root → intermediate → leaf, and the leaf's private key (PKCS#8 DER).
pub struct Chain {
    pub root: Cert,
    pub intermediate: Cert,
    pub leaf: Cert,
    pub leaf_key: Vec<u8>,
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("ascii"));
        out.push('\n');
    }
    out + &format!("-----END {label}-----\n")
}

fn key(algorithm: Algorithm, name: &str) -> KeyPair {
    match algorithm {
        Algorithm::Ed25519Fixed => {
            // PKCS#8 v1 wrapping of a 32-byte seed (RFC 8410), the seed spelled from the name.
            let mut der = vec![
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20,
            ];
            der.extend(name.bytes().cycle().take(32));
            KeyPair::from_pkcs8_der_and_sign_algo(&der.into(), &rcgen::PKCS_ED25519)
                .expect("Ed25519 key")
        }
        Algorithm::EcP256 => KeyPair::generate().expect("EC key"),
        Algorithm::Rsa2048 => {
            // ring signs with RSA but cannot generate RSA keys: openssl does.
            let out = Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ])
                .output()
                .expect("openssl is needed for RSA test keys");
            KeyPair::from_pem(&String::from_utf8_lossy(&out.stdout)).expect("RSA key")
        }
    }
}

impl Chain {
    /// A fresh chain; `leaf_ski` false makes a leaf without Subject Key Identifier.
    pub fn new(algorithm: Algorithm, leaf_ski: bool) -> Chain {
        let ca = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
            p.distinguished_name.push(DnType::CommonName, cn);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            p.use_authority_key_identifier_extension = true;
            p
        };
        let root_key = key(algorithm, "root");
        let root_params = ca("Test Root CA");
        let root = root_params.self_signed(&root_key).expect("root");
        let root_issuer = Issuer::new(root_params, root_key);

        let inter_key = key(algorithm, "intermediate");
        let inter_params = ca("Test Intermediate CA");
        let inter = inter_params
            .signed_by(&inter_key, &root_issuer)
            .expect("intermediate");
        let inter_issuer = Issuer::new(inter_params, inter_key);

        let leaf_key = key(algorithm, "leaf");
        let mut leaf_params =
            CertificateParams::new(vec!["app.example.test".to_string()]).expect("params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "app.example.test");
        leaf_params.is_ca = if leaf_ski {
            IsCa::ExplicitNoCa
        } else {
            IsCa::NoCa
        };
        leaf_params.use_authority_key_identifier_extension = true;
        let leaf = leaf_params
            .signed_by(&leaf_key, &inter_issuer)
            .expect("leaf");
        Chain {
            root: Cert {
                name: "root".into(),
                der: root.der().to_vec(),
            },
            intermediate: Cert {
                name: "intermediate".into(),
                der: inter.der().to_vec(),
            },
            leaf: Cert {
                name: "leaf".into(),
                der: leaf.der().to_vec(),
            },
            leaf_key: leaf_key.serialize_der(),
        }
    }

    pub fn key_pem(&self) -> String {
        pem("PRIVATE KEY", &self.leaf_key)
    }

    /// A PFX (empty password) with the key and `certs` in that order, by p12-keystore.
    pub fn pfx(&self, certs: &[&Cert]) -> Vec<u8> {
        let certs: Vec<p12_keystore::Certificate> = certs
            .iter()
            .map(|c| p12_keystore::Certificate::from_der(&c.der).expect("cert"))
            .collect();
        let key = p12_keystore::PrivateKey::from_der(&self.leaf_key).expect("key");
        let chain = p12_keystore::PrivateKeyChain::new(b"key-1".to_vec(), key, certs);
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry("app", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        store.writer("").write().expect("pfx")
    }

    /// A PFX made by `openssl pkcs12 -export`, modern (AES-256, SHA-256 MAC) or legacy (3DES,
    /// SHA-1 MAC); `None` when openssl is not installed.
    pub fn pfx_openssl(&self, legacy: bool) -> Option<Vec<u8>> {
        let dir = tempfile::tempdir().ok()?;
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path.display().to_string()
        };
        let key = write("key.pem", self.key_pem());
        let leaf = write("leaf.pem", self.leaf.pem());
        let chain = write("chain.pem", self.intermediate.pem() + &self.root.pem());
        let out = dir.path().join("out.pfx").display().to_string();
        let mut cmd = Command::new("openssl");
        cmd.args([
            "pkcs12",
            "-export",
            "-inkey",
            &key,
            "-in",
            &leaf,
            "-certfile",
            &chain,
            "-passout",
            "pass:",
            "-out",
            &out,
        ]);
        if legacy {
            cmd.args([
                "-certpbe",
                "PBE-SHA1-3DES",
                "-keypbe",
                "PBE-SHA1-3DES",
                "-macalg",
                "sha1",
            ]);
        }
        let status = cmd.output().ok()?;
        assert!(
            status.status.success(),
            "openssl pkcs12: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        std::fs::read(&out).ok()
    }
}

/// Whether the `openssl` command is available (tests that need it say so when skipping).
pub fn have_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}
