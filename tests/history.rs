//! `objectVersionHistory`: the newest enabled versions, listed across `nextLink` pages, written
//! as `<file>/<i>` with ids `<type>/<name>/<i>`, starting at `objectVersion` when given.

mod common;

use common::*;

/// 30 versions (two listing pages), every 7th disabled, created out of order.
fn history_seed() -> String {
    let mut versions = String::new();
    for i in 0..30 {
        // Creation times shuffled relative to the list order.
        let created = 1_700_000_000 + ((i * 17) % 30) * 100;
        versions.push_str(&format!(
            "          - value: v{i}\n            version: {:032x}\n            created: {created}\n            enabled: {}\n",
            i + 1,
            i % 7 != 3
        ));
    }
    let base = standard_seed();
    let marker = "    secrets:\n";
    let at = base.find(marker).unwrap() + marker.len();
    format!(
        "{}      - name: rotating\n        versions:\n{versions}{}",
        &base[..at],
        &base[at..]
    )
}

/// Expected values, newest enabled first.
fn newest_enabled() -> Vec<(String, String)> {
    let mut v: Vec<(i64, String, String)> = (0..30)
        .filter(|i| i % 7 != 3)
        .map(|i| {
            (
                1_700_000_000 + ((i * 17) % 30) * 100,
                format!("v{i}"),
                format!("{:032x}", i + 1),
            )
        })
        .collect();
    v.sort_by_key(|(created, _, _)| std::cmp::Reverse(*created));
    v.into_iter()
        .map(|(_, value, version)| (value, version))
        .collect()
}

#[tokio::test]
async fn newest_enabled_versions_across_pages() {
    let env = Env::start_with(&history_seed(), &[]).await;
    let objs = objects(&["objectName: rotating\nobjectType: secret\nobjectVersionHistory: 5\nobjectAlias: app/rotating"]);
    let resp = env.mount(env.sp(&objs).build()).await.expect("mount");
    let want = newest_enabled();
    assert_eq!(resp.files.len(), 5);
    for (i, (file, version)) in resp.files.iter().zip(&resp.object_version).enumerate() {
        assert_eq!(file.path, format!("app/rotating/{i}"));
        assert_eq!(file.contents, want[i].0.as_bytes());
        assert_eq!(
            (version.id.as_str(), version.version.as_str()),
            (format!("secret/rotating/{i}").as_str(), want[i].1.as_str())
        );
    }
    let listings = env
        .azure
        .keyvault
        .requests()
        .iter()
        .filter(|r| r.route == "secret_versions" && r.status == 200)
        .count();
    assert_eq!(listings, 2, "followed nextLink to the second page");
}

#[tokio::test]
async fn start_version_fewer_versions_and_missing_version() {
    let env = Env::start_with(&history_seed(), &[]).await;
    let want = newest_enabled();
    let start = &want[20].1;
    let objs = objects(&[&format!("objectName: rotating\nobjectType: secret\nobjectVersionHistory: 10\nobjectVersion: {start}")]);
    let resp = env.mount(env.sp(&objs).build()).await.unwrap();
    assert_eq!(
        resp.files.len(),
        want.len() - 20,
        "fewer versions than asked: all that exist"
    );
    assert_eq!(resp.files[0].contents, want[20].0.as_bytes());

    let objs = objects(&[
        "objectName: rotating\nobjectType: secret\nobjectVersionHistory: 3\nobjectVersion: latest",
    ]);
    let resp = env.mount(env.sp(&objs).build()).await.unwrap();
    assert_eq!(resp.files[0].contents, want[0].0.as_bytes());

    // A disabled or unknown starting version is an error naming it (upstream wrote nothing).
    let disabled = format!("{:032x}", 3 + 1);
    let objs = objects(&[&format!("objectName: rotating\nobjectType: secret\nobjectVersionHistory: 2\nobjectVersion: {disabled}")]);
    let err = env.mount(env.sp(&objs).build()).await.unwrap_err();
    assert!(
        err.message().contains(&format!(
            "objectVersion {disabled} is not among the enabled versions of this object"
        )),
        "{}",
        err.message()
    );

    // Listing needs the "list" permission; the error names it.
    let denied = Request::new(env.params(&objects(&[
        "objectName: rotating\nobjectType: secret\nobjectVersionHistory: 2",
    ])))
    .service_principal(NO_ACCESS_CLIENT, NO_ACCESS_SECRET);
    let err = env.mount(denied.build()).await.unwrap_err();
    assert!(
        err.message().contains("the \"list\" permission on secrets"),
        "{}",
        err.message()
    );
}
