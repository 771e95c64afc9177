//! The LoginProfile reconciler, read top to bottom: admit (`admit.rs`,
//! before any AWS call) -> observe (`observe.rs`: the password source) ->
//! govern (`governance.rs`: the person's MFA, last use and expiry from the
//! shared credential report, judged) -> observe IAM as far as needed ->
//! decide (`decide.rs` over the pure rules/plan.rs) -> act (`act/`: at most
//! the IAM call the plan needs, and the writes govern asks for) -> report
//! (`report/`: one status patch, an Event on each transition, and what
//! govern found); `cleanup.rs` while it is being deleted.
//!
//! Each step hands its result forward and none imports a later one: the
//! password asked for (`desired.rs`), IAM as observed (`observe.rs`), what
//! governance found and asks for (`governance.rs`), the plan (`decide.rs`),
//! what was done (`act/`). Only the report step writes status, Events and
//! the per-object metrics (through `record.rs`); the act step's own
//! bookkeeping (finalizer, marks) is its own. The password sources: a
//! Secret (`secret_source.rs`), Secrets Manager (`observe.rs`), generated
//! and delivered encrypted (`delivery.rs`). When IAM need not be asked:
//! `drift_checks.rs`. The records on the IAM user, written after act:
//! `ownership.rs` (whose profile it is), `grace.rs` (when a person's MFA
//! grace began). What the reconcilers share (context, caches, memory,
//! looks) is in `../runtime/`.
//!
//! Crash safety (docs/reliability.md): the finalizer patch also records,
//! sealed, when the operator took charge and which password it is about to
//! send, so a reconcile after a crash or a lost answer tells its own
//! unrecorded create from someone else's profile without asking anyone;
//! status is written with the resourceVersion it was computed from, so a
//! write from a stale copy fails (409) instead of erasing what a newer one
//! recorded.

use super::runtime::context::{Context, Error, InAccount, key};
use super::runtime::looks::Action;
use super::runtime::looks::backoff;
use act::ActFailure;
use act::act;
use act::{disable_console, replace_generated};
use cleanup::cleanup;
use decide::decide;
use delivery::issue;
use delivery::recipients_of;
use governance::Governed;
use governance::govern;
use grace::record_grace_start;
use observe::Look;
use observe::observe_iam;
use observe::observe_owner;
use observe::observe_source;
use ownership::record_ownership;
use rand::Rng;
use report::fail;
use report::fail_settled;
use report::next_status;
use report::note_generated;
use report::report;
use report::settled_failure;
use report::{console_disabled, show_console};

use std::{sync::Arc, time::Duration};

use kube::{
    ResourceExt,
    runtime::{controller::Action as ControllerAction, reflector::ObjectRef},
};

mod act;
mod admit;
mod cleanup;
mod decide;
mod delivery;
mod desired;
mod drift_checks;
mod governance;
mod grace;
mod observe;
mod ownership;
mod record;
mod report;
pub mod secret_source;

use desired::Desired;

use crate::{
    api::conditions::Outcome,
    api::login_profile::{FINALIZER, LoginProfile},
    api::reason::{self, Reason},
    aws::iam::Iam,
    ops::metrics::ProfileState,
    rules::password::Verdict,
    rules::plan::{Plan, SourceProblem},
};

/// Reconciles one LoginProfile: [`apply`] while it exists, [`cleanup`] once
/// it is being deleted and still carries the finalizer.
pub async fn reconcile<I: Iam>(
    lp: Arc<LoginProfile>,
    ctx: Arc<Context<I>>,
) -> Result<ControllerAction, Error> {
    ctx.looks
        .cancel(lp.metadata.namespace.as_deref(), &lp.name_any());
    let result = match lp.metadata.deletion_timestamp {
        None => apply(&lp, &ctx).await,
        Some(_) if lp.finalizers().iter().any(|f| f == FINALIZER) => cleanup(&lp, &ctx).await,
        Some(_) => Ok(Action::await_change()),
    };
    // Every reconcile counted once, by where it left the object.
    let stalled = ctx.metrics.profile_state(&key(&lp)) == Some(ProfileState::Stalled);
    ctx.metrics.reconciled(match &result {
        Err(_) => "error",
        Ok(_) if stalled => "stalled",
        Ok(_) => "ok",
    });
    result.map(|next| ctx.looks.after(&lp, next))
}

