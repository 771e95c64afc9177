//! IAMAccounts and Namespaces as the admission rules see them: their caches
//! (filled before a LoginProfile acts, so a change of either triggers the
//! LoginProfiles it concerns only after the cache shows it), and the
//! IAMAccount reconciler: a finalizer while LoginProfiles use it, and a
//! status that says whether its credentials work and in which AWS account.

use super::runtime::context::Context;
use super::runtime::context::Error;
use super::runtime::context::FIELD_MANAGER;
use crate::api::conditions;
use crate::api::conditions::Outcome;
use crate::api::login_profile::LoginProfile;
use crate::api::reason::Reason;
use crate::aws::iam::Iam;
use crate::ops::events::Note;
use crate::rules::admission;
use futures::Stream;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::Client;
use kube::Resource;
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::api::Patch;
use kube::api::PatchParams;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::Store;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use crate::{
    api::iam_account::{ACCOUNT_FINALIZER, IAMAccount, IAMAccountStatus},
    rules::admission::NamespaceView,
};

/// The caches the admission rules read.
pub(crate) struct TenancyStores {
    pub(super) accounts: Store<IAMAccount>,
    pub(super) namespaces: Store<PartialObjectMeta<Namespace>>,
}

impl TenancyStores {
    /// Resolves once both caches hold their first listing: before that, a
    /// missing IAMAccount or label would refuse what is admitted.
    pub(super) async fn wait_until_ready(&self) {
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

    pub(super) fn account(&self, name: &str) -> Option<Arc<IAMAccount>> {
        self.accounts.get(&ObjectRef::new(name))
    }

    /// [`admission::admit`] with the LoginProfile's namespace from the cache.
    pub(super) fn admit(
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
pub(super) fn admission_relevant(account: &IAMAccount) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    account.metadata.generation.hash(&mut hasher);
    account.verified_account_id().hash(&mut hasher);
    hasher.finish()
}

/// What the admission rules read of a Namespace: its labels.
pub(super) fn namespace_labels(namespace: &PartialObjectMeta<Namespace>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    namespace.labels().hash(&mut hasher);
    hasher.finish()
}

/// How many objects pass through [`changed_by`] (at least) between two
/// prunings of what it remembers.
const PRUNE_EVERY: usize = 1024;

/// Passes an object on only when `key` of it changed since it last passed.
/// An object seen for the first time passes only if it was created after
/// `new_after` (never with `None`): the objects there were at start are
/// reconciled by the first listing anyway. `cache` is the objects' cache:
/// what it no longer holds is forgotten.
pub(super) fn changed_by<K>(
    objects: impl Stream<Item = Arc<K>> + Send + 'static,
    key: fn(&K) -> u64,
    new_after: Option<k8s_openapi::jiff::Timestamp>,
    cache: Store<K>,
) -> impl Stream<Item = Arc<K>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut seen_since_pruned = 0usize;
    objects.filter(move |object| {
        let now = key(object);
        // Objects that are gone would stay here forever (namespaces come
        // and go): now and then, keep only what the cache still holds.
        seen_since_pruned += 1;
        if seen_since_pruned > PRUNE_EVERY.max(last.len()) {
            seen_since_pruned = 0;
            last.retain(|name, _| cache.get(&ObjectRef::new(name)).is_some());
        }
        let passes = match last.insert(object.meta().name.clone().unwrap_or_default(), now) {
            Some(before) => before != now,
            None => new_after.is_some_and(|after| {
                object
                    .meta()
                    .creation_timestamp
                    .as_ref()
                    .is_none_or(|created| created.0 > after)
            }),
        };
        futures::future::ready(passes)
    })
}

/// How often a verified IAMAccount is looked at again without a change
/// (LoginProfiles coming and going trigger it at once).
const COUNT_REFRESH: Duration = Duration::from_secs(60);
/// How often an IAMAccount being deleted counts the LoginProfiles that
/// still need it, cluster-wide.
const DELETION_RECOUNT: Duration = Duration::from_secs(30);
/// How soon failing credentials are tried again.
const RETRY_CREDENTIALS: Duration = Duration::from_secs(30);

/// Keeps an IAMAccount's finalizer and status: Ready when STS
/// GetCallerIdentity answers with its credentials (in the account its role
/// names), the account id, and how many LoginProfiles use it. Being
/// deleted, it is kept while any LoginProfile it served remains.
pub(super) async fn reconcile_account<I: Iam>(
    account: Arc<IAMAccount>,
    ctx: Arc<Context<I>>,
) -> Result<Action, Error> {
    let name = account.name_any();
    let api: Api<IAMAccount> = Api::all(ctx.client.clone());
    let deleting = account.metadata.deletion_timestamp.is_some();
    let in_use = match deleting {
        true => users_in_cluster(&ctx.client, &name).await?,
        false => 0,
    };
    if deleting && in_use == 0 {
        remove_finalizer(&api, &account).await?;
        ctx.accounts.forget(&name).await;
        ctx.metrics.set_account_ready(&name, None);
        return Ok(Action::await_change());
    }
    if !deleting && !account.finalizers().iter().any(|f| f == ACCOUNT_FINALIZER) {
        let mut finalizers = account.finalizers().to_vec();
        finalizers.push(ACCOUNT_FINALIZER.into());
        let patch = serde_json::json!({"metadata": {
            "resourceVersion": account.resource_version(),
            "finalizers": finalizers,
        }});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::Kube)?;
    }
    let users = ctx
        .cached_profiles()
        .filter(|lp| lp.account_name() == name)
        .count();
    let connected = ctx.accounts.get(&account).await;
    let (account_id, outcome, next) = match connected
        .caller_account(ctx.settings.resync_period)
        .await
    {
        Ok(id) if account.role_account_id().is_some_and(|named| named != id) => (
            None,
            Outcome::new(
                Reason::AssumeRoleFailed,
                format!(
                    "the credentials act in AWS account {id}, not in {} that spec.roleArn names",
                    account.role_account_id().unwrap_or_default()
                ),
            ),
            RETRY_CREDENTIALS,
        ),
        Ok(id) => (
            Some(id.clone()),
            Outcome::new(
                Reason::Verified,
                format!("the credentials work in AWS account {id}"),
            ),
            COUNT_REFRESH,
        ),
        Err(error) => (
            None,
            Outcome::new(
                Reason::AssumeRoleFailed,
                match &account.spec.role_arn {
                    Some(role) => format!(
                        "cannot act as role {role}: check its trust policy (it must trust the operator's \
                             identity, with spec.externalId if it asks for one) ({error})"
                    ),
                    None => format!("the operator's own AWS credentials do not work ({error})"),
                },
            ),
            RETRY_CREDENTIALS,
        ),
    };
    // Deletion counts as a new generation: status keeps up with it, since
    // the LoginProfiles still act (and delete their profiles) through it.
    let verified = account_id.is_some();
    write_status(&api, &account, account_id, users, &outcome).await?;
    ctx.metrics.set_account_ready(&name, Some(verified));
    if deleting {
        let note = Note {
            type_: EventType::Normal,
            reason: Reason::InUse.as_str(),
            action: "Delete",
            note: format!(
                "kept while {in_use} LoginProfile(s) name this IAMAccount; it goes once they are deleted"
            ),
        };
        if let Err(error) = ctx.events.publish(&account.object_ref(&()), note).await {
            tracing::warn!(%error, "could not publish an event");
        }
        // The deletions of watched LoginProfiles trigger it at once; this
        // cluster-wide count is for those no operator here watches.
        return Ok(Action::requeue(DELETION_RECOUNT));
    }
    Ok(Action::requeue(next))
}

