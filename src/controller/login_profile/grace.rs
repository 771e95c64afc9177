//! The start of each person's MFA grace under an IAMAccount's MFA rule,
//! as a tag on the IAM user records it (rules/governance.rs,
//! `FLOOR_SINCE_TAG`), so deleting and recreating a LoginProfile does not
//! restart it: read, and written for a profile made before the rule, by
//! the govern step; written for a profile just made, after the act step.

use crate::api::conditions::Outcome;
use crate::api::login_profile::LoginProfileStatus;
use crate::aws::iam::Iam;
use crate::controller::runtime::context::InAccount;
use crate::rules::governance::{self, time_of};
use chrono::{DateTime, Utc};

/// Whether the IAMAccount sets an MFA rule: each person's grace is then
/// recorded on the IAM user.
pub(super) fn has_mfa_floor<I: Iam>(ctx: &InAccount<'_, I>) -> bool {
    ctx.iam_account
        .spec
        .governance
        .as_ref()
        .is_some_and(|g| g.mfa.is_some())
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
pub(super) async fn grace_record<I: Iam>(
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
    let sending = ctx.sending("TagUser", user);
    let answer = ctx.account.iam.tag_user(user, &[tag]).await;
    sending.answered(answer.as_ref());
    answer.map_err(|error| error.outcome(user, None))?;
    Ok(Some(start))
}
