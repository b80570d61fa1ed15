//! The phases after fetching: each object's files rendered in SPC order, then the outcome of
//! the mount as a whole: every file, optional objects that are absent left out, or one error
//! naming every object that failed.

use super::fetch::Fetched;
use super::plan::Plans;
use super::{MountError, Mounted, ObjectCause, Skipped};
use crate::render::{self, RenderOptions, RenderedFile, Target};
use crate::spec::{MountSpec, ObjectError};

/// The driver's default gRPC receive limit; a larger response would fail there, less clearly.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// The API server's limit on a Secret, which `secretObjects` sync builds from the files.
const KUBERNETES_SECRET_BYTES: usize = 1024 * 1024;

/// Each object's files, or why it has none, in SPC order.
pub(super) fn render_objects(
    spec: &MountSpec,
    plans: Plans,
    fetched: &Fetched,
    options: RenderOptions,
) -> Vec<Result<Vec<RenderedFile>, ObjectCause>> {
    spec.objects
        .iter()
        .zip(plans)
        .map(|(object, plan)| {
            let mut files = Vec::new();
            for planned in plan? {
                let answer = fetched[&planned.object].as_ref().map_err(|e| e.clone())?;
                let target = Target {
                    object,
                    slot: planned.slot,
                    default_mode: spec.default_mode,
                };
                files.extend(render::render(&target, &answer.value, options)?);
            }
            Ok(files)
        })
        .collect()
}

/// The mount's files, or every failure: an `optional` object that Key Vault does not have is
/// left out instead.
pub(super) fn collect(
    spec: &MountSpec,
    outcomes: Vec<Result<Vec<RenderedFile>, ObjectCause>>,
) -> Result<Mounted, MountError> {
    let mut mounted = Mounted::default();
    let mut failures = Vec::new();
    for (object, outcome) in spec.objects.iter().zip(outcomes) {
        match outcome {
            Ok(files) => mounted.files.extend(files),
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
