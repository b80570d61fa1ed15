//! Certificates, keys and certificate-backed secrets through the socket: PFX → PEM (key first,
//! chain leaf → root from every input order), raw PFX, PEM passthrough, split `.crt`/`.key`
//! files, leaf-only `cert`, public keys, error texts, and `kubernetes.io/tls` Secrets built by
//! the driver emulator, checked with openssl.

mod common;

use std::process::Command;

use base64::Engine;
use common::*;
use testkit::driver::{self, pem_blocks, SecretObject};
use testkit::pki::{self, Algorithm, Cert, Chain};

const KID: &str = "https://kv-test.vault.akv.test/keys/web/0123456789abcdef0123456789abcdef";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A seed with the standard identities and the given extra secrets/certificates/keys YAML.
fn seed(secrets: &str, certificates: &str, keys: &str) -> String {
    let base = standard_seed();
    let marker = "    secrets:\n";
    let i = base.find(marker).unwrap() + marker.len();
    format!(
        "{}{secrets}{}    certificates:\n{certificates}    keys:\n{keys}",
        &base[..i],
        &base[i..]
    )
}

fn secret_yaml(name: &str, value: &str, content_type: Option<&str>, kid: Option<&str>) -> String {
    let mut s =
        format!("      - name: {name}\n        versions:\n          - value: \"{value}\"\n");
    if let Some(ct) = content_type {
        s.push_str(&format!("            contentType: {ct}\n"));
    }
    if let Some(kid) = kid {
        s.push_str(&format!("            kid: {kid}\n"));
    }
    s
}

fn cert_blocks(text: &[u8]) -> Vec<Vec<u8>> {
    pem_blocks(text)
        .into_iter()
        .filter(|(l, _)| l == "CERTIFICATE")
        .map(|(_, d)| d)
        .collect()
}

fn labels(text: &[u8]) -> Vec<String> {
    pem_blocks(text).into_iter().map(|(l, _)| l).collect()
}

#[tokio::test]
async fn pfx_chains_are_ordered_leaf_to_root_from_every_input_order() {
    for algorithm in [Algorithm::EcP256, Algorithm::Rsa2048] {
        let chain = Chain::new(algorithm, true);
        let (l, i, r) = (&chain.leaf, &chain.intermediate, &chain.root);
        let orders: [[&Cert; 3]; 6] = [
            [l, i, r],
            [l, r, i],
            [i, l, r],
            [i, r, l],
            [r, l, i],
            [r, i, l],
        ];
        let mut secrets = String::new();
        for (n, order) in orders.iter().enumerate() {
            secrets.push_str(&secret_yaml(
                &format!("pfx{n}"),
                &b64(&chain.pfx(order)),
                Some("application/x-pkcs12"),
                Some(KID),
            ));
        }
        let env = Env::start_with(&seed(&secrets, "", ""), &[]).await;
        let objs: Vec<String> = (0..6)
            .map(|n| format!("objectName: pfx{n}\nobjectType: secret"))
            .collect();
        let objs: Vec<&str> = objs.iter().map(String::as_str).collect();
        let resp = env
            .mount(env.sp(&objects(&objs)).build())
            .await
            .expect("mount");
        for (n, file) in resp.files.iter().enumerate() {
            assert_eq!(
                labels(&file.contents),
                ["PRIVATE KEY", "CERTIFICATE", "CERTIFICATE", "CERTIFICATE"],
                "{algorithm:?} order {n}"
            );
            assert_eq!(
                cert_blocks(&file.contents),
                [l.der.clone(), i.der.clone(), r.der.clone()],
                "{algorithm:?} order {n}"
            );
            let key = &pem_blocks(&file.contents)[0].1;
            assert_eq!(key, &chain.leaf_key, "PKCS#8 key, bag attributes dropped");
        }
    }
}

