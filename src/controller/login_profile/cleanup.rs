//! What deletion does: the login profile is deleted if this LoginProfile
//! manages it (status, or a sealed, open mark) and its deletion policy says
//! so, then the finalizer goes. A LoginProfile no longer admitted, or whose
//! user another owns, leaves IAM alone.

use super::act::release;
use super::observe::observe_owner;
use super::report::report;
use crate::controller::runtime::context::Context;
use crate::controller::runtime::context::Error;
use crate::controller::runtime::context::InAccount;
use crate::controller::runtime::context::key;
use crate::controller::runtime::looks::Action;

use std::time::Duration;

use kube::{
    Resource, ResourceExt,
    runtime::{events::EventType, reflector::ObjectRef},
};

use crate::{
    api::conditions::Outcome,
    api::login_profile::DeletionPolicy,
    api::login_profile::LoginProfile,
    api::reason::Reason,
    aws::iam::{Iam, IamError},
    ops::events::Note,
    ops::metrics::ProfileState,
    rules::ownership::Owner,
    rules::plan::{self, Plan},
};

/// Runs while the resource is being deleted: removes the IAM login profile
/// unless `deletionPolicy: Retain` or this resource never managed it, then
/// removes the finalizer. A LoginProfile its IAMAccount no longer admits, or
/// whose user an older one claims, leaves IAM alone.
pub(super) async fn cleanup<I: Iam>(
    lp: &LoginProfile,
    shared: &Context<I>,
) -> Result<Action, Error> {
    let user = lp
        .status
        .as_ref()
        .and_then(|s| s.user_name.clone())
        .unwrap_or_else(|| lp.user_name());
    let note = match shared.admitted(lp).await {
        Ok(ctx) => match delete_if_managed(lp, &ctx, &user).await? {
            Cleaned::Done(note) => note,
            Cleaned::Paced(wait) => return paced(lp, &ctx, &user, wait).await,
        },
        Err(refusal) if refusal.reason.is_terminal() => format!(
            "left the login profile of IAM user {user:?} alone: {}",
            refusal.message
        ),
        Err(refusal) => {
            return Err(Error::Transient {
                reason: refusal.reason,
                message: refusal.message,
            });
        }
    };
    release(shared, lp).await?;
    let event = Note {
        type_: EventType::Normal,
        reason: Reason::Deleting.as_str(),
        action: "Cleanup",
        note,
    };
    if let Err(error) = shared.events.publish(&lp.object_ref(&()), event).await {
        tracing::warn!(%error, "could not publish an event");
    }
    shared.memory.forget(lp);
    shared.metrics.set_profile_state(key(lp), None);
    shared.metrics.set_console_findings(key(lp), None);
    Ok(Action::await_change())
}

/// What cleanup did with IAM.
pub(super) enum Cleaned {
    /// Done (deleted, kept, or nothing to do), as the Event says it.
    Done(String),
    /// The mass-deletion guard holds the deletion this long.
    Paced(Duration),
}

