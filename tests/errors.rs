//! Every error a SecretProviderClass or an identity can cause, through the socket: the Go
//! provider's texts (users grep them) and the added advice, object names included, gRPC code
//! Unknown as upstream.

mod common;

use common::*;

fn secret(name: &str) -> String {
    objects(&[&format!("objectName: {name}\nobjectType: secret")])
}

async fn error_of(env: &Env, req: &Request) -> String {
    let status = env.mount(req.build()).await.expect_err("mount fails");
    assert_eq!(status.code(), tonic::Code::Unknown);
    status.message().to_string()
}

#[tokio::test]
async fn envelope_errors() {
    let env = Env::start().await;
    let base = env.sp(&secret("api-key")).build();
    for (field, value, want) in [
        (
            "attributes",
            "{not json",
            "failed to unmarshal attributes, error: ",
        ),
        ("secrets", "[1,2]", "failed to unmarshal secrets, error: "),
        (
            "permission",
            "\"rw\"",
            "failed to unmarshal file permission, error: ",
        ),
    ] {
        let mut req = base.clone();
        match field {
            "attributes" => req.attributes = value.into(),
            "secrets" => req.secrets = value.into(),
            _ => req.permission = value.into(),
        }
        let status = env.mount(req).await.unwrap_err();
        assert!(
            status.message().starts_with(want),
            "{field}: {}",
            status.message()
        );
    }
}

#[tokio::test]
async fn parameter_errors_in_upstream_order_and_text() {
    let env = Env::start().await;
    let ok = || env.sp(&secret("api-key"));
    let cases: Vec<(Request, &str)> = vec![
        ({ let mut r = ok(); r.pod = String::new(); r }, "failed to mount objects, error: pod name is not provided"),
        ({ let mut r = ok(); r.namespace = String::new(); r }, "failed to mount objects, error: pod namespace is not provided"),
        (ok().param("usePodIdentity", "tru"), "failed to mount objects, error: failed to parse usePodIdentity flag, error: strconv.ParseBool: parsing \"tru\": invalid syntax"),
        (ok().param("useVMManagedIdentity", "yes"), "failed to parse useVMManagedIdentity flag, error: strconv.ParseBool: parsing \"yes\": invalid syntax"),
        (ok().param("useAzureTokenProxy", "2"), "failed to parse useAzureTokenProxy flag, error: strconv.ParseBool: parsing \"2\": invalid syntax"),
        (ok().param("usePodIdentity", "true").param("useAzureTokenProxy", "True"), "only one identity mode can be enabled at a time: usePodIdentity, useVMManagedIdentity, or useAzureTokenProxy"),
        (ok().param("keyvaultName", ""), "failed to mount objects, error: keyvaultName is not provided"),
        (ok().param("tenantID", ""), "failed to mount objects, error: tenantId is not provided"),
        (ok().param("cloudName", "AzureMarsCloud"), "cloudName AzureMarsCloud is not valid, error: autorest/azure: There is no cloud environment matching the name \"AZUREMARSCLOUD\""),
        (ok().param("cloudEnvFileName", "/nonexistent/cloud.json"), "cloudName AzureStackCloud is not valid, error: open /nonexistent/cloud.json: "),
        (ok().param("objects", ""), "failed to mount objects, error: objects is not set"),
        (ok().param("objects", "array: ["), "failed to mount objects, error: failed to yaml unmarshal objects, error: "),
        (ok().param("objects", "array:\n  - |\n    objectName: [\n"), "unmarshal failed for keyVaultObjects at index 0, error: "),
        (ok().param("keyvaultName", "kv"), "failed to get vault: Invalid vault name: \"kv\", must be between 3 and 24 chars"),
        (ok().param("keyvaultName", "a-very-long-vault-name-over-24"), "must be between 3 and 24 chars"),
        (ok().param("keyvaultName", "kv_test"), "failed to get vault: Invalid vault name: \"kv_test\", must match [-a-zA-Z0-9]{3,24}"),
    ];
    for (req, want) in cases {
        let got = error_of(&env, &req).await;
        assert!(got.contains(want), "want {want:?}\n got {got:?}");
    }
}

