//! The observe step: the password source (a Kubernetes Secret, generated if
//! asked, or AWS Secrets Manager) compared with what status records, and
//! IAM's login profile (plus, for `Enforce`, the credential report).

use super::delivery::observe_delivered;
use super::desired::{Desired, SourceVersion, generated_password};
use super::secret_source;
use crate::api::conditions::Outcome;
use crate::api::login_profile::LoginProfile;
use crate::api::login_profile::PasswordUpdatePolicy;
use crate::api::reason::Reason;
use crate::aws::iam::Iam;
use crate::aws::iam::IamError;
use crate::controller::runtime::context::InAccount;
use crate::rules::ownership::{self, Owner, OwnerRecord};
use crate::rules::plan::Applied;
use crate::rules::plan::IamProfile;
use crate::rules::plan::SourceProblem;
use chrono::DateTime;
use chrono::Utc;
use kube::ResourceExt;

/// What IAM showed.
pub(super) struct IamView {
    /// The login profile; `None` when IAM has none (or was not asked).
    pub(super) profile: Option<IamProfile>,
    /// When IAM was asked (`None`: create-first skipped the look).
    pub(super) looked_at: Option<DateTime<Utc>>,
    /// `Enforce`: IAM's events or its credential report show a change
    /// after the operator's.
    pub(super) changed_out_of_band: bool,
    /// When IAM's events last reported the person's own ChangePassword, if
    /// after the operator last sent the password (asked only when IAM was).
    pub(super) changed_by_user: Option<DateTime<Utc>>,
    /// This pass's create was refused (a profile exists) after it marked
    /// its own password as sending over an earlier mark: the mark now names
    /// a password IAM refused, and says nothing about what IAM holds.
    pub(super) sending_mark_refused: bool,
    /// Whose profile it is by the ownership record on the user (read only
    /// when status and the marks do not tell).
    pub(super) owner: Owner,
}

/// How far IAM is looked at before acting.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Look {
    /// Where status shows no profile (no createDate), not at all: most
    /// likely the user has none, so CreateLoginProfile goes first and a
    /// create costs one IAM call (IAM's rate limit is shared by the whole
    /// account). Where the source changed, not either: the password is sent
    /// first (a rotation costs one call), and IAM is looked at only if it
    /// answers that no profile exists. Otherwise (a drift check, a
    /// reset-flag change): GetLoginProfile.
    OnlyIfNeeded,
    /// GetLoginProfile (the guess above was wrong).
    Always,
}

/// IAM's profile as status last recorded it, without asking IAM.
fn assumed_from_status(lp: &LoginProfile) -> Option<IamView> {
    let status = lp.status.as_ref()?;
    Some(IamView {
        profile: Some(IamProfile {
            create_date: status.create_date.clone()?,
            password_reset_required: status.password_reset_required.unwrap_or(false),
        }),
        looked_at: None,
        changed_out_of_band: false,
        changed_by_user: None,
        sending_mark_refused: false,
        owner: Owner::NotLooked,
    })
}

/// Looks at IAM as far as `look` asks; never when the source is broken,
/// which blocks every plan anyway.
pub(super) async fn observe_iam<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    source: &Result<Desired, SourceProblem>,
    look: Look,
) -> Result<IamView, Outcome> {
    let not_asked = IamView {
        profile: None,
        looked_at: None,
        changed_out_of_band: false,
        changed_by_user: None,
        sending_mark_refused: false,
        owner: Owner::NotLooked,
    };
    if look == Look::OnlyIfNeeded {
        if source
            .as_ref()
            .is_ok_and(|d| d.applied == Applied::Different)
            && let Some(assumed) = assumed_from_status(lp)
        {
            return Ok(assumed);
        }
        // A retry of a create whose answer never came looks first: an
        // attempt's window is settled only by a look made after it closed.
        if lp.status.as_ref().is_none_or(|s| s.create_date.is_none())
            && ctx.marks(lp).in_charge_since().is_none()
        {
            return Ok(not_asked);
        }
    }
    if source.is_err() {
        return Ok(not_asked);
    }
    let looked_at = Utc::now();
    let profile = ctx
        .account
        .iam
        .get_login_profile(user)
        .await
        .map_err(|error| error.outcome(user, None))?;
    let changed_out_of_band = enforce_check(lp, ctx, user, profile.as_ref())
        .await
        .map_err(|error| error.outcome(user, None))?;
    let changed_by_user = profile.as_ref().and_then(|_| {
        ctx.memory
            .password_changed_after(lp, password_applied_at(lp))
    });
    Ok(IamView {
        profile,
        looked_at: Some(looked_at),
        changed_out_of_band,
        changed_by_user,
        sending_mark_refused: false,
        owner: Owner::NotLooked,
    })
}

/// The ownership record on `user`, read (ListUserTags) and judged for `lp`
/// and the profile IAM has.
pub(super) async fn observe_owner<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    profile: &IamProfile,
) -> Result<Owner, Outcome> {
    let tags = ctx
        .account
        .iam
        .user_tags(user)
        .await
        .map_err(|error| error.outcome(user, None))?;
    let reader = ownership::Reader {
        cluster_id: ctx.settings.cluster_id.as_deref(),
        namespace: &lp.namespace().unwrap_or_default(),
        name: &lp.name_any(),
        take_over_from: &ctx.iam_account.spec.take_ownership_from,
    };
    Ok(ownership::judge(
        OwnerRecord::from_tags(&tags),
        &reader,
        &profile.create_date,
    ))
}

