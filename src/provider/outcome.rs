//! The phases after fetching: each object's files rendered in SPC order, then the outcome of
//! the mount as a whole: every file, optional objects that are absent left out, or one error
//! naming every object that failed.

use super::fetch::Fetched;
use super::plan::Plans;
use super::{MountError, Mounted, ObjectCause, ServedCopy, Skipped};
use crate::render::{self, RenderOptions, RenderedFile, Target};
use crate::spec::{MountSpec, ObjectError};

/// The driver's default gRPC receive limit; a larger response would fail there, less clearly.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// The API server's limit on a Secret, which `secretObjects` sync builds from the files.
const KUBERNETES_SECRET_BYTES: usize = 1024 * 1024;

/// What one object contributes to a mount: its files, and where its versions came from.
#[derive(Default)]
pub(super) struct Rendered {
    files: Vec<RenderedFile>,
    served: Vec<ServedCopy>,
}

/// Each object's files, or why it has none, in SPC order.
pub(super) fn render_objects(
    spec: &MountSpec,
    plans: Plans,
    fetched: &Fetched,
    options: RenderOptions,
) -> Vec<Result<Rendered, ObjectCause>> {
    spec.objects
        .iter()
        .zip(plans)
        .map(|(object, plan)| {
            let mut rendered = Rendered::default();
            for planned in plan? {
                let got = fetched[&planned.object].as_ref().map_err(|e| e.clone())?;
                let target = Target {
                    object,
                    slot: planned.slot,
                    default_mode: spec.default_mode,
                };
                rendered
                    .files
                    .extend(render::render(&target, &got.copy.value, options)?);
                rendered.served.push(ServedCopy {
                    uid: match planned.slot {
                        Some(i) => format!("{}/{i}", object.uid()),
                        None => object.uid(),
                    },
                    version: got.copy.value.version().to_string(),
                    served: got.served,
                });
            }
            Ok(rendered)
        })
        .collect()
}

/// The mount's files, or every failure: an `optional` object that Key Vault does not have is
/// left out instead.
pub(super) fn collect(
    spec: &MountSpec,
    outcomes: Vec<Result<Rendered, ObjectCause>>,
) -> Result<Mounted, MountError> {
    let mut mounted = Mounted::default();
    let mut failures = Vec::new();
    for (object, outcome) in spec.objects.iter().zip(outcomes) {
        match outcome {
            Ok(rendered) => {
                mounted.files.extend(rendered.files);
                mounted.served.extend(rendered.served);
            }
            Err(cause) => match cause.absence().filter(|_| object.optional) {
                Some(reason) => mounted.skipped.push(Skipped {
                    uid: object.uid(),
                    kind: object.object_type,
                    reason,
                }),
                None => failures.push(ObjectError::new(object, cause)),
            },
        }
    }
    match failures.is_empty() {
        true => Ok(mounted),
        false => Err(MountError::Objects(failures)),
    }
}

