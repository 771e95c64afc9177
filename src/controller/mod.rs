//! The reconciler: observe (LoginProfile, Secret, IAM) -> decide (plan.rs)
//! -> act (at most the IAM calls the plan needs) -> report (one status patch,
//! an Event on each transition), plus the controller wiring that triggers it.
//!
//! Crash safety (docs/reliability.md): the finalizer patch also records when
//! the operator took charge and which password it is about to send, so a
//! reconcile after a crash or a lost answer tells its own unrecorded create
//! from someone else's profile without asking anyone; status is written with
//! the resourceVersion it was computed from, so a write from a stale copy
//! fails (409) instead of erasing what a newer one recorded.

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
        Controller, WatchStreamExt,
        controller::Action,
        events::{EventType, Reporter},
        predicates,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use rand::Rng;

mod act;
mod claims;
mod iam_accounts;
mod observe;
mod report;
pub mod secret_source;
mod watch;

use act::*;
use iam_accounts::TenancyStores;
use observe::*;
use report::*;
pub use watch::run;

use crate::{
    api::conditions::{self, Outcome},
    api::login_profile::{FINALIZER, LoginProfile, LoginProfileStatus, PasswordUpdatePolicy},
    api::reason::Reason,
    aws::clients::{Account, Accounts},
    aws::drift_budget::PendingChanges,
    aws::iam::{Iam, IamError},
    ops::events::{EventPublisher, Note},
    ops::leader::WritePermit,
    ops::metrics::{Metrics, ProfileState},
    rules::admission,
    rules::marks::Marks,
    rules::password::{Fingerprinter, Password, Verdict},
    rules::plan::{self, Applied, IamProfile, Observed, Plan, SourceProblem, UpdateWhy},
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
    /// How often a Secrets Manager source is checked for a new version.
    pub secrets_manager_poll_interval: Duration,
}

/// What every reconcile shares.
pub struct Context<I: Iam> {
    pub client: Client,
    /// The AWS clients of each IAMAccount, and each AWS account's budget.
    pub accounts: Accounts<I>,
    pub fingerprinter: Fingerprinter,
    pub events: EventPublisher,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// Checked before every IAM write (leader election).
    pub permit: WritePermit,
    /// The caches of LoginProfiles (set once the controllers start), to
    /// count the objects the drift budget is spread over and to find the
    /// LoginProfiles that claim the same IAM user.
    stores: std::sync::OnceLock<Vec<Store<LoginProfile>>>,
    /// The caches of IAMAccounts and Namespaces the admission rules read
    /// (set once the controllers start).
    tenancy: std::sync::OnceLock<TenancyStores>,
    /// Consecutive transient failures per object, for exponential backoff.
    failures: Mutex<HashMap<ObjectRef<LoginProfile>, u32>>,
    /// What IAM last confirmed for each object, and when, so a trigger that
    /// changes nothing (a Secret rewritten with the same value, or a cached
    /// copy that does not show our own last status yet) costs no IAM call;
    /// the resync still checks for drift.
    verified: Mutex<HashMap<ObjectRef<LoginProfile>, Verified>>,
    /// Changes triggered and not reconciled yet: drift checks let them go first.
    pub(crate) pending_changes: PendingChanges<ObjectRef<LoginProfile>>,
    /// Which LoginProfiles name which IAM user (kept from the watches).
    pub(crate) claims: claims::ClaimIndex,
}

/// IAM holds the source's password: confirmed by IAM, or trusted from status
/// at start. Until `valid_until`, a trigger that changes nothing costs no
/// IAM call.
struct Verified {
    valid_until: Instant,
    generation: Option<i64>,
    fingerprint: String,
}

/// A reconcile admitted to an AWS account: what every reconcile shares, and
/// the clients of the account its IAMAccount admitted it to.
pub(crate) struct InAccount<'a, I: Iam> {
    shared: &'a Context<I>,
    account: Arc<Account<I>>,
    /// The verified AWS account id, recorded in status.
    account_id: String,
}

