//! What every reconcile shares ([`Context`]: the clients, the caches, the
//! per-object memory, the settings) and what an admitted one adds
//! ([`InAccount`]: the AWS account it acts in, reached through the same name).

use super::claims;
use super::iam_accounts::TenancyStores;
use super::memory::Memory;
use chrono::Utc;
use kube::ResourceExt;
use rand::Rng;

use std::{sync::Arc, time::Duration};

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
    /// The deletion policy of LoginProfiles that set none.
    pub default_deletion_policy: DeletionPolicy,
    /// Report status.console for every LoginProfile, not only those whose
    /// governance (or IAMAccount's) asks.
    pub report_console_activity: bool,
    /// Reconcile RootLoginProfiles, those matching this label selector
    /// (empty: all); `None`: leave them alone.
    pub root_login_profiles: Option<String>,
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
    /// last confirmed, changes waiting in the queue.
    pub(crate) memory: Memory,
    /// Which LoginProfiles name which IAM user (kept from the watches).
    pub(crate) claims: claims::ClaimIndex,
}

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
            root_profiles: std::sync::OnceLock::new(),
            settings,
            permit: WritePermit::default(),
            memory: Memory::default(),
            claims: claims::ClaimIndex::default(),
        }
    }

    /// The crash-safety marks of `lp` this operator may believe.
    pub(super) fn marks(&self, lp: &LoginProfile) -> Marks {
        Marks::read(lp, &self.fingerprinter)
    }

    /// With leader election, no IAM write once the Lease may have passed on.
    pub(super) fn may_write(&self) -> Result<(), Outcome> {
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
    pub(super) fn requeue_after(&self, lp: &LoginProfile) -> Duration {
        self.look_again_within(lp, self.settings.resync_period)
    }

    /// `period` with ±10% jitter (so objects created together do not hit IAM
    /// together forever after), or the Secrets Manager poll interval when
    /// that is the source and comes sooner.
    pub(super) fn look_again_within(&self, lp: &LoginProfile, period: Duration) -> Duration {
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
    pub(super) fn objects(&self) -> usize {
        let cached: usize = self
            .stores
            .get()
            .map_or(0, |stores| stores.iter().map(Store::len).sum());
        cached.max(self.metrics.profile_count())
    }

    /// Every cached LoginProfile.
    pub(super) fn cached_profiles(&self) -> impl Iterator<Item = Arc<LoginProfile>> {
        self.stores
            .get()
            .into_iter()
            .flatten()
            .flat_map(Store::state)
    }

    /// The cached copy of `object`, from whichever cache holds it.
    pub(super) fn cached(&self, object: &ObjectRef<LoginProfile>) -> Option<Arc<LoginProfile>> {
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
pub(super) fn key(lp: &LoginProfile) -> String {
    format!("{}/{}", lp.namespace().unwrap_or_default(), lp.name_any())
}

/// Now, as status and Events write times.
pub(super) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
