//! The operator's crash-safety marks on a LoginProfile (docs/reliability.md):
//! when it took charge, and which password it is sending. They ride in the
//! metadata patch that adds the finalizer, so the normal path gains no
//! write; but metadata is the tenant's to write, so a mark is believed only
//! when it carries the operator's seal (an HMAC under the fingerprint key
//! over the object's uid, the mark's kind and its value) and was written
//! after status `writesSettledThrough`, which only the operator writes. A
//! forged mark, one copied from another object, and one replayed after the
//! operator settled it all read as absent. Even an open mark proves nothing
//! outside the attempt it records: IAM applies a write within the operator's
//! write deadline of its mark or not at all, so only a profile created in
//! that window can be this resource's own, however long a tenant keeps the
//! mark from being settled. Pure: no I/O.

use chrono::{DateTime, SecondsFormat, Utc};
use kube::ResourceExt;

use crate::{api::login_profile::LoginProfile, rules::password::Fingerprinter};

/// When this operator took charge of the object, sealed: only a login
/// profile IAM created after it can be this resource's own.
pub const IN_CHARGE_SINCE_ANNOTATION: &str = "iam.loginprofile.dev/in-charge-since";
/// `<fingerprint> over <fingerprint in status, or none> at <time>`, sealed:
/// the password the operator is about to send, and what status recorded
/// when it started.
pub const SENDING_ANNOTATION: &str = "iam.loginprofile.dev/sending";

/// How far IAM's clock (CreateDate, whole seconds) and the operator's may
/// disagree: both are NTP-synchronized (Amazon Time Sync on EKS), not
/// identical.
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(2);

const IN_CHARGE_KIND: &str = "in-charge-since";
const SENDING_KIND: &str = "sending";

/// The marks of one LoginProfile that the operator may believe: sealed by
/// it, for this object, and not settled since.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    in_charge_since: Option<DateTime<Utc>>,
    sending: Option<Sending>,
    /// The fingerprint status records (`none` without one).
    recorded: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Sending {
    fingerprint: String,
    over: String,
    at: DateTime<Utc>,
}

/// When IAM may have applied the write of one attempt: from its mark's time
/// (less the clock skew) to that time plus the write deadline (plus the
/// skew). The act step sends a write only if its answer can arrive before
/// the deadline, so nothing this resource sent can land later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptWindow {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl AttemptWindow {
    /// The window of an attempt marked at `at`, with writes bounded by `deadline`.
    pub fn of(at: DateTime<Utc>, deadline: std::time::Duration) -> Self {
        let deadline = chrono::Duration::from_std(deadline).unwrap_or(chrono::Duration::MAX);
        Self {
            from: at - CLOCK_SKEW,
            until: at.checked_add_signed(deadline + CLOCK_SKEW).unwrap_or(at),
        }
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at <= self.until
    }
}

impl Marks {
    /// Reads the marks of `lp`, believing only what `keys` sealed for it.
    pub fn read(lp: &LoginProfile, keys: &Fingerprinter) -> Self {
        let uid = lp.uid().unwrap_or_default();
        let settled = settled_through(lp);
        let open = |at: &DateTime<Utc>| settled.is_none_or(|settled| *at > settled);
        let unsealed = |annotation: &str, kind: &str| {
            let (value, seal) = lp.annotations().get(annotation)?.rsplit_once(' ')?;
            keys.unseal(kind, &uid, value, seal)
                .then(|| value.to_string())
        };
        let in_charge_since = unsealed(IN_CHARGE_SINCE_ANNOTATION, IN_CHARGE_KIND)
            .and_then(|value| marked_at(IN_CHARGE_KIND, &value))
            .filter(open);
        let sending = unsealed(SENDING_ANNOTATION, SENDING_KIND)
            .and_then(|value| {
                let at = marked_at(SENDING_KIND, &value)?;
                let (marked, _) = value.rsplit_once(" at ")?;
                let (fingerprint, over) = marked.split_once(" over ")?;
                Some(Sending {
                    fingerprint: fingerprint.to_string(),
                    over: over.to_string(),
                    at,
                })
            })
            .filter(|sending| open(&sending.at));
        Self {
            in_charge_since,
            sending,
            recorded: recorded(lp),
        }
    }

