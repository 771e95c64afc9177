//! IAMAccounts and Namespaces as the admission rules see them: their caches
//! (filled before a LoginProfile acts, so a change of either triggers the
//! LoginProfiles it concerns only after the cache shows it), and what of
//! each the rules read.

use crate::api::conditions::Outcome;
use crate::api::iam_account::IAMAccount;
use crate::api::login_profile::LoginProfile;
use crate::rules::admission;
use crate::rules::admission::NamespaceView;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::Store;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

/// The caches the admission rules read.
pub(crate) struct TenancyStores {
    pub(crate) accounts: Store<IAMAccount>,
    pub(crate) namespaces: Store<PartialObjectMeta<Namespace>>,
}

impl TenancyStores {
    /// Resolves once both caches hold their first listing: before that, a
    /// missing IAMAccount or label would refuse what is admitted.
    pub(crate) async fn wait_until_ready(&self) {
        // The readiness signal wakes only its latest waiter, and every
        // reconcile may wait here; so ask again every 100 ms.
        while tokio::time::timeout(Duration::from_millis(100), self.accounts.wait_until_ready())
            .await
            .is_err()
        {}
        while tokio::time::timeout(
            Duration::from_millis(100),
            self.namespaces.wait_until_ready(),
        )
        .await
        .is_err()
        {}
    }

    pub(crate) fn account(&self, name: &str) -> Option<Arc<IAMAccount>> {
        self.accounts.get(&ObjectRef::new(name))
    }

    /// [`admission::admit`] with the LoginProfile's namespace from the cache.
    pub(crate) fn admit(
        &self,
        lp: &LoginProfile,
        account: Option<&IAMAccount>,
    ) -> Result<String, Outcome> {
        let name = lp.namespace().unwrap_or_default();
        let namespace = self.namespaces.get(&ObjectRef::new(&name));
        admission::admit(
            lp,
            account,
            &NamespaceView {
                name: &name,
                labels: namespace.as_ref().map(|n| n.labels()),
            },
        )
    }
}

/// What the admission rules read of an IAMAccount: its spec (generation)
/// and whether it is verified, in which account. A change of anything else
/// (the count of LoginProfiles, the wording of a failure) triggers nothing.
pub(crate) fn admission_relevant(account: &IAMAccount) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    account.metadata.generation.hash(&mut hasher);
    account.verified_account_id().hash(&mut hasher);
    hasher.finish()
}

/// What the admission rules read of a Namespace: its labels.
pub(crate) fn namespace_labels(namespace: &PartialObjectMeta<Namespace>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    namespace.labels().hash(&mut hasher);
    hasher.finish()
}
