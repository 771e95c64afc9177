//! The reconciler's memory of each object, and nothing else: consecutive
//! failures (for backoff), what IAM last confirmed (so a trigger that changes
//! nothing costs no IAM call), which create attempt IAM answered (so its
//! retry need not wait for the attempt's window), what IAM's events said of
//! the password (a person's ChangePassword, someone else's
//! UpdateLoginProfile). Forgotten when the object goes; a process that lost
//! it (a restart, a new leader) only waits longer.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use kube::runtime::reflector::ObjectRef;

use crate::api::login_profile::LoginProfile;

/// A LoginProfile as the operator's own maps key it.
pub(crate) type Object = ObjectRef<LoginProfile>;

/// `lp`'s key: its namespace and name only. Keys compare by those alone, so
/// leaving out the uid and resourceVersion a cache key carries finds the
/// same entries and keeps two fewer strings per object in every map.
pub(crate) fn object_key(lp: &LoginProfile) -> Object {
    let name = lp.metadata.name.as_deref().unwrap_or_default();
    match lp.metadata.namespace.as_deref() {
        Some(namespace) => ObjectRef::new(name).within(namespace),
        None => ObjectRef::new(name),
    }
}

#[derive(Default)]
pub(crate) struct Memory {
    /// What is remembered per object, in one entry (one key per object,
    /// whatever it remembers); an entry that remembers nothing is dropped.
    objects: Mutex<HashMap<Object, Remembered>>,
    /// Consecutive transient failures per RootLoginProfile (by name; they
    /// are cluster-scoped).
    root_failures: Mutex<HashMap<String, u32>>,
}

#[derive(Default)]
struct Remembered {
    /// Consecutive transient failures.
    failures: u32,
    /// What IAM last confirmed, and until when that holds.
    verified: Option<Verified>,
    /// The mark time of the latest create attempt that IAM answered (with
    /// anything, a 5xx included): that request is over, and nothing of it
    /// can land after the answer.
    answered_create: Option<DateTime<Utc>>,
    /// When IAM's events last reported the person's own ChangePassword.
    password_changed: Option<DateTime<Utc>>,
    /// When IAM's events last reported an UpdateLoginProfile of the user
    /// that was not the operator's (whether it set a password, CloudTrail
    /// does not say).
    updated_outside: Option<DateTime<Utc>>,
}

impl Remembered {
    fn is_empty(&self) -> bool {
        self.failures == 0
            && self.verified.is_none()
            && self.answered_create.is_none()
            && self.password_changed.is_none()
            && self.updated_outside.is_none()
    }
}