/// Deletes the login profile if this resource manages it; says what it did.
pub(super) async fn delete_if_managed<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
) -> Result<Cleaned, Error> {
    let _change = ctx.account.budget.drift.change();
    let applied = lp
        .status
        .as_ref()
        .is_some_and(|s| s.password_fingerprint.is_some());
    // Whose profile IAM has now: the one status recorded, one this resource
    // created while status missed it (a crash, a lost answer), or one that
    // someone else created since (never deleted).
    let attempts = ctx.marks(lp).attempt_windows(ctx.settings.write_deadline);
    let policy = lp.deletion_policy(ctx.settings.default_deletion_policy);
    let ours = if policy == DeletionPolicy::Delete && (applied || !attempts.is_empty()) {
        match ctx.account.iam.get_login_profile(user).await {
            Ok(Some(profile)) if plan::is_ours(&profile, lp.status.as_ref(), &attempts) => {
                // Never deleted once IAM's ownership record names another
                // cluster (ownership was handed over since).
                match observe_owner(lp, ctx, user, &profile).await {
                    Ok(Owner::Elsewhere { cluster_id }) => {
                        return Ok(Cleaned::Done(format!(
                            "left the login profile of IAM user {user:?} alone: IAM's ownership record names cluster {cluster_id:?}"
                        )));
                    }
                    Ok(_) => Some(true),
                    Err(outcome) => {
                        return Err(Error::Transient {
                            reason: outcome.reason,
                            message: outcome.message,
                        });
                    }
                }
            }
            Ok(profile) => profile.map(|_| false),
            Err(error) => return Err(cleanup_failed(lp, ctx, user, error).await),
        }
    } else {
        None
    };
    Ok(Cleaned::Done(match plan::decide_cleanup(policy, ours) {
        Plan::Delete => {
            if let Err(refused) = ctx.may_write() {
                return Err(Error::Transient {
                    reason: refused.reason,
                    message: refused.message,
                });
            }
            if !deletions_allowed_by_admin(ctx)
                && let Err(wait) = ctx.account.budget.deletions.take()
            {
                return Ok(Cleaned::Paced(wait));
            }
            match ctx.account.iam.delete_login_profile(user).await {
                Ok(()) => format!("deleted the login profile of IAM user {user:?}"),
                Err(error) => return Err(cleanup_failed(lp, ctx, user, error).await),
            }
        }
        _ if policy == DeletionPolicy::Retain => {
            format!("kept the login profile of IAM user {user:?} (deletionPolicy: Retain)")
        }
        _ if ours.is_none() && applied => {
            format!("IAM user {user:?} had no login profile left to delete")
        }
        _ => format!(
            "left IAM user {user:?} alone: its login profile (if any) was not made by this LoginProfile"
        ),
    }))
}

/// A cluster admin's confirmation that deletions in this account are
/// intended: the IAMAccount's `allowDeletionsUntil` is still ahead.
fn deletions_allowed_by_admin<I: Iam>(ctx: &InAccount<'_, I>) -> bool {
    ctx.iam_account
        .spec
        .allow_deletions_until
        .as_deref()
        .and_then(|until| chrono::DateTime::parse_from_rfc3339(until).ok())
        .is_some_and(|until| until > chrono::Utc::now())
}

/// A deletion the mass-deletion guard holds: said in status (and an Event
/// on the transition), tried again when the window allows.
async fn paced<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    wait: Duration,
) -> Result<Action, Error> {
    let wait = wait.max(Duration::from_secs(1));
    let outcome = Outcome::new(
        Reason::DeletionPaced,
        format!(
            "the login profile of IAM user {user:?} is deleted in about {}: more login profiles of this AWS account \
             were deleted within --deletion-window than --deletion-limit allows. If this mass deletion is intended, \
             a cluster admin lets it go on: kubectl patch iamaccount {} --type=merge -p \
             '{{\"spec\":{{\"allowDeletionsUntil\":\"<an RFC 3339 time>\"}}}}'; to keep the profile instead, \
             set spec.deletionPolicy: Retain",
            humantime::format_duration(Duration::from_secs(wait.as_secs())),
            ctx.iam_account.name_any(),
        ),
    );
    let next = lp.status.clone().unwrap_or_default();
    report(lp, ctx, next, &outcome, false).await?;
    ctx.metrics
        .set_profile_state(key(lp), Some(ProfileState::DeletionPaced));
    Ok(Action::requeue(wait))
}

/// A failed DeleteLoginProfile, in status (and an Event when Ready changes):
/// the LoginProfile stays until the deletion works, and the message says how
/// to let it go without deleting the profile.
pub(super) async fn cleanup_failed<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    user: &str,
    error: IamError,
) -> Error {
    let outcome = error.outcome(user, None);
    let stuck = Outcome::new(
        outcome.reason,
        format!(
            "could not delete the login profile of IAM user {user:?}, so this LoginProfile stays: {}; \
             to let it go and keep the profile, set spec.deletionPolicy: Retain",
            outcome.message
        ),
    );
    let next = lp.status.clone().unwrap_or_default();
    if let Err(error) = report(lp, ctx, next, &stuck, false).await {
        tracing::warn!(object = %ObjectRef::from_obj(lp), %error, "could not report the failed deletion");
    }
    Error::Transient {
        reason: outcome.reason,
        message: outcome.message,
    }
}
