//! The Azure identity a token was issued to. A mount proves an identity by obtaining a token
//! for it with its own credential material; objects fetched with such a token may then serve
//! other mounts that prove the same identity (see README "Caching and security").

use crate::cache::{CacheKey, KeyBuilder};

/// Who a token was issued to, as the token's issuer vouches: the issuer (the cloud's Entra
/// authority, the identity-binding token proxy, IMDS or NMI), the tenant (empty where the issuer
/// does not say: IMDS, NMI) and the client id (`system-assigned` for a VM's own identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// How it was proven (`workload_identity`, …), for the audit trail; not part of the key:
    /// a service principal's secret and its federated credential prove the same identity.
    pub mode: &'static str,
    pub issuer: String,
    pub tenant: String,
    pub client_id: String,
}

impl Identity {
    /// What objects fetched with this identity's tokens are cached under.
    pub fn key(&self) -> CacheKey {
        KeyBuilder::default()
            .part("identity")
            .part(&self.issuer)
            .part(&self.tenant)
            .part(&self.client_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(mode: &'static str, issuer: &str, tenant: &str, client_id: &str) -> Identity {
        Identity {
            mode,
            issuer: issuer.into(),
            tenant: tenant.into(),
            client_id: client_id.into(),
        }
    }

    #[test]
    fn keys_separate_issuers_tenants_and_clients_only() {
        let a = identity("workload_identity", "https://login/", "t1", "c");
        assert_eq!(
            a.key(),
            identity("service_principal", "https://login/", "t1", "c").key()
        );
        assert_ne!(
            a.key(),
            identity("workload_identity", "https://login/", "t2", "c").key()
        );
        assert_ne!(
            a.key(),
            identity("workload_identity", "https://login/", "t1", "d").key()
        );
        assert_ne!(
            a.key(),
            identity("identity_binding", "https://proxy/", "t1", "c").key()
        );
    }
}
