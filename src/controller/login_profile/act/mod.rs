//! The act step: at most the one IAM write a plan needs, after the password
//! passed the account password policy, and the Kubernetes bookkeeping that
//! makes that write safe to lose: the finalizer patch that records, sealed
//! (src/rules/marks.rs), when the operator took charge and what it is about to
//! send (before the first IAM write), the `sending` mark before a rotation
//! in accounts that refuse reused passwords, and the finalizer's removal
//! after cleanup. A definite refusal settles the marks in the status write
//! that records it; only an ambiguous answer leaves them open. The writes
//! the govern step asks for are in `console.rs`.

use super::decide::sent_unconfirmed;
use super::delivery::issue;
use super::delivery::recipients_of;
use super::desired::Desired;
use super::desired::SourceVersion;
use super::observe::IamView;
use super::observe::fetch_secrets_manager;
use super::record::settle_marks;
use crate::api::conditions;
use crate::api::conditions::Outcome;
use crate::api::login_profile::FINALIZER;
use crate::api::login_profile::LoginProfile;
use crate::api::reason::Reason;
use crate::aws::iam::Iam;
use crate::aws::iam::IamError;
use crate::controller::runtime::context::Context;
use crate::controller::runtime::context::Error;
use crate::controller::runtime::context::InAccount;
use crate::rules::ownership::OwnerRecord;
use crate::rules::password::Password;
use crate::rules::password::Verdict;
use crate::rules::plan::IamProfile;
use crate::rules::plan::Plan;
use crate::rules::plan::SourceProblem;
use crate::rules::plan::UpdateWhy;
use chrono::DateTime;
use chrono::Utc;
use kube::Api;
use kube::ResourceExt;
use kube::api::Patch;
use kube::api::PatchParams;

use crate::{
    rules::marks::{self, IN_CHARGE_SINCE_ANNOTATION, SENDING_ANNOTATION},
    rules::password_policy::PasswordPolicy,
};

mod console;
pub(super) use console::{disable_console, replace_generated};

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
    /// Taken back by the ownership record (no write), and how the source's
    /// password compares with the one it records.
    pub(super) recognized: Option<(OwnerRecord, Verdict)>,
    /// Adopted keeping the password IAM has (no write).
    pub(super) kept_password: bool,
}

/// Why the act step did not complete.
pub(super) enum ActFailure {
    /// A failure to report in status.
    Report(Outcome),
    /// IAM definitely refused the write: report it in status, and settle
    /// the marks of the attempt in the same write.
    Refused(Outcome),
    /// IAM's profile is not what the plan assumed (create-first found one,
    /// or it vanished): look again. `sending_mark_refused`: the refused
    /// create had replaced the sending mark with its own password.
    LookAgain { sending_mark_refused: bool },
    /// A Kubernetes write failed (409: the object changed; read it again).
    Kube(kube::Error),
    /// A retried create must wait: an earlier attempt's answer may still
    /// land until then, and only a look at IAM after it settles that attempt.
    WaitUntil(DateTime<Utc>),
}

impl From<Outcome> for ActFailure {
    fn from(outcome: Outcome) -> Self {
        ActFailure::Report(outcome)
    }
}