// Read as "the context, in this account": the reconcile steps use both the
// shared parts and the account's clients through one name.
impl<I: Iam> std::ops::Deref for InAccount<'_, I> {
    type Target = Context<I>;
    fn deref(&self) -> &Context<I> {
        self.shared
    }
}

impl<I: Iam> Context<I> {
    pub fn new(
        client: Client,
        accounts: Accounts<I>,
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
            client,
            accounts,
            fingerprinter,
            metrics,
            stores: std::sync::OnceLock::new(),
            tenancy: std::sync::OnceLock::new(),
            settings,
            permit: WritePermit::default(),
            failures: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
            pending_changes: PendingChanges::default(),
            claims: claims::ClaimIndex::default(),
        }
    }

    /// The crash-safety marks of `lp` this operator may believe.
    fn marks(&self, lp: &LoginProfile) -> Marks {
        Marks::read(lp, &self.fingerprinter)
    }

    /// With leader election, no IAM write once the Lease may have passed on.
    fn may_write(&self) -> Result<(), Outcome> {
        if self.permit.allows() {
            return Ok(());
        }
        Err(Outcome::new(
            Reason::IamError,
            "not writing to IAM: this replica may no longer hold the leader Lease",
        ))
    }

    /// With leader election: IAM writes stop when this permit does.
    pub fn set_write_permit(&mut self, permit: WritePermit) {
        self.permit = permit;
    }

    /// Forgets what is kept per object for objects that are gone (deleted
    /// without a finalizer run, or no longer watched).
    fn retain_objects(&self, exists: impl Fn(&ObjectRef<LoginProfile>) -> bool) {
        self.verified().retain(|object, _| exists(object));
        self.failures().retain(|object, _| exists(object));
        self.metrics.retain_profiles(|key| {
            key.split_once('/')
                .is_some_and(|(ns, name)| exists(&ObjectRef::new(name).within(ns)))
        });
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<LoginProfile>, Verified>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True when nothing can have changed since IAM last confirmed this
    /// object (less than half a resync period ago), or since status was
    /// trusted at start: same generation, same password. Read from memory,
    /// not from the (maybe stale) cached status.
    fn recently_verified(&self, lp: &LoginProfile, desired: &Desired) -> bool {
        self.verified()
            .get(&ObjectRef::from_obj(lp))
            .is_some_and(|verified| {
                verified.generation == lp.metadata.generation
                    && verified.fingerprint == desired.fingerprint
                    && Instant::now() < verified.valid_until
            })
    }

    fn remember_verified(&self, lp: &LoginProfile, fingerprint: String, valid_for: Duration) {
        self.verified().insert(
            ObjectRef::from_obj(lp),
            Verified {
                valid_until: Instant::now() + valid_for,
                generation: lp.metadata.generation,
                fingerprint,
            },
        );
    }

    /// Whether IAM needs asking only to look for drift: status says Ready
    /// for this generation with the source's current password.
    fn only_drift_to_check(&self, lp: &LoginProfile, desired: &Desired) -> bool {
        lp.observed()
            && lp.status.as_ref().and_then(|s| s.observed_generation) == lp.metadata.generation
            && lp
                .condition(conditions::READY)
                .is_some_and(|c| c.status == "True" && c.reason != Reason::UpdateHeldBack.as_str())
            && desired.applied == Applied::Same
            && lp
                .status
                .as_ref()
                .and_then(|s| s.password_fingerprint.as_deref())
                == Some(desired.fingerprint.as_str())
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<LoginProfile>, u32>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When to look at `lp` again: the resync period, or the Secrets Manager
    /// poll interval when that is the source (it has no watch).
    fn requeue_after(&self, lp: &LoginProfile) -> Duration {
        self.look_again_within(lp, self.settings.resync_period)
    }

    /// `period` with ±10% jitter (so objects created together do not hit IAM
    /// together forever after), or the Secrets Manager poll interval when
    /// that is the source and comes sooner.
    fn look_again_within(&self, lp: &LoginProfile, period: Duration) -> Duration {
        let resync = period.mul_f64(rand::rng().random_range(0.9..1.1));
        match lp.spec.password_secrets_manager_ref {
            Some(_) => resync.min(
                self.settings
                    .secrets_manager_poll_interval
                    .mul_f64(rand::rng().random_range(0.9..1.1)),
            ),
            None => resync,
        }
    }

    /// How many LoginProfiles the drift budget is spread over.
    fn objects(&self) -> usize {
        let cached: usize = self
            .stores
            .get()
            .map_or(0, |stores| stores.iter().map(Store::len).sum());
        cached.max(self.metrics.profile_count())
    }

    /// Every cached LoginProfile.
    fn cached_profiles(&self) -> impl Iterator<Item = Arc<LoginProfile>> {
        self.stores
            .get()
            .into_iter()
            .flatten()
            .flat_map(Store::state)
    }

    /// The cached copy of `object`, from whichever cache holds it.
    fn cached(&self, object: &ObjectRef<LoginProfile>) -> Option<Arc<LoginProfile>> {
        self.stores
            .get()?
            .iter()
            .find_map(|store| store.get(object))
    }

    /// Whether `lp` may act, and in which AWS account: the IAMAccount it
    /// names admits its namespace and its user (docs/tenancy.md), and no
    /// other LoginProfile owns the same user there. Makes no AWS call: a
    /// refusal costs IAM nothing.
    async fn admitted(&self, lp: &LoginProfile) -> Result<InAccount<'_, I>, Outcome> {
        let Some(tenancy) = self.tenancy.get() else {
            return Err(Outcome::new(
                Reason::AccountNotReady,
                "the operator is starting: its IAMAccount and Namespace caches are not filled yet",
            ));
        };
        tenancy.wait_until_ready().await;
        let account = tenancy.account(lp.account_name());
        let account_id = tenancy.admit(lp, account.as_deref())?;
        let rivals = self.rivals(lp, tenancy, &account_id).await?;
        admission::claim(lp, &rivals, |other| self.manages(other))?;
        let account = account.expect("admitted by an IAMAccount that exists");
        Ok(InAccount {
            shared: self,
            account: self.accounts.get(&account).await,
            account_id,
        })
    }

    /// Whether the operator believes `lp` manages its IAM user: status
    /// records a password, or a sealed, open mark says it took charge.
    /// Nothing a tenant can write makes this true.
    fn manages(&self, lp: &LoginProfile) -> bool {
        self.marks(lp).in_charge_since().is_some()
            || lp
                .status
                .as_ref()
                .is_some_and(|s| s.password_fingerprint.is_some())
    }

    /// The cached LoginProfiles other than `lp` that name its IAM user and
    /// that their IAMAccounts admit to the AWS account `account_id`, first
    /// in line first. Read from the caches only: what a tenant whose
    /// namespace is not admitted creates costs no API request.
    fn claimants_of(
        &self,
        lp: &LoginProfile,
        tenancy: &TenancyStores,
        account_id: &str,
    ) -> Vec<Arc<LoginProfile>> {
        let mut claimants: Vec<Arc<LoginProfile>> = self
            .claims
            .claimants(&lp.user_name(), |object| self.cached(object))
            .into_iter()
            .filter(|other| other.uid() != lp.uid())
            .filter(|other| {
                let theirs = tenancy.account(other.account_name());
                tenancy
                    .admit(other, theirs.as_deref())
                    .is_ok_and(|id| id == account_id)
            })
            .collect();
        claimants.sort_by_cached_key(|other| admission::rank(other, self.manages(other)));
        claimants
    }

    /// The rival that can keep `lp` from acting: the first in line of the
    /// other admitted claimants of its IAM user, read fresh from the API
    /// server (its cached copy may not show yet that it took charge). At
    /// most one read, unless the first in line is gone meanwhile.
    async fn rivals(
        &self,
        lp: &LoginProfile,
        tenancy: &TenancyStores,
        account_id: &String,
    ) -> Result<Vec<LoginProfile>, Outcome> {
        for other in self.claimants_of(lp, tenancy, account_id) {
            let api: Api<LoginProfile> =
                Api::namespaced(self.client.clone(), &other.namespace().unwrap_or_default());
            let fresh = match api.get_opt(&other.name_any()).await {
                Ok(Some(fresh)) if fresh.uid() == other.uid() => fresh,
                Ok(_) => continue,
                Err(error) => {
                    return Err(Outcome::new(
                        Reason::KubernetesError,
                        format!(
                            "could not read the LoginProfiles naming the same IAM user: {error}"
                        ),
                    ));
                }
            };
            let theirs = tenancy.account(fresh.account_name());
            if tenancy.admit(&fresh, theirs.as_deref()).as_ref() != Ok(account_id) {
                continue;
            }
            tracing::debug!(object = %ObjectRef::from_obj(lp), rival = %ObjectRef::from_obj(&fresh), "another LoginProfile names the same IAM user");
            return Ok(vec![fresh]);
        }
        Ok(Vec::new())
    }

    /// Of the LoginProfiles that name `gone`'s IAM user, the one first in
    /// line once `gone` is deleted: the only one that may take it over now.
    pub(crate) fn next_in_line(&self, gone: &LoginProfile) -> Option<ObjectRef<LoginProfile>> {
        let tenancy = self.tenancy.get()?;
        let theirs = tenancy.account(gone.account_name());
        let account_id = gone
            .status
            .as_ref()
            .and_then(|s| s.account_id.clone())
            .or_else(|| {
                theirs
                    .as_deref()
                    .and_then(|a| a.verified_account_id())
                    .map(str::to_string)
            })?;
        self.claimants_of(gone, tenancy, &account_id)
            .first()
            .map(|next| ObjectRef::from_obj(&**next))
    }
}

