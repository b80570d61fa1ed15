//! Certificate-backed secrets whose PFX comes from every real producer, served by the fake Key
//! Vault as `application/x-pkcs12` with a `kid`, mounted through the socket, and compared byte
//! for byte with what `openssl pkcs12` derives from the same file: Key Vault's and Windows'
//! zero-length password layouts (built by the test kit), each `openssl pkcs12 -export`
//! encoding, p12-keystore's, and the Go provider's own fixtures with its expected output.

mod common;

use base64::Engine;
use common::*;
use testkit::driver::pem_blocks;
use testkit::pfx::{self, Cipher, Layout, Password, Prf, Reference};
use testkit::pki::{self, Algorithm, Chain, OpensslPfx};

const KID: &str = "https://kv-test.vault.akv.test/keys/web/0123456789abcdef0123456789abcdef";
const GO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/go-provider/");

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn go_fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{GO}{name}")).unwrap()
}

/// The standard seed with these certificate-backed secrets (name, base64 PFX).
fn seed(pfx_secrets: &[(String, String)]) -> String {
    let mut secrets = String::new();
    for (name, value) in pfx_secrets {
        secrets.push_str(&format!("      - name: {name}\n        versions:\n          - value: \"{value}\"\n            contentType: application/x-pkcs12\n            kid: {KID}\n"));
    }
    let base = standard_seed();
    let marker = "    secrets:\n";
    let at = base.find(marker).unwrap() + marker.len();
    format!("{}{secrets}{}", &base[..at], &base[at..])
}

type Files = std::collections::BTreeMap<String, (i32, Vec<u8>)>;

async fn mount(env: &Env, items: &[String]) -> Result<Files, tonic::Status> {
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    let resp = env.mount(env.sp(&objects(&items)).build()).await?;
    Ok(files(&resp))
}

/// One producer's file, and how an independent reader sees it.
struct Variant {
    name: String,
    pfx: Vec<u8>,
    reference: Reference,
}

/// The layouts openssl cannot write: (name, file, whether only OpenSSL's library can read it).
fn built(chain: &Chain) -> Vec<(String, Vec<u8>, bool)> {
    vec![
        (
            "keyvault".into(),
            chain.pfx_layout(&Layout::key_vault()),
            false,
        ),
        (
            "windows".into(),
            chain.pfx_layout(&Layout::windows()),
            false,
        ),
        (
            "windows-aes".into(),
            chain.pfx_layout(&Layout {
                key_cipher: Cipher::Aes {
                    bits: 256,
                    prf: Prf::HmacSha256,
                },
                cert_cipher: Cipher::Aes {
                    bits: 256,
                    prf: Prf::HmacSha256,
                },
                ..Layout::windows()
            }),
            false,
        ),
        (
            "zero-rc2-128-plain-keybag".into(),
            chain.pfx_layout(&Layout {
                key_cipher: Cipher::None,
                cert_cipher: Cipher::Rc2_128,
                ..Layout::key_vault()
            }),
            false,
        ),
        (
            "zero-nomac".into(),
            chain.pfx_layout(&Layout {
                mac: None,
                ..Layout::key_vault()
            }),
            true,
        ),
        (
            "ber".into(),
            chain.pfx_layout(&Layout {
                indefinite_lengths: true,
                ..Layout::windows()
            }),
            false,
        ),
        (
            "p12keystore".into(),
            chain.pfx(&[&chain.leaf, &chain.intermediate, &chain.root]),
            false,
        ),
    ]
}

/// Every producer's PFX of `chain`, each read back by openssl (or, for the MAC-less
/// zero-length file the openssl command cannot open, by OpenSSL's library).
fn variants(chain: &Chain, tag: &str) -> Vec<Variant> {
    let mut made = built(chain);
    for (name, variant) in [
        ("openssl-modern", OpensslPfx::Modern),
        ("openssl-legacy", OpensslPfx::Legacy),
        ("openssl-3des", OpensslPfx::TripleDes),
        ("openssl-rc2-128", OpensslPfx::Rc2_128),
        ("openssl-aes128-sha512mac", OpensslPfx::Aes128Sha512Mac),
        ("openssl-nomac", OpensslPfx::NoMac),
        ("openssl-unencrypted", OpensslPfx::Unencrypted),
    ] {
        made.push((
            name.into(),
            chain.pfx_openssl(&variant).expect("openssl"),
            false,
        ));
    }
    made.into_iter()
        .map(|(name, pfx, library)| {
            let reference = match library {
                false => pfx::openssl_reference(&pfx),
                true => pfx::python_reference(&pfx),
            }
            .unwrap_or_else(|e| panic!("{name}: the reference reader refused it: {e}"));
            Variant {
                name: format!("{tag}-{name}"),
                pfx,
                reference,
            }
        })
        .collect()
}