/// The act step: at most the one IAM write the plan needs, after the
/// password passed the account policy. `lp` is replaced by the patched
/// object when bookkeeping was written, so status is written on top of it.
pub(super) async fn act<I: Iam>(
    ctx: &InAccount<'_, I>,
    lp: &mut LoginProfile,
    user: &str,
    plan: Plan,
    source: &mut Result<Desired, SourceProblem>,
    iam: &IamView,
) -> Result<Acted, ActFailure> {
    let observed = iam.profile.clone();
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
        recognized: None,
        kept_password: false,
    };
    if plan.writes() {
        ctx.account.check_required_tag(user).await?;
    }
    if plan.sends_password() {
        fetch_if_lazy(lp, ctx, user, source).await?;
    }
    let delivered = source.as_ref().ok().and_then(|d| d.delivery.as_ref());
    // How a delivered password's message ends.
    let delivered_to = delivered.map_or(String::new(), |d| {
        format!(
            ", with a new generated password encrypted to {} recipient(s) in status.encryptedPassword",
            d.recipients.len()
        )
    });
    match plan {
        // Refused before acting: whatever the marks kept open is settled in
        // the status write that reports it, so a parked object holds no
        // window open.
        Plan::Blocked { reason, message } => {
            Err(ActFailure::Refused(Outcome::new(reason, message)))
        }
        Plan::Noop | Plan::Delete => Ok(unchanged(unchanged_outcome(lp, user))),
        Plan::HoldBack => Ok(unchanged(Outcome::new(
            Reason::UpdateHeldBack,
            format!(
                "the Secret changed, but passwordUpdatePolicy: CreateOnly keeps the password IAM user {user:?} has; \
                 to apply it, change the policy or delete the login profile"
            ),
        ))),
        Plan::RecordCreated => Ok(Acted {
            outcome: Outcome::new(
                Reason::Created,
                format!(
                    "created the login profile of IAM user {user:?} (confirmed after the answer to the create was lost)"
                ),
            ),
            wrote: false,
            iam: observed.clone(),
            sent_password: Some(UpdateWhy::SecretChanged),
            sent_reset: observed.as_ref().map(|p| p.password_reset_required),
            recognized: None,
            kept_password: false,
        }),
        Plan::Recognize(record) => {
            // A delivered password is only ciphertext, and that was in the
            // lost status: IAM keeps the password, nothing is re-issued
            // unasked.
            let delivered = source
                .as_ref()
                .is_ok_and(|d| matches!(d.version, SourceVersion::Delivered));
            let verdict = match source {
                Ok(_) if delivered => Verdict::Same,
                Ok(desired) => desired.verdict_of(&record.password_fingerprint, ctx, user),
                Err(_) => Verdict::UnknownKey,
            };
            let then = match verdict {
                Verdict::Same if delivered => {
                    "IAM keeps the password it has; its ciphertext was in the status that was lost, so \
                     status.encryptedPassword holds none: change spec.generatePassword.reissue to get a new password"
                }
                Verdict::Same => {
                    "IAM keeps the password it has (the source's, unless the person changed it since)"
                }
                Verdict::Different => {
                    "the source's password differs from the one recorded, so it is sent next"
                }
                Verdict::UnknownKey => {
                    "the record's password fingerprint is under a key this operator does not hold, so it cannot tell \
                     whether IAM has the source's password: nothing is sent until the source changes"
                }
            };
            let outcome = if ctx.settings.cluster_id.as_deref() == Some(record.cluster_id.as_str())
            {
                Outcome::new(
                    Reason::Recognized,
                    format!(
                        "took back the login profile of IAM user {user:?}: IAM's ownership record names this cluster ({:?}) \
                         and this LoginProfile; {then}",
                        record.cluster_id
                    ),
                )
            } else {
                Outcome::new(
                    Reason::HandedOver,
                    format!(
                        "took the login profile of IAM user {user:?} over from cluster {:?} (IAMAccount takeOwnershipFrom); \
                         the ownership record now names this cluster; {then}",
                        record.cluster_id
                    ),
                )
            };
            Ok(Acted {
                outcome,
                wrote: false,
                iam: observed.clone(),
                sent_password: None,
                // What was sent is taken to be what the spec asks now: a
                // flag the person cleared at sign-in is not set again.
                sent_reset: Some(lp.spec.reset_required()),
                recognized: Some((record, verdict)),
                kept_password: false,
            })
        }
        Plan::KeepPassword => Ok(Acted {
            outcome: Outcome::new(
                Reason::Adopted,
                format!(
                    "took over the existing login profile of IAM user {user:?} and kept its password \
                     (adoptionPolicy: AdoptKeepingPassword); the source's password is sent when the source changes"
                ),
            ),
            wrote: false,
            iam: observed.clone(),
            sent_password: None,
            sent_reset: Some(lp.spec.reset_required()),
            recognized: None,
            kept_password: true,
        }),
        Plan::LookAtOwner => unreachable!("apply reads the ownership record before acting"),
        Plan::Create {
            reset_required,
            recreate,
        } => {
            let desired = source.as_ref().expect("a Create plan has a source");
            let password = desired.password.as_ref().expect("fetched above");
            precheck(ctx, user, password).await?;
            let attempt = start_create(ctx, lp, &desired.fingerprint, iam).await?;
            // Every earlier create attempt is resolved by now (a retry waits
            // for a look after their windows): a definite refusal of this one
            // settles the marks.
            let earlier = EarlierAttempt { open: false };
            ctx.may_write()?;
            let sending = ctx.sending("CreateLoginProfile", user);
            let create = ctx
                .account
                .iam
                .create_login_profile(user, password, reset_required);
            // Answered within the attempt's window, or abandoned: nothing
            // this resource sent may land after the window its mark records.
            let within = (attempt.at + deadline(ctx) - chrono::Utc::now())
                .to_std()
                .unwrap_or_default();
            let answer = tokio::time::timeout(within, create)
                .await
                .unwrap_or(Err(IamError::Timeout));
            if !answer.as_ref().is_err_and(IamError::unanswered) {
                ctx.memory.create_answered(lp, attempt.at);
            }
            let took_charge_now = attempt.took_charge_now;
            sending.answered(answer.as_ref().map(|(_, request_id)| request_id));
            let answer = answer.map(|(profile, _)| profile);
            match answer {
                Ok(profile) => Ok(Acted {
                    outcome: Outcome::new(
                        Reason::Created,
                        if recreate {
                            format!(
                                "the login profile of IAM user {user:?} was deleted outside the operator and has been created again{delivered_to}"
                            )
                        } else {
                            format!("created the login profile of IAM user {user:?}{delivered_to}")
                        },
                    ),
                    wrote: true,
                    iam: Some(profile),
                    sent_password: Some(UpdateWhy::SecretChanged),
                    sent_reset: Some(reset_required),
                    recognized: None,
                    kept_password: false,
                }),
                // One attempt (no SDK retry, see iam.rs) refused right after
                // taking charge: the profile was there before. This resource
                // is not in charge of it, whatever the clocks say.
                Err(IamError::EntityAlreadyExists(_)) if took_charge_now => {
                    settle_marks(lp, ctx).await.map_err(ActFailure::Kube)?;
                    Err(ActFailure::LookAgain {
                        sending_mark_refused: false,
                    })
                }
                Err(IamError::EntityAlreadyExists(_)) => Err(ActFailure::LookAgain {
                    sending_mark_refused: attempt.over_another_password,
                }),
                Err(error) => Err(refusal(ctx, user, error, password, earlier).await),
            }
        }
        Plan::UpdatePassword {
            reset_required,
            why,
        } => {
            let desired = source
                .as_ref()
                .expect("an UpdatePassword plan has a source");
            let password = desired.password.as_ref().expect("fetched above");
            let policy = precheck(ctx, user, password).await?;
            // Evidence from an earlier reconcile, read before this one marks
            // its own attempt.
            let prevents_reuse = policy.as_ref().is_some_and(PasswordPolicy::prevents_reuse);
            let sent_before = prevents_reuse && sent_unconfirmed(lp, ctx, user, source, iam);
            let earlier = EarlierAttempt::of(ctx, lp);
            take_charge(ctx, lp, None).await?;
            // A delivered password is marked too: if its answer is lost,
            // status's ciphertext may no longer open to what IAM holds.
            if prevents_reuse || desired.delivery.is_some() {
                mark_sending(ctx, lp, &desired.fingerprint).await?;
            }
            ctx.may_write()?;
            let sending = ctx.sending("UpdateLoginProfile", user);
            let result = ctx
                .account
                .iam
                .update_login_profile(user, Some(password), reset_required)
                .await;
            sending.answered(result.as_ref());
            let result = result.map(|_| ());
            let outcome = match (result, why) {
                (Ok(()), UpdateWhy::Adopt) => Outcome::new(
                    Reason::Adopted,
                    format!(
                        "took over the existing login profile of IAM user {user:?} and set the Secret's password"
                    ),
                ),
                (Ok(()), UpdateWhy::SecretChanged) if desired.delivery.is_some() => Outcome::new(
                    Reason::Updated,
                    format!("issued a new password for IAM user {user:?}{delivered_to}"),
                ),
                (Ok(()), UpdateWhy::SecretChanged) => Outcome::new(
                    Reason::Updated,
                    format!("set the Secret's new password for IAM user {user:?}"),
                ),
                (Ok(()), UpdateWhy::Enforce) => Outcome::new(
                    Reason::Updated,
                    format!(
                        "set the Secret's password for IAM user {user:?} again: it was changed outside the operator (passwordUpdatePolicy: Enforce)"
                    ),
                ),
                // The account refuses reused passwords, the password passed
                // every other rule, and an attempt whose answer was lost was
                // sending exactly it: IAM refuses it because it has it.
                (Err(IamError::PasswordPolicyViolation(_)), _) if sent_before => Outcome::new(
                    Reason::Updated,
                    format!(
                        "IAM user {user:?} already has the Secret's password (the answer to an earlier attempt was lost)"
                    ),
                ),
                (Err(IamError::NoSuchEntity(_)), _) if observed.is_some() => {
                    return Err(ActFailure::LookAgain {
                        sending_mark_refused: false,
                    });
                }
                (Err(error), _) => {
                    return Err(refusal(ctx, user, error, password, earlier).await);
                }
            };
            Ok(Acted {
                outcome,
                wrote: true,
                iam: with_flag(reset_required),
                sent_password: Some(why),
                sent_reset: Some(reset_required),
                recognized: None,
                kept_password: false,
            })
        }
        Plan::UpdateResetFlag { reset_required } => {
            take_charge(ctx, lp, None).await?;
            ctx.may_write()?;
            let sending = ctx.sending("UpdateLoginProfile", user);
            let result = ctx
                .account
                .iam
                .update_login_profile(user, None, reset_required)
                .await;
            sending.answered(result.as_ref());
            let result = result.map(|_| ());
            match result {
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
                    recognized: None,
                    kept_password: false,
                }),
                Err(IamError::NoSuchEntity(_)) if observed.is_some() => {
                    Err(ActFailure::LookAgain {
                        sending_mark_refused: false,
                    })
                }
                Err(error) => Err(error.outcome(user, None).into()),
            }
        }
    }
}

