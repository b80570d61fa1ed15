//! Pods and the controllers that make them (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
//! CronJob), and their Secrets Store CSI volumes: what the driver refuses (`readOnly` not true,
//! no `secretProviderClass`), what the kubelet skips (a volume no container mounts), and the
//! class each volume names. Also API versions Kubernetes has removed.

use std::collections::BTreeMap;

use super::{near_miss, Item, Model, Report, Rule};
use crate::cli::manifest::SPC_KIND;
use crate::cli::yaml::Node;
use crate::request::{self, keys, Params};

/// The Secrets Store CSI Driver's name.
pub(super) const DRIVER: &str = "secrets-store.csi.k8s.io";

/// Where each kind keeps its pod template: the pod spec and the pod's metadata.
const POD_PATHS: &[(&str, &str, &str)] = &[
    ("Pod", "spec", "metadata"),
    ("Deployment", "spec.template.spec", "spec.template.metadata"),
    (
        "StatefulSet",
        "spec.template.spec",
        "spec.template.metadata",
    ),
    ("DaemonSet", "spec.template.spec", "spec.template.metadata"),
    ("ReplicaSet", "spec.template.spec", "spec.template.metadata"),
    (
        "ReplicationController",
        "spec.template.spec",
        "spec.template.metadata",
    ),
    ("Job", "spec.template.spec", "spec.template.metadata"),
    (
        "CronJob",
        "spec.jobTemplate.spec.template.spec",
        "spec.jobTemplate.spec.template.metadata",
    ),
];

/// API versions Kubernetes removed, per kind, and what replaces them.
const REMOVED_APIS: &[(&str, &[&str], &str, &str)] = &[
    (
        "Deployment",
        &["extensions/v1beta1", "apps/v1beta1", "apps/v1beta2"],
        "apps/v1",
        "1.16",
    ),
    (
        "DaemonSet",
        &["extensions/v1beta1", "apps/v1beta2"],
        "apps/v1",
        "1.16",
    ),
    (
        "ReplicaSet",
        &["extensions/v1beta1", "apps/v1beta1", "apps/v1beta2"],
        "apps/v1",
        "1.16",
    ),
    (
        "StatefulSet",
        &["apps/v1beta1", "apps/v1beta2"],
        "apps/v1",
        "1.16",
    ),
    (
        "Ingress",
        &["extensions/v1beta1", "networking.k8s.io/v1beta1"],
        "networking.k8s.io/v1",
        "1.22",
    ),
    (
        "CronJob",
        &["batch/v1beta1", "batch/v2alpha1"],
        "batch/v1",
        "1.25",
    ),
];

/// A pod template and its Secrets Store CSI volumes.
pub(super) struct Workload<'a> {
    pub item: Item<'a>,
    pub pod: &'a Node,
    /// Path of the pod spec in the resource.
    pub pod_path: &'static str,
    /// The pod's metadata (labels are matched there, not on the controller).
    pub pod_meta: Option<&'a Node>,
    pub volumes: Vec<CsiVolume<'a>>,
}

/// A CSI volume of the Secrets Store driver (or a near miss of its name).
pub(super) struct CsiVolume<'a> {
    /// Path of the `csi` field in the resource.
    pub field: String,
    pub csi: &'a Node,
    pub driver: &'a str,
    /// `volumeAttributes.secretProviderClass`.
    pub class: &'a str,
    /// Whether a container lists it in `volumeMounts`: the kubelet mounts only those.
    pub mounted: bool,
}

impl<'a> Workload<'a> {
    /// Containers and init containers with their paths relative to the pod spec.
    pub fn containers(&self) -> impl Iterator<Item = (String, &'a Node)> {
        ["initContainers", "containers"]
            .into_iter()
            .flat_map(|list| {
                self.pod
                    .items_at(list)
                    .enumerate()
                    .map(move |(i, c)| (format!("{list}[{i}]"), c))
            })
    }
}

fn at_path<'a>(node: &'a Node, path: &str) -> Option<&'a Node> {
    path.split('.').try_fold(node, |n, key| n.get(key))
}

/// The workload a resource is, if it makes pods.
pub(super) fn of(item: Item) -> Option<Workload> {
    let &(_, pod_path, meta_path) = POD_PATHS.iter().find(|(k, ..)| *k == item.res.kind)?;
    let pod = at_path(item.res.node, pod_path)?;
    let mut w = Workload {
        item,
        pod,
        pod_path,
        pod_meta: at_path(item.res.node, meta_path),
        volumes: Vec::new(),
    };
    let mounts: Vec<&str> = w
        .containers()
        .flat_map(|(_, c)| c.items_at("volumeMounts").map(|m| m.str_at("name")))
        .collect();
    for (i, volume) in pod.items_at("volumes").enumerate() {
        let Some(csi) = volume.get("csi") else {
            continue;
        };
        let driver = csi.str_at("driver");
        if driver != DRIVER && !near_driver(driver) {
            continue;
        }
        w.volumes.push(CsiVolume {
            field: format!("{pod_path}.volumes[{i}].csi"),
            csi,
            driver,
            class: csi
                .get("volumeAttributes")
                .map(|a| a.str_at(keys::SPC_NAME))
                .unwrap_or(""),
            mounted: mounts.contains(&volume.str_at("name")),
        });
    }
    Some(w)
}

