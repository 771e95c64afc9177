//! The reconciler's memory of each object, and nothing else: consecutive
//! failures (for backoff), what IAM last confirmed (so a trigger that changes
//! nothing costs no IAM call), which create attempt IAM answered (so its
//! retry need not wait for the attempt's window), and the changes waiting in
//! the queue (drift checks let them go first). Forgotten when the object
//! goes; a process that lost it (a restart, a new leader) only waits longer.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use kube::runtime::reflector::ObjectRef;

use crate::api::login_profile::LoginProfile;

type Object = ObjectRef<LoginProfile>;

#[derive(Default)]
pub(crate) struct Memory {
    /// Consecutive transient failures per object.
    failures: Mutex<HashMap<Object, u32>>,
    /// What IAM last confirmed for each object, and until when that holds.
    verified: Mutex<HashMap<Object, Verified>>,
    /// Changes triggered and not reconciled yet.
    pub(crate) pending_changes: PendingChanges<Object>,
    /// Consecutive transient failures per RootLoginProfile (by name; they
    /// are cluster-scoped).
    root_failures: Mutex<HashMap<String, u32>>,
    /// The mark time of the latest create attempt per object that IAM
    /// answered (with anything, a 5xx included): that request is over, and
    /// nothing of it can land after the answer.
    answered_creates: Mutex<HashMap<Object, DateTime<Utc>>>,
}

