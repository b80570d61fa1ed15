//! Each SecretProviderClass of this provider, through the mount's own validation
//! (`crate::request`): whatever a mount would refuse is an error with the mount's text, at the
//! parameter it concerns. Beyond it, what only a manifest shows: misspelt or unquoted parameters,
//! deprecated versions and modes. Objects are checked in `objects`, `secretObjects` in
//! `secret_objects`.

use std::collections::{BTreeMap, BTreeSet};

use super::objects::{check_object_fields, check_objects, Parsed};
use super::{identity, near_miss, secret_objects, Item, Report, Rule};
use crate::cli::manifest::{SecretProviderClass, SPC_KIND};
use crate::cloud::CloudName;
use crate::request::objects;
use crate::request::{self, auth::AuthProblem, Mode, Params, RequestDefaults, RequestError};
use crate::spec::ObjectSpec;

const API_GROUP: &str = "secrets-store.csi.x-k8s.io";

/// Parameters of very old provider versions, accepted and ignored.
const LEGACY_PARAMETERS: &[&str] = &["resourceGroup", "subscriptionId"];

/// A SecretProviderClass of this provider and what the other checks need of it.
pub(super) struct Class<'a> {
    pub item: Item<'a>,
    pub spc: SecretProviderClass<'a>,
    /// The parameters that are strings, as the driver sends them.
    pub params: BTreeMap<String, String>,
}

/// Checks a resource if it is a SecretProviderClass of this provider (or a near miss of one).
/// `client_id_from_service_account` is the provider's flag of that name, as lint is told.
pub(super) fn check<'a>(
    item: Item<'a>,
    r: &mut Report,
    client_id_from_service_account: bool,
) -> Option<Class<'a>> {
    let kind = item.res.kind;
    let near_kind = kind != SPC_KIND
        && (kind.eq_ignore_ascii_case(SPC_KIND)
            || kind.eq_ignore_ascii_case("SecretProviderClasses"));
    if kind != SPC_KIND && !near_kind {
        return None;
    }
    let spc = SecretProviderClass::of(item.res);
    let near_provider = spc
        .provider
        .is_some_and(|p| p != "azure" && p.to_ascii_lowercase().contains("azure"));
    if !spc.is_azure() && !near_provider {
        return None;
    }
    if near_kind {
        r.error(
            Rule::Spelling,
            &item,
            "kind",
            format!("kind {kind:?} is not SecretProviderClass: kinds are case-sensitive"),
        )
        .fix("kind: SecretProviderClass");
    }
    check_resource(&spc, &item, r);
    let (params, others) = spc.string_parameters();
    if spc.parameters.is_none() {
        r.error(
            Rule::Resource,
            &item,
            "spec.parameters",
            "the driver refuses a SecretProviderClass without parameters",
        )
        .fix("set keyvaultName, tenantID, objects and the identity parameters");
    } else {
        check_parameter_names(&params, &others, &item, r);
        check_parameters(&spc, &params, &item, r, client_id_from_service_account);
    }
    Some(Class { item, spc, params })
}

/// The mount's checks of the parameters, every one reported; then the objects and
/// `secretObjects`, which need the files the objects write.
fn check_parameters(
    spc: &SecretProviderClass,
    params: &BTreeMap<String, String>,
    item: &Item,
    r: &mut Report,
    client_id_from_service_account: bool,
) {
    let view = Params(params);
    let stand_ins = check_placeholders(&view, item, r);
    let mut mount = MountErrors {
        item,
        view: &view,
        stand_ins: &stand_ins,
        // The ServiceAccount may name the tenant when it names the client.
        tenant_from_service_account: client_id_from_service_account
            && view.get("clientID").is_empty(),
    };
    let mode = request::identity_mode(params)
        .map_err(|e| mount.report(r, e))
        .ok();
    let parsed = objects::parse_each(view.get("objects"));
    mount.vault_tenant_cloud(&parsed, r);
    check_identity(&view, mode, item, r);
    if let Some(Err(e)) = mode.map(|mode| identity::class_credential(&view, mode)) {
        mount.report(r, e.into());
    }
    let files = check_objects(parsed, &mut mount, r);
    check_object_fields(spc.parameters.and_then(|p| p.get("objects")), item, r);
    secret_objects::check(spc, &files, item, r);
}

