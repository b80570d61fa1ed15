//! Shared setup of the integration tests: the fakes seeded with a standard tenant and vault, the
//! real provider binary pointed at them through its public flags, and MountRequests built the way
//! the driver builds them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use akv_csi_provider::proto::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient;
use akv_csi_provider::proto::v1alpha1::{MountRequest, MountResponse};
use testkit::azure::FakeAzure;
use testkit::provider::ProviderProcess;
use testkit::seed::Seed;
use tonic::transport::Channel;

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const OTHER_TENANT: &str = "33333333-3333-3333-3333-333333333333";
pub const SP_CLIENT: &str = "11111111-1111-1111-1111-111111111111";
pub const SP_SECRET: &str = "sp-client-secret-Zq8~xY";
pub const WI_CLIENT: &str = "22222222-2222-2222-2222-222222222222";
pub const NO_ACCESS_CLIENT: &str = "44444444-4444-4444-4444-444444444444";
pub const NO_ACCESS_SECRET: &str = "no-access-secret-Pw3";
pub const VAULT: &str = "kv-test";
pub const VM_CLIENT: &str = "66666666-6666-6666-6666-666666666666";
pub const UAMI_CLIENT: &str = "77777777-7777-7777-7777-777777777777";
pub const POD_ID_CLIENT: &str = "88888888-8888-8888-8888-888888888888";
pub const IB_CLIENT: &str = "99999999-aaaa-4bbb-8ccc-dddddddddddd";
pub const IB_AUDIENCE: &str = "api://AKSIdentityBinding";
pub const WI_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Secret values of the standard seed (for assertions and leak checks).
pub const DB_PASSWORD: &str = "s3cr3t-db-password-value";
pub const DB_PASSWORD_OLD: &str = "previous-db-password-value";
pub const API_KEY: &str = "api-key-7f3a9c2e";

pub fn standard_seed() -> String {
    format!(
        r#"
tenants:
  - id: {TENANT}
    clients:
      - clientId: {SP_CLIENT}
        secret: {SP_SECRET}
      - clientId: {WI_CLIENT}
        federated:
          - subject: system:serviceaccount:default:app
      - clientId: {NO_ACCESS_CLIENT}
        secret: {NO_ACCESS_SECRET}
      - clientId: {IB_CLIENT}
        federated:
          - subject: system:serviceaccount:default:app
            audience: {IB_AUDIENCE}
  - id: {OTHER_TENANT}
    clients: []
imds:
  tenant: {TENANT}
  systemAssigned: {VM_CLIENT}
  userAssigned: [{UAMI_CLIENT}]
nmi:
  - namespace: default
    pod: app-7d9f8
    clientId: {POD_ID_CLIENT}
    tenant: {TENANT}
vaults:
  - name: {VAULT}
    tenant: {TENANT}
    access:
      - clientId: {SP_CLIENT}
        secrets: [get, list]
        keys: [get, list]
        certificates: [get, list]
      - clientId: {WI_CLIENT}
        secrets: [get, list]
        keys: [get, list]
        certificates: [get, list]
      - clientId: {VM_CLIENT}
        secrets: [get]
      - clientId: {UAMI_CLIENT}
        secrets: [get]
      - clientId: {POD_ID_CLIENT}
        secrets: [get]
      - clientId: {IB_CLIENT}
        secrets: [get]
    secrets:
      - name: db-password
        versions:
          - value: {DB_PASSWORD_OLD}
            version: 0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a
          - value: {DB_PASSWORD}
            version: 1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b
      - name: api-key
        versions:
          - value: {API_KEY}
      - name: b64
        versions:
          - value: aGVsbG8gd29ybGQ=
      - name: hex
        versions:
          - value: 68656c6c6f
      - name: disabled
        versions:
          - value: nope
            enabled: false
"#
    )
}

pub struct Env {
    pub azure: FakeAzure,
    pub provider: ProviderProcess,
    pub client: CsiDriverProviderClient<Channel>,
    /// Credential material the test made or gave the provider itself (private keys, a proxy
    /// password), for the leak checks.
    secrets: std::sync::Mutex<Vec<String>>,
}

/// Every test is a leak test: no credential or secret a test used may appear in an error the
/// provider returns ([`Env::mount`]), nor, when the environment goes away, in its logs (JSON,
/// -v=5) or its metrics.
impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.assert_clean("logs", &self.provider.logs());
        let metrics = self.metrics_now();
        let running = self
            .provider
            .pid()
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        assert!(
            metrics.contains("# EOF") || !running,
            "the metrics of a running provider could not be read (port {}): {metrics:?}",
            self.provider.metrics_port
        );
        self.assert_clean("metrics", &metrics);
    }
}