impl<I: Iam> InAccount<'_, I> {
    /// When to look again at an object IAM (or, at start, status) confirmed:
    /// its next drift check, one drift period away. That is the resync
    /// period, stretched when the account's drift budget cannot check every
    /// object in it: coming back sooner would only re-read the Secret to be
    /// put off again, and with thousands of objects those reads would fill
    /// the workers a change needs.
    fn next_drift_check(&self, lp: &LoginProfile) -> Duration {
        self.look_again_within(lp, self.drift_period())
    }

    /// First sight after a start of an object status shows up to date: it is
    /// trusted with no IAM call, and its drift check is placed at a uniformly
    /// random point of the (effective) drift period, so a restart costs the
    /// account's IAM budget nothing and drift is found as late as it would
    /// be while running, never later. Returns when to look again.
    fn trust_on_first_sight(&self, lp: &LoginProfile, desired: &Desired) -> Option<Duration> {
        if self.verified().contains_key(&ObjectRef::from_obj(lp))
            || !self.only_drift_to_check(lp, desired)
        {
            return None;
        }
        let period = self.drift_period();
        let delay = period.mul_f64(rand::rng().random_range(0.0..1.0));
        self.remember_verified(lp, desired.fingerprint.clone(), delay);
        Some(delay.min(self.next_drift_check(lp)))
    }

    /// When IAM need not be asked now: nothing changed since IAM (or, at
    /// start, status) last confirmed the object, or it is only a drift check
    /// and the drift budget has no token free. Says when to look again.
    fn no_iam_call_needed(&self, lp: &LoginProfile, desired: &Desired) -> Option<Action> {
        if self.recently_verified(lp, desired) {
            return Some(Action::requeue(self.next_drift_check(lp)));
        }
        if let Some(delay) = self.trust_on_first_sight(lp, desired) {
            tracing::debug!(object = %ObjectRef::from_obj(lp), drift_check_in = ?delay, "status is up to date: trusted without asking IAM");
            self.metrics
                .set_profile_state(key(lp), Some(ProfileState::Ready));
            return Some(Action::requeue(delay));
        }
        if self.only_drift_to_check(lp, desired) {
            return self.drift_check_deferred().map(Action::requeue);
        }
        None
    }

    /// A drift check takes a token of its own budget; without one it gives
    /// the worker back and says when to try again.
    ///
    /// Each try reads the Secret (a change may hide there), so a deferred
    /// check comes back at a random point of the time the budget needs for
    /// all objects, not as soon as the next token frees: a backlog then costs
    /// about one extra Secret read per object, not one per token.
    fn drift_check_deferred(&self) -> Option<Duration> {
        let period = self.drift_period();
        let backlog = period.min(Duration::from_secs_f64(
            self.objects() as f64 / self.account.budget.drift.rate(),
        ));
        self.account
            .budget
            .drift
            .take()
            .err()
            .map(|wait| wait.max(backlog.mul_f64(rand::rng().random_range(0.0..1.0))))
    }

    /// The resync period, stretched when the drift budget cannot check every
    /// object in it; exported as a metric.
    fn drift_period(&self) -> Duration {
        let period = self
            .account
            .budget
            .drift
            .effective_period(self.objects(), self.settings.resync_period);
        self.metrics.set_drift_check_period(period);
        period
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A transient failure that status already reports; retried with backoff.
    #[error("{reason}: {message}")]
    Transient { reason: Reason, message: String },
    /// A Kubernetes request failed; 409 Conflict means the object changed
    /// since it was read (a stale copy), and the retry reads it again.
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
}

