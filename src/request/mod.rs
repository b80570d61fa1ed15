//! Turns the driver's `MountRequest` (JSON strings) into a typed [`MountSpec`]: pod, identity,
//! cloud, vault and objects, with every check of the Go provider in its order and with its texts.
//!
//! Nothing here performs network I/O; the only file read is an AzureStackCloud environment file.
//! A mount whose client id is to come from the pod's ServiceAccount is parsed into a [`Pending`]
//! mount, which the caller completes with what the ServiceAccount says.

pub mod auth;
pub mod objects;
pub mod path;
mod pending;
pub mod placeholder;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cloud::{self, Cloud, CloudError, CloudName};
use crate::go;
use crate::secret::describe_json_error;
use crate::spec::{MountSpec, ObjectSpec, PodInfo};
pub use auth::{AuthError, Mode};
pub use objects::ObjectsError;
pub use pending::{Parsed, Pending};

/// Attribute keys the kubelet and the driver add to the SPC parameters.
pub mod keys {
    pub const POD_NAME: &str = "csi.storage.k8s.io/pod.name";
    pub const POD_NAMESPACE: &str = "csi.storage.k8s.io/pod.namespace";
    pub const POD_UID: &str = "csi.storage.k8s.io/pod.uid";
    pub const SERVICE_ACCOUNT: &str = "csi.storage.k8s.io/serviceAccount.name";
    pub const SA_TOKENS: &str = "csi.storage.k8s.io/serviceAccount.tokens";
    pub const SPC_NAME: &str = "secretProviderClass";
}

/// The SecretProviderClass parameters this provider reads; any other is ignored.
pub const PARAMETERS: &[&str] = &[
    "keyvaultName",
    "tenantID",
    "tenantId",
    "cloudName",
    "cloudEnvFileName",
    "usePodIdentity",
    "useVMManagedIdentity",
    "userAssignedIdentityID",
    "clientID",
    "useAzureTokenProxy",
    "objects",
];

