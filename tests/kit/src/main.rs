//! `testkit`: runs the fake Azure endpoints standalone (`serve`), or the whole demo (`demo`):
//! fakes, the real provider binary, and one mount through its socket as the CSI driver makes it,
//! printing the files written and the Kubernetes Secret the driver would sync.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use clap::{Parser, Subcommand};
use testkit::azure::FakeAzure;
use testkit::driver::{self, Caller, SecretObject, Volume};
use testkit::provider::ProviderProcess;
use testkit::seed::Seed;

const DEMO_SEED: &str = include_str!("../seeds/demo.yaml");
const DEMO_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const DEMO_CLIENT: &str = "5d0c2a1e-6a0b-4f5e-9c8a-0d5f9e7b1a01";

#[derive(Parser)]
#[command(
    name = "testkit",
    about = "Fake Azure endpoints and a CSI driver emulator for akv-csi-provider"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run fake Entra ID and Key Vault until interrupted, and print the provider flags to use.
    Serve {
        /// Fixtures (YAML); the demo seed by default.
        #[arg(long)]
        seed: Option<PathBuf>,
    },
    /// Measure the provider against the fakes (use a release build) and print the figures.
    Bench {
        /// The provider binary.
        #[arg(long)]
        provider: PathBuf,
        /// Run only these parts (P1, P2, P3, P4); all by default.
        #[arg(long = "only", value_name = "PART")]
        only: Vec<String>,
    },
    /// Start the fakes and the provider, mount once as the driver would, print the result.
    Demo {
        /// The provider binary.
        #[arg(long)]
        provider: PathBuf,
        /// Where to write the mounted files (a temporary directory by default).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        Command::Serve { seed } => serve(seed).await,
        Command::Demo { provider, out } => demo(provider, out).await,
        Command::Bench { provider, only } => {
            testkit::bench::run(&provider, &only).await;
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn load_seed(path: Option<PathBuf>) -> Result<Seed, String> {
    match path {
        Some(p) => Seed::from_file(&p),
        None => Seed::from_yaml(DEMO_SEED),
    }
}

async fn serve(seed: Option<PathBuf>) -> Result<(), String> {
    let azure = FakeAzure::start(load_seed(seed)?).await;
    println!(
        "fake Entra ID on {}, fake Key Vault on {}",
        azure.entra_addr(),
        azure.keyvault_addr()
    );
    println!(
        "cloud env file (cloudName: AzureStackCloud, cloudEnvFileName): {}",
        azure.cloud_env_file().display()
    );
    println!(
        "run the provider with:\n  akv-csi-provider {}",
        azure.provider_args().join(" ")
    );
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    Ok(())
}

async fn demo(provider: PathBuf, out: Option<PathBuf>) -> Result<(), String> {
    let azure = FakeAzure::start(load_seed(None)?).await;
    let process = ProviderProcess::start(&provider, &azure.provider_args())
        .await
        .map_err(|e| format!("starting {}: {e}", provider.display()))?;
    println!("provider listening on {}", process.socket().display());

    let objects = "array:\n  - |\n    objectName: redis-password\n    objectType: secret\n    filePermission: \"0600\"\n  - |\n    objectName: api-key\n    objectType: secret\n    objectAlias: config/api-key\n  - |\n    objectName: banner\n    objectType: secret\n    objectEncoding: base64\n";
    let parameters = BTreeMap::from([
        ("keyvaultName".to_string(), "kv-demo".to_string()),
        ("tenantID".to_string(), DEMO_TENANT.to_string()),
        ("clientID".to_string(), DEMO_CLIENT.to_string()),
        ("cloudName".to_string(), "AzureStackCloud".to_string()),
        (
            "cloudEnvFileName".to_string(),
            azure.cloud_env_file().display().to_string(),
        ),
        ("objects".to_string(), objects.to_string()),
    ]);
    let mut volume = Volume::new("demo-secrets", parameters.clone());
    volume.service_account = "demo".into();
    volume.tokens.insert(
        "api://AzureADTokenExchange".into(),
        azure.entra.issuer.token(
            "default",
            "demo",
            &volume.pod_name,
            "api://AzureADTokenExchange",
            std::time::Duration::from_secs(3600),
        ),
    );
    println!(
        "\nSecretProviderClass demo-secrets (workload identity, client {DEMO_CLIENT}):\n{}",
        indent(objects)
    );

    let mut client =
        akv_csi_provider::proto::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient::new(
            process.channel().await.map_err(|e| e.to_string())?,
        );
    let response = client
        .mount(volume.request(Caller::DriverV16))
        .await
        .map_err(|e| e.message().to_string())?
        .into_inner();
    driver::validate(&response).map_err(|e| e.to_string())?;

    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let target = out.unwrap_or_else(|| temp.path().join("mount"));
    driver::write_atomic(&target, &response).map_err(|e| e.to_string())?;
    let files = driver::mounted_files(&target).map_err(|e| e.to_string())?;
    println!(
        "files written to {} (as the driver writes them):",
        target.display()
    );
    for (path, (mode, bytes)) in &files {
        println!(
            "  {path:<22} {mode:04o}  {}",
            String::from_utf8_lossy(bytes)
        );
    }
    println!("object versions:");
    for v in &response.object_version {
        println!("  {:<24} {}", v.id, v.version);
    }

    let secret_object = SecretObject {
        secret_name: "redis".into(),
        kind: "Opaque".into(),
        data: vec![
            ("redis-password".into(), "password".into()),
            ("config/api-key".into(), "api-key".into()),
        ],
    };
    let data = driver::secret_data(&secret_object, &files).map_err(|e| e.to_string())?;
    println!("\nsynced Kubernetes Secret (secretObjects):\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {}\n  labels:\n    secrets-store.csi.k8s.io/managed: \"true\"\ntype: {}\ndata:", secret_object.secret_name, secret_object.kind);
    for (key, value) in &data {
        println!(
            "  {key}: {}",
            base64::engine::general_purpose::STANDARD.encode(value)
        );
    }

    println!(
        "\nfirst mount: {} token request(s), {} Key Vault request(s) (one 401 challenge, then the objects in parallel)",
        azure.entra.request_count(),
        azure.keyvault.requests().len()
    );
    // The driver calls again on rotation: same pod, same token, within the cache window.
    let (tokens, requests) = (azure.entra.request_count(), azure.keyvault.requests().len());
    client
        .mount(volume.request(Caller::DriverV16))
        .await
        .map_err(|e| e.message().to_string())?;
    println!(
        "rotation poll of the same pod: {} token request(s), {} Key Vault request(s) (token and objects reused)",
        azure.entra.request_count() - tokens,
        azure.keyvault.requests().len() - requests
    );
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
