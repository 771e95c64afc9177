//! What triggers a reconcile: LoginProfile changes (not our own status
//! writes), Secret changes mapped to the LoginProfiles that read them,
//! IAMAccount and Namespace-label changes mapped to the LoginProfiles whose
//! admission they decide, the deletion of a LoginProfile that claimed an IAM
//! user (the next claimant may take over), and the resync; one controller
//! per watched namespace, plus the IAMAccount controller, which also hears
//! of LoginProfiles that come and go (its count), and with
//! `--manage-root-login-profiles` the RootLoginProfile controller.

use super::context::Context;
use super::generations::{Seen, uid_key};
use super::memory::{Object, object_key};
use crate::api::iam_account::IAMAccount;
use crate::api::login_profile::LoginProfile;
use crate::api::root_login_profile::RootLoginProfile;
use crate::aws::iam::Iam;
use crate::controller::iam_account::TenancyStores;
use crate::controller::login_profile::error_policy;
use crate::controller::login_profile::reconcile;
use crate::controller::root_login_profile::{
    claiming, naming_iam_account, reconcile_root, root_error_policy,
};
use crate::rules::marks;
use futures::Stream;
use futures::StreamExt;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::select_all;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::Resource;
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::runtime::Controller;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Error as ControllerError;
use kube::runtime::predicates;
use kube::runtime::reflector;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::controller::iam_account::{
    account_error_policy, admission_relevant, changed_by, namespace_labels, reconcile_account,
};

/// The LoginProfiles in `store` that `keep` selects: the ones a change of
/// another object concerns.
fn matching(
    store: &Store<LoginProfile>,
    keep: impl Fn(&LoginProfile) -> bool,
) -> Vec<ObjectRef<LoginProfile>> {
    store
        .state()
        .iter()
        .filter(|lp| keep(lp))
        .map(|lp| ObjectRef::from_obj(&**lp))
        .collect()
}

/// One watch and one cache of `api`'s objects, and `listeners` streams that
/// each hear of every change (and of every object once the first listing is
/// complete) after the cache has it, as a copy of the object; the future
/// drives the watch.
///
/// Not kube-runtime's shared store subscription (5.0): it reads the object
/// from the cache when polled and, if the object is gone by then (a
/// Namespace deleted meanwhile), returns Pending without arranging a
/// wake-up, so its controller hears of no later change until something
/// else wakes it. Seen: a namespace relabelled while other namespaces were
/// being deleted was not admitted for over 30 s.
#[allow(clippy::type_complexity)]
fn fan_out<K>(
    api: Api<K>,
    listeners: usize,
) -> (
    Store<K>,
    Vec<mpsc::UnboundedReceiver<Arc<K>>>,
    impl Future<Output = ()> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    K: Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..listeners).map(|_| mpsc::unbounded()).unzip();
    let cache = store.clone();
    let watch = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .for_each(move |event| {
            let changed = match event {
                Ok(watcher::Event::Apply(object)) => vec![Arc::new(object)],
                Ok(watcher::Event::InitDone) => cache.state(),
                _ => Vec::new(),
            };
            for object in changed {
                for sender in &senders {
                    let _ = sender.unbounded_send(object.clone());
                }
            }
            futures::future::ready(())
        });
    (store, receivers, watch)
}

/// The LoginProfiles in `store` that read the given Secret.
fn referencing(
    store: &Store<LoginProfile>,
    namespace: Option<String>,
    secret_name: &str,
) -> Vec<ObjectRef<LoginProfile>> {
    matching(store, |lp| {
        lp.namespace() == namespace
            && lp
                .spec
                .password_secret_ref
                .as_ref()
                .is_some_and(|r| r.name == secret_name)
    })
}

/// Secrets that changed or went away. The first listing is skipped: at
/// start every LoginProfile is reconciled anyway, and reading each Secret
/// twice would double the start-up cost. Later relistings (after a watch
/// expired) pass, since a change may hide in them.
fn secret_changes(
    api: Api<PartialObjectMeta<Secret>>,
) -> impl Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> {
    let mut first_listing = true;
    watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .filter_map(move |event| {
            let changed = match event {
                Ok(watcher::Event::Apply(secret) | watcher::Event::Delete(secret)) => {
                    Some(Ok(secret))
                }
                Ok(watcher::Event::InitApply(secret)) if !first_listing => Some(Ok(secret)),
                Ok(watcher::Event::InitDone) => {
                    first_listing = false;
                    None
                }
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
                Err(error) => Some(Err(error)),
            };
            futures::future::ready(changed)
        })
}