/// A Secrets Manager password is fetched (GetSecretValue is billed) only
/// when a plan sends it. A delivered one the operator no longer holds (IAM
/// lost the profile) is issued anew: the old one is only ciphertext.
async fn fetch_if_lazy<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    source: &mut Result<Desired, SourceProblem>,
) -> Result<(), ActFailure> {
    if let Ok(desired) = source
        && desired.password.is_none()
    {
        *source = match desired.version {
            SourceVersion::Delivered => match recipients_of(lp) {
                Ok(recipients) => issue(lp, ctx, user, &recipients).await,
                Err(problem) => Err(problem),
            },
            _ => fetch_secrets_manager(lp, ctx, user).await,
        };
    }
    match source {
        Ok(_) => Ok(()),
        Err(problem) => Err(Outcome::new(problem.reason, problem.message.clone()).into()),
    }
}

/// Before an IAM write: adds the finalizer if missing. Before a create
/// (`creating` names the fingerprint about to be sent) it also records, in
/// the same patch and sealed, when the operator took charge and what it
/// sends: only a profile created after that can be this resource's own.
/// Never before an update: a profile that exists (adopted, or recreated by
/// someone) is not claimed. The patch carries the resourceVersion, so it
/// fails (409) if the object changed since it was read (a stale copy).
/// Returns the time of the marks when it took charge now.
async fn take_charge<I: Iam>(
    ctx: &InAccount<'_, I>,
    lp: &mut LoginProfile,
    creating: Option<&str>,
) -> Result<Option<DateTime<Utc>>, ActFailure> {
    let has_finalizer = lp.finalizers().iter().any(|f| f == FINALIZER);
    let claim = creating.filter(|_| ctx.marks(lp).in_charge_since().is_none());
    if has_finalizer && claim.is_none() {
        return Ok(None);
    }
    let mut finalizers = lp.finalizers().to_vec();
    if !has_finalizer {
        finalizers.push(FINALIZER.to_string());
    }
    let mut metadata = serde_json::json!({
        "resourceVersion": lp.resource_version(),
        "finalizers": finalizers,
    });
    let stamped = claim.map(|fingerprint| {
        let at = marks::stamp(lp);
        metadata["annotations"] = serde_json::json!({
            IN_CHARGE_SINCE_ANNOTATION: marks::in_charge_value(&ctx.fingerprinter, lp, at),
            SENDING_ANNOTATION: marks::sending_value(&ctx.fingerprinter, lp, fingerprint, at),
        });
        at
    });
    patch_metadata(ctx, lp, &serde_json::json!({ "metadata": metadata })).await?;
    Ok(stamped)
}

