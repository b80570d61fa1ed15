//! The Secrets synced by `secretObjects` and the resources that read them: workloads (through
//! `env`, `envFrom`, secret and projected volumes, `imagePullSecrets`) and Ingresses. The driver
//! copies mounted files into a Secret only while a pod mounts the SecretProviderClass volume; a
//! Secret nothing mounts is never created, which users otherwise learn from an empty
//! environment variable.

use std::collections::BTreeSet;

use super::spc::Class;
use super::workloads::Workload;
use super::{Item, Model, Report, Rule};

/// Where a workload or Ingress reads a Secret.
struct Read<'a> {
    secret: &'a str,
    /// The keys it needs; none for all of them (`envFrom`, a whole volume).
    keys: Vec<&'a str>,
    field: String,
}

/// The Secrets a pod reads: environment, volumes, projected volumes and image pull secrets.
fn reads<'a>(w: &Workload<'a>) -> Vec<Read<'a>> {
    let mut out = Vec::new();
    let pod = format!("{}.", w.pod_path);
    for (container, c) in w.containers() {
        for (i, env) in c.items_at("env").enumerate() {
            if let Some(r) = env.get("valueFrom").and_then(|v| v.get("secretKeyRef")) {
                out.push(Read {
                    secret: r.str_at("name"),
                    keys: vec![r.str_at("key")],
                    field: format!("{pod}{container}.env[{i}].valueFrom.secretKeyRef"),
                });
            }
        }
        for (i, from) in c.items_at("envFrom").enumerate() {
            if let Some(r) = from.get("secretRef") {
                out.push(Read {
                    secret: r.str_at("name"),
                    keys: Vec::new(),
                    field: format!("{pod}{container}.envFrom[{i}].secretRef"),
                });
            }
        }
    }
    for (i, volume) in w.pod.items_at("volumes").enumerate() {
        let at = format!("{pod}volumes[{i}]");
        if let Some(s) = volume.get("secret") {
            out.push(Read {
                secret: s.str_at("secretName"),
                keys: s.items_at("items").map(|k| k.str_at("key")).collect(),
                field: format!("{at}.secret"),
            });
        }
        let sources = volume
            .get("projected")
            .map(|p| p.items_at("sources").collect::<Vec<_>>())
            .unwrap_or_default();
        for (j, source) in sources.into_iter().enumerate() {
            if let Some(s) = source.get("secret") {
                out.push(Read {
                    secret: s.str_at("name"),
                    keys: s.items_at("items").map(|k| k.str_at("key")).collect(),
                    field: format!("{at}.projected.sources[{j}].secret"),
                });
            }
        }
    }
    for (i, pull) in w.pod.items_at("imagePullSecrets").enumerate() {
        out.push(Read {
            secret: pull.str_at("name"),
            keys: Vec::new(),
            field: format!("{pod}imagePullSecrets[{i}]"),
        });
    }
    out
}

/// Consumers of synced Secrets, and classes whose Secrets nothing creates.
pub(super) fn check(model: &Model, r: &mut Report) {
    for w in &model.workloads {
        for read in reads(w) {
            check_read(model, &w.item, &read, r);
        }
    }
    for item in model.items.iter().filter(|i| i.res.kind == "Ingress") {
        let tls = item
            .res
            .spec()
            .map(|s| s.items_at("tls").collect::<Vec<_>>())
            .unwrap_or_default();
        for (i, entry) in tls.into_iter().enumerate() {
            let read = Read {
                secret: entry.str_at("secretName"),
                keys: vec!["tls.crt", "tls.key"],
                field: format!("spec.tls[{i}].secretName"),
            };
            check_read(model, item, &read, r);
        }
    }
    for class in &model.classes {
        let names: Vec<&str> = class
            .spc
            .secret_objects
            .map(|s| s.items().iter().map(|o| o.str_at("secretName")).collect())
            .unwrap_or_default();
        if !names.is_empty() && mounting(model, class).is_empty() {
            r.warn(Rule::SecretConsumer, &class.item, "spec.secretObjects", format!("no workload among the documents mounts this SecretProviderClass, so the Secret(s) {} are never created: the driver syncs them only while a pod mounts the volume", names.join(", ")))
                .fix("mount the volume (csi volume plus a container's volumeMounts) in a workload, or use the Secrets Store Sync Controller");
        }
    }
}

/// The workloads whose containers mount this class's volume.
fn mounting<'m, 'a>(model: &'m Model<'a>, class: &Class) -> Vec<&'m Workload<'a>> {
    model
        .workloads
        .iter()
        .filter(|w| w.item.res.shares_namespace(class.item.res.namespace))
        .filter(|w| {
            w.volumes
                .iter()
                .any(|v| v.mounted && v.class == class.item.res.name)
        })
        .collect()
}

fn check_read(model: &Model, at: &Item, read: &Read, r: &mut Report) {
    let produced = model.classes.iter().find_map(|class| {
        let so = class
            .spc
            .secret_objects?
            .items()
            .iter()
            .find(|so| so.str_at("secretName") == read.secret)?;
        class
            .item
            .res
            .shares_namespace(at.res.namespace)
            .then_some((class, so))
    });
    let Some((class, so)) = produced else {
        return;
    };
    let spc = class.item.res.name;
    let listed: BTreeSet<&str> = so.items_at("data").map(|d| d.str_at("key")).collect();
    for key in read
        .keys
        .iter()
        .filter(|k| !k.is_empty() && !listed.contains(*k))
    {
        let keys = listed.iter().copied().collect::<Vec<_>>().join(", ");
        r.error(Rule::SecretConsumer, at, read.field.clone(), format!("Secret {} (synced by SecretProviderClass {spc}) has no key {key}: its secretObjects entry lists {keys}", read.secret))
            .fix(format!("read one of {keys}, or add a data entry with key {key} to the secretObjects entry"));
    }
    let exists = model.items.iter().any(|i| {
        i.res.kind == "Secret"
            && i.res.name == read.secret
            && i.res.shares_namespace(at.res.namespace)
    });
    if exists || !mounting(model, class).is_empty() {
        return;
    }
    let declared: Vec<&str> = model
        .workloads
        .iter()
        .filter(|w| w.volumes.iter().any(|v| v.class == spc))
        .map(|w| w.item.res.name)
        .collect();
    let why = match declared.first() {
        Some(w) => format!("{w} declares the SecretProviderClass {spc} volume but no container lists it in volumeMounts, and the kubelet skips a volume no container mounts"),
        None => format!("no workload mounts the SecretProviderClass {spc} volume, and the driver syncs secretObjects only while a pod mounts it"),
    };
    r.error(Rule::SecretConsumer, at, read.field.clone(), format!("the Secret {} is never created: {why}", read.secret))
        .fix(format!("mount the {spc} volume (a csi volume with readOnly: true and a container's volumeMounts entry) in a workload of this namespace"));
}
