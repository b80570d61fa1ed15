//! `akv-csi-provider mount`: performs a real mount from a workstation, the way the driver would
//! ask for it, and writes the files into a directory. With `--dry-run` it prints the plan (vault,
//! identity, files and modes) without any network call. For trying a SecretProviderClass before
//! deploying it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::manifest;
use super::CliError;
use crate::provider::Provider;
use crate::request::{self, auth, keys, Parsed, RequestDefaults};
use crate::spec::{FileRole, MountSpec};

/// What the person running the command supplied.
#[derive(Debug, Clone, Default)]
pub struct LocalMount {
    pub spc_file: PathBuf,
    /// Which SecretProviderClass of the file, when it holds several.
    pub spc_name: Option<String>,
    pub pod_namespace: String,
    pub pod_name: String,
    pub service_account: String,
    /// Service principal: client id plus a file holding the secret or the certificate and key.
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub client_certificate_file: Option<PathBuf>,
    /// A service-account token (audience `api://AzureADTokenExchange`) for workload identity.
    pub sa_token_file: Option<PathBuf>,
    /// A service-account token (audience `api://AKSIdentityBinding`) for identity binding.
    pub identity_binding_token_file: Option<PathBuf>,
    pub out: PathBuf,
}

fn read_trimmed(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| CliError::Read {
            path: path.display().to_string(),
            source,
        })
}

impl LocalMount {
    /// The mount the driver would ask for, parsed as the server parses it.
    async fn spec(&self, defaults: &RequestDefaults) -> Result<MountSpec, CliError> {
        let (attributes, secrets) = self.envelope()?;
        match request::parse(&attributes, &secrets, "420", defaults).await? {
            Parsed::Ready(spec) => Ok(spec),
            Parsed::Pending(_) => Err(CliError::Usage(
                "mount does not read ServiceAccounts: set clientID in the SecretProviderClass"
                    .into(),
            )),
        }
    }

    /// The attributes and secrets JSON the driver would send for this SecretProviderClass.
    fn envelope(&self) -> Result<(String, String), CliError> {
        let shown = self.spc_file.display();
        let documents = manifest::documents(&read_trimmed(&self.spc_file)?)?;
        let resources = manifest::resources(&documents);
        let found = manifest::secret_provider_classes(&resources);
        let spc = match &self.spc_name {
            Some(name) => found.into_iter().find(|s| s.resource.name == name),
            None if found.len() > 1 => {
                return Err(CliError::Usage(format!(
                    "{shown} holds several azure SecretProviderClasses: choose one with --spc-name"
                )))
            }
            None => found.into_iter().next(),
        }
        .ok_or_else(|| CliError::Usage(format!("no azure SecretProviderClass found in {shown}")))?;
        let (mut attributes, others) = spc.string_parameters();
        if let Some((key, _)) = others.first() {
            return Err(CliError::Usage(format!(
                "{shown}: parameter {key} is not a string: quote its value"
            )));
        }
        attributes.insert(keys::SPC_NAME.into(), spc.resource.name.to_string());
        attributes.insert(keys::POD_NAME.into(), self.pod_name.clone());
        attributes.insert(keys::POD_NAMESPACE.into(), self.pod_namespace.clone());
        attributes.insert(keys::SERVICE_ACCOUNT.into(), self.service_account.clone());
        let tokens = self.tokens()?;
        if !tokens.is_empty() {
            attributes.insert(
                keys::SA_TOKENS.into(),
                serde_json::to_string(&tokens).expect("JSON map"),
            );
        }
        let secrets = match (
            &self.client_id,
            &self.client_secret_file,
            &self.client_certificate_file,
        ) {
            (Some(id), Some(file), None) => {
                serde_json::json!({ "clientid": id, "clientsecret": read_trimmed(file)? })
                    .to_string()
            }
            (Some(id), None, Some(file)) => {
                serde_json::json!({ "clientid": id, "clientcertificate": read_trimmed(file)? })
                    .to_string()
            }
            (None, None, None) => "null".to_string(),
            _ => return Err(CliError::Usage(
                "--client-id goes with one of --client-secret-file and --client-certificate-file"
                    .into(),
            )),
        };
        Ok((
            serde_json::to_string(&attributes).expect("string map"),
            secrets,
        ))
    }

    /// The service-account tokens given, by audience, as the driver sends them.
    fn tokens(&self) -> Result<BTreeMap<&'static str, serde_json::Value>, CliError> {
        let mut tokens = BTreeMap::new();
        for (file, audience) in [
            (&self.sa_token_file, auth::WORKLOAD_IDENTITY_AUDIENCE),
            (
                &self.identity_binding_token_file,
                auth::IDENTITY_BINDING_AUDIENCE,
            ),
        ] {
            if let Some(file) = file {
                tokens.insert(
                    audience,
                    serde_json::json!({ "token": read_trimmed(file)?, "expirationTimestamp": "" }),
                );
            }
        }
        Ok(tokens)
    }

    /// Describes what a mount would do, without network calls; `separate_files` is
    /// `--write-cert-and-key-in-separate-files`.
    pub async fn plan(
        &self,
        defaults: &RequestDefaults,
        separate_files: bool,
    ) -> Result<String, CliError> {
        let spec = self.spec(defaults).await?;
        let mut out = format!(
            "vault:    https://{}.{}/ ({})\ntenant:   {}\nidentity: {}\nfiles:\n",
            spec.vault_name,
            spec.cloud.key_vault_dns_suffix,
            spec.cloud.name,
            spec.tenant_id,
            spec.credential.describe()
        );
        for o in &spec.objects {
            let version = o.version.as_deref().unwrap_or("latest");
            let mut notes = match o.has_history() {
                true => format!("newest {} enabled versions from {version}", o.history),
                false => version.to_string(),
            };
            if let Some(vault) = &o.vault {
                notes.push_str(&format!(", vault {vault}"));
            }
            if o.optional {
                notes.push_str(", optional");
            }
            let files = o.slots().into_iter().flat_map(|slot| o.files(slot));
            for file in files.filter(|f| separate_files || !f.is_conditional()) {
                let mode = file.mode.unwrap_or(spec.default_mode);
                let what = match file.role {
                    FileRole::Json(i) => format!(" at {}", o.json[i].path.as_str()),
                    _ if file.is_conditional() => " if certificate-backed".into(),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "  {}  {mode:04o}  {} {}{what} ({notes})",
                    file.path,
                    o.object_type.as_str(),
                    o.name
                );
            }
        }
        Ok(out)
    }

    /// Mounts for real and writes the files under `out`; returns a listing (never contents).
    pub async fn run(
        &self,
        provider: &Provider,
        defaults: &RequestDefaults,
    ) -> Result<String, CliError> {
        let spec = self.spec(defaults).await?;
        let mounted = provider.mount(&spec).await?;
        let mut listing = String::new();
        for file in &mounted.files {
            let path = self.out.join(&file.path);
            write_file(&path, &file.contents, file.mode)
                .await
                .map_err(|source| CliError::Write {
                    path: path.display().to_string(),
                    source,
                })?;
            let _ = writeln!(
                listing,
                "{}  {:04o}  {} bytes  {} {}",
                path.display(),
                file.mode,
                file.contents.len(),
                file.uid,
                file.version
            );
        }
        for k in &mounted.skipped {
            let _ = writeln!(listing, "skipped optional {} ({})", k.uid, k.reason);
        }
        Ok(listing)
    }
}

async fn write_file(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    tokio::fs::write(path, contents).await?;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).await
}
