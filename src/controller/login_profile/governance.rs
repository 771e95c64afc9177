//! The govern step (docs/governance.md), between observing the source and
//! IAM: what the account's shared credential report says of this person
//! (one report per account per `--credential-report-interval`, however
//! many LoginProfiles ask), judged by rules/governance.rs against the rules
//! in force. It hands forward what it found ([`Shown`]: `status.console`,
//! its conditions, the `console_users` gauge, an Event) and what must be
//! done about it ([`Governed`]): a rule with `DisableConsole` deletes the
//! login profile and keeps it deleted until a person re-enables it; a
//! generated password is replaced before it expires. The act step does
//! those writes and the report step shows the findings; govern itself
//! writes only the MFA grace record on the IAM user.

use super::desired::Desired;
use super::grace::{grace_record, has_mfa_floor};
use crate::api::conditions::Outcome;
use crate::api::governance::{ConsoleDisabled, ConsoleStatus};
use crate::api::login_profile::LoginProfile;
use crate::api::reason::{self, Reason};
use crate::aws::iam::Iam;
use crate::controller::runtime::context::InAccount;
use crate::controller::runtime::context::now_rfc3339;
use crate::ops::metrics::ConsoleFindings;
use crate::rules::governance::{self, Finding, Inputs, Judged};
use crate::rules::password_policy::PasswordPolicy;
use crate::rules::plan::{Applied, SourceProblem};
use chrono::Utc;

/// What govern found, for the report step to show.
#[derive(Default)]
pub(super) struct Shown {
    /// `status.console` as it stands now; `None` clears it and the
    /// governance conditions (nothing asks for them any more).
    pub(super) console: Option<ConsoleStatus>,
    /// The governance conditions, replacing the ones shown; empty keeps
    /// them as they are.
    pub(super) findings: Vec<Finding>,
    /// This object's `console_users` gauge: `None` leaves it as it is,
    /// `Some(None)` clears it.
    pub(super) gauge: Option<Option<ConsoleFindings>>,
    /// An Event, published before the status write: (reason, note).
    pub(super) event: Option<(&'static str, String)>,
}

/// What the rest of the reconcile does after governance.
pub(super) enum Governed {
    /// Nothing to show: go on with the object as it is.
    Unchanged,
    /// Show what was found, then go on.
    Continue(Shown),
    /// A delivered password (`deliverTo`) is due `rotateBefore` its expiry:
    /// show, issue a new one in this reconcile, and record
    /// `replaced_for_expiry` (this value) in the status write that records
    /// the new ciphertext.
    Reissue(Shown, Option<String>),
    /// A generated password is due `rotateBefore` its expiry: replace it in
    /// its Secret under this policy first, show after (a crash in between
    /// costs one more replacement, never a password left to expire); the
    /// next reconcile sends it.
    ReplaceGenerated(Shown, Box<PasswordPolicy>),
    /// Console access a rule turned off stays off: show, then report this
    /// (`ConsoleDisabled`).
    StaysDisabled(Shown, Outcome),
    /// A rule turns console access off now.
    Disable(Disabling),
    /// Report this problem; nothing else happens.
    Failed(Outcome),
}

/// A rule with `DisableConsole` that applies now.
pub(super) struct Disabling {
    /// Whether status records a profile made here, which is deleted; else
    /// (a new LoginProfile whose person's grace is over) none is made.
    pub(super) made_here: bool,
    /// `status.console` with `disabled` set, the findings and the gauge.
    pub(super) shown: Shown,
    /// `ConsoleDisabled`, saying which rule and how to re-enable.
    pub(super) outcome: Outcome,
}

/// The govern step. Reads only the cached credential report and password
/// policy; writes only the MFA grace record on the IAM user.
pub(super) async fn govern<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    source: &Result<Desired, SourceProblem>,
) -> Governed {
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
        // Clears what governance showed once nothing asks for it any more.
        return Governed::Continue(Shown {
            gauge: Some(None),
            ..Shown::default()
        });
    }
    let rules = match governance::in_force(own, floor) {
        Ok(rules) => rules,
        Err(message) => {
            return Governed::Failed(Outcome::new(Reason::InvalidGovernance, message));
        }
    };
    let report = match ctx.account.facts.credential_report(&ctx.account.iam).await {
        Ok(Some(report)) => report,
        Ok(None) => return Governed::Unchanged,
        Err(error) => {
            let problem = format!(
                "could not read IAM's credential report: {}",
                error.outcome(user, None).message
            );
            return Governed::Continue(Shown {
                console: lp
                    .status
                    .as_ref()
                    .and_then(|s| s.console.as_deref().cloned()),
                findings: governance::unknown(governance::REPORT_UNAVAILABLE, &problem),
                ..Shown::default()
            });
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
    let disabled_gauge = Some(Some(console_findings(None, true)));

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
            let shown = Shown {
                console: Some(console),
                gauge: disabled_gauge,
                ..Shown::default()
            };
            return Governed::StaysDisabled(shown, Outcome::new(Reason::ConsoleDisabled, message));
        }
        if mfa_floor {
            // Read again: an administrator restarts the grace by removing
            // the record (the profile made next is recorded instead).
            let since = match grace_record(ctx, user, None).await {
                Ok(since) => since,
                Err(outcome) => return Governed::Failed(outcome),
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
                let shown = Shown {
                    console: Some(console),
                    gauge: disabled_gauge,
                    ..Shown::default()
                };
                let outcome = Outcome::new(Reason::ConsoleDisabled, message);
                return Governed::StaysDisabled(shown, outcome);
            }
        }
        let why = if new_password {
            "a new password in the source"
        } else {
            "a new spec.governance.reenable"
        };
        // Recorded before the create: the act step re-reads the object, so
        // a change only in memory would not survive to the status write.
        console.disabled = None;
        return Governed::Continue(Shown {
            console: Some(console),
            event: Some((
                reason::CONSOLE_REENABLED,
                format!("console access re-enabled by {why}: the login profile is created again"),
            )),
            ..Shown::default()
        });
    }

    if mfa_floor && console.floor_since.is_none() {
        // Learned once, then kept in status: the record when there is one;
        // else the CreateDate of the profile made here, written as the
        // record (a profile made before the rule was). A new LoginProfile
        // for a person whose grace is over makes no profile at all; one
        // that makes a profile records it in the same reconcile
        // (`grace.rs`).
        let profile = governance::time_of(status.create_date.as_deref());
        if profile.is_some() || source.is_ok() {
            let since = match grace_record(ctx, user, profile).await {
                Ok(since) => since,
                Err(outcome) => return Governed::Failed(outcome),
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
                return disabling(lp, ctx, user, console, &judged, &refusal);
            }
        }
    }
    let judged = governance::judge(
        &rules,
        &Inputs {
            facts,
            now,
            profile_created: governance::time_of(status.create_date.as_deref()),
            floor_since: governance::time_of(console.floor_since.as_deref()),
            replaced_for: governance::time_of(previous.replaced_for_expiry.as_deref()),
            expiry,
            rotate_before: generated_rotation(lp),
        },
    );
    console.password_expires_at = judged.expires_at.map(governance::time);

    if let Some(disable) = &judged.disable {
        return disabling(lp, ctx, user, console, &judged, disable);
    }
    let same = source.as_ref().is_ok_and(|d| d.applied == Applied::Same);
    let for_expiry = console.password_expires_at.clone();
    let shown = Shown {
        console: Some(console),
        findings: judged.findings.clone(),
        gauge: Some(Some(console_findings(Some(&judged), false))),
        event: None,
    };
    match policy {
        _ if !(judged.rotate_due && same) => Governed::Continue(shown),
        _ if lp.spec.delivery().is_some() => Governed::Reissue(shown, for_expiry),
        Some(policy) => Governed::ReplaceGenerated(shown, Box::new(policy)),
        None => Governed::Continue(shown),
    }
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

