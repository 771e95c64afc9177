//! The observe step: the password source (a Kubernetes Secret, generated if
//! asked, or AWS Secrets Manager) compared with what status records, and
//! IAM's login profile (plus, for `Enforce`, the credential report).

use super::delivery::observe_delivered;
use super::report::note_event;
use super::secret_source;
use crate::api::conditions::Outcome;
use crate::api::login_profile::EncryptedPassword;
use crate::api::login_profile::LoginProfile;
use crate::api::login_profile::LoginProfileStatus;
use crate::api::login_profile::PasswordUpdatePolicy;
use crate::api::reason::{self, Reason};
use crate::aws::iam::Iam;
use crate::aws::iam::IamError;
use crate::controller::runtime::context::InAccount;
use crate::rules::ownership::{self, Owner, OwnerRecord};
use crate::rules::password::Password;
use crate::rules::password::Verdict;
use crate::rules::plan::Applied;
use crate::rules::plan::IamProfile;
use crate::rules::plan::SourceProblem;
use chrono::DateTime;
use chrono::Utc;
use kube::ResourceExt;
use kube::runtime::events::EventType;

/// The password the spec asks for, as far as it had to be read.
pub(super) struct Desired {
    /// Under the current fingerprint key.
    pub(super) fingerprint: String,
    /// `None` when the source's version is the one already applied, so the
    /// (billed) value was not fetched; fetched later only if a plan needs it.
    pub(super) password: Option<Password>,
    pub(super) version: SourceVersion,
    /// How it compares with the password status records as applied.
    pub(super) applied: Applied,
    /// A newly issued delivered password's ciphertext, for status once IAM
    /// accepted the password.
    pub(super) delivery: Option<EncryptedPassword>,
}

impl Desired {
    pub(super) fn new(
        lp: &LoginProfile,
        ctx: &InAccount<'_, impl Iam>,
        user: &str,
        password: Password,
        version: SourceVersion,
    ) -> Self {
        Self {
            fingerprint: ctx.fingerprinter.fingerprint(user, &password),
            password: Some(password),
            version,
            applied: Applied::Nothing,
            delivery: None,
        }
        .compared_with(lp, ctx, user)
    }

    /// Compares with what `lp`'s status records. A fingerprint under a key
    /// the operator no longer holds never causes a write by itself: if the
    /// source's version is the one status recorded, it is the same password
    /// (and status gets a fingerprint under the current key).
    pub(super) fn compared_with(
        mut self,
        lp: &LoginProfile,
        ctx: &InAccount<'_, impl Iam>,
        user: &str,
    ) -> Self {
        let status = lp.status.as_ref();
        self.applied = match status.and_then(|s| s.password_fingerprint.as_deref()) {
            None => Applied::Nothing,
            Some(recorded) => match self.verdict_of(recorded, ctx, user) {
                Verdict::Same => Applied::Same,
                Verdict::Different => Applied::Different,
                Verdict::UnknownKey if self.version.recorded_in(status) => Applied::Same,
                Verdict::UnknownKey => Applied::Different,
            },
        };
        self
    }

    /// How a recorded fingerprint compares with this password.
    pub(super) fn verdict_of(
        &self,
        recorded: &str,
        ctx: &InAccount<'_, impl Iam>,
        user: &str,
    ) -> Verdict {
        match &self.password {
            Some(password) => ctx.fingerprinter.verify(recorded, user, password),
            // Not fetched because its version is the applied one.
            None if recorded == self.fingerprint => Verdict::Same,
            None => Verdict::Different,
        }
    }
}

