//! The act step: at most the one IAM write a plan needs, after the password
//! passed the account password policy.

use super::*;

/// What the act step did, for status and events.
pub(super) struct Acted {
    pub(super) outcome: Outcome,
    /// An IAM write happened (always worth an Event).
    pub(super) wrote: bool,
    /// IAM's login profile after the act.
    pub(super) iam: Option<IamProfile>,
    /// The password was sent, and why.
    pub(super) sent_password: Option<UpdateWhy>,
    /// The reset flag that was sent, if any.
    pub(super) sent_reset: Option<bool>,
}

/// The act step: at most the one IAM write the plan needs, after the
/// password passed the account policy. `Err(Some)` is a failure to report;
/// `Err(None)` means IAM changed under us (retry soon).
pub(super) async fn act<I: Iam>(
    ctx: &Context<I>,
    user: &str,
    plan: Plan,
    password: Option<&Password>,
    observed: Option<IamProfile>,
    lp: &LoginProfile,
) -> Result<Acted, Option<Outcome>> {
    let with_flag = |reset_required: bool| {
        observed.clone().map(|profile| IamProfile {
            password_reset_required: reset_required,
            ..profile
        })
    };
    let unchanged = |outcome: Outcome| Acted {
        outcome,
        wrote: false,
        iam: observed.clone(),
        sent_password: None,
        sent_reset: None,
    };
    match plan {
        Plan::Blocked { reason, message } => Err(Some(Outcome::new(reason, message))),
        Plan::Noop | Plan::Delete => Ok(unchanged(unchanged_outcome(lp, user))),
        Plan::HoldBack => Ok(unchanged(Outcome::new(
            Reason::UpdateHeldBack,
            format!(
                "the Secret changed, but passwordUpdatePolicy: CreateOnly keeps the password IAM user {user:?} has; \
                 to apply it, change the policy or delete the login profile"
            ),
        ))),
        Plan::Create {
            reset_required,
            recreate,
        } => {
            let password = password.expect("a Create plan has a password");
            precheck(ctx, user, password).await.map_err(Some)?;
            let result = ctx
                .iam
                .create_login_profile(user, password, reset_required)
                .await;
            match result {
                Ok(profile) => Ok(Acted {
                    outcome: Outcome::new(
                        Reason::Created,
                        if recreate {
                            format!(
                                "the login profile of IAM user {user:?} was deleted outside the operator and has been created again"
                            )
                        } else {
                            format!("created the login profile of IAM user {user:?}")
                        },
                    ),
                    wrote: true,
                    iam: Some(profile),
                    sent_password: Some(UpdateWhy::SecretChanged),
                    sent_reset: Some(reset_required),
                }),
                Err(IamError::EntityAlreadyExists(_)) => Err(None),
                Err(error) => Err(Some(refused(ctx, user, error, password).await)),
            }
        }
        Plan::UpdatePassword {
            reset_required,
            why,
        } => {
            let password = password.expect("an UpdatePassword plan has a password");
            precheck(ctx, user, password).await.map_err(Some)?;
            let result = ctx
                .iam
                .update_login_profile(user, Some(password), reset_required)
                .await;
            match result {
                Ok(()) => Ok(Acted {
                    outcome: match why {
                        UpdateWhy::Adopt => Outcome::new(
                            Reason::Adopted,
                            format!(
                                "took over the existing login profile of IAM user {user:?} and set the Secret's password"
                            ),
                        ),
                        UpdateWhy::SecretChanged => Outcome::new(
                            Reason::Updated,
                            format!("set the Secret's new password for IAM user {user:?}"),
                        ),
                        UpdateWhy::Enforce => Outcome::new(
                            Reason::Updated,
                            format!(
                                "set the Secret's password for IAM user {user:?} again: it was changed outside the operator (passwordUpdatePolicy: Enforce)"
                            ),
                        ),
                    },
                    wrote: true,
                    iam: with_flag(reset_required),
                    sent_password: Some(why),
                    sent_reset: Some(reset_required),
                }),
                Err(IamError::NoSuchEntity(_)) if observed.is_some() => Err(None),
                Err(error) => Err(Some(refused(ctx, user, error, password).await)),
            }
        }
        Plan::UpdateResetFlag { reset_required } => {
            match ctx
                .iam
                .update_login_profile(user, None, reset_required)
                .await
            {
                Ok(()) => Ok(Acted {
                    outcome: Outcome::new(
                        Reason::Updated,
                        if reset_required {
                            format!(
                                "IAM user {user:?} must choose a new password at the next sign-in"
                            )
                        } else {
                            format!(
                                "IAM user {user:?} no longer has to change the password at sign-in"
                            )
                        },
                    ),
                    wrote: true,
                    iam: with_flag(reset_required),
                    sent_password: None,
                    sent_reset: Some(reset_required),
                }),
                Err(IamError::NoSuchEntity(_)) if observed.is_some() => Err(None),
                Err(error) => Err(Some(error.outcome(user, None))),
            }
        }
    }
}

/// Checks the password against the account password policy before any IAM
/// write, naming every rule it breaks. When the policy cannot be read, IAM
/// itself still checks.
async fn precheck<I: Iam>(
    ctx: &Context<I>,
    user: &str,
    password: &Password,
) -> Result<(), Outcome> {
    let policy = match ctx.account.password_policy(&ctx.iam).await {
        Ok(policy) => policy,
        Err(error) => {
            tracing::warn!(%error, "could not read the account password policy; leaving the check to IAM");
            return Ok(());
        }
    };
    let broken = policy.violations(password, user);
    if broken.is_empty() {
        return Ok(());
    }
    Err(Outcome::new(
        Reason::PasswordPolicyViolation,
        format!(
            "the Secret's password breaks the account password policy: {}; change the Secret",
            broken.join("; ")
        ),
    ))
}

/// The outcome of an IAM write that failed. A PasswordPolicyViolation the
/// pre-check did not foresee means the cached policy may be stale (or it is
/// reuse prevention, which the policy cannot show).
async fn refused<I: Iam>(
    ctx: &Context<I>,
    user: &str,
    error: IamError,
    password: &Password,
) -> Outcome {
    if matches!(error, IamError::PasswordPolicyViolation(_)) {
        ctx.account.forget_policy().await;
    }
    error.outcome(user, Some(password))
}

/// While nothing changes, Ready keeps the reason of the last real change,
/// so a reconcile with nothing to do writes nothing.
fn unchanged_outcome(lp: &LoginProfile, user: &str) -> Outcome {
    let previous = lp.condition(status::READY).filter(|c| c.status == "True");
    match previous.and_then(|c| reason_named(&c.reason)) {
        Some(reason) => Outcome::new(
            reason,
            previous.map(|c| c.message.clone()).unwrap_or_default(),
        ),
        None => Outcome::new(
            Reason::UpToDate,
            format!("IAM user {user:?} has the Secret's password"),
        ),
    }
}

fn reason_named(name: &str) -> Option<Reason> {
    [
        Reason::UpToDate,
        Reason::Created,
        Reason::Updated,
        Reason::Adopted,
    ]
    .into_iter()
    .find(|r| r.as_str() == name)
}
