//! Which generation of each LoginProfile the watches last passed on: a new
//! object or a new generation (a spec change, or deletion, which the API
//! server counts as one) triggers a reconcile; a write that keeps the
//! generation (the operator's own status and finalizer patches) does not.
//!
//! kube-runtime's generation predicate does the same but keeps the name,
//! namespace and uid of every object as strings; this keeps a 64-bit hash of
//! the uid and the generation, 16 bytes an object. Two uids sharing a hash
//! (about one chance in 10^11 among 20,000 objects) would make one object's
//! creation look like the other's unchanged generation until its next change
//! or resync.

use crate::api::login_profile::LoginProfile;

use std::{
    collections::{HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Mutex, MutexGuard, PoisonError},
};

/// How an object's generation compares with the last one passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Its uid was not seen before.
    New,
    /// A new generation (or none to compare: always passed on).
    Changed,
    /// The generation last passed on.
    Same,
}

#[derive(Default)]
pub(crate) struct Generations {
    by_uid: Mutex<HashMap<u64, i64>>,
}

/// The key an object is kept under: a hash of its uid.
pub(crate) fn uid_key(lp: &LoginProfile) -> u64 {
    let mut hasher = DefaultHasher::new();
    lp.metadata.uid.hash(&mut hasher);
    hasher.finish()
}

impl Generations {
    fn locked(&self) -> MutexGuard<'_, HashMap<u64, i64>> {
        self.by_uid.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `lp`'s generation; says how it compares with the last one.
    pub(crate) fn saw(&self, lp: &LoginProfile) -> Seen {
        let Some(generation) = lp.metadata.generation else {
            return Seen::Changed;
        };
        match self.locked().insert(uid_key(lp), generation) {
            None => Seen::New,
            Some(last) if last == generation => Seen::Same,
            Some(_) => Seen::Changed,
        }
    }

    /// `lp` was deleted.
    pub(crate) fn forget(&self, lp: &LoginProfile) {
        self.locked().remove(&uid_key(lp));
    }

    /// Keeps only the objects whose [`uid_key`] is in `cached` (a deletion
    /// missed while a watch relisted leaves no event to forget it by).
    pub(crate) fn retain(&self, cached: &HashSet<u64>) {
        let mut by_uid = self.locked();
        by_uid.retain(|uid, _| cached.contains(uid));
        by_uid.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(uid: &str, generation: i64) -> LoginProfile {
        let spec = serde_json::from_value(serde_json::json!({"passwordSecretRef": {"name": "s"}}))
            .unwrap();
        let mut lp = LoginProfile::new("bob", spec);
        lp.metadata.uid = Some(uid.into());
        lp.metadata.generation = Some(generation);
        lp
    }

    #[test]
    fn only_a_new_object_or_a_new_generation_passes() {
        let generations = Generations::default();
        assert_eq!(generations.saw(&lp("u1", 1)), Seen::New);
        assert_eq!(generations.saw(&lp("u1", 1)), Seen::Same, "a status write");
        assert_eq!(generations.saw(&lp("u1", 2)), Seen::Changed);
        assert_eq!(
            generations.saw(&lp("u2", 2)),
            Seen::New,
            "recreated under the same name: a new uid"
        );
        generations.forget(&lp("u1", 2));
        assert_eq!(generations.saw(&lp("u1", 2)), Seen::New);
        generations.retain(&HashSet::from([uid_key(&lp("u2", 0))]));
        assert_eq!(
            generations.saw(&lp("u1", 2)),
            Seen::New,
            "not cached: forgotten"
        );
        assert_eq!(generations.saw(&lp("u2", 2)), Seen::Same, "cached: kept");
    }
}
