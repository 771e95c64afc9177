//! The reconciler: observe (LoginProfile, Secret, IAM) -> decide (plan.rs)
//! -> act (at most the IAM calls the plan needs) -> report (one status patch,
//! an Event on each transition), plus the controller wiring that triggers it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use chrono::Utc;
use futures::{Stream, StreamExt, future::BoxFuture, stream::select_all};
use k8s_openapi::{api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{PartialObjectMeta, Patch, PatchParams},
    runtime::{
        Controller, Predicate, WatchStreamExt,
        controller::Action,
        events::{Event, EventType, Recorder, Reporter},
        finalizer::{self, finalizer},
        predicates,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use rand::Rng;

use crate::{
    account::AccountCache,
    crd::{FINALIZER, LoginProfile, LoginProfileStatus, PasswordUpdatePolicy},
    iam::{Iam, IamError},
    metrics::{Metrics, ProfileState},
    password::{Fingerprinter, Password},
    plan::{self, IamProfile, Observed, Plan, SourceProblem, UpdateWhy},
    reason::Reason,
    secrets_manager::AwsSecretsManager,
    source,
    status::{self, Outcome},
};

/// The field manager of every write this operator makes.
pub const FIELD_MANAGER: &str = "loginprofile-operator";

/// Settings of the controller loop (flags of `run`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Drift checks: every object is reconciled again after about this long.
    pub resync_period: Duration,
    /// Reconciles running at once (per watched namespace).
    pub concurrency: u16,
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// First retry delay after a transient failure; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a fetched account password policy is trusted.
    pub password_policy_refresh: Duration,
    /// How often a new credential report may be requested (Enforce).
    pub credential_report_interval: Duration,
    /// How often a Secrets Manager source is checked for a new version.
    pub secrets_manager_poll_interval: Duration,
}

/// What every reconcile shares.
pub struct Context<I: Iam> {
    pub client: Client,
    pub iam: I,
    pub secrets_manager: AwsSecretsManager,
    pub fingerprinter: Fingerprinter,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    pub account: AccountCache,
    /// Consecutive transient failures per object, for exponential backoff.
    failures: Mutex<HashMap<ObjectRef<LoginProfile>, u32>>,
    /// When IAM last confirmed each object's profile, so a trigger that
    /// changes nothing (a Secret rewritten with the same value) costs no IAM
    /// call; the resync still checks for drift.
    verified: Mutex<HashMap<ObjectRef<LoginProfile>, Instant>>,
}

impl<I: Iam> Context<I> {
    pub fn new(
        client: Client,
        iam: I,
        secrets_manager: AwsSecretsManager,
        fingerprinter: Fingerprinter,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            account: AccountCache::new(
                settings.password_policy_refresh,
                settings.credential_report_interval,
            ),
            client,
            iam,
            secrets_manager,
            fingerprinter,
            metrics,
            settings,
            failures: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
        }
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<LoginProfile>, Instant>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True when nothing can have changed since IAM last confirmed this
    /// object: same generation, same password, Ready, and checked less than
    /// half a resync period ago.
    fn recently_verified(&self, lp: &LoginProfile, fingerprint: &str) -> bool {
        let status = lp.status.as_ref();
        let unchanged = status.and_then(|s| s.observed_generation) == lp.metadata.generation
            && status.and_then(|s| s.password_fingerprint.as_deref()) == Some(fingerprint)
            && lp
                .condition(status::READY)
                .is_some_and(|c| c.status == "True");
        unchanged
            && self
                .verified()
                .get(&ObjectRef::from_obj(lp))
                .is_some_and(|at| at.elapsed() < self.settings.resync_period / 2)
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<LoginProfile>, u32>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The resync delay with ±10% jitter, so objects created together do not
    /// hit IAM together forever after.
    fn resync(&self) -> Duration {
        self.settings
            .resync_period
            .mul_f64(rand::rng().random_range(0.9..1.1))
    }

    /// When to look at `lp` again: the resync period, or the Secrets Manager
    /// poll interval when that is the source (it has no watch).
    fn requeue_after(&self, lp: &LoginProfile) -> Duration {
        let resync = self.resync();
        match lp.spec.password_secrets_manager_ref {
            Some(_) => resync.min(
                self.settings
                    .secrets_manager_poll_interval
                    .mul_f64(rand::rng().random_range(0.9..1.1)),
            ),
            None => resync,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A transient failure that status already reports; retried with backoff.
    #[error("{reason}: {message}")]
    Transient { reason: Reason, message: String },
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    #[error(transparent)]
    Finalizer(#[from] Box<finalizer::Error<Error>>),
}

/// Reconciles one LoginProfile: the finalizer routes to [`apply`] or
/// [`cleanup`].
pub async fn reconcile<I: Iam>(
    lp: Arc<LoginProfile>,
    ctx: Arc<Context<I>>,
) -> Result<Action, Error> {
    let namespace = lp.namespace().unwrap_or_default();
    let api: Api<LoginProfile> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, lp, |event| async {
        match event {
            finalizer::Event::Apply(lp) => apply(&lp, &ctx).await,
            finalizer::Event::Cleanup(lp) => cleanup(&lp, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.reconciled(match &result {
        Ok(_) => "ok",
        Err(_) => "error",
    });
    result
}

/// Exponential backoff with jitter, per object, after a failed reconcile.
pub fn error_policy<I: Iam>(lp: Arc<LoginProfile>, error: &Error, ctx: Arc<Context<I>>) -> Action {
    let attempts = {
        let mut failures = ctx.failures();
        let count = failures.entry(ObjectRef::from_obj(&*lp)).or_insert(0);
        *count = count.saturating_add(1);
        *count
    };
    let delay = backoff(
        attempts,
        ctx.settings.min_backoff,
        ctx.settings.max_backoff,
        rand::rng().random_range(0.5..1.0),
    );
    tracing::warn!(object = %ObjectRef::from_obj(&*lp), %error, attempts, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// `min * 2^(attempts-1)`, capped at `max`, scaled by `jitter` (0.5..1.0).
fn backoff(attempts: u32, min: Duration, max: Duration, jitter: f64) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    min.saturating_mul(1 << exponent).min(max).mul_f64(jitter)
}

/// What the act step did, for status and events.
struct Acted {
    outcome: Outcome,
    /// An IAM write happened (always worth an Event).
    wrote: bool,
    /// IAM's login profile after the act.
    iam: Option<IamProfile>,
    /// The password was sent, and why.
    sent_password: Option<UpdateWhy>,
    /// The reset flag that was sent, if any.
    sent_reset: Option<bool>,
}

/// The password the spec asks for, as far as it had to be read.
struct Desired {
    fingerprint: String,
    /// `None` when the source's version is the one already applied, so the
    /// (billed) value was not fetched; fetched later only if a plan needs it.
    password: Option<Password>,
    version: SourceVersion,
}

/// Which version of the source the password is.
#[derive(Clone)]
enum SourceVersion {
    Secret(Option<String>),
    SecretsManager(String),
}

impl SourceVersion {
    fn text(&self) -> Option<String> {
        match self {
            SourceVersion::Secret(rv) => rv.clone(),
            SourceVersion::SecretsManager(id) => Some(id.clone()),
        }
    }
}

/// observe -> decide -> act -> report for a LoginProfile that is not being deleted.
async fn apply<I: Iam>(lp: &LoginProfile, ctx: &Context<I>) -> Result<Action, Error> {
    let user = lp.user_name();
    if lp.status.is_none() {
        mark_progressing(lp, ctx, &user).await?;
    }
    let mut desired = match observe_source(lp, ctx, &user).await? {
        Ok(desired) => Ok(desired),
        Err(problem) if !problem.reason.is_terminal() => {
            return fail(lp, ctx, Outcome::new(problem.reason, problem.message)).await;
        }
        Err(problem) => Err(problem),
    };
    if desired
        .as_ref()
        .is_ok_and(|d| ctx.recently_verified(lp, &d.fingerprint))
    {
        return Ok(Action::requeue(ctx.requeue_after(lp)));
    }
    // A broken source blocks every plan, so IAM need not be asked.
    let observed = match &desired {
        Ok(_) => match ctx.iam.get_login_profile(&user).await {
            Ok(profile) => profile,
            Err(error) => return fail(lp, ctx, error.outcome(&user, None)).await,
        },
        Err(_) => None,
    };
    let changed_out_of_band = match enforce_check(lp, ctx, &user, observed.as_ref()).await {
        Ok(changed) => changed,
        Err(error) => return fail(lp, ctx, error.outcome(&user, None)).await,
    };
    let plan = plan::decide(&Observed {
        spec: &lp.spec,
        status: lp.status.as_ref(),
        desired_fingerprint: desired.as_ref().map(|d| d.fingerprint.as_str()),
        iam: observed.as_ref(),
        changed_out_of_band,
    });
    tracing::debug!(object = %ObjectRef::from_obj(lp), ?plan, "decided");

    if let Ok(d) = &mut desired
        && plan.sends_password()
        && d.password.is_none()
    {
        match fetch_secrets_manager(lp, ctx, &user).await? {
            Ok(fetched) => *d = fetched,
            Err(problem) => {
                return fail(lp, ctx, Outcome::new(problem.reason, problem.message)).await;
            }
        }
    }
    let password = desired.as_ref().ok().and_then(|d| d.password.as_ref());
    let acted = match act(ctx, &user, plan, password, observed.clone(), lp).await {
        Ok(acted) => acted,
        Err(Some(outcome)) => return fail(lp, ctx, outcome).await,
        // The profile appeared or vanished since GetLoginProfile: look again.
        Err(None) => return Ok(Action::requeue(Duration::from_secs(1))),
    };

    let previous = lp.status.clone().unwrap_or_default();
    let mut next = previous.clone();
    next.user_name = Some(user);
    if let Some(profile) = &acted.iam {
        next.create_date = Some(profile.create_date.clone());
        next.password_reset_required = Some(profile.password_reset_required);
    }
    // The user changed the password that a required reset asked for: IAM
    // cleared the flag. Shown, never undone.
    let user_changed_it = previous.applied_password_reset_required == Some(true)
        && observed
            .as_ref()
            .is_some_and(|p| !p.password_reset_required);
    if (user_changed_it || changed_out_of_band) && previous.password_changed_out_of_band.is_none() {
        next.password_changed_out_of_band = Some(now_rfc3339());
    }
    let desired = desired.ok();
    next.held_back_source_version = match acted.outcome.reason {
        Reason::UpdateHeldBack => desired.as_ref().and_then(|d| d.version.text()),
        _ => None,
    };
    if let (Some(why), Some(desired)) = (acted.sent_password, &desired) {
        next.password_fingerprint = Some(desired.fingerprint.clone());
        match &desired.version {
            SourceVersion::Secret(rv) => next.secret_resource_version = rv.clone(),
            SourceVersion::SecretsManager(id) => next.secrets_manager_version_id = Some(id.clone()),
        }
        next.password_last_applied_time = Some(now_rfc3339());
        if why != UpdateWhy::Enforce {
            next.password_changed_out_of_band = None;
        }
    }
    if let Some(reset) = acted.sent_reset {
        next.applied_password_reset_required = Some(reset);
    }
    report(lp, ctx, next, &acted.outcome, acted.wrote).await?;
    ctx.failures().remove(&ObjectRef::from_obj(lp));
    ctx.verified()
        .insert(ObjectRef::from_obj(lp), Instant::now());
    ctx.metrics
        .set_profile_state(key(lp), Some(ProfileState::Ready));
    Ok(Action::requeue(ctx.requeue_after(lp)))
}

/// Reads the password source named by the spec (generating the Secret when
/// asked to). A Secrets Manager secret whose version was already applied is
/// not fetched: its fingerprint is the one in status.
async fn observe_source<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    user: &str,
) -> Result<Result<Desired, SourceProblem>, Error> {
    let spec = &lp.spec;
    if let Some(reference) = &spec.password_secret_ref {
        let mut sourced = source::read(&ctx.client, lp, reference)
            .await
            .map_err(Error::Kube)?;
        if let (Err(problem), Some(generate)) = (&sourced, &spec.generate_password)
            && problem.reason == Reason::SecretNotFound
        {
            sourced = generate_secret(lp, ctx, user, reference, generate.length).await?;
        }
        return Ok(sourced.map(|s| Desired {
            fingerprint: ctx.fingerprinter.fingerprint(user, &s.password),
            password: Some(s.password),
            version: SourceVersion::Secret(s.resource_version),
        }));
    }
    let Some(reference) = &spec.password_secrets_manager_ref else {
        return Ok(Err(SourceProblem {
            reason: Reason::SecretNotFound,
            message: "set spec.passwordSecretRef or spec.passwordSecretsManagerRef".into(),
        }));
    };
    let version = match ctx.secrets_manager.current_version(reference).await {
        Ok(version) => version,
        Err(error) => return Ok(Err(error.problem(reference))),
    };
    let status = lp.status.as_ref();
    if let (Some(applied), Some(fingerprint)) = (
        status.and_then(|s| s.secrets_manager_version_id.as_ref()),
        status.and_then(|s| s.password_fingerprint.as_ref()),
    ) && *applied == version
    {
        return Ok(Ok(Desired {
            fingerprint: fingerprint.clone(),
            password: None,
            version: SourceVersion::SecretsManager(version),
        }));
    }
    fetch_secrets_manager(lp, ctx, user).await
}

/// GetSecretValue for a LoginProfile whose source is Secrets Manager.
async fn fetch_secrets_manager<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    user: &str,
) -> Result<Result<Desired, SourceProblem>, Error> {
    let Some(reference) = &lp.spec.password_secrets_manager_ref else {
        unreachable!("only a Secrets Manager source is fetched lazily");
    };
    Ok(match ctx.secrets_manager.password(reference).await {
        Ok(Ok((password, version))) => Ok(Desired {
            fingerprint: ctx.fingerprinter.fingerprint(user, &password),
            password: Some(password),
            version: SourceVersion::SecretsManager(version),
        }),
        Ok(Err(problem)) => Err(problem),
        Err(error) => Err(error.problem(reference)),
    })
}

/// `Enforce` only: whether IAM's credential report shows a password change
/// after the operator's last one.
async fn enforce_check<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
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
    let changed = ctx.account.password_last_changed(&ctx.iam, user).await?;
    Ok(changed.is_some_and(|changed| changed > applied_at))
}

/// Creates the missing Secret with a random password that meets the account
/// policy (`spec.generatePassword`), and returns it as the source.
async fn generate_secret<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    user: &str,
    reference: &crate::crd::SecretKeyRef,
    length: u32,
) -> Result<Result<source::SourcedPassword, SourceProblem>, Error> {
    let policy = match ctx.account.password_policy(&ctx.iam).await {
        Ok(policy) => policy,
        Err(error) => {
            tracing::warn!(%error, "could not read the account password policy; generating for AWS's default rules");
            crate::policy::PasswordPolicy::AwsDefault
        }
    };
    let password =
        crate::policy::generate(length as usize, &policy).map_err(|e| Error::Transient {
            reason: Reason::IamError,
            message: format!("the operating system's random number generator failed: {e}"),
        })?;
    let created = source::create_generated(&ctx.client, lp, reference, &password)
        .await
        .map_err(Error::Kube)?;
    if created {
        let note = format!(
            "generated a password for IAM user {user:?} into Secret {:?}",
            reference.name
        );
        note_event(lp, ctx, EventType::Normal, "PasswordGenerated", note).await;
    }
    // Read it back, so a Secret another writer made first wins.
    source::read(&ctx.client, lp, reference)
        .await
        .map_err(Error::Kube)
}

/// The act step: at most the one IAM write the plan needs, after the
/// password passed the account policy. `Err(Some)` is a failure to report;
/// `Err(None)` means IAM changed under us (retry soon).
async fn act<I: Iam>(
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

/// Reports a failure in status (and an Event on transition). Terminal
/// failures wait (resync only); transient ones return an error for backoff.
async fn fail<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    outcome: Outcome,
) -> Result<Action, Error> {
    let mut next = lp.status.clone().unwrap_or_default();
    next.user_name = Some(lp.user_name());
    report(lp, ctx, next, &outcome, false).await?;
    if outcome.reason.is_terminal() {
        ctx.failures().remove(&ObjectRef::from_obj(lp));
        ctx.metrics
            .set_profile_state(key(lp), Some(ProfileState::Stalled));
        ctx.metrics.reconciled("stalled");
        Ok(Action::requeue(ctx.requeue_after(lp)))
    } else {
        ctx.metrics
            .set_profile_state(key(lp), Some(ProfileState::Reconciling));
        Err(Error::Transient {
            reason: outcome.reason,
            message: outcome.message,
        })
    }
}

/// The first status of a new LoginProfile: Reconciling, before any IAM call.
/// Without it, kstatus (Argo CD, Flux) would call an object without status
/// healthy before the operator acted. No Event: nothing happened yet.
async fn mark_progressing<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    user: &str,
) -> Result<(), Error> {
    let outcome = Outcome::new(
        Reason::Progressing,
        format!("setting up the login profile of IAM user {user:?}"),
    );
    let status = LoginProfileStatus {
        user_name: Some(user.to_string()),
        observed_generation: lp.metadata.generation,
        conditions: status::conditions(
            &[],
            &outcome,
            lp.metadata.generation,
            &Time(k8s_openapi::jiff::Timestamp::now()),
        ),
        ..Default::default()
    };
    patch_status(lp, ctx, &status).await
}

async fn patch_status<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    status: &LoginProfileStatus,
) -> Result<(), Error> {
    let api: Api<LoginProfile> =
        Api::namespaced(ctx.client.clone(), &lp.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": LoginProfile::api_version(&()),
        "kind": LoginProfile::kind(&()),
        "status": status,
    });
    api.patch_status(
        &lp.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(())
}

/// Writes status if it changed (one server-side apply patch) and publishes an
/// Event when Ready changed or IAM was written.
async fn report<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    mut next: LoginProfileStatus,
    outcome: &Outcome,
    wrote: bool,
) -> Result<(), Error> {
    let previous = lp.status.clone().unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    next.observed_generation = lp.metadata.generation;
    next.conditions =
        status::conditions(&previous.conditions, outcome, lp.metadata.generation, &now);
    let transition = status::ready_changed(&previous.conditions, &next.conditions);
    if next != previous {
        patch_status(lp, ctx, &next).await?;
    }
    if transition || wrote {
        publish(lp, ctx, outcome).await;
    }
    Ok(())
}

async fn publish<I: Iam>(lp: &LoginProfile, ctx: &Context<I>, outcome: &Outcome) {
    let type_ = if outcome.reason.is_ready() {
        EventType::Normal
    } else {
        EventType::Warning
    };
    note_event(
        lp,
        ctx,
        type_,
        outcome.reason.as_str(),
        outcome.message.clone(),
    )
    .await;
}

/// Publishes a Kubernetes Event about `lp` (best effort: a lost Event is
/// logged, never a reason to fail the reconcile).
async fn note_event<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &lp.object_ref(&())).await {
        tracing::warn!(object = %ObjectRef::from_obj(lp), %error, "could not publish an event");
    }
}

