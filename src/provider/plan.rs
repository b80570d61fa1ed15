//! The phases before anything is fetched: the vault of each object, the identity the mount
//! proves for each vault, the versions each object writes (one, or the newest N enabled ones of
//! its listing), and the distinct GETs they take.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::future::join_all;
use url::Url;

use super::{ObjectCause, Provider, Scope};
use crate::cache::CacheKey;
use crate::keyvault::{KvError, ObjectRef, Vault, VersionItem};
use crate::spec::{MountSpec, ObjectSpec};

/// An object's vault and the identity the mount proved for it.
#[derive(Debug, Clone)]
pub(super) struct Proof {
    pub vault: Arc<Vault>,
    pub identity: CacheKey,
}

/// One version slot of an object: what to GET, as which identity, and where its files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Planned {
    pub object: ObjectRef,
    pub identity: CacheKey,
    /// Position in the `objectVersionHistory` layout, if the object uses it.
    pub slot: Option<usize>,
}

/// Each object's plan, in SPC order.
pub(super) type Plans = Vec<Result<Vec<Planned>, ObjectCause>>;

/// The vault of each object, in SPC order, each distinct vault resolved once.
pub(super) fn vaults(spec: &MountSpec) -> Vec<Result<Arc<Vault>, ObjectCause>> {
    let mut resolved: HashMap<String, Result<Arc<Vault>, Arc<KvError>>> = HashMap::new();
    spec.objects
        .iter()
        .map(|object| {
            let name = spec.vault_of(object);
            resolved
                .entry(name.to_ascii_lowercase())
                .or_insert_with(|| {
                    Vault::new(name, &spec.cloud.key_vault_dns_suffix)
                        .map(Arc::new)
                        .map_err(Arc::new)
                })
                .clone()
                .map_err(ObjectCause::KeyVault)
        })
        .collect()
}

/// The versions an object with history writes, newest first: the enabled versions of its
/// listing by creation time, from `objectVersion` on if it is pinned, at most `history`; at
/// least one, or the object has no file to write.
pub(super) fn history_versions(
    object: &ObjectSpec,
    listing: &[VersionItem],
) -> Result<Vec<String>, ObjectCause> {
    let mut versions: Vec<&VersionItem> = listing.iter().filter(|v| v.enabled).collect();
    if versions.is_empty() && object.version.is_none() {
        return Err(ObjectCause::NoEnabledVersion {
            listed: listing.len(),
        });
    }
    // Stable: same-second versions keep Key Vault's listing order, as Go's sort.Sort does for
    // short lists (README "Certificates and keys").
    versions.sort_by_key(|v| Reverse(v.created));
    let start = match &object.version {
        None => 0,
        Some(wanted) => versions
            .iter()
            .position(|v| &v.version == wanted)
            .ok_or_else(|| ObjectCause::VersionNotListed(wanted.clone()))?,
    };
    Ok(versions
        .into_iter()
        .skip(start)
        .take(object.history as usize)
        .map(|v| v.version.clone())
        .collect())
}

/// The distinct objects the plans GET, each once, in first-use order, with their identity.
pub(super) fn distinct(plans: &Plans) -> Vec<(ObjectRef, CacheKey)> {
    let mut seen = HashSet::new();
    plans
        .iter()
        .flatten()
        .flatten()
        .filter(|p| seen.insert(&p.object))
        .map(|p| (p.object.clone(), p.identity))
        .collect()
}

/// The object of `spec` a vault's proof asks about (it names the vault's challenge request).
fn object_ref(spec: &MountSpec, index: usize, vault: Arc<Vault>) -> ObjectRef {
    let object = &spec.objects[index];
    ObjectRef {
        vault,
        kind: object.object_type,
        name: object.name.clone(),
        version: object.version.clone(),
    }
}