#[tokio::test]
async fn chain_flag_off_incomplete_chains_and_leaf_without_ski() {
    let chain = Chain::new(Algorithm::EcP256, false);
    let (l, i, r) = (&chain.leaf, &chain.intermediate, &chain.root);
    let secrets = secret_yaml(
        "unordered",
        &b64(&chain.pfx(&[r, l, i])),
        Some("application/x-pkcs12"),
        Some(KID),
    ) + &secret_yaml(
        "incomplete",
        &b64(&chain.pfx(&[r, l])),
        Some("application/x-pkcs12"),
        Some(KID),
    );
    let objs = objects(&[
        "objectName: unordered\nobjectType: secret",
        "objectName: incomplete\nobjectType: secret",
    ]);

    let env = Env::start_with(&seed(&secrets, "", ""), &[]).await;
    let resp = env.mount(env.sp(&objs).build()).await.unwrap();
    assert_eq!(
        cert_blocks(&resp.files[0].contents),
        [l.der.clone(), i.der.clone(), r.der.clone()],
        "leaf without SKI still leads"
    );
    assert_eq!(
        cert_blocks(&resp.files[1].contents),
        [r.der.clone(), l.der.clone()],
        "incomplete chain keeps the original order"
    );
    assert!(env
        .provider
        .logs()
        .contains("certificate chain is not complete"));

    let env = Env::start_with(&seed(&secrets, "", ""), &["--construct-pem-chain=false"]).await;
    let resp = env.mount(env.sp(&objs).build()).await.unwrap();
    assert_eq!(
        cert_blocks(&resp.files[0].contents),
        [r.der.clone(), l.der.clone(), i.der.clone()],
        "flag off: PFX order"
    );
}

#[tokio::test]
async fn openssl_made_pfx_files_modern_and_legacy() {
    if !pki::have_openssl() {
        eprintln!("openssl not installed: skipping the openssl-made PFX cases");
        return;
    }
    let chain = Chain::new(Algorithm::Rsa2048, true);
    let secrets = secret_yaml(
        "modern",
        &b64(&chain.pfx_openssl(&pki::OpensslPfx::Modern).unwrap()),
        Some("application/x-pkcs12"),
        Some(KID),
    ) + &secret_yaml(
        "legacy",
        &b64(&chain.pfx_openssl(&pki::OpensslPfx::TripleDes).unwrap()),
        Some("application/x-pkcs12"),
        Some(KID),
    );
    let env = Env::start_with(&seed(&secrets, "", ""), &[]).await;
    let objs = objects(&[
        "objectName: modern\nobjectType: secret",
        "objectName: legacy\nobjectType: secret",
    ]);
    let resp = env.mount(env.sp(&objs).build()).await.expect("mount");
    for file in &resp.files {
        assert_eq!(labels(&file.contents)[0], "PRIVATE KEY", "{}", file.path);
        assert_eq!(
            cert_blocks(&file.contents)[0],
            chain.leaf.der,
            "{}",
            file.path
        );
        assert_eq!(cert_blocks(&file.contents).len(), 3, "{}", file.path);
    }
}

