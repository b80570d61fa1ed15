//! Test infrastructure for akv-csi-provider: fakes of every Azure party the provider talks to
//! (and of the Kubernetes API it may read ServiceAccounts from),
//! served over real HTTPS on loopback with a generated CA, and an emulator of the Secrets Store
//! CSI driver (and of the Sync Controller) that calls the provider through its Unix socket.
//!
//! Nothing in `src/` of the provider knows this crate exists: the fakes are reached through the
//! provider's public flags (`--resolve`, `--extra-ca-file`) and an AzureStackCloud env file, or,
//! in the proxy tests, through a real tinyproxy named in the proxy variables.

pub mod assertion;
pub mod azure;
pub mod bench;
pub mod driver;
pub mod entra;
pub mod fault;
pub mod https;
pub mod keyvault;
pub mod kube;
pub mod node;
pub mod pfx;
pub mod pki;
pub mod provider;
pub mod proxy;
pub mod sa;
pub mod seed;
pub mod tinyproxy;
pub mod tls;