/// IAM holds the source's password: confirmed by IAM, or trusted from status
/// at start. Until `valid_until`, a trigger that changes nothing costs no
/// IAM call.
struct Verified {
    valid_until: Instant,
    generation: Option<i64>,
    fingerprint: String,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Memory {
    /// One more consecutive failure of `lp`; returns how many there were.
    pub(crate) fn count_failure(&self, lp: &LoginProfile) -> u32 {
        let mut failures = locked(&self.failures);
        let count = failures.entry(ObjectRef::from_obj(lp)).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// One more consecutive failure of the RootLoginProfile `name`.
    pub(crate) fn count_root_failure(&self, name: &str) -> u32 {
        let mut failures = locked(&self.root_failures);
        let count = failures.entry(name.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// The RootLoginProfile `name` reconciled without a transient failure
    /// (or is gone).
    pub(crate) fn clear_root_failures(&self, name: &str) {
        locked(&self.root_failures).remove(name);
    }

    /// `lp` reconciled without a transient failure.
    pub(crate) fn clear_failures(&self, lp: &LoginProfile) {
        locked(&self.failures).remove(&ObjectRef::from_obj(lp));
    }

    /// True when nothing can have changed since IAM last confirmed this
    /// object (less than half a resync period ago), or since status was
    /// trusted at start: same generation, same password. Read from memory,
    /// not from the (maybe stale) cached status.
    pub(crate) fn recently_verified(&self, lp: &LoginProfile, fingerprint: &str) -> bool {
        locked(&self.verified)
            .get(&ObjectRef::from_obj(lp))
            .is_some_and(|verified| {
                verified.generation == lp.metadata.generation
                    && verified.fingerprint == fingerprint
                    && Instant::now() < verified.valid_until
            })
    }

    /// Whether anything was ever confirmed for `lp` since this process started.
    pub(crate) fn knows(&self, lp: &LoginProfile) -> bool {
        locked(&self.verified).contains_key(&ObjectRef::from_obj(lp))
    }

    /// IAM holds `fingerprint` for `lp`, trusted for `valid_for`.
    pub(crate) fn remember_verified(
        &self,
        lp: &LoginProfile,
        fingerprint: String,
        valid_for: Duration,
    ) {
        locked(&self.verified).insert(
            ObjectRef::from_obj(lp),
            Verified {
                valid_until: Instant::now() + valid_for,
                generation: lp.metadata.generation,
                fingerprint,
            },
        );
    }

    /// IAM answered the create attempt of `lp` marked at `at`.
    pub(crate) fn create_answered(&self, lp: &LoginProfile, at: DateTime<Utc>) {
        locked(&self.answered_creates).insert(ObjectRef::from_obj(lp), at);
    }

    /// Whether IAM answered the create attempt of `lp` marked at `at`.
    pub(crate) fn was_create_answered(&self, lp: &LoginProfile, at: DateTime<Utc>) -> bool {
        locked(&self.answered_creates).get(&ObjectRef::from_obj(lp)) == Some(&at)
    }

    /// `lp` is gone: forget it.
    pub(crate) fn forget(&self, lp: &LoginProfile) {
        let object = ObjectRef::from_obj(lp);
        locked(&self.failures).remove(&object);
        locked(&self.verified).remove(&object);
        locked(&self.answered_creates).remove(&object);
    }

    /// Forgets the objects `exists` says are gone (deleted without a
    /// finalizer run, or no longer watched).
    pub(crate) fn retain(&self, exists: impl Fn(&Object) -> bool) {
        locked(&self.verified).retain(|object, _| exists(object));
        locked(&self.failures).retain(|object, _| exists(object));
        locked(&self.answered_creates).retain(|object, _| exists(object));
    }
}

/// Objects a trigger said changed (a Secret, a new generation, an
/// admission rule, a freed IAM user) that have not been reconciled yet.
/// The queue serves whatever is due first, and overdue drift checks are due
/// before a change that just came: with more checks due than the workers
/// can make, a change would wait behind all of them. So while any change
/// waits, converged objects put their drift checks off before reading
/// anything. A mark is forgotten after `MARK_LIFETIME` (an object deleted
/// before its reconcile, say), so drift checks are never held off for long.
pub(crate) struct PendingChanges<K> {
    marked: Mutex<HashMap<K, Instant>>,
}

const MARK_LIFETIME: Duration = Duration::from_secs(30);

impl<K: Hash + Eq> Default for PendingChanges<K> {
    fn default() -> Self {
        Self {
            marked: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq> PendingChanges<K> {
    pub(crate) fn mark(&self, objects: impl IntoIterator<Item = K>) {
        let now = Instant::now();
        let mut marked = self.marked.lock().unwrap_or_else(PoisonError::into_inner);
        marked.extend(objects.into_iter().map(|object| (object, now)));
    }

    /// Takes `object`'s mark off: true if it had one.
    pub(crate) fn take(&self, object: &K) -> bool {
        let mut marked = self.marked.lock().unwrap_or_else(PoisonError::into_inner);
        marked.remove(object).is_some()
    }

    /// Whether a change waits (forgetting marks older than their lifetime).
    pub(crate) fn any(&self) -> bool {
        let mut marked = self.marked.lock().unwrap_or_else(PoisonError::into_inner);
        marked.retain(|_, at| at.elapsed() < MARK_LIFETIME);
        !marked.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_pending_until_its_reconcile_takes_the_mark() {
        let pending = PendingChanges::default();
        assert!(!pending.any());
        pending.mark(["a", "b"]);
        assert!(pending.any());
        assert!(pending.take(&"a"));
        assert!(!pending.take(&"a"), "taken once");
        assert!(pending.any(), "b still waits");
        assert!(pending.take(&"b"));
        assert!(!pending.any());
    }

    fn lp(generation: i64) -> LoginProfile {
        let spec = serde_json::from_value(serde_json::json!({"passwordSecretRef": {"name": "s"}}))
            .unwrap();
        let mut lp = LoginProfile::new("bob", spec);
        lp.metadata.namespace = Some("ns".into());
        lp.metadata.generation = Some(generation);
        lp
    }

    #[test]
    fn remembers_per_object_until_it_changes_or_goes() {
        let memory = Memory::default();
        let bob = lp(1);
        assert_eq!(memory.count_failure(&bob), 1);
        assert_eq!(memory.count_failure(&bob), 2);
        memory.clear_failures(&bob);
        assert_eq!(memory.count_failure(&bob), 1, "counted again from one");

        memory.remember_verified(&bob, "fp1".into(), Duration::from_secs(60));
        assert!(memory.recently_verified(&bob, "fp1"));
        assert!(!memory.recently_verified(&bob, "fp2"), "another password");
        assert!(
            !memory.recently_verified(&lp(2), "fp1"),
            "another generation"
        );
        memory.remember_verified(&bob, "fp1".into(), Duration::ZERO);
        assert!(!memory.recently_verified(&bob, "fp1"), "expired");
        assert!(memory.knows(&bob));

        let marked = Utc::now();
        memory.create_answered(&bob, marked);
        assert!(memory.was_create_answered(&bob, marked));
        assert!(
            !memory.was_create_answered(&bob, marked + chrono::Duration::seconds(1)),
            "another attempt"
        );

        memory.forget(&bob);
        assert!(!memory.knows(&bob));
        assert!(!memory.was_create_answered(&bob, marked));
        assert_eq!(memory.count_failure(&bob), 1);
        memory.retain(|_| false);
        assert_eq!(memory.count_failure(&bob), 1, "forgotten again");
    }
}