pub(super) fn account_error_policy<I: Iam>(
    account: Arc<IAMAccount>,
    error: &Error,
    _ctx: Arc<Context<I>>,
) -> Action {
    tracing::warn!(iam_account = %account.name_any(), %error, "IAMAccount reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// LoginProfiles in the whole cluster (not only the watched namespaces)
/// that this IAMAccount served (status records the AWS account it acted
/// in, which only the operator writes): they may still need it to delete
/// their profiles. One that merely names it, never admitted, holds nothing.
/// Read once per try while it is being deleted.
async fn users_in_cluster(client: &Client, account: &str) -> Result<usize, Error> {
    let api: Api<LoginProfile> = Api::all(client.clone());
    let mut params =
        kube::api::ListParams::default().limit(super::runtime::watch::PROFILES_PER_PAGE);
    let mut users = 0;
    loop {
        let page = api.list(&params).await.map_err(Error::Kube)?;
        users += page
            .items
            .iter()
            .filter(|lp| lp.account_name() == account)
            .filter(|lp| lp.status.as_ref().is_some_and(|s| s.account_id.is_some()))
            .count();
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(users),
        }
    }
}

async fn remove_finalizer(api: &Api<IAMAccount>, account: &IAMAccount) -> Result<(), Error> {
    let finalizers: Vec<&String> = account
        .finalizers()
        .iter()
        .filter(|f| *f != ACCOUNT_FINALIZER)
        .collect();
    let patch = serde_json::json!({"metadata": {
        "resourceVersion": account.resource_version(),
        "finalizers": finalizers,
    }});
    api.patch(
        &account.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(())
}

/// One server-side apply of the status, when it changed.
async fn write_status(
    api: &Api<IAMAccount>,
    account: &IAMAccount,
    account_id: Option<String>,
    users: usize,
    outcome: &Outcome,
) -> Result<(), Error> {
    let previous = account.status.clone().unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let next = IAMAccountStatus {
        observed_generation: account.metadata.generation,
        account_id: account_id.or_else(|| {
            // Keep the last verified id while the credentials fail: it is
            // where the LoginProfiles' profiles live.
            previous.account_id.clone()
        }),
        login_profiles: Some(u32::try_from(users).unwrap_or(u32::MAX)),
        conditions: conditions::conditions(
            &previous.conditions,
            outcome,
            account.metadata.generation,
            &now,
        ),
    };
    // conditions::conditions keeps each unchanged condition as it was, so an
    // unchanged status compares equal.
    if previous == next {
        return Ok(());
    }
    let patch = serde_json::json!({
        "apiVersion": IAMAccount::api_version(&()),
        "kind": IAMAccount::kind(&()),
        "metadata": {"resourceVersion": account.resource_version()},
        "status": next,
    });
    api.patch_status(
        &account.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector;

    fn namespace(name: &str) -> Arc<PartialObjectMeta<Namespace>> {
        let mut meta = PartialObjectMeta::<Namespace>::default();
        meta.metadata.name = Some(name.to_string());
        Arc::new(meta)
    }

    #[test]
    fn what_the_cache_no_longer_holds_is_forgotten() {
        let (cache, _writer) = reflector::store::<PartialObjectMeta<Namespace>>();
        // Every object passes the first time it is seen; the cache holds
        // none of them (all deleted meanwhile).
        let seen: Vec<_> = std::iter::once(namespace("gone"))
            .chain((0..=PRUNE_EVERY).map(|i| namespace(&format!("ns-{i}"))))
            .chain(std::iter::once(namespace("gone")))
            .collect();
        let passed: Vec<String> = futures::executor::block_on(
            changed_by(
                futures::stream::iter(seen),
                namespace_labels,
                Some(k8s_openapi::jiff::Timestamp::MIN),
                cache,
            )
            .map(|ns| ns.name_any())
            .collect(),
        );
        assert_eq!(passed.len(), PRUNE_EVERY + 3, "each passes once");
        assert_eq!(
            passed.last().map(String::as_str),
            Some("gone"),
            "seen again after it was forgotten: new again"
        );
    }
}
