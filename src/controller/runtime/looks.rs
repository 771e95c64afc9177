//! When each LoginProfile is looked at again if nothing changes first: its
//! next drift check, a retry after a failure (with [`backoff`]), a
//! deadline. The reconciler answers with an [`Action`] shaped like kube's,
//! but a timed look waits here, not in the controller's queue, and is handed
//! to the controller oldest first, one at a time ([`Looks::release`]).
//!
//! Why not the controller's own queue: kube-runtime holds what is due in a
//! hash set and, whenever a worker frees, takes the first in the set's order,
//! not the oldest. While more keeps falling due than the workers can take
//! (drift checks, each due again a period after it ran), an object placed
//! late in that order waits for as long as that lasts (seen: 1,567 of 20,000
//! LoginProfiles never reconciled in 45 minutes while the workers made drift
//! checks; and new LoginProfiles waiting over a minute behind a drift backlog
//! of 120). So the controller's queue is given at most one look at a time,
//! and none while a change waits there ([`Looks::changed`]) unless the look
//! is [`CHANGES_GO_FIRST_FOR`] overdue: a change waits only for the changes
//! before it and one look, and looks are taken in the order they fell due.
//! An entry here is also a fraction of the controller's: one shared
//! `namespace/name` string per object instead of two copies of a full
//! object reference.

use super::memory::Object;
use crate::api::login_profile::LoginProfile;

use std::{
    collections::{BTreeSet, HashMap},
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use kube::runtime::controller::Action as ControllerAction;
use tokio::sync::Notify;

/// What the LoginProfile reconciler answers: when to look at the object
/// again if nothing changes first (kube's `Action`, whose delay it cannot
/// read back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Action {
    look_again_in: Option<Duration>,
}

impl Action {
    /// Look again after `delay`.
    pub(crate) const fn requeue(delay: Duration) -> Self {
        Self {
            look_again_in: Some(delay),
        }
    }

    /// Look again only when something changes.
    pub(crate) const fn await_change() -> Self {
        Self {
            look_again_in: None,
        }
    }
}

/// How long a due look lets waiting changes go first: under a stream of
/// changes that never ends, looks (drift checks, retries) still go, one at
/// a time, this late. Also how long a change counts as waiting at most (one
/// that never starts: its object went before it did, say).
const CHANGES_GO_FIRST_FOR: Duration = Duration::from_secs(30);

/// How often a held look checks whether the changes before it started.
const CHANGES_RECHECKED_EVERY: Duration = Duration::from_secs(1);

/// The looks waiting for their time, the one released to the controller
/// that has not started yet, and the changes waiting in the controller's
/// queue.
#[derive(Default)]
pub(crate) struct Looks {
    queue: Mutex<Queue>,
    /// Wakes [`Looks::release`]'s caller: a look earlier than any before,
    /// the released one started, or the last waiting change started.
    wake: Notify,
}

#[derive(Default)]
struct Queue {
    /// Oldest first; a key appears once.
    by_time: BTreeSet<(Instant, Arc<str>)>,
    /// When each object's look falls due.
    by_object: HashMap<Arc<str>, Instant>,
    /// Released, not started.
    released: Option<Arc<str>>,
    /// Changes triggered and not started, by a hash of the object's key
    /// (a fleet applied at once marks every object: the peak should not
    /// hold every name again), with when they were triggered.
    changes: HashMap<u64, Instant>,
    /// When `changes` was last cleared of changes waiting longer than
    /// [`CHANGES_GO_FIRST_FOR`] (a pass over all of them: not per release).
    changes_pruned_at: Option<Instant>,
}

/// What [`Looks::release`] hands out.
pub(crate) struct Released {
    /// The object to reconcile now.
    pub(crate) due: Option<Object>,
    /// When to ask again; `None`: when [`Looks::woken`] resolves.
    pub(crate) next: Option<Instant>,
}

/// `namespace/name`: a name cannot hold a slash, so the key is unambiguous.
fn key_of(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}

