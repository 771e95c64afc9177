//! IAM's events, per IAMAccount: one receiver for each IAMAccount with
//! `spec.events`, long-polling its SQS queue with that IAMAccount's
//! credentials. An event about an IAM user wakes, at once, the LoginProfiles
//! of that IAMAccount naming the user, so drift made outside the operator
//! is looked at within seconds instead of at the next drift check. A
//! message is deleted from the queue once handled; SQS delivers at least
//! once, so an event seen before (its eventID) wakes nothing again, and the
//! order does not matter (a wake is a look at IAM as it is now). An event
//! of another AWS account, or about a user no LoginProfile of the IAMAccount
//! names, wakes nothing; each is counted by outcome.
//!
//! Only the leader runs receivers (the controllers start after it won the
//! Lease): a standby must not take messages the leader needs.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use futures::channel::mpsc::UnboundedSender;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::context::Context;
use crate::api::iam_account::IAMAccount;
use crate::api::login_profile::{LoginProfile, iam_user_key};
use crate::aws::event_queue::{LONG_POLL_LIMIT, QueueError};
use crate::aws::iam::Iam;
use crate::rules::iam_events::{self, IamEvent};

/// Where the LoginProfiles an event is about are woken: one sender per
/// LoginProfile controller, in the order of the context's caches.
pub(crate) type Wakers = Arc<Vec<UnboundedSender<ObjectRef<LoginProfile>>>>;

/// How often the set of receivers is matched to the IAMAccounts.
const SUPERVISE_EVERY: Duration = Duration::from_secs(5);
/// Pause after a failed receive, doubling up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(2);
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// Event ids remembered per queue, to drop a second delivery.
const REMEMBERED_IDS: usize = 10_000;