/// Exponential backoff with jitter, per object, after a failed reconcile.
pub fn error_policy<I: Iam>(
    lp: Arc<LoginProfile>,
    error: &Error,
    ctx: Arc<Context<I>>,
) -> ControllerAction {
    let attempts = ctx.memory.count_failure(&lp);
    let delay = backoff(
        attempts,
        ctx.settings.min_backoff,
        ctx.settings.max_backoff,
        rand::rng().random_range(0.5..1.0),
    );
    tracing::warn!(object = %ObjectRef::from_obj(&*lp), %error, attempts, retry_in = ?delay, "reconcile failed");
    ctx.looks.after(&lp, Action::requeue(delay))
}

/// A LoginProfile its IAMAccount refuses: reported, its marks settled. If
/// status shows a login profile made here, the account's MFA floor still
/// governs that profile first: parking an object does not stop it.
async fn refuse<I: Iam>(
    lp: LoginProfile,
    shared: &Context<I>,
    refusal: Outcome,
) -> Result<Action, Error> {
    let Some((parked, user)) = shared.parked_under_floor(&lp).await else {
        return fail_settled(&lp, shared, refusal).await;
    };
    let unread = Err(SourceProblem {
        reason: refusal.reason,
        message: refusal.message.clone(),
    });
    let governed = govern(&lp, &parked, &user, &unread).await;
    match carry_out(lp, &parked, &user, &unread, governed).await? {
        AfterGovern::Go(lp, _) => fail_settled(&lp, shared, refusal).await,
        AfterGovern::Done(action) => Ok(action),
    }
}

/// What the reconcile does once govern's findings are carried out.
enum AfterGovern {
    /// Go on with the object as written; `Some` asks for a delivered
    /// password issued anew ahead of its expiry (the value recorded as
    /// `replaced_for_expiry`).
    Go(Box<LoginProfile>, Option<Option<String>>),
    /// Governance ended this reconcile.
    Done(Action),
}

/// Carries out what govern found: its writes by the act step (console off,
/// a generated password replaced), its findings shown by the report step.
async fn carry_out<I: Iam>(
    lp: LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    source: &Result<Desired, SourceProblem>,
    governed: Governed,
) -> Result<AfterGovern, Error> {
    Ok(match governed {
        Governed::Unchanged => AfterGovern::Go(Box::new(lp), None),
        Governed::Continue(shown) => {
            AfterGovern::Go(Box::new(show_console(lp, ctx, shown).await?), None)
        }
        Governed::Reissue(shown, for_expiry) => AfterGovern::Go(
            Box::new(show_console(lp, ctx, shown).await?),
            Some(for_expiry),
        ),
        Governed::ReplaceGenerated(mut shown, policy) => {
            let replaced = match source {
                Ok(desired) => replace_generated(&lp, ctx, user, &policy, desired).await,
                Err(_) => None,
            };
            let Some(note) = replaced else {
                return Ok(AfterGovern::Go(
                    Box::new(show_console(lp, ctx, shown).await?),
                    None,
                ));
            };
            if let Some(console) = shown.console.as_mut() {
                console.replaced_for_expiry = console.password_expires_at.clone();
            }
            shown.event = Some((reason::PASSWORD_ROTATED, note));
            show_console(lp, ctx, shown).await?;
            AfterGovern::Done(Action::requeue(Duration::from_secs(1)))
        }
        Governed::StaysDisabled(shown, outcome) => {
            let lp = show_console(lp, ctx, shown).await?;
            AfterGovern::Done(fail(&lp, ctx, outcome).await?)
        }
        Governed::Disable(disabling) => {
            let deleted = match disabling.made_here {
                true => disable_console(ctx, user).await,
                false => Ok(()),
            };
            AfterGovern::Done(match deleted {
                Ok(()) => console_disabled(&lp, ctx, user, disabling).await?,
                Err(outcome) => fail(&lp, ctx, outcome).await?,
            })
        }
        Governed::Failed(outcome) => AfterGovern::Done(fail(&lp, ctx, outcome).await?),
    })
}

