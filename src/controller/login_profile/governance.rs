//! The govern step (docs/governance.md), between observing the source and
//! IAM: what the account's shared credential report says of this person
//! (one report per account per `--credential-report-interval`, however
//! many LoginProfiles ask), judged by rules/governance.rs against the rules
//! in force, written to `status.console` and its conditions. A rule with
//! `DisableConsole` deletes the login profile and keeps it deleted until a
//! person re-enables it; a generated password is replaced before it
//! expires (a new Secret value, which the next reconcile sends; a delivered
//! one is issued anew in the same reconcile).

use super::desired::Desired;
use super::record::note_event;
use super::record::patch_status;
use super::report::fail;
use super::report::report;
use super::secret_source;
use crate::api::conditions::Outcome;
use crate::api::governance::{ConsoleDisabled, ConsoleStatus};
use crate::api::login_profile::LoginProfile;
use crate::api::login_profile::LoginProfileStatus;
use crate::api::reason::{self, Reason};
use crate::aws::iam::{Iam, IamError};
use crate::controller::runtime::context::Error;
use crate::controller::runtime::context::InAccount;
use crate::controller::runtime::context::key;
use crate::controller::runtime::context::now_rfc3339;
use crate::controller::runtime::looks::Action;
use crate::ops::metrics::{ConsoleFindings, ProfileState};
use crate::rules::governance::{self, Finding, Inputs, Judged};
use crate::rules::plan::{Applied, SourceProblem};
use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::events::EventType;
use std::time::Duration;

/// What the rest of the reconcile does after governance.
pub(super) enum Governed {
    /// Go on with this object (status may have been written: it is the
    /// written one).
    Continue(Box<LoginProfile>),
    /// Governance ended this reconcile (console access is off, or a
    /// generated password was just replaced).
    Done(Action),
    /// A delivered password (`deliverTo`) is due `rotateBefore` its expiry:
    /// issue a new one in this reconcile, and record `replaced_for_expiry`
    /// (this value) in the status write that records the new ciphertext.
    Reissue(Box<LoginProfile>, Option<String>),
}

