//! The controllers and what triggers each: one LoginProfile controller per
//! watched namespace (or one for all), the IAMAccount controller and, with
//! `--manage-root-login-profiles`, the RootLoginProfile controller; on which
//! watches each runs, and what a change of another object wakes.
//!
//! - `login_profile/`: the LoginProfile reconciler and its steps;
//! - `iam_account.rs`: the IAMAccount reconciler;
//! - `root_login_profile.rs`: root's console password in member accounts;
//! - `runtime/`: what they share: the context, the watches and caches, the
//!   per-object memory, the claims index, and when objects are looked at again.
//!
//! LoginProfile triggers: its own changes (not our status writes), Secret
//! changes mapped to the LoginProfiles that read them, IAMAccount and
//! Namespace-label changes mapped to the LoginProfiles whose admission they
//! decide, the deletion of a LoginProfile that claimed an IAM user (the next
//! claimant may take over), an IAM event about its user (its IAMAccount's
//! `spec.events`), and its looks (a drift check, a retry). The
//! IAMAccount controller also hears of LoginProfiles that come and go (its
//! count).

mod iam_account;
mod login_profile;
mod root_login_profile;
pub(crate) mod runtime;

pub use login_profile::secret_source;
pub use runtime::context::{Context, Error, EventSettings, FIELD_MANAGER, Settings};

use iam_account::{account_error_policy, reconcile_account};
use login_profile::{error_policy, reconcile};
use root_login_profile::{claiming, naming_iam_account, reconcile_root, root_error_policy};
use runtime::generations::Seen;
use runtime::iam_events::receive_all;
use runtime::tenancy::{TenancyStores, admission_relevant, namespace_labels};
use runtime::watch::{
    changed_by, concerned_by, fan_out, forget_bookkeeping, forget_vanished, matching, one_secret,
    profile_listing, release_looks, saw_profile, secret_changes,
};

use crate::api::iam_account::IAMAccount;
use crate::api::login_profile::LoginProfile;
use crate::api::root_login_profile::RootLoginProfile;
use crate::aws::iam::Iam;
use futures::Stream;
use futures::StreamExt;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::select_all;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
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
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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
    // The LoginProfiles an IAM event is about (from their IAMAccount's
    // queue), to the controller whose cache holds them.
    let (event_senders, event_receivers): (Vec<_>, Vec<_>) = scopes
        .iter()
        .map(|_| mpsc::unbounded::<ObjectRef<LoginProfile>>())
        .unzip();
    let mut streams = Vec::new();
    let mut stores = Vec::new();
    let mut look_senders = HashMap::new();
    for ((scope, deleted), iam_events) in scopes
        .into_iter()
        .zip(deleted_receivers)
        .zip(event_receivers)
    {
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
        let (secret_changes, secrets_relisted) = secret_changes(secrets);
        let (by_secret, by_relisting, by_account, by_namespace, by_claim) = (
            store.clone(),
            store.clone(),
            store.clone(),
            store.clone(),
            store.clone(),
        );
        // Every trigger below is a change: no look is released before it starts.
        let changes = |ctx: &Arc<Context<I>>| {
            let ctx = ctx.clone();
            move |objects: Vec<ObjectRef<LoginProfile>>| {
                ctx.looks.changed(&objects);
                objects
            }
        };
        let (
            secret_change,
            relisting_change,
            account_change,
            namespace_change,
            claim_change,
            event_change,
        ) = (
            changes(&ctx),
            changes(&ctx),
            changes(&ctx),
            changes(&ctx),
            changes(&ctx),
            changes(&ctx),
        );
        let stream = controller
            .watches_stream(secret_changes, move |secret| {
                secret_change(concerned_by(&by_secret, &one_secret(&secret)))
            })
            .reconcile_on(secrets_relisted.flat_map(move |relisting| {
                futures::stream::iter(relisting_change(concerned_by(&by_relisting, &relisting)))
            }))
            // An IAM event about its user (the receiver found it): it looks
            // at IAM now.
            .reconcile_on(
                iam_events.flat_map(move |woken| futures::stream::iter(event_change(vec![woken]))),
            )
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
    tokio::spawn(receive_all(ctx.clone(), Arc::new(event_senders)));
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