/// The reference reader's certificate blocks in chain order (leaf, intermediate, root).
fn chain_order(reference: &Reference, chain: &Chain) -> Vec<String> {
    [&chain.leaf, &chain.intermediate, &chain.root]
        .iter()
        .map(|c| {
            reference
                .certs
                .iter()
                .find(|pem| pem_blocks(pem.as_bytes())[0].1 == c.der)
                .unwrap_or_else(|| panic!("{} missing from the reference", c.name))
                .clone()
        })
        .collect()
}

/// The public key of a PEM key or certificate, as openssl prints it.
fn openssl_public_key(pem: &[u8], certificate: bool) -> String {
    let args: &[&str] = match certificate {
        true => &["x509", "-pubkey", "-noout", "-in"],
        false => &["pkey", "-pubout", "-in"],
    };
    pki::openssl_on_file(args, pem)
}

#[tokio::test]
async fn every_producer_mounts_as_openssl_reads_it() {
    if !pki::have_openssl() {
        eprintln!("openssl not installed: skipping the producer matrix");
        return;
    }
    let chains = [
        ("rsa", Chain::new(Algorithm::Rsa2048, true)),
        ("ec", Chain::new(Algorithm::EcP256, true)),
    ];
    let mut all = Vec::new();
    for (tag, chain) in &chains {
        for v in variants(chain, tag) {
            all.push((v, chain));
        }
    }
    let secrets: Vec<(String, String)> = all
        .iter()
        .map(|(v, _)| (v.name.clone(), b64(&v.pfx)))
        .collect();
    let pem_objects: Vec<String> = all
        .iter()
        .map(|(v, _)| format!("objectName: {}\nobjectType: secret", v.name))
        .collect();

    let env = Env::start_with(&seed(&secrets), &[]).await;
    let f = mount(&env, &pem_objects).await.expect("mount");
    for (v, chain) in &all {
        let certs = chain_order(&v.reference, chain);
        let want = v.reference.keys.concat() + &certs.concat();
        let got = &f[&v.name].1;
        assert_eq!(
            String::from_utf8_lossy(got),
            want,
            "{}: PEM as openssl derives it",
            v.name
        );
        assert_eq!(v.reference.keys.len(), 1, "{}", v.name);
        assert_eq!(
            openssl_public_key(v.reference.keys[0].as_bytes(), false),
            openssl_public_key(certs[0].as_bytes(), true),
            "{}: the key matches the leaf",
            v.name
        );
    }
    drop(env);
    separate_files(&all, &secrets, &pem_objects).await;
}

/// With `--write-cert-and-key-in-separate-files`: `.crt` and `.key` as openssl reads them,
/// beside the PEM and beside the stored PFX.
async fn separate_files(
    all: &[(Variant, &Chain)],
    secrets: &[(String, String)],
    pem_objects: &[String],
) {
    let pfx_objects = all.iter().map(|(v, _)| {
        format!(
            "objectName: {0}\nobjectType: secret\nobjectFormat: pfx\nobjectAlias: {0}.pfx",
            v.name
        )
    });
    let both: Vec<String> = pem_objects.iter().cloned().chain(pfx_objects).collect();
    let env = Env::start_with(&seed(secrets), &["--write-cert-and-key-in-separate-files"]).await;
    let f = mount(&env, &both).await.expect("mount");
    for (v, chain) in all {
        let certs = chain_order(&v.reference, chain).concat();
        let keys = v.reference.keys.concat();
        for file in [v.name.clone(), format!("{}.pfx", v.name)] {
            assert_eq!(
                String::from_utf8_lossy(&f[&format!("{file}.crt")].1),
                certs,
                "{file}.crt"
            );
            assert_eq!(
                String::from_utf8_lossy(&f[&format!("{file}.key")].1),
                keys,
                "{file}.key"
            );
        }
        assert_eq!(
            f[&format!("{}.pfx", v.name)].1,
            b64(&v.pfx).as_bytes(),
            "objectFormat pfx: as stored"
        );
    }
}