/// The govern step. Reads only the cached credential report and password
/// policy; writes to IAM only to disable, to Kubernetes only to record.
pub(super) async fn govern<I: Iam>(
    mut lp: LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    source: &Result<Desired, SourceProblem>,
) -> Result<Governed, Error> {
    let floor = ctx.iam_account.spec.governance.as_ref();
    let own = lp.spec.governance.as_deref();
    let asked = own.is_some() || floor.is_some() || ctx.settings.report_console_activity;
    // The (cached) policy says when passwords expire; without governance
    // only a generated password needs to know.
    let policy = if asked || lp.spec.generate_password.is_some() {
        ctx.account
            .facts
            .password_policy(&ctx.account.iam)
            .await
            .ok()
    } else {
        None
    };
    let expiry = policy.as_ref().and_then(|p| p.expiry());
    let rotates = lp.spec.generate_password.is_some() && expiry.is_some();
    if !asked && !rotates {
        return Ok(Governed::Continue(Box::new(forget(lp, ctx).await?)));
    }
    let rules = match governance::in_force(own, floor) {
        Ok(rules) => rules,
        Err(message) => {
            let action = fail(&lp, ctx, Outcome::new(Reason::InvalidGovernance, message)).await?;
            return Ok(Governed::Done(action));
        }
    };
    let report = match ctx.account.facts.credential_report(&ctx.account.iam).await {
        Ok(Some(report)) => report,
        Ok(None) => return Ok(Governed::Continue(Box::new(lp))),
        Err(error) => {
            let problem = format!(
                "could not read IAM's credential report: {}",
                error.outcome(user, None).message
            );
            let findings = governance::unknown(governance::REPORT_UNAVAILABLE, &problem);
            let console = lp
                .status
                .as_ref()
                .and_then(|s| s.console.as_deref().cloned());
            return Ok(Governed::Continue(Box::new(
                record(lp, ctx, console, &findings).await?,
            )));
        }
    };
    let now = report.generated.unwrap_or_else(Utc::now);
    let facts = report.user(user);
    // An IAMAccount's MFA rule counts each person's grace from the first
    // profile made under it (recorded on the IAM user), whatever the
    // tenant does with its object.
    let mfa_floor = has_mfa_floor(ctx);
    let status = lp.status.clone().unwrap_or_default();
    let previous = status.console.clone().unwrap_or_default();
    let mut console = ConsoleStatus {
        report_generated_at: Some(governance::time(now)),
        mfa_active: facts.map(|f| f.mfa_active),
        password_last_used: facts
            .and_then(|f| f.password_last_used)
            .map(governance::time),
        password_last_changed: facts
            .filter(|f| f.password_enabled)
            .and_then(|f| f.password_last_changed)
            .map(governance::time),
        password_expires_at: None,
        rules: Some(rules.describe()),
        replaced_for_expiry: previous.replaced_for_expiry.clone(),
        disabled: previous.disabled.clone(),
        floor_since: previous.floor_since.clone().filter(|_| mfa_floor),
    };

    // Console access a rule turned off stays off until a person acts.
    if let Some(disabled) = &previous.disabled {
        let token = own.and_then(|g| g.reenable.clone());
        let new_password = source
            .as_ref()
            .is_ok_and(|d| d.applied == Applied::Different);
        if token == disabled.reenable && !new_password {
            let message = format!(
                "console access disabled at {} by the {} rule: {}; {}",
                disabled.at,
                disabled.rule,
                disabled.message,
                reenable_hint(mfa_floor && disabled.rule == "mfa")
            );
            lp = record(lp, ctx, Some(console), &[]).await?;
            set_findings(&lp, ctx, None, true);
            let action = fail(&lp, ctx, Outcome::new(Reason::ConsoleDisabled, message)).await?;
            return Ok(Governed::Done(action));
        }
        if mfa_floor {
            // Read again: an administrator restarts the grace by removing
            // the record (the profile made next is recorded instead).
            let since = match grace_record(ctx, user, None).await {
                Ok(since) => since,
                Err(outcome) => return fail(&lp, ctx, outcome).await.map(Governed::Done),
            };
            console.floor_since = since.map(governance::time);
            if let Some(refusal) =
                since.and_then(|since| governance::refuse_again(&rules, facts, now, since))
            {
                let message = format!(
                    "console access stays disabled: {}; {}",
                    refusal.message,
                    reenable_hint(true)
                );
                if let Some(disabled) = console.disabled.as_mut() {
                    disabled.reenable = token;
                }
                lp = record(lp, ctx, Some(console), &[]).await?;
                set_findings(&lp, ctx, None, true);
                let action = fail(&lp, ctx, Outcome::new(Reason::ConsoleDisabled, message)).await?;
                return Ok(Governed::Done(action));
            }
        }
        let why = if new_password {
            "a new password in the source"
        } else {
            "a new spec.governance.reenable"
        };
        note_event(
            &lp,
            ctx,
            EventType::Normal,
            reason::CONSOLE_REENABLED,
            format!("console access re-enabled by {why}: the login profile is created again"),
        )
        .await;
        // Recorded before the create: the act step re-reads the object, so
        // a change only in memory would not survive to the status write.
        console.disabled = None;
        let lp = record(lp, ctx, Some(console), &[]).await?;
        return Ok(Governed::Continue(Box::new(lp)));
    }

    if mfa_floor && console.floor_since.is_none() {
        // Learned once, then kept in status: the record when there is one;
        // else the CreateDate of the profile made here, written as the
        // record (a profile made before the rule was). A new LoginProfile
        // for a person whose grace is over makes no profile at all; one
        // that makes a profile records it in the same reconcile
        // ([`record_grace_start`]).
        let profile = time_of(status.create_date.as_deref());
        if profile.is_some() || source.is_ok() {
            let since = match grace_record(ctx, user, profile).await {
                Ok(since) => since,
                Err(outcome) => return fail(&lp, ctx, outcome).await.map(Governed::Done),
            };
            console.floor_since = since.map(governance::time);
            let refusal = match (profile, since) {
                (None, Some(since)) => governance::refuse_again(&rules, facts, now, since),
                _ => None,
            };
            if let Some(refusal) = refusal {
                let judged = Judged {
                    findings: Vec::new(),
                    disable: Some(refusal.clone()),
                    ..Judged::default()
                };
                return disable_console(lp, ctx, user, console, &judged, &refusal)
                    .await
                    .map(Governed::Done);
            }
        }
    }
    let judged = governance::judge(
        &rules,
        &Inputs {
            facts,
            now,
            profile_created: time_of(status.create_date.as_deref()),
            floor_since: time_of(console.floor_since.as_deref()),
            replaced_for: time_of(previous.replaced_for_expiry.as_deref()),
            expiry,
            rotate_before: generated_rotation(&lp),
        },
    );
    console.password_expires_at = judged.expires_at.map(governance::time);

    if let Some(disable) = &judged.disable {
        return disable_console(lp, ctx, user, console, &judged, disable)
            .await
            .map(Governed::Done);
    }
    set_findings(&lp, ctx, Some(&judged), false);
    let same = source.as_ref().is_ok_and(|d| d.applied == Applied::Same);
    if judged.rotate_due && same && lp.spec.delivery().is_some() {
        let for_expiry = console.password_expires_at.clone();
        let lp = record(lp, ctx, Some(console), &judged.findings).await?;
        return Ok(Governed::Reissue(Box::new(lp), for_expiry));
    }
    // Replaced first, recorded after: a crash in between costs one more
    // replacement, never a password left to expire.
    let replaced = match (source, &policy) {
        (Ok(desired), Some(policy)) if judged.rotate_due && desired.applied == Applied::Same => {
            replace_generated(&lp, ctx, user, policy, desired).await
        }
        _ => false,
    };
    if replaced {
        console.replaced_for_expiry = console.password_expires_at.clone();
    }
    lp = record(lp, ctx, Some(console), &judged.findings).await?;
    if replaced {
        return Ok(Governed::Done(Action::requeue(Duration::from_secs(1))));
    }
    Ok(Governed::Continue(Box::new(lp)))
}