/// One create attempt, as its marks record it.
struct CreateAttempt {
    /// The time its mark carries: its window starts here.
    at: DateTime<Utc>,
    /// The first attempt, which took charge in the finalizer patch.
    took_charge_now: bool,
    /// The mark it wrote replaced one naming another password.
    over_another_password: bool,
}

/// Marks a create attempt before it is sent. The first takes charge (the
/// finalizer patch, no extra write); a retry goes only once a look at IAM
/// settled the earlier attempt (after its answer, or after its window closed
/// when no answer came: then nothing of it can land later), and stamps its
/// own window.
async fn start_create<I: Iam>(
    ctx: &InAccount<'_, I>,
    lp: &mut LoginProfile,
    fingerprint: &str,
    iam: &IamView,
) -> Result<CreateAttempt, ActFailure> {
    if let Some(at) = take_charge(ctx, lp, Some(fingerprint)).await? {
        return Ok(CreateAttempt {
            at,
            took_charge_now: true,
            over_another_password: false,
        });
    }
    let marks = ctx.marks(lp);
    if let Some(closes) = marks.latest_window_closes(ctx.settings.write_deadline) {
        // An attempt IAM answered (even with a 5xx) is over: a look this
        // reconcile made, after that answer, settles it. One without an
        // answer (a timeout, a lost connection) may still land until its
        // window closes, so only a look after that settles it.
        let answered = marks
            .latest_attempt()
            .is_some_and(|at| ctx.memory.was_create_answered(lp, at));
        let settled = match iam.looked_at {
            Some(looked) => answered || looked > closes,
            None => false,
        };
        if !settled {
            return Err(ActFailure::WaitUntil(closes));
        }
    }
    let over_another_password = !marks.sending_now(fingerprint);
    let at = marks::stamp(lp);
    let value = marks::sending_value(&ctx.fingerprinter, lp, fingerprint, at);
    let patch = serde_json::json!({"metadata": {"annotations": {SENDING_ANNOTATION: value}}});
    patch_metadata(ctx, lp, &patch).await?;
    Ok(CreateAttempt {
        at,
        took_charge_now: false,
        over_another_password,
    })
}