/// IAM holds the source's password: confirmed by IAM, or trusted from status
/// at start. Until `valid_until`, a trigger that changes nothing costs no
/// IAM call.
struct Verified {
    valid_until: Instant,
    generation: Option<i64>,
    fingerprint: Box<str>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Memory {
    /// Reads what is remembered of `lp` (nothing: the default).
    fn read<T>(&self, lp: &LoginProfile, read: impl FnOnce(&Remembered) -> T) -> T {
        let objects = locked(&self.objects);
        match objects.get(&object_key(lp)) {
            Some(remembered) => read(remembered),
            None => read(&Remembered::default()),
        }
    }

    /// Changes what is remembered of `lp`, dropping the entry if it ends empty.
    fn change<T>(&self, lp: &LoginProfile, change: impl FnOnce(&mut Remembered) -> T) -> T {
        let mut objects = locked(&self.objects);
        let key = object_key(lp);
        let remembered = objects.entry(key.clone()).or_default();
        let result = change(remembered);
        if remembered.is_empty() {
            objects.remove(&key);
        }
        result
    }

    /// One more consecutive failure of `lp`; returns how many there were.
    pub(crate) fn count_failure(&self, lp: &LoginProfile) -> u32 {
        self.change(lp, |remembered| {
            remembered.failures = remembered.failures.saturating_add(1);
            remembered.failures
        })
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
        let mut objects = locked(&self.objects);
        let key = object_key(lp);
        if let Some(remembered) = objects.get_mut(&key) {
            remembered.failures = 0;
            if remembered.is_empty() {
                objects.remove(&key);
            }
        }
    }

    /// True when nothing can have changed since IAM last confirmed this
    /// object (less than half a resync period ago), or since status was
    /// trusted at start: same generation, same password. Read from memory,
    /// not from the (maybe stale) cached status.
    pub(crate) fn recently_verified(&self, lp: &LoginProfile, fingerprint: &str) -> bool {
        self.read(lp, |remembered| {
            remembered.verified.as_ref().is_some_and(|verified| {
                verified.generation == lp.metadata.generation
                    && *verified.fingerprint == *fingerprint
                    && Instant::now() < verified.valid_until
            })
        })
    }

    /// IAM changed for `lp` since it was last confirmed (an IAM event about
    /// its user): the next reconcile asks IAM, however recent the last look.
    /// What was confirmed stays known, expired (a forgotten object would be
    /// trusted on first sight, without asking).
    pub(crate) fn distrust(&self, lp: &LoginProfile) {
        self.change(lp, |remembered| match &mut remembered.verified {
            Some(verified) => verified.valid_until = Instant::now(),
            None => {
                remembered.verified = Some(Verified {
                    valid_until: Instant::now(),
                    generation: lp.metadata.generation,
                    fingerprint: "".into(),
                })
            }
        });
    }

    /// Whether anything was ever confirmed for `lp` since this process started.
    pub(crate) fn knows(&self, lp: &LoginProfile) -> bool {
        self.read(lp, |remembered| remembered.verified.is_some())
    }

    /// IAM holds `fingerprint` for `lp`, trusted for `valid_for`.
    pub(crate) fn remember_verified(
        &self,
        lp: &LoginProfile,
        fingerprint: String,
        valid_for: Duration,
    ) {
        let verified = Verified {
            valid_until: Instant::now() + valid_for,
            generation: lp.metadata.generation,
            fingerprint: fingerprint.into_boxed_str(),
        };
        self.change(lp, |remembered| remembered.verified = Some(verified));
    }

    /// IAM's events reported that `lp`'s user changed the password at `at`
    /// (ChangePassword): status records it, and under `Enforce` the
    /// Secret's password is sent again without waiting for a credential
    /// report, which IAM makes at most every 4 hours. Events arrive in any
    /// order: the latest change is kept.
    pub(crate) fn password_changed(&self, lp: &LoginProfile, at: DateTime<Utc>) {
        self.change(lp, |remembered| {
            remembered.password_changed = remembered.password_changed.max(Some(at));
        });
    }

    /// When IAM's events reported a ChangePassword of `lp`'s user after
    /// `applied` (when the operator last sent the password; `None`: any).
    pub(crate) fn password_changed_after(
        &self,
        lp: &LoginProfile,
        applied: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        self.read(lp, |remembered| {
            remembered
                .password_changed
                .filter(|at| applied.is_none_or(|applied| *at > applied))
        })
    }

    /// IAM's events reported, at `at`, an UpdateLoginProfile of `lp`'s user
    /// that the operator did not make (the latest is kept).
    pub(crate) fn updated_outside(&self, lp: &LoginProfile, at: DateTime<Utc>) {
        self.change(lp, |remembered| {
            remembered.updated_outside = remembered.updated_outside.max(Some(at));
        });
    }

    /// Whether IAM's events reported an UpdateLoginProfile of `lp`'s user
    /// that the operator did not make, after `applied`.
    pub(crate) fn updated_outside_after(&self, lp: &LoginProfile, applied: DateTime<Utc>) -> bool {
        self.read(lp, |remembered| {
            remembered.updated_outside.is_some_and(|at| at > applied)
        })
    }

    /// IAM answered the create attempt of `lp` marked at `at`.
    pub(crate) fn create_answered(&self, lp: &LoginProfile, at: DateTime<Utc>) {
        self.change(lp, |remembered| remembered.answered_create = Some(at));
    }

    /// Whether IAM answered the create attempt of `lp` marked at `at`.
    pub(crate) fn was_create_answered(&self, lp: &LoginProfile, at: DateTime<Utc>) -> bool {
        self.read(lp, |remembered| remembered.answered_create == Some(at))
    }

    /// `lp` is gone: forget it.
    pub(crate) fn forget(&self, lp: &LoginProfile) {
        locked(&self.objects).remove(&object_key(lp));
    }

    /// Forgets the objects `exists` says are gone (deleted without a
    /// finalizer run, or no longer watched).
    pub(crate) fn retain(&self, exists: impl Fn(&Object) -> bool) {
        locked(&self.objects).retain(|object, _| exists(object));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

        let later = marked + chrono::Duration::minutes(5);
        memory.password_changed(&bob, later);
        memory.password_changed(&bob, marked);
        assert_eq!(
            memory.password_changed_after(&bob, None),
            Some(later),
            "an older event arriving late changes nothing"
        );
        memory.updated_outside(&bob, later);
        memory.updated_outside(&bob, marked);
        assert!(memory.updated_outside_after(&bob, marked));

        memory.forget(&bob);
        assert!(!memory.knows(&bob));
        assert!(!memory.was_create_answered(&bob, marked));
        assert_eq!(memory.count_failure(&bob), 1);
        memory.retain(|_| false);
        assert_eq!(memory.count_failure(&bob), 1, "forgotten again");
    }
}
