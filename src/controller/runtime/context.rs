//! What every reconcile shares ([`Context`]: the clients, the caches, the
//! per-object memory, the settings) and what an admitted one adds
//! ([`InAccount`]: the AWS account it acts in, reached through the same name).

use super::claims;
use super::event_flow::{EventFlows, Sending};
use super::generations::Generations;
use super::looks::Looks;
use super::memory::Memory;
use super::tenancy::TenancyStores;
use chrono::Utc;
use kube::Api;
use kube::ResourceExt;
use rand::Rng;

use std::{collections::HashMap, sync::Arc, time::Duration};

use kube::{
    Client,
    runtime::{
        events::Reporter,
        reflector::{ObjectRef, Store},
    },
};

use crate::{
    api::conditions::Outcome,
    api::iam_account::IAMAccount,
    api::login_profile::DeletionPolicy,
    api::login_profile::LoginProfile,
    api::reason::Reason,
    api::root_login_profile::RootLoginProfile,
    aws::clients::{Account, Accounts},
    aws::iam::Iam,
    ops::events::EventPublisher,
    ops::leader::WritePermit,
    ops::metrics::Metrics,
    rules::marks::Marks,
    rules::password::Fingerprinter,
};

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
    /// An IAM write is sent only if it can be answered within this long of
    /// the mark that records it (`--iam-timeout`), so the mark proves
    /// ownership only of a profile created in that window (rules/marks.rs).
    pub write_deadline: Duration,
    /// The deletion policy of LoginProfiles that set none.
    pub default_deletion_policy: DeletionPolicy,
    /// This cluster's id in the ownership record on IAM users; `None`: no
    /// record is written (rules/ownership.rs).
    pub cluster_id: Option<String>,
    /// Report status.console for every LoginProfile, not only those whose
    /// governance (or IAMAccount's) asks.
    pub report_console_activity: bool,
    /// Reconcile RootLoginProfiles, those matching this label selector
    /// (empty: all); `None`: leave them alone.
    pub root_login_profiles: Option<String>,
    /// How IAM's events (an IAMAccount's `spec.events`) pace drift checks.
    pub events: EventSettings,
}

/// How IAM's events pace drift checks (flags of `run`; docs/events.md).
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// The drift period of an IAMAccount's LoginProfiles while its events
    /// flow (never shorter than the resync period).
    pub drift_period: Duration,
    /// How long the event of the operator's own write may take to arrive.
    pub deadline: Duration,
    /// How long an IAMAccount with events may go without a write of the
    /// operator's before it writes a heartbeat.
    pub heartbeat_period: Duration,
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
    pub(crate) stores: std::sync::OnceLock<Vec<Store<LoginProfile>>>,
    /// The caches of IAMAccounts and Namespaces the admission rules read
    /// (set once the controllers start).
    pub(crate) tenancy: std::sync::OnceLock<TenancyStores>,
    /// The cache of RootLoginProfiles (set once their controller starts),
    /// to find the ones claiming the same AWS account.
    pub(crate) root_profiles: std::sync::OnceLock<Store<RootLoginProfile>>,
    /// What the reconciler remembers of each object: failures, what IAM
    /// last confirmed, which create IAM answered.
    pub(crate) memory: Memory,
    /// Which LoginProfiles name which IAM user (kept from the watches).
    pub(crate) claims: claims::ClaimIndex,
    /// The generation of each LoginProfile the watches last passed on.
    pub(crate) generations: Generations,
    /// When each LoginProfile is looked at again, released to the
    /// controllers oldest first.
    pub(crate) looks: Looks,
    /// Whether each IAMAccount's IAM events flow (runtime/event_flow.rs).
    pub(crate) event_flows: EventFlows,
    /// When the admitted LoginProfiles were last counted, and how many each
    /// AWS account admits ([`Context::admitted_objects`]).
    admitted_counts: std::sync::Mutex<Option<(std::time::Instant, HashMap<String, usize>)>>,
}

/// How long a count of admitted LoginProfiles serves the drift budget.
const ADMITTED_COUNT_TTL: Duration = Duration::from_secs(30);

/// A reconcile admitted to an AWS account: what every reconcile shares, and
/// the clients of the account its IAMAccount admitted it to.
pub(crate) struct InAccount<'a, I: Iam> {
    pub(crate) shared: &'a Context<I>,
    pub(crate) account: Arc<Account<I>>,
    /// The IAMAccount that admitted it (its governance is a floor).
    pub(crate) iam_account: Arc<IAMAccount>,
    /// The verified AWS account id, recorded in status.
    pub(crate) account_id: String,
}