/// Reconciles one LoginProfile: [`apply`] while it exists, [`cleanup`] once
/// it is being deleted and still carries the finalizer.
pub async fn reconcile<I: Iam>(
    lp: Arc<LoginProfile>,
    ctx: Arc<Context<I>>,
) -> Result<Action, Error> {
    let changed = ctx.pending_changes.take(&ObjectRef::from_obj(&*lp));
    if !changed && converged(&lp) && ctx.pending_changes.any() {
        // Most likely a drift check, and a change waits behind it in the
        // queue: let the change go first, at no cost (nothing read yet).
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let result = match lp.metadata.deletion_timestamp {
        None => apply(&lp, &ctx).await,
        Some(_) if lp.finalizers().iter().any(|f| f == FINALIZER) => cleanup(&lp, &ctx).await,
        Some(_) => Ok(Action::await_change()),
    };
    if result.is_err() {
        ctx.metrics.reconciled("error");
    }
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

/// Ready for its current generation, and not being deleted.
fn converged(lp: &LoginProfile) -> bool {
    lp.metadata.deletion_timestamp.is_none()
        && lp.status.as_ref().is_some_and(|status| {
            status.observed_generation == lp.metadata.generation
                && status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == conditions::READY && c.status == "True")
        })
}

/// observe -> decide -> act -> report for a LoginProfile that is not being deleted.
async fn apply<I: Iam>(cached: &LoginProfile, shared: &Context<I>) -> Result<Action, Error> {
    let mut lp = cached.clone();
    let user = lp.user_name();
    if let Some(message) = lp.user_name_problem() {
        return fail(&lp, shared, Outcome::new(Reason::InvalidUserName, message)).await;
    }

    // 1. Observe: where it may act (from caches, before any AWS call), the
    // password source, then IAM (only as far as needed).
    let ctx = &match shared.admitted(&lp).await {
        Ok(in_account) => in_account,
        Err(refusal) => return fail(&lp, shared, refusal).await,
    };
    let source = match observe_source(&lp, ctx, &user).await {
        Err(problem) if !problem.reason.is_terminal() => {
            return fail(&lp, ctx, Outcome::new(problem.reason, problem.message)).await;
        }
        source => source,
    };
    if let Ok(desired) = &source
        && let Some(later) = ctx.no_iam_call_needed(&lp, desired)
    {
        return Ok(later);
    }
    // Anything but a drift check is a change: drift checks step aside meanwhile.
    let _change = match &source {
        Ok(desired) if ctx.only_drift_to_check(&lp, desired) => None,
        _ => Some(ctx.account.budget.drift.change()),
    };
    let mut iam = match observe_iam(&lp, ctx, &user, &source, Look::OnlyIfNeeded).await {
        Ok(iam) => iam,
        Err(outcome) => return fail(&lp, ctx, outcome).await,
    };

    // 2. Decide (pure, plan.rs), 3. act. A create-first guess that IAM
    // answers with "exists" is looked at once, on a fresh read of the object
    // (the cached one may not show this operator's own last status yet).
    let mut source = source;
    let acted = loop {
        let plan = decide(&lp, ctx, &user, &source, &iam);
        tracing::debug!(object = %ObjectRef::from_obj(&lp), ?plan, "decided");
        match act(ctx, &mut lp, &user, plan, &mut source, &iam).await {
            Ok(acted) => break acted,
            Err(ActFailure::Report(outcome)) => return fail(&lp, ctx, outcome).await,
            Err(ActFailure::Refused(outcome)) => return fail_settled(&lp, ctx, outcome).await,
            Err(ActFailure::Kube(error)) => return Err(Error::Kube(error)),
            Err(ActFailure::LookAgain) if !iam.looked => {
                lp = fresh(ctx, &lp).await?;
                source = source.map(|desired| desired.compared_with(&lp, ctx, &user));
                iam = match observe_iam(&lp, ctx, &user, &source, Look::Always).await {
                    Ok(iam) => iam,
                    Err(outcome) => return fail(&lp, ctx, outcome).await,
                };
            }
            // The profile appeared or vanished since GetLoginProfile: look again.
            Err(ActFailure::LookAgain) => return Ok(Action::requeue(Duration::from_secs(1))),
        }
    };

    // 4. Report.
    let mut next = next_status(&lp, &user, &iam, &acted, source.ok().as_ref());
    next.account_id = Some(ctx.account_id.clone());
    if acted.sent_password.is_some() {
        // Status now records the password the marks spoke of: settled, in
        // the same write.
        next.writes_settled_through = ctx.marks(&lp).settle().or(next.writes_settled_through);
    }
    // Only a password IAM holds now counts as verified (not a held-back one).
    let next_fingerprint = next
        .password_fingerprint
        .clone()
        .filter(|_| acted.outcome.reason != Reason::UpdateHeldBack);
    report(&lp, ctx, next, &acted.outcome, acted.wrote).await?;
    ctx.failures().remove(&ObjectRef::from_obj(&lp));
    if let Some(fingerprint) = next_fingerprint {
        ctx.remember_verified(&lp, fingerprint, ctx.settings.resync_period / 2);
    }
    ctx.metrics
        .set_profile_state(key(&lp), Some(ProfileState::Ready));
    ctx.metrics.reconciled("ok");
    Ok(Action::requeue(ctx.next_drift_check(&lp)))
}

/// The decide step's inputs, gathered from what was observed.
fn decide<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    source: &Result<Desired, SourceProblem>,
    iam: &IamView,
) -> Plan {
    let pending_is_desired = sent_unconfirmed(lp, ctx, user, source);
    plan::decide(&Observed {
        spec: &lp.spec,
        status: lp.status.as_ref(),
        source: source.as_ref().map(|desired| desired.applied),
        iam: iam.profile.as_ref(),
        changed_out_of_band: iam.changed_out_of_band,
        in_charge_since: ctx.marks(lp).in_charge_since(),
        pending_is_desired,
    })
}