/// Drops what the reconciler never reads before an object enters the cache:
/// managedFields (one entry per writer: kubectl or a GitOps tool, the
/// finalizer, the status), labels and owner references (a GitOps tool's or
/// a chart's), and every annotation but the operator's own marks (kubectl's
/// last-applied copy of the whole object, a GitOps tool's, or up to 256 KB a
/// tenant chose to write), and of those the marks that are settled (they
/// read as absent). What a tenant writes there would otherwise be the
/// operator's memory, whether or not anything admits it. The operator's
/// writes are patches, so what the cache lacks is never written back.
fn forget_bookkeeping(lp: &mut LoginProfile) {
    let metadata = &mut lp.metadata;
    metadata.managed_fields = None;
    metadata.labels = None;
    metadata.owner_references = None;
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.retain(|key, _| key.starts_with(OPERATOR_ANNOTATIONS));
    }
    marks::forget_settled(lp);
}

/// How LoginProfiles are listed: in pages of [`PROFILES_PER_PAGE`], each
/// trimmed before the next is read, so the listing's peak follows a page,
/// not the whole set. Not `any_semantic()`: the API server answers a list
/// at resourceVersion 0 from its cache in one piece, ignoring the limit,
/// and a namespace editor's oversized objects would all be in memory at
/// once (at the CRD's bounds about 270 KB each).
fn profile_listing() -> watcher::Config {
    watcher::Config::default().page_size(PROFILES_PER_PAGE)
}

/// LoginProfiles per list page: at the CRD's bounds a page is about 13 MB
/// of JSON; 20,000 ordinary objects are 400 pages.
pub(crate) const PROFILES_PER_PAGE: u32 = 50;

/// The prefix of the only annotations the reconciler reads (rules/marks.rs).
const OPERATOR_ANNOTATIONS: &str = "iam.loginprofile.dev/";

/// Every minute, drops what is kept per object (backoff counts, the last
/// verification, the `profiles` gauge) for objects no cache holds any more:
/// deleted without a finalizer run, or outside the watched namespaces.
async fn forget_vanished<I: Iam>(ctx: Arc<Context<I>>, stores: Vec<Store<LoginProfile>>) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    every.tick().await; // the first tick is immediate: the caches may still be filling
    loop {
        every.tick().await;
        let exists = |object: &ObjectRef<LoginProfile>| {
            stores.iter().any(|store| store.get(object).is_some())
        };
        ctx.memory.retain(exists);
        ctx.looks.retain(exists);
        let cached: HashSet<u64> = stores
            .iter()
            .flat_map(|store| store.state())
            .map(|lp| uid_key(&lp))
            .collect();
        ctx.generations.retain(&cached);
        ctx.metrics.retain_profiles(|key| {
            key.split_once('/')
                .is_some_and(|(ns, name)| exists(&ObjectRef::new(name).within(ns)))
        });
    }
}

/// Records a LoginProfile a watch listed, saw created or saw changed; says
/// whether it is new or of a new generation (a change to reconcile, which
/// holds looks back until it starts).
fn saw_profile<I: Iam>(ctx: &Context<I>, lp: &LoginProfile) -> Seen {
    ctx.claims.add(lp);
    let seen = ctx.generations.saw(lp);
    if seen != Seen::Same {
        ctx.looks.changed([&object_key(lp)]);
    }
    seen
}

/// Hands each look that falls due (looks.rs) to the controller of its
/// namespace, when the looks allow.
async fn release_looks<I: Iam>(
    ctx: Arc<Context<I>>,
    controllers: HashMap<Option<String>, mpsc::UnboundedSender<Object>>,
) {
    loop {
        let released = ctx.looks.release(std::time::Instant::now());
        if let Some(object) = released.due {
            let controller = controllers
                .get(&object.namespace)
                .or_else(|| controllers.get(&None));
            if controller.is_none_or(|c| c.unbounded_send(object.clone()).is_err()) {
                ctx.looks.cancel(object.namespace.as_deref(), &object.name);
            }
        }
        match released.next {
            Some(at) => tokio::select! {
                () = tokio::time::sleep_until(at.into()) => {}
                () = ctx.looks.woken() => {}
            },
            None => ctx.looks.woken().await,
        }
    }
}

