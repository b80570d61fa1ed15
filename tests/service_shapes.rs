//! Shapes the real Key Vault service returns beyond the PFX encodings, through the socket:
//! self-signed certificates without Authority Key Identifier (Key Vault's "Self" issuer),
//! certificates with negative serial numbers, secp256k1 (`P-256K`) keys, RSA JWKs whose `n`
//! has a leading zero byte, and version listings with several versions created in the same
//! second (Key Vault's `created` has one-second resolution).

mod common;

use base64::Engine;
use common::*;
use testkit::driver::pem_blocks;
use testkit::pfx::{self, Layout};
use testkit::pki::{self, Algorithm, Cert, Chain};

type Files = std::collections::BTreeMap<String, (i32, Vec<u8>)>;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The standard seed with extra secrets, certificates and keys (YAML list items).
fn seed(secrets: &str, certificates: &str, keys: &str) -> String {
    let base = standard_seed();
    let marker = "    secrets:\n";
    let at = base.find(marker).unwrap() + marker.len();
    format!(
        "{}{secrets}{}    certificates:\n{certificates}    keys:\n{keys}",
        &base[..at],
        &base[at..]
    )
}

async fn mount(env: &Env, items: &[&str]) -> Result<Files, tonic::Status> {
    let resp = env.mount(env.sp(&objects(items)).build()).await?;
    Ok(files(&resp))
}

/// A certificate Key Vault holds with its key: `cer` and the PFX it serves as the secret.
fn certificate_yaml(name: &str, leaf: &Cert, pfx: &[u8]) -> String {
    format!(
        "      - name: {name}\n        versions:\n          - cer: {}\n            pfx: {}\n",
        leaf.base64(),
        b64(pfx)
    )
}

/// cert, secret (key and chain) and key views of certificate `name`, checked against openssl:
/// the certificate as `openssl x509` prints it, the secret as `openssl pkcs12` derives it
/// (certificates leaf first), the key as the certificate's public key.
fn check_views(f: &Files, name: &str, pfx: &[u8], chain: &[&Cert]) {
    let leaf = chain[0];
    assert_eq!(
        String::from_utf8_lossy(&f[&format!("{name}.crt")].1),
        pki::openssl_on_file(&["x509", "-inform", "DER", "-in"], &leaf.der),
        "{name}: cert"
    );
    let reference = pfx::openssl_reference(pfx).unwrap();
    let certs: Vec<String> = chain
        .iter()
        .map(|c| {
            reference
                .certs
                .iter()
                .find(|p| pem_blocks(p.as_bytes())[0].1 == c.der)
                .unwrap()
                .clone()
        })
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&f[&format!("{name}.pem")].1),
        reference.keys.concat() + &certs.concat(),
        "{name}: secret"
    );
    assert_eq!(
        String::from_utf8_lossy(&f[&format!("{name}.pub")].1),
        pki::openssl_on_file(
            &["x509", "-pubkey", "-noout", "-inform", "DER", "-in"],
            &leaf.der
        ),
        "{name}: key"
    );
}

fn views(name: &str) -> [String; 3] {
    [
        format!("objectName: {name}\nobjectType: cert\nobjectAlias: {name}.crt"),
        format!("objectName: {name}\nobjectType: secret\nobjectAlias: {name}.pem"),
        format!("objectName: {name}\nobjectType: key\nobjectAlias: {name}.pub"),
    ]
}

#[tokio::test]
async fn self_signed_certificates_without_authority_key_identifier() {
    if !pki::have_openssl() {
        eprintln!("openssl not installed: skipping");
        return;
    }
    let mut certificates = String::new();
    let mut made = Vec::new();
    for (name, algorithm) in [
        ("self-ec", Algorithm::EcP256),
        ("self-rsa", Algorithm::Rsa2048),
    ] {
        let (leaf, key) = pki::self_signed_leaf(algorithm, name);
        let pfx = Layout::key_vault().build(&key, &[&leaf.der]);
        certificates.push_str(&certificate_yaml(name, &leaf, &pfx));
        made.push((name, leaf, pfx));
    }
    let env = Env::start_with(&seed("", &certificates, ""), &[]).await;
    let items: Vec<String> = made.iter().flat_map(|(n, _, _)| views(n)).collect();
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    let f = mount(&env, &items).await.expect("mount");
    for (name, leaf, pfx) in &made {
        check_views(&f, name, pfx, &[leaf]);
    }
    assert!(!env
        .provider
        .logs()
        .contains("certificate chain is not complete"));
}

#[tokio::test]
async fn negative_serial_numbers_as_certificate_and_in_a_pfx_chain() {
    let Some(chain) = Chain::negative_serials() else {
        eprintln!("openssl not installed: skipping");
        return;
    };
    let (l, i, r) = (&chain.leaf, &chain.intermediate, &chain.root);
    assert!(pki::openssl_on_file(
        &["x509", "-noout", "-serial", "-inform", "DER", "-in"],
        &l.der
    )
    .starts_with("serial=-"));
    // Bag order root, leaf, intermediate: the chain must still be put in order.
    let pfx = Layout::key_vault().build(&chain.leaf_key, &[&r.der, &l.der, &i.der]);
    let certificates = certificate_yaml("negative", l, &pfx);
    let env = Env::start_with(&seed("", &certificates, ""), &[]).await;
    let items = views("negative");
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    let f = mount(&env, &items).await.expect("mount");
    check_views(&f, "negative", &pfx, &[l, i, r]);
}