/// Whether an earlier attempt, whose answer never reached status, was
/// sending exactly the source's password.
fn sent_unconfirmed<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    source: &Result<Desired, SourceProblem>,
) -> bool {
    match (ctx.marks(lp).unconfirmed_sending(), source) {
        (Some(sending), Ok(desired)) => desired.verdict_of(sending, ctx, user) == Verdict::Same,
        _ => false,
    }
}

/// The object as the API server has it now (not the cache).
async fn fresh<I: Iam>(ctx: &Context<I>, lp: &LoginProfile) -> Result<LoginProfile, Error> {
    let api: Api<LoginProfile> =
        Api::namespaced(ctx.client.clone(), &lp.namespace().unwrap_or_default());
    api.get(&lp.name_any()).await.map_err(Error::Kube)
}

/// Runs while the resource is being deleted: removes the IAM login profile
/// unless `deletionPolicy: Retain` or this resource never managed it, then
/// removes the finalizer. A LoginProfile its IAMAccount no longer admits, or
/// whose user an older one claims, leaves IAM alone.
async fn cleanup<I: Iam>(lp: &LoginProfile, shared: &Context<I>) -> Result<Action, Error> {
    let user = lp
        .status
        .as_ref()
        .and_then(|s| s.user_name.clone())
        .unwrap_or_else(|| lp.user_name());
    let note = match shared.admitted(lp).await {
        Ok(ctx) => delete_if_managed(lp, &ctx, &user).await?,
        Err(refusal) if refusal.reason.is_terminal() => format!(
            "left the login profile of IAM user {user:?} alone: {}",
            refusal.message
        ),
        Err(refusal) => {
            return Err(Error::Transient {
                reason: refusal.reason,
                message: refusal.message,
            });
        }
    };
    release(shared, lp).await?;
    let event = Note {
        type_: EventType::Normal,
        reason: Reason::Deleting.as_str(),
        action: "Cleanup",
        note,
    };
    if let Err(error) = shared.events.publish(&lp.object_ref(&()), event).await {
        tracing::warn!(%error, "could not publish an event");
    }
    shared.failures().remove(&ObjectRef::from_obj(lp));
    shared.verified().remove(&ObjectRef::from_obj(lp));
    shared.metrics.set_profile_state(key(lp), None);
    shared.metrics.reconciled("ok");
    Ok(Action::await_change())
}