impl Provider {
    /// The identity proven for each object's vault, each distinct vault proven once.
    pub(super) async fn prove_all(
        &self,
        spec: &MountSpec,
        vaults: Vec<Result<Arc<Vault>, ObjectCause>>,
        scope: &Scope<'_>,
    ) -> Vec<Result<Proof, ObjectCause>> {
        let mut first: HashMap<Url, ObjectRef> = HashMap::new();
        for (index, vault) in vaults.iter().enumerate() {
            if let Ok(vault) = vault {
                first
                    .entry(vault.url.clone())
                    .or_insert_with(|| object_ref(spec, index, vault.clone()));
            }
        }
        let proving = first.into_values().map(|object| async move {
            let proof = self.prove(&object, scope).await;
            (object.vault.url.clone(), proof)
        });
        let proven: HashMap<Url, Result<CacheKey, Arc<KvError>>> =
            join_all(proving).await.into_iter().collect();
        vaults
            .into_iter()
            .map(|vault| {
                let vault = vault?;
                let identity = proven[&vault.url].clone().map_err(ObjectCause::KeyVault)?;
                Ok(Proof { vault, identity })
            })
            .collect()
    }

    /// An object's version slots; an object with history lists its versions first.
    pub(super) async fn plan(
        &self,
        object: &ObjectSpec,
        proof: Result<Proof, ObjectCause>,
        scope: &Scope<'_>,
    ) -> Result<Vec<Planned>, ObjectCause> {
        let Proof { vault, identity } = proof?;
        let base = ObjectRef {
            vault,
            kind: object.object_type,
            name: object.name.clone(),
            version: object.version.clone(),
        };
        if !object.has_history() {
            return Ok(vec![Planned {
                object: base,
                identity,
                slot: None,
            }]);
        }
        let listing = self.list_versions(&base, &identity, scope).await?;
        Ok(history_versions(object, &listing.copy.value)?
            .into_iter()
            .enumerate()
            .map(|(i, version)| Planned {
                object: ObjectRef {
                    version: Some(version),
                    ..base.clone()
                },
                identity,
                slot: Some(i),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ObjectType;

    fn item(version: &str, enabled: bool, created: i64) -> VersionItem {
        VersionItem {
            version: version.into(),
            enabled,
            created,
        }
    }

    fn object(history: u32, version: Option<&str>) -> ObjectSpec {
        let mut o = ObjectSpec::test_secret("s");
        o.history = history;
        o.version = version.map(str::to_string);
        o
    }

    #[test]
    fn history_is_newest_enabled_first_from_the_pinned_version() {
        let listing = [
            item("a", true, 1),
            item("d", false, 4),
            item("c", true, 3),
            item("b", true, 2),
        ];
        assert_eq!(
            history_versions(&object(2, None), &listing).unwrap(),
            ["c", "b"]
        );
        assert_eq!(
            history_versions(&object(5, Some("b")), &listing).unwrap(),
            ["b", "a"]
        );
        assert!(matches!(
            history_versions(&object(2, Some("d")), &listing),
            Err(ObjectCause::VersionNotListed(v)) if v == "d"
        ));
        let absent = history_versions(&object(2, None), &[]).unwrap_err();
        assert_eq!(absent.absence(), Some("not found"));
        let disabled = history_versions(&object(2, None), &listing[1..2]).unwrap_err();
        assert_eq!(disabled.absence(), Some("disabled"));
        assert!(disabled
            .to_string()
            .starts_with("the only version of this object is disabled"));
    }

    #[test]
    fn each_distinct_object_once() {
        let vault = Arc::new(Vault::new("kv", "vault.azure.net").unwrap());
        let get = |name: &str, version: Option<&str>| Planned {
            object: ObjectRef {
                vault: vault.clone(),
                kind: ObjectType::Secret,
                name: name.into(),
                version: version.map(str::to_string),
            },
            identity: crate::cache::KeyBuilder::default().finish(),
            slot: None,
        };
        let plans: Plans = vec![
            Ok(vec![get("a", None), get("b", Some("1"))]),
            Err(ObjectCause::VersionNotListed("x".into())),
            Ok(vec![get("a", None), get("b", None), get("b", Some("1"))]),
        ];
        let distinct = distinct(&plans);
        let names: Vec<_> = distinct
            .iter()
            .map(|(o, _)| (o.name.as_str(), o.version.as_deref()))
            .collect();
        assert_eq!(names, [("a", None), ("b", Some("1")), ("b", None)]);
    }

    #[test]
    fn vaults_resolve_per_object() {
        let mut spec = super::super::tests::spec(&["a", "b"]);
        spec.objects[1].vault = Some("kv-other".into());
        let vaults = vaults(&spec);
        assert_eq!(vaults[0].as_ref().unwrap().name, "kv-test");
        assert_eq!(
            vaults[1].as_ref().unwrap().url.as_str(),
            "https://kv-other.vault.azure.net/"
        );
    }
}