/// The RootLoginProfile controller over the objects `selector` matches: a
/// new generation triggers it, so does a change of the IAMAccount one names
/// and, for the next in line, the deletion of one claiming the same account.
fn root_controller_stream<I: Iam>(
    ctx: &Arc<Context<I>>,
    selector: &str,
    account_changes: impl Stream<Item = Arc<IAMAccount>> + Send + 'static,
    shutdown: futures::future::Shared<BoxFuture<'static, ()>>,
) -> (
    impl Stream<Item = ()> + Send + 'static,
    Store<RootLoginProfile>,
) {
    let mut config = watcher::Config::default();
    if !selector.is_empty() {
        config = config.labels(selector);
    }
    let (store, writer) = reflector::store();
    let _ = ctx.root_profiles.set(store.clone());
    let (gone_sender, gone) = mpsc::unbounded::<RootLoginProfile>();
    let forget = ctx.clone();
    let changes = watcher(Api::<RootLoginProfile>::all(ctx.client.clone()), config)
        .default_backoff()
        .reflect(writer)
        .inspect(move |event| {
            if let Ok(watcher::Event::Delete(root)) = event {
                forget.memory.clear_root_failures(&root.name_any());
                forget.metrics.set_root_ready(&root.name_any(), None);
                let _ = gone_sender.unbounded_send(root.clone());
            }
        })
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let (by_account, by_claim) = (ctx.clone(), ctx.clone());
    let next_in_line = gone
        .flat_map(move |root| futures::stream::iter(claiming(&by_claim, &root.spec.account_id)));
    let stream = Controller::for_stream(changes, store.clone())
        .watches_shared_stream(account_changes, move |account| {
            naming_iam_account(&by_account, &account.name_any())
        })
        .reconcile_on(next_in_line)
        .graceful_shutdown_on(shutdown)
        .run(reconcile_root, root_error_policy, ctx.clone())
        .map(|result| {
            if let Err(error) = result {
                tracing::debug!(%error, "RootLoginProfile controller event");
            }
        });
    (stream, store)
}

