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
        events::{EventType, Reporter},
        finalizer::{self, finalizer},
        predicates,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use rand::Rng;

mod act;
mod observe;
mod report;
mod watch;

use act::*;
use observe::*;
use report::*;
pub use watch::run;

use crate::{
    account::AccountCache,
    crd::{FINALIZER, LoginProfile, LoginProfileStatus, PasswordUpdatePolicy},
    events::{EventPublisher, Note},
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
    pub events: EventPublisher,
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
            events: EventPublisher::new(client.clone(), reporter),
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
    // IAM has never shown this object a profile (no createDate in status):
    // most likely the user has none, so try CreateLoginProfile first and
    // look (GetLoginProfile) only when IAM answers that one exists. A
    // create then costs one IAM call instead of two, which matters because
    // IAM's rate limit is shared by the whole account.
    let mut look_first = lp.status.as_ref().is_some_and(|s| s.create_date.is_some());
    let (observed, changed_out_of_band, acted) = loop {
        // A broken source blocks every plan, so IAM need not be asked.
        let observed = match &desired {
            Ok(_) if look_first => match ctx.iam.get_login_profile(&user).await {
                Ok(profile) => profile,
                Err(error) => return fail(lp, ctx, error.outcome(&user, None)).await,
            },
            _ => None,
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
        match act(ctx, &user, plan, password, observed.clone(), lp).await {
            Ok(acted) => break (observed, changed_out_of_band, acted),
            Err(Some(outcome)) => return fail(lp, ctx, outcome).await,
            // The create-first guess was wrong: a profile exists. Look at it.
            Err(None) if !look_first => look_first = true,
            // The profile appeared or vanished since GetLoginProfile: look again.
            Err(None) => return Ok(Action::requeue(Duration::from_secs(1))),
        }
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
    let event = Note {
        type_: EventType::Normal,
        reason: Reason::Deleting.as_str(),
        action: "Cleanup",
        note,
    };
    if let Err(error) = ctx.events.publish(&lp.object_ref(&()), event).await {
        tracing::warn!(%error, "could not publish an event");
    }
    ctx.failures().remove(&ObjectRef::from_obj(lp));
    ctx.verified().remove(&ObjectRef::from_obj(lp));
    ctx.metrics.set_profile_state(key(lp), None);
    Ok(Action::await_change())
}

pub(super) fn key(lp: &LoginProfile) -> String {
    format!("{}/{}", lp.namespace().unwrap_or_default(), lp.name_any())
}

pub(super) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
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