#[tokio::test]
async fn secp256k1_keys_are_refused_clearly() {
    let point = b64url(&[7; 32]);
    let keys = format!(
        "      - name: k256\n        versions:\n          - jwk: {{kty: EC, crv: P-256K, x: \"{point}\", y: \"{point}\"}}\n      - name: k256-hsm\n        versions:\n          - jwk: {{kty: EC-HSM, crv: P-256K, x: \"{point}\", y: \"{point}\"}}\n"
    );
    let env = Env::start_with(&seed("", "", &keys), &[]).await;
    for name in ["k256", "k256-hsm"] {
        let err = mount(&env, &[&format!("objectName: {name}\nobjectType: key")])
            .await
            .unwrap_err();
        assert!(
            err.message().contains(&format!(
                "failed to get objectType:key, objectName:{name}, objectVersion:: curve P-256K is not supported"
            )),
            "{}",
            err.message()
        );
    }
}

/// Key Vault may send `n` with a leading zero byte; the PEM is openssl's either way.
#[tokio::test]
async fn rsa_jwk_modulus_with_a_leading_zero_byte() {
    if !pki::have_openssl() {
        eprintln!("openssl not installed: skipping");
        return;
    }
    let chain = Chain::new(Algorithm::Rsa2048, true);
    let text = pki::openssl_on_file(
        &["pkey", "-noout", "-text", "-in"],
        chain.key_pem().as_bytes(),
    );
    let modulus: Vec<u8> = text
        .lines()
        .skip_while(|l| !l.starts_with("modulus:"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .flat_map(|l| {
            l.trim()
                .split(':')
                .filter(|h| !h.is_empty())
                .map(|h| u8::from_str_radix(h, 16).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        (modulus.len(), modulus[0]),
        (257, 0),
        "openssl prints the DER INTEGER"
    );
    let keys = format!(
        "      - name: zero\n        versions:\n          - jwk: {{kty: RSA, n: \"{}\", e: AQAB}}\n      - name: trimmed\n        versions:\n          - jwk: {{kty: RSA-HSM, n: \"{}\", e: AQAB}}\n",
        b64url(&modulus),
        b64url(&modulus[1..])
    );
    let env = Env::start_with(&seed("", "", &keys), &[]).await;
    let f = mount(
        &env,
        &[
            "objectName: zero\nobjectType: key",
            "objectName: trimmed\nobjectType: key",
        ],
    )
    .await
    .expect("mount");
    let want = pki::openssl_on_file(&["pkey", "-pubout", "-in"], chain.key_pem().as_bytes());
    assert_eq!(String::from_utf8_lossy(&f["zero"].1), want);
    assert_eq!(String::from_utf8_lossy(&f["trimmed"].1), want);
}

/// Versions created in the same second keep the order Key Vault listed them in (a stable sort
/// by `created`, newest first), as Go's sort.Sort does for up to 12 versions; across pages too.
#[tokio::test]
async fn same_second_versions_keep_the_listing_order() {
    const T: i64 = 1_760_000_000;
    let version = |value: &str, id: &str, created: i64| {
        format!("          - value: {value}\n            version: {id}\n            created: {created}\n")
    };
    let mut secrets = String::from("      - name: burst\n        versions:\n");
    secrets.push_str(&version("old", &"0".repeat(32), T - 60));
    // Listed in this order, all in second T: neither id order nor value order.
    for (value, id) in [("c", "c"), ("a", "a"), ("d", "d"), ("b", "b")] {
        secrets.push_str(&version(value, &id.repeat(32), T));
    }
    // 30 versions in one second, over two listing pages (25 a page).
    secrets.push_str("      - name: flood\n        versions:\n");
    for n in 0..30 {
        secrets.push_str(&version(
            &format!("f{n}"),
            &format!("{:032x}", 0xf000 + 29 - n),
            T,
        ));
    }
    let env = Env::start_with(&seed(&secrets, "", ""), &[]).await;
    let history = |name: &str, n: u32, from: Option<String>| {
        let mut item = format!("objectName: {name}\nobjectType: secret\nobjectVersionHistory: {n}");
        if let Some(v) = from {
            item.push_str(&format!("\nobjectVersion: {v}\nobjectAlias: {name}-from"));
        }
        item
    };
    let items = [
        history("burst", 5, None),
        history("burst", 3, Some("a".repeat(32))),
        history("flood", 3, None),
        history("flood", 2, Some(format!("{:032x}", 0xf000 + 29 - 26))),
    ];
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    for _ in 0..2 {
        let f = mount(&env, &items).await.expect("mount");
        let values = |prefix: &str, n: usize| -> Vec<String> {
            (0..n)
                .map(|i| String::from_utf8_lossy(&f[&format!("{prefix}/{i}")].1).into_owned())
                .collect()
        };
        assert_eq!(values("burst", 5), ["c", "a", "d", "b", "old"]);
        assert_eq!(values("burst-from", 3), ["a", "d", "b"]);
        assert_eq!(values("flood", 3), ["f0", "f1", "f2"]);
        assert_eq!(values("flood-from", 2), ["f26", "f27"]);
    }
}