fn check_resource(spc: &SecretProviderClass, item: &Item, r: &mut Report) {
    let version = spc.resource.api_version;
    match version.split_once('/') {
        Some((API_GROUP, "v1")) => {}
        Some((API_GROUP, "v1alpha1")) => {
            r.warn(
                Rule::Deprecated,
                item,
                "apiVersion",
                "secrets-store.csi.x-k8s.io/v1alpha1 is deprecated",
            )
            .fix(format!("apiVersion: {API_GROUP}/v1 (same fields)"));
        }
        Some((group, _))
            if group != API_GROUP && near_miss(group, &[API_GROUP]).is_some()
                || group == "secrets-store.csi.k8s.io" =>
        {
            r.error(Rule::Spelling, item, "apiVersion", format!("{group:?} is not the SecretProviderClass API group, so Kubernetes does not find the kind"))
                .fix(format!("apiVersion: {API_GROUP}/v1"));
        }
        _ => {
            r.error(
                Rule::Resource,
                item,
                "apiVersion",
                format!("{version:?} is not a SecretProviderClass version"),
            )
            .fix(format!("apiVersion: {API_GROUP}/v1"));
        }
    }
    if spc.resource.name.is_empty() {
        r.error(Rule::Resource, item, "metadata.name", "the SecretProviderClass has no name: volumes name it in volumeAttributes.secretProviderClass");
    }
    match spc.provider {
        None | Some("") => {
            r.error(
                Rule::Resource,
                item,
                "spec.provider",
                "the driver refuses a SecretProviderClass without provider",
            )
            .fix("provider: azure");
        }
        Some("azure") => {}
        Some(other) => {
            r.error(Rule::Spelling, item, "spec.provider", format!("provider {other:?}: the driver looks for the provider's socket by this exact name (azure.sock), so it does not find this one"))
                .fix("provider: azure");
        }
    }
}

fn check_parameter_names(
    params: &BTreeMap<String, String>,
    others: &[(String, String)],
    item: &Item,
    r: &mut Report,
) {
    for (key, text) in others {
        r.error(Rule::Parameters, item, format!("spec.parameters.{key}"), "parameter values must be strings: Kubernetes refuses an unquoted boolean or number here")
            .fix(format!("quote it: {key}: \"{text}\""));
    }
    for key in params.keys().chain(others.iter().map(|(k, _)| k)) {
        if request::PARAMETERS.contains(&key.as_str()) {
            continue;
        }
        let field = format!("spec.parameters.{key}");
        if let Some(known) = near_miss(key, request::PARAMETERS) {
            r.error(Rule::Spelling, item, field, format!("{key} is not a parameter of this provider, which ignores it: parameter names are case-sensitive"))
                .fix(format!("rename it to {known}"));
        } else if key == "usePodServiceAccountAnnotation" {
            r.warn(Rule::Parameters, item, field, "ignored: this parameter of an unmerged upstream proposal (Azure/secrets-store-csi-driver-provider-azure#1443) does nothing here; this provider reads the client id from the pod's ServiceAccount when it runs with --client-id-from-service-account")
                .fix("remove it; set the chart value clientIdFromServiceAccount and leave clientID empty");
        } else if LEGACY_PARAMETERS.contains(&key.as_str()) {
            r.warn(
                Rule::Deprecated,
                item,
                field,
                "ignored: this parameter has had no effect since provider v0.0.9",
            )
            .fix("remove it");
        } else {
            r.warn(
                Rule::Parameters,
                item,
                field,
                "unknown parameter, ignored by the provider",
            );
        }
    }
}

/// The mount's placeholder check, every parameter; returns those reported.
fn check_placeholders(view: &Params, item: &Item, r: &mut Report) -> BTreeSet<&'static str> {
    let mut found = BTreeSet::new();
    for e in request::placeholders(view) {
        if let RequestError::Placeholder { parameter, .. } = e {
            found.insert(parameter);
            r.error(
                Rule::Placeholder,
                item,
                format!("spec.parameters.{parameter}"),
                e.to_string(),
            );
        }
    }
    found
}

/// Reports the mount's errors at the parameter they concern, once: a parameter already reported
/// as a placeholder is not reported again.
pub(super) struct MountErrors<'r, 'a> {
    pub item: &'r Item<'a>,
    view: &'r Params<'r>,
    stand_ins: &'r BTreeSet<&'static str>,
    /// A missing tenantID is then only a warning: the pods' ServiceAccounts may name it.
    tenant_from_service_account: bool,
}