fn hash_of(key: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

fn object_of(key: &str) -> Object {
    match key.split_once('/') {
        Some(("", _)) | None => Object::new(key.trim_start_matches('/')),
        Some((namespace, name)) => Object::new(name).within(namespace),
    }
}

impl Looks {
    fn locked(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `lp`'s next look, if `next` names one, and answers the
    /// controller: nothing to schedule on its side.
    pub(crate) fn after(&self, lp: &LoginProfile, next: Action) -> ControllerAction {
        if let Some(delay) = next.look_again_in {
            let name = lp.metadata.name.as_deref().unwrap_or_default();
            let key = key_of(lp.metadata.namespace.as_deref(), name);
            self.schedule(&key, Instant::now() + delay);
        }
        ControllerAction::await_change()
    }

    /// A look at `key` at `at`; of two, the earlier stands.
    fn schedule(&self, key: &str, at: Instant) {
        let mut queue = self.locked();
        let key: Arc<str> = match queue.by_object.get_key_value(key) {
            Some((_, &due)) if due <= at => return,
            Some((existing, &due)) => {
                let existing = existing.clone();
                queue.by_time.remove(&(due, existing.clone()));
                existing
            }
            None => Arc::from(key),
        };
        queue.by_object.insert(key.clone(), at);
        queue.by_time.insert((at, key.clone()));
        let first = queue.by_time.first().is_some_and(|(_, k)| *k == key);
        drop(queue);
        if first {
            self.wake.notify_one();
        }
    }

    /// A trigger put `objects` in the controller's queue as changed: no look
    /// is released until they start.
    pub(crate) fn changed<'a>(&self, objects: impl IntoIterator<Item = &'a Object>) {
        self.changed_at(objects, Instant::now());
    }

    fn changed_at<'a>(&self, objects: impl IntoIterator<Item = &'a Object>, now: Instant) {
        let mut queue = self.locked();
        for object in objects {
            let key = key_of(object.namespace.as_deref(), &object.name);
            queue.changes.insert(hash_of(&key), now);
        }
    }

    /// `object`'s reconcile began, or the object is gone: its look is no
    /// longer due, and neither it nor its change holds other looks back.
    pub(crate) fn cancel(&self, namespace: Option<&str>, name: &str) {
        let key = key_of(namespace, name);
        let mut queue = self.locked();
        if let Some((key, due)) = queue.by_object.remove_entry(key.as_str()) {
            queue.by_time.remove(&(due, key));
        }
        let mut freed = false;
        if queue.released.as_deref() == Some(key.as_str()) {
            queue.released = None;
            freed = true;
        }
        if queue.changes.remove(&hash_of(&key)).is_some() && queue.changes.is_empty() {
            queue.changes.shrink_to_fit();
            freed = true;
        }
        if queue.by_object.is_empty() {
            // A fleet's peak is not kept at rest.
            queue.by_object.shrink_to_fit();
        }
        drop(queue);
        if freed {
            self.wake.notify_one();
        }
    }

    /// Hands out the oldest look due at `now`, unless one released before
    /// has not started, or a change waits and the look is less than
    /// [`CHANGES_GO_FIRST_FOR`] overdue.
    pub(crate) fn release(&self, now: Instant) -> Released {
        let mut queue = self.locked();
        if queue
            .changes_pruned_at
            .is_none_or(|at| now.saturating_duration_since(at) >= CHANGES_RECHECKED_EVERY)
        {
            queue.changes.retain(|_, triggered| {
                now.saturating_duration_since(*triggered) < CHANGES_GO_FIRST_FOR
            });
            queue.changes_pruned_at = Some(now);
        }
        if queue.released.is_some() {
            return Released {
                due: None,
                next: None,
            };
        }
        let changes_wait = !queue.changes.is_empty();
        match queue.by_time.first() {
            Some((at, _)) if *at <= now && changes_wait && now < *at + CHANGES_GO_FIRST_FOR => {
                Released {
                    due: None,
                    next: Some((now + CHANGES_RECHECKED_EVERY).min(*at + CHANGES_GO_FIRST_FOR)),
                }
            }
            Some((at, _)) if *at <= now => {
                let (_, key) = queue.by_time.pop_first().expect("checked above");
                queue.by_object.remove(&key);
                let due = object_of(&key);
                queue.released = Some(key);
                Released {
                    due: Some(due),
                    next: None,
                }
            }
            first => Released {
                due: None,
                next: first.map(|(at, _)| *at),
            },
        }
    }

    /// Resolves when [`Looks::release`] may hand out more than it did.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Forgets looks of objects `exists` does not find (gone while their
    /// look was released, say, so no reconcile cancels it).
    pub(crate) fn retain(&self, exists: impl Fn(&Object) -> bool) {
        let mut queue = self.locked();
        let Queue {
            by_time,
            by_object,
            released,
            ..
        } = &mut *queue;
        by_object.retain(|key, _| exists(&object_of(key)));
        by_time.retain(|(_, key)| by_object.contains_key(key));
        if released
            .as_deref()
            .is_some_and(|key| !exists(&object_of(key)))
        {
            *released = None;
        }
        drop(queue);
        self.wake.notify_one();
    }
}

