//! `akv-csi-provider mount`: performs a real mount from a workstation, the way the driver would
//! ask for it, and writes the files into a directory. With `--dry-run` it prints the plan (vault,
//! identity, files and modes) without any network call. For trying a SecretProviderClass before
//! deploying it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::provider::Provider;
use crate::request::{self, auth, keys, Credential, RequestDefaults};

/// What the person running the command supplied.
#[derive(Debug, Clone, Default)]
pub struct LocalMount {
    pub spc_file: PathBuf,
    /// Which SecretProviderClass of the file, when it holds several.
    pub spc_name: Option<String>,
    pub pod_namespace: String,
    pub pod_name: String,
    pub service_account: String,
    /// Service principal: client id plus a file holding the secret.
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// A service-account token (audience `api://AzureADTokenExchange`) for workload identity.
    pub sa_token_file: Option<PathBuf>,
    /// A service-account token (audience `api://AKSIdentityBinding`) for identity binding.
    pub identity_binding_token_file: Option<PathBuf>,
    pub out: PathBuf,
}

#[derive(Deserialize)]
struct Spc {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: SpcSpec,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize, Default)]
struct SpcSpec {
    #[serde(default)]
    provider: String,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
}

/// The three JSON strings of a MountRequest.
pub struct Envelope {
    pub attributes: String,
    pub secrets: String,
    pub permission: String,
}

fn read_trimmed(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

impl LocalMount {
    /// Builds the request the driver would send for this SecretProviderClass and pod.
    pub fn envelope(&self) -> Result<Envelope, String> {
        let text = read_trimmed(&self.spc_file)?;
        let mut found = Vec::new();
        for document in yaml_serde::Deserializer::from_str(&text) {
            let Ok(spc) = Spc::deserialize(document) else {
                continue;
            };
            if spc.kind == "SecretProviderClass" && spc.spec.provider == "azure" {
                found.push(spc);
            }
        }
        let spc = match &self.spc_name {
            Some(name) => found.into_iter().find(|s| &s.metadata.name == name),
            None if found.len() > 1 => {
                return Err(format!(
                    "{} holds several azure SecretProviderClasses: choose one with --spc-name",
                    self.spc_file.display()
                ))
            }
            None => found.into_iter().next(),
        }
        .ok_or_else(|| {
            format!(
                "no azure SecretProviderClass found in {}",
                self.spc_file.display()
            )
        })?;

        let mut attributes = spc.spec.parameters;
        attributes.insert(keys::SPC_NAME.into(), spc.metadata.name);
        attributes.insert(keys::POD_NAME.into(), self.pod_name.clone());
        attributes.insert(keys::POD_NAMESPACE.into(), self.pod_namespace.clone());
        attributes.insert(keys::SERVICE_ACCOUNT.into(), self.service_account.clone());
        let mut tokens = serde_json::Map::new();
        for (file, audience) in [
            (&self.sa_token_file, auth::WORKLOAD_IDENTITY_AUDIENCE),
            (
                &self.identity_binding_token_file,
                auth::IDENTITY_BINDING_AUDIENCE,
            ),
        ] {
            if let Some(file) = file {
                tokens.insert(
                    audience.into(),
                    serde_json::json!({ "token": read_trimmed(file)?, "expirationTimestamp": "" }),
                );
            }
        }
        if !tokens.is_empty() {
            attributes.insert(
                keys::SA_TOKENS.into(),
                serde_json::Value::Object(tokens).to_string(),
            );
        }
        let secrets = match (&self.client_id, &self.client_secret_file) {
            (Some(id), Some(file)) => {
                serde_json::json!({ "clientid": id, "clientsecret": read_trimmed(file)? })
                    .to_string()
            }
            (None, None) => "null".to_string(),
            _ => return Err("--client-id and --client-secret-file go together".into()),
        };
        Ok(Envelope {
            attributes: serde_json::to_string(&attributes).expect("string map"),
            secrets,
            permission: "420".into(),
        })
    }

    /// Describes what a mount would do, without network calls.
    pub async fn plan(&self, defaults: &RequestDefaults) -> Result<String, String> {
        let env = self.envelope()?;
        let spec = request::parse(&env.attributes, &env.secrets, &env.permission, defaults)
            .await
            .map_err(|e| e.to_string())?;
        let identity = match &spec.credential {
            Credential::WorkloadIdentity { client_id, .. } => {
                format!("workload identity, client id {client_id}")
            }
            Credential::ServicePrincipal { client_id, .. } => {
                format!("service principal, client id {client_id}")
            }
            Credential::PodIdentity { namespace, name } => {
                format!("pod identity (NMI) for {namespace}/{name}")
            }
            Credential::VmManagedIdentity {
                client_id: Some(id),
            } => format!("VM managed identity, client id {id}"),
            Credential::VmManagedIdentity { client_id: None } => {
                "VM system-assigned managed identity".into()
            }
            Credential::IdentityBinding { client_id, .. } => {
                format!("identity binding, client id {client_id}")
            }
        };
        let mut out = format!(
            "vault:    https://{}.{}/ ({})\ntenant:   {}\nidentity: {identity}\nfiles:\n",
            spec.vault_name, spec.cloud.key_vault_dns_suffix, spec.cloud.name, spec.tenant_id
        );
        for o in &spec.objects {
            let mode = o.file_mode.unwrap_or(spec.default_mode);
            let version = o.version.as_deref().unwrap_or("latest");
            let layout = |file: &str| match o.history {
                0 | 1 => file.to_string(),
                n => format!("{file}/0 … {file}/{}", n - 1),
            };
            let versions = match o.history {
                0 | 1 => version.to_string(),
                n => format!("newest {n} enabled versions from {version}"),
            };
            let mut notes = String::new();
            if let Some(vault) = &o.vault {
                notes.push_str(&format!(", vault {vault}"));
            }
            if o.optional {
                notes.push_str(", optional");
            }
            if o.writes_whole() {
                out.push_str(&format!(
                    "  {}  {mode:04o}  {} {} ({versions}{notes})\n",
                    layout(&o.file_name),
                    o.object_type.as_str(),
                    o.name
                ));
            }
            for j in &o.json {
                out.push_str(&format!(
                    "  {}  {:04o}  {} {} at {} ({versions}{notes})\n",
                    layout(&j.file_name),
                    j.file_mode.unwrap_or(mode),
                    o.object_type.as_str(),
                    o.name,
                    j.path.as_str()
                ));
            }
        }
        Ok(out)
    }

    /// Mounts for real and writes the files under `out`; returns a listing (never contents).
    pub async fn run(&self, provider: &Provider) -> Result<String, String> {
        let env = self.envelope()?;
        let mounted = provider
            .mount(&env.attributes, &env.secrets, &env.permission)
            .await
            .map_err(|e| e.to_string())?;
        let mut listing = String::new();
        for file in &mounted.files {
            let path = self.out.join(&file.path);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            tokio::fs::write(&path, &file.contents)
                .await
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode))
                .await
                .map_err(|e| format!("cannot chmod {}: {e}", path.display()))?;
            listing.push_str(&format!(
                "{}  {:04o}  {} bytes  {} {}\n",
                path.display(),
                file.mode,
                file.contents.len(),
                file.uid,
                file.version
            ));
        }
        for k in &mounted.skipped {
            listing.push_str(&format!("skipped optional {} ({})\n", k.uid, k.reason));
        }
        Ok(listing)
    }
}
