//! How status and Events are written: one server-side apply of the whole
//! status with the resourceVersion it was computed from ([`patch_status`]),
//! the open marks settled at once ([`settle_marks`]), a Kubernetes Event
//! ([`note_event`]). Only the report step writes through these, and the
//! act step settles marks, a write that cannot wait for report.

use crate::api::login_profile::LoginProfile;
use crate::api::login_profile::LoginProfileStatus;
use crate::aws::iam::Iam;
use crate::controller::runtime::context::Context;
use crate::controller::runtime::context::FIELD_MANAGER;
use crate::ops::events::Note;
use kube::Api;
use kube::Resource;
use kube::ResourceExt;
use kube::api::Patch;
use kube::api::PatchParams;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;

/// One server-side apply of the whole status, with the resourceVersion it
/// was computed from: if the object changed since (this copy is stale), the
/// API server answers 409 and nothing a newer write recorded is erased.
pub(super) async fn patch_status<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    status: &LoginProfileStatus,
) -> Result<LoginProfile, kube::Error> {
    let api: Api<LoginProfile> =
        Api::namespaced(ctx.client.clone(), &lp.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": LoginProfile::api_version(&()),
        "kind": LoginProfile::kind(&()),
        "metadata": {"resourceVersion": lp.resource_version()},
        "status": status,
    });
    api.patch_status(
        &lp.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
}

/// Settles the open marks of `lp` at once (a status write of its own): the
/// profile IAM has turned out to be someone else's, and whatever is decided
/// next must not take it for this resource's own. `lp` becomes the written
/// object. Only on that path; the normal path never writes this.
pub(super) async fn settle_marks<I: Iam>(
    lp: &mut LoginProfile,
    ctx: &Context<I>,
) -> Result<(), kube::Error> {
    let Some(settled) = ctx.marks(lp).settle() else {
        return Ok(());
    };
    let mut conflicts = 0;
    loop {
        let mut next = lp.status.clone().unwrap_or_default();
        next.writes_settled_through = Some(settled.clone());
        match patch_status(lp, ctx, &next).await {
            Ok(written) => {
                *lp = written;
                return Ok(());
            }
            // Never dropped: written again on top of the newer object.
            Err(kube::Error::Api(status)) if status.code == 409 && conflicts < 3 => {
                conflicts += 1;
                *lp = ctx.fresh(lp).await?;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Publishes a Kubernetes Event about `lp` (best effort: a lost Event is
/// logged, never a reason to fail the reconcile).
pub(super) async fn note_event<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Note {
        type_,
        reason,
        action: "Reconcile",
        note,
    };
    if let Err(error) = ctx.events.publish(&lp.object_ref(&()), event).await {
        tracing::warn!(object = %ObjectRef::from_obj(lp), %error, "could not publish an event");
    }
}