/// `min * 2^(attempts-1)`, capped at `max`, scaled by `jitter` (0.5..1.0).
pub(crate) fn backoff(attempts: u32, min: Duration, max: Duration, jitter: f64) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    min.saturating_mul(1 << exponent).min(max).mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> String {
        key_of(Some("ns"), name)
    }

    /// Releases and starts every look due at `now`, in order.
    fn run_due(looks: &Looks, now: Instant) -> Vec<String> {
        let mut started = Vec::new();
        while let Some(object) = looks.release(now).due {
            looks.cancel(object.namespace.as_deref(), &object.name);
            started.push(object.name);
        }
        started
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(backoff(1, min, max, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(2, min, max, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(5, min, max, 1.0), Duration::from_secs(16));
        assert_eq!(backoff(30, min, max, 1.0), max);
        assert_eq!(backoff(2, min, max, 0.5), Duration::from_secs(1));
    }

    #[test]
    fn looks_are_released_oldest_first_one_at_a_time() {
        let looks = Looks::default();
        let start = Instant::now();
        for (name, seconds) in [("c", 3), ("a", 1), ("d", 4), ("b", 2)] {
            looks.schedule(&key(name), start + Duration::from_secs(seconds));
        }
        let now = start + Duration::from_secs(10);
        let first = looks.release(now);
        let object = first.due.expect("a is due");
        assert_eq!(
            (object.namespace.as_deref(), object.name.as_str()),
            (Some("ns"), "a")
        );
        assert!(looks.release(now).due.is_none(), "a has not started");
        looks.cancel(Some("ns"), "a");
        assert_eq!(run_due(&looks, now), ["b", "c", "d"]);
        assert_eq!(looks.release(now).next, None, "nothing waits");
    }

    #[test]
    fn the_earlier_of_two_looks_stands_and_a_reconcile_cancels_it() {
        let looks = Looks::default();
        let start = Instant::now();
        looks.schedule(&key("a"), start + Duration::from_secs(5));
        looks.schedule(&key("a"), start + Duration::from_secs(9));
        assert_eq!(
            looks.release(start).next,
            Some(start + Duration::from_secs(5))
        );
        looks.schedule(&key("a"), start + Duration::from_secs(2));
        assert_eq!(
            looks.release(start).next,
            Some(start + Duration::from_secs(2))
        );
        looks.cancel(Some("ns"), "a");
        assert!(run_due(&looks, start + Duration::from_secs(60)).is_empty());
    }

    #[test]
    fn no_look_is_released_while_a_change_waits() {
        let looks = Looks::default();
        let start = Instant::now();
        looks.schedule(&key("drift"), start);
        looks.changed([&Object::new("edited").within("ns")]);
        let held = looks.release(start);
        assert!(held.due.is_none());
        assert_eq!(held.next, Some(start + CHANGES_RECHECKED_EVERY));
        looks.cancel(Some("ns"), "edited");
        assert_eq!(run_due(&looks, start), ["drift"]);

        looks.schedule(&key("drift"), start);
        looks.changed([&Object::new("never-starts").within("ns")]);
        assert!(looks.release(start).due.is_none());
        assert_eq!(
            run_due(&looks, Instant::now() + CHANGES_GO_FIRST_FOR),
            ["drift"],
            "a change that never starts holds looks back for a bounded time"
        );

        // Changes that keep coming hold a look back only so long.
        looks.schedule(&key("drift"), start);
        let mut now = start;
        let mut released_at = None;
        for i in 0..40 {
            looks.changed_at([&Object::new(&format!("edit-{i}")).within("ns")], now);
            if looks.release(now).due.is_some() {
                released_at = Some(now);
                break;
            }
            now += Duration::from_secs(1);
        }
        assert_eq!(released_at, Some(start + CHANGES_GO_FIRST_FOR));
    }

    #[test]
    fn a_late_look_is_not_starved_by_looks_that_keep_falling_due() {
        // Three looks fall due again as soon as they run, forever; one fell
        // due before them. Its name sorts last, so only its age puts it first.
        let looks = Looks::default();
        let start = Instant::now();
        looks.schedule(&key("zz-late"), start);
        let mut now = start;
        let mut taken = Vec::new();
        for _ in 0..50 {
            now += Duration::from_millis(10);
            for busy in ["a", "b", "c"] {
                looks.schedule(&key(busy), now);
            }
            if let Some(object) = looks.release(now).due {
                looks.cancel(object.namespace.as_deref(), &object.name);
                taken.push(object.name);
            }
        }
        assert_eq!(taken.first().map(String::as_str), Some("zz-late"));
        assert_eq!(taken.iter().filter(|n| *n == "zz-late").count(), 1);
    }

    #[test]
    fn looks_of_objects_that_are_gone_are_forgotten() {
        let looks = Looks::default();
        let start = Instant::now();
        looks.schedule(&key("gone"), start);
        looks.schedule(&key("kept"), start);
        assert_eq!(
            looks.release(start).due.map(|o| o.name).as_deref(),
            Some("gone")
        );
        looks.retain(|object| object.name == "kept");
        assert_eq!(
            run_due(&looks, start),
            ["kept"],
            "the look released for an object now gone no longer holds the next"
        );
    }
}