#[tokio::test]
async fn raw_pfx_pem_passthrough_split_files_cert_and_key_objects() {
    let chain = Chain::new(Algorithm::EcP256, true);
    let pfx = chain.pfx(&[&chain.leaf, &chain.intermediate, &chain.root]);
    let pem_value = format!(
        "{}{}{}",
        chain.key_pem(),
        chain.leaf.pem(),
        chain.intermediate.pem()
    );
    let secrets = secret_yaml("web", &b64(&pfx), Some("application/x-pkcs12"), Some(KID))
        + &format!("      - name: pemcert\n        versions:\n          - value: |\n{}            contentType: application/x-pem-file\n            kid: {KID}\n", pem_value.lines().map(|l| format!("              {l}\n")).collect::<String>())
        + &secret_yaml("noct", &b64(&pfx), None, Some(KID))
        + &secret_yaml("oddct", &b64(&pfx), Some("application/json"), Some(KID));
    let certificates = format!(
        "      - name: web\n        versions:\n          - cer: {}\n",
        chain.leaf.base64()
    );
    // The leaf's public key as Key Vault's JWK (P-256: 0x04 || X || Y).
    let spki = x509_public_point(&chain.leaf.der);
    let b64url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let keys = format!("      - name: web\n        versions:\n          - jwk: {{kty: EC-HSM, crv: P-256, x: \"{}\", y: \"{}\"}}\n", b64url(&spki[1..33]), b64url(&spki[33..65]));
    let env = Env::start_with(
        &seed(&secrets, &certificates, &keys),
        &["--write-cert-and-key-in-separate-files"],
    )
    .await;
    let objs = objects(&[
        "objectName: web\nobjectType: secret\nobjectFormat: pfx\nobjectAlias: web.pfx.b64",
        "objectName: web\nobjectType: secret\nobjectFormat: PFX\nobjectEncoding: base64\nobjectAlias: web.pfx",
        "objectName: web\nobjectType: secret\nobjectAlias: web.pem",
        "objectName: pemcert\nobjectType: secret",
        "objectName: web\nobjectType: cert\nobjectAlias: web.cer",
        "objectName: web\nobjectType: key\nobjectAlias: web.pub",
    ]);
    let resp = env.mount(env.sp(&objs).build()).await.expect("mount");
    let paths: Vec<_> = resp.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "web.pfx.b64.crt",
            "web.pfx.b64.key",
            "web.pfx.b64",
            "web.pfx.crt",
            "web.pfx.key",
            "web.pfx",
            "web.pem.crt",
            "web.pem.key",
            "web.pem",
            "pemcert.crt",
            "pemcert.key",
            "pemcert",
            "web.cer",
            "web.pub",
        ]
    );
    let f = files(&resp);
    assert_eq!(
        f["web.pfx.b64"].1,
        b64(&pfx).as_bytes(),
        "objectFormat pfx: the stored base64 text"
    );
    assert_eq!(
        f["web.pfx"].1, pfx,
        "with objectEncoding base64: the PFX bytes"
    );
    assert_eq!(
        cert_blocks(&f["web.pfx.crt"].1).len(),
        3,
        "split files derived from the PFX, not empty"
    );
    assert_eq!(labels(&f["web.pfx.key"].1), ["PRIVATE KEY"]);
    assert_eq!(
        f["pemcert"].1,
        pem_value.as_bytes(),
        "PEM passthrough, byte for byte"
    );
    assert_eq!(labels(&f["pemcert.key"].1), ["PRIVATE KEY"]);
    assert_eq!(
        cert_blocks(&f["web.cer"].1),
        std::slice::from_ref(&chain.leaf.der),
        "cert: the leaf only"
    );
    assert_eq!(pem_blocks(&f["web.pub"].1)[0].0, "PUBLIC KEY");
    // Split files carry the object's version and id.
    assert!(resp.object_version[..3]
        .iter()
        .all(|v| v.id == "secret/web" && v.version == resp.object_version[2].version));

    let objs = objects(&[
        "objectName: noct\nobjectType: secret",
        "objectName: oddct\nobjectType: secret",
    ]);
    let err = env.mount(env.sp(&objs).build()).await.unwrap_err();
    assert!(
        err.message().contains(
            "objectName:noct, objectVersion:: certificate-backed secret has no content type"
        ),
        "{}",
        err.message()
    );
    assert!(err.message().contains("objectName:oddct, objectVersion:: failed to get certificate. unknown content type 'application/json'"), "{}", err.message());
}

/// The uncompressed EC point of a certificate's public key.
fn x509_public_point(der: &[u8]) -> Vec<u8> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    cert.public_key().subject_public_key.data.to_vec()
}