/// Names users write for the driver: `secrets-store.csi.k8s.com`, the API group's
/// `secrets-store.csi.x-k8s.io`, `csi-secrets-store`.
fn near_driver(driver: &str) -> bool {
    let lower = driver.to_ascii_lowercase();
    near_miss(driver, &[DRIVER]).is_some()
        || [
            "secrets-store",
            "secret-store",
            "secretstore",
            "secrets.store",
        ]
        .iter()
        .any(|s| lower.contains(s))
}

pub(super) fn check(model: &Model, r: &mut Report, strict: bool) {
    for item in &model.items {
        check_api_version(item, r);
    }
    for w in &model.workloads {
        for v in &w.volumes {
            check_volume(v, &w.item, r);
            if !v.class.is_empty() {
                check_class(model, v, &w.item, r, strict);
            }
        }
    }
}

fn check_api_version(item: &Item, r: &mut Report) {
    let removed = REMOVED_APIS.iter().find(|(kind, versions, ..)| {
        *kind == item.res.kind && versions.contains(&item.res.api_version)
    });
    if let Some((kind, _, current, release)) = removed {
        r.warn(Rule::Deprecated, item, "apiVersion", format!("{} {kind} was removed in Kubernetes {release}: kubectl cannot apply it to a current cluster", item.res.api_version))
            .fix(format!("apiVersion: {current} (check the fields that changed)"));
    }
}

fn check_volume(v: &CsiVolume, item: &Item, r: &mut Report) {
    if v.driver != DRIVER {
        r.error(
            Rule::Spelling,
            item,
            format!("{}.driver", v.field),
            format!(
                "no CSI driver is named {:?}, so the pod never starts",
                v.driver
            ),
        )
        .fix(format!("driver: {DRIVER}"));
    }
    if v.csi.get("readOnly").and_then(Node::as_bool) != Some(true) {
        r.error(Rule::Volume, item, format!("{}.readOnly", v.field), "the driver refuses a volume without readOnly: true (\"Readonly is not true in request\")")
            .fix("readOnly: true");
    }
    let attributes = v.csi.get("volumeAttributes");
    if v.class.is_empty() {
        let near = attributes
            .map(|a| a.entries())
            .unwrap_or(&[])
            .iter()
            .find(|e| near_miss(&e.key, &[keys::SPC_NAME, "secretProviderClassName"]).is_some());
        let field = format!("{}.volumeAttributes", v.field);
        let finding = match near {
            Some(e) => r.error(Rule::Spelling, item, format!("{field}.{}", e.key), format!("{} is not the attribute the driver reads", e.key)),
            None => r.error(Rule::Volume, item, field, "the driver needs volumeAttributes.secretProviderClass: the name of the SecretProviderClass"),
        };
        finding.fix(format!(
            "{}: <name of the SecretProviderClass>",
            keys::SPC_NAME
        ));
    }
    if !v.mounted {
        r.warn(Rule::Volume, item, v.field.clone(), "no container lists this volume in volumeMounts, and the kubelet skips a volume no container mounts: the driver is never called and secretObjects are never synced")
            .fix("add a volumeMounts entry with this volume's name to a container");
    }
    // Volume attributes override the class's parameters; a stand-in there fails the mount too.
    let overrides: BTreeMap<String, String> = attributes
        .map(|a| a.entries())
        .unwrap_or(&[])
        .iter()
        .filter_map(|e| Some((e.key.clone(), e.value.as_str()?.to_string())))
        .collect();
    for e in request::placeholders(&Params(&overrides)) {
        if let request::RequestError::Placeholder { parameter, .. } = e {
            r.error(
                Rule::Placeholder,
                item,
                format!("{}.volumeAttributes.{parameter}", v.field),
                e.to_string(),
            );
        }
    }
}

fn check_class(model: &Model, v: &CsiVolume, item: &Item, r: &mut Report, strict: bool) {
    let named: Vec<&Item> = model
        .items
        .iter()
        .filter(|i| i.res.kind == SPC_KIND && i.res.name == v.class)
        .collect();
    if named
        .iter()
        .any(|i| i.res.shares_namespace(item.res.namespace))
    {
        return;
    }
    let field = format!("{}.volumeAttributes.{}", v.field, keys::SPC_NAME);
    if let Some(other) = named.first() {
        r.error(Rule::MissingClass, item, field, format!("SecretProviderClass {} is in namespace {}, this pod in {}: the driver looks it up in the pod's namespace", v.class, other.res.namespace, item.res.namespace))
            .fix("create the SecretProviderClass in the pod's namespace");
        return;
    }
    let finding = r.warn(Rule::MissingClass, item, field, format!("SecretProviderClass {} is not among the documents linted, so this volume could not be checked against it", v.class));
    finding.fix(match strict {
        true => "lint the SecretProviderClass together with its workloads",
        false => {
            "lint the SecretProviderClass together with its workloads (an error with --strict)"
        }
    });
}
