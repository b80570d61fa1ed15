//! Each volume's identity against the pod that mounts it. The credential is decided by the
//! mount's own code (`request::auth`) from the class's parameters, the volume's attributes and
//! its `nodePublishSecretRef` Secret when that is among the documents; then what only the
//! manifests show: aad-pod-identity's pod label, the service account federated with `clientID`,
//! the label the driver watches node-publish Secrets by. Nothing is required that the CSI path
//! does not need (the workload identity webhook's label and the service account annotation are
//! not).

use std::collections::BTreeMap;

use super::spc::Class;
use super::workloads::{CsiVolume, Workload};
use super::{Item, Model, Report, Rule};
use crate::cli::yaml::Node;
use crate::request::auth::{self, AuthError, AuthInputs, Decision};
use crate::request::{self, keys, Mode, Params};
use crate::spec::Credential;

const POD_IDENTITY_LABEL: &str = "aadpodidbinding";
const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
const USED_LABEL: &str = "secrets-store.csi.k8s.io/used";

/// What a mount decides for a pod running as `service_account`, with service-account tokens
/// for both audiences: whether the cluster's CSIDriver requests them is not in the manifests.
pub(super) fn credential(
    params: &Params,
    mode: Mode,
    secrets: Option<&BTreeMap<String, String>>,
    service_account: &str,
    client_id_from_service_account: bool,
) -> Result<Decision, AuthError> {
    let tokens = format!(
        r#"{{"{}":{{"token":"lint"}},"{}":{{"token":"lint"}}}}"#,
        auth::WORKLOAD_IDENTITY_AUDIENCE,
        auth::IDENTITY_BINDING_AUDIENCE
    );
    auth::credential(&AuthInputs {
        mode,
        client_id: params.get("clientID"),
        user_assigned_identity_id: params.get("userAssignedIdentityID"),
        sa_tokens: &tokens,
        secrets,
        pod_namespace: "lint",
        pod_name: "lint",
        service_account,
        client_id_from_service_account,
    })
}

/// The credential of the class itself: with a node-publish Secret that has both keys, so only
/// what the class's own parameters decide can fail.
pub(super) fn class_credential(params: &Params, mode: Mode) -> Result<Decision, AuthError> {
    let secret = BTreeMap::from([
        ("clientid".to_string(), "-".to_string()),
        ("clientsecret".to_string(), "-".to_string()),
    ]);
    credential(params, mode, Some(&secret), "lint", false)
}

pub(super) fn check(model: &Model, r: &mut Report) {
    for w in &model.workloads {
        for v in &w.volumes {
            let class = model.classes.iter().find(|c| {
                c.item.res.name == v.class && c.item.res.shares_namespace(w.item.res.namespace)
            });
            if let Some(class) = class {
                check_volume(model, w, v, class, r);
            }
        }
    }
}

fn check_volume(model: &Model, w: &Workload, v: &CsiVolume, class: &Class, r: &mut Report) {
    // The driver sends the class's parameters overridden by the volume's attributes.
    let mut params = class.params.clone();
    for entry in v
        .csi
        .get("volumeAttributes")
        .map(Node::entries)
        .unwrap_or(&[])
    {
        if let (Some(value), false) = (entry.value.as_str(), entry.key == keys::SPC_NAME) {
            params.insert(entry.key.clone(), value.to_string());
        }
    }
    let view = Params(&params);
    let Ok(mode) = request::identity_mode(&params) else {
        return;
    };
    let secret_name = v.csi.get("nodePublishSecretRef").map(|s| s.str_at("name"));
    let secret = secret_name.and_then(|name| {
        model.items.iter().find(|i| {
            i.res.kind == "Secret"
                && i.res.name == name
                && i.res.shares_namespace(w.item.res.namespace)
        })
    });
    let account = service_account(w);
    let flag = model.client_id_from_service_account;
    let result = match (secret_name, secret) {
        (None, _) => credential(&view, mode, None, account, flag),
        (Some(_), Some(secret)) => {
            credential(&view, mode, Some(&secret_values(secret)), account, flag)
        }
        // A Secret that is not among the documents may exist in the cluster: assume it is right.
        (Some(_), None) => class_credential(&view, mode),
    };
    match result {
        // Failures of the class itself are reported on the class.
        Err(_) if class_credential(&view, mode).is_err() => {}
        Err(e) => {
            let field = match secret_name {
                Some(_) => format!("{}.nodePublishSecretRef", v.field),
                None => v.field.clone(),
            };
            let fix = match secret_name {
                Some(_) => "give the Secret the keys clientid and clientsecret (or clientcertificate)",
                None => "set clientID on the SecretProviderClass for workload identity, or nodePublishSecretRef to a Secret with clientid and clientsecret (or clientcertificate)",
            };
            r.error(Rule::Mount, &w.item, field, e.to_string()).fix(fix);
        }
        Ok(Decision::FromServiceAccount { .. }) => check_annotated(model, w, r),
        Ok(Decision::Credential(Credential::PodIdentity { .. })) => check_pod_label(w, r),
        Ok(Decision::Credential(Credential::WorkloadIdentity { client_id, .. })) => {
            check_service_account(model, w, &client_id, r)
        }
        Ok(Decision::Credential(
            Credential::ServicePrincipal { .. } | Credential::ServicePrincipalCertificate { .. },
        )) => {
            if let Some(secret) = secret {
                check_used_label(secret, r);
            }
        }
        Ok(Decision::Credential(_)) => {}
    }
}

/// The service account the pod runs as.
fn service_account<'a>(w: &Workload<'a>) -> &'a str {
    [
        w.pod.str_at("serviceAccountName"),
        w.pod.str_at("serviceAccount"),
    ]
    .into_iter()
    .find(|n| !n.is_empty())
    .unwrap_or("default")
}