    /// When the operator took charge, while that window is open.
    pub fn in_charge_since(&self) -> Option<DateTime<Utc>> {
        self.in_charge_since
    }

    /// The windows of the create attempts these marks record (the first,
    /// when the operator took charge, and the latest sending): only a
    /// profile IAM created within one of them can be this resource's own.
    /// Empty once settled, or when the operator never took charge.
    pub fn attempt_windows(&self, deadline: std::time::Duration) -> Vec<AttemptWindow> {
        let Some(since) = self.in_charge_since else {
            return Vec::new();
        };
        std::iter::once(since)
            .chain(self.sending.as_ref().map(|s| s.at).filter(|at| *at > since))
            .map(|at| AttemptWindow::of(at, deadline))
            .collect()
    }

    /// The mark time of the latest create attempt, while one is open.
    pub fn latest_attempt(&self) -> Option<DateTime<Utc>> {
        let since = self.in_charge_since?;
        Some(self.sending.as_ref().map_or(since, |s| s.at.max(since)))
    }

    /// When the latest attempt's window closes, while one is open: a retry
    /// whose earlier attempt got no answer must not stamp a new attempt
    /// before then (the earlier request may still land), nor without a look
    /// at IAM made after it.
    pub fn latest_window_closes(&self, deadline: std::time::Duration) -> Option<DateTime<Utc>> {
        self.latest_attempt()
            .map(|at| AttemptWindow::of(at, deadline).until)
    }

    /// The fingerprint of a password whose sending started from what status
    /// records now and whose answer never reached status.
    pub fn unconfirmed_sending(&self) -> Option<&str> {
        self.sending
            .as_ref()
            .filter(|s| s.over == self.recorded && s.fingerprint != self.recorded)
            .map(|s| s.fingerprint.as_str())
    }

    /// Whether an open mark already says that `fingerprint` is being sent
    /// over what status records: then a new attempt needs no new mark.
    pub fn sending_now(&self, fingerprint: &str) -> bool {
        self.unconfirmed_sending() == Some(fingerprint)
    }

    /// What status `writesSettledThrough` becomes when the outcome of every
    /// write these marks speak of is known (a definite refusal, or a profile
    /// found to be someone else's): the latest open mark's time. `None` when
    /// nothing is open.
    pub fn settle(&self) -> Option<String> {
        self.in_charge_since
            .into_iter()
            .chain(self.sending.as_ref().map(|s| s.at))
            .max()
            .map(format_time)
    }
}

/// The time a new mark on `lp` carries: now, or just after what status
/// settled if the clock says otherwise (another replica's clock may be
/// behind), so a new mark is never born settled.
pub fn stamp(lp: &LoginProfile) -> DateTime<Utc> {
    let now = parse_time(&format_time(Utc::now())).expect("our own format parses");
    match settled_through(lp) {
        Some(settled) if now <= settled => settled + chrono::Duration::milliseconds(1),
        _ => now,
    }
}

/// The sealed `in-charge-since` annotation for taking charge of `lp` at `at`.
pub fn in_charge_value(keys: &Fingerprinter, lp: &LoginProfile, at: DateTime<Utc>) -> String {
    sealed(keys, lp, IN_CHARGE_KIND, format_time(at))
}

/// The sealed `sending` annotation for sending `fingerprint` now, over what
/// status records.
pub fn sending_value(
    keys: &Fingerprinter,
    lp: &LoginProfile,
    fingerprint: &str,
    at: DateTime<Utc>,
) -> String {
    let value = format!("{fingerprint} over {} at {}", recorded(lp), format_time(at));
    sealed(keys, lp, SENDING_KIND, value)
}

