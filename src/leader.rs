//! Leader election on a `coordination.k8s.io` Lease, so that with several
//! replicas only one reconciles: acquire (create the Lease, or take it over
//! once the holder stopped renewing), then renew; losing it ends the process,
//! and Kubernetes restarts it as a standby. A clean shutdown (SIGTERM) gives
//! the Lease up once the controllers have stopped, so a standby need not wait
//! out the lease.
//!
//! One writer, even when the API server is slow or this process is frozen:
//! every renewal has a timeout, leadership counts from the moment a renewal
//! was *sent* (not answered), and it is given up after the renew deadline
//! (two thirds of the lease), well before a standby may take over. IAM
//! writes ask [`WritePermit::allows`] first, which checks the clock itself,
//! so a process that wakes from a freeze past its deadline writes nothing.
//! Why not kube-lease-manager: docs/dependencies.md.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::time::Instant;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};

/// How a Lease is held.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// This process's identity (the pod name).
    pub identity: String,
    /// A holder that has not renewed for this long has lost the Lease.
    pub duration: Duration,
}

impl LeaseSettings {
    /// How often the holder renews (and a standby retries), and the timeout
    /// of each attempt.
    fn retry_period(&self) -> Duration {
        self.duration / 6
    }

    /// Leadership ends this long after the last renewal was sent, a third of
    /// the lease before any standby may take the Lease over.
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }
}

/// Whether this process may write to IAM now. Without leader election it
/// always may; with it, only until the renew deadline of its last renewal.
#[derive(Debug, Clone, Default)]
pub struct WritePermit {
    /// `None`: no leader election. `Some(t)`: writes allowed before `t`.
    until: Option<Arc<Mutex<Instant>>>,
}

impl WritePermit {
    /// A permit for a leader: valid for `valid_for` from now, extended by
    /// each renewal.
    fn leading(valid_for: Duration) -> Self {
        Self {
            until: Some(Arc::new(Mutex::new(Instant::now() + valid_for))),
        }
    }

    fn extend_to(&self, until: Instant) {
        if let Some(current) = &self.until {
            *current.lock().unwrap_or_else(PoisonError::into_inner) = until;
        }
    }

    fn revoke(&self) {
        self.extend_to(Instant::now());
    }

    /// True while a write cannot race another replica's.
    pub fn allows(&self) -> bool {
        self.until.as_ref().is_none_or(|until| {
            Instant::now() < *until.lock().unwrap_or_else(PoisonError::into_inner)
        })
    }
}

/// Waits until this process holds the Lease; returns the permit that IAM
/// writes check.
pub async fn acquire(
    client: &Client,
    settings: &LeaseSettings,
) -> Result<WritePermit, kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    let mut announced = false;
    loop {
        let sent = Instant::now();
        if attempt(&leases, settings).await? {
            tracing::info!(lease = %settings.name, identity = %settings.identity, "became the leader");
            let permit = WritePermit::leading(Duration::ZERO);
            permit.extend_to(sent + settings.renew_deadline());
            return Ok(permit);
        }
        if !announced {
            tracing::info!(lease = %settings.name, "another replica leads; standing by");
            announced = true;
        }
        tokio::time::sleep(settings.retry_period()).await;
    }
}

/// Renews the Lease until it cannot: returns (with the permit revoked) when
/// leadership is lost: the Lease was taken, or no renewal succeeded within
/// the renew deadline.
pub async fn hold(client: Client, settings: LeaseSettings, permit: WritePermit) {
    let leases: Api<Lease> = Api::namespaced(client, &settings.namespace);
    loop {
        tokio::time::sleep(settings.retry_period()).await;
        if !permit.allows() {
            tracing::error!(lease = %settings.name, "no renewal within the renew deadline; giving up leadership");
            break;
        }
        let sent = Instant::now();
        match attempt(&leases, &settings).await {
            Ok(true) => permit.extend_to(sent + settings.renew_deadline()),
            Ok(false) => {
                tracing::error!(lease = %settings.name, "another replica took the Lease");
                break;
            }
            Err(error) => tracing::warn!(%error, "could not renew the Lease; retrying"),
        }
    }
    permit.revoke();
}

/// Gives the Lease up on a clean shutdown, once nothing more will be
/// written: the permit is revoked first, then the Lease is marked unheld
/// (no holder, no renewal time) if this process still holds it, so a
/// standby takes over at its next try instead of after the lease. Best
/// effort: if it fails, the standby waits for the lease to expire, as it
/// would after a crash.
pub async fn release(client: &Client, settings: &LeaseSettings, permit: &WritePermit) {
    permit.revoke();
    let leases: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    let released = tokio::time::timeout(settings.retry_period(), async {
        let Some(mut lease) = leases.get_opt(&settings.name).await? else {
            return Ok(false);
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
            return Ok(false);
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        // Compare-and-swap on resourceVersion, as every Lease write here.
        leases
            .replace(&settings.name, &PostParams::default(), &lease)
            .await
            .map(|_| true)
    })
    .await;
    match released {
        Ok(Ok(true)) => tracing::info!(lease = %settings.name, "released the Lease"),
        Ok(Ok(false)) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "could not release the Lease; a standby takes over when it expires")
        }
        Err(_) => {
            tracing::warn!("no answer releasing the Lease; a standby takes over when it expires")
        }
    }
}

/// One attempt with a timeout, so a hung API server cannot hold a renewal
/// past the deadline.
async fn attempt(leases: &Api<Lease>, settings: &LeaseSettings) -> Result<bool, kube::Error> {
    match tokio::time::timeout(settings.retry_period(), try_acquire(leases, settings)).await {
        Ok(result) => result,
        Err(_) => Err(kube::Error::Service(
            format!("no answer within {:?}", settings.retry_period()).into(),
        )),
    }
}

/// One attempt: true when this process holds the Lease afterwards.
async fn try_acquire(leases: &Api<Lease>, settings: &LeaseSettings) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let Some(mut lease) = leases.get_opt(&settings.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(settings.name.clone()),
                ..Default::default()
            },
            spec: Some(held_by(settings, now, now, 0)),
        };
        return match leases.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
            Err(error) => Err(error),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let ours = spec.holder_identity.as_deref() == Some(settings.identity.as_str());
    let expired = spec.renew_time.as_ref().is_none_or(|renewed| {
        let duration = spec
            .lease_duration_seconds
            .map_or(settings.duration, |s| Duration::from_secs(s.max(0) as u64));
        renewed.0 + duration < now
    });
    if !ours && !expired {
        return Ok(false);
    }
    let (acquired, transitions) = if ours {
        (
            spec.acquire_time.map_or(now, |t| t.0),
            spec.lease_transitions.unwrap_or(0),
        )
    } else {
        (now, spec.lease_transitions.unwrap_or(0) + 1)
    };
    lease.spec = Some(held_by(settings, acquired, now, transitions));
    // The resourceVersion in `lease` makes this a compare-and-swap: if
    // another replica wrote first, the API server answers Conflict.
    match leases
        .replace(&settings.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}

fn held_by(
    settings: &LeaseSettings,
    acquired: Timestamp,
    renewed: Timestamp,
    transitions: i32,
) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(settings.identity.clone()),
        lease_duration_seconds: Some(settings.duration.as_secs() as i32),
        acquire_time: Some(MicroTime(acquired)),
        renew_time: Some(MicroTime(renewed)),
        lease_transitions: Some(transitions),
        ..Default::default()
    }
}
