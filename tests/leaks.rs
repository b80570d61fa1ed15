//! No secret value, client secret, service-account token or access token may appear in any log
//! line (captured at -v=5 as JSON), in /metrics, or in any error returned to the driver.

mod common;

use common::*;
use testkit::fault::{Fault, RetryAfter};

#[tokio::test]
async fn no_credential_or_secret_reaches_logs_metrics_or_errors() {
    let env = Env::start().await;
    let mut errors = Vec::new();
    let mut sa_tokens = Vec::new();
    let all = objects(&[
        "objectName: db-password\nobjectType: secret",
        "objectName: api-key\nobjectType: secret\nobjectEncoding: utf-8",
        "objectName: b64\nobjectType: secret\nobjectEncoding: base64",
        "objectName: db-password\nobjectType: secret\nobjectVersionHistory: 2\nobjectAlias: hist",
    ]);
    // Successes with both identities.
    env.mount(env.sp(&all).build()).await.unwrap();
    let token = env.sa_token("leak-1");
    sa_tokens.push(token.clone());
    env.mount(
        Request::new(env.params(&all))
            .workload_identity(WI_CLIENT, &token)
            .build(),
    )
    .await
    .unwrap();

    // Failures of every kind, each with credential material in the request.
    let forged = format!("{}tampered", env.sa_token("leak-2"));
    sa_tokens.push(forged.clone());
    let failing = vec![
        Request::new(env.params(&all)).service_principal(SP_CLIENT, "wrong-secret-value-XYZ"),
        Request::new(env.params(&all)).service_principal(NO_ACCESS_CLIENT, NO_ACCESS_SECRET),
        Request::new(env.params(&all)).workload_identity(WI_CLIENT, &forged),
        env.sp(&objects(&[
            "objectName: api-key\nobjectType: secret\nobjectEncoding: hex",
        ])),
        env.sp(&objects(&["objectName: missing\nobjectType: secret"])),
        env.sp("array: ["),
    ];
    for req in &failing {
        errors.push(
            env.mount(req.build())
                .await
                .unwrap_err()
                .message()
                .to_string(),
        );
    }
    // Malformed JSON around the secrets themselves.
    let mut broken = env.sp(&all).build();
    broken.secrets = format!("{{\"clientid\":\"{SP_CLIENT}\",\"clientsecret\":{SP_SECRET}}}");
    errors.push(env.mount(broken).await.unwrap_err().message().to_string());
    let mut broken = Request::new(env.params(&all))
        .workload_identity(WI_CLIENT, &token)
        .build();
    broken.attributes = broken.attributes.replace(
        &format!("\\\"token\\\":\\\"{token}\\\""),
        &format!("\\\"token\\\":{token}"),
    );
    errors.push(env.mount(broken).await.unwrap_err().message().to_string());
    // Throttling and faults on the way.
    env.azure
        .keyvault
        .faults
        .inject(None, 2, Fault::throttle(RetryAfter::Millis(10)));
    env.azure.entra.faults.inject(None, 1, Fault::status(503));
    let _ = env
        .mount(
            Request::new(env.params(&all))
                .service_principal(SP_CLIENT, "another-wrong-secret")
                .build(),
        )
        .await;

    let logs = env.provider.logs();
    let metrics = env.provider.metrics().await.unwrap();
    assert!(
        logs.lines().count() > 10,
        "logs were captured at -v=5:\n{logs}"
    );
    assert!(logs.contains("\"level\":\"TRACE\"") || logs.contains("\"level\":\"DEBUG\""));

    let mut radioactive: Vec<String> = vec![
        SP_SECRET.into(),
        NO_ACCESS_SECRET.into(),
        "wrong-secret-value-XYZ".into(),
        "another-wrong-secret".into(),
        DB_PASSWORD.into(),
        DB_PASSWORD_OLD.into(),
        API_KEY.into(),
        "hello world".into(),
    ];
    radioactive.extend(sa_tokens);
    radioactive.extend(env.azure.tokens.all());
    radioactive.extend(env.azure.keyvault.served_values());
    assert!(
        env.azure.tokens.all().len() >= 2,
        "access tokens were issued"
    );
    for value in &radioactive {
        // Tokens are long: a distinctive middle part is enough to catch a leak.
        let probe: String = if value.len() > 40 {
            value[10..40].to_string()
        } else {
            value.clone()
        };
        assert!(!logs.contains(&probe), "leak in logs: {probe}");
        assert!(!metrics.contains(&probe), "leak in metrics: {probe}");
        for e in &errors {
            assert!(!e.contains(&probe), "leak in error {e:?}: {probe}");
        }
    }
}