/// Starts one controller per watched namespace (or one for all) and the
/// IAMAccount controller; returns a stream of reconcile results plus a
/// future that resolves once every cache has synced.
pub fn run<I: Iam>(
    ctx: Arc<Context<I>>,
    shutdown: futures::future::Shared<BoxFuture<'static, ()>>,
) -> (impl Stream<Item = ()>, BoxFuture<'static, ()>) {
    let scopes: Vec<Option<String>> = if ctx.settings.namespaces.is_empty() {
        vec![None]
    } else {
        ctx.settings.namespaces.iter().cloned().map(Some).collect()
    };
    let started = k8s_openapi::jiff::Timestamp::now();
    // IAMAccounts and Namespaces (metadata only) are cached once for every
    // controller; each controller hears of a change after the cache has it.
    let root_controller = usize::from(ctx.settings.root_login_profiles.is_some());
    let (account_store, mut account_changes, account_watch) = fan_out(
        Api::<IAMAccount>::all(ctx.client.clone()),
        scopes.len() + 1 + root_controller,
    );
    let (namespace_store, mut namespace_changes, namespace_watch) = fan_out(
        Api::<PartialObjectMeta<Namespace>>::all(ctx.client.clone()),
        scopes.len(),
    );
    // A LoginProfile deleted in any scope may free its IAM user for one in
    // any other: each controller hears of every deletion.
    let (deleted_senders, deleted_receivers): (Vec<_>, Vec<_>) =
        scopes.iter().map(|_| mpsc::unbounded()).unzip();
    let deleted_senders = Arc::new(deleted_senders);
    // LoginProfiles that came or went, for the count of the IAMAccount they name.
    let (arrivals_and_departures, counted) = mpsc::unbounded::<LoginProfile>();
    let mut streams = Vec::new();
    let mut stores = Vec::new();
    let mut look_senders = HashMap::new();
    for (scope, deleted) in scopes.into_iter().zip(deleted_receivers) {
        let (profiles, secrets): (Api<LoginProfile>, Api<PartialObjectMeta<Secret>>) = match &scope
        {
            Some(ns) => (
                Api::namespaced(ctx.client.clone(), ns),
                Api::namespaced(ctx.client.clone(), ns),
            ),
            None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
        };
        // Status and metadata updates (our own patches, the finalizer this
        // operator adds while it acts) do not trigger a reconcile: only a new
        // generation does (a spec change, or deletion, which the API server
        // counts as one).
        let (store, writer) = reflector::store();
        let senders = deleted_senders.clone();
        let count_changes = arrivals_and_departures.clone();
        let index = ctx.clone();
        let profile_changes = watcher(profiles, profile_listing())
            .default_backoff()
            .modify(forget_bookkeeping)
            .reflect(writer)
            .filter_map(move |event| {
                let changed = match event {
                    Ok(watcher::Event::Delete(gone)) => {
                        index.claims.remove(&gone);
                        index.generations.forget(&gone);
                        index
                            .looks
                            .cancel(gone.metadata.namespace.as_deref(), &gone.name_any());
                        for sender in senders.iter() {
                            let _ = sender.unbounded_send(gone.clone());
                        }
                        let _ = count_changes.unbounded_send(gone);
                        None
                    }
                    Ok(watcher::Event::InitApply(lp)) => {
                        (saw_profile(&index, &lp) != Seen::Same).then_some(Ok(lp))
                    }
                    Ok(watcher::Event::Apply(lp)) => {
                        let seen = saw_profile(&index, &lp);
                        if seen == Seen::New {
                            let _ = count_changes.unbounded_send(lp.clone());
                        }
                        (seen != Seen::Same).then_some(Ok(lp))
                    }
                    Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
                    Err(error) => Some(Err(error)),
                };
                futures::future::ready(changed)
            });
        let (look_sender, looks_due) = mpsc::unbounded();
        look_senders.insert(scope.clone(), look_sender);
        let controller = Controller::for_stream(profile_changes, store.clone())
            .with_config(
                kube::runtime::controller::Config::default().concurrency(ctx.settings.concurrency),
            )
            .reconcile_on(looks_due);
        stores.push(store.clone());
        // Only Secret metadata is watched: a change of resourceVersion is the
        // trigger, and the value is read when a LoginProfile needs it, so the
        // operator never caches the data of every Secret in the cluster.
        let secret_changes = secret_changes(secrets);
        let (by_secret, by_account, by_namespace, by_claim) =
            (store.clone(), store.clone(), store.clone(), store.clone());
        // Every trigger below is a change: no look is released before it starts.
        let changes = |ctx: &Arc<Context<I>>| {
            let ctx = ctx.clone();
            move |objects: Vec<ObjectRef<LoginProfile>>| {
                ctx.looks.changed(&objects);
                objects
            }
        };
        let (secret_change, account_change, namespace_change, claim_change) =
            (changes(&ctx), changes(&ctx), changes(&ctx), changes(&ctx));
        let stream = controller
            .watches_stream(secret_changes, move |secret| {
                secret_change(referencing(
                    &by_secret,
                    secret.namespace(),
                    &secret.name_any(),
                ))
            })
            .watches_shared_stream(
                changed_by(
                    account_changes.pop().expect("one per controller"),
                    admission_relevant,
                    Some(started),
                    account_store.clone(),
                ),
                move |account| {
                    let name = account.name_any();
                    account_change(matching(&by_account, |lp| lp.account_name() == name))
                },
            )
            .watches_shared_stream(
                // A namespace created after the start is heard of once when
                // it appears (a namespace and its LoginProfiles applied
                // together: they may have been refused before the cache had
                // it), and again whenever its labels change.
                changed_by(
                    namespace_changes.pop().expect("one per controller"),
                    namespace_labels,
                    Some(started),
                    namespace_store.clone(),
                ),
                move |namespace| {
                    let name = namespace.name_any();
                    namespace_change(matching(&by_namespace, |lp| {
                        lp.namespace().as_ref() == Some(&name)
                    }))
                },
            )
            .watches_stream(deleted.map(Ok), {
                // Only the next in line may take the user over now; the
                // controller whose cache holds it is the one to wake it.
                let ctx = ctx.clone();
                move |gone| {
                    let next = ctx
                        .next_in_line(&gone)
                        .filter(|next| by_claim.get(next).is_some());
                    claim_change(next.into_iter().collect())
                }
            })
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile, error_policy, ctx.clone())
            .map({
                let ctx = ctx.clone();
                move |result| {
                    if let Err(error) = result {
                        if let ControllerError::ObjectNotFound(object) = &error {
                            // Released for a look, gone before it started.
                            ctx.looks.cancel(object.namespace.as_deref(), &object.name);
                        }
                        tracing::debug!(%error, "controller event");
                    }
                }
            });
        streams.push(stream.boxed());
    }
    tokio::spawn(release_looks(ctx.clone(), look_senders));
    // The IAMAccount controller: a new generation (spec change, deletion)
    // triggers it, and so does a LoginProfile naming it that came or went
    // (its count; at most one status write a second, however many come).
    let generation = |account: &IAMAccount| account.metadata.generation.unwrap_or_default() as u64;
    let account_controller = Controller::for_shared_stream(
        changed_by(
            account_changes
                .pop()
                .expect("one for the IAMAccount controller"),
            generation,
            Some(k8s_openapi::jiff::Timestamp::MIN),
            account_store.clone(),
        ),
        account_store.clone(),
    )
    .with_config(kube::runtime::controller::Config::default().debounce(Duration::from_secs(1)))
    .watches_stream(counted.map(Ok), |lp| {
        Some(ObjectRef::<IAMAccount>::new(lp.account_name()))
    })
    .graceful_shutdown_on(shutdown.clone())
    .run(reconcile_account, account_error_policy, ctx.clone())
    .map(|result| {
        if let Err(error) = result {
            tracing::debug!(%error, "IAMAccount controller event");
        }
    });
    streams.push(account_controller.boxed());
    let mut root_store = None;
    if let Some(selector) = ctx.settings.root_login_profiles.clone() {
        let accounts = changed_by(
            account_changes
                .pop()
                .expect("one for the RootLoginProfile controller"),
            admission_relevant,
            Some(started),
            account_store.clone(),
        );
        let (stream, store) = root_controller_stream(&ctx, &selector, accounts, shutdown.clone());
        streams.push(stream.boxed());
        root_store = Some(store);
    }
    tokio::spawn(account_watch);
    tokio::spawn(namespace_watch);
    let _ = ctx.tenancy.set(TenancyStores {
        accounts: account_store.clone(),
        namespaces: namespace_store,
    });
    let _ = ctx.stores.set(stores.clone());
    tokio::spawn(forget_vanished(ctx.clone(), stores.clone()));
    let tenancy = ctx.clone();
    let ready = Box::pin(async move {
        // The store's readiness signal wakes only its latest waiter, and
        // the controllers wait on it too; so ask again every 100 ms.
        for store in stores {
            while tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready())
                .await
                .is_err()
            {}
        }
        if let Some(tenancy) = tenancy.tenancy.get() {
            tenancy.wait_until_ready().await;
        }
        if let Some(store) = root_store {
            while tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready())
                .await
                .is_err()
            {}
        }
    });
    (select_all(streams), ready)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, OwnerReference};

    #[test]
    fn the_cache_keeps_only_the_operators_own_annotations_and_no_bookkeeping() {
        let spec = serde_json::from_value(serde_json::json!({"passwordSecretRef": {"name": "s"}}))
            .unwrap();
        let mut lp = LoginProfile::new("bob", spec);
        let annotations = lp.annotations_mut();
        annotations.insert(
            "iam.loginprofile.dev/in-charge-since".into(),
            "2026-12-05T10:00:00.000Z seal".into(),
        );
        annotations.insert(
            "iam.loginprofile.dev/sending".into(),
            "f over none at 2026-12-05T10:00:00.000Z seal".into(),
        );
        annotations.insert("padding".into(), "x".repeat(200_000));
        annotations.insert(
            "kubectl.kubernetes.io/last-applied-configuration".into(),
            "{}".into(),
        );
        annotations.insert("iam.loginprofile.dev.evil.example/x".into(), "y".into());
        lp.managed_fields_mut().push(ManagedFieldsEntry::default());
        lp.labels_mut()
            .insert("app.kubernetes.io/instance".into(), "team-a".into());
        lp.owner_references_mut().push(OwnerReference::default());

        forget_bookkeeping(&mut lp);
        let mut kept: Vec<&String> = lp.annotations().keys().collect();
        kept.sort();
        assert_eq!(
            kept,
            [
                "iam.loginprofile.dev/in-charge-since",
                "iam.loginprofile.dev/sending"
            ]
        );
        assert!(lp.managed_fields().is_empty());
        assert!(lp.labels().is_empty());
        assert!(lp.owner_references().is_empty());
    }
}