/// How long after its mark an IAM write may still be answered.
fn deadline<I: Iam>(ctx: &InAccount<'_, I>) -> chrono::Duration {
    chrono::Duration::from_std(ctx.settings.write_deadline).unwrap_or(chrono::Duration::MAX)
}

/// Records, sealed, the fingerprint about to be sent (over what status
/// records), so that if IAM's answer is lost, the next reconcile can tell.
/// An open mark that already says so is kept: a retry after a lost answer
/// must still recognize the first attempt. Returns whether it wrote a new
/// mark (over whatever an earlier one said).
async fn mark_sending<I: Iam>(
    ctx: &InAccount<'_, I>,
    lp: &mut LoginProfile,
    fingerprint: &str,
) -> Result<bool, ActFailure> {
    if ctx.marks(lp).sending_now(fingerprint) {
        return Ok(false);
    }
    let value = marks::sending_value(&ctx.fingerprinter, lp, fingerprint, marks::stamp(lp));
    let patch = serde_json::json!({"metadata": {"annotations": {SENDING_ANNOTATION: value}}});
    patch_metadata(ctx, lp, &patch).await?;
    Ok(true)
}

/// After cleanup: removes the finalizer (409 if the object changed since it
/// was read; the retry reads it again).
pub(super) async fn release<I: Iam>(ctx: &Context<I>, lp: &LoginProfile) -> Result<(), Error> {
    let finalizers: Vec<&String> = lp.finalizers().iter().filter(|f| *f != FINALIZER).collect();
    let patch = serde_json::json!({"metadata": {
        "resourceVersion": lp.resource_version(),
        "finalizers": finalizers,
    }});
    let mut copy = lp.clone();
    patch_metadata(ctx, &mut copy, &patch)
        .await
        .map_err(|failure| match failure {
            ActFailure::Kube(error) => Error::Kube(error),
            _ => unreachable!("a metadata patch fails only with a Kubernetes error"),
        })
}