/// Runs the receivers of every IAMAccount with `spec.events` that a
/// LoginProfile of this operator names (started, restarted with a new
/// queue URL or generation, stopped when it goes or none names it any
/// more), waking the LoginProfiles each event is about in their controller.
pub(crate) async fn receive_all<I: Iam>(ctx: Arc<Context<I>>, controllers: Wakers) {
    let mut running: HashMap<String, (String, Option<i64>, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    loop {
        // Only the IAMAccounts this operator's LoginProfiles name: a queue
        // has one reader, and another operator in the cluster (other
        // namespaces) may be the one whose LoginProfiles use it.
        let named: HashSet<String> = ctx
            .stores
            .get()
            .map(|stores| {
                stores
                    .iter()
                    .flat_map(|store| store.state())
                    .map(|lp| lp.account_name().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let wanted: HashMap<String, Arc<IAMAccount>> = ctx
            .tenancy
            .get()
            .map(|tenancy| tenancy.accounts.state())
            .unwrap_or_default()
            .into_iter()
            .filter(|account| account.spec.events.is_some() && named.contains(&account.name_any()))
            .map(|account| (account.name_any(), account))
            .collect();
        running.retain(|name, (url, generation, task)| {
            let same = wanted.get(name).is_some_and(|account| {
                account.metadata.generation == *generation
                    && account.spec.events.as_ref().map(|e| &e.sqs_queue_url) == Some(&*url)
            });
            if !same {
                task.abort();
            }
            same && !task.is_finished()
        });
        for (name, account) in wanted {
            if running.contains_key(&name) {
                continue;
            }
            let url = account
                .spec
                .events
                .as_ref()
                .map(|e| e.sqs_queue_url.clone())
                .unwrap_or_default();
            let task = tokio::spawn(receive(
                ctx.clone(),
                account.clone(),
                url.clone(),
                controllers.clone(),
            ));
            running.insert(name, (url, account.metadata.generation, task));
        }
        tokio::time::sleep(SUPERVISE_EVERY).await;
    }
}

/// One IAMAccount's receiver: receive, wake, delete, forever.
async fn receive<I: Iam>(
    ctx: Arc<Context<I>>,
    iam_account: Arc<IAMAccount>,
    url: String,
    controllers: Wakers,
) {
    let name = iam_account.name_any();
    let clients = ctx.accounts.get(&iam_account).await;
    let current = |ctx: &Context<I>| {
        ctx.tenancy
            .get()
            .and_then(|tenancy| tenancy.accounts.get(&ObjectRef::new(&name)))
    };
    let mut seen = SeenIds::default();
    let mut pause = FIRST_PAUSE;
    tracing::info!(account = %name, queue = %url, "receiving IAM events");
    loop {
        let messages = match clients.events.receive(&url, LONG_POLL_LIMIT).await {
            Ok(messages) => {
                pause = FIRST_PAUSE;
                messages
            }
            Err(error) => {
                let hint = match &error {
                    QueueError::AccessDenied(_) => {
                        " (grant sqs:ReceiveMessage and sqs:DeleteMessage on the queue: docs/events.md)"
                    }
                    QueueError::NoSuchQueue(_) => " (check spec.events.sqsQueueUrl)",
                    QueueError::Transient(_) => "",
                };
                tracing::warn!(account = %name, queue = %url, %error, "cannot receive IAM events{hint}; trying again in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        // Our own account id, once verified: an event of another account
        // (a shared bus, a misrouted rule) wakes nothing here.
        let own_account =
            current(&ctx).and_then(|account| account.verified_account_id().map(str::to_string));
        let mut handled = Vec::with_capacity(messages.len());
        let wake = |user: &str| wake_naming(&ctx, &controllers, &name, user);
        for message in messages {
            let (event_name, outcome) = match iam_events::parse(&message.body) {
                Ok(event) => (
                    event.name,
                    handle(&event, own_account.as_deref(), &mut seen, &wake),
                ),
                Err(unusable) => ("unknown", unusable.label()),
            };
            ctx.metrics.iam_event(event_name, outcome);
            handled.push(message.receipt_handle);
        }
        if let Err(error) = clients.events.delete(&url, &handled).await {
            // Delivered again after the visibility timeout: seen ids drop them.
            tracing::warn!(account = %name, queue = %url, %error, "cannot delete handled IAM events");
        }
    }
}

/// Wakes, in their controller, the cached LoginProfiles of IAMAccount
/// `iam_account` that name `user`, marked as changed in IAM first (their
/// next reconcile asks IAM, however recent their last look); false if
/// there are none.
fn wake_naming<I: Iam>(
    ctx: &Context<I>,
    controllers: &[UnboundedSender<ObjectRef<LoginProfile>>],
    iam_account: &str,
    user: &str,
) -> bool {
    let user = iam_user_key(user);
    let mut any = false;
    let stores = ctx.stores.get().into_iter().flatten();
    for (store, controller) in stores.zip(controllers) {
        for lp in store.state() {
            if lp.account_name() == iam_account && iam_user_key(&lp.user_name()) == user {
                ctx.memory.distrust(&lp);
                let _ = controller.unbounded_send(ObjectRef::from_obj(&*lp));
                any = true;
            }
        }
    }
    any
}

/// Wakes (with `wake`) the LoginProfiles an event is about; returns the
/// outcome label.
fn handle(
    event: &IamEvent,
    own_account: Option<&str>,
    seen: &mut SeenIds,
    wake: &dyn Fn(&str) -> bool,
) -> &'static str {
    if own_account.is_some_and(|own| own != event.account_id) {
        return "foreign";
    }
    if !seen.first_time(&event.id) {
        return "duplicate";
    }
    if !wake(&event.user) {
        return "unmatched";
    }
    "handled"
}

/// The last [`REMEMBERED_IDS`] event ids, oldest forgotten first.
#[derive(Default)]
struct SeenIds {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl SeenIds {
    fn first_time(&mut self, id: &str) -> bool {
        if !self.ids.insert(id.to_string()) {
            return false;
        }
        self.order.push_back(id.to_string());
        if self.order.len() > REMEMBERED_IDS
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, account: &str) -> IamEvent {
        IamEvent {
            id: id.into(),
            name: "DeleteLoginProfile",
            account_id: account.into(),
            user: "alice".into(),
            caller: String::new(),
        }
    }

    #[test]
    fn an_event_wakes_once_and_never_for_another_account() {
        let woken = std::cell::RefCell::new(Vec::new());
        let alice = |user: &str| {
            woken.borrow_mut().push(user.to_string());
            user == "alice"
        };
        let mut seen = SeenIds::default();
        let own = Some("111122223333");
        let mut outcome = |id: &str, account: &str, user: &str| {
            let mut event = event(id, account);
            event.user = user.into();
            handle(&event, own, &mut seen, &alice)
        };
        assert_eq!(outcome("a", "111122223333", "alice"), "handled");
        assert_eq!(outcome("a", "111122223333", "alice"), "duplicate");
        assert_eq!(outcome("b", "999999999999", "alice"), "foreign");
        assert_eq!(outcome("c", "111122223333", "bob"), "unmatched");
        assert_eq!(
            *woken.borrow(),
            ["alice", "bob"],
            "asked to wake once per new event of its account"
        );
    }

    #[test]
    fn seen_ids_forget_the_oldest_beyond_the_limit() {
        let mut seen = SeenIds::default();
        for i in 0..=REMEMBERED_IDS {
            assert!(seen.first_time(&i.to_string()));
        }
        assert!(seen.first_time("0"), "the oldest was forgotten");
        assert!(!seen.first_time(&REMEMBERED_IDS.to_string()));
    }
}