fn sealed(keys: &Fingerprinter, lp: &LoginProfile, kind: &str, value: String) -> String {
    let seal = keys.seal(kind, &lp.uid().unwrap_or_default(), &value);
    format!("{value} {seal}")
}

/// The time a mark's value (without its seal) carries.
fn marked_at(kind: &str, value: &str) -> Option<DateTime<Utc>> {
    match kind {
        IN_CHARGE_KIND => parse_time(value),
        _ => parse_time(value.rsplit_once(" at ")?.1),
    }
}

/// Removes the mark annotations [`Marks::read`] would not believe whatever
/// the keys: settled (marked at or before status `writesSettledThrough`) or
/// not a mark at all. What is left reads the same. The operator's cache
/// keeps only open marks: a converged object's settled marks (two sealed
/// values, about 300 bytes and a map node) are most of its metadata, and
/// only an open mark can change a decision.
pub fn forget_settled(lp: &mut LoginProfile) {
    let settled = settled_through(lp);
    let believable = |kind: &str, raw: &str| {
        raw.rsplit_once(' ')
            .and_then(|(value, _seal)| marked_at(kind, value))
            .is_some_and(|at| settled.is_none_or(|settled| at > settled))
    };
    let annotations = lp.annotations_mut();
    for (annotation, kind) in [
        (IN_CHARGE_SINCE_ANNOTATION, IN_CHARGE_KIND),
        (SENDING_ANNOTATION, SENDING_KIND),
    ] {
        if annotations
            .get(annotation)
            .is_some_and(|raw| !believable(kind, raw))
        {
            annotations.remove(annotation);
        }
    }
}

fn recorded(lp: &LoginProfile) -> String {
    lp.status
        .as_ref()
        .and_then(|s| s.password_fingerprint.clone())
        .unwrap_or_else(|| "none".to_string())
}

fn settled_through(lp: &LoginProfile) -> Option<DateTime<Utc>> {
    lp.status
        .as_ref()
        .and_then(|s| s.writes_settled_through.as_deref())
        .and_then(parse_time)
}

fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::login_profile::{LoginProfileSpec, LoginProfileStatus};
    use zeroize::Zeroizing;

    fn keys(key: &[u8]) -> Fingerprinter {
        Fingerprinter::new(Zeroizing::new(key.to_vec()), vec![])
    }

    fn object(uid: &str) -> LoginProfile {
        let spec: LoginProfileSpec =
            serde_json::from_value(serde_json::json!({"passwordSecretRef": {"name": "s"}}))
                .unwrap();
        let mut lp = LoginProfile::new("bob", spec);
        lp.metadata.uid = Some(uid.into());
        lp
    }

    fn at(text: &str) -> DateTime<Utc> {
        parse_time(text).unwrap()
    }

    fn annotate(lp: &mut LoginProfile, annotation: &str, value: String) {
        lp.annotations_mut().insert(annotation.into(), value);
    }

    /// The marks of a first create at `at`: in charge since, sending `fp1`.
    fn take_charge(lp: &mut LoginProfile, keys: &Fingerprinter, at: DateTime<Utc>) {
        let (in_charge, sending) = (
            in_charge_value(keys, lp, at),
            sending_value(keys, lp, "fp1", at),
        );
        annotate(lp, IN_CHARGE_SINCE_ANNOTATION, in_charge);
        annotate(lp, SENDING_ANNOTATION, sending);
    }

    #[test]
    fn the_cache_forgets_only_marks_that_read_as_absent() {
        let ours = keys(b"operator-key");
        let first = at("2026-12-02T06:00:00.123Z");
        let mut lp = object("uid-1");
        take_charge(&mut lp, &ours, first);
        let cached = |lp: &LoginProfile| {
            let mut cached = lp.clone();
            forget_settled(&mut cached);
            assert_eq!(Marks::read(&cached, &ours), Marks::read(lp, &ours));
            let mut kept: Vec<String> = cached.annotations().keys().cloned().collect();
            kept.sort();
            kept
        };
        assert_eq!(
            cached(&lp),
            [IN_CHARGE_SINCE_ANNOTATION, SENDING_ANNOTATION],
            "open marks stay"
        );

        lp.status = Some(LoginProfileStatus {
            writes_settled_through: Some(format_time(first)),
            ..Default::default()
        });
        assert!(cached(&lp).is_empty(), "settled through their time");

        let later = first + chrono::Duration::seconds(5);
        let sending = sending_value(&ours, &lp, "fp2", later);
        annotate(&mut lp, SENDING_ANNOTATION, sending);
        assert_eq!(cached(&lp), [SENDING_ANNOTATION], "a later attempt is open");
        assert!(Marks::read(&lp, &ours).sending_now("fp2"));

        annotate(&mut lp, IN_CHARGE_SINCE_ANNOTATION, "no time here".into());
        assert_eq!(cached(&lp), [SENDING_ANNOTATION], "not a mark");
        let forged = format!("{} forged-seal", format_time(later));
        annotate(&mut lp, IN_CHARGE_SINCE_ANNOTATION, forged);
        assert_eq!(
            cached(&lp),
            [IN_CHARGE_SINCE_ANNOTATION, SENDING_ANNOTATION],
            "an open time is kept for the seal check to refuse"
        );
    }

    #[test]
    fn only_sealed_marks_for_this_object_are_believed() {
        let ours = keys(b"operator-key");
        let mut lp = object("uid-1");
        let since = at("2026-12-02T06:00:00.123Z");
        let mark = in_charge_value(&ours, &lp, since);
        annotate(&mut lp, IN_CHARGE_SINCE_ANNOTATION, mark);
        assert_eq!(Marks::read(&lp, &ours).in_charge_since(), Some(since));

        let mut forged = object("uid-1");
        annotate(
            &mut forged,
            IN_CHARGE_SINCE_ANNOTATION,
            "2000-01-01T00:00:00Z".into(),
        );
        assert_eq!(
            Marks::read(&forged, &ours).in_charge_since(),
            None,
            "unsealed"
        );
        let guessed = in_charge_value(&keys(b"tenant-guess"), &forged, at("2000-01-01T00:00:00Z"));
        annotate(&mut forged, IN_CHARGE_SINCE_ANNOTATION, guessed);
        assert_eq!(
            Marks::read(&forged, &ours).in_charge_since(),
            None,
            "another key"
        );

        let mut copied = object("uid-2");
        let sealed_for_uid_1 = lp.annotations()[IN_CHARGE_SINCE_ANNOTATION].clone();
        annotate(&mut copied, IN_CHARGE_SINCE_ANNOTATION, sealed_for_uid_1);
        assert_eq!(
            Marks::read(&copied, &ours).in_charge_since(),
            None,
            "another object"
        );

        let value = lp.annotations()[IN_CHARGE_SINCE_ANNOTATION].clone();
        let edited = value.replacen("06:00", "05:00", 1);
        annotate(&mut lp, IN_CHARGE_SINCE_ANNOTATION, edited);
        assert_eq!(
            Marks::read(&lp, &ours).in_charge_since(),
            None,
            "value edited"
        );
    }

    #[test]
    fn a_sending_mark_counts_only_while_status_has_not_moved_on() {
        let ours = keys(b"operator-key");
        let mut lp = object("uid-1");
        let mark = sending_value(&ours, &lp, "fp-new", at("2026-12-02T06:00:00Z"));
        assert!(mark.starts_with("fp-new over none at 2026-12-02T06:00:00.000Z hmac-sha256:"));
        annotate(&mut lp, SENDING_ANNOTATION, mark);
        assert_eq!(
            Marks::read(&lp, &ours).unconfirmed_sending(),
            Some("fp-new"),
            "nothing recorded yet"
        );
        assert!(Marks::read(&lp, &ours).sending_now("fp-new"));
        lp.status = Some(LoginProfileStatus {
            password_fingerprint: Some("fp-new".into()),
            ..Default::default()
        });
        assert_eq!(
            Marks::read(&lp, &ours).unconfirmed_sending(),
            None,
            "confirmed"
        );
        lp.status.as_mut().unwrap().password_fingerprint = Some("fp-later".into());
        assert_eq!(
            Marks::read(&lp, &ours).unconfirmed_sending(),
            None,
            "an old mark never vouches for a later rotation"
        );
    }

    #[test]
    fn settling_closes_every_mark_written_until_then_and_no_later_one() {
        let ours = keys(b"operator-key");
        let mut lp = object("uid-1");
        let first = at("2026-12-02T06:00:00.100Z");
        take_charge(&mut lp, &ours, first);
        let marks = Marks::read(&lp, &ours);
        assert_eq!(marks.settle().as_deref(), Some("2026-12-02T06:00:00.100Z"));

        // A definite refusal: status records the settlement.
        lp.status = Some(LoginProfileStatus {
            writes_settled_through: marks.settle(),
            ..Default::default()
        });
        let settled = Marks::read(&lp, &ours);
        assert_eq!(settled.in_charge_since(), None);
        assert_eq!(settled.unconfirmed_sending(), None);
        assert_eq!(settled.settle(), None, "nothing left open");

        // The same sealed marks put back later (a replay) stay closed; a mark
        // written after the settlement is believed.
        let later = stamp(&lp);
        assert!(later > first);
        let mark = sending_value(&ours, &lp, "fp1", later);
        annotate(&mut lp, SENDING_ANNOTATION, mark);
        assert_eq!(Marks::read(&lp, &ours).unconfirmed_sending(), Some("fp1"));
        assert_eq!(Marks::read(&lp, &ours).in_charge_since(), None);
    }

    #[test]
    fn each_attempt_has_a_bounded_window() {
        let ours = keys(b"operator-key");
        let mut lp = object("uid-1");
        let deadline = std::time::Duration::from_secs(30);
        assert!(Marks::read(&lp, &ours).attempt_windows(deadline).is_empty());
        let first = at("2026-12-02T06:00:00Z");
        take_charge(&mut lp, &ours, first);
        let marks = Marks::read(&lp, &ours);
        assert_eq!(
            marks.attempt_windows(deadline),
            [AttemptWindow {
                from: at("2026-12-02T05:59:58Z"),
                until: at("2026-12-02T06:00:32Z"),
            }]
        );
        assert_eq!(marks.latest_attempt(), Some(first));

        // A retry stamps its own window; the first one's stays.
        let retry = at("2026-12-02T06:05:00Z");
        let restamped = sending_value(&ours, &lp, "fp1", retry);
        annotate(&mut lp, SENDING_ANNOTATION, restamped);
        let marks = Marks::read(&lp, &ours);
        assert_eq!(marks.attempt_windows(deadline).len(), 2);
        assert_eq!(marks.latest_attempt(), Some(retry));
        assert_eq!(
            marks.latest_window_closes(deadline),
            Some(at("2026-12-02T06:05:32Z"))
        );
        let window = AttemptWindow::of(retry, deadline);
        assert!(window.contains(at("2026-12-02T06:05:31Z")));
        assert!(!window.contains(at("2026-12-02T06:05:33Z")));
        assert!(!window.contains(at("2026-12-02T06:04:57Z")));
    }

    #[test]
    fn a_new_mark_is_never_born_settled() {
        let mut lp = object("uid-1");
        let future = Utc::now() + chrono::Duration::hours(1);
        lp.status = Some(LoginProfileStatus {
            writes_settled_through: Some(format_time(future)),
            ..Default::default()
        });
        let stamped = stamp(&lp);
        assert!(stamped > parse_time(&format_time(future)).unwrap());
    }
}
