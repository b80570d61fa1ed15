//! `secretObjects`: the Kubernetes Secrets the driver fills from a class's mounted files. The
//! type must be one Kubernetes knows and carry the keys it requires (Kubernetes refuses the
//! Secret otherwise), and each `objectName` must be a file the class writes, holding what the
//! key needs; otherwise the Secret is never created.

use super::near_miss::check_field_names;
use super::objects::Files;
use super::{Item, Report, Rule};
use crate::cli::manifest::SecretProviderClass;
use crate::cli::yaml::Node;

/// Secret types Kubernetes defines.
const TYPES: &[&str] = &[
    "Opaque",
    "kubernetes.io/tls",
    "kubernetes.io/basic-auth",
    "kubernetes.io/dockerconfigjson",
    "kubernetes.io/dockercfg",
    "kubernetes.io/ssh-auth",
    "kubernetes.io/service-account-token",
    "bootstrap.kubernetes.io/token",
];

const SECRET_OBJECT_FIELDS: &[&str] = &["secretName", "type", "labels", "annotations", "data"];
const DATA_FIELDS: &[&str] = &["objectName", "key"];

/// The type a user probably meant by an unknown one (`Secret`, `tls`), if any.
fn meant_type(kind: &str) -> Option<&'static str> {
    let lower = kind.to_ascii_lowercase();
    let bare = lower.rsplit('/').next().unwrap_or(&lower);
    TYPES
        .iter()
        .find(|t| t.eq_ignore_ascii_case(kind))
        .copied()
        .or(match bare {
            "secret" | "generic" | "opaque" | "string" | "default" => Some("Opaque"),
            "tls" | "ssl" | "certificate" | "cert" => Some("kubernetes.io/tls"),
            "basic-auth" | "basicauth" | "basic" => Some("kubernetes.io/basic-auth"),
            "dockerconfigjson" | "docker-registry" | "docker" => {
                Some("kubernetes.io/dockerconfigjson")
            }
            "ssh-auth" | "ssh" => Some("kubernetes.io/ssh-auth"),
            _ => None,
        })
}

/// The keys a Secret type must have, as Kubernetes validates it: all of them, or one of them.
fn required_keys(kind: &str) -> Option<(&'static [&'static str], bool)> {
    match kind {
        "kubernetes.io/tls" => Some((&["tls.crt", "tls.key"], true)),
        "kubernetes.io/basic-auth" => Some((&["username", "password"], false)),
        "kubernetes.io/ssh-auth" => Some((&["ssh-privatekey"], true)),
        "kubernetes.io/dockerconfigjson" => Some((&[".dockerconfigjson"], true)),
        "kubernetes.io/dockercfg" => Some((&[".dockercfg"], true)),
        _ => None,
    }
}

/// Checks each `secretObjects` entry of a SecretProviderClass.
pub(super) fn check(spc: &SecretProviderClass, files: &Files, item: &Item, r: &mut Report) {
    let Some(list) = spc.secret_objects else {
        return;
    };
    if list.items().is_empty() && list.as_str().is_some() {
        r.error(
            Rule::Resource,
            item,
            "spec.secretObjects",
            "secretObjects must be a list",
        );
        return;
    }
    for (i, so) in list.items().iter().enumerate() {
        let field = format!("spec.secretObjects[{i}]");
        check_field_names(so, SECRET_OBJECT_FIELDS, &field, "Kubernetes", item, r);
        if so.str_at("secretName").is_empty() {
            r.error(
                Rule::SecretSync,
                item,
                format!("{field}.secretName"),
                "the driver needs the name of the Kubernetes Secret to create",
            );
        }
        let kind = so.str_at("type");
        check_type(kind, &field, item, r);
        let keys: Vec<&str> = so.items_at("data").map(|d| d.str_at("key")).collect();
        check_required_keys(so, kind, &keys, &field, item, r);
        for (j, data) in so.items_at("data").enumerate() {
            let data_field = format!("{field}.data[{j}]");
            check_field_names(data, DATA_FIELDS, &data_field, "Kubernetes", item, r);
            check_key(data.str_at("key"), kind, &data_field, item, r);
            check_object_name(data.str_at("objectName"), files, &data_field, item, r);
            if kind == "kubernetes.io/tls" {
                check_tls_source(data, files, &data_field, item, r);
            }
        }
    }
}

