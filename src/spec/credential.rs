//! The credential a mount authenticates with, as decided from the request.

use std::sync::Arc;

use super::ClientCertificate;
use crate::secret::Secret;

/// The credential a mount authenticates with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Federated service-account token exchanged at Entra ID (client assertion grant).
    WorkloadIdentity {
        client_id: String,
        assertion: Secret,
    },
    /// Client id and secret from the node-publish secret (client credentials grant).
    ServicePrincipal { client_id: String, secret: Secret },
    /// Client id and certificate from the node-publish secret (client credentials grant with a
    /// signed client assertion).
    ServicePrincipalCertificate {
        client_id: String,
        certificate: Arc<ClientCertificate>,
    },
    /// aad-pod-identity's NMI, acting for the pod.
    PodIdentity { namespace: String, name: String },
    /// The node's managed identity from IMDS; `None` is the system-assigned identity.
    VmManagedIdentity { client_id: Option<String> },
    /// AKS identity binding: the service-account token exchanged through the token proxy.
    IdentityBinding {
        client_id: String,
        assertion: Secret,
    },
}

impl Credential {
    /// Label for logs and metrics; never carries credential material.
    pub fn mode_name(&self) -> &'static str {
        match self {
            Credential::WorkloadIdentity { .. } => "workload_identity",
            Credential::ServicePrincipal { .. } => "service_principal",
            Credential::ServicePrincipalCertificate { .. } => "service_principal_certificate",
            Credential::PodIdentity { .. } => "pod_identity",
            Credential::VmManagedIdentity { .. } => "vm_managed_identity",
            Credential::IdentityBinding { .. } => "identity_binding",
        }
    }

    /// The client id the credential acts as, when it is known before any token call.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Credential::WorkloadIdentity { client_id, .. }
            | Credential::ServicePrincipal { client_id, .. }
            | Credential::ServicePrincipalCertificate { client_id, .. }
            | Credential::IdentityBinding { client_id, .. } => Some(client_id),
            Credential::VmManagedIdentity { client_id } => client_id.as_deref(),
            Credential::PodIdentity { .. } => None,
        }
    }

    /// Who the credential is, for people: mode and client id, never credential material.
    pub fn describe(&self) -> String {
        match self {
            Credential::WorkloadIdentity { client_id, .. } => {
                format!("workload identity, client id {client_id}")
            }
            Credential::ServicePrincipal { client_id, .. } => {
                format!("service principal, client id {client_id}")
            }
            Credential::ServicePrincipalCertificate {
                client_id,
                certificate,
            } => format!(
                "service principal, client id {client_id}, certificate {}",
                certificate.thumbprint()
            ),
            Credential::PodIdentity { namespace, name } => {
                format!("pod identity (NMI) for {namespace}/{name}")
            }
            Credential::VmManagedIdentity {
                client_id: Some(id),
            } => format!("VM managed identity, client id {id}"),
            Credential::VmManagedIdentity { client_id: None } => {
                "VM system-assigned managed identity".into()
            }
            Credential::IdentityBinding { client_id, .. } => {
                format!("identity binding, client id {client_id}")
            }
        }
    }
}

/// The workload identity annotations of a ServiceAccount (`azure.workload.identity/client-id`
/// and `azure.workload.identity/tenant-id`), as the Kubernetes API returned them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccountIdentity {
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
}
