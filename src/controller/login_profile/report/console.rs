//! What the govern step found, shown: `status.console` and the governance
//! conditions (one status write when they changed), the `console_users`
//! gauge and govern's Event; and console access a rule turned off, reported
//! as `ConsoleDisabled` (Stalled).

use super::report;
use crate::api::conditions;
use crate::api::login_profile::LoginProfile;
use crate::aws::iam::Iam;
use crate::controller::login_profile::governance::{Disabling, Shown};
use crate::controller::login_profile::record::{note_event, patch_status};
use crate::controller::runtime::context::{Error, InAccount, key};
use crate::controller::runtime::looks::Action;
use crate::ops::metrics::ProfileState;
use crate::rules::governance::{self, Finding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::events::EventType;

/// Publishes govern's Event, sets the gauge, and writes `status.console`
/// and the governance conditions if they changed (keeping the other
/// conditions); returns the object as written.
pub(in crate::controller::login_profile) async fn show_console<I: Iam>(
    lp: LoginProfile,
    ctx: &InAccount<'_, I>,
    shown: Shown,
) -> Result<LoginProfile, Error> {
    if let Some((reason, note)) = shown.event {
        note_event(&lp, ctx, EventType::Normal, reason, note).await;
    }
    set_gauge(&lp, ctx, shown.gauge);
    let previous = lp.status.clone().unwrap_or_default();
    let mut next = previous.clone();
    if !shown.findings.is_empty() || shown.console.is_none() {
        next.conditions = with_findings(&previous.conditions, &shown.findings);
    }
    next.console = shown.console.map(Box::new);
    if next == previous {
        return Ok(lp);
    }
    patch_status(&lp, ctx, &next).await.map_err(Error::Kube)
}

/// Reports console access a rule turned off just now (after the act step
/// deleted the profile made here): `ConsoleDisabled`, the profile no longer
/// in status, the rule and when in `status.console`, an Event.
pub(in crate::controller::login_profile) async fn console_disabled<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    disabling: Disabling,
) -> Result<Action, Error> {
    let Disabling { shown, outcome, .. } = disabling;
    let mut next = lp.status.clone().unwrap_or_default();
    next.user_name = Some(user.to_string());
    next.create_date = None;
    next.password_reset_required = None;
    next.console = shown.console.map(Box::new);
    next.conditions = with_findings(&next.conditions, &shown.findings);
    report(lp, ctx, next, &outcome, true).await?;
    set_gauge(lp, ctx, shown.gauge);
    ctx.metrics
        .set_profile_state(key(lp), Some(ProfileState::Stalled));
    Ok(Action::requeue(ctx.requeue_after(lp)))
}

fn set_gauge<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    gauge: Option<Option<crate::ops::metrics::ConsoleFindings>>,
) {
    if let Some(found) = gauge {
        let account = &ctx.account_id;
        ctx.metrics
            .set_console_findings(key(lp), found.map(|found| (account.clone(), found)));
    }
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
        conditions::condition(
            previous,
            (finding.type_, finding.status, finding.reason),
            finding.message.clone(),
            None,
            &now,
        )
    }));
    conditions
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