/// What IAM showed.
pub(super) struct IamView {
    /// The login profile; `None` when IAM has none (or was not asked).
    pub(super) profile: Option<IamProfile>,
    /// When IAM was asked (`None`: create-first skipped the look).
    pub(super) looked_at: Option<DateTime<Utc>>,
    /// `Enforce`: the credential report shows a change after the operator's.
    pub(super) changed_out_of_band: bool,
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
    Ok(IamView {
        profile,
        looked_at: Some(looked_at),
        changed_out_of_band,
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

/// Which version of the source the password is.
#[derive(Clone)]
pub(super) enum SourceVersion {
    Secret(Option<String>),
    SecretsManager(String),
    /// Generated for `deliverTo`: no version outside status.
    Delivered,
}

impl SourceVersion {
    /// Whether status recorded this version as the one applied.
    fn recorded_in(&self, status: Option<&LoginProfileStatus>) -> bool {
        match self {
            SourceVersion::Secret(rv) => {
                rv.is_some()
                    && status.and_then(|s| s.secret_resource_version.as_ref()) == rv.as_ref()
            }
            SourceVersion::SecretsManager(id) => {
                status.and_then(|s| s.secrets_manager_version_id.as_ref()) == Some(id)
            }
            SourceVersion::Delivered => false,
        }
    }

    pub(super) fn text(&self) -> Option<String> {
        match self {
            SourceVersion::Secret(rv) => rv.clone(),
            SourceVersion::SecretsManager(id) => Some(id.clone()),
            SourceVersion::Delivered => None,
        }
    }
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
        let sourced = match (
            secret_source::read(&ctx.client, lp, reference).await,
            &spec.generate_password,
        ) {
            (Err(problem), Some(generate)) if problem.reason == Reason::SecretNotFound => {
                generate_secret(lp, ctx, user, reference, generate.length).await?
            }
            (sourced, _) => sourced?,
        };
        return Ok(Desired::new(
            lp,
            ctx,
            user,
            sourced.password,
            SourceVersion::Secret(sourced.resource_version),
        ));
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

/// `Enforce` only: whether IAM's credential report shows a password change
/// after the operator's last one.
pub(super) async fn enforce_check<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    observed: Option<&IamProfile>,
) -> Result<bool, IamError> {
    let applied_at = lp
        .status
        .as_ref()
        .and_then(|s| s.password_last_applied_time.as_deref())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let (PasswordUpdatePolicy::Enforce, Some(_), Some(applied_at)) =
        (lp.spec.password_update_policy, observed, applied_at)
    else {
        return Ok(false);
    };
    let changed = ctx
        .account
        .facts
        .password_last_changed(&ctx.account.iam, user)
        .await?;
    Ok(changed.is_some_and(|changed| changed > applied_at))
}

/// A random password of `length` characters that meets the account
/// password policy (AWS's default rules when the policy cannot be read).
pub(super) async fn generated_password<I: Iam>(
    ctx: &InAccount<'_, I>,
    length: u32,
) -> Result<Password, SourceProblem> {
    let policy = match ctx.account.facts.password_policy(&ctx.account.iam).await {
        Ok(policy) => policy,
        Err(error) => {
            tracing::warn!(%error, "could not read the account password policy; generating for AWS's default rules");
            crate::rules::password_policy::PasswordPolicy::AwsDefault
        }
    };
    crate::rules::password_policy::generate(length as usize, &policy).map_err(|e| SourceProblem {
        reason: Reason::IamError,
        message: format!("the operating system's random number generator failed: {e}"),
    })
}

/// Creates the missing Secret with a random password that meets the account
/// policy (`spec.generatePassword`), and returns it as the source.
pub(super) async fn generate_secret<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    reference: &crate::api::login_profile::SecretKeyRef,
    length: u32,
) -> Result<secret_source::SourcedPassword, SourceProblem> {
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
    if created {
        let note = format!(
            "generated a password for IAM user {user:?} into Secret {:?}",
            reference.name
        );
        note_event(lp, ctx, EventType::Normal, reason::PASSWORD_GENERATED, note).await;
    }
    // Read it back, so a Secret another writer made first wins.
    secret_source::read(&ctx.client, lp, reference).await
}