/// Refuses a response the driver could not receive; warns when it cannot become a Secret.
pub(super) fn check_size(spec: &MountSpec, files: &[RenderedFile]) -> Result<(), MountError> {
    let total: usize = files.iter().map(|f| f.contents.len() + f.path.len()).sum();
    if total > MAX_RESPONSE_BYTES - 64 * 1024 {
        return Err(MountError::TooLarge(total));
    }
    if total > KUBERNETES_SECRET_BYTES {
        tracing::warn!(pod = %spec.pod.name, namespace = %spec.pod.namespace, spc = %spec.pod.spc, bytes = total, "the files of this mount total more than 1 MiB: the driver warns too, and a Kubernetes Secret synced from them (secretObjects) would be refused");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::super::plan::{self, Planned};
    use super::super::store::{Cached, Got, Served};
    use super::*;
    use crate::keyvault::{KvError, Object, ObjectRef, SecretBundle};
    use crate::secret::Secret;

    const OPTIONS: RenderOptions = RenderOptions {
        construct_pem_chain: true,
        separate_cert_and_key: false,
    };

    fn secret(value: &str, version: &str) -> Result<Got<Object>, Arc<KvError>> {
        let copy = Arc::new(Cached::new(
            Object::Secret(SecretBundle {
                value: Secret::new(value),
                version: version.into(),
                content_type: None,
                kid: None,
            }),
            std::time::Duration::from_secs(60),
            1,
        ));
        Ok(Got {
            copy,
            served: Served::KeyVault,
        })
    }

    fn not_found(name: &str) -> Result<Got<Object>, Arc<KvError>> {
        Err(Arc::new(KvError::NotFound {
            kind: "secret",
            name: name.into(),
            vault: "kv-test".into(),
            status: 404,
            code: "SecretNotFound".into(),
        }))
    }

    /// Plans and answers for `spec`'s objects, one latest version each.
    fn fetched(
        spec: &MountSpec,
        answers: Vec<Result<Got<Object>, Arc<KvError>>>,
    ) -> (Plans, Fetched) {
        let vaults = plan::vaults(spec);
        let mut plans = Vec::new();
        let mut fetched = HashMap::new();
        for ((object, vault), answer) in spec.objects.iter().zip(vaults).zip(answers) {
            let object_ref = ObjectRef {
                vault: vault.unwrap(),
                kind: object.object_type,
                name: object.name.clone(),
                version: None,
            };
            fetched.insert(object_ref.clone(), answer);
            plans.push(Ok(vec![Planned {
                object: object_ref,
                identity: crate::cache::KeyBuilder::default().finish(),
                slot: None,
            }]));
        }
        (plans, fetched)
    }

    #[test]
    fn files_in_spc_order_and_optional_absences_skipped() {
        let mut spec = super::super::tests::spec(&["b", "gone", "a"]);
        spec.objects[1].optional = true;
        spec.objects[2].file_mode = Some(0o600);
        let (plans, fetched) = fetched(
            &spec,
            vec![secret("vb", "2"), not_found("gone"), secret("va", "1")],
        );
        let outcomes = render_objects(&spec, plans, &fetched, OPTIONS);
        let mounted = collect(&spec, outcomes).unwrap();
        let files: Vec<_> = mounted
            .files
            .iter()
            .map(|f| {
                (
                    f.path.as_str(),
                    f.mode,
                    f.contents.as_slice(),
                    f.version.as_str(),
                )
            })
            .collect();
        assert_eq!(
            files,
            [("b", 0o644, &b"vb"[..], "2"), ("a", 0o600, &b"va"[..], "1")]
        );
        assert_eq!(mounted.skipped.len(), 1);
        assert_eq!(
            (mounted.skipped[0].uid.as_str(), mounted.skipped[0].reason),
            ("secret/gone", "not found")
        );
    }

    #[test]
    fn every_failure_is_named_in_spc_order() {
        let spec = super::super::tests::spec(&["x", "ok", "y"]);
        let (mut plans, fetched) = fetched(
            &spec,
            vec![not_found("x"), secret("v", "1"), not_found("y")],
        );
        // A vault that cannot be addressed fails its own object, not the first one.
        plans[2] = Err(ObjectCause::VersionNotListed("f00".into()));
        let outcomes = render_objects(&spec, plans, &fetched, OPTIONS);
        let text = collect(&spec, outcomes).unwrap_err().to_string();
        let x = text.find("objectName:x,").unwrap();
        let y = text
            .find("objectName:y, objectVersion:: objectVersion f00")
            .unwrap();
        assert!(x < y && !text.contains("objectName:ok"), "{text}");
    }

    #[test]
    fn a_vault_that_cannot_be_addressed_fails_its_own_objects() {
        let mut spec = super::super::tests::spec(&["a", "b"]);
        spec.objects[1].vault = Some("kv-other".into());
        spec.cloud.key_vault_dns_suffix = "bad suffix".into();
        let vaults = plan::vaults(&spec);
        let plans: Plans = vaults.into_iter().map(|v| v.map(|_| Vec::new())).collect();
        let text = collect(
            &spec,
            render_objects(&spec, plans, &HashMap::new(), OPTIONS),
        )
        .unwrap_err()
        .to_string();
        assert!(
            text.contains("objectName:a,") && text.contains("objectName:b,"),
            "{text}"
        );
        assert!(
            text.contains("vault URL for kv-other.bad suffix is invalid"),
            "{text}"
        );
    }
}