/// Runs while the resource is being deleted: removes the IAM login profile
/// unless `deletionPolicy: Retain` or this resource never managed it.
async fn cleanup<I: Iam>(lp: &LoginProfile, ctx: &Context<I>) -> Result<Action, Error> {
    let user = lp
        .status
        .as_ref()
        .and_then(|s| s.user_name.clone())
        .unwrap_or_else(|| lp.user_name());
    let note = match plan::decide_cleanup(&lp.spec, lp.status.as_ref()) {
        Plan::Delete => match ctx.iam.delete_login_profile(&user).await {
            Ok(()) => format!("deleted the login profile of IAM user {user:?}"),
            Err(error) => {
                let outcome = error.outcome(&user, None);
                publish(
                    lp,
                    ctx,
                    &Outcome::new(
                        Reason::Deleting,
                        format!("could not delete the login profile: {}", outcome.message),
                    ),
                )
                .await;
                return Err(Error::Transient {
                    reason: outcome.reason,
                    message: outcome.message,
                });
            }
        },
        _ if lp.spec.deletion_policy == crate::crd::DeletionPolicy::Retain => {
            format!("kept the login profile of IAM user {user:?} (deletionPolicy: Retain)")
        }
        _ => format!("left IAM user {user:?} alone: this LoginProfile never set its password"),
    };
    let event = Event {
        type_: EventType::Normal,
        reason: Reason::Deleting.as_str().into(),
        note: Some(note),
        action: "Cleanup".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &lp.object_ref(&())).await {
        tracing::warn!(%error, "could not publish an event");
    }
    ctx.failures().remove(&ObjectRef::from_obj(lp));
    ctx.verified().remove(&ObjectRef::from_obj(lp));
    ctx.metrics.set_profile_state(key(lp), None);
    Ok(Action::await_change())
}