/// Deletes the login profile if this resource manages it; says what it did.
async fn delete_if_managed<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
) -> Result<String, Error> {
    let _change = ctx.account.budget.drift.change();
    let applied = lp
        .status
        .as_ref()
        .is_some_and(|s| s.password_fingerprint.is_some());
    // Status may have missed this resource's own create (a crash, a lost
    // answer): IAM's CreateDate against the time it took charge tells.
    let in_charge_since = ctx.marks(lp).in_charge_since();
    let created_in_charge = !applied
        && in_charge_since.is_some()
        && lp.spec.deletion_policy == crate::api::login_profile::DeletionPolicy::Delete
        && match ctx.account.iam.get_login_profile(user).await {
            Ok(profile) => profile.is_some_and(|p| plan::created_in_charge(&p, in_charge_since)),
            Err(error) => return Err(cleanup_failed(lp, ctx, user, error).await),
        };
    Ok(
        match plan::decide_cleanup(&lp.spec, lp.status.as_ref(), created_in_charge) {
            Plan::Delete => {
                if let Err(refused) = ctx.may_write() {
                    return Err(Error::Transient {
                        reason: refused.reason,
                        message: refused.message,
                    });
                }
                match ctx.account.iam.delete_login_profile(user).await {
                    Ok(()) => format!("deleted the login profile of IAM user {user:?}"),
                    Err(error) => return Err(cleanup_failed(lp, ctx, user, error).await),
                }
            }
            _ if lp.spec.deletion_policy == crate::api::login_profile::DeletionPolicy::Retain => {
                format!("kept the login profile of IAM user {user:?} (deletionPolicy: Retain)")
            }
            _ => format!(
                "left IAM user {user:?} alone: its login profile (if any) was not made by this LoginProfile"
            ),
        },
    )
}

/// A failed DeleteLoginProfile, in status (and an Event when Ready changes):
/// the LoginProfile stays until the deletion works, and the message says how
/// to let it go without deleting the profile.
async fn cleanup_failed<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    user: &str,
    error: IamError,
) -> Error {
    let outcome = error.outcome(user, None);
    let stuck = Outcome::new(
        outcome.reason,
        format!(
            "could not delete the login profile of IAM user {user:?}, so this LoginProfile stays: {}; \
             to let it go and keep the profile, set spec.deletionPolicy: Retain",
            outcome.message
        ),
    );
    let next = lp.status.clone().unwrap_or_default();
    if let Err(error) = report(lp, ctx, next, &stuck, false).await {
        tracing::warn!(object = %ObjectRef::from_obj(lp), %error, "could not report the failed deletion");
    }
    Error::Transient {
        reason: outcome.reason,
        message: outcome.message,
    }
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
