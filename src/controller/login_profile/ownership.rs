//! The record step, after act: the ownership record on the IAM user
//! (rules/ownership.rs) made to say what status now records: this cluster,
//! this LoginProfile, the password last sent and the profile it went to.
//! One TagUser when that changed (a create, a rotation, an adoption, the
//! first drift check with a new `--cluster-id`), none at rest: status keeps
//! what the record says.

use crate::api::conditions::Outcome;
use crate::api::login_profile::LoginProfile;
use crate::api::login_profile::LoginProfileStatus;
use crate::aws::iam::Iam;
use crate::controller::runtime::context::InAccount;
use crate::controller::runtime::context::now_rfc3339;
use crate::rules::ownership::OwnerRecord;
use crate::rules::password::UNVERIFIED_PASSWORD;
use kube::ResourceExt;

/// Writes the record `next` calls for, unless status shows it written;
/// `next` then records it. Without `--cluster-id`, nothing.
pub(super) async fn record_ownership<I: Iam>(
    ctx: &InAccount<'_, I>,
    lp: &LoginProfile,
    user: &str,
    next: &mut LoginProfileStatus,
) -> Result<(), Outcome> {
    let Some(cluster_id) = ctx.settings.cluster_id.clone() else {
        return Ok(());
    };
    let (Some(password_fingerprint), Some(profile_created)) =
        (next.password_fingerprint.clone(), next.create_date.clone())
    else {
        return Ok(());
    };
    let record = OwnerRecord {
        cluster_id,
        namespace: lp.namespace().unwrap_or_default(),
        name: lp.name_any(),
        password_fingerprint,
        password_time: next
            .password_last_applied_time
            .clone()
            .unwrap_or_else(now_rfc3339),
        profile_created,
    };
    let unchanged = next.owner_record.as_ref().is_some_and(|written| {
        written.cluster_id == record.cluster_id
            && written.profile_created == record.profile_created
            // A password never seen tells the record nothing new.
            && (written.password_fingerprint == record.password_fingerprint
                || record.password_fingerprint == UNVERIFIED_PASSWORD)
    });
    if unchanged {
        return Ok(());
    }
    ctx.may_write()?;
    let sending = ctx.sending("TagUser", user);
    let answer = ctx.account.iam.tag_user(user, &record.to_tags()).await;
    sending.answered(answer.as_ref());
    answer.map_err(|error| {
            let outcome = error.outcome(user, None);
            Outcome::new(
                outcome.reason,
                format!(
                    "IAM has the login profile status shows, but the ownership record on IAM user {user:?} \
                     could not be written (iam:TagUser on tags under iam.loginprofile.dev/): {}",
                    outcome.message
                ),
            )
        })?;
    next.owner_record = Some(record.recorded());
    Ok(())
}
