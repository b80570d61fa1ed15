//! Service principals that authenticate with a certificate (`clientid` and `clientcertificate`
//! in the node-publish secret), through the socket against an Entra fake that verifies every
//! client assertion with its own code: signature against the registered certificate (or a
//! trusted chain in `x5c`), audience, issuer and subject, time, and `jti` replay. Each test's
//! private keys are added to the leak checks of `tests/common`.

mod common;

use std::collections::HashMap;

use axum::body::to_bytes;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::*;
use testkit::pki::{self, Algorithm, Chain};

/// Has the RSA chain's leaf registered (Certificates & secrets).
const CERT_CLIENT: &str = "c0c0c0c0-0000-4000-8000-000000000001";
/// Trusts subject `app.example.test` issued under the chain's root (subject name and issuer).
const SNI_CLIENT: &str = "c0c0c0c0-0000-4000-8000-000000000002";
const ADFS_VAULT: &str = "kv-adfs";

/// A tenant with both clients, and AD FS (tenant `adfs`) with the certificate client.
fn seed(chain: &Chain) -> String {
    let leaf = serde_json::to_string(&chain.leaf.pem()).unwrap();
    let root = serde_json::to_string(&chain.root.pem()).unwrap();
    format!(
        r#"
tenants:
  - id: {TENANT}
    clients:
      - clientId: {CERT_CLIENT}
        certificates: [{leaf}]
      - clientId: {SNI_CLIENT}
        trustedCertificateSubjects:
          - subjectName: app.example.test
            issuer: {root}
  - id: adfs
    clients:
      - clientId: {CERT_CLIENT}
        certificates: [{leaf}]
vaults:
  - name: {VAULT}
    tenant: {TENANT}
    access:
      - clientId: {CERT_CLIENT}
        secrets: [get]
      - clientId: {SNI_CLIENT}
        secrets: [get]
    secrets:
      - name: api-key
        versions:
          - value: {API_KEY}
      - name: db-password
        versions:
          - value: {DB_PASSWORD}
  - name: {ADFS_VAULT}
    tenant: adfs
    access:
      - clientId: {CERT_CLIENT}
        secrets: [get]
    secrets:
      - name: api-key
        versions:
          - value: {API_KEY}
"#
    )
}

fn secret(name: &str) -> String {
    objects(&[&format!("objectName: {name}\nobjectType: secret")])
}

/// The fakes with `chain`'s leaf registered, and the provider with `args`.
async fn env(chain: &Chain, args: &[&str]) -> Env {
    let env = Env::start_with(&seed(chain), args).await;
    env.treat_as_secret(&chain.key_pem());
    env
}

fn cert_mount(env: &Env, client_id: &str, pem: &str, object: &str) -> Request {
    Request::new(env.params(&secret(object))).certificate_principal(client_id, pem)
}

/// Header and claims of a compact JWT.
fn jwt_parts(jwt: &str) -> (serde_json::Value, serde_json::Value) {
    let part = |i: usize| {
        let text = jwt.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
    };
    (part(0), part(1))
}

fn thumbprint(der: &[u8], alg: &'static ring::digest::Algorithm) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(alg, der))
}

