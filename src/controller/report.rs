//! The report step: one server-side-apply status patch when something
//! changed, and a Kubernetes Event on each transition.

use super::*;

/// Reports a failure in status (and an Event on transition). Terminal
/// failures wait (resync only); transient ones return an error for backoff.
pub(super) async fn fail<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    outcome: Outcome,
) -> Result<Action, Error> {
    let mut next = lp.status.clone().unwrap_or_default();
    next.user_name = Some(lp.user_name());
    report(lp, ctx, next, &outcome, false).await?;
    if outcome.reason.is_terminal() {
        ctx.failures().remove(&ObjectRef::from_obj(lp));
        ctx.metrics
            .set_profile_state(key(lp), Some(ProfileState::Stalled));
        ctx.metrics.reconciled("stalled");
        Ok(Action::requeue(ctx.requeue_after(lp)))
    } else {
        ctx.metrics
            .set_profile_state(key(lp), Some(ProfileState::Reconciling));
        Err(Error::Transient {
            reason: outcome.reason,
            message: outcome.message,
        })
    }
}

/// The first status of a new LoginProfile: Reconciling, before any IAM call.
/// Without it, kstatus (Argo CD, Flux) would call an object without status
/// healthy before the operator acted. No Event: nothing happened yet.
pub(super) async fn mark_progressing<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    user: &str,
) -> Result<(), Error> {
    let outcome = Outcome::new(
        Reason::Progressing,
        format!("setting up the login profile of IAM user {user:?}"),
    );
    let status = LoginProfileStatus {
        user_name: Some(user.to_string()),
        observed_generation: lp.metadata.generation,
        conditions: status::conditions(
            &[],
            &outcome,
            lp.metadata.generation,
            &Time(k8s_openapi::jiff::Timestamp::now()),
        ),
        ..Default::default()
    };
    patch_status(lp, ctx, &status).await
}

async fn patch_status<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    status: &LoginProfileStatus,
) -> Result<(), Error> {
    let api: Api<LoginProfile> =
        Api::namespaced(ctx.client.clone(), &lp.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": LoginProfile::api_version(&()),
        "kind": LoginProfile::kind(&()),
        "status": status,
    });
    api.patch_status(
        &lp.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(())
}

/// Writes status if it changed (one server-side apply patch) and publishes an
/// Event when Ready changed or IAM was written.
pub(super) async fn report<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    mut next: LoginProfileStatus,
    outcome: &Outcome,
    wrote: bool,
) -> Result<(), Error> {
    let previous = lp.status.clone().unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    next.observed_generation = lp.metadata.generation;
    next.conditions =
        status::conditions(&previous.conditions, outcome, lp.metadata.generation, &now);
    let transition = status::ready_changed(&previous.conditions, &next.conditions);
    if next != previous {
        patch_status(lp, ctx, &next).await?;
    }
    if transition || wrote {
        publish(lp, ctx, outcome).await;
    }
    Ok(())
}

pub(super) async fn publish<I: Iam>(lp: &LoginProfile, ctx: &Context<I>, outcome: &Outcome) {
    let type_ = if outcome.reason.is_ready() {
        EventType::Normal
    } else {
        EventType::Warning
    };
    note_event(
        lp,
        ctx,
        type_,
        outcome.reason.as_str(),
        outcome.message.clone(),
    )
    .await;
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