impl MountErrors<'_, '_> {
    pub fn report(&mut self, r: &mut Report, e: RequestError) {
        let parameter = match &e {
            RequestError::Bool { flag, .. } => *flag,
            RequestError::VaultName
            | RequestError::VaultNameLength(_)
            | RequestError::VaultNameChars(_) => "keyvaultName",
            RequestError::Tenant | RequestError::TenantInvalid(_) => {
                match self.view.get("tenantID") {
                    "" if !self.view.get("tenantId").is_empty() => "tenantId",
                    _ => "tenantID",
                }
            }
            RequestError::Cloud(_) => "cloudName",
            RequestError::Objects(_) => "objects",
            RequestError::Auth(a) if matches!(a.problem, AuthProblem::ProxyClientIdMissing) => {
                "clientID"
            }
            _ => "",
        };
        if self.stand_ins.contains(parameter) {
            return;
        }
        let field = match parameter {
            "" => "spec.parameters".to_string(),
            p => format!("spec.parameters.{p}"),
        };
        let finding = r.error(Rule::Mount, self.item, field, e.to_string());
        match e {
            RequestError::VaultName => finding
                .fix("set keyvaultName to the vault's name, or a keyvaultName on every object"),
            RequestError::Tenant => finding
                .fix("set tenantID to the directory (tenant) id of the vault's Entra ID tenant"),
            _ => {}
        }
    }

    fn vault_tenant_cloud(&mut self, parsed: &Parsed, r: &mut Report) {
        // Objects that do not parse have their own findings; the vault is checked for the others.
        let valid: Option<Vec<ObjectSpec>> = parsed.as_ref().ok().map(|list| {
            list.iter()
                .filter_map(|o| o.as_ref().ok())
                .cloned()
                .collect()
        });
        match request::vault_name(self.view, valid.as_ref()) {
            Ok(vault) => {
                if let Err(e) = request::objects_of_vault(valid.unwrap_or_default(), &vault) {
                    self.report(r, e);
                }
            }
            Err(e) => self.report(r, e),
        }
        match request::tenant_id(self.view) {
            Ok(None) if self.tenant_from_service_account => {
                r.warn(Rule::Identity, self.item, "spec.parameters.tenantID", "tenantID is not set: a mount takes it from the pod's ServiceAccount annotation azure.workload.identity/tenant-id, and fails if the ServiceAccount has none")
                    .fix("set tenantID, or annotate the pods' ServiceAccounts with azure.workload.identity/tenant-id");
            }
            // What a mount answers without a tenant (unless a ServiceAccount names it).
            Ok(None) => self.report(r, RequestError::Tenant),
            Ok(Some(_)) if self.view.get("tenantID").is_empty() => {
                r.warn(
                    Rule::Deprecated,
                    self.item,
                    "spec.parameters.tenantId",
                    "tenantId is deprecated",
                )
                .fix("rename it to tenantID");
            }
            Ok(Some(_)) => {}
            Err(e) => self.report(r, e),
        }
        let defaults = RequestDefaults {
            cloud: CloudName::parse("AzurePublicCloud").expect("known cloud"),
            cloud_env_file: None,
            client_id_from_service_account: false,
        };
        match request::cloud_name(self.view.get("cloudName"), &defaults) {
            Err(e) => self.report(r, e),
            Ok(CloudName::Custom) if self.view.get("cloudEnvFileName").is_empty() => {
                r.warn(Rule::Parameters, self.item, "spec.parameters.cloudEnvFileName", "AzureStackCloud needs cloudEnvFileName (a path inside the provider container) unless the provider sets AZURE_ENVIRONMENT_FILEPATH");
            }
            Ok(_) => {}
        }
    }
}

fn check_identity(params: &Params, mode: Option<Mode>, item: &Item, r: &mut Report) {
    let client_id = params.get("clientID");
    match mode {
        Some(Mode::PodIdentity) => {
            r.warn(
                Rule::Deprecated,
                item,
                "spec.parameters.usePodIdentity",
                "aad-pod-identity is deprecated (archived upstream)",
            )
            .fix("move to workload identity (clientID) or identity binding (useAzureTokenProxy)");
        }
        Some(Mode::VmManagedIdentity) if !client_id.is_empty() => {
            r.warn(Rule::Identity, item, "spec.parameters.clientID", "clientID is set with useVMManagedIdentity: the pod's workload-identity token is then required, yet the node's identity is used")
                .fix("for a user-assigned identity set userAssignedIdentityID instead of clientID");
        }
        _ => {}
    }
    if !params.get("userAssignedIdentityID").is_empty() && mode != Some(Mode::VmManagedIdentity) {
        r.warn(
            Rule::Identity,
            item,
            "spec.parameters.userAssignedIdentityID",
            "ignored: only used with useVMManagedIdentity: \"true\"",
        );
    }
}