#[tokio::test]
async fn per_object_errors_name_the_object() {
    let env = Env::start().await;
    let cases = [
        ("objectName: s1\nobjectType: secret\nobjectFormat: pkcs", "failed to get objectType:secret, objectName:s1, objectVersion:: invalid objectFormat: pkcs, should be PEM or PFX"),
        ("objectName: k1\nobjectType: key\nobjectFormat: pfx", "failed to get objectType:key, objectName:k1, objectVersion:: PFX format only supported for objectType: secret"),
        ("objectName: k1\nobjectType: key\nobjectFormat: PFX", "PFX format only supported for objectType: secret"),
        ("objectName: c1\nobjectType: cert\nobjectEncoding: base64", "failed to get objectType:cert, objectName:c1, objectVersion:: objectEncoding only supported for objectType: secret"),
        ("objectName: s1\nobjectType: secret\nobjectEncoding: utf-16", "invalid objectEncoding: utf-16, should be hex, base64 or utf-8"),
        ("objectType: secret", "failed to get objectType:secret, objectName:, objectVersion:: file name must not be empty"),
        ("objectName: s1\nobjectType: secret\nobjectAlias: /etc/passwd", "file name must be a relative path"),
        ("objectName: s1\nobjectType: secret\nobjectAlias: ../../escape", "file name must not contain '..'"),
        ("objectName: s1\nobjectType: secret\nobjectAlias: a/./b", "is not a clean path"),
        ("objectName: s1\nobjectType: secret\nobjectAlias: a//b", "is not a clean path"),
        ("objectName: s1\nobjectType: secret\nobjectAlias: dir/", "is not a clean path"),
        ("objectName: s1\nobjectType: Secret", "failed to get objectType:Secret, objectName:s1, objectVersion:: Invalid vaultObjectTypes. Should be secret, key, or cert"),
        ("objectName: s1\nobjectType: certificate", "Invalid vaultObjectTypes. Should be secret, key, or cert"),
        ("objectName: s1\nobjectType: secret\nfilePermission: \"0888\"", "file permission must be a valid octal number"),
        ("objectName: s1\nobjectType: secret\nfilePermission: \"01777\"", "file permission 01777 is out of range"),
        ("objectName: s1/../x\nobjectType: secret\nobjectAlias: x", "is not a valid Key Vault object name"),
        ("objectName: s1\nobjectType: secret\nobjectVersion: ../../keys", "is not a valid Key Vault version"),
    ];
    for (object, want) in cases {
        let req = env.sp(&objects(&[object]));
        let got = error_of(&env, &req).await;
        assert!(got.starts_with("failed to mount objects, error: "), "{got}");
        assert!(
            got.contains(want),
            "object {object:?}\n want {want:?}\n  got {got:?}"
        );
    }
    assert_eq!(
        env.azure.keyvault.requests().len(),
        0,
        "validation fails before any network call"
    );
}

#[tokio::test]
async fn identity_errors() {
    let env = Env::start().await;
    let base = || Request::new(env.params(&secret("api-key")));
    let mut no_tokens = base();
    no_tokens.params.insert("clientID".into(), WI_CLIENT.into());
    let mut wrong_audience = base();
    wrong_audience
        .params
        .insert("clientID".into(), WI_CLIENT.into());
    wrong_audience
        .tokens
        .insert("api://other".into(), "t".into());
    let cases: Vec<(Request, &str)> = vec![
        (base(), "failed to build auth config for mode None: failed to get credentials, nodePublishSecretRef secret is not set"),
        ({ let mut r = base(); r.secrets = Some(Default::default()); r }, "failed to build auth config for mode None: could not find clientid in secrets"),
        ({ let mut r = base(); r.secrets = Some([("clientid".to_string(), SP_CLIENT.to_string())].into()); r }, "could not find clientsecret in secrets"),
        (no_tokens, "failed to build auth config for mode None: failed to parse workload identity tokens, error: service account tokens not found: the CSIDriver secrets-store.csi.k8s.io must list audience api://AzureADTokenExchange in spec.tokenRequests"),
        (wrong_audience, "token for audience api://AzureADTokenExchange not found"),
        (base().param("useAzureTokenProxy", "true"), "failed to build auth config for mode AzureTokenProxy: clientID is required for identity binding"),
        (base().param("useAzureTokenProxy", "true").param("clientID", WI_CLIENT), "service account tokens are required for identity binding"),
    ];
    for (req, want) in cases {
        let got = error_of(&env, &req).await;
        assert!(got.contains(want), "want {want:?}\n got {got:?}");
    }
}

#[tokio::test]
async fn entra_errors_say_what_to_fix() {
    let env = Env::start().await;
    let cases = [
        (
            Request::new(env.params(&secret("api-key"))).service_principal(SP_CLIENT, "wrong"),
            "AADSTS7000215",
            "update clientsecret in the nodePublishSecretRef Secret",
        ),
        (
            Request::new(env.params(&secret("api-key")))
                .service_principal("99999999-9999-9999-9999-999999999999", "x"),
            "AADSTS700016",
            "check clientID and tenantID",
        ),
        (
            env.sp(&secret("api-key"))
                .param("tenantID", "55555555-5555-5555-5555-555555555555"),
            "AADSTS90002",
            "check tenantID",
        ),
    ];
    for (req, code, advice) in cases {
        let got = error_of(&env, &req).await;
        assert!(got.starts_with("failed to mount objects, error: failed to get objectType:secret, objectName:api-key, objectVersion:: failed to acquire an access token from Entra ID"), "{got}");
        assert!(got.contains(code) && got.contains(advice), "{got}");
        assert!(!got.contains("Trace ID"), "{got}");
    }
    // A token from another service account: no federated credential for its subject.
    let foreign = env.azure.entra.issuer.token(
        "default",
        "intruder",
        "p",
        WI_AUDIENCE,
        std::time::Duration::from_secs(600),
    );
    let got = error_of(
        &env,
        &Request::new(env.params(&secret("api-key"))).workload_identity(WI_CLIENT, &foreign),
    )
    .await;
    assert!(
        got.contains("AADSTS700213")
            && got.contains("subject system:serviceaccount:<namespace>:<service account>"),
        "{got}"
    );
    // A forged token (not signed by the cluster).
    let forged = format!("{}x", env.sa_token("p"));
    let got = error_of(
        &env,
        &Request::new(env.params(&secret("api-key"))).workload_identity(WI_CLIENT, &forged),
    )
    .await;
    assert!(got.contains("AADSTS50027"), "{got}");
}