/// Defaults that come from the provider's flags and environment, not from the request.
#[derive(Debug, Clone)]
pub struct RequestDefaults {
    /// `--cloud-name`.
    pub cloud: CloudName,
    /// `AZURE_ENVIRONMENT_FILEPATH` of the provider process, used when an AzureStackCloud SPC
    /// names no `cloudEnvFileName`.
    pub cloud_env_file: Option<PathBuf>,
    /// `--client-id-from-service-account`: a workload identity SPC without `clientID` takes
    /// the client id (and tenant) from the pod's ServiceAccount (a `Parsed::Pending` mount).
    pub client_id_from_service_account: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("failed to unmarshal attributes, error: {0}")]
    Attributes(String),
    #[error("failed to unmarshal secrets, error: {0}")]
    Secrets(String),
    #[error("failed to unmarshal file permission, error: {0}")]
    Permission(String),
    #[error("pod name is not provided")]
    PodName,
    #[error("pod namespace is not provided")]
    PodNamespace,
    #[error("{parameter} \"{value}\" looks like a placeholder left from a template or tutorial: set it to {expected}", expected = placeholder::expected(parameter))]
    Placeholder {
        parameter: &'static str,
        value: String,
    },
    #[error("failed to parse {flag} flag, error: strconv.ParseBool: parsing \"{value}\": invalid syntax")]
    Bool { flag: &'static str, value: String },
    #[error("only one identity mode can be enabled at a time: usePodIdentity, useVMManagedIdentity, or useAzureTokenProxy")]
    ManyModes,
    #[error("keyvaultName is not provided")]
    VaultName,
    #[error("tenantId is not provided")]
    Tenant,
    #[error("tenantID \"{0}\" is not valid: use the directory (tenant) id GUID or a domain name")]
    TenantInvalid(String),
    #[error("tenantId is not provided: set tenantID, or annotate ServiceAccount {namespace}/{name} with azure.workload.identity/tenant-id")]
    TenantNotAnnotated { namespace: String, name: String },
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Objects(#[from] ObjectsError),
    #[error("failed to get vault: Invalid vault name: \"{0}\", must be between 3 and 24 chars")]
    VaultNameLength(String),
    #[error("failed to get vault: Invalid vault name: \"{0}\", must match [-a-zA-Z0-9]{{3,24}}")]
    VaultNameChars(String),
}

impl RequestError {
    /// Errors of the request envelope itself, which upstream reports without the "failed to
    /// mount objects" prefix.
    pub fn is_envelope(&self) -> bool {
        matches!(
            self,
            RequestError::Attributes(_) | RequestError::Secrets(_) | RequestError::Permission(_)
        )
    }
}

/// Go's `strconv.ParseBool` of a parameter; an absent or empty value is `false`.
pub(crate) fn parse_bool(
    attrs: &BTreeMap<String, String>,
    flag: &'static str,
) -> Result<bool, RequestError> {
    let text = attrs.get(flag).map(|v| v.trim()).unwrap_or("");
    if text.is_empty() {
        return Ok(false);
    }
    go::parse_bool(text).map_err(|_| RequestError::Bool {
        flag,
        value: text.to_string(),
    })
}

/// Parses one mount request, checking in the Go provider's order.
pub async fn parse(
    attributes: &str,
    secrets: &str,
    permission: &str,
    defaults: &RequestDefaults,
) -> Result<Parsed, RequestError> {
    let attrs: BTreeMap<String, String> = serde_json::from_str(attributes)
        .map_err(|e| RequestError::Attributes(describe_json_error(&e)))?;
    // The kubelet sends no secrets when the pod has no nodePublishSecretRef; Go marshals that nil
    // map as `null`.
    let secrets: Option<BTreeMap<String, String>> = serde_json::from_str(secrets)
        .map_err(|e| RequestError::Secrets(describe_json_error(&e)))?;
    let default_mode = parse_permission(permission)?;
    let params = Params(&attrs);
    let pod = pod_info(&params)?;
    if let Some(stand_in) = placeholders(&params).next() {
        return Err(stand_in);
    }
    let mode = identity_mode(&attrs)?;
    // Parsed once, here, but reported in the Go provider's order: last.
    let objects = objects::parse(params.get("objects"));
    let vault_name = vault_name(&params, objects.as_ref().ok())?;
    let inputs = auth::AuthInputs {
        mode,
        client_id: params.get("clientID"),
        user_assigned_identity_id: params.get("userAssignedIdentityID"),
        sa_tokens: attrs.get(keys::SA_TOKENS).map(String::as_str).unwrap_or(""),
        secrets: secrets.as_ref(),
        pod_namespace: &pod.namespace,
        pod_name: &pod.name,
        service_account: &pod.service_account,
        client_id_from_service_account: defaults.client_id_from_service_account,
    };
    // The ServiceAccount may name the tenant; then the SPC need not.
    let tenant_id = match tenant_id(&params)? {
        None if !auth::uses_service_account(&inputs) => return Err(RequestError::Tenant),
        tenant => tenant,
    };
    let cloud = resolve_cloud(
        params.get("cloudName"),
        params.get("cloudEnvFileName"),
        defaults,
    )
    .await?;
    let decision = auth::credential(&inputs)?;
    let objects = objects_of_vault(objects?, &vault_name)?;
    Ok(match decision {
        auth::Decision::Credential(credential) => Parsed::Ready(MountSpec {
            tenant_id: tenant_id.ok_or(RequestError::Tenant)?,
            pod,
            vault_name,
            cloud,
            credential,
            objects,
            default_mode,
        }),
        auth::Decision::FromServiceAccount {
            assertion,
            namespace,
            name,
        } => Parsed::Pending(Pending {
            pod,
            vault_name,
            tenant_id,
            cloud,
            objects,
            default_mode,
            assertion,
            namespace,
            name,
        }),
    })
}

/// SecretProviderClass parameters and driver attributes, trimmed; absent reads as empty.
pub(crate) struct Params<'a>(pub &'a BTreeMap<String, String>);

impl Params<'_> {
    pub(crate) fn get(&self, key: &str) -> &str {
        self.0.get(key).map(|v| v.trim()).unwrap_or("")
    }
}

/// Every parameter whose value is a stand-in ([`placeholder`]), in [`PARAMETERS`] order; a mount
/// refuses the first, `lint` reports them all.
pub(crate) fn placeholders<'a>(params: &'a Params) -> impl Iterator<Item = RequestError> + 'a {
    PARAMETERS.iter().filter_map(move |&parameter| {
        let value = params.get(parameter);
        // `objects` is YAML, whose comments may hold anything: only a one-line value can stand in
        // for all of it. The objects' own fields are checked one by one when they are parsed.
        let whole = parameter != "objects" || !value.contains('\n');
        (whole && placeholder::is_placeholder(value)).then(|| RequestError::Placeholder {
            parameter,
            value: value.escape_debug().to_string(),
        })
    })
}