fn check_type(kind: &str, field: &str, item: &Item, r: &mut Report) {
    let at = format!("{field}.type");
    if kind.is_empty() {
        r.error(
            Rule::SecretSync,
            item,
            at,
            "the driver refuses a secretObject without type, so the Secret is never created",
        )
        .fix("type: Opaque (or kubernetes.io/tls, kubernetes.io/basic-auth, …)");
    } else if !TYPES.contains(&kind) {
        // Types of other domains (example.com/x) are legitimate custom types.
        let custom = kind.contains('/') && !kind.to_ascii_lowercase().starts_with("kubernetes.io/");
        if let (Some(meant), false) = (meant_type(kind), custom) {
            r.warn(Rule::SecretSync, item, at, format!("{kind:?} is not a Kubernetes Secret type: Kubernetes accepts it as a custom type, which no consumer expects"))
                .fix(format!("type: {meant}"));
        } else if !custom {
            r.warn(
                Rule::SecretSync,
                item,
                at,
                format!("{kind:?} is not a Kubernetes Secret type"),
            )
            .fix("type: Opaque, or a custom type with a domain prefix (example.com/my-type)");
        }
    }
}

fn check_required_keys(
    so: &Node,
    kind: &str,
    keys: &[&str],
    field: &str,
    item: &Item,
    r: &mut Report,
) {
    if let Some((required, all)) = required_keys(kind) {
        let missing: Vec<&str> = required
            .iter()
            .filter(|k| !keys.contains(k))
            .copied()
            .collect();
        if (all && !missing.is_empty()) || (!all && missing.len() == required.len()) {
            let which = if all { "" } else { "one of " };
            r.error(Rule::SecretSync, item, format!("{field}.data"), format!("a {kind} Secret needs {which}the key(s) {}: Kubernetes refuses it without, so the Secret is never created", required.join(", ")))
                .fix(format!("add data entries with key {}", missing.join(" and ")));
        }
    }
    if kind == "kubernetes.io/service-account-token"
        && so
            .get("annotations")
            .and_then(|a| a.get("kubernetes.io/service-account.name"))
            .is_none()
    {
        r.error(Rule::SecretSync, item, format!("{field}.annotations"), "a service-account-token Secret needs the annotation kubernetes.io/service-account.name: Kubernetes refuses it without, so the Secret is never created");
    }
}

fn check_key(key: &str, kind: &str, field: &str, item: &Item, r: &mut Report) {
    let at = format!("{field}.key");
    if key.is_empty() {
        r.error(
            Rule::SecretSync,
            item,
            at,
            "set the key of the Kubernetes Secret the file is copied to",
        );
    } else if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        || key.len() > 253
    {
        r.error(Rule::SecretSync, item, at, format!("{key:?} is not a valid Secret key (letters, digits, '-', '_' and '.'): Kubernetes refuses the Secret, so it is never created"))
            .fix(format!("key: {}", key.replace(|c: char| !c.is_ascii_alphanumeric() && !"-._".contains(c), "-")));
    } else if kind == "kubernetes.io/tls" && key != "tls.crt" && key != "tls.key" {
        r.error(Rule::SecretSync, item, at, format!("key '{key}' is not supported for kubernetes.io/tls: the driver fills only tls.crt and tls.key"))
            .fix("use tls.crt and tls.key, both with the certificate's objectName");
    }
}

fn check_object_name(name: &str, files: &Files, field: &str, item: &Item, r: &mut Report) {
    let at = format!("{field}.objectName");
    let split = files.conditional.contains(name);
    if !files.all.contains(name) && !split {
        let known = files.all.iter().cloned().collect::<Vec<_>>().join(", ");
        r.error(Rule::SecretSync, item, at, format!("{name:?} is not a file this SecretProviderClass writes (files: {known}), so the Secret is never created"))
            .fix("use the objectAlias, a jsonPaths objectAlias, or <name>/<index> with objectVersionHistory");
    } else if files.optional.contains(name) {
        r.warn(Rule::SecretSync, item, at, format!("{name:?} comes from an optional object: while it is absent the driver cannot build this Secret (file matching objectName {name} not found in the pod)"));
    } else if split {
        r.warn(Rule::SecretSync, item, at, format!("{name:?} exists only when the provider runs with --write-cert-and-key-in-separate-files and the secret is certificate-backed"));
    }
}

/// `tls.key` needs a private key and `tls.crt` a certificate: a `cert` object has no key, a `key`
/// object neither; the driver then fails to build the Secret.
fn check_tls_source(data: &Node, files: &Files, field: &str, item: &Item, r: &mut Report) {
    let (name, key) = (data.str_at("objectName"), data.str_at("key"));
    let lacks = match key {
        "tls.key" if files.no_private_key.contains(name) => "private key",
        "tls.crt" if files.no_certificate.contains(name) => "certificate",
        _ => return,
    };
    r.error(Rule::SecretSync, item, format!("{field}.objectName"), format!("{name:?} comes from a cert or key object, which holds no {lacks}: the driver cannot fill {key}, so the Secret is never created"))
        .fix("mount the certificate with objectType: secret (its secret holds the private key and the chain)");
}