#[tokio::test]
async fn rsa_certificate_mounts_and_its_token_is_reused_by_thumbprint() {
    let chain = Chain::new(Algorithm::Rsa2048, true);
    let env = env(&chain, &[]).await;
    let pem = chain.client_pem(true);
    let resp = env
        .mount(cert_mount(&env, CERT_CLIENT, &pem, "api-key").build())
        .await
        .expect("certificate mount");
    assert_eq!(files(&resp)["api-key"].1, API_KEY.as_bytes());
    let requests = env.azure.entra.requests();
    assert_eq!(
        (requests.len(), requests[0].grant, requests[0].status),
        (1, "certificate", 200)
    );
    let line = env.mount_line("app-7d9f8");
    assert_eq!(line["identity"], "service_principal_certificate");
    assert_eq!(line["client_id"], CERT_CLIENT);
    assert_eq!(line["tenant"], TENANT);

    let assertion = env.azure.entra.assertions().pop().unwrap();
    let (header, claims) = jwt_parts(&assertion);
    assert_eq!(header["alg"], "PS256", "{header}");
    assert_eq!(header["typ"], "JWT");
    let sha1 = &ring::digest::SHA1_FOR_LEGACY_USE_ONLY;
    assert_eq!(header["x5t"], thumbprint(&chain.leaf.der, sha1));
    assert_eq!(
        header["x5t#S256"],
        thumbprint(&chain.leaf.der, &ring::digest::SHA256)
    );
    assert!(
        header.get("x5c").is_none(),
        "no chain without --send-certificate-chain"
    );
    assert_eq!(
        claims["aud"],
        format!("https://login.akv.test/{TENANT}/oauth2/v2.0/token")
    );
    assert_eq!(
        (&claims["iss"], &claims["sub"]),
        (&claims["sub"], &serde_json::json!(CERT_CLIENT))
    );
    let (nbf, exp) = (
        claims["nbf"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - nbf, 600, "a short lifetime");
    assert_eq!(claims["iat"], claims["nbf"]);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 36);

    // The same certificate, its key written as PKCS#1 and without the chain: another text, the
    // same credential, so the cached token serves.
    let pkcs1 = chain.key_pem_pkcs1();
    env.treat_as_secret(&pkcs1);
    let other_text = chain.leaf.pem() + &pkcs1;
    env.mount(cert_mount(&env, CERT_CLIENT, &other_text, "db-password").build())
        .await
        .expect("PKCS#1 key, no chain");
    assert_eq!(
        env.azure.entra.request_count(),
        1,
        "one exchange per thumbprint"
    );
}

#[tokio::test]
async fn local_checks_fail_before_anything_is_sent() {
    let chain = Chain::new(Algorithm::Rsa2048, true);
    let other = Chain::new(Algorithm::Rsa2048, true);
    let env = env(&chain, &[]).await;
    env.treat_as_secret(&other.key_pem());
    let (expired, expired_key) =
        pki::rsa_leaf_valid("app.example.test", (2020, 1, 1), (2021, 1, 1));
    let (future, future_key) = pki::rsa_leaf_valid("app.example.test", (2090, 1, 1), (2091, 1, 1));
    let (ec, ec_key) = pki::self_signed_leaf(Algorithm::EcP256, "app.example.test");
    let encrypted = chain.key_pem_encrypted();
    let cases = [
        (other.key_pem() + &chain.leaf.pem(), "the private key does not belong to the first certificate: put the certificate of this key first"),
        (chain.intermediate.pem() + &chain.key_pem() + &chain.leaf.pem(), "the private key does not belong to the first certificate"),
        (pki::pem("PRIVATE KEY", &expired_key) + &expired.pem(), "expired at 2021-01-01T00:00:00Z: renew it, upload the new certificate to the app registration and update clientcertificate"),
        (pki::pem("PRIVATE KEY", &future_key) + &future.pem(), "is not valid before 2090-01-01T00:00:00Z: check the node's clock"),
        (pki::pem("PRIVATE KEY", &ec_key) + &ec.pem(), "holds an EC certificate or key: Entra ID accepts only RSA certificates for client assertions"),
        (encrypted.clone() + &chain.leaf.pem(), "holds an encrypted private key: store the key unencrypted"),
        (chain.leaf.pem(), "holds no private key"),
        (chain.key_pem(), "holds no certificate"),
        (chain.key_pem() + &chain.key_pem() + &chain.leaf.pem(), "holds more than one private key"),
        ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".to_string(), "is not valid PEM (no PEM block found)"),
        ("-----BEGIN CERTIFICATE-----\nMIIB\n".to_string(), "is not valid PEM (a BEGIN line without its END line)"),
    ];
    for key in [&expired_key, &future_key, &ec_key] {
        env.treat_as_secret(&pki::pem("PRIVATE KEY", key));
    }
    env.treat_as_secret(&encrypted);
    for (pem, want) in cases {
        let err = env
            .mount(cert_mount(&env, CERT_CLIENT, &pem, "api-key").build())
            .await
            .unwrap_err();
        let message = err.message();
        assert!(
            message.starts_with("failed to mount objects, error: failed to build auth config for mode None: clientcertificate in the nodePublishSecretRef Secret "),
            "{message}"
        );
        assert!(message.contains(want), "want {want:?} in {message}");
    }
    assert_eq!(
        env.azure.entra.request_count(),
        0,
        "nothing reached Entra ID"
    );
}

