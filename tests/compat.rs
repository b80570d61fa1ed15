//! Compatibility lock: the exact bytes of the MountResponse (or the exact gRPC status) for a
//! corpus of SecretProviderClasses that use only the Go provider's parameters, compared with
//! `tests/golden/responses.txt`. The golden file was recorded before any opt-in feature beyond
//! the Go provider existed, so a change in it means an existing SecretProviderClass would behave
//! differently. Everything served is deterministic: fixed secrets, public keys and an Ed25519
//! certificate chain whose keys and signatures are the same on every run. (A PFX is encrypted
//! with a random salt, so the raw `objectFormat: pfx` output, which is the stored bytes, is left
//! to tests/certificates.rs; what the provider derives from a PFX is covered here.)
//!
//! `UPDATE_GOLDEN=1 cargo test --test compat` rewrites the file; review its diff like code.

mod common;

use std::fmt::Write;

use base64::Engine;
use common::*;
use prost::Message;
use sha2::{Digest, Sha256};
use testkit::pki::{Algorithm, Chain};

const GOLDEN: &str = "tests/golden/responses.txt";
const KID: &str = "https://kv-test.vault.akv.test/keys/web/0123456789abcdef0123456789abcdef";

/// Public JWKs (P-256 and RSA-2048): only the public half ever exists.
const EC_JWK: &str = r#"{"kty": "EC", "crv": "P-256", "x": "r1at1SGMvQB4l5rRvDe0COEcdpyzURTY__G0P0A0Nks", "y": "Ds6E9OUXtK0pjEXbdoi2HevuL9l38UqzBvvngX7n6CY"}"#;
const RSA_JWK: &str = r#"{"kty": "RSA", "e": "AQAB", "n": "ybpTnv0l6N5CeNDM6EbjftnOwGdJFvWZxkSpyYFRQV4Cjx3fEKtgaXz34KAts3AQmy_stIfT43TKvJOQOAKYS4xycM_U_ChM9OVkP9nEd59sAMFBkpgNeKg2joZgEaHhUfIBjwAkUfSlijnqRxm73Ki79y5iZjn-7jdQRgrdU2UeAI6bMJo6aoG7jyGDcJGC69DkZDGBKl5-bB5XqDrSuYY7KGsRUuNMlLMOsYzpnsJQFjiZrM7cHp8bG_PF8DV9rAPu-2BREmwsy4-B1zSMhaffd_MNDdwNOt5fwhi9g4vqUxObdyjAeZH0TkO_4HlGh7l-FljlQin9bL1ncCv8Sw"}"#;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn seed(chain: &Chain) -> String {
    let base = standard_seed();
    let marker = "    secrets:\n";
    let at = base.find(marker).unwrap() + marker.len();
    let pem = chain.key_pem() + &chain.leaf.pem() + &chain.intermediate.pem();
    let pfx = chain.pfx(&[&chain.root, &chain.leaf, &chain.intermediate]);
    let secrets = format!(
        "      - name: config-json\n        versions:\n          - value: '{{\"db\":{{\"user\":\"app\",\"password\":\"pw-1\"}},\"port\":5432}}'\n\
         \x20     - name: web-pem\n        versions:\n          - value: {pem:?}\n            contentType: application/x-pem-file\n            kid: {KID}\n\
         \x20     - name: web-pfx\n        versions:\n          - value: {pfx:?}\n            contentType: application/x-pkcs12\n            kid: {KID}\n",
        pfx = b64(&pfx),
    );
    let certificates = format!(
        "    certificates:\n      - name: web\n        versions:\n          - cer: {}\n",
        chain.leaf.base64()
    );
    let keys = format!(
        "    keys:\n      - name: ec\n        versions:\n          - jwk: {EC_JWK}\n      - name: rsa\n        versions:\n          - jwk: {RSA_JWK}\n"
    );
    format!(
        "{}{secrets}{}{certificates}{keys}",
        &base[..at],
        &base[at..]
    )
}

/// (case, objects items, extra parameters); every case mounts as the service principal.
type Case = (
    &'static str,
    Vec<&'static str>,
    Vec<(&'static str, &'static str)>,
);