async fn patch_metadata<I: Iam>(
    ctx: &Context<I>,
    lp: &mut LoginProfile,
    patch: &serde_json::Value,
) -> Result<(), ActFailure> {
    let api: Api<LoginProfile> =
        Api::namespaced(ctx.client.clone(), &lp.namespace().unwrap_or_default());
    *lp = api
        .patch(
            &lp.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
        .map_err(ActFailure::Kube)?;
    Ok(())
}

/// Checks the password against the account password policy before any IAM
/// write, naming every rule it breaks; returns the policy it checked. A
/// refusal is made only after reading the policy again (an administrator
/// may just have loosened it). When the policy cannot be read, IAM itself
/// still checks.
async fn precheck<I: Iam>(
    ctx: &InAccount<'_, I>,
    user: &str,
    password: &Password,
) -> Result<Option<PasswordPolicy>, Outcome> {
    let mut policy = match ctx.account.facts.password_policy(&ctx.account.iam).await {
        Ok(policy) => policy,
        Err(error) => {
            tracing::warn!(%error, "could not read the account password policy; leaving the check to IAM");
            return Ok(None);
        }
    };
    if !policy.violations(password, user).is_empty() {
        ctx.account.facts.forget_policy().await;
        match ctx.account.facts.password_policy(&ctx.account.iam).await {
            Ok(fresh) => policy = fresh,
            Err(error) => {
                tracing::warn!(%error, "could not read the account password policy again")
            }
        }
    }
    let broken = policy.violations(password, user);
    if broken.is_empty() {
        return Ok(Some(policy));
    }
    Err(Outcome::new(
        Reason::PasswordPolicyViolation,
        format!(
            "the Secret's password breaks the account password policy: {}; change the Secret",
            broken.join("; ")
        ),
    ))
}

/// Whether an earlier attempt, whose answer was ambiguous, left marks open
/// when this one started: then this attempt reuses them, and its own
/// refusal proves nothing about that earlier write.
#[derive(Clone, Copy)]
struct EarlierAttempt {
    open: bool,
}

impl EarlierAttempt {
    fn of<I: Iam>(ctx: &InAccount<'_, I>, lp: &LoginProfile) -> Self {
        Self {
            open: ctx.marks(lp).settle().is_some(),
        }
    }
}

/// The failure of an IAM password write. `Refused` (the marks are settled
/// with the failure) when IAM definitely did not apply it and no earlier
/// ambiguous attempt is still open, or when the user does not exist (then
/// no earlier attempt left a profile either); else reported with the marks
/// left open. A PasswordPolicyViolation the pre-check did not foresee means
/// the cached policy may be stale (or it is reuse prevention, which the
/// policy cannot show).
async fn refusal<I: Iam>(
    ctx: &InAccount<'_, I>,
    user: &str,
    error: IamError,
    password: &Password,
    earlier: EarlierAttempt,
) -> ActFailure {
    if matches!(error, IamError::PasswordPolicyViolation(_)) {
        ctx.account.facts.forget_policy().await;
    }
    let outcome = error.outcome(user, Some(password));
    let settles = error.is_definite_refusal()
        && (!earlier.open || matches!(error, IamError::NoSuchEntity(_)));
    if settles {
        ActFailure::Refused(outcome)
    } else {
        ActFailure::Report(outcome)
    }
}

/// While nothing changes, Ready keeps the reason of the last real change,
/// so a reconcile with nothing to do writes nothing.
fn unchanged_outcome(lp: &LoginProfile, user: &str) -> Outcome {
    let previous = lp
        .condition(conditions::READY)
        .filter(|c| c.status == "True");
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
        Reason::Recognized,
        Reason::HandedOver,
    ]
    .into_iter()
    .find(|r| r.as_str() == name)
}