impl Env {
    /// Every secret value and credential the fakes know or served, and the test constants.
    /// A set: a load test serves the same values thousands of times.
    fn radioactive(&self) -> std::collections::BTreeSet<String> {
        let mut values: std::collections::BTreeSet<String> = [
            SP_SECRET,
            NO_ACCESS_SECRET,
            DB_PASSWORD,
            DB_PASSWORD_OLD,
            API_KEY,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        values.extend(self.azure.entra.issuer.minted());
        values.extend(self.azure.tokens.all());
        values.extend(self.azure.keyvault.served_values());
        values.extend(self.azure.kube.tokens());
        for assertion in self.azure.entra.assertions() {
            // The signature is what is unique to one assertion; the header names a certificate.
            values.extend(assertion.rsplit('.').next().map(str::to_string));
            values.insert(assertion);
        }
        for secret in self.secrets.lock().unwrap().iter() {
            // Each line of a PEM key, so a key is found however it was re-wrapped or escaped.
            values.extend(secret.lines().map(str::to_string));
        }
        values
    }

    /// The provider's last `mount` log line (JSON) for pod `pod`.
    pub fn mount_line(&self, pod: &str) -> serde_json::Value {
        self.provider
            .logs()
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["message"] == "mount" && v["pod"] == pod)
            .expect("a mount line")
    }

    /// Adds `value` (e.g. a private key PEM) to what must never reach logs, errors or metrics.
    pub fn treat_as_secret(&self, value: &str) {
        self.secrets.lock().unwrap().push(value.to_string());
    }

    fn assert_clean(&self, what: &str, text: &str) {
        for value in self.radioactive() {
            // Short values (a version number, "v1") would match unrelated text.
            if value.len() < 12 {
                continue;
            }
            let probe = if value.len() > 48 {
                &value[8..48]
            } else {
                value.as_str()
            };
            assert!(
                !text.contains(probe),
                "a secret or token reached the provider's {what}: {probe}"
            );
        }
    }

    /// `/metrics`, fetched without an async runtime (for `Drop`); empty if the provider is gone.
    fn metrics_now(&self) -> String {
        use std::io::{Read, Write};
        let Ok(mut stream) =
            std::net::TcpStream::connect(("127.0.0.1", self.provider.metrics_port))
        else {
            return String::new();
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    }
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with(&standard_seed(), &[]).await
    }

    pub async fn start_with(seed: &str, extra_args: &[&str]) -> Env {
        let azure = FakeAzure::start(Seed::from_yaml(seed).expect("seed")).await;
        let extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        Env::launch(azure, &extra).await
    }

    /// Starts the provider against already running fakes.
    pub async fn launch(azure: FakeAzure, extra_args: &[String]) -> Env {
        let mut args = azure.provider_args();
        args.extend(extra_args.iter().cloned());
        Env::launch_args(azure, args).await
    }

    /// Starts the provider with exactly `args` (to point a hop somewhere else).
    pub async fn launch_args(azure: FakeAzure, args: Vec<String>) -> Env {
        Env::launch_env(azure, args, &[]).await
    }

    /// Starts the provider as a pod of a cluster whose API server is the fake: with its
    /// environment, and the lookup of client ids in ServiceAccounts turned on.
    pub async fn start_in_cluster(seed: &str, extra_args: &[&str]) -> Env {
        let azure = FakeAzure::start(Seed::from_yaml(seed).expect("seed")).await;
        let mut args = azure.provider_args();
        args.extend(azure.kube.provider_args());
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let env: Vec<(String, String)> = azure.kube.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Env::launch_env(azure, args, &env).await
    }

    /// Starts the provider with exactly `args` and the environment variables `env`.
    pub async fn launch_env(azure: FakeAzure, args: Vec<String>, env: &[(&str, &str)]) -> Env {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let binary = env!("CARGO_BIN_EXE_akv-csi-provider").as_ref();
        let provider = ProviderProcess::start_with_env(binary, &args, &env)
            .await
            .expect("provider starts");
        let client = CsiDriverProviderClient::new(provider.channel().await.expect("connect"))
            .max_decoding_message_size(4 * 1024 * 1024);
        Env {
            azure,
            provider,
            client,
            secrets: Default::default(),
        }
    }

    /// SPC parameters for the test cloud and vault, with `objects`.
    pub fn params(&self, objects: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("keyvaultName".into(), VAULT.into()),
            ("tenantID".into(), TENANT.into()),
            ("cloudName".into(), "AzureStackCloud".into()),
            (
                "cloudEnvFileName".into(),
                self.azure.cloud_env_file().display().to_string(),
            ),
            ("objects".into(), objects.into()),
        ])
    }

    /// A workload-identity token for pod `pod` of `default/app`.
    pub fn sa_token(&self, pod: &str) -> String {
        self.app_token(pod, WI_AUDIENCE)
    }

    /// An identity-binding token (audience `api://AKSIdentityBinding`) for pod `pod` of
    /// `default/app`.
    pub fn ib_token(&self, pod: &str) -> String {
        self.app_token(pod, IB_AUDIENCE)
    }

    /// A service-account token of `default/app` for `audience`, valid for an hour.
    fn app_token(&self, pod: &str, audience: &str) -> String {
        let hour = Duration::from_secs(3600);
        let issuer = &self.azure.entra.issuer;
        issuer.token("default", "app", pod, audience, hour)
    }

    /// A request for `objects` (the YAML) as the standard service principal.
    pub fn sp(&self, objects: &str) -> Request {
        Request::new(self.params(objects)).service_principal(SP_CLIENT, SP_SECRET)
    }

    /// Mounts the objects `items` as the standard service principal.
    pub async fn mount_sp(&self, items: &[&str]) -> Result<MountResponse, tonic::Status> {
        self.mount(self.sp(&objects(items)).build()).await
    }

    pub async fn mount(&self, req: MountRequest) -> Result<MountResponse, tonic::Status> {
        let result = self.client.clone().mount(req).await.map(|r| r.into_inner());
        if let Err(status) = &result {
            self.assert_clean("errors", status.message());
        }
        result
    }
}