#[tokio::test]
async fn tls_secrets_from_pfx_and_pem_backed_certificates() {
    if !pki::have_openssl() {
        eprintln!("openssl not installed: skipping the TLS key checks");
        return;
    }
    for algorithm in [Algorithm::Rsa2048, Algorithm::EcP256] {
        let chain = Chain::new(algorithm, true);
        let pfx = chain.pfx(&[&chain.root, &chain.leaf, &chain.intermediate]);
        let pem_value = format!("{}{}", chain.key_pem(), chain.leaf.pem());
        let secrets = secret_yaml("pfx", &b64(&pfx), Some("application/x-pkcs12"), Some(KID))
            + &format!("      - name: pem\n        versions:\n          - value: |\n{}            contentType: application/x-pem-file\n            kid: {KID}\n", pem_value.lines().map(|l| format!("              {l}\n")).collect::<String>());
        let env = Env::start_with(&seed(&secrets, "", ""), &[]).await;
        let objs = objects(&[
            "objectName: pfx\nobjectType: secret",
            "objectName: pem\nobjectType: secret",
        ]);
        let resp = env.mount(env.sp(&objs).build()).await.unwrap();
        driver::validate(&resp).unwrap();
        let dir = tempfile::tempdir().unwrap();
        driver::write_atomic(dir.path(), &resp).unwrap();
        let mounted = driver::mounted_files(dir.path()).unwrap();
        for source in ["pfx", "pem"] {
            let tls = SecretObject {
                secret_name: "ingress-tls".into(),
                kind: "kubernetes.io/tls".into(),
                data: vec![
                    (source.into(), "tls.crt".into()),
                    (source.into(), "tls.key".into()),
                ],
            };
            let data = driver::secret_data(&tls, &mounted).unwrap();
            let want_label = match algorithm {
                Algorithm::Rsa2048 => "RSA PRIVATE KEY",
                Algorithm::EcP256 => "EC PRIVATE KEY",
                Algorithm::Ed25519Fixed => unreachable!("the driver cannot re-encode Ed25519"),
            };
            assert_eq!(
                labels(&data["tls.key"]),
                [want_label],
                "{algorithm:?} {source}"
            );
            assert_eq!(
                cert_blocks(&data["tls.crt"])[0],
                chain.leaf.der,
                "{algorithm:?} {source}"
            );
            // The key parses with openssl and matches the certificate.
            let d = tempfile::tempdir().unwrap();
            std::fs::write(d.path().join("k"), &data["tls.key"]).unwrap();
            std::fs::write(d.path().join("c"), &data["tls.crt"]).unwrap();
            let key_pub = Command::new("openssl")
                .args(["pkey", "-pubout", "-in"])
                .arg(d.path().join("k"))
                .output()
                .unwrap();
            let cert_pub = Command::new("openssl")
                .args(["x509", "-pubkey", "-noout", "-in"])
                .arg(d.path().join("c"))
                .output()
                .unwrap();
            assert!(
                key_pub.status.success(),
                "{}",
                String::from_utf8_lossy(&key_pub.stderr)
            );
            assert_eq!(
                key_pub.stdout, cert_pub.stdout,
                "{algorithm:?} {source}: key matches certificate"
            );
        }
    }
}

#[tokio::test]
async fn an_imported_certificate_serves_cert_secret_and_key_like_key_vault() {
    for algorithm in [Algorithm::EcP256, Algorithm::Rsa2048] {
        let chain = Chain::new(algorithm, true);
        let pfx = chain.pfx(&[&chain.root, &chain.intermediate, &chain.leaf]);
        let certificates = format!(
            "      - name: imported\n        versions:\n          - cer: {}\n            pfx: {}\n",
            chain.leaf.base64(),
            b64(&pfx)
        );
        let env = Env::start_with(&seed("", &certificates, ""), &[]).await;
        let objs = objects(&[
            "objectName: imported\nobjectType: cert\nobjectAlias: tls.crt",
            "objectName: imported\nobjectType: secret\nobjectAlias: tls.pem",
            "objectName: imported\nobjectType: key\nobjectAlias: tls.pub",
        ]);
        let resp = env.mount(env.sp(&objs).build()).await.expect("mount");
        let f = files(&resp);
        assert_eq!(
            cert_blocks(&f["tls.crt"].1),
            std::slice::from_ref(&chain.leaf.der)
        );
        assert_eq!(
            labels(&f["tls.pem"].1),
            ["PRIVATE KEY", "CERTIFICATE", "CERTIFICATE", "CERTIFICATE"]
        );
        assert_eq!(cert_blocks(&f["tls.pem"].1)[0], chain.leaf.der);
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (_, cert) = X509Certificate::from_der(&chain.leaf.der).unwrap();
        assert_eq!(
            f["tls.pub"].1,
            pki::pem("PUBLIC KEY", cert.public_key().raw).into_bytes(),
            "{algorithm:?}: key equals the certificate's SPKI"
        );
        // One Key Vault version id across the three views.
        assert!(resp
            .object_version
            .windows(2)
            .all(|w| w[0].version == w[1].version));
    }
}