fn key(lp: &LoginProfile) -> String {
    format!("{}/{}", lp.namespace().unwrap_or_default(), lp.name_any())
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The LoginProfiles in `store` that read the given Secret.
fn referencing(
    store: &Store<LoginProfile>,
    namespace: Option<String>,
    secret_name: &str,
) -> Vec<ObjectRef<LoginProfile>> {
    store
        .state()
        .iter()
        .filter(|lp| {
            lp.namespace() == namespace
                && lp
                    .spec
                    .password_secret_ref
                    .as_ref()
                    .is_some_and(|r| r.name == secret_name)
        })
        .map(|lp| ObjectRef::from_obj(&**lp))
        .collect()
}

/// Secrets that changed or went away. The first listing is skipped: at
/// start every LoginProfile is reconciled anyway, and reading each Secret
/// twice would double the start-up cost. Later relistings (after a watch
/// expired) pass, since a change may hide in them.
fn secret_changes(
    api: Api<PartialObjectMeta<Secret>>,
) -> impl Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> {
    let mut first_listing = true;
    watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .filter_map(move |event| {
            let changed = match event {
                Ok(watcher::Event::Apply(secret) | watcher::Event::Delete(secret)) => {
                    Some(Ok(secret))
                }
                Ok(watcher::Event::InitApply(secret)) if !first_listing => Some(Ok(secret)),
                Ok(watcher::Event::InitDone) => {
                    first_listing = false;
                    None
                }
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
                Err(error) => Some(Err(error)),
            };
            futures::future::ready(changed)
        })
}

/// Starts one controller per watched namespace (or one for all) and returns
/// a stream of reconcile results plus a future that resolves once every
/// cache has synced.
pub fn run<I: Iam>(
    ctx: Arc<Context<I>>,
    shutdown: futures::future::Shared<BoxFuture<'static, ()>>,
) -> (impl Stream<Item = ()>, BoxFuture<'static, ()>) {
    let scopes: Vec<Option<String>> = if ctx.settings.namespaces.is_empty() {
        vec![None]
    } else {
        ctx.settings.namespaces.iter().cloned().map(Some).collect()
    };
    let mut streams = Vec::new();
    let mut stores = Vec::new();
    for scope in scopes {
        let (profiles, secrets): (Api<LoginProfile>, Api<PartialObjectMeta<Secret>>) = match &scope
        {
            Some(ns) => (
                Api::namespaced(ctx.client.clone(), ns),
                Api::namespaced(ctx.client.clone(), ns),
            ),
            None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
        };
        // Status-only updates (our own patches) do not trigger a reconcile:
        // only a new generation (spec change, deletion) or a finalizer change.
        let (store, writer) = reflector::store();
        let profile_changes = watcher(profiles, watcher::Config::default().any_semantic())
            .default_backoff()
            .reflect(writer)
            .applied_objects()
            .predicate_filter(
                predicates::generation.combine(predicates::finalizers),
                Default::default(),
            );
        let controller = Controller::for_stream(profile_changes, store.clone()).with_config(
            kube::runtime::controller::Config::default().concurrency(ctx.settings.concurrency),
        );
        stores.push(store.clone());
        // Only Secret metadata is watched: a change of resourceVersion is the
        // trigger, and the value is read when a LoginProfile needs it, so the
        // operator never caches the data of every Secret in the cluster.
        let secret_changes = secret_changes(secrets);
        let stream = controller
            .watches_stream(secret_changes, move |secret| {
                referencing(&store, secret.namespace(), &secret.name_any())
            })
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile, error_policy, ctx.clone())
            .map(|result| {
                if let Err(error) = result {
                    tracing::debug!(%error, "controller event");
                }
            });
        streams.push(stream.boxed());
    }
    let ready = Box::pin(async move {
        for store in stores {
            // The store's readiness signal wakes only its latest waiter, and
            // the controller waits on it too; so ask again every 100 ms.
            while tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready())
                .await
                .is_err()
            {}
        }
    });
    (select_all(streams), ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(backoff(1, min, max, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(2, min, max, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(5, min, max, 1.0), Duration::from_secs(16));
        assert_eq!(backoff(30, min, max, 1.0), max);
        assert_eq!(backoff(2, min, max, 0.5), Duration::from_secs(1));
    }
}