fn pod_info(params: &Params) -> Result<PodInfo, RequestError> {
    let pod = PodInfo {
        name: params.get(keys::POD_NAME).to_string(),
        namespace: params.get(keys::POD_NAMESPACE).to_string(),
        uid: params.get(keys::POD_UID).to_string(),
        service_account: params.get(keys::SERVICE_ACCOUNT).to_string(),
        spc: params.get(keys::SPC_NAME).to_string(),
    };
    if pod.name.is_empty() {
        return Err(RequestError::PodName);
    }
    if pod.namespace.is_empty() {
        return Err(RequestError::PodNamespace);
    }
    Ok(pod)
}

/// `keyvaultName`, which objects that all name their own vault may leave out.
pub(crate) fn vault_name(
    params: &Params,
    objects: Option<&Vec<ObjectSpec>>,
) -> Result<String, RequestError> {
    let vault_name = params.get("keyvaultName");
    let all_name_theirs =
        objects.is_some_and(|o| !o.is_empty() && o.iter().all(|o| o.vault.is_some()));
    match vault_name.is_empty() && !all_name_theirs {
        true => Err(RequestError::VaultName),
        false => Ok(vault_name.to_string()),
    }
}

/// `tenantID`, or the deprecated `tenantId`; `None` when neither is set. It becomes a path
/// segment of the token URL.
pub(crate) fn tenant_id(params: &Params) -> Result<Option<String>, RequestError> {
    let tenant_id = match params.get("tenantID") {
        "" => {
            let legacy = params.get("tenantId");
            if !legacy.is_empty() {
                tracing::debug!("tenantId is deprecated and will be removed in a future release. Use 'tenantID' instead");
            }
            legacy
        }
        t => t,
    };
    if tenant_id.is_empty() {
        return Ok(None);
    }
    validate_tenant(tenant_id)?;
    Ok(Some(tenant_id.to_string()))
}

/// A tenant id or domain: letters, digits, `-`, `.` and `_`.
fn validate_tenant(tenant_id: &str) -> Result<(), RequestError> {
    match is_identifier(tenant_id) {
        true => Ok(()),
        false => Err(RequestError::TenantInvalid(
            tenant_id.escape_debug().to_string(),
        )),
    }
}

