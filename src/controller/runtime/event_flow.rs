//! Whether an IAMAccount's IAM events flow, judged by the operator's own
//! writes: each write it makes through an IAMAccount with `spec.events` is a
//! canary whose event must come back through the queue within the event
//! deadline. While they come back, the LoginProfiles of that IAMAccount are
//! checked for drift at the long period (events find drift sooner than
//! polling would); when one is late, or the queue cannot be read, polling
//! returns to its normal pace and the IAMAccount's `EventsFlowing`
//! condition says why. With no write to watch for, the receiver makes one
//! (a heartbeat tag on a user the IAMAccount's LoginProfiles manage) once
//! the heartbeat period has passed without a confirmed event.
//!
//! A write is the operator's own from the moment it is sent (its event may
//! come back before its answer): by IAM's request id once answered, else by
//! caller (the operator's identity in that account), call, user and time. A
//! write whose answer was lost is never awaited (IAM may not have received
//! it), but its event, if it comes, is still the operator's own.
//!
//! Bookkeeping with the time passed in (but for [`Sending`], which closes a
//! write when its answer comes); the receiver (runtime/iam_events.rs) feeds
//! it and acts on its verdicts.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

use crate::api::login_profile::iam_user_key;
use crate::aws::iam::{IamError, RequestId};
use crate::rules::iam_events::IamEvent;

/// How far before the write an event's own time may say it happened
/// (CloudTrail's clock against ours).
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(5);
/// Writes awaited at once per IAMAccount; beyond that the oldest is
/// forgotten (a burst of writes proves no more than its latest ones).
const AWAITED_LIMIT: usize = 1000;

/// What the receiver concluded about one IAMAccount's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The receiver runs, but no write of the operator's has come back yet
    /// (just started, or nothing written).
    Unconfirmed,
    /// The last awaited write came back in time.
    Flowing,
    /// A write's event did not come back within the deadline: what was
    /// awaited.
    Late(String),
    /// The queue cannot be read: why.
    Unreadable(String),
}

/// The IAMAccount condition that says whether its IAM events flow.
pub(crate) const EVENTS_FLOWING: &str = "EventsFlowing";

/// Every (status, reason, meaning) of [`EVENTS_FLOWING`], for reference.md.
pub(crate) const REASONS: [(&str, &str, &str); 5] = [
    (
        "True",
        "EventsFlowing",
        "the operator's own writes come back through the queue in time: drift checks at `--drift-period-with-events`",
    ),
    (
        "Unknown",
        "EventsUnconfirmed",
        "the queue is read, and no write of the operator's has come back yet (the receiver writes a heartbeat): drift checks at `--resync-period`",
    ),
    (
        "False",
        "EventsLate",
        "a write's event did not come back within `--event-deadline` (the message names it): drift checks at `--resync-period` until one does",
    ),
    (
        "False",
        "EventQueueUnreadable",
        "the queue cannot be read (the message says what to grant or fix): drift checks at `--resync-period`",
    ),
    (
        "Unknown",
        "EventsNotReceived",
        "no LoginProfile of this operator names the IAMAccount, so its queue is not read",
    ),
];

impl Verdict {
    pub(crate) fn is_flowing(&self) -> bool {
        matches!(self, Verdict::Flowing)
    }

    /// Its state in the `iam_event_queues` gauge.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Verdict::Unconfirmed => "unconfirmed",
            Verdict::Flowing => "flowing",
            Verdict::Late(_) => "late",
            Verdict::Unreadable(_) => "unreadable",
        }
    }
}

