//! `FakeAzure`: one test CA, the Entra ID fake and the Key Vault fake on their own loopback
//! ports, and what the provider needs to reach them without changing a URL: `--resolve` rules
//! for every cloud's login and vault host names, `--extra-ca-file`, and an AzureStackCloud
//! environment file for the test cloud `akv.test`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::entra::{Entra, TokenRegistry};
use crate::https::{self, Server};
use crate::keyvault::KeyVault;
use crate::kube::FakeKube;
use crate::node::{Node, NodeServers};
use crate::seed::Seed;
use crate::tls::TestCa;

/// The test cloud's DNS suffix: `login.akv.test`, `<vault>.vault.akv.test`.
pub const TEST_SUFFIX: &str = "akv.test";

/// (login host, vault DNS suffix) of every named cloud, so tests can mount from each of them.
pub const CLOUD_HOSTS: &[(&str, &str, &str)] = &[
    (
        "AzurePublicCloud",
        "login.microsoftonline.com",
        "vault.azure.net",
    ),
    (
        "AzureUSGovernmentCloud",
        "login.microsoftonline.us",
        "vault.usgovcloudapi.net",
    ),
    (
        "AzureChinaCloud",
        "login.chinacloudapi.cn",
        "vault.azure.cn",
    ),
    (
        "AzureGermanCloud",
        "login.microsoftonline.de",
        "vault.microsoftazure.de",
    ),
];

pub struct FakeAzure {
    pub entra: Arc<Entra>,
    pub keyvault: Arc<KeyVault>,
    pub tokens: Arc<TokenRegistry>,
    /// IMDS and NMI fakes (plain HTTP, as on a node).
    pub node: Arc<Node>,
    /// The Kubernetes API (ServiceAccounts), reached only by a provider started with its
    /// environment and flags ([`FakeKube::env`], [`FakeKube::provider_args`]).
    pub kube: FakeKube,
    entra_server: Server,
    keyvault_server: Server,
    node_servers: NodeServers,
    dir: tempfile::TempDir,
}

impl FakeAzure {
    pub async fn start(seed: Seed) -> FakeAzure {
        let ca = TestCa::new("testkit root CA");
        let mut login_names = vec![format!("login.{TEST_SUFFIX}")];
        let mut vault_names = vec![format!("*.vault.{TEST_SUFFIX}")];
        for (_, login, vault) in CLOUD_HOSTS {
            login_names.push(login.to_string());
            vault_names.push(format!("*.{vault}"));
        }
        let tokens = Arc::new(TokenRegistry::default());
        let kube = FakeKube::start(&seed).await;
        let entra = Arc::new(Entra::new(seed.clone(), tokens.clone()));
        let node = Node::new(seed.clone(), tokens.clone());
        let node_servers = node.serve().await;
        let keyvault = Arc::new(KeyVault::new(seed, tokens.clone()));
        let entra_server = https::serve(entra.router(), ca.server_config(&login_names)).await;
        let keyvault_server = https::serve(keyvault.router(), ca.server_config(&vault_names)).await;
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write CA");
        std::fs::write(
            dir.path().join("cloud.json"),
            serde_json::json!({
                "name": "AzureStackCloud",
                "activeDirectoryEndpoint": format!("https://login.{TEST_SUFFIX}/"),
                "keyVaultEndpoint": format!("https://vault.{TEST_SUFFIX}/"),
                "keyVaultDNSSuffix": format!("vault.{TEST_SUFFIX}"),
                "resourceManagerEndpoint": format!("https://management.{TEST_SUFFIX}/"),
            })
            .to_string(),
        )
        .expect("write cloud env file");
        FakeAzure {
            entra,
            keyvault,
            tokens,
            node,
            kube,
            entra_server,
            keyvault_server,
            node_servers,
            dir,
        }
    }

    pub fn entra_addr(&self) -> SocketAddr {
        self.entra_server.addr
    }

    pub fn keyvault_addr(&self) -> SocketAddr {
        self.keyvault_server.addr
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// AzureStackCloud environment file of the test cloud.
    pub fn cloud_env_file(&self) -> PathBuf {
        self.dir.path().join("cloud.json")
    }

    pub fn imds_addr(&self) -> SocketAddr {
        self.node_servers.imds
    }

    pub fn nmi_addr(&self) -> SocketAddr {
        self.node_servers.nmi
    }

    /// Every cloud's login and vault host patterns (a name or `*.suffix`) and the fake serving
    /// them.
    pub fn hosts(&self) -> Vec<(String, SocketAddr)> {
        let (e, k) = (self.entra_addr(), self.keyvault_addr());
        let mut hosts = vec![
            (format!("login.{TEST_SUFFIX}"), e),
            (format!("*.vault.{TEST_SUFFIX}"), k),
        ];
        for (_, login, vault) in CLOUD_HOSTS {
            hosts.push((login.to_string(), e));
            hosts.push((format!("*.{vault}"), k));
        }
        hosts
    }

    /// Flags that route every cloud's login and vault hosts to the fakes and trust their CA.
    pub fn provider_args(&self) -> Vec<String> {
        let mut args: Vec<String> = self
            .hosts()
            .iter()
            .map(|(pattern, addr)| format!("--resolve={pattern}={addr}"))
            .collect();
        args.push(format!("--extra-ca-file={}", self.ca_file().display()));
        args.push(format!("--imds-endpoint=http://{}", self.node_servers.imds));
        args.push(format!("--nmi-endpoint=http://{}", self.node_servers.nmi));
        args
    }
}