#[tokio::test]
async fn key_vault_errors_name_object_vault_and_fix() {
    let env = Env::start().await;
    let sp = |objs: &str| env.sp(objs);
    let got = error_of(&env, &sp(&secret("missing"))).await;
    assert!(got.contains("failed to get objectType:secret, objectName:missing, objectVersion:: secret missing was not found in key vault kv-test (404 SecretNotFound)"), "{got}");
    let got = error_of(&env, &sp(&objects(&["objectName: api-key\nobjectType: secret\nobjectVersion: ffffffffffffffffffffffffffffffff"]))).await;
    assert!(
        got.contains(
            "objectVersion:ffffffffffffffffffffffffffffffff: secret api-key was not found"
        ),
        "{got}"
    );
    let got = error_of(&env, &sp(&secret("disabled"))).await;
    assert!(
        got.contains("secret disabled is disabled in key vault kv-test (403 SecretDisabled)"),
        "{got}"
    );
    let denied = Request::new(env.params(&secret("api-key")))
        .service_principal(NO_ACCESS_CLIENT, NO_ACCESS_SECRET);
    let got = error_of(&env, &denied).await;
    assert!(
        got.contains("access denied by key vault kv-test (403 AccessDenied)"),
        "{got}"
    );
    assert!(got.contains(&format!("grant the identity with client id {NO_ACCESS_CLIENT} the \"get\" permission on secrets")), "{got}");
    // Two failing objects are both reported, in SPC order; no partial result.
    let got = error_of(
        &env,
        &sp(&objects(&[
            "objectName: missing-a\nobjectType: secret",
            "objectName: api-key\nobjectType: secret",
            "objectName: missing-b\nobjectType: secret",
        ])),
    )
    .await;
    let a = got
        .find("objectName:missing-a")
        .expect("first failure listed");
    let b = got
        .find("objectName:missing-b")
        .expect("second failure listed");
    assert!(a < b, "{got}");
}

#[tokio::test]
async fn hostile_sizes_and_shapes_are_refused_quickly_and_clearly() {
    let env = Env::start().await;
    let sp = |objects: &str| env.sp(objects);
    let many = vec!["objectName: api-key\nobjectType: secret"; 1001];
    assert_eq!(
        error_of(&env, &sp(&objects(&many))).await,
        "failed to mount objects, error: objects lists 1001 objects: at most 1000 are allowed in one SecretProviderClass"
    );
    let long = format!(
        "objectName: api-key\nobjectType: secret\nobjectAlias: {}",
        "a".repeat(5000)
    );
    assert!(error_of(&env, &sp(&objects(&[&long])))
        .await
        .ends_with("file name must be at most 4096 bytes long"));
    let deep = format!(
        "objectName: api-key\nobjectType: secret\nobjectAlias: {}",
        "a/".repeat(2100) + "a"
    );
    assert!(error_of(&env, &sp(&objects(&[&deep])))
        .await
        .contains("file name must be at most 4096 bytes long"));
    // A YAML alias bomb ("billion laughs") in objects is refused, not expanded.
    let bomb = "array: &a [&b [&c [x, x, x, x, x, x, x, x], *c, *c, *c, *c, *c, *c, *c], *b, *b, *b, *b, *b, *b, *b]\nmore: [*a, *a, *a, *a, *a, *a, *a, *a, *a]";
    let e = error_of(&env, &sp(bomb)).await;
    assert!(
        e.starts_with("failed to mount objects, error: failed to yaml unmarshal objects")
            || e.contains("unmarshal failed for keyVaultObjects"),
        "{e}"
    );
    // Deep nesting in the attributes JSON.
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut req = sp(&secret("api-key")).build();
    req.attributes = nested;
    let status = env.mount(req).await.unwrap_err();
    assert!(
        status
            .message()
            .starts_with("failed to unmarshal attributes, error: "),
        "{}",
        status.message()
    );
    // A request above the provider's gRPC receive limit is refused by the transport.
    let mut req = sp(&secret("api-key")).build();
    req.secrets = format!("{{\"pad\": \"{}\"}}", "x".repeat(5 << 20));
    let status = env.mount(req).await.unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::OutOfRange,
        "{}",
        status.message()
    );
    assert!(status.message().contains("message length too large"));
    // Still serving.
    env.mount(sp(&secret("api-key")).build())
        .await
        .expect("the provider still serves");
}
