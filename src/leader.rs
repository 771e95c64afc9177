//! Leader election on a `coordination.k8s.io` Lease, so that with several
//! replicas only one reconciles: acquire (create the Lease, or take it over
//! once the holder stopped renewing), then renew; losing it ends the process,
//! and Kubernetes restarts it as a standby.

use std::time::Duration;

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
    fn renew_every(&self) -> Duration {
        self.duration / 3
    }
}

/// Waits until this process holds the Lease.
pub async fn acquire(client: &Client, settings: &LeaseSettings) -> Result<(), kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    let mut announced = false;
    loop {
        if try_acquire(&leases, settings).await? {
            tracing::info!(lease = %settings.name, identity = %settings.identity, "became the leader");
            return Ok(());
        }
        if !announced {
            tracing::info!(lease = %settings.name, "another replica leads; standing by");
            announced = true;
        }
        tokio::time::sleep(settings.renew_every()).await;
    }
}

/// Renews the Lease until it cannot: returns when leadership is lost (the
/// Lease was taken, or could not be renewed within its duration).
pub async fn hold(client: Client, settings: LeaseSettings) {
    let leases: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let mut last_renewal = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(settings.renew_every()).await;
        match try_acquire(&leases, &settings).await {
            Ok(true) => last_renewal = tokio::time::Instant::now(),
            Ok(false) => {
                tracing::error!(lease = %settings.name, "another replica took the Lease");
                return;
            }
            Err(error) if last_renewal.elapsed() < settings.duration => {
                tracing::warn!(%error, "could not renew the Lease; retrying");
            }
            Err(error) => {
                tracing::error!(%error, "could not renew the Lease within its duration");
                return;
            }
        }
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
