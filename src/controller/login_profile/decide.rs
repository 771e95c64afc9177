//! The decide step's inputs, gathered from what was observed, for the pure
//! rules/plan.rs.

use super::desired::Desired;
use super::observe::IamView;
use crate::controller::runtime::context::InAccount;

use crate::{
    api::login_profile::LoginProfile,
    aws::iam::Iam,
    rules::password::Verdict,
    rules::plan::{self, Observed, Plan, SourceProblem},
};

/// The decide step's inputs, gathered from what was observed.
pub(super) fn decide<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    source: &Result<Desired, SourceProblem>,
    iam: &IamView,
) -> Plan {
    let pending_is_desired = sent_unconfirmed(lp, ctx, user, source, iam);
    plan::decide(&Observed {
        spec: &lp.spec,
        status: lp.status.as_ref(),
        source: source.as_ref().map(|desired| desired.applied),
        iam: iam.profile.as_ref(),
        changed_out_of_band: iam.changed_out_of_band,
        attempts: ctx.marks(lp).attempt_windows(ctx.settings.write_deadline),
        pending_is_desired,
        owner: &iam.owner,
        guard_writes: ctx.settings.cluster_id.is_some(),
    })
}

/// Whether an earlier attempt, whose answer never reached status, was
/// sending exactly the source's password (and this pass did not overwrite
/// that mark with a password IAM then refused).
pub(super) fn sent_unconfirmed<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    source: &Result<Desired, SourceProblem>,
    iam: &IamView,
) -> bool {
    if iam.sending_mark_refused {
        return false;
    }
    match (ctx.marks(lp).unconfirmed_sending(), source) {
        (Some(sending), Ok(desired)) => desired.verdict_of(sending, ctx, user) == Verdict::Same,
        _ => false,
    }
}