#[tokio::test]
async fn entra_refuses_an_unregistered_certificate_and_says_what_to_do() {
    let chain = Chain::new(Algorithm::Rsa2048, true);
    let unregistered = Chain::new(Algorithm::Rsa2048, true);
    let env = env(&chain, &[]).await;
    env.treat_as_secret(&unregistered.key_pem());
    let err = env
        .mount(
            cert_mount(
                &env,
                CERT_CLIENT,
                &unregistered.client_pem(false),
                "api-key",
            )
            .build(),
        )
        .await
        .unwrap_err();
    let message = err.message();
    let sha1 = hex_upper(
        ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &unregistered.leaf.der,
        )
        .as_ref(),
    );
    assert!(message.contains(&format!("failed to acquire an access token from Entra ID for client id {CERT_CLIENT} in tenant {TENANT}")), "{message}");
    assert!(message.contains("AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application"), "{message}");
    assert!(
        message.contains(&sha1),
        "Entra's thumbprint, as the portal shows it: {message}"
    );
    assert!(
        message
            .contains("upload the certificate (the thumbprint above) under Certificates & secrets"),
        "{message}"
    );
    // The subject name client without x5c: Entra ID cannot find the key either.
    let err = env
        .mount(cert_mount(&env, SNI_CLIENT, &chain.client_pem(true), "api-key").build())
        .await
        .unwrap_err();
    assert!(
        err.message().contains("AADSTS700027")
            && err.message().contains("--send-certificate-chain=true"),
        "{}",
        err.message()
    );
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[tokio::test]
async fn subject_name_and_issuer_with_the_chain() {
    let chain = Chain::new(Algorithm::Rsa2048, true);
    let env = env(&chain, &["--send-certificate-chain=true"]).await;
    env.mount(cert_mount(&env, SNI_CLIENT, &chain.client_pem(true), "api-key").build())
        .await
        .expect("trusted subject and issuer");
    let (header, _) = jwt_parts(&env.azure.entra.assertions().pop().unwrap());
    let x5c: Vec<Vec<u8>> = header["x5c"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| STANDARD.decode(c.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(
        x5c,
        vec![
            chain.leaf.der.clone(),
            chain.intermediate.der.clone(),
            chain.root.der.clone()
        ],
        "standard base64 DER, leaf first"
    );
    // A registered certificate works with the chain too.
    env.mount(cert_mount(&env, CERT_CLIENT, &chain.client_pem(true), "api-key").build())
        .await
        .expect("registered certificate with x5c");
    // A certificate from elsewhere with the trusted subject name is not trusted.
    let (stranger, stranger_key) = pki::self_signed_leaf(Algorithm::Rsa2048, "app.example.test");
    let stranger_pem = pki::pem("PRIVATE KEY", &stranger_key) + &stranger.pem();
    env.treat_as_secret(&stranger_pem);
    let err = env
        .mount(cert_mount(&env, SNI_CLIENT, &stranger_pem, "api-key").build())
        .await
        .unwrap_err();
    assert!(
        err.message().contains("AADSTS700030")
            && err.message().contains("trustedCertificateSubjects"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn ad_fs_gets_rs256() {
    let chain = Chain::new(Algorithm::Rsa2048, true);
    let env = env(&chain, &[]).await;
    let mut params = env.params(&secret("api-key"));
    params.insert("tenantID".into(), "adfs".into());
    params.insert("keyvaultName".into(), ADFS_VAULT.into());
    let req = Request::new(params).certificate_principal(CERT_CLIENT, &chain.client_pem(false));
    env.mount(req.build()).await.expect("AD FS mount");
    let (header, claims) = jwt_parts(&env.azure.entra.assertions().pop().unwrap());
    assert_eq!(header["alg"], "RS256");
    assert_eq!(
        claims["aud"],
        "https://login.akv.test/adfs/oauth2/v2.0/token"
    );
}

#[tokio::test]
async fn a_retried_exchange_sends_a_new_assertion() {
    let chain = Chain::new(Algorithm::Rsa2048, true);
    let env = env(&chain, &[]).await;
    env.azure
        .entra
        .faults
        .inject(None, 1, testkit::fault::Fault::status(503));
    env.mount(cert_mount(&env, CERT_CLIENT, &chain.client_pem(false), "api-key").build())
        .await
        .expect("succeeds after a retry");
    let jtis: Vec<serde_json::Value> = env
        .azure
        .entra
        .assertions()
        .iter()
        .map(|a| jwt_parts(a).1["jti"].clone())
        .collect();
    assert_eq!(jtis.len(), 2);
    assert_ne!(jtis[0], jtis[1]);
}

/// Posts `assertion` to the Entra fake's token logic as `client_id` would.
async fn judge(env: &Env, client_id: &str, assertion: &str) -> (u16, String) {
    let form = HashMap::from([
        ("grant_type".to_string(), "client_credentials".to_string()),
        ("client_id".to_string(), client_id.to_string()),
        (
            "scope".to_string(),
            "https://vault.akv.test/.default".to_string(),
        ),
        (
            "client_assertion_type".to_string(),
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
        ),
        ("client_assertion".to_string(), assertion.to_string()),
    ]);
    let url = format!("https://login.akv.test/{TENANT}/oauth2/v2.0/token");
    let resp = env.azure.entra.answer(
        TENANT,
        client_id,
        "https://vault.akv.test/.default",
        &form,
        &url,
    );
    let status = resp.status().as_u16();
    let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A JWT with `header` and `claims`, signed PS256 with the PKCS#8 `key`.
fn sign(key: &[u8], header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let key = ring::signature::RsaKeyPair::from_pkcs8(key).unwrap();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public().modulus_len()];
    let rng = ring::rand::SystemRandom::new();
    key.sign(
        &ring::signature::RSA_PSS_SHA256,
        &rng,
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[tokio::test]
async fn the_entra_fake_refuses_replayed_and_forged_assertions() {
    let chain = Chain::new(Algorithm::Rsa2048, true);
    let other = Chain::new(Algorithm::Rsa2048, true);
    let env = env(&chain, &[]).await;
    env.treat_as_secret(&other.key_pem());
    env.mount(cert_mount(&env, CERT_CLIENT, &chain.client_pem(false), "api-key").build())
        .await
        .unwrap();
    let sent = env.azure.entra.assertions().pop().unwrap();
    let (status, body) = judge(&env, CERT_CLIENT, &sent).await;
    assert_eq!(status, 401);
    assert!(
        body.contains("AADSTS50027") && body.contains("already used"),
        "replay: {body}"
    );

    let (header, claims) = jwt_parts(&sent);
    let fresh = |claims: &serde_json::Value| {
        let mut c = claims.clone();
        c["jti"] = serde_json::json!(rand_hex());
        c
    };
    // The provider's own header and signature over other claims.
    let (signed_header, _, signature) = {
        let mut parts = sent.split('.');
        (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        )
    };
    let tampered = format!(
        "{signed_header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(fresh(&claims).to_string())
    );
    let edit = |field: &str, value: serde_json::Value| {
        let mut c = fresh(&claims);
        c[field] = value;
        c
    };
    let now = claims["nbf"].as_u64().unwrap();
    let cases: Vec<(String, &str)> = vec![
        (sign(&chain.leaf_key, &header, &fresh(&claims)), "200"),
        (
            sign(&other.leaf_key, &header, &fresh(&claims)),
            "AADSTS700027: Client assertion failed signature validation",
        ),
        (
            tampered,
            "AADSTS700027: Client assertion failed signature validation",
        ),
        (
            sign(
                &chain.leaf_key,
                &header,
                &edit(
                    "aud",
                    serde_json::json!("https://login.akv.test/other/oauth2/v2.0/token"),
                ),
            ),
            "AADSTS50027",
        ),
        (
            sign(
                &chain.leaf_key,
                &header,
                &edit("sub", serde_json::json!(SNI_CLIENT)),
            ),
            "AADSTS50048",
        ),
        (
            sign(
                &chain.leaf_key,
                &header,
                &edit("exp", serde_json::json!(now - 10)),
            ),
            "AADSTS700024",
        ),
        (
            sign(
                &chain.leaf_key,
                &header,
                &edit("exp", serde_json::json!(now + 86400)),
            ),
            "AADSTS700024",
        ),
        (
            sign(
                &chain.leaf_key,
                &header,
                &edit("nbf", serde_json::json!(now + 3600)),
            ),
            "AADSTS700024",
        ),
        (
            sign(
                &chain.leaf_key,
                &header,
                &edit("jti", serde_json::json!("")),
            ),
            "AADSTS50027",
        ),
        (
            sign(
                &chain.leaf_key,
                &serde_json::json!({"alg": "PS256", "typ": "JWT"}),
                &fresh(&claims),
            ),
            "AADSTS700027: The certificate with identifier",
        ),
        (
            sign(
                &chain.leaf_key,
                &serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": header["x5t#S256"], "x5t": thumbprint(&other.leaf.der, &ring::digest::SHA1_FOR_LEGACY_USE_ONLY)}),
                &fresh(&claims),
            ),
            "AADSTS700027",
        ),
    ];
    for (assertion, want) in cases {
        let (status, body) = judge(&env, CERT_CLIENT, &assertion).await;
        match want {
            "200" => assert_eq!(status, 200, "{body}"),
            _ => assert!(
                status == 401 && body.contains(want),
                "want {want}: {status} {body}"
            ),
        }
    }
}

fn rand_hex() -> String {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn the_mount_command_takes_a_certificate_file() {
    let chain = Chain::new(Algorithm::Rsa2048, true);
    let env = env(&chain, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let params: String = env
        .params(&secret("api-key"))
        .iter()
        .map(|(k, v)| format!("    {k}: {}\n", serde_json::to_string(v).unwrap()))
        .collect();
    let spc = format!("apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata:\n  name: app\nspec:\n  provider: azure\n  parameters:\n{params}");
    std::fs::write(dir.path().join("spc.yaml"), spc).unwrap();
    std::fs::write(dir.path().join("client.pem"), chain.client_pem(true)).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_akv-csi-provider"))
        .args([
            "mount",
            "--pod-namespace",
            "default",
            "--client-id",
            CERT_CLIENT,
        ])
        .arg("--client-certificate-file")
        .arg(dir.path().join("client.pem"))
        .arg("--spc")
        .arg(dir.path().join("spc.yaml"))
        .arg("--out")
        .arg(dir.path().join("out"))
        .args(env.azure.provider_args())
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(
        std::fs::read(dir.path().join("out/api-key")).unwrap(),
        API_KEY.as_bytes()
    );
    for line in chain.key_pem().lines().filter(|l| l.len() > 20) {
        assert!(
            !stdout.contains(line) && !stderr.contains(line),
            "the key never shows"
        );
    }
    assert_eq!(env.azure.entra.requests()[0].grant, "certificate");
}