impl<I: Iam> InAccount<'_, I> {
    /// The operator is about to send `call` for IAM user `user` through
    /// this IAMAccount: where its events are received, its event is the
    /// operator's own (runtime/event_flow.rs), and awaited once IAM
    /// answers. Not for DeleteLoginProfile: the client answers a profile
    /// already gone as deleted, and IAM then records no deletion.
    pub(crate) fn sending(&self, call: &'static str, user: &str) -> Sending<'_> {
        self.shared.event_flows.sending(
            &self.iam_account.name_any(),
            call,
            user,
            Utc::now(),
            std::time::Instant::now(),
        )
    }
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
        let event_flows = EventFlows::new(settings.events.deadline);
        Self {
            events: EventPublisher::new(client.clone(), reporter),
            client,
            accounts,
            fingerprinter,
            metrics,
            stores: std::sync::OnceLock::new(),
            tenancy: std::sync::OnceLock::new(),
            root_profiles: std::sync::OnceLock::new(),
            settings,
            permit: WritePermit::default(),
            memory: Memory::default(),
            claims: claims::ClaimIndex::default(),
            looks: Looks::default(),
            generations: Generations::default(),
            event_flows,
            admitted_counts: Default::default(),
        }
    }

    /// The object as the API server has it now (not the cache).
    pub(crate) async fn fresh(&self, lp: &LoginProfile) -> Result<LoginProfile, kube::Error> {
        let api: Api<LoginProfile> =
            Api::namespaced(self.client.clone(), &lp.namespace().unwrap_or_default());
        api.get(&lp.name_any()).await
    }

    /// The crash-safety marks of `lp` this operator may believe.
    pub(crate) fn marks(&self, lp: &LoginProfile) -> Marks {
        Marks::read(lp, &self.fingerprinter)
    }

    /// With leader election, no IAM write once the Lease may have passed on.
    pub(crate) fn may_write(&self) -> Result<(), Outcome> {
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

    /// When to look at `lp` again: the resync period, or the Secrets Manager
    /// poll interval when that is the source (it has no watch).
    pub(crate) fn requeue_after(&self, lp: &LoginProfile) -> Duration {
        self.look_again_within(lp, self.settings.resync_period)
    }

    /// `period` with ±10% jitter (so objects created together do not hit IAM
    /// together forever after), or the Secrets Manager poll interval when
    /// that is the source and comes sooner.
    pub(crate) fn look_again_within(&self, lp: &LoginProfile, period: Duration) -> Duration {
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

    /// How many cached LoginProfiles each AWS account admits, by account id:
    /// what an account's drift budget is spread over. Counted from the
    /// caches at most every [`ADMITTED_COUNT_TTL`], so what a tenant creates
    /// where nothing admits it (or in another account) stretches no account's
    /// drift period, at a cost that does not grow with every reconcile.
    pub(crate) fn admitted_objects(&self, account_id: &str) -> usize {
        let mut counted = self
            .admitted_counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = counted
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < ADMITTED_COUNT_TTL);
        if !fresh && let Some(tenancy) = self.tenancy.get() {
            let mut counts = HashMap::new();
            for lp in self.cached_profiles() {
                let account = tenancy.account(lp.account_name());
                if let Ok(id) = tenancy.admit(&lp, account.as_deref()) {
                    *counts.entry(id).or_insert(0) += 1;
                }
            }
            *counted = Some((std::time::Instant::now(), counts));
        }
        counted
            .as_ref()
            .and_then(|(_, counts)| counts.get(account_id).copied())
            .unwrap_or(0)
    }

    /// Every cached LoginProfile.
    pub(crate) fn cached_profiles(&self) -> impl Iterator<Item = Arc<LoginProfile>> {
        self.stores
            .get()
            .into_iter()
            .flatten()
            .flat_map(Store::state)
    }

    /// The cached copy of `object`, from whichever cache holds it.
    pub(crate) fn cached(&self, object: &ObjectRef<LoginProfile>) -> Option<Arc<LoginProfile>> {
        self.stores
            .get()?
            .iter()
            .find_map(|store| store.get(object))
    }
}

/// The field manager of every write this operator makes.
pub const FIELD_MANAGER: &str = "loginprofile-operator";

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

/// The key of `lp` in metrics and logs: `namespace/name`.
pub(crate) fn key(lp: &LoginProfile) -> String {
    format!("{}/{}", lp.namespace().unwrap_or_default(), lp.name_any())
}

/// Now, as status and Events write times.
pub(crate) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
