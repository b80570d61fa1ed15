//! A test PKI generated at run time: root → intermediate → leaf chains in EC (P-256) or RSA,
//! optionally a leaf without Subject Key Identifier, self-signed leaves without Authority Key
//! Identifier, chains with negative serial numbers (made by openssl, which rcgen cannot), and
//! PKCS#12 files made by a Rust library (p12-keystore, AES-256/SHA-256), by the `openssl`
//! command line in each of its encodings ([`OpensslPfx`]), and by [`crate::pfx`] as Key Vault
//! and Windows make them.

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

    /// A PFX in a producer's layout ([`crate::pfx::Layout`]): key and leaf, intermediate, root.
    pub fn pfx_layout(&self, layout: &crate::pfx::Layout) -> Vec<u8> {
        layout.build(
            &self.leaf_key,
            &[&self.leaf.der, &self.intermediate.der, &self.root.der],
        )
    }

    /// A PFX made by `openssl pkcs12 -export` (leaf, then intermediate and root) in one of its
    /// encodings; `None` when openssl is not installed.
    pub fn pfx_openssl(&self, variant: &OpensslPfx) -> Option<Vec<u8>> {
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
        cmd.args(variant.args());
        let status = cmd.output().ok()?;
        assert!(
            status.status.success(),
            "openssl pkcs12: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        std::fs::read(&out).ok()
    }
}

/// The encodings `openssl pkcs12 -export` (OpenSSL 3) writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpensslPfx {
    /// The default: PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC) for certificates and key,
    /// HMAC-SHA-256 MAC, 2048 iterations.
    Modern,
    /// `-legacy`, OpenSSL 1.1's default: certificates pbeWithSHAAnd40BitRC2-CBC, key
    /// pbeWithSHAAnd3-KeyTripleDES-CBC, HMAC-SHA-1.
    Legacy,
    /// 3DES for both and a SHA-1 MAC (what OpenSSL builds without RC2 write).
    TripleDes,
    /// Certificates pbeWithSHAAnd128BitRC2-CBC.
    Rc2_128,
    /// PBES2 with AES-128-CBC and a SHA-512 MAC.
    Aes128Sha512Mac,
    /// No MAC at all (`-nomac`).
    NoMac,
    /// Nothing encrypted: certificates in a data safe, the key in a plain keyBag.
    Unencrypted,
    /// Protected by a real password.
    Password(String),
}

impl OpensslPfx {
    fn args(&self) -> Vec<String> {
        let args: &[&str] = match self {
            OpensslPfx::Modern => &[],
            OpensslPfx::Legacy => &["-legacy"],
            OpensslPfx::TripleDes => &[
                "-certpbe",
                "PBE-SHA1-3DES",
                "-keypbe",
                "PBE-SHA1-3DES",
                "-macalg",
                "sha1",
            ],
            OpensslPfx::Rc2_128 => &["-legacy", "-certpbe", "PBE-SHA1-RC2-128"],
            OpensslPfx::Aes128Sha512Mac => &[
                "-certpbe",
                "AES-128-CBC",
                "-keypbe",
                "AES-128-CBC",
                "-macalg",
                "sha512",
            ],
            OpensslPfx::NoMac => &["-nomac"],
            OpensslPfx::Unencrypted => &["-certpbe", "NONE", "-keypbe", "NONE"],
            OpensslPfx::Password(p) => return vec!["-passout".into(), format!("pass:{p}")],
        };
        args.iter().map(|a| a.to_string()).collect()
    }
}