/// Reads the password source named by the spec (generating the Secret when
/// asked to, or the delivered password). A Secrets Manager secret whose
/// version was already applied is not fetched: its fingerprint is the one
/// in status.
pub(super) async fn observe_source<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
) -> Result<Desired, SourceProblem> {
    let spec = &lp.spec;
    if spec.delivery().is_some() {
        return observe_delivered(lp, ctx, user).await;
    }
    if let Some(reference) = &spec.password_secret_ref {
        let (sourced, generated) = match (
            secret_source::read(&ctx.client, lp, reference).await,
            &spec.generate_password,
        ) {
            (Err(problem), Some(generate)) if problem.reason == Reason::SecretNotFound => {
                generate_secret(lp, ctx, reference, generate.length).await?
            }
            (sourced, _) => (sourced?, false),
        };
        let mut desired = Desired::new(
            lp,
            ctx,
            user,
            sourced.password,
            SourceVersion::Secret(sourced.resource_version),
        );
        desired.generated_into = generated.then(|| reference.name.clone());
        return Ok(desired);
    }
    let Some(reference) = &spec.password_secrets_manager_ref else {
        return Err(SourceProblem {
            reason: Reason::SecretNotFound,
            message: "set spec.passwordSecretRef or spec.passwordSecretsManagerRef".into(),
        });
    };
    let version = ctx
        .account
        .secrets_manager
        .current_version(reference)
        .await
        .map_err(|error| error.problem(reference))?;
    let status = lp.status.as_ref();
    if let (Some(applied), Some(fingerprint)) = (
        status.and_then(|s| s.secrets_manager_version_id.as_ref()),
        status.and_then(|s| s.password_fingerprint.as_ref()),
    ) && *applied == version
    {
        return Ok(Desired {
            fingerprint: fingerprint.clone(),
            password: None,
            version: SourceVersion::SecretsManager(version),
            applied: Applied::Same,
            delivery: None,
            generated_into: None,
        });
    }
    fetch_secrets_manager(lp, ctx, user).await
}

/// GetSecretValue for a LoginProfile whose source is Secrets Manager.
pub(super) async fn fetch_secrets_manager<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
) -> Result<Desired, SourceProblem> {
    let Some(reference) = &lp.spec.password_secrets_manager_ref else {
        unreachable!("only a Secrets Manager source is fetched lazily");
    };
    match ctx.account.secrets_manager.password(reference).await {
        Ok(Ok((password, version))) => Ok(Desired::new(
            lp,
            ctx,
            user,
            password,
            SourceVersion::SecretsManager(version),
        )),
        Ok(Err(problem)) => Err(problem),
        Err(error) => Err(error.problem(reference)),
    }
}

/// When the operator last sent a password to IAM, as status records it.
fn password_applied_at(lp: &LoginProfile) -> Option<DateTime<Utc>> {
    lp.status
        .as_ref()
        .and_then(|s| s.password_last_applied_time.as_deref())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// `Enforce` only: whether IAM's events or its credential report show a
/// password change after the operator's last one. A person's ChangePassword
/// is one. Someone else's UpdateLoginProfile may be (CloudTrail does not say
/// whether it set a password): it counts where sending the Secret's password
/// again cannot be refused as reused; in an account that refuses reused
/// passwords, the credential report decides (a resend over an unchanged
/// password would be refused, and report a violation that is not there).
pub(super) async fn enforce_check<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    observed: Option<&IamProfile>,
) -> Result<bool, IamError> {
    let (PasswordUpdatePolicy::Enforce, Some(_), Some(applied_at)) = (
        lp.spec.password_update_policy,
        observed,
        password_applied_at(lp),
    ) else {
        return Ok(false);
    };
    if ctx
        .memory
        .password_changed_after(lp, Some(applied_at))
        .is_some()
    {
        return Ok(true);
    }
    if ctx.memory.updated_outside_after(lp, applied_at) {
        let policy = ctx.account.facts.password_policy(&ctx.account.iam).await?;
        if !policy.prevents_reuse() {
            return Ok(true);
        }
    }
    let changed = ctx
        .account
        .facts
        .password_last_changed(&ctx.account.iam, user)
        .await?;
    Ok(changed.is_some_and(|changed| changed > applied_at))
}

/// Creates the missing Secret with a random password that meets the account
/// policy (`spec.generatePassword`), and returns it as the source, and
/// whether this reconcile created it.
async fn generate_secret<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    reference: &crate::api::login_profile::SecretKeyRef,
    length: u32,
) -> Result<(secret_source::SourcedPassword, bool), SourceProblem> {
    let password = generated_password(ctx, length).await?;
    let namespace = lp.namespace().unwrap_or_default();
    let created = secret_source::create_generated(
        &ctx.client,
        lp,
        reference,
        &password,
        ctx.settings.default_deletion_policy,
    )
    .await
    .map_err(|error| {
        secret_source::kubernetes_problem(&error, "create", &namespace, &reference.name)
    })?;
    // Read it back, so a Secret another writer made first wins.
    let sourced = secret_source::read(&ctx.client, lp, reference).await?;
    Ok((sourced, created))
}
