//! The domain of a mount, independent of how it was asked for: the pod, the vault and tenant,
//! the cloud, the credential, and each object with the files it writes. The request parser
//! builds these; identity, Key Vault, rendering and the CLI read them.

mod certificate;
mod credential;
mod files;

pub use certificate::{CertificateError, ClientCertificate};
pub use credential::{Credential, ServiceAccountIdentity};
pub use files::FileRole;

use crate::cloud::Cloud;
use crate::json_path::JsonPath;

/// The pod a mount is for (the Sync Controller's own pod when it is the caller).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodInfo {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub service_account: String,
    /// Name of the SecretProviderClass, when the caller sent it (driver ≥ v1.6 first mounts).
    pub spc: String,
}

/// A fully parsed and validated mount request.
#[derive(Debug, Clone)]
pub struct MountSpec {
    pub pod: PodInfo,
    pub vault_name: String,
    pub tenant_id: String,
    pub cloud: Cloud,
    pub credential: Credential,
    pub objects: Vec<ObjectSpec>,
    /// Mode for files without `filePermission` (the request's `permission`, normally 0644).
    pub default_mode: u32,
}

impl MountSpec {
    /// The vault an object is read from: its own `keyvaultName`, else the SPC's.
    pub fn vault_of<'a>(&'a self, object: &'a ObjectSpec) -> &'a str {
        object.vault.as_deref().unwrap_or(&self.vault_name)
    }
}

/// Which Key Vault collection an object lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    Secret,
    Key,
    Cert,
}

impl ObjectType {
    /// The spelling used in ObjectVersion ids and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Secret => "secret",
            ObjectType::Key => "key",
            ObjectType::Cert => "cert",
        }
    }
}

/// `objectFormat`: how a certificate-backed secret is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectFormat {
    Pem,
    Pfx,
}

/// `objectEncoding`: how a secret's value is decoded before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectEncoding {
    Utf8,
    Base64,
    Hex,
}

/// One validated object of the SPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSpec {
    pub name: String,
    pub object_type: ObjectType,
    /// `None` means the latest version (`""` or `latest`).
    pub version: Option<String>,
    /// The version text as the user wrote it, for error messages.
    pub version_text: String,
    /// File path of the object (alias or name).
    pub file_name: String,
    pub format: ObjectFormat,
    pub encoding: ObjectEncoding,
    /// Explicit per-object mode; `None` uses the request's default.
    pub file_mode: Option<u32>,
    /// Number of versions to write (`objectVersionHistory`); 1 means the single-version layout.
    pub history: u32,
    /// `optional`: a missing or disabled object is skipped instead of failing the mount.
    pub optional: bool,
    /// `keyvaultName` of this object, when it names another vault than the SPC's.
    pub vault: Option<String>,
    /// `jsonPaths`: values of a JSON secret written as their own files.
    pub json: Vec<JsonSelection>,
    /// `jsonOnly`: write only the `jsonPaths` selections…
    pub json_only: bool,
    /// …unless `objectAlias` is set, which asks for the whole secret under that name.
    pub has_alias: bool,
}

/// One `jsonPaths` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonSelection {
    pub path: JsonPath,
    pub file_name: String,
    pub file_mode: Option<u32>,
}

impl ObjectSpec {
    /// Whether the object itself is written (not with `jsonOnly` and no `objectAlias`).
    pub fn writes_whole(&self) -> bool {
        !self.json_only || self.has_alias
    }

    /// The `ObjectVersion.id`: `<type>/<name>` as the Go provider reports it, prefixed with
    /// `<vault>/` for an object of another vault so ids stay unique across vaults.
    pub fn uid(&self) -> String {
        match &self.vault {
            Some(vault) => format!("{vault}/{}/{}", self.object_type.as_str(), self.name),
            None => format!("{}/{}", self.object_type.as_str(), self.name),
        }
    }

    /// Whether the object uses the `objectVersionHistory` layout (`<file>/<i>`).
    pub fn has_history(&self) -> bool {
        self.history > 1
    }
}

#[cfg(test)]
impl ObjectSpec {
    /// A plain secret `name`, written as `name`, for tests.
    pub(crate) fn test_secret(name: &str) -> ObjectSpec {
        ObjectSpec {
            name: name.into(),
            object_type: ObjectType::Secret,
            version: None,
            version_text: String::new(),
            file_name: name.into(),
            format: ObjectFormat::Pem,
            encoding: ObjectEncoding::Utf8,
            file_mode: None,
            history: 1,
            optional: false,
            vault: None,
            json: Vec::new(),
            json_only: false,
            has_alias: false,
        }
    }
}

/// One object that could not be mounted (or not even parsed), with the Go provider's message
/// prefix, which users and alerts match on; `C` says why.
#[derive(Debug, thiserror::Error)]
#[error(
    "failed to get objectType:{object_type}, objectName:{name}, objectVersion:{version}: {cause}"
)]
pub struct ObjectError<C> {
    /// As the user wrote it (it may be the invalid type that is being reported).
    pub object_type: String,
    pub name: String,
    pub version: String,
    pub cause: C,
}

impl<C> ObjectError<C> {
    /// The failure of a validated object.
    pub fn new(object: &ObjectSpec, cause: C) -> ObjectError<C> {
        ObjectError {
            object_type: object.object_type.as_str().to_string(),
            name: object.name.clone(),
            version: object.version_text.clone(),
            cause,
        }
    }
}
