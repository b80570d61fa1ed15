//! Mounting secrets end to end through the provider's socket: identities, versions, aliases,
//! encodings, file modes, and the Key Vault challenge.

mod common;

use common::*;

#[tokio::test]
async fn service_principal_mounts_latest_secret() {
    let env = Env::start().await;
    let req = Request::new(env.params(&objects(&["objectName: db-password\nobjectType: secret"])))
        .service_principal(SP_CLIENT, SP_SECRET);
    let resp = env.mount(req.build()).await.expect("mount succeeds");
    let files = files(&resp);
    assert_eq!(
        files["db-password"],
        (0o644, DB_PASSWORD.as_bytes().to_vec())
    );
    assert_eq!(resp.object_version.len(), 1);
    assert_eq!(resp.object_version[0].id, "secret/db-password");
    assert_eq!(
        resp.object_version[0].version,
        "1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b"
    );
}
