//! The report step: one server-side-apply status patch when something
//! changed, and a Kubernetes Event on each transition; what the govern
//! step found is shown by `console.rs`.

use super::act::Acted;
use super::desired::Desired;
use super::desired::SourceVersion;
use super::observe::IamView;
use super::record::{note_event, patch_status};
use crate::api::conditions;
use crate::api::conditions::Outcome;
use crate::api::login_profile::EncryptedPassword;
use crate::api::login_profile::LoginProfile;
use crate::api::login_profile::LoginProfileStatus;
use crate::api::reason::{self, Reason};
use crate::aws::iam::Iam;
use crate::controller::runtime::context::Context;
use crate::controller::runtime::context::Error;
use crate::controller::runtime::context::key;
use crate::controller::runtime::context::now_rfc3339;
use crate::controller::runtime::looks::Action;
use crate::ops::metrics::ProfileState;
use crate::rules::ownership::OwnerRecord;
use crate::rules::password::UNVERIFIED_PASSWORD;
use crate::rules::password::Verdict;
use crate::rules::plan::Applied;
use crate::rules::plan::UpdateWhy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;

mod console;
pub(super) use console::{console_disabled, show_console};

/// Reports a failure in status (and an Event on transition). Terminal
/// failures wait (resync only); transient ones return an error for backoff.
pub(super) async fn fail<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    outcome: Outcome,
) -> Result<Action, Error> {
    fail_with(lp, ctx, outcome, None).await
}

/// Reports a definite refusal of an IAM write, and settles the marks of
/// that attempt in the same status write: nothing they speak of happened.
pub(super) async fn fail_settled<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    outcome: Outcome,
) -> Result<Action, Error> {
    fail_with(lp, ctx, outcome, ctx.marks(lp).settle()).await
}

async fn fail_with<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    outcome: Outcome,
    settled: Option<String>,
) -> Result<Action, Error> {
    let mut current = lp.clone();
    let mut conflicts = 0;
    loop {
        let mut next = current.status.clone().unwrap_or_default();
        // Only a name IAM could have (and the CRD's bounds accept) is recorded.
        next.user_name = current
            .user_name_problem()
            .is_none()
            .then(|| current.user_name());
        if settled.is_some() {
            next.writes_settled_through = settled.clone();
        }
        if matches!(
            outcome.reason,
            Reason::LoginProfileExists | Reason::OwnedElsewhere
        ) {
            next.disown();
        }
        match report(&current, ctx, next, &outcome, false).await {
            // A settlement is never dropped: the object changed since it was
            // read (a tenant's edit), so it is written again on top of it.
            Err(Error::Kube(kube::Error::Api(status)))
                if status.code == 409 && settled.is_some() && conflicts < 3 =>
            {
                conflicts += 1;
                let fresh = ctx.fresh(&current).await.map_err(Error::Kube)?;
                if fresh.metadata.generation != current.metadata.generation {
                    // A new spec: its own reconcile (already queued) reports
                    // on it; only the settlement is written now.
                    let mut next = fresh.status.clone().unwrap_or_default();
                    next.writes_settled_through = settled.clone();
                    patch_status(&fresh, ctx, &next)
                        .await
                        .map_err(Error::Kube)?;
                    return Ok(Action::requeue(std::time::Duration::from_secs(1)));
                }
                current = fresh;
            }
            result => break result?,
        }
    }
    settled_failure(lp, ctx, outcome)
}