/// The `EventsFlowing` condition of an IAMAccount whose events are received
/// with `verdict` (`None`: not received here): status, reason, message.
pub(crate) fn condition(
    verdict: Option<&Verdict>,
    drift_period_with_events: Duration,
    resync_period: Duration,
) -> (&'static str, &'static str, String) {
    let long = humantime::format_duration(drift_period_with_events);
    let normal = humantime::format_duration(resync_period);
    match verdict {
        None => (
            "Unknown",
            "EventsNotReceived",
            "no LoginProfile of this operator names this IAMAccount, so its queue is not read"
                .into(),
        ),
        Some(Verdict::Unconfirmed) => (
            "Unknown",
            "EventsUnconfirmed",
            format!(
                "reading the queue; no write of the operator's has come back as an event yet: drift checks every {normal} until one does"
            ),
        ),
        Some(Verdict::Flowing) => (
            "True",
            "EventsFlowing",
            format!(
                "the operator's own writes come back as events in time: drift checks every {long}"
            ),
        ),
        Some(Verdict::Late(what)) => (
            "False",
            "EventsLate",
            format!(
                "{what}: check the trail, the EventBridge rule in us-east-1 and the queue's policy (docs/events.md); drift checks every {normal} until events flow again"
            ),
        ),
        Some(Verdict::Unreadable(why)) => (
            "False",
            "EventQueueUnreadable",
            format!("{why}; drift checks every {normal} meanwhile"),
        ),
    }
}

/// One write of the operator's: awaited from when it is sent, recognized
/// as its own until forgotten.
#[derive(Debug)]
struct Awaited {
    /// Which write it is, until IAM's answer closes it.
    ticket: u64,
    name: &'static str,
    user_key: String,
    user: String,
    /// IAM's id of the request, once answered.
    request_id: RequestId,
    /// When it was sent.
    written_at: DateTime<Utc>,
    due: Instant,
    /// Once late, recognized until then: a write's event lost for good
    /// must not pass a later call of someone else's for the operator's.
    forgotten: Instant,
}

impl Awaited {
    /// By request id where both the answer and the event carry one (then
    /// someone else's call on the same user in the same seconds is not
    /// taken for the operator's); else by caller, call, user and time: an
    /// event whose caller is not `identity` (the operator's, as STS names
    /// it), where both are known, is someone else's.
    fn matches(&self, event: &IamEvent, identity: Option<&str>) -> bool {
        if let (Some(ours), Some(theirs)) = (&self.request_id, &event.request_id) {
            return ours == theirs;
        }
        if identity.is_some_and(|ours| !event.caller.is_empty() && event.caller != ours) {
            return false;
        }
        self.name == event.name
            && self.user_key == iam_user_key(&event.user)
            && event
                .time
                .is_none_or(|time| time >= self.written_at - CLOCK_SKEW)
    }
}

/// One IAMAccount's receiver, as far as the flow is concerned.
#[derive(Debug)]
struct Flow {
    awaited: VecDeque<Awaited>,
    /// Writes whose event missed the deadline, and writes whose answer was
    /// lost: still the operator's own when their event does arrive (under
    /// `Enforce`, someone else's UpdateLoginProfile is answered with the
    /// Secret's password; its own, late, must not be).
    overdue: VecDeque<Awaited>,
    /// When an awaited event last came back.
    confirmed_at: Option<Instant>,
    /// When the operator last wrote through this IAMAccount (a heartbeat
    /// included), or when the receiver started.
    last_write: Instant,
    late: Option<String>,
    unreadable: Option<String>,
    /// Who the operator is in this account (STS GetCallerIdentity's ARN,
    /// as CloudTrail's `userIdentity.arn` names the caller), once known.
    identity: Option<String>,
}

/// The flows of every IAMAccount whose events are received here.
pub(crate) struct EventFlows {
    flows: Mutex<HashMap<String, Flow>>,
    deadline: Duration,
    tickets: AtomicU64,
}

/// What IAM answered to a write of the operator's.
#[derive(Debug)]
enum Answer {
    /// Applied, with this request id.
    Applied(RequestId),
    /// Refused: nothing changed.
    Refused,
    /// No answer came.
    Lost,
}

/// A write being sent through an IAMAccount: [`Sending::answered`] closes
/// it with IAM's answer; dropped before that (the reconcile stopped), its
/// answer counts as lost.
pub(crate) struct Sending<'a> {
    flows: &'a EventFlows,
    account: String,
    /// None where the IAMAccount's events are not received.
    ticket: Option<u64>,
}

