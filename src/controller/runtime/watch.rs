//! The watches the controllers share and what they keep: one cache per kind
//! with a copy of each change for every listener (`fan_out`), Secret changes
//! by metadata only, the LoginProfile cache trimmed to what reconciling reads
//! and listed in pages, which changes count as changes (`saw_profile`,
//! `changed_by`), the looks released as they fall due, and what is forgotten
//! once its object is gone.

use super::context::Context;
use super::generations::{Seen, uid_key};
use super::memory::{Object, object_key};
use crate::api::login_profile::LoginProfile;
use crate::aws::iam::Iam;
use crate::rules::marks;
use futures::Stream;
use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::Resource;
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The LoginProfiles in `store` that `keep` selects: the ones a change of
/// another object concerns.
pub(crate) fn matching(
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
pub(crate) fn fan_out<K>(
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

/// `namespace/name` of a Secret or of the Secret a LoginProfile reads.
fn secret_key(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}

/// What the Secret watch says changed.
pub(crate) enum SecretChange {
    /// One Secret changed or went away (`namespace/name`).
    One(String),
    /// A relisting (after a watch expired) found these Secrets, by
    /// `namespace/name`, with their resourceVersions; any other is gone.
    Relisted(HashMap<String, Option<String>>),
}

/// The LoginProfiles in `store` a Secret change concerns. A relisting is
/// matched in one pass over the cache, and only LoginProfiles whose Secret
/// is gone or has another resourceVersion than the one status applied are
/// woken: a pass per relisted Secret would cost the number of Secrets times
/// the number of LoginProfiles (20,000 x 20,000 after an API server restart)
/// and wake every LoginProfile for nothing.
pub(crate) fn concerned_by(
    store: &Store<LoginProfile>,
    change: &SecretChange,
) -> Vec<ObjectRef<LoginProfile>> {
    let read_secret = |lp: &LoginProfile| {
        lp.spec
            .password_secret_ref
            .as_ref()
            .map(|r| secret_key(lp.metadata.namespace.as_deref(), &r.name))
    };
    match change {
        SecretChange::One(changed) => {
            // Compared in place: a key built per cached object would be an
            // allocation per LoginProfile per Secret event.
            let (namespace, name) = changed.split_once('/').unwrap_or(("", changed));
            matching(store, |lp| {
                lp.metadata.namespace.as_deref().unwrap_or_default() == namespace
                    && lp
                        .spec
                        .password_secret_ref
                        .as_ref()
                        .is_some_and(|r| r.name == name)
            })
        }
        SecretChange::Relisted(found) => matching(store, |lp| {
            read_secret(lp).is_some_and(|key| match found.get(&key) {
                None => true,
                Some(version) => {
                    lp.status
                        .as_ref()
                        .and_then(|s| s.secret_resource_version.as_ref())
                        != version.as_ref()
                }
            })
        }),
    }
}

/// [`SecretChange::One`] for a Secret the watch saw change or go.
pub(crate) fn one_secret(secret: &PartialObjectMeta<Secret>) -> SecretChange {
    SecretChange::One(secret_key(
        secret.metadata.namespace.as_deref(),
        &secret.name_any(),
    ))
}

/// Secrets that changed or went away, one by one; and, on the side, every
/// relisting whole ([`SecretChange::Relisted`]), once it is complete. The
/// first listing is skipped: at start every LoginProfile is reconciled
/// anyway, and reading each Secret twice would double the start-up cost. A
/// later relisting (after a watch expired) may hide a change.
#[allow(clippy::type_complexity)]
pub(crate) fn secret_changes(
    api: Api<PartialObjectMeta<Secret>>,
) -> (
    impl Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>>,
    mpsc::UnboundedReceiver<SecretChange>,
) {
    let mut first_listing = true;
    let mut relisted = HashMap::new();
    let (relistings, relisted_whole) = mpsc::unbounded();
    let changes = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .filter_map(move |event| {
            let changed = match event {
                Ok(watcher::Event::Apply(secret) | watcher::Event::Delete(secret)) => {
                    Some(Ok(secret))
                }
                Ok(watcher::Event::Init) => {
                    relisted.clear();
                    None
                }
                Ok(watcher::Event::InitApply(secret)) => {
                    if !first_listing {
                        let key =
                            secret_key(secret.metadata.namespace.as_deref(), &secret.name_any());
                        relisted.insert(key, secret.metadata.resource_version);
                    }
                    None
                }
                Ok(watcher::Event::InitDone) => {
                    if !first_listing {
                        let found = std::mem::take(&mut relisted);
                        let _ = relistings.unbounded_send(SecretChange::Relisted(found));
                    }
                    first_listing = false;
                    None
                }
                Err(error) => Some(Err(error)),
            };
            futures::future::ready(changed)
        });
    (changes, relisted_whole)
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
pub(crate) fn forget_bookkeeping(lp: &mut LoginProfile) {
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
pub(crate) fn profile_listing() -> watcher::Config {
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
pub(crate) async fn forget_vanished<I: Iam>(
    ctx: Arc<Context<I>>,
    stores: Vec<Store<LoginProfile>>,
) {
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
pub(crate) fn saw_profile<I: Iam>(ctx: &Context<I>, lp: &LoginProfile) -> Seen {
    ctx.claims.add(lp);
    let seen = ctx.generations.saw(lp);
    if seen != Seen::Same {
        ctx.looks.changed([&object_key(lp)]);
    }
    seen
}

/// Hands each look that falls due (looks.rs) to the controller of its
/// namespace, when the looks allow.
pub(crate) async fn release_looks<I: Iam>(
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

/// How many objects pass through [`changed_by`] (at least) between two
/// prunings of what it remembers.
const PRUNE_EVERY: usize = 1024;

/// Passes an object on only when `key` of it changed since it last passed.
/// An object seen for the first time passes only if it was created after
/// `new_after` (never with `None`): the objects there were at start are
/// reconciled by the first listing anyway. `cache` is the objects' cache:
/// what it no longer holds is forgotten.
pub(crate) fn changed_by<K>(
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

#[cfg(test)]
mod tests {
    use super::super::tenancy::namespace_labels;
    use super::*;
    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, OwnerReference};

    #[test]
    fn a_relisting_wakes_only_login_profiles_whose_secret_changed_or_went() {
        let (store, mut writer) = reflector::store::<LoginProfile>();
        for (name, secret, applied) in [
            ("same", Some("s1"), Some("1")),
            ("changed", Some("s2"), Some("5")),
            ("gone", Some("s3"), Some("7")),
            ("secrets-manager", None, None),
        ] {
            let spec = match secret {
                Some(secret) => serde_json::json!({"passwordSecretRef": {"name": secret}}),
                None => serde_json::json!({"passwordSecretsManagerRef": {"secretId": "x"}}),
            };
            let mut lp = LoginProfile::new(name, serde_json::from_value(spec).unwrap());
            lp.metadata.namespace = Some("ns".into());
            lp.status = Some(crate::api::login_profile::LoginProfileStatus {
                secret_resource_version: applied.map(String::from),
                ..Default::default()
            });
            writer.apply_watcher_event(&watcher::Event::Apply(lp));
        }
        let names = |change: &SecretChange| {
            let mut names: Vec<String> = concerned_by(&store, change)
                .into_iter()
                .map(|o| o.name)
                .collect();
            names.sort();
            names
        };
        let relisted = SecretChange::Relisted(HashMap::from([
            ("ns/s1".to_string(), Some("1".to_string())),
            ("ns/s2".to_string(), Some("6".to_string())),
            ("other/s3".to_string(), Some("7".to_string())),
        ]));
        assert_eq!(names(&relisted), ["changed", "gone"]);
        assert_eq!(names(&SecretChange::One("ns/s1".into())), ["same"]);
        assert!(names(&SecretChange::One("other/s1".into())).is_empty());
    }

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