/// After a failure was written to status: a terminal one waits (resync
/// only), a transient one returns an error for backoff.
pub(super) fn settled_failure<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    outcome: Outcome,
) -> Result<Action, Error> {
    if outcome.reason.is_terminal() {
        ctx.memory.clear_failures(lp);
        ctx.metrics
            .set_profile_state(key(lp), Some(ProfileState::Stalled));
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

/// The status after a successful act: what IAM showed and what was sent.
pub(super) fn next_status(
    lp: &LoginProfile,
    user: &str,
    iam: &IamView,
    acted: &Acted,
    desired: Option<&Desired>,
) -> LoginProfileStatus {
    let previous = lp.status.clone().unwrap_or_default();
    let mut next = previous.clone();
    next.user_name = Some(user.to_string());
    if let Some(profile) = &acted.iam {
        next.create_date = Some(profile.create_date.clone());
        next.password_reset_required = Some(profile.password_reset_required);
    }
    // The user changed the password that a required reset asked for: IAM
    // cleared the flag. Shown, never undone.
    let user_changed_it = previous.applied_password_reset_required == Some(true)
        && iam
            .profile
            .as_ref()
            .is_some_and(|p| !p.password_reset_required);
    if (user_changed_it || iam.changed_out_of_band)
        && previous.password_changed_out_of_band.is_none()
    {
        next.password_changed_out_of_band = Some(now_rfc3339());
    }
    // IAM's events say when: the person's own ChangePassword, recorded
    // whatever the policy (only `Enforce` writes anything because of it),
    // never moved back by an older event that arrived late.
    if let Some(at) = iam.changed_by_user {
        let recorded = previous
            .password_changed_out_of_band
            .as_deref()
            .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
            .map(|recorded| recorded.with_timezone(&chrono::Utc));
        if recorded.is_none_or(|recorded| at > recorded) {
            next.password_changed_out_of_band =
                Some(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
    }
    next.held_back_source_version = match acted.outcome.reason {
        Reason::UpdateHeldBack => desired.and_then(|d| d.version.text()),
        _ => None,
    };
    if let Some(desired) = desired {
        let sent = acted.sent_password.is_some();
        // Sent now, or the same password under a key no longer held:
        // record the fingerprint under the current key. Not over a password
        // never seen (kept at adoption): the source's is not known to be it.
        let unverified = previous.password_fingerprint.as_deref() == Some(UNVERIFIED_PASSWORD);
        if sent || (desired.applied == Applied::Same && !unverified) {
            next.password_fingerprint = Some(desired.fingerprint.clone());
        }
        if sent {
            match &desired.version {
                SourceVersion::Secret(rv) => next.secret_resource_version = rv.clone(),
                SourceVersion::SecretsManager(id) => {
                    next.secrets_manager_version_id = Some(id.clone())
                }
                SourceVersion::Delivered => {
                    next.encrypted_password = desired.delivery.clone().map(Box::new);
                }
            }
            next.password_last_applied_time = Some(now_rfc3339());
        }
    }
    if acted
        .sent_password
        .is_some_and(|why| why != UpdateWhy::Enforce)
    {
        next.password_changed_out_of_band = None;
    }
    if let Some(reset) = acted.sent_reset {
        next.applied_password_reset_required = Some(reset);
    }
    if let Some((record, verdict)) = &acted.recognized {
        take_back(&mut next, record, *verdict, desired);
    }
    if acted.kept_password {
        next.password_fingerprint = Some(UNVERIFIED_PASSWORD.into());
        next.password_last_applied_time = Some(now_rfc3339());
        record_source_version(&mut next, desired);
    }
    next
}

/// Records the source's version as the one IAM has, so that only a new
/// version sends its password.
fn record_source_version(next: &mut LoginProfileStatus, desired: Option<&Desired>) {
    match desired.map(|d| &d.version) {
        Some(SourceVersion::Secret(rv)) => next.secret_resource_version = rv.clone(),
        Some(SourceVersion::SecretsManager(id)) => {
            next.secrets_manager_version_id = Some(id.clone())
        }
        Some(SourceVersion::Delivered) | None => {}
    }
}

/// Status of a profile taken back by its ownership record: the password
/// the record says was sent (unverified under a key this operator does not
/// hold), when, and (unless the source's differs) the source's version, so
/// that a record under an unknown key causes no write until the source
/// changes.
fn take_back(
    next: &mut LoginProfileStatus,
    record: &OwnerRecord,
    verdict: Verdict,
    desired: Option<&Desired>,
) {
    next.password_fingerprint = Some(match verdict {
        Verdict::UnknownKey => UNVERIFIED_PASSWORD.into(),
        _ => record.password_fingerprint.clone(),
    });
    next.password_last_applied_time = chrono::DateTime::parse_from_rfc3339(&record.password_time)
        .is_ok()
        .then(|| record.password_time.clone());
    next.owner_record = Some(record.recorded());
    if verdict != Verdict::Different {
        record_source_version(next, desired);
    }
    // A delivered password: what it was issued for, without its ciphertext
    // (lost with the status), so that nothing is re-issued until asked.
    if let Some(issued) = desired.and_then(|d| d.delivery.as_ref()) {
        next.encrypted_password = Some(Box::new(EncryptedPassword {
            age: None,
            pgp: None,
            generated_at: next
                .password_last_applied_time
                .clone()
                .unwrap_or_else(now_rfc3339),
            password_fingerprint: next.password_fingerprint.clone().unwrap_or_default(),
            ..issued.clone()
        }));
    }
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
    // Conditions beside kstatus' (governance's) are kept as the caller has them.
    let others: Vec<_> = next
        .conditions
        .drain(..)
        .filter(|c| !conditions::is_kstatus(&c.type_))
        .collect();
    next.conditions =
        conditions::conditions(&previous.conditions, outcome, lp.metadata.generation, &now);
    next.conditions.extend(others);
    let transition = conditions::ready_changed(&previous.conditions, &next.conditions);
    if next != previous {
        patch_status(lp, ctx, &next).await.map_err(Error::Kube)?;
    }
    if wrote {
        // What was done to IAM, in the log too (the Event's words: no password).
        tracing::info!(object = %ObjectRef::from_obj(lp), reason = outcome.reason.as_str(), "{}", outcome.message);
    }
    if transition || wrote {
        publish(lp, ctx, outcome).await;
    }
    Ok(())
}

/// The Event for a password the observe step generated into a new Secret.
pub(super) async fn note_generated<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    user: &str,
    secret: &str,
) {
    let note = format!("generated a password for IAM user {user:?} into Secret {secret:?}");
    note_event(lp, ctx, EventType::Normal, reason::PASSWORD_GENERATED, note).await;
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