/// Whether the IAMAccount sets an MFA rule: each person's grace is then
/// recorded on the IAM user.
fn has_mfa_floor<I: Iam>(ctx: &InAccount<'_, I>) -> bool {
    ctx.iam_account
        .spec
        .governance
        .as_ref()
        .is_some_and(|g| g.mfa.is_some())
}

/// What re-enables console access a rule turned off: the tenant's own act,
/// or, where the IAMAccount's MFA rule turned it off, an MFA device or an
/// administrator's.
fn reenable_hint(under_iam_account_mfa_rule: bool) -> String {
    if under_iam_account_mfa_rule {
        format!(
            "under the IAMAccount's MFA rule a new spec.governance.reenable or password does not restart the grace: the IAM user needs an active MFA device (seen in IAM's next credential report), or an administrator removes its tag {}; then set spec.governance.reenable to a new value",
            governance::FLOOR_SINCE_TAG
        )
    } else {
        "to re-enable, set spec.governance.reenable to a new value or put a new password in the source".into()
    }
}

/// Records, after a profile was made, that the person's MFA grace under
/// the IAMAccount's rule started with it, unless an earlier start is
/// recorded (one ListUserTags and at most one TagUser, before the status
/// write: a lost status write leaves the record in IAM all the same).
/// `next` (the status about to be written) then shows the start.
pub(super) async fn record_grace_start<I: Iam>(
    ctx: &InAccount<'_, I>,
    user: &str,
    next: &mut LoginProfileStatus,
) -> Result<(), Outcome> {
    let mfa_floor = has_mfa_floor(ctx);
    let recorded = next.console.as_ref().and_then(|c| c.floor_since.as_ref());
    let created = time_of(next.create_date.as_deref());
    let (true, None, Some(created)) = (mfa_floor, recorded, created) else {
        return Ok(());
    };
    let since = grace_record(ctx, user, Some(created)).await?;
    next.console.get_or_insert_with(Box::default).floor_since = since.map(governance::time);
    Ok(())
}