/// `generatePassword.rotateBefore`, for a password the operator generates.
fn generated_rotation(lp: &LoginProfile) -> Option<chrono::Duration> {
    let generate = lp.spec.generate_password.as_ref()?;
    governance::span(&generate.rotate_before).ok()
}

/// The rule with `DisableConsole` that applies, as the act step (the
/// DeleteLoginProfile of a profile made here) and the report step
/// (`ConsoleDisabled`, Stalled, the rule and when, and an Event) need it.
fn disabling<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    mut console: ConsoleStatus,
    judged: &Judged,
    disable: &governance::Disable,
) -> Governed {
    let made_here = lp.status.as_ref().is_some_and(|s| s.create_date.is_some());
    console.disabled = Some(ConsoleDisabled {
        rule: disable.rule.into(),
        at: now_rfc3339(),
        message: disable.message.chars().take(1000).collect(),
        reenable: lp.spec.governance.as_ref().and_then(|g| g.reenable.clone()),
    });
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
    Governed::Disable(Disabling {
        made_here,
        shown: Shown {
            console: Some(console),
            findings: judged.findings.clone(),
            gauge: Some(Some(console_findings(Some(judged), true))),
            event: None,
        },
        outcome,
    })
}

/// The `console_users` gauge's view of what was judged.
fn console_findings(judged: Option<&Judged>, disabled: bool) -> ConsoleFindings {
    let status_of = |type_: &str| {
        judged
            .and_then(|j| j.findings.iter().find(|f| f.type_ == type_))
            .map(|f| f.status)
    };
    ConsoleFindings {
        no_mfa: status_of(governance::MFA_ACTIVE) == Some("False"),
        unused: status_of(governance::PASSWORD_USED) == Some("False"),
        expiring: status_of(governance::PASSWORD_EXPIRING) == Some("True"),
        disabled,
    }
}
