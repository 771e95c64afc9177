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
//! The operator's own writes come back as events too: they wake nothing,
//! and tell whether events flow (runtime/event_flow.rs). While they do, the
//! IAMAccount's LoginProfiles are checked for drift at the long period;
//! when they stop, every one of them is looked at again at the normal pace.
//!
//! Only the leader runs receivers (the controllers start after it won the
//! Lease): a standby must not take messages the leader needs.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::DateTime;
use chrono::Utc;

use futures::channel::mpsc::UnboundedSender;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::context::Context;
use super::event_flow::Verdict;
use crate::api::conditions;
use crate::api::iam_account::IAMAccount;
use crate::api::login_profile::LoginProfile;
use crate::aws::clients::Account;
use crate::aws::event_queue::{LONG_POLL_LIMIT, QueueError};
use crate::aws::iam::Iam;
use crate::rules::iam_events::{self, HEARTBEAT_TAG, IamEvent};

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
            let keep = same && !task.is_finished();
            if !keep {
                // No receiver, no events: its LoginProfiles go back to the
                // normal pace.
                if ctx.event_flows.stop(name, Instant::now()) {
                    wake_account(&ctx, &controllers, name);
                }
                ctx.metrics.set_event_queue_state(name, None);
            }
            keep
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
    let flows = &ctx.event_flows;
    flows.start(&name, Instant::now());
    let mut last_verdict = None;
    let mut next_heartbeat = Instant::now();
    tracing::info!(account = %name, queue = %url, "receiving IAM events");
    loop {
        // What the flow says now: a change of verdict is logged and counted,
        // and events that stopped flowing send the LoginProfiles back to
        // the normal pace at once.
        let now = Instant::now();
        let verdict = flows.verdict(&name, now).unwrap_or(Verdict::Unconfirmed);
        if last_verdict.as_ref() != Some(&verdict) {
            ctx.metrics
                .set_event_queue_state(&name, Some(verdict.label()));
            tracing::info!(account = %name, state = verdict.label(), "IAM events: {verdict:?}");
            if last_verdict.as_ref().is_some_and(Verdict::is_flowing) {
                wake_account(&ctx, &controllers, &name);
            }
            last_verdict = Some(verdict);
        }
        if now >= next_heartbeat
            && flows.heartbeat_due(&name, ctx.settings.events.heartbeat_period, now)
        {
            heartbeat(&ctx, &clients, &name).await;
            next_heartbeat = Instant::now() + ctx.settings.events.deadline;
        }
        let messages = match clients.events.receive(&url, LONG_POLL_LIMIT).await {
            Ok(messages) => {
                pause = FIRST_PAUSE;
                flows.receiving(&name, Ok(()));
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
                if !matches!(error, QueueError::Transient(_)) {
                    flows.receiving(
                        &name,
                        Err(format!("cannot receive from queue {url}: {error}{hint}")),
                    );
                }
                tracing::warn!(account = %name, queue = %url, %error, "cannot receive IAM events{hint}; trying again in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        // Who the operator is there (asked of STS at most once a resync
        // period): an event without a request id of its own is its own
        // only if its caller is.
        if let Ok(caller) = clients.caller(ctx.settings.resync_period).await
            && !caller.arn.is_empty()
        {
            flows.identify(&name, &caller.arn);
        }
        // Our own account id, once verified: an event of another account
        // (a shared bus, a misrouted rule) wakes nothing here.
        let own_account =
            current(&ctx).and_then(|account| account.verified_account_id().map(str::to_string));
        let mut handled = Vec::with_capacity(messages.len());
        let wake = |event: &IamEvent| wake_naming(&ctx, &controllers, &name, event);
        let ours = |event: &IamEvent| flows.received(&name, event, Instant::now());
        for message in messages {
            let (event_name, outcome) = match iam_events::parse(&message.body) {
                Ok(event) => {
                    if let Some(lag) = event
                        .time
                        .and_then(|time| (Utc::now() - time).to_std().ok())
                    {
                        ctx.metrics.iam_event_lag(lag);
                    }
                    (
                        event.name,
                        handle(&event, own_account.as_deref(), &mut seen, &ours, &wake),
                    )
                }
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
/// `iam_account` that name the event's user (found in the claims index),
/// marked as changed in IAM first (their next reconcile asks IAM, however
/// recent their last look; a ChangePassword is recorded in status, and
/// `Enforce` sends the Secret's password again after it or after someone
/// else's UpdateLoginProfile); false if there are none.
fn wake_naming<I: Iam>(
    ctx: &Context<I>,
    controllers: &[UnboundedSender<ObjectRef<LoginProfile>>],
    iam_account: &str,
    event: &IamEvent,
) -> bool {
    let Some(stores) = ctx.stores.get() else {
        return false;
    };
    let mut any = false;
    for lp in ctx
        .claims
        .claimants(&event.user, |object| ctx.cached(object))
    {
        if lp.account_name() != iam_account {
            continue;
        }
        let object = ObjectRef::from_obj(&*lp);
        let Some(index) = stores.iter().position(|store| store.get(&object).is_some()) else {
            continue;
        };
        let at = when_it_happened(event.time, Utc::now());
        match event.name {
            "ChangePassword" => ctx.memory.password_changed(&lp, at),
            "UpdateLoginProfile" => ctx.memory.updated_outside(&lp, at),
            _ => {}
        }
        ctx.memory.distrust(&lp);
        if let Some(controller) = controllers.get(index) {
            let _ = controller.unbounded_send(object);
            any = true;
        }
    }
    any
}

/// When an event's call happened, as far as the operator can use it: its
/// eventTime, but never later than now. A clock ahead (the caller's, or a
/// forged message) would otherwise keep "changed after the last write"
/// true, and Enforce would send the password again at every look until the
/// clock caught up.
fn when_it_happened(event_time: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    event_time.map_or(now, |time| time.min(now))
}

/// Wakes every cached LoginProfile of IAMAccount `iam_account` in its
/// controller: events about them stopped, so each is placed again at the
/// normal drift period (those not confirmed lately are checked now, as the
/// drift budget allows).
fn wake_account<I: Iam>(
    ctx: &Context<I>,
    controllers: &[UnboundedSender<ObjectRef<LoginProfile>>],
    iam_account: &str,
) {
    let stores = ctx.stores.get().into_iter().flatten();
    for (store, controller) in stores.zip(controllers) {
        for lp in store.state() {
            if lp.account_name() == iam_account {
                let _ = controller.unbounded_send(ObjectRef::from_obj(&*lp));
            }
        }
    }
}

/// A write whose event the flow awaits, when nothing else was written for
/// a while: the heartbeat tag on the IAM user of a Ready LoginProfile of
/// this IAMAccount (none Ready: nothing to write on, nothing to check).
async fn heartbeat<I: Iam>(ctx: &Context<I>, clients: &Account<I>, iam_account: &str) {
    let ready_user = ctx.cached_profiles().find_map(|lp| {
        let ready = lp
            .condition(conditions::READY)
            .is_some_and(|c| c.status == "True");
        (lp.account_name() == iam_account && ready).then(|| lp.user_name().to_string())
    });
    let Some(user) = ready_user else {
        return;
    };
    if ctx.may_write().is_err() {
        return;
    }
    let written_at = Utc::now();
    let tag = (
        HEARTBEAT_TAG.to_string(),
        written_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let sending =
        ctx.event_flows
            .sending(iam_account, "TagUser", &user, written_at, Instant::now());
    let answer = clients.iam.tag_user(&user, &[tag]).await;
    sending.answered(answer.as_ref());
    if let Err(error) = answer {
        tracing::warn!(account = %iam_account, user = %user, %error, "cannot write the IAM events heartbeat (iam:TagUser on iam.loginprofile.dev/ tags)");
    }
}

/// Wakes (with `wake`) the LoginProfiles an event is about, unless it is
/// the operator's own write coming back (`ours` says, and takes note);
/// returns the outcome label.
fn handle(
    event: &IamEvent,
    own_account: Option<&str>,
    seen: &mut SeenIds,
    ours: &dyn Fn(&IamEvent) -> bool,
    wake: &dyn Fn(&IamEvent) -> bool,
) -> &'static str {
    if own_account.is_some_and(|own| own != event.account_id) {
        return "foreign";
    }
    if !seen.first_time(&event.id) {
        return "duplicate";
    }
    // IAM refused the call: nothing changed, nothing to look at (under
    // `Enforce`, a mistyped old password must not send the Secret's
    // password again, which an account refusing reused passwords refuses).
    if event.refused.is_some() {
        return "refused";
    }
    if ours(event) {
        return "own";
    }
    if !wake(event) {
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
            request_id: None,
            time: None,
            refused: None,
        }
    }

    #[test]
    fn an_event_wakes_once_and_never_for_another_account() {
        let woken = std::cell::RefCell::new(Vec::new());
        let alice = |event: &IamEvent| {
            woken.borrow_mut().push(event.user.clone());
            event.user == "alice"
        };
        let mut seen = SeenIds::default();
        let own = Some("111122223333");
        let ours = |event: &IamEvent| event.user == "operator-wrote";
        let mut outcome = |id: &str, account: &str, user: &str| {
            let mut event = event(id, account);
            event.user = user.into();
            handle(&event, own, &mut seen, &ours, &alice)
        };
        assert_eq!(outcome("a", "111122223333", "alice"), "handled");
        assert_eq!(outcome("o", "111122223333", "operator-wrote"), "own");
        assert_eq!(outcome("a", "111122223333", "alice"), "duplicate");
        assert_eq!(outcome("b", "999999999999", "alice"), "foreign");
        assert_eq!(outcome("c", "111122223333", "bob"), "unmatched");
        let refused = IamEvent {
            refused: Some("InvalidInput".into()),
            ..event("r", "111122223333")
        };
        assert_eq!(handle(&refused, own, &mut seen, &ours, &alice), "refused");
        assert_eq!(
            *woken.borrow(),
            ["alice", "bob"],
            "asked to wake once per new event of its account, never for a refused call"
        );
    }

    #[test]
    fn an_event_is_never_taken_as_later_than_now() {
        let now = Utc::now();
        let earlier = now - chrono::Duration::seconds(30);
        let ahead = now + chrono::Duration::hours(2);
        assert_eq!(when_it_happened(Some(earlier), now), earlier);
        assert_eq!(when_it_happened(Some(ahead), now), now);
        assert_eq!(when_it_happened(None, now), now);
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