/// The start of the person's MFA grace under an IAMAccount's rule, as the
/// IAM user's tag records it; with none and a `start`, that start, written
/// as the record (one TagUser).
async fn grace_record<I: Iam>(
    ctx: &InAccount<'_, I>,
    user: &str,
    start: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, Outcome> {
    let tags = ctx
        .account
        .iam
        .user_tags(user)
        .await
        .map_err(|error| error.outcome(user, None))?;
    let recorded = tags
        .iter()
        .find(|(key, _)| key == governance::FLOOR_SINCE_TAG)
        .and_then(|(_, value)| time_of(Some(value)));
    let (None, Some(start)) = (recorded, start) else {
        return Ok(recorded);
    };
    ctx.may_write()?;
    let tag = (
        governance::FLOOR_SINCE_TAG.to_string(),
        governance::time(start),
    );
    ctx.account
        .iam
        .tag_user(user, &[tag])
        .await
        .map_err(|error| error.outcome(user, None))?;
    Ok(Some(start))
}

/// `generatePassword.rotateBefore`, for a password the operator generates.
fn generated_rotation(lp: &LoginProfile) -> Option<chrono::Duration> {
    let generate = lp.spec.generate_password.as_ref()?;
    governance::span(&generate.rotate_before).ok()
}

fn time_of(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// DeleteLoginProfile for a rule with `DisableConsole`, then status
/// (`ConsoleDisabled`, Stalled, the rule and when) and an Event.
async fn disable_console<I: Iam>(
    lp: LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    mut console: ConsoleStatus,
    judged: &Judged,
    disable: &governance::Disable,
) -> Result<Action, Error> {
    // Only a profile status records as made here is deleted; without one
    // (a new LoginProfile whose person's grace is over) none is made.
    let made_here = lp.status.as_ref().is_some_and(|s| s.create_date.is_some());
    if made_here {
        if let Err(refusal) = ctx.may_write() {
            return fail(&lp, ctx, refusal).await;
        }
        match ctx.account.iam.delete_login_profile(user).await {
            // Gone already (deleted out of band while the object was parked).
            Ok(()) | Err(IamError::NoSuchEntity(_)) => {}
            Err(error) => return fail(&lp, ctx, error.outcome(user, None)).await,
        }
    }
    console.disabled = Some(ConsoleDisabled {
        rule: disable.rule.into(),
        at: now_rfc3339(),
        message: disable.message.chars().take(1000).collect(),
        reenable: lp.spec.governance.as_ref().and_then(|g| g.reenable.clone()),
    });
    let mut next = lp.status.clone().unwrap_or_default();
    next.user_name = Some(user.to_string());
    next.create_date = None;
    next.password_reset_required = None;
    next.console = Some(Box::new(console));
    next.conditions = with_findings(&next.conditions, &judged.findings);
    let what = if made_here {
        format!("the login profile of IAM user {user:?} was deleted")
    } else {
        format!("no login profile is made for IAM user {user:?}")
    };
    let floor_rule = disable.rule == "mfa" && has_mfa_floor(ctx);
    let outcome = Outcome::new(
        Reason::ConsoleDisabled,
        format!(
            "console access disabled: {what} by the {} rule: {}; {}",
            disable.rule,
            disable.message,
            reenable_hint(floor_rule)
        ),
    );
    report(&lp, ctx, next, &outcome, true).await?;
    set_findings(&lp, ctx, Some(judged), true);
    ctx.metrics
        .set_profile_state(key(&lp), Some(ProfileState::Stalled));
    ctx.metrics.reconciled("stalled");
    Ok(Action::requeue(ctx.requeue_after(&lp)))
}

/// A new generated password in the Secret, `rotateBefore` ahead of expiry.
/// Only a Secret the operator generated is touched; the next reconcile
/// sends it (one UpdateLoginProfile) as any new password.
async fn replace_generated<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    policy: &crate::rules::password_policy::PasswordPolicy,
    desired: &Desired,
) -> bool {
    let (Some(reference), Some(generate), Some(version)) = (
        lp.spec.password_secret_ref.as_ref(),
        lp.spec.generate_password.as_ref(),
        desired.version.text(),
    ) else {
        return false;
    };
    let Ok(password) = crate::rules::password_policy::generate(generate.length as usize, policy)
    else {
        return false;
    };
    match secret_source::replace_generated(&ctx.client, lp, reference, &password, &version).await {
        Ok(true) => {
            let note = format!(
                "replaced the generated password of IAM user {user:?} in Secret {:?} ahead of its expiry (generatePassword.rotateBefore {})",
                reference.name, generate.rotate_before
            );
            note_event(lp, ctx, EventType::Normal, reason::PASSWORD_ROTATED, note).await;
            true
        }
        Ok(false) => false,
        Err(error) => {
            tracing::warn!(%error, "could not replace the generated password before it expires");
            false
        }
    }
}

/// Writes `console` and the governance conditions when they changed,
/// keeping the other conditions; returns the object as written.
async fn record<I: Iam>(
    lp: LoginProfile,
    ctx: &InAccount<'_, I>,
    console: Option<ConsoleStatus>,
    findings: &[Finding],
) -> Result<LoginProfile, Error> {
    let previous = lp.status.clone().unwrap_or_default();
    let mut next = previous.clone();
    next.console = console.map(Box::new);
    if !findings.is_empty() || next.console.is_none() {
        next.conditions = with_findings(&previous.conditions, findings);
    }
    if next == previous {
        return Ok(lp);
    }
    patch_status(&lp, ctx, &next).await.map_err(Error::Kube)
}

/// Clears what governance showed once nothing asks for it any more.
async fn forget<I: Iam>(lp: LoginProfile, ctx: &InAccount<'_, I>) -> Result<LoginProfile, Error> {
    ctx.metrics.set_console_findings(key(&lp), None);
    let shown = lp.status.as_ref().is_some_and(|s| {
        s.console.is_some() || s.conditions.iter().any(|c| is_governance(&c.type_))
    });
    if !shown {
        return Ok(lp);
    }
    record(lp, ctx, None, &[]).await
}

fn is_governance(type_: &str) -> bool {
    governance::CONDITION_TYPES.contains(&type_)
}

/// `previous` with its governance conditions replaced by `findings`; a
/// condition whose status did not change keeps its lastTransitionTime.
fn with_findings(previous: &[Condition], findings: &[Finding]) -> Vec<Condition> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut conditions: Vec<Condition> = previous
        .iter()
        .filter(|c| !is_governance(&c.type_))
        .cloned()
        .collect();
    conditions.extend(findings.iter().map(|finding| {
        let last_transition_time = previous
            .iter()
            .find(|c| c.type_ == finding.type_ && c.status == finding.status)
            .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
        Condition {
            type_: finding.type_.into(),
            status: finding.status.into(),
            reason: finding.reason.into(),
            message: finding.message.clone(),
            observed_generation: None,
            last_transition_time,
        }
    }));
    conditions
}

