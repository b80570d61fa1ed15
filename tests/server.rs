//! The provider as a process: Version, gRPC health, /healthz through the socket, /metrics,
//! graceful shutdown with in-flight mounts, socket permissions and stale-socket replacement.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use akv_csi_provider::proto::v1alpha1::VersionRequest;
use common::*;
use testkit::provider::ProviderProcess;

#[tokio::test]
async fn version_health_and_healthz() {
    let env = Env::start().await;
    let v = env
        .client
        .clone()
        .version(VersionRequest {
            version: "v1alpha1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.version, "v1alpha1");
    assert_eq!(v.runtime_name, "akv-csi-provider");
    assert!(!v.runtime_version.is_empty());

    let mut health =
        tonic_health::pb::health_client::HealthClient::new(env.provider.channel().await.unwrap());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        status.into_inner().status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    assert_eq!(
        env.provider.healthz().await.unwrap(),
        (200, "ok".to_string())
    );

    let meta = std::fs::metadata(env.provider.socket()).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(
        meta.permissions().mode() & 0o077,
        0,
        "socket is private to its owner"
    );
}

#[tokio::test]
async fn metrics_have_upstream_names_and_low_cardinality_labels() {
    let env = Env::start().await;
    let objs = objects(&[
        "objectName: api-key\nobjectType: secret",
        "objectName: missing\nobjectType: secret",
    ]);
    let _ = env.mount(env.sp(&objs).build()).await;
    let text = env.provider.metrics().await.unwrap();
    for needle in [
        "keyvault_request_bucket{le=\"0.1\"",
        "grpc_request_bucket{le=\"30.0\"",
        "grpc_method=\"/v1alpha1.CSIDriverProvider/Mount\"",
        "error_class=\"object_error\"",
        "status_code=\"404\"",
        "status_code=\"401\"",
        "token_requests_total{mode=\"service_principal\",outcome=\"ok\"} 1",
        "cache_lookups_total{cache=\"token\"",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    for forbidden in ["api-key", "missing", "object_name", "not found"] {
        assert!(
            !text.contains(forbidden),
            "metrics must not carry {forbidden:?}"
        );
    }
}

#[tokio::test]
async fn one_structured_log_line_per_mount() {
    let env = Env::start().await;
    let objs = objects(&[
        "objectName: api-key\nobjectType: secret",
        "objectName: db-password\nobjectType: secret",
    ]);
    env.mount(env.sp(&objs).build()).await.unwrap();
    let _ = env
        .mount(Request::new(env.params(&objs)).build())
        .await
        .unwrap_err();
    let lines: Vec<serde_json::Value> = env
        .provider
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["message"] == "mount" || v["message"] == "mount failed")
        .collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let ok = &lines[0];
    assert_eq!(
        (
            ok["pod"].as_str(),
            ok["namespace"].as_str(),
            ok["spc"].as_str()
        ),
        (Some("app-7d9f8"), Some("default"), Some("test-spc"))
    );
    assert_eq!(
        (
            ok["objects"].as_u64(),
            ok["files"].as_u64(),
            ok["outcome"].as_str()
        ),
        (Some(2), Some(2), Some("ok"))
    );
    assert!(ok["duration_ms"].is_u64() && ok["identity"] == "service_principal");
    let failed = &lines[1];
    assert_eq!(failed["outcome"], "invalid_request");
    assert_eq!(
        (failed["pod"].as_str(), failed["namespace"].as_str()),
        (Some("app-7d9f8"), Some("default"))
    );
    assert!(failed["error"]
        .as_str()
        .unwrap()
        .contains("nodePublishSecretRef secret is not set"));
    // At -v=5, as the Go provider's interceptor: one request and one response line per RPC, the
    // response with its gRPC code and message.
    let rpc: Vec<serde_json::Value> = env
        .provider
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| {
            v["method"] == "/v1alpha1.CSIDriverProvider/Mount"
                && (v["message"] == "request" || v["message"] == "response")
        })
        .collect();
    let shape: Vec<(&str, &str)> = rpc
        .iter()
        .map(|v| {
            (
                v["message"].as_str().unwrap(),
                v["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("request", ""),
            ("response", "Ok"),
            ("request", ""),
            ("response", "Unknown")
        ],
        "{rpc:#?}"
    );
    assert!(rpc[3]["status_message"]
        .as_str()
        .unwrap()
        .contains("nodePublishSecretRef secret is not set"));
    assert!(rpc[1]["duration"].is_string() && rpc[0]["deadline"].is_string());
}

#[tokio::test]
async fn sigterm_lets_in_flight_mounts_finish() {
    let mut env = Env::start().await;
    env.azure
        .keyvault
        .faults
        .set_latency(Duration::from_millis(2000));
    let req = env.sp(&objects(&["objectName: api-key\nobjectType: secret"]));
    let mut client = env.client.clone();
    let in_flight = tokio::spawn(async move { client.mount(req.build()).await });
    // Terminate once the mount is certainly in flight (its challenge answered, its GET waiting).
    while env.azure.keyvault.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.provider.terminate();
    let resp = in_flight.await.unwrap().expect("in-flight mount completes");
    assert_eq!(resp.into_inner().files.len(), 1);
    let status = tokio::time::timeout(Duration::from_secs(10), env.provider.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(!env.provider.socket().exists(), "socket removed on exit");
    assert!(env.provider.logs().contains("shutting down"));
}

#[tokio::test]
async fn stale_socket_is_replaced_but_other_files_are_not() {
    let binary = env!("CARGO_BIN_EXE_akv-csi-provider");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("azure.sock");
    // A socket left behind by a crashed provider.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let process = ProviderProcess::start_at(binary.as_ref(), dir, socket.clone(), &[])
        .await
        .expect("starts over a stale socket");
    let mut client =
        akv_csi_provider::proto::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient::new(
            process.channel().await.unwrap(),
        );
    client
        .version(VersionRequest::default())
        .await
        .expect("answers on the replaced socket");
    drop(process);

    // Anything that is not a socket is left alone and reported.
    let other = tempfile::tempdir().unwrap();
    let file = other.path().join("azure.sock");
    std::fs::write(&file, "keep me").unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(binary)
            .args([
                &format!("--endpoint=unix://{}", file.display()),
                "--healthz-port=0",
                "--prometheus-port=0",
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("exits promptly")
    .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a socket"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[tokio::test]
async fn version_flag_and_bad_flags() {
    let binary = env!("CARGO_BIN_EXE_akv-csi-provider");
    let out = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    // The Go provider's fields: version and build date (`date +%Y-%m-%d-%H:%M`).
    let date = json["buildDate"].as_str().unwrap();
    assert!(
        date.len() == 16 && date.as_bytes()[10] == b'-' && date.as_bytes()[13] == b':',
        "{date}"
    );
    let out = std::process::Command::new(binary)
        .args([
            "--endpoint=tcp://127.0.0.1:0",
            "--healthz-port=0",
            "--prometheus-port=0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TCP endpoints are not supported"));
    let out = std::process::Command::new(binary)
        .args([
            "--cloud-name=Mars",
            "--healthz-port=0",
            "--prometheus-port=0",
            "--endpoint=unix:///nonexistent-dir/x.sock",
        ])
        .output()
        .unwrap();
    // Fails on the flag before binding anything.
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cloud-name"));
    let out = std::process::Command::new(binary)
        .args(["--metrics-backend=statsd", "--healthz-port=0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported metrics backend statsd"));
}