fn corpus() -> Vec<Case> {
    vec![
        ("latest secret", vec!["objectName: db-password\nobjectType: secret"], vec![]),
        (
            "aliases, modes, pinned version, duplicates",
            vec![
                "objectName: db-password\nobjectType: secret\nobjectAlias: app/db\nfilePermission: \"0600\"",
                "objectName: db-password\nobjectType: secret\nobjectAlias: old\nobjectVersion: 0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
                "objectName: api-key\nobjectType: secret\nobjectVersion: latest",
                "objectName: config-json\nobjectType: secret",
            ],
            vec![],
        ),
        (
            "encodings",
            vec![
                "objectName: b64\nobjectType: secret\nobjectEncoding: base64",
                "objectName: hex\nobjectType: secret\nobjectEncoding: HEX",
                "objectName: api-key\nobjectType: secret\nobjectEncoding: utf-8",
            ],
            vec![],
        ),
        (
            "history",
            vec!["objectName: db-password\nobjectType: secret\nobjectVersionHistory: 3\nobjectAlias: db"],
            vec![],
        ),
        (
            "keys and certificates",
            vec![
                "objectName: ec\nobjectType: key",
                "objectName: rsa\nobjectType: key\nobjectAlias: keys/rsa.pem",
                "objectName: web\nobjectType: cert",
                "objectName: web-pem\nobjectType: secret",
                "objectName: web-pfx\nobjectType: secret",
            ],
            vec![],
        ),
        ("permission from the request", vec!["objectName: api-key\nobjectType: secret"], vec![("filePermission", "0640")]),
        ("empty array", vec![], vec![]),
        ("not found", vec!["objectName: api-key\nobjectType: secret", "objectName: nope\nobjectType: secret"], vec![]),
        ("disabled", vec!["objectName: disabled\nobjectType: secret"], vec![]),
        ("bad type", vec!["objectName: api-key\nobjectType: secrets"], vec![]),
        ("bad alias", vec!["objectName: api-key\nobjectType: secret\nobjectAlias: ../x"], vec![]),
        ("missing vault", vec!["objectName: api-key\nobjectType: secret"], vec![("keyvaultName", "")]),
        ("bad vault name", vec!["objectName: api-key\nobjectType: secret"], vec![("keyvaultName", "kv_test!")]),
        ("unknown version", vec!["objectName: api-key\nobjectType: secret\nobjectVersion: ffffffffffffffffffffffffffffffff"], vec![]),
        ("key as pfx", vec!["objectName: ec\nobjectType: key\nobjectFormat: pfx"], vec![]),
    ]
}

/// One line per case: the response's SHA-256 and a readable listing, or the status.
async fn describe(env: &Env) -> String {
    let mut out = String::new();
    for (case, items, extra) in corpus() {
        let mut req = Request::new(env.params(&objects(&items)));
        for (k, v) in extra {
            req = req.param(k, v);
        }
        let req = req.service_principal(SP_CLIENT, SP_SECRET).build();
        writeln!(out, "## {case}").unwrap();
        match env.mount(req).await {
            Ok(resp) => {
                let digest = hex::encode(Sha256::digest(resp.encode_to_vec()));
                writeln!(out, "response sha256 {digest}").unwrap();
                for f in &resp.files {
                    writeln!(
                        out,
                        "file {} mode {:o} bytes {} sha256 {}",
                        f.path,
                        f.mode,
                        f.contents.len(),
                        &hex::encode(Sha256::digest(&f.contents))[..16]
                    )
                    .unwrap();
                }
                for v in &resp.object_version {
                    writeln!(out, "version {} {}", v.id, v.version).unwrap();
                }
            }
            Err(status) => {
                writeln!(out, "status {:?}: {}", status.code(), status.message()).unwrap();
            }
        }
    }
    out
}

#[tokio::test]
async fn go_provider_parameters_produce_the_recorded_responses() {
    let chain = Chain::new(Algorithm::Ed25519Fixed, true);
    assert_eq!(
        chain.leaf.der,
        Chain::new(Algorithm::Ed25519Fixed, true).leaf.der,
        "the test chain must be deterministic"
    );
    let env = Env::start_with(&seed(&chain), &[]).await;
    let actual = describe(&env).await;
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all("tests/golden").unwrap();
        std::fs::write(GOLDEN, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(GOLDEN).expect("golden file");
    if actual != expected {
        for (a, e) in actual.lines().zip(expected.lines()) {
            assert_eq!(a, e, "response differs from {GOLDEN}");
        }
        assert_eq!(actual.lines().count(), expected.lines().count());
    }
}