impl Sending<'_> {
    /// IAM answered (its request id), refused, or did not answer.
    pub(crate) fn answered(mut self, answer: Result<&RequestId, &IamError>) {
        self.close(match answer {
            Ok(request_id) => Answer::Applied(request_id.clone()),
            Err(error) if error.unanswered() => Answer::Lost,
            Err(_) => Answer::Refused,
        });
    }

    fn close(&mut self, answer: Answer) {
        if let Some(ticket) = self.ticket.take() {
            self.flows
                .answered(&self.account, ticket, answer, Instant::now());
        }
    }
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.close(Answer::Lost);
    }
}

impl EventFlows {
    pub(crate) fn new(deadline: Duration) -> Self {
        Self {
            flows: Mutex::new(HashMap::new()),
            deadline,
            tickets: AtomicU64::new(0),
        }
    }

    fn locked(&self) -> MutexGuard<'_, HashMap<String, Flow>> {
        self.flows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The receiver of `account` starts: nothing is known yet.
    pub(crate) fn start(&self, account: &str, now: Instant) {
        self.locked().insert(
            account.to_string(),
            Flow {
                awaited: VecDeque::new(),
                overdue: VecDeque::new(),
                confirmed_at: None,
                last_write: now,
                late: None,
                unreadable: None,
                identity: None,
            },
        );
    }

    /// The operator acts in `account` as `arn` (STS GetCallerIdentity).
    pub(crate) fn identify(&self, account: &str, arn: &str) {
        if let Some(flow) = self.locked().get_mut(account) {
            flow.identity = Some(arn.to_string());
        }
    }

    /// The receiver of `account` stopped: its LoginProfiles are polled at
    /// the normal pace again. Returns whether events were flowing.
    pub(crate) fn stop(&self, account: &str, now: Instant) -> bool {
        let mut flows = self.locked();
        let flowing = flows
            .get_mut(account)
            .is_some_and(|flow| judge(flow, now).is_flowing());
        flows.remove(account);
        flowing
    }

    /// The operator is about to send `name` for IAM user `user` through
    /// `account`: from now on its event is the operator's own (it may come
    /// back before the answer does). Returns what closes it with IAM's
    /// answer; nothing is tracked where no events are received.
    pub(crate) fn sending<'a>(
        &'a self,
        account: &str,
        name: &'static str,
        user: &str,
        sent_at: DateTime<Utc>,
        now: Instant,
    ) -> Sending<'a> {
        let mut flows = self.locked();
        let ticket = flows.get_mut(account).map(|flow| {
            flow.last_write = now;
            if flow.awaited.len() >= AWAITED_LIMIT {
                flow.awaited.pop_front();
            }
            let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
            flow.awaited.push_back(Awaited {
                ticket,
                name,
                user_key: iam_user_key(user),
                user: user.to_string(),
                request_id: None,
                written_at: sent_at,
                due: now + self.deadline,
                forgotten: now + 2 * self.deadline,
            });
            ticket
        });
        Sending {
            flows: self,
            account: account.to_string(),
            ticket,
        }
    }

    /// IAM's answer to the write of `ticket`. Applied: its event is
    /// awaited, by request id from now on (unless it came back already).
    /// Refused: nothing to await. Lost: IAM may have applied it or never
    /// received it, so its event is not awaited, but is still the
    /// operator's own if it comes (under `Enforce` it must not be taken for
    /// someone else's change).
    fn answered(&self, account: &str, ticket: u64, answer: Answer, now: Instant) {
        let mut flows = self.locked();
        let Some(flow) = flows.get_mut(account) else {
            return;
        };
        let Some(index) = flow.awaited.iter().position(|a| a.ticket == ticket) else {
            return;
        };
        match answer {
            Answer::Applied(request_id) => flow.awaited[index].request_id = request_id,
            Answer::Refused => {
                flow.awaited.remove(index);
            }
            Answer::Lost => {
                let mut lost = flow.awaited.remove(index).expect("found");
                lost.forgotten = now + 2 * self.deadline;
                if flow.overdue.len() >= AWAITED_LIMIT {
                    flow.overdue.pop_front();
                }
                flow.overdue.push_back(lost);
            }
        }
    }

    /// An event of `account` arrived: whether it was of one of the
    /// operator's own writes (awaited, or late). One back in time shows
    /// that events flow; a late one does not.
    pub(crate) fn received(&self, account: &str, event: &IamEvent, now: Instant) -> bool {
        let mut flows = self.locked();
        let Some(flow) = flows.get_mut(account) else {
            return false;
        };
        judge(flow, now);
        let identity = flow.identity.as_deref();
        if let Some(index) = flow.awaited.iter().position(|a| a.matches(event, identity)) {
            flow.awaited.remove(index);
            flow.confirmed_at = Some(now);
            flow.late = None;
            return true;
        }
        let late = flow.overdue.iter().position(|a| a.matches(event, identity));
        late.map(|index| flow.overdue.remove(index)).is_some()
    }

    /// The last receive from `account`'s queue: answered, or why not.
    pub(crate) fn receiving(&self, account: &str, result: Result<(), String>) {
        if let Some(flow) = self.locked().get_mut(account) {
            flow.unreadable = result.err();
        }
    }

    /// What is known of `account`'s events now; `None` where none are
    /// received.
    pub(crate) fn verdict(&self, account: &str, now: Instant) -> Option<Verdict> {
        self.locked().get_mut(account).map(|flow| judge(flow, now))
    }

    /// Whether `account`'s events flow now (drift checks at the long period).
    pub(crate) fn flowing(&self, account: &str, now: Instant) -> bool {
        self.verdict(account, now).is_some_and(|v| v.is_flowing())
    }

    /// Whether the receiver should write a heartbeat for `account`: no
    /// write is awaited, and either none came back yet (or the last was
    /// late) or `every` has passed since the operator last wrote.
    pub(crate) fn heartbeat_due(&self, account: &str, every: Duration, now: Instant) -> bool {
        let mut flows = self.locked();
        let Some(flow) = flows.get_mut(account) else {
            return false;
        };
        let verdict = judge(flow, now);
        flow.awaited.is_empty()
            && match verdict {
                Verdict::Unreadable(_) => false,
                Verdict::Flowing => now.duration_since(flow.last_write) >= every,
                Verdict::Unconfirmed | Verdict::Late(_) => true,
            }
    }
}

