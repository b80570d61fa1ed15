//! Why a mount failed: every object that failed, in SPC order, or the mount as a whole.

use std::sync::Arc;
use std::time::Duration;

use crate::keyvault::KvError;
use crate::render::RenderError;
use crate::spec::ObjectError;

/// A mount that did not produce its files.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("failed to mount objects, error: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Objects(Vec<ObjectError<ObjectCause>>),
    #[error("failed to mount objects, error: the mount did not finish within {0:?} (--mount-timeout); Key Vault or the identity endpoint is too slow or unreachable")]
    Timeout(Duration),
    #[error("failed to mount objects, error: the files of this mount total {0} bytes, above the driver's 4 MiB gRPC message limit: mount fewer or smaller objects per SecretProviderClass")]
    TooLarge(usize),
}

impl MountError {
    /// Low-cardinality class for metrics and logs.
    pub fn class(&self) -> &'static str {
        match self {
            MountError::Objects(_) => "object_error",
            MountError::Timeout(_) => "timeout",
            MountError::TooLarge(_) => "too_large",
        }
    }
}

/// Why one object failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectCause {
    #[error(transparent)]
    KeyVault(#[from] Arc<KvError>),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("objectVersion {0} is not among the enabled versions of this object: pin an existing enabled version or leave objectVersion empty")]
    VersionNotListed(String),
    /// A history listing without an enabled version (Key Vault lists no versions of an object
    /// that does not exist).
    #[error("{}", match .listed {
        0 => "Key Vault lists no version of this object: check objectName and keyvaultName".to_string(),
        1 => "the only version of this object is disabled in Key Vault: enable it, or mark the object optional".to_string(),
        n => format!("all {n} versions of this object are disabled in Key Vault: enable one, or mark the object optional"),
    })]
    NoEnabledVersion { listed: usize },
}

impl ObjectCause {
    /// Why an `optional` object may be skipped: Key Vault has no enabled version of it. Every
    /// other failure (access, throttling, transport, content) still fails the mount.
    pub fn absence(&self) -> Option<&'static str> {
        match self {
            ObjectCause::KeyVault(e) => match **e {
                KvError::NotFound { .. } => Some("not found"),
                KvError::Disabled { .. } => Some("disabled"),
                _ => None,
            },
            ObjectCause::VersionNotListed(_) | ObjectCause::NoEnabledVersion { listed: 0 } => {
                Some("not found")
            }
            ObjectCause::NoEnabledVersion { .. } => Some("disabled"),
            ObjectCause::Render(_) => None,
        }
    }
}
