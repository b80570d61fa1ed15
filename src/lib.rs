//! akv-csi-provider: an Azure Key Vault provider for the Kubernetes Secrets Store CSI Driver.
//!
//! A mount flows one way through the modules: [`server`] (gRPC on a Unix socket) hands the
//! request to [`request`] (JSON and YAML into a typed spec), [`provider`] asks [`identity`] for a
//! token and [`keyvault`] for the objects, and [`render`] turns them into files.

pub mod cache;
pub mod cloud;
pub mod identity;
pub mod keyvault;
pub mod lint;
pub mod local_mount;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod provider;
pub mod render;
pub mod request;
pub mod retry;
pub mod secret;
pub mod server;

pub mod proto {
    //! The driver's provider API, generated from `proto/service.proto`.
    pub mod v1alpha1 {
        tonic::include_proto!("v1alpha1");
    }
}
