//! What triggers a reconcile: LoginProfile changes (not our own status
//! writes), Secret changes mapped to the LoginProfiles that read them, and
//! the resync; one controller per watched namespace.

use super::*;

/// The LoginProfiles in `store` that read the given Secret.
fn referencing(
    store: &Store<LoginProfile>,
    namespace: Option<String>,
    secret_name: &str,
) -> Vec<ObjectRef<LoginProfile>> {
    store
        .state()
        .iter()
        .filter(|lp| {
            lp.namespace() == namespace
                && lp
                    .spec
                    .password_secret_ref
                    .as_ref()
                    .is_some_and(|r| r.name == secret_name)
        })
        .map(|lp| ObjectRef::from_obj(&**lp))
        .collect()
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
/// finalizer, the status) and kubectl's last-applied copy of the whole
/// object. They are most of a cached LoginProfile's size.
fn forget_bookkeeping(lp: &mut LoginProfile) {
    lp.managed_fields_mut().clear();
    lp.annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
}

/// Every minute, drops what is kept per object (backoff counts, the last
/// verification, the `profiles` gauge) for objects no cache holds any more:
/// deleted without a finalizer run, or outside the watched namespaces.
async fn forget_vanished<I: Iam>(ctx: Arc<Context<I>>, stores: Vec<Store<LoginProfile>>) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    every.tick().await; // the first tick is immediate: the caches may still be filling
    loop {
        every.tick().await;
        ctx.retain_objects(|object| stores.iter().any(|store| store.get(object).is_some()));
    }
}

/// Starts one controller per watched namespace (or one for all) and returns
/// a stream of reconcile results plus a future that resolves once every
/// cache has synced.
pub fn run<I: Iam>(
    ctx: Arc<Context<I>>,
    shutdown: futures::future::Shared<BoxFuture<'static, ()>>,
) -> (impl Stream<Item = ()>, BoxFuture<'static, ()>) {
    let scopes: Vec<Option<String>> = if ctx.settings.namespaces.is_empty() {
        vec![None]
    } else {
        ctx.settings.namespaces.iter().cloned().map(Some).collect()
    };
    let mut streams = Vec::new();
    let mut stores = Vec::new();
    for scope in scopes {
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
        let profile_changes = watcher(profiles, watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(forget_bookkeeping)
            .reflect(writer)
            .applied_objects()
            .predicate_filter(predicates::generation, Default::default());
        let controller = Controller::for_stream(profile_changes, store.clone()).with_config(
            kube::runtime::controller::Config::default().concurrency(ctx.settings.concurrency),
        );
        stores.push(store.clone());
        // Only Secret metadata is watched: a change of resourceVersion is the
        // trigger, and the value is read when a LoginProfile needs it, so the
        // operator never caches the data of every Secret in the cluster.
        let secret_changes = secret_changes(secrets);
        let stream = controller
            .watches_stream(secret_changes, move |secret| {
                referencing(&store, secret.namespace(), &secret.name_any())
            })
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile, error_policy, ctx.clone())
            .map(|result| {
                if let Err(error) = result {
                    tracing::debug!(%error, "controller event");
                }
            });
        streams.push(stream.boxed());
    }
    let _ = ctx.stores.set(stores.clone());
    tokio::spawn(forget_vanished(ctx.clone(), stores.clone()));
    let ready = Box::pin(async move {
        for store in stores {
            // The store's readiness signal wakes only its latest waiter, and
            // the controller waits on it too; so ask again every 100 ms.
            while tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready())
                .await
                .is_err()
            {}
        }
    });
    (select_all(streams), ready)
}
