//! Who names which IAM user: an index from user name to the LoginProfiles
//! that name it, kept from the LoginProfile watches. Finding a user's other
//! claimants then costs as many lookups as there are claimants, not a scan
//! of every cached LoginProfile. An entry whose object the caches no longer
//! hold (a deletion missed while a watch relisted) is dropped when looked up.

use super::memory::{Object, object_key};
use crate::api::login_profile::{LoginProfile, iam_user_key};

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

#[derive(Default)]
pub(crate) struct ClaimIndex {
    // Keyed by the user as IAM tells users apart (without case). The user
    // name is immutable (spec.userName by CEL, or metadata.name), so an
    // object never moves between entries. A user has one claimant but for
    // a conflict, so a plain list: a set would cost a hash table per user.
    by_user: Mutex<HashMap<String, Vec<Object>>>,
}

impl ClaimIndex {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Object>>> {
        self.by_user.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `lp` was seen (listed, created or changed).
    pub(crate) fn add(&self, lp: &LoginProfile) {
        let object = object_key(lp);
        let mut entries = self.entries();
        let claimants = entries.entry(lp.user_key()).or_default();
        if !claimants.contains(&object) {
            claimants.push(object);
            claimants.shrink_to_fit();
        }
    }

    /// `lp` was deleted.
    pub(crate) fn remove(&self, lp: &LoginProfile) {
        let user = lp.user_key();
        let mut entries = self.entries();
        if let Some(claimants) = entries.get_mut(&user) {
            let object = object_key(lp);
            claimants.retain(|claimant| *claimant != object);
            if claimants.is_empty() {
                entries.remove(&user);
            }
        }
    }

    /// The LoginProfiles that name `user` (in any case), as `cached` finds
    /// them; entries it does not find are forgotten.
    pub(crate) fn claimants(
        &self,
        user: &str,
        cached: impl Fn(&Object) -> Option<Arc<LoginProfile>>,
    ) -> Vec<Arc<LoginProfile>> {
        let user = &iam_user_key(user);
        let mut entries = self.entries();
        let Some(claimants) = entries.get_mut(user) else {
            return Vec::new();
        };
        let mut found = Vec::with_capacity(claimants.len());
        claimants.retain(|object| match cached(object) {
            Some(lp) => {
                found.push(lp);
                true
            }
            None => false,
        });
        if claimants.is_empty() {
            entries.remove(user);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::ObjectRef;

    fn lp(namespace: &str, name: &str, user: &str) -> LoginProfile {
        let spec = serde_json::from_value(serde_json::json!({
            "userName": user, "passwordSecretRef": {"name": "s"}
        }))
        .unwrap();
        let mut lp = LoginProfile::new(name, spec);
        lp.metadata.namespace = Some(namespace.into());
        lp
    }

    #[test]
    fn finds_only_the_claimants_of_a_user_and_forgets_the_gone() {
        let index = ClaimIndex::default();
        // `Bob` and `bob` are one IAM user.
        let (a, b, other) = (
            lp("ns-a", "a", "bob"),
            lp("ns-b", "b", "Bob"),
            lp("ns-a", "c", "eve"),
        );
        for object in [&a, &b, &other, &a] {
            index.add(object);
        }
        assert_eq!(index.entries()["bob"].len(), 2, "each claimant once");
        let all: HashMap<ObjectRef<LoginProfile>, Arc<LoginProfile>> = [&a, &b, &other]
            .into_iter()
            .map(|object| (ObjectRef::from_obj(object), Arc::new(object.clone())))
            .collect();
        let mut names: Vec<String> = index
            .claimants("bob", |r| all.get(r).cloned())
            .iter()
            .map(|lp| lp.metadata.name.clone().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(index.claimants("BOB", |r| all.get(r).cloned()).len(), 2);

        index.remove(&a);
        assert_eq!(index.claimants("bob", |r| all.get(r).cloned()).len(), 1);
        // A deletion the watch never reported: dropped once the cache lacks it.
        assert!(index.claimants("bob", |_| None).is_empty());
        assert!(index.entries().get("bob").is_none());
        assert_eq!(index.claimants("eve", |r| all.get(r).cloned()).len(), 1);
    }
}