/// The `objects` YAML for the given per-object YAML documents.
pub fn objects(items: &[&str]) -> String {
    let mut out = String::from("array:\n");
    for item in items {
        out.push_str("  - |\n");
        for line in item.lines() {
            out.push_str("    ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A MountRequest as driver v1.6 sends it on first mount.
pub struct Request {
    pub params: BTreeMap<String, String>,
    pub pod: String,
    pub namespace: String,
    pub service_account: String,
    pub tokens: BTreeMap<String, String>,
    /// `None` sends the literal `null`.
    pub secrets: Option<BTreeMap<String, String>>,
    pub permission: String,
}

impl Request {
    pub fn new(params: BTreeMap<String, String>) -> Request {
        Request {
            params,
            pod: "app-7d9f8".into(),
            namespace: "default".into(),
            service_account: "app".into(),
            tokens: BTreeMap::new(),
            secrets: None,
            permission: "420".into(),
        }
    }

    pub fn service_principal(mut self, id: &str, secret: &str) -> Request {
        self.secrets = Some(BTreeMap::from([
            ("clientid".into(), id.into()),
            ("clientsecret".into(), secret.into()),
        ]));
        self
    }

    /// A node-publish secret with `clientid` and `clientcertificate` (PEM key and certificates).
    pub fn certificate_principal(mut self, id: &str, pem: &str) -> Request {
        self.secrets = Some(BTreeMap::from([
            ("clientid".into(), id.into()),
            ("clientcertificate".into(), pem.into()),
        ]));
        self
    }

    /// Workload identity without `clientID`: only the driver's service-account token.
    pub fn token(mut self, token: &str) -> Request {
        self.tokens.insert(WI_AUDIENCE.into(), token.into());
        self
    }

    pub fn workload_identity(mut self, client_id: &str, token: &str) -> Request {
        self.params.insert("clientID".into(), client_id.into());
        self.tokens.insert(WI_AUDIENCE.into(), token.into());
        self
    }

    /// AKS identity binding with the binding's client id and service-account token.
    pub fn identity_binding(mut self, client_id: &str, token: &str) -> Request {
        self.params
            .insert("useAzureTokenProxy".into(), "true".into());
        self.params.insert("clientID".into(), client_id.into());
        self.tokens.insert(IB_AUDIENCE.into(), token.into());
        self
    }

    pub fn param(mut self, key: &str, value: &str) -> Request {
        self.params.insert(key.into(), value.into());
        self
    }

    pub fn build(&self) -> MountRequest {
        let mut attributes = self.params.clone();
        attributes.insert("secretProviderClass".into(), "test-spc".into());
        attributes.insert("csi.storage.k8s.io/pod.name".into(), self.pod.clone());
        attributes.insert(
            "csi.storage.k8s.io/pod.namespace".into(),
            self.namespace.clone(),
        );
        attributes.insert(
            "csi.storage.k8s.io/pod.uid".into(),
            "0b1e4a5c-0000-4000-8000-000000000001".into(),
        );
        attributes.insert(
            "csi.storage.k8s.io/serviceAccount.name".into(),
            self.service_account.clone(),
        );
        attributes.insert("csi.storage.k8s.io/ephemeral".into(), "true".into());
        if !self.tokens.is_empty() {
            let tokens: serde_json::Map<String, serde_json::Value> = self
                .tokens
                .iter()
                .map(|(aud, t)| (aud.clone(), serde_json::json!({"token": t, "expirationTimestamp": "2030-01-01T00:00:00Z"})))
                .collect();
            attributes.insert(
                "csi.storage.k8s.io/serviceAccount.tokens".into(),
                serde_json::Value::Object(tokens).to_string(),
            );
        }
        MountRequest {
            attributes: serde_json::to_string(&attributes).unwrap(),
            secrets: match &self.secrets {
                None => "null".into(),
                Some(s) => serde_json::to_string(s).unwrap(),
            },
            target_path: "/var/lib/kubelet/pods/0b1e4a5c-0000-4000-8000-000000000001/volumes/kubernetes.io~csi/secrets/mount".into(),
            permission: self.permission.clone(),
            current_object_version: vec![],
        }
    }
}

/// Files of a response as (path → (mode, contents)).
pub fn files(resp: &MountResponse) -> BTreeMap<String, (i32, Vec<u8>)> {
    resp.files
        .iter()
        .map(|f| (f.path.clone(), (f.mode, f.contents.clone())))
        .collect()
}