/// With `--client-id-from-service-account`, the pod's ServiceAccount must name the client id the
/// mount then reads from it (when it is among the documents).
fn check_annotated(model: &Model, w: &Workload, r: &mut Report) {
    let name = service_account(w);
    let account = model.items.iter().find(|i| {
        i.res.kind == "ServiceAccount"
            && i.res.name == name
            && i.res.shares_namespace(w.item.res.namespace)
    });
    let Some(account) = account else {
        return;
    };
    let field = format!("{}.serviceAccountName", w.pod_path);
    match account.res.metadata("annotations", CLIENT_ID_ANNOTATION) {
        None => {
            r.error(Rule::Mount, &w.item, field, format!("the class sets no clientID, so the mount reads it from ServiceAccount {name}, which has no {CLIENT_ID_ANNOTATION} annotation: the mount fails"))
                .fix(format!("annotate ServiceAccount {name} with {CLIENT_ID_ANNOTATION}, or set clientID on the SecretProviderClass"));
        }
        Some(id)
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            r.error(
                Rule::Mount,
                account,
                format!("metadata.annotations[\"{CLIENT_ID_ANNOTATION}\"]"),
                format!("{id:?} is not a client id: the mount refuses it"),
            )
            .fix("set the application (client) id of the workload's identity, a GUID");
        }
        Some(_) => {}
    }
}

/// A Secret's `data` (decoded) and `stringData`, as the driver hands them to the provider, so
/// the mount's own checks run on them (a certificate's PEM, its validity). A `data` value that
/// is not base64 text stands as `-`: set, unreadable here.
fn secret_values(secret: &Item) -> BTreeMap<String, String> {
    use base64::Engine;
    let decoded = |text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_else(|| "-".into())
    };
    let entries = |map: &str| secret.res.node.get(map).map(Node::entries).unwrap_or(&[]);
    let data = entries("data").iter().map(|e| {
        let text = e.value.scalar_text().unwrap_or_default();
        (
            e.key.clone(),
            if text.is_empty() {
                String::new()
            } else {
                decoded(text)
            },
        )
    });
    let string_data = entries("stringData").iter().map(|e| {
        (
            e.key.clone(),
            e.value.scalar_text().unwrap_or_default().to_string(),
        )
    });
    data.chain(string_data).collect()
}

fn check_pod_label(w: &Workload, r: &mut Report) {
    let label = |meta: Option<&Node>| {
        meta.and_then(|m| m.get("labels"))
            .and_then(|l| l.get(POD_IDENTITY_LABEL))
            .is_some()
    };
    if label(w.pod_meta) {
        return;
    }
    let field = match w.pod_path {
        "spec" => "metadata.labels".to_string(),
        path => format!("{}.metadata.labels", path.trim_end_matches(".spec")),
    };
    let on_controller = w.pod_path != "spec" && label(w.item.res.node.get("metadata"));
    let message = match on_controller {
        true => format!("the {POD_IDENTITY_LABEL} label is on the {} but NMI matches the pod's labels, so the mount gets no identity", w.item.res.kind),
        false => format!("usePodIdentity needs the pod label {POD_IDENTITY_LABEL} (the selector of an AzureIdentityBinding): without it NMI finds no identity for the pod and the mount fails"),
    };
    r.warn(Rule::Identity, &w.item, field, message).fix(format!(
        "add {POD_IDENTITY_LABEL}: <binding selector> to the pod template's labels"
    ));
}

fn check_service_account(model: &Model, w: &Workload, client_id: &str, r: &mut Report) {
    let name = service_account(w);
    let accounts: Vec<&Item> = model
        .items
        .iter()
        .filter(|i| i.res.kind == "ServiceAccount" && i.res.shares_namespace(w.item.res.namespace))
        .collect();
    fn annotation<'a>(i: &Item<'a>) -> Option<&'a str> {
        i.res.metadata("annotations", CLIENT_ID_ANNOTATION)
    }
    let field = format!("{}.serviceAccountName", w.pod_path);
    if let Some(account) = accounts.iter().find(|i| i.res.name == name) {
        if let Some(other) = annotation(account).filter(|a| !a.eq_ignore_ascii_case(client_id)) {
            r.warn(Rule::Identity, &w.item, field, format!("the pod's ServiceAccount {name} is annotated with client id {other}, the SecretProviderClass uses clientID {client_id}: the token exchange uses clientID, and fails (AADSTS700016, AADSTS70021) unless that identity is federated with this service account"))
                .fix("use the same client id in both, the identity whose federated credential names this service account");
        }
        return;
    }
    let meant = accounts
        .iter()
        .find(|i| annotation(i).is_some_and(|a| a.eq_ignore_ascii_case(client_id)));
    if let Some(meant) = meant {
        r.warn(Rule::Identity, &w.item, field, format!("the pod runs as service account {name}, but ServiceAccount {} is the one annotated with clientID {client_id}: the federated credential is for that service account", meant.res.name))
            .fix(format!("serviceAccountName: {}", meant.res.name));
    }
}

fn check_used_label(secret: &Item, r: &mut Report) {
    if secret.res.metadata("labels", USED_LABEL) == Some("true") {
        return;
    }
    r.warn(Rule::Identity, secret, format!("metadata.labels[\"{USED_LABEL}\"]"), format!("this nodePublishSecretRef Secret lacks the label {USED_LABEL}: \"true\", by which the driver watches such Secrets (filteredWatchSecret, the default): drivers before v1.6 cannot re-read it to rotate the mount"))
        .fix(format!("label it {USED_LABEL}: \"true\""));
}