/// TestDecodePKCS12 and TestGetSecret of the Go provider v1.8.2, through the socket: the same
/// files, byte for byte (tests/fixtures/go-provider/README.md).
#[tokio::test]
async fn go_provider_pfx_fixtures() {
    let one = go_fixture("decode-pkcs12-one-certificate-and-key.pfx.b64");
    let many = go_fixture("decode-pkcs12-multiple-certificates-and-one-key.pfx.b64");
    let secrets = [
        ("one".to_string(), one.trim().to_string()),
        ("many".to_string(), many.trim().to_string()),
    ];
    let env = Env::start_with(&seed(&secrets), &["--write-cert-and-key-in-separate-files"]).await;
    let f = mount(
        &env,
        &[
            "objectName: one\nobjectType: secret".to_string(),
            "objectName: many\nobjectType: secret".to_string(),
            "objectName: one\nobjectType: secret\nobjectFormat: pfx\nobjectAlias: one.pfx"
                .to_string(),
            "objectName: one\nobjectType: secret\nobjectFormat: pem\nobjectAlias: one.pem"
                .to_string(),
        ],
    )
    .await
    .expect("mount");
    let expected_one = go_fixture("decode-pkcs12-one-certificate-and-key.expected.pem");
    assert_eq!(String::from_utf8_lossy(&f["one"].1), expected_one);
    assert_eq!(String::from_utf8_lossy(&f["one.pem"].1), expected_one);
    assert_eq!(
        String::from_utf8_lossy(&f["many"].1),
        go_fixture("decode-pkcs12-multiple-certificates-and-one-key.expected.pem")
    );
    // "write cert and key in separate files".
    assert_eq!(
        String::from_utf8_lossy(&f["one.crt"].1),
        go_fixture("get-secret-test-cert.pem")
    );
    assert_eq!(
        String::from_utf8_lossy(&f["one.key"].1),
        go_fixture("get-secret-test-private-key.pem")
    );
    // "objectFormat=pfx": the stored value.
    assert_eq!(String::from_utf8_lossy(&f["one.pfx"].1), one.trim());
}

/// TestFetchCertChain and TestFetchCertChainWithLeafMissingSKI of the Go provider: the
/// certificates in a PFX in every order come out as Go's expected chain.
#[tokio::test]
async fn go_provider_chain_fixtures_in_every_order() {
    let certs = |dir: &str, names: &[&str]| -> Vec<Vec<u8>> {
        names
            .iter()
            .flat_map(|n| pem_blocks(go_fixture(&format!("{dir}/{n}.pem")).as_bytes()))
            .map(|(_, der)| der)
            .collect()
    };
    let cases = [
        (
            "fetch-cert-chain",
            certs("fetch-cert-chain", &["root", "intermediate", "server"]),
        ),
        (
            "fetch-cert-chain-leaf-missing-ski",
            certs(
                "fetch-cert-chain-leaf-missing-ski",
                &["root", "intermediate1", "intermediate2", "server"],
            ),
        ),
        (
            "fetch-cert-chain-warning",
            certs("fetch-cert-chain", &["server", "root"]),
        ),
    ];
    let mut secrets = Vec::new();
    let mut expected = Vec::new();
    for (dir, ders) in &cases {
        for (n, order) in pki::permutations(ders).into_iter().enumerate() {
            let refs: Vec<&[u8]> = order.iter().map(Vec::as_slice).collect();
            let pfx = Layout::key_vault().build(&[], &refs);
            let name = format!("{dir}-{n}");
            let want = match *dir {
                // Incomplete: the order of the PFX.
                "fetch-cert-chain-warning" => {
                    order.iter().map(|d| pki::pem("CERTIFICATE", d)).collect()
                }
                _ => go_fixture(&format!("{dir}/expected.pem")),
            };
            secrets.push((name.clone(), b64(&pfx)));
            expected.push((name, want));
        }
    }
    let env = Env::start_with(&seed(&secrets), &[]).await;
    let items: Vec<String> = expected
        .iter()
        .map(|(name, _)| format!("objectName: {name}\nobjectType: secret"))
        .collect();
    let f = mount(&env, &items).await.expect("mount");
    for (name, want) in &expected {
        assert_eq!(&String::from_utf8_lossy(&f[name].1), want, "{name}");
    }
    assert!(env
        .provider
        .logs()
        .contains("certificate chain is not complete"));
}

/// A PFX that really has a password: the mount names the object and says what to do; the
/// raw file can still be mounted with objectFormat: pfx.
#[tokio::test]
async fn password_protected_pfx_is_refused_clearly() {
    let chain = Chain::new(Algorithm::EcP256, true);
    let mut secrets = vec![(
        "kv-style".to_string(),
        b64(&chain.pfx_layout(&Layout {
            password: Password::Text("hunter2".into()),
            ..Layout::key_vault()
        })),
    )];
    if let Some(pfx) = chain.pfx_openssl(&OpensslPfx::Password("hunter2".into())) {
        assert!(
            pfx::openssl_reference(&pfx).is_err(),
            "openssl agrees it needs a password"
        );
        secrets.push(("openssl-style".to_string(), b64(&pfx)));
    }
    let env = Env::start_with(&seed(&secrets), &[]).await;
    for (name, value) in &secrets {
        let err = mount(&env, &[format!("objectName: {name}\nobjectType: secret")])
            .await
            .unwrap_err();
        let message = err.message();
        assert!(
            message.contains(&format!("objectName:{name}, objectVersion:: password-protected PFX files are not supported: its integrity check (MAC) fails with an empty password. Mount the file unchanged with objectFormat: pfx")),
            "{message}"
        );
        let f = mount(
            &env,
            &[format!(
                "objectName: {name}\nobjectType: secret\nobjectFormat: pfx"
            )],
        )
        .await
        .expect("the raw PFX still mounts");
        assert_eq!(f[name.as_str()].1, value.as_bytes());
    }
}