/// A self-signed certificate without Authority Key Identifier, as Key Vault's "Self" issuer
/// makes them, and its PKCS#8 key.
pub fn self_signed_leaf(algorithm: Algorithm, name: &str) -> (Cert, Vec<u8>) {
    let key = key(algorithm, name);
    let mut params = CertificateParams::new(vec![name.to_string()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    // A Subject Key Identifier (rcgen writes one for ExplicitNoCa), no Authority Key Identifier.
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = false;
    let cert = params.self_signed(&key).expect("self-signed");
    let cert = Cert {
        name: name.into(),
        der: cert.der().to_vec(),
    };
    (cert, key.serialize_der())
}

/// Runs openssl in `dir`; panics with its error output when it fails.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Chain {
    /// root → intermediate → leaf (P-256) whose serial numbers are negative (-1, -0x5a2f and
    /// -0x7f11...: one byte, two bytes, and 20 bytes), as some CAs issue them. None
    /// without openssl.
    pub fn negative_serials() -> Option<Chain> {
        if !have_openssl() {
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let d = dir.path();
        let run = |command: String| openssl(d, &command.split(' ').collect::<Vec<_>>());
        let ca = "basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,cRLSign\n";
        let ids = "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";
        std::fs::write(d.join("ca.ext"), format!("{ca}{ids}")).ok()?;
        let leaf = "basicConstraints=CA:FALSE\nsubjectAltName=DNS:app.example.test\n";
        std::fs::write(d.join("leaf.ext"), format!("{leaf}{ids}")).ok()?;
        for k in ["root", "inter", "leaf"] {
            run(format!(
                "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {k}.key"
            ));
        }
        run("req -x509 -new -key root.key -subj /CN=Negative-Root -set_serial -1 -days 30 -extensions v3_ca -out root.pem".into());
        let sign = |name: &str, issuer: &str, serial: &str, ext: &str| {
            run(format!(
                "req -new -key {name}.key -subj /CN={name} -out {name}.csr"
            ));
            run(format!("x509 -req -in {name}.csr -CA {issuer}.pem -CAkey {issuer}.key -set_serial {serial} -days 30 -extfile {ext} -out {name}.pem"));
        };
        sign("inter", "root", "-0x5a2f", "ca.ext");
        sign(
            "leaf",
            "inter",
            "-0x7f112233445566778899aabbccddeeff00112233",
            "leaf.ext",
        );
        let cert = |name: &str| {
            let pem = std::fs::read_to_string(d.join(format!("{name}.pem"))).expect("cert");
            Cert {
                name: name.into(),
                der: der_of_pem(&pem),
            }
        };
        let key_pem = std::fs::read_to_string(d.join("leaf.key")).ok()?;
        Some(Chain {
            root: cert("root"),
            intermediate: cert("inter"),
            leaf: cert("leaf"),
            leaf_key: der_of_pem(&key_pem),
        })
    }
}

/// The DER of the first PEM block.
fn der_of_pem(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body")
}

/// Whether the `openssl` command is available (tests that need it say so when skipping).
pub fn have_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `openssl <args> <file>` with `input` in the file given last; its standard output.
/// Panics when it fails.
pub fn openssl_on_file(args: &[&str], input: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("in");
    std::fs::write(&path, input).expect("write openssl input");
    let out = Command::new("openssl")
        .args(args)
        .arg(&path)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("openssl prints text")
}

/// Every order of `items`: the chain orders a producer might store certificates in.
pub fn permutations(items: &[Vec<u8>]) -> Vec<Vec<Vec<u8>>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    (0..items.len())
        .flat_map(|i| {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            permutations(&rest).into_iter().map(move |mut p| {
                p.insert(0, first.clone());
                p
            })
        })
        .collect()
}

/// `openssl <args>` with `input` on standard input; its standard output. Panics when it fails.
fn openssl_filter(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to openssl");
    let out = child.wait_with_output().expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("PEM")
}

/// The PEM of a certificate service principal's `clientcertificate`, in the shapes people store.
impl Chain {
    /// Private key (PKCS#8) and leaf, then intermediate and root when `with_chain`.
    pub fn client_pem(&self, with_chain: bool) -> String {
        let mut pem = self.key_pem() + &self.leaf.pem();
        if with_chain {
            pem += &self.intermediate.pem();
            pem += &self.root.pem();
        }
        pem
    }

    /// The key as PKCS#1 (`RSA PRIVATE KEY`), as `openssl rsa -traditional` writes it.
    pub fn key_pem_pkcs1(&self) -> String {
        openssl_filter(&["rsa", "-traditional"], &self.key_pem())
    }

    /// The key encrypted with a password (`ENCRYPTED PRIVATE KEY`).
    pub fn key_pem_encrypted(&self) -> String {
        openssl_filter(
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-passout",
                "pass:hunter2",
            ],
            &self.key_pem(),
        )
    }
}

/// A self-signed RSA certificate for `name` valid between the two dates (year, month, day), and
/// its PKCS#8 key: expired and not-yet-valid client certificates.
pub fn rsa_leaf_valid(
    name: &str,
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
) -> (Cert, Vec<u8>) {
    let key = key(Algorithm::Rsa2048, name);
    let mut params = CertificateParams::new(vec![name.to_string()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let cert = params.self_signed(&key).expect("self-signed");
    let cert = Cert {
        name: name.into(),
        der: cert.der().to_vec(),
    };
    (cert, key.serialize_der())
}