/// The verdict on one flow, moving writes whose deadline passed to late.
fn judge(flow: &mut Flow, now: Instant) -> Verdict {
    while let Some(first) = flow.awaited.front()
        && first.due <= now
    {
        let overdue = flow.awaited.pop_front().expect("checked");
        flow.late = Some(format!(
            "the event of {} for IAM user {:?} (written at {}) did not arrive within the event deadline",
            overdue.name,
            overdue.user,
            overdue
                .written_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
        if flow.overdue.len() >= AWAITED_LIMIT {
            flow.overdue.pop_front();
        }
        flow.overdue.push_back(overdue);
    }
    while flow
        .overdue
        .front()
        .is_some_and(|first| first.forgotten <= now)
    {
        flow.overdue.pop_front();
    }
    if let Some(why) = &flow.unreadable {
        return Verdict::Unreadable(why.clone());
    }
    if let Some(late) = &flow.late {
        return Verdict::Late(late.clone());
    }
    match flow.confirmed_at {
        Some(_) => Verdict::Flowing,
        None => Verdict::Unconfirmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_secs(60);

    /// The operator sent `name` for `user` at `written`, and IAM's
    /// `answer` came at `now`.
    fn answered_write(
        flows: &EventFlows,
        (account, name, user): (&str, &'static str, &str),
        written: DateTime<Utc>,
        now: Instant,
        answer: Answer,
    ) {
        let mut sending = flows.sending(account, name, user, written, now);
        if let Some(ticket) = sending.ticket.take() {
            flows.answered(account, ticket, answer, now);
        }
    }

    /// The same, applied with `request_id`.
    fn wrote(
        flows: &EventFlows,
        account: &str,
        name: &'static str,
        user: &str,
        request_id: RequestId,
        written: DateTime<Utc>,
        now: Instant,
    ) {
        let write = (account, name, user);
        answered_write(flows, write, written, now, Answer::Applied(request_id));
    }

    fn event(name: &'static str, user: &str, time: Option<DateTime<Utc>>) -> IamEvent {
        IamEvent {
            id: "id".into(),
            name,
            account_id: "111122223333".into(),
            user: user.into(),
            caller: String::new(),
            request_id: None,
            time,
            refused: None,
        }
    }

    #[test]
    fn a_write_that_comes_back_in_time_means_flowing_and_one_that_does_not_means_late() {
        let flows = EventFlows::new(DEADLINE);
        let start = Instant::now();
        let written = Utc::now();
        flows.start("a", start);
        assert_eq!(flows.verdict("a", start), Some(Verdict::Unconfirmed));
        assert_eq!(flows.verdict("other", start), None);

        wrote(&flows, "a", "TagUser", "Alice", None, written, start);
        assert!(!flows.received("a", &event("TagUser", "bob", None), start));
        assert!(
            !flows.received(
                "a",
                &event(
                    "TagUser",
                    "alice",
                    Some(written - chrono::TimeDelta::minutes(1))
                ),
                start
            ),
            "an event from before the write is someone else's"
        );
        assert!(flows.received("a", &event("TagUser", "alice", Some(written)), start));
        assert!(flows.flowing("a", start));

        wrote(
            &flows,
            "a",
            "UpdateLoginProfile",
            "bob",
            None,
            written,
            start,
        );
        assert!(flows.flowing("a", start + DEADLINE / 2), "not due yet");
        let late = flows.verdict("a", start + DEADLINE).unwrap();
        assert!(
            matches!(&late, Verdict::Late(why) if why.contains("UpdateLoginProfile") && why.contains("\"bob\"")),
            "{late:?}"
        );
        assert!(
            flows.received(
                "a",
                &event("UpdateLoginProfile", "bob", None),
                start + DEADLINE
            ),
            "late, and still the operator's own"
        );
        assert!(
            matches!(flows.verdict("a", start + DEADLINE), Some(Verdict::Late(_))),
            "a late event does not show that events flow"
        );
        assert!(
            !flows.received(
                "a",
                &event("UpdateLoginProfile", "bob", None),
                start + DEADLINE
            ),
            "recognized once"
        );
        wrote(
            &flows,
            "a",
            "TagUser",
            "bob",
            None,
            written,
            start + DEADLINE,
        );
        assert!(flows.received("a", &event("TagUser", "bob", None), start + DEADLINE));
        assert!(
            flows.flowing("a", start + DEADLINE),
            "a later write came back"
        );
        wrote(
            &flows,
            "a",
            "UpdateLoginProfile",
            "carol",
            None,
            written,
            start + DEADLINE,
        );
        assert!(
            !flows.received(
                "a",
                &event("UpdateLoginProfile", "carol", None),
                start + 3 * DEADLINE
            ),
            "lost for good: a later event is someone else's"
        );
    }

    #[test]
    fn a_request_id_tells_the_operators_write_from_someone_elses_in_the_same_seconds() {
        let flows = EventFlows::new(DEADLINE);
        let now = Instant::now();
        let written = Utc::now();
        flows.start("a", now);
        wrote(
            &flows,
            "a",
            "UpdateLoginProfile",
            "bob",
            Some("req-ours".into()),
            written,
            now,
        );
        let with_id = |id: &str| IamEvent {
            request_id: Some(id.into()),
            ..event("UpdateLoginProfile", "bob", Some(written))
        };
        assert!(
            !flows.received("a", &with_id("req-theirs"), now),
            "same call, user and second, another request: someone else's"
        );
        assert!(flows.received("a", &with_id("req-ours"), now));
        wrote(&flows, "a", "TagUser", "bob", None, written, now);
        assert!(
            flows.received(
                "a",
                &IamEvent {
                    request_id: Some("req-any".into()),
                    ..event("TagUser", "bob", Some(written))
                },
                now
            ),
            "an answer without a request id: by call, user and time"
        );
    }

    #[test]
    fn without_a_request_id_the_caller_tells_a_lost_answers_write_from_someone_elses() {
        let flows = EventFlows::new(DEADLINE);
        let start = Instant::now();
        let sent = Utc::now();
        flows.start("a", start);
        flows.identify("a", "arn:aws:sts::111122223333:assumed-role/operator/lpo");
        let by = |caller: &str| IamEvent {
            caller: caller.into(),
            request_id: Some("req-unknown".into()),
            ..event("UpdateLoginProfile", "bob", Some(sent))
        };
        let write = ("a", "UpdateLoginProfile", "bob");
        answered_write(&flows, write, sent, start, Answer::Lost);
        let later = start + DEADLINE;
        assert_eq!(
            flows.verdict("a", later),
            Some(Verdict::Unconfirmed),
            "a write whose answer was lost is not awaited: IAM may never have received it"
        );
        assert!(
            !flows.received("a", &by("arn:aws:iam::111122223333:user/admin"), later),
            "the same call on the same user by someone else"
        );
        assert!(
            flows.received(
                "a",
                &by("arn:aws:sts::111122223333:assumed-role/operator/lpo"),
                later
            ),
            "the operator's own, though its answer was lost"
        );
        assert!(
            !flows.received(
                "a",
                &by("arn:aws:sts::111122223333:assumed-role/operator/lpo"),
                later
            ),
            "recognized once"
        );
    }

    #[test]
    fn an_event_back_before_its_answer_is_the_operators_own() {
        let flows = EventFlows::new(DEADLINE);
        let now = Instant::now();
        let sent = Utc::now();
        flows.start("a", now);
        let sending = flows.sending("a", "UpdateLoginProfile", "bob", sent, now);
        assert!(
            flows.received("a", &event("UpdateLoginProfile", "bob", Some(sent)), now),
            "IAM applied it; its answer is still on its way"
        );
        assert!(flows.flowing("a", now));
        sending.answered(Ok(&Some("req-ours".into())));
        assert!(
            flows.heartbeat_due("a", Duration::ZERO, now),
            "nothing left awaited: the answer found its event already back"
        );
        let refused = flows.sending("a", "UpdateLoginProfile", "bob", sent, now);
        refused.answered(Err(&IamError::PasswordPolicyViolation("reused".into())));
        let dropped = flows.sending("a", "TagUser", "bob", sent, now);
        drop(dropped);
        assert_eq!(
            flows.verdict("a", now + 2 * DEADLINE),
            Some(Verdict::Flowing),
            "neither a refused write nor one dropped unanswered is awaited"
        );
    }

    #[test]
    fn an_unreadable_queue_is_not_flowing_until_it_is_read_again() {
        let flows = EventFlows::new(DEADLINE);
        let now = Instant::now();
        flows.start("a", now);
        wrote(&flows, "a", "TagUser", "alice", None, Utc::now(), now);
        flows.received("a", &event("TagUser", "alice", None), now);
        flows.receiving("a", Err("AccessDenied".into()));
        assert_eq!(
            flows.verdict("a", now),
            Some(Verdict::Unreadable("AccessDenied".into()))
        );
        assert!(!flows.heartbeat_due("a", Duration::ZERO, now));
        flows.receiving("a", Ok(()));
        assert!(flows.flowing("a", now));
        assert!(flows.stop("a", now), "it was flowing");
        assert_eq!(flows.verdict("a", now), None);
        wrote(&flows, "a", "TagUser", "alice", None, Utc::now(), now);
        assert_eq!(
            flows.verdict("a", now),
            None,
            "no receiver, nothing awaited"
        );
    }

    #[test]
    fn a_heartbeat_is_due_when_nothing_is_awaited_and_nothing_confirmed_lately() {
        let flows = EventFlows::new(DEADLINE);
        let hour = Duration::from_secs(3600);
        let start = Instant::now();
        flows.start("a", start);
        assert!(
            flows.heartbeat_due("a", hour, start),
            "unconfirmed: at once"
        );
        wrote(&flows, "a", "TagUser", "alice", None, Utc::now(), start);
        assert!(!flows.heartbeat_due("a", hour, start), "one is awaited");
        flows.received("a", &event("TagUser", "alice", None), start);
        assert!(!flows.heartbeat_due("a", hour, start + hour / 2));
        assert!(flows.heartbeat_due("a", hour, start + hour));
        wrote(
            &flows,
            "a",
            "UpdateLoginProfile",
            "bob",
            None,
            Utc::now(),
            start + hour,
        );
        assert!(
            flows.heartbeat_due("a", hour, start + hour + DEADLINE),
            "late: a heartbeat as soon as nothing is awaited"
        );
    }
}
