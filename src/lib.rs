//! akv-csi-provider: an Azure Key Vault provider for the Kubernetes Secrets Store CSI Driver.
//!
//! A mount flows one way through the modules:
//!
//! ```text
//! server ─▶ request ─▶ spec ─▶ provider ─▶ identity ─▶ keyvault ─▶ render ─▶ files
//! (gRPC)    (parser)   (domain) (phases)    (tokens)    (REST)      (bytes)
//! ```
//!
//! - `server`: the Unix-socket gRPC service, `/healthz` and `/metrics`; parses each request
//!   with `request` (completing it from the pod's ServiceAccount through `kube` where asked) and
//!   hands the `spec::MountSpec` to the provider.
//! - `request`: the driver's JSON and the `objects` YAML into a validated spec, with the Go
//!   provider's checks and texts. Only the server and the CLI read it.
//! - `spec`: the domain: pod, identity, cloud, objects and the files each object writes.
//! - `provider`: one mount in phases: vaults, plan, fetch (caches, per-vault bounds), render,
//!   outcome.
//! - `identity`: tokens for every identity mode (client assertions signed with a service
//!   principal's certificate included), cached per credential material.
//! - `keyvault`: the Key Vault REST client (challenge, paging, errors worded for users).
//! - `render`: Key Vault objects into file contents (encodings, PFX, chains, JWKs, JSON paths).
//! - `kube`: the pod's ServiceAccount from the Kubernetes API (`--client-id-from-service-account`).
//! - `http` and `retry`: the one outbound-call loop every hop uses; `net`: the HTTP client and
//!   the proxies of the environment.
//! - `cache`, `cloud`, `json_path`, `go`, `metrics`, `logging`, `secret`: shared pieces.
//! - [`cli`]: the command line: server flags, `mount`, and `lint`, which checks whole
//!   applications (YAML read with positions) with the request parser's own rules.

mod cache;
pub mod cli;
mod cloud;
mod go;
mod http;
mod identity;
mod json_path;
mod keyvault;
mod kube;
pub mod logging;
mod metrics;
mod net;
mod provider;
mod render;
mod request;
mod retry;
mod secret;
mod server;
mod spec;

pub use identity::sni_for_cluster;

/// Every parser of untrusted input, for the fuzz targets in `fuzz/`.
pub mod parsers {
    pub use crate::cli::lint::lint;
    pub use crate::cloud::{parse_env_file, CloudName};
    pub use crate::json_path::{file_contents, JsonPath};
    pub use crate::keyvault::{
        challenge_scope, parse_certificate, parse_key, parse_secret, parse_versions,
    };
    pub use crate::render::{chain, jwk, pfx};
    pub use crate::request::objects::parse as objects;
    pub use crate::request::{parse as mount_request, RequestDefaults};
}

pub mod proto {
    //! The driver's provider API, generated from `proto/service.proto`.
    pub mod v1alpha1 {
        tonic::include_proto!("v1alpha1");
    }
}
