//! The objects of a SecretProviderClass: the mount's errors at the object field they concern, a
//! fix for the `objectType`s users really write, misspelt fields, objects that write the same
//! file, and the files `secretObjects` may copy ([`ObjectSpec::files`], the mount's own list).

use std::collections::BTreeSet;

use super::near_miss::check_field_names;
use super::spc::MountErrors;
use super::{Item, Report, Rule};
use crate::cli::yaml::Node;
use crate::request::objects::{self, ObjectProblem, ObjectsError};
use crate::spec::{ObjectSpec, ObjectType};

pub(super) type Parsed = Result<Vec<Result<ObjectSpec, ObjectsError>>, ObjectsError>;

/// Every object's problems; the files the valid ones write.
pub(super) fn check_objects(parsed: Parsed, mount: &mut MountErrors, r: &mut Report) -> Files {
    let mut files = Files::default();
    let list = match parsed {
        Ok(list) => list,
        Err(e) => {
            mount.report(r, e.into());
            return files;
        }
    };
    let item = mount.item;
    if list.is_empty() {
        r.warn(
            Rule::Objects,
            item,
            "spec.parameters.objects",
            "the objects array is empty: the mount writes no files",
        )
        .fix("list at least one object");
    }
    for (i, object) in list.into_iter().enumerate() {
        let at = format!("spec.parameters.objects[{i}]");
        match object {
            Err(e) => {
                let field = match object_field(&e) {
                    Some(f) => format!("{at}.{f}"),
                    None => at,
                };
                let fix = type_fix(&e);
                let finding = r.error(Rule::Mount, item, field, e.to_string());
                if let Some(fix) = fix {
                    finding.fix(fix);
                }
            }
            Ok(o) => {
                if o.json_only && o.has_alias {
                    r.warn(Rule::Objects, item, format!("{at}.jsonOnly"), format!("the whole secret is still written, as {:?}, because objectAlias is set", o.file_name))
                        .fix("remove objectAlias to write only the jsonPaths files");
                }
                for path in files.add(&o) {
                    r.warn(Rule::Objects, item, at.clone(), format!("{path:?} is also written by an earlier object: the driver keeps only one of them"))
                        .fix("give one of them an objectAlias");
                }
            }
        }
    }
    files
}

/// The object field a mount error is about.
fn object_field(e: &ObjectsError) -> Option<&'static str> {
    let ObjectsError::Object(e) = e else {
        return None;
    };
    Some(match &e.cause {
        ObjectProblem::MissingName | ObjectProblem::InvalidName(_) => "objectName",
        ObjectProblem::Placeholder { field, .. } | ObjectProblem::Bool { field, .. } => field,
        ObjectProblem::InvalidVersion(_) => "objectVersion",
        ObjectProblem::InvalidType => "objectType",
        ObjectProblem::InvalidFormat(_) | ObjectProblem::PfxNotSecret => "objectFormat",
        ObjectProblem::EncodingNotSecret | ObjectProblem::InvalidEncoding(_) => "objectEncoding",
        ObjectProblem::InvalidPermission(_) | ObjectProblem::PermissionOutOfRange(_) => {
            "filePermission"
        }
        ObjectProblem::HistoryTooLarge(_) => "objectVersionHistory",
        ObjectProblem::VaultName(_) => "keyvaultName",
        ObjectProblem::Path(_) => "objectAlias",
        ObjectProblem::JsonOnlyWithoutPaths => "jsonOnly",
        ObjectProblem::JsonPathsNotSecret
        | ObjectProblem::JsonPathsPfx
        | ObjectProblem::JsonPathSyntax { .. }
        | ObjectProblem::JsonPathAlias(_)
        | ObjectProblem::JsonPathFile { .. } => "jsonPaths",
    })
}

/// The type meant by an `objectType` users really write (`string`, `Secret`, `certificate`).
fn type_fix(e: &ObjectsError) -> Option<String> {
    let ObjectsError::Object(e) = e else {
        return None;
    };
    if !matches!(e.cause, ObjectProblem::InvalidType) {
        return None;
    }
    let meant = match e.object_type.to_ascii_lowercase().as_str() {
        "secret" | "secrets" | "string" | "str" | "password" | "text" => "secret",
        "key" | "keys" | "rsa" | "ec" => "key",
        "cert" | "certs" | "certificate" | "certificates" | "x509" => "cert",
        _ => return Some("objectType is case-sensitive: use secret, key or cert".into()),
    };
    Some(format!(
        "objectType: {meant} (case-sensitive: secret, key or cert)"
    ))
}

/// Object fields the provider ignores because they are misspelt.
pub(super) fn check_object_fields(objects: Option<&Node>, item: &Item, r: &mut Report) {
    let Some(array) = objects.and_then(Node::embedded) else {
        return;
    };
    for (i, object) in array.items_at("array").enumerate() {
        if let Some(object) = object.embedded() {
            let field = format!("spec.parameters.objects[{i}]");
            check_field_names(&object, objects::FIELDS, &field, "the provider", item, r);
        }
    }
}

/// The files a SecretProviderClass writes, as `secretObjects` may name them.
#[derive(Default)]
pub(super) struct Files {
    pub all: BTreeSet<String>,
    /// Files of `optional` objects: absent when the object is.
    pub optional: BTreeSet<String>,
    /// Files that exist only with `--write-cert-and-key-in-separate-files` for a
    /// certificate-backed secret.
    pub conditional: BTreeSet<String>,
    /// Files of `cert` and `key` objects, which hold no private key, and of those the `key`
    /// objects, which hold no certificate either.
    pub no_private_key: BTreeSet<String>,
    pub no_certificate: BTreeSet<String>,
}

impl Files {
    /// Adds an object's files; returns those an earlier object already writes.
    fn add(&mut self, o: &ObjectSpec) -> Vec<String> {
        let mut repeated = Vec::new();
        for file in o.slots().into_iter().flat_map(|slot| o.files(slot)) {
            if o.optional {
                self.optional.insert(file.path.clone());
            }
            if o.object_type != ObjectType::Secret {
                self.no_private_key.insert(file.path.clone());
            }
            if o.object_type == ObjectType::Key {
                self.no_certificate.insert(file.path.clone());
            }
            if file.is_conditional() {
                self.conditional.insert(file.path);
            } else if !self.all.insert(file.path.clone()) {
                repeated.push(file.path);
            }
        }
        repeated
    }
}
