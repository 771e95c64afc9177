//! Leader election on a `coordination.k8s.io` Lease, so that with several
//! replicas only one reconciles: acquire (create the Lease, or take it over
//! once the holder stopped renewing), then renew; losing it ends the process,
//! and Kubernetes restarts it as a standby. A clean shutdown (SIGTERM) gives
//! the Lease up once the controllers have stopped, so a standby need not wait
//! out the lease.
//!
//! One writer, even when the API server is slow, clocks disagree, or this
//! process is frozen: every renewal has a timeout, leadership counts from
//! the moment a renewal was *sent* (not answered), and it is given up after
//! the renew deadline (two thirds of the lease), well before a standby may
//! take over; a standby judges expiry by its own monotonic clock
//! ([`Observer`]), never by another host's `renewTime`. IAM writes check
//! [`WritePermit::deadline`] right before the request, so a process that
//! wakes from a freeze past its deadline writes nothing.
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
    /// The permit of a replica that takes part in leader election: no
    /// writes until [`acquire`] extends it, and none after it lapses. Made
    /// before anything that writes, so every writer shares it.
    pub fn for_election() -> Self {
        Self {
            until: Some(Arc::new(Mutex::new(Instant::now()))),
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
        self.deadline().is_none_or(|until| Instant::now() < until)
    }

    /// When writes must have been sent by: `None` without leader election.
    pub fn deadline(&self) -> Option<Instant> {
        self.until
            .as_ref()
            .map(|until| *until.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Waits until this process holds the Lease, then opens `permit` (the one
/// IAM writes check) until the renew deadline. Returns what [`hold`] needs
/// to go on judging the Lease.
pub async fn acquire(
    client: &Client,
    settings: &LeaseSettings,
    permit: &WritePermit,
) -> Result<Observer, kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    let mut announced = false;
    let mut observer = Observer::default();
    loop {
        let sent = Instant::now();
        if attempt(&leases, settings, &mut observer).await? {
            tracing::info!(lease = %settings.name, identity = %settings.identity, "became the leader");
            permit.extend_to(sent + settings.renew_deadline());
            return Ok(observer);
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
pub async fn hold(
    client: Client,
    settings: LeaseSettings,
    permit: WritePermit,
    mut observer: Observer,
) {
    let leases: Api<Lease> = Api::namespaced(client, &settings.namespace);
    loop {
        tokio::time::sleep(settings.retry_period()).await;
        if !permit.allows() {
            tracing::error!(lease = %settings.name, "no renewal within the renew deadline; giving up leadership");
            break;
        }
        let sent = Instant::now();
        match attempt(&leases, &settings, &mut observer).await {
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

/// What this process has seen of the Lease, on its own monotonic clock: the
/// record (its resourceVersion) and when it first saw it. Another holder's
/// Lease has expired only once this process itself has seen the record
/// unchanged for the lease duration; the `renewTime` written by another
/// host's clock is never compared with this one's (client-go does the same).
#[derive(Debug, Default)]
pub struct Observer {
    seen: Option<(String, Instant)>,
}

impl Observer {
    /// Notes the record `version` seen now; returns how long this process
    /// has seen it unchanged.
    fn unchanged_for(&mut self, version: &str, now: Instant) -> Duration {
        match &self.seen {
            Some((seen, since)) if seen == version => now.saturating_duration_since(*since),
            _ => {
                self.seen = Some((version.to_string(), now));
                Duration::ZERO
            }
        }
    }
}

/// One attempt with a timeout, so a hung API server cannot hold a renewal
/// past the deadline.
async fn attempt(
    leases: &Api<Lease>,
    settings: &LeaseSettings,
    observer: &mut Observer,
) -> Result<bool, kube::Error> {
    match tokio::time::timeout(
        settings.retry_period(),
        try_acquire(leases, settings, observer),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(kube::Error::Service(
            format!("no answer within {:?}", settings.retry_period()).into(),
        )),
    }
}

/// One attempt: true when this process holds the Lease afterwards.
async fn try_acquire(
    leases: &Api<Lease>,
    settings: &LeaseSettings,
    observer: &mut Observer,
) -> Result<bool, kube::Error> {
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
    let unchanged_for = observer.unchanged_for(
        lease
            .metadata
            .resource_version
            .as_deref()
            .unwrap_or_default(),
        Instant::now(),
    );
    if !ours && !free_to_take(&spec, unchanged_for, settings.duration) {
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

/// Whether another holder's Lease may be taken: it was released (no
/// holder), or this process has seen it unrenewed for the whole lease
/// duration the holder asked for (or ours, if it named none).
fn free_to_take(spec: &LeaseSpec, unchanged_for: Duration, default: Duration) -> bool {
    let released = spec.holder_identity.as_deref().is_none_or(str::is_empty);
    let duration = spec
        .lease_duration_seconds
        .map_or(default, |s| Duration::from_secs(s.max(0) as u64));
    released || unchanged_for >= duration
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

#[cfg(test)]
mod tests {
    use super::*;

    fn held(seconds: i32, renewed: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some("leader".into()),
            lease_duration_seconds: Some(seconds),
            renew_time: Some(MicroTime(renewed)),
            ..Default::default()
        }
    }

    #[test]
    fn a_standby_judges_the_lease_by_its_own_clock() {
        let lease = Duration::from_secs(15);
        // The holder's renewTime reads 30 s old to a standby whose clock is
        // ahead: it is still not free until the standby itself saw no change
        // for the lease duration.
        let skewed = held(15, Timestamp::now() - Duration::from_secs(30));
        let mut observer = Observer::default();
        let start = Instant::now();
        assert_eq!(observer.unchanged_for("41", start), Duration::ZERO);
        assert!(!free_to_take(&skewed, Duration::ZERO, lease));
        let later = start + Duration::from_secs(10);
        assert_eq!(observer.unchanged_for("41", later), Duration::from_secs(10));
        assert!(!free_to_take(&skewed, Duration::from_secs(10), lease));
        // A renewal (new resourceVersion) starts the count again.
        let renewed = start + Duration::from_secs(14);
        assert_eq!(observer.unchanged_for("42", renewed), Duration::ZERO);
        let silent = renewed + lease;
        assert_eq!(observer.unchanged_for("42", silent), lease);
        assert!(free_to_take(&skewed, lease, lease));
        // A clock behind does not make a dead leader look alive.
        let future = held(15, Timestamp::now() + Duration::from_secs(3600));
        assert!(free_to_take(&future, lease, lease));
    }

    #[test]
    fn a_released_lease_is_free_at_once() {
        let released = LeaseSpec {
            holder_identity: None,
            ..Default::default()
        };
        assert!(free_to_take(
            &released,
            Duration::ZERO,
            Duration::from_secs(15)
        ));
    }

    #[test]
    fn the_permit_lapses_at_its_deadline() {
        let permit = WritePermit::for_election();
        assert!(!permit.allows(), "closed until acquired");
        let deadline = Instant::now() + Duration::from_secs(10);
        permit.extend_to(deadline);
        assert!(permit.allows());
        assert_eq!(permit.clone().deadline(), Some(deadline), "clones share it");
        permit.revoke();
        assert!(!permit.allows());
        assert!(WritePermit::default().allows());
        assert_eq!(WritePermit::default().deadline(), None);
    }
}