/// observe -> decide -> act -> report for a LoginProfile that is not being deleted.
async fn apply<I: Iam>(cached: &LoginProfile, shared: &Context<I>) -> Result<Action, Error> {
    let lp = cached.clone();
    let admitted = (cached.uid(), cached.metadata.generation);
    let user = lp.user_name();
    // Every refusal before acting settles the marks in the status write
    // that reports it: nothing they speak of can be sent while it stands.
    if let Some(message) = lp.user_name_problem() {
        let outcome = Outcome::new(Reason::InvalidUserName, message);
        return fail_settled(&lp, shared, outcome).await;
    }

    // 1. Observe: where it may act (from caches, before any AWS call), the
    // password source, then IAM (only as far as needed).
    let ctx = &match shared.admitted(&lp).await {
        Ok(in_account) => in_account,
        Err(refusal) => return refuse(lp, shared, refusal).await,
    };
    let source = match observe_source(&lp, ctx, &user).await {
        Err(problem) if !problem.reason.is_terminal() => {
            return fail(&lp, ctx, Outcome::new(problem.reason, problem.message)).await;
        }
        source => source,
    };
    if let Ok(Desired {
        generated_into: Some(secret),
        ..
    }) = &source
    {
        note_generated(&lp, ctx, &user, secret).await;
    }
    // 2. Govern: the person's MFA, last use and expiry (the shared
    // credential report), and the rules over them.
    let governed = govern(&lp, ctx, &user, &source).await;
    let (mut lp, mut source, replaced_for_expiry) =
        match carry_out(lp, ctx, &user, &source, governed).await? {
            AfterGovern::Go(lp, None) => (*lp, source, None),
            AfterGovern::Done(action) => return Ok(action),
            AfterGovern::Go(lp, Some(for_expiry)) => {
                let issued = match recipients_of(&lp) {
                    Ok(recipients) => issue(&lp, ctx, &user, &recipients).await,
                    Err(problem) => Err(problem),
                };
                (*lp, issued, Some(for_expiry))
            }
        };
    if let Ok(desired) = &source
        && let Some(later) = ctx.no_iam_call_needed(&lp, desired)
    {
        return Ok(later);
    }
    // Anything but a drift check is a change: drift checks step aside meanwhile.
    let _change = match &source {
        Ok(desired) if ctx.only_drift_to_check(&lp, desired) => None,
        _ => Some(ctx.account.budget.drift.change()),
    };
    let mut iam = match observe_iam(&lp, ctx, &user, &source, Look::OnlyIfNeeded).await {
        Ok(iam) => iam,
        Err(outcome) => return fail(&lp, ctx, outcome).await,
    };

    // 3. Decide (pure, plan.rs), 4. act. A create-first guess that IAM
    // answers with "exists" is looked at once, on a fresh read of the object
    // (the cached one may not show this operator's own last status yet).
    let acted = loop {
        let plan = decide(&lp, ctx, &user, &source, &iam);
        tracing::debug!(object = %ObjectRef::from_obj(&lp), ?plan, "decided");
        if let (Plan::LookAtOwner, Some(profile)) = (&plan, &iam.profile) {
            iam.owner = match observe_owner(&lp, ctx, &user, profile).await {
                Ok(owner) => owner,
                Err(outcome) => return fail(&lp, ctx, outcome).await,
            };
            continue;
        }
        match act(ctx, &mut lp, &user, plan, &mut source, &iam).await {
            Ok(acted) => break acted,
            Err(ActFailure::Report(outcome)) => return fail(&lp, ctx, outcome).await,
            Err(ActFailure::Refused(outcome)) => return fail_settled(&lp, ctx, outcome).await,
            Err(ActFailure::Kube(error)) => return Err(Error::Kube(error)),
            Err(ActFailure::WaitUntil(until)) => {
                let wait = (until - chrono::Utc::now()).to_std().unwrap_or_default();
                return Ok(Action::requeue(wait.max(Duration::from_secs(1))));
            }
            Err(ActFailure::LookAgain {
                sending_mark_refused,
            }) if iam.looked_at.is_none() => {
                // Only the spec that was admitted is acted on: a newer one
                // (say, adoptionPolicy switched meanwhile) is admitted at
                // its own reconcile, which the change already queued.
                lp = ctx.fresh(&lp).await.map_err(Error::Kube)?;
                if (lp.uid(), lp.metadata.generation) != admitted {
                    return Ok(Action::requeue(Duration::from_secs(1)));
                }
                source = source.map(|desired| desired.compared_with(&lp, ctx, &user));
                iam = match observe_iam(&lp, ctx, &user, &source, Look::Always).await {
                    Ok(iam) => iam,
                    Err(outcome) => return fail(&lp, ctx, outcome).await,
                };
                iam.sending_mark_refused = sending_mark_refused;
            }
            // The profile appeared or vanished since GetLoginProfile: look again.
            Err(ActFailure::LookAgain { .. }) => {
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
        }
    };

    // 5. The status to report, 6. recorded on the IAM user first, 7. reported.
    let mut next = next_status(&lp, &user, &iam, &acted, source.ok().as_ref());
    next.account_id = Some(ctx.account_id.clone());
    if let (Some(for_expiry), Some(console), Some(_)) = (
        replaced_for_expiry,
        next.console.as_mut(),
        acted.sent_password,
    ) {
        // In the write that records the new ciphertext: a crash before it
        // leaves the replacement due, never recorded as done.
        console.replaced_for_expiry = for_expiry;
    }
    if acted.sent_password.is_some() {
        // Status now records the password the marks spoke of: settled, in
        // the same write.
        next.writes_settled_through = ctx.marks(&lp).settle().or(next.writes_settled_through);
    }
    // Only a password IAM holds now counts as verified (not a held-back one).
    let next_fingerprint = next
        .password_fingerprint
        .clone()
        .filter(|_| acted.outcome.reason != Reason::UpdateHeldBack);
    // 6. Record: the ownership record on the IAM user says what status now
    // says (one TagUser when that changed), and a profile made under an
    // IAMAccount's MFA rule starts the person's grace there.
    let recorded = match record_ownership(ctx, &lp, &user, &mut next).await {
        Ok(()) => record_grace_start(ctx, &user, &mut next).await,
        failed => failed,
    };
    if let Err(failed) = recorded {
        report(&lp, ctx, next, &failed, acted.wrote).await?;
        return settled_failure(&lp, ctx, failed);
    }
    // A record taken back whose password differs from the source's: send
    // it now, not at the next drift check.
    let send_next = matches!(acted.recognized, Some((_, Verdict::Different)));
    // 7. Report.
    report(&lp, ctx, next, &acted.outcome, acted.wrote).await?;
    ctx.memory.clear_failures(&lp);
    if let Some(fingerprint) = next_fingerprint {
        ctx.memory
            .remember_verified(&lp, fingerprint, ctx.settings.resync_period / 2);
    }
    ctx.metrics
        .set_profile_state(key(&lp), Some(ProfileState::Ready));
    if send_next {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    Ok(Action::requeue(ctx.next_drift_check(&lp)))
}
