//! A mount request whose workload identity the pod's ServiceAccount names
//! (`--client-id-from-service-account`): parsed, waiting for the ServiceAccount's annotations.

use super::auth::{self, AuthError, Mode};
use super::{is_identifier, validate_tenant, RequestError};
use crate::cloud::Cloud;
use crate::secret::Secret;
use crate::spec::{Credential, MountSpec, ObjectSpec, PodInfo, ServiceAccountIdentity};

/// A parsed mount request.
#[derive(Debug)]
pub enum Parsed {
    Ready(MountSpec),
    /// Workload identity whose client id the pod's ServiceAccount names.
    Pending(Pending),
}

/// A mount that needs the workload identity annotations of the pod's ServiceAccount.
#[derive(Debug)]
pub struct Pending {
    /// Everything but the credential, and the tenant when the SPC sets one.
    pub(super) pod: PodInfo,
    pub(super) vault_name: String,
    pub(super) tenant_id: Option<String>,
    pub(super) cloud: Cloud,
    pub(super) objects: Vec<ObjectSpec>,
    pub(super) default_mode: u32,
    pub(super) assertion: Secret,
    pub(super) namespace: String,
    pub(super) name: String,
}

impl Pending {
    /// The ServiceAccount to read: namespace and name (valid Kubernetes names).
    pub fn service_account(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }

    /// The mount, with the client id of the ServiceAccount's `azure.workload.identity/client-id`
    /// annotation, and its `azure.workload.identity/tenant-id` annotation, when present,
    /// replacing `tenantID` (the identity lives in that tenant, so its token comes from there).
    pub fn resolve(self, identity: &ServiceAccountIdentity) -> Result<MountSpec, RequestError> {
        let (namespace, name) = (self.namespace, self.name);
        let problem = |annotation, what, value: &str| auth::AuthProblem::ServiceAccountAnnotation {
            namespace: namespace.clone(),
            name: name.clone(),
            annotation,
            what,
            value: value.escape_debug().to_string(),
        };
        let fail = |problem| {
            RequestError::Auth(AuthError {
                mode: Mode::None,
                problem,
            })
        };
        let client_id = match identity.client_id.as_deref().map(str::trim) {
            None | Some("") => {
                return Err(fail(auth::AuthProblem::ServiceAccountClientId {
                    namespace: namespace.clone(),
                    name: name.clone(),
                }))
            }
            Some(id) if !is_identifier(id) => {
                return Err(fail(problem(
                    "azure.workload.identity/client-id",
                    "client id",
                    id,
                )))
            }
            Some(id) => id.to_string(),
        };
        let tenant_id = match identity.tenant_id.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => {
                validate_tenant(t)
                    .map_err(|_| fail(problem("azure.workload.identity/tenant-id", "tenant", t)))?;
                t.to_string()
            }
            _ => self
                .tenant_id
                .ok_or_else(|| RequestError::TenantNotAnnotated {
                    namespace: namespace.clone(),
                    name: name.clone(),
                })?,
        };
        Ok(MountSpec {
            pod: self.pod,
            vault_name: self.vault_name,
            tenant_id,
            cloud: self.cloud,
            credential: Credential::WorkloadIdentity {
                client_id,
                assertion: self.assertion,
            },
            objects: self.objects,
            default_mode: self.default_mode,
        })
    }
}