/// The `console_users` gauge for this object.
fn set_findings<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    judged: Option<&Judged>,
    disabled: bool,
) {
    let status_of = |type_: &str| {
        judged
            .and_then(|j| j.findings.iter().find(|f| f.type_ == type_))
            .map(|f| f.status)
    };
    let found = ConsoleFindings {
        no_mfa: status_of(governance::MFA_ACTIVE) == Some("False"),
        unused: status_of(governance::PASSWORD_USED) == Some("False"),
        expiring: status_of(governance::PASSWORD_EXPIRING) == Some("True"),
        disabled,
    };
    ctx.metrics
        .set_console_findings(key(lp), Some((ctx.account_id.clone(), found)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_replace_only_governance_conditions_and_keep_transition_times() {
        let old = Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap());
        let condition = |type_: &str, status: &str| Condition {
            type_: type_.into(),
            status: status.into(),
            reason: "R".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: old.clone(),
        };
        let previous = vec![
            condition("Ready", "True"),
            condition(governance::MFA_ACTIVE, "False"),
            condition(governance::PASSWORD_USED, "True"),
        ];
        let findings = [
            Finding {
                type_: governance::MFA_ACTIVE,
                status: "False",
                reason: "NoMFA",
                message: "m".into(),
            },
            Finding {
                type_: governance::PASSWORD_USED,
                status: "False",
                reason: "PasswordUnused",
                message: "u".into(),
            },
        ];
        let next = with_findings(&previous, &findings);
        assert_eq!(next.len(), 3);
        assert_eq!(next[0].type_, "Ready");
        assert_eq!(next[1].last_transition_time, old, "MFAActive stayed False");
        assert_ne!(
            next[2].last_transition_time, old,
            "PasswordUsed turned False"
        );
        assert_eq!(with_findings(&previous, &[]).len(), 1);
    }
}