/// A GUID, or a domain name: safe in a URL path, a form and a log line.
fn is_identifier(text: &str) -> bool {
    text.len() <= 256
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// The objects, checked against the SPC's vault: an object that names the SPC's own vault is
/// one of its objects (same ids and caches as without the field).
pub(crate) fn objects_of_vault(
    mut objects: Vec<ObjectSpec>,
    vault_name: &str,
) -> Result<Vec<ObjectSpec>, RequestError> {
    if objects.iter().any(|o| o.vault.is_none()) {
        validate_vault_name(vault_name)?;
    }
    for object in &mut objects {
        if object
            .vault
            .as_ref()
            .is_some_and(|v| v.eq_ignore_ascii_case(vault_name))
        {
            object.vault = None;
        }
    }
    Ok(objects)
}

fn parse_permission(permission: &str) -> Result<u32, RequestError> {
    let mode: u64 = serde_json::from_str(permission)
        .map_err(|e| RequestError::Permission(describe_json_error(&e)))?;
    if mode > 0o777 {
        return Err(RequestError::Permission(format!(
            "file mode {mode:#o} has bits outside 0777"
        )));
    }
    Ok(mode as u32)
}

/// `cloudName`, or the provider's `--cloud-name` when it is not set.
pub(crate) fn cloud_name(
    name: &str,
    defaults: &RequestDefaults,
) -> Result<CloudName, RequestError> {
    match name {
        "" => Ok(defaults.cloud.clone()),
        name => Ok(CloudName::parse(name)?),
    }
}

async fn resolve_cloud(
    name: &str,
    env_file: &str,
    defaults: &RequestDefaults,
) -> Result<Cloud, RequestError> {
    match cloud_name(name, defaults)? {
        CloudName::Known(cloud) => Ok(cloud),
        CloudName::Custom => {
            let path = if env_file.is_empty() {
                defaults
                    .cloud_env_file
                    .clone()
                    .ok_or(CloudError::NoEnvFile)?
            } else {
                PathBuf::from(env_file)
            };
            Ok(cloud::load_env_file(&path).await?)
        }
    }
}

/// The identity mode from the three boolean parameters, at most one of which may be true.
pub(crate) fn identity_mode(attrs: &BTreeMap<String, String>) -> Result<Mode, RequestError> {
    let pod_identity = parse_bool(attrs, "usePodIdentity")?;
    let vm_identity = parse_bool(attrs, "useVMManagedIdentity")?;
    let token_proxy = parse_bool(attrs, "useAzureTokenProxy")?;
    match (pod_identity, vm_identity, token_proxy) {
        (false, false, false) => Ok(Mode::None),
        (true, false, false) => Ok(Mode::PodIdentity),
        (false, true, false) => Ok(Mode::VmManagedIdentity),
        (false, false, true) => Ok(Mode::AzureTokenProxy),
        _ => Err(RequestError::ManyModes),
    }
}

pub(crate) fn validate_vault_name(name: &str) -> Result<(), RequestError> {
    if !(3..=24).contains(&name.len()) {
        return Err(RequestError::VaultNameLength(
            name.escape_debug().to_string(),
        ));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(RequestError::VaultNameChars(
            name.escape_debug().to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Credential, ServiceAccountIdentity};

    fn defaults() -> RequestDefaults {
        RequestDefaults {
            cloud: CloudName::parse("AzurePublicCloud").unwrap(),
            cloud_env_file: None,
            client_id_from_service_account: false,
        }
    }

    fn ready(parsed: Parsed) -> MountSpec {
        match parsed {
            Parsed::Ready(spec) => spec,
            Parsed::Pending(p) => panic!("pending: {p:?}"),
        }
    }

    fn attrs(extra: &[(&str, &str)]) -> String {
        let mut m: BTreeMap<&str, &str> = BTreeMap::from([
            (keys::POD_NAME, "pod"),
            (keys::POD_NAMESPACE, "ns"),
            ("keyvaultName", "kv1"),
            ("tenantID", "tenant"),
            (
                "objects",
                "array:\n  - |\n    objectName: s1\n    objectType: secret\n",
            ),
        ]);
        for (k, v) in extra {
            m.insert(k, v);
        }
        serde_json::to_string(&m).unwrap()
    }

    const SP: &str = r#"{"clientid":"id","clientsecret":"pw"}"#;

    async fn err(a: &str, secrets: &str, perm: &str) -> String {
        parse(a, secrets, perm, &defaults())
            .await
            .unwrap_err()
            .to_string()
    }

    #[tokio::test]
    async fn happy_path_with_service_principal() {
        let spec = ready(parse(&attrs(&[]), SP, "420", &defaults()).await.unwrap());
        assert_eq!(spec.default_mode, 0o644);
        assert_eq!(spec.cloud.key_vault_dns_suffix, "vault.azure.net");
        assert_eq!(spec.objects.len(), 1);
        assert!(matches!(
            spec.credential,
            crate::spec::Credential::ServicePrincipal { .. }
        ));
    }

    #[tokio::test]
    async fn envelope_errors() {
        assert!(err("{", SP, "420")
            .await
            .starts_with("failed to unmarshal attributes, error: "));
        assert!(err(&attrs(&[]), "[1]", "420")
            .await
            .starts_with("failed to unmarshal secrets, error: "));
        assert!(err(&attrs(&[]), SP, "\"x\"")
            .await
            .starts_with("failed to unmarshal file permission, error: "));
        assert!(err(&attrs(&[]), SP, "4095").await.contains("outside 0777"));
    }

    #[tokio::test]
    async fn null_secrets_mean_no_node_publish_secret() {
        let e = err(&attrs(&[]), "null", "420").await;
        assert!(e.contains("nodePublishSecretRef secret is not set"), "{e}");
    }

    #[tokio::test]
    async fn check_order_and_texts() {
        assert_eq!(
            err(&attrs(&[(keys::POD_NAME, "")]), SP, "420").await,
            "pod name is not provided"
        );
        assert_eq!(
            err(&attrs(&[(keys::POD_NAMESPACE, "")]), SP, "420").await,
            "pod namespace is not provided"
        );
        assert_eq!(
            err(&attrs(&[("usePodIdentity", "tru")]), SP, "420").await,
            "failed to parse usePodIdentity flag, error: strconv.ParseBool: parsing \"tru\": invalid syntax"
        );
        assert!(err(&attrs(&[("useVMManagedIdentity", "yes")]), SP, "420")
            .await
            .starts_with("failed to parse useVMManagedIdentity flag"));
        assert!(err(&attrs(&[("useAzureTokenProxy", "2")]), SP, "420")
            .await
            .starts_with("failed to parse useAzureTokenProxy flag"));
        assert_eq!(
            err(&attrs(&[("usePodIdentity", "true"), ("useVMManagedIdentity", "T")]), SP, "420").await,
            "only one identity mode can be enabled at a time: usePodIdentity, useVMManagedIdentity, or useAzureTokenProxy"
        );
        assert_eq!(
            err(&attrs(&[("keyvaultName", " ")]), SP, "420").await,
            "keyvaultName is not provided"
        );
        assert_eq!(
            err(&attrs(&[("tenantID", "")]), SP, "420").await,
            "tenantId is not provided"
        );
        assert!(err(&attrs(&[("cloudName", "Mars")]), SP, "420")
            .await
            .starts_with("cloudName Mars is not valid"));
        assert_eq!(
            err(&attrs(&[("objects", "")]), SP, "420").await,
            "objects is not set"
        );
        assert_eq!(
            err(&attrs(&[("keyvaultName", "kv")]), SP, "420").await,
            "failed to get vault: Invalid vault name: \"kv\", must be between 3 and 24 chars"
        );
        assert_eq!(
            err(&attrs(&[("keyvaultName", "kv_1")]), SP, "420").await,
            "failed to get vault: Invalid vault name: \"kv_1\", must match [-a-zA-Z0-9]{3,24}"
        );
        assert!(err(&attrs(&[("tenantID", "a/b")]), SP, "420")
            .await
            .contains("is not valid"));
    }

    #[tokio::test]
    async fn placeholders_are_refused() {
        assert_eq!(
            err(&attrs(&[("tenantID", "......")]), SP, "420").await,
            "tenantID \"......\" looks like a placeholder left from a template or tutorial: set it to the directory (tenant) id of the vault's Entra ID tenant (a GUID) or its domain name"
        );
        assert!(err(
            &attrs(&[("tenantID", ""), ("tenantId", "${TENANT_ID}")]),
            SP,
            "420"
        )
        .await
        .starts_with("tenantId \"${TENANT_ID}\" looks like a placeholder"));
        assert!(err(&attrs(&[("clientID", "<client-id>")]), SP, "420")
            .await
            .starts_with("clientID \"<client-id>\" looks like a placeholder"));
        assert!(err(&attrs(&[("keyvaultName", "xxxxxxxx")]), SP, "420")
            .await
            .starts_with("keyvaultName \"xxxxxxxx\" looks like a placeholder"));
        assert!(err(&attrs(&[("objects", "${OBJECTS}")]), SP, "420")
            .await
            .starts_with("objects \"${OBJECTS}\" looks like a placeholder"));
        let spec = ready(
            parse(
                &attrs(&[("tenantID", "00000000-0000-0000-0000-000000000000")]),
                SP,
                "420",
                &defaults(),
            )
            .await
            .unwrap(),
        );
        assert_eq!(spec.tenant_id, "00000000-0000-0000-0000-000000000000");
    }

    #[tokio::test]
    async fn tenant_id_precedence() {
        let spec = ready(
            parse(
                &attrs(&[("tenantID", "new"), ("tenantId", "old")]),
                SP,
                "420",
                &defaults(),
            )
            .await
            .unwrap(),
        );
        assert_eq!(spec.tenant_id, "new");
        let spec = ready(
            parse(
                &attrs(&[("tenantID", ""), ("tenantId", "old")]),
                SP,
                "420",
                &defaults(),
            )
            .await
            .unwrap(),
        );
        assert_eq!(spec.tenant_id, "old");
    }

    #[tokio::test]
    async fn empty_objects_skip_vault_name_check() {
        let spec = ready(
            parse(
                &attrs(&[("objects", "array: []"), ("keyvaultName", "k")]),
                SP,
                "420",
                &defaults(),
            )
            .await
            .unwrap(),
        );
        assert!(spec.objects.is_empty());
    }

    #[tokio::test]
    async fn custom_cloud_from_env_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("env.json");
        std::fs::write(&file, r#"{"name":"AzureStackCloud","activeDirectoryEndpoint":"https://login.test/","keyVaultEndpoint":"https://vault.test/","keyVaultDNSSuffix":"vault.test"}"#).unwrap();
        let a = attrs(&[
            ("cloudName", "AzureStackCloud"),
            ("cloudEnvFileName", file.to_str().unwrap()),
        ]);
        let spec = ready(parse(&a, SP, "420", &defaults()).await.unwrap());
        assert_eq!(spec.cloud.key_vault_dns_suffix, "vault.test");
        let missing = attrs(&[
            ("cloudName", "AzureStackCloud"),
            ("cloudEnvFileName", "/nonexistent/env.json"),
        ]);
        assert_eq!(
            err(&missing, SP, "420").await,
            "cloudName AzureStackCloud is not valid, error: open /nonexistent/env.json: no such file or directory",
            "Go's text, which users grep"
        );
        assert!(err(&attrs(&[("cloudName", "AzureStackCloud")]), SP, "420")
            .await
            .contains("set the cloudEnvFileName parameter"));
    }

    const WI_TOKENS: &str = r#"{"api://AzureADTokenExchange":{"token":"sa-jwt"}}"#;

    /// A request whose identity is to come from the pod's ServiceAccount.
    async fn pending(extra: &[(&str, &str)]) -> Result<Parsed, RequestError> {
        let mut a = vec![(keys::SA_TOKENS, WI_TOKENS), (keys::SERVICE_ACCOUNT, "app")];
        a.extend_from_slice(extra);
        let lookup = RequestDefaults {
            client_id_from_service_account: true,
            ..defaults()
        };
        parse(&attrs(&a), "null", "420", &lookup).await
    }

    fn identity(client_id: Option<&str>, tenant_id: Option<&str>) -> ServiceAccountIdentity {
        ServiceAccountIdentity {
            client_id: client_id.map(str::to_string),
            tenant_id: tenant_id.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn client_id_and_tenant_from_the_service_account() {
        let Parsed::Pending(p) = pending(&[]).await.unwrap() else {
            panic!("not pending")
        };
        assert_eq!(p.service_account(), ("ns", "app"));
        let spec = p.resolve(&identity(Some(" cid "), None)).unwrap();
        assert_eq!(
            spec.tenant_id, "tenant",
            "the SPC's tenantID without an annotation"
        );
        assert!(matches!(
            spec.credential,
            Credential::WorkloadIdentity { ref client_id, ref assertion } if client_id == "cid" && assertion.expose() == "sa-jwt"
        ));
        let Parsed::Pending(p) = pending(&[]).await.unwrap() else {
            panic!("not pending")
        };
        let spec = p.resolve(&identity(Some("cid"), Some("other"))).unwrap();
        assert_eq!(spec.tenant_id, "other", "the annotation's tenant wins");
        let Parsed::Pending(p) = pending(&[("tenantID", "")]).await.unwrap() else {
            panic!("a tenant may come from the ServiceAccount")
        };
        let e = p
            .resolve(&identity(Some("cid"), None))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("tenantId is not provided: set tenantID, or annotate ServiceAccount ns/app with azure.workload.identity/tenant-id"), "{e}");
    }

    #[tokio::test]
    async fn service_account_annotation_errors() {
        let resolve = |client_id, tenant_id| async move {
            let Parsed::Pending(p) = pending(&[]).await.unwrap() else {
                panic!("not pending")
            };
            p.resolve(&identity(client_id, tenant_id))
                .unwrap_err()
                .to_string()
        };
        let e = resolve(None, None).await;
        assert_eq!(e, "failed to build auth config for mode None: ServiceAccount ns/app has no azure.workload.identity/client-id annotation: annotate the ServiceAccount with azure.workload.identity/client-id or set clientID in the SecretProviderClass (or reference a service principal Secret in nodePublishSecretRef)");
        assert_eq!(resolve(Some(" "), None).await, e);
        assert!(resolve(Some("a/b"), None).await.contains("the azure.workload.identity/client-id annotation of ServiceAccount ns/app is not valid (\"a/b\")"));
        assert!(resolve(Some("cid"), Some("../x"))
            .await
            .contains("azure.workload.identity/tenant-id annotation"));
        // Without the flag, nothing is deferred and the upstream text stands.
        let plain = parse(
            &attrs(&[(keys::SA_TOKENS, WI_TOKENS)]),
            "null",
            "420",
            &defaults(),
        )
        .await;
        assert!(plain
            .unwrap_err()
            .to_string()
            .contains("nodePublishSecretRef secret is not set"));
        let e = pending(&[("tenantID", "a/b")])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is not valid"),
            "an invalid tenantID still fails up front: {e}"
        );
    }

    #[tokio::test]
    async fn json_errors_never_echo_values() {
        let e = err(r#"{"csi.storage.k8s.io/pod.name": 1234567}"#, SP, "420").await;
        assert!(!e.contains("1234567"), "{e}");
        let e = err(&attrs(&[]), r#"{"clientsecret": 987654321}"#, "420").await;
        assert!(!e.contains("987654321"), "{e}");
    }
}
