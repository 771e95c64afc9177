//! Building the status conditions (Ready, Reconciling, Stalled) the kstatus
//! way, so that Argo CD, Flux and `kubectl wait` read health unchanged.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::reason::Reason;

/// `status.observedGeneration` of an object the operator never acted on
/// (the CRDs' status default).
pub const NOT_OBSERVED: i64 = -1;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// Whether `type_` is one of the kstatus conditions built here (the
/// others, such as governance's, are kept as they are).
pub fn is_kstatus(type_: &str) -> bool {
    [READY, RECONCILING, STALLED].contains(&type_)
}

/// The result of one reconcile, as status reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub reason: Reason,
    pub message: String,
}

impl Outcome {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// The conditions for `outcome`. Ready is always present; Reconciling and
/// Stalled are "abnormal-true" in kstatus and appear only while true. A
/// condition whose status did not change keeps its lastTransitionTime.
pub fn conditions(
    previous: &[Condition],
    outcome: &Outcome,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let ready = outcome.reason.is_ready();
    let terminal = !ready && outcome.reason.is_terminal();
    let mut wanted = vec![(READY, ready, outcome.message.clone())];
    if !ready && !terminal {
        wanted.push((RECONCILING, true, format!("retrying: {}", outcome.message)));
    }
    if terminal {
        wanted.push((STALLED, true, outcome.message.clone()));
    }
    wanted
        .into_iter()
        .map(|(type_, is_true, message)| {
            let status = if is_true { "True" } else { "False" };
            condition(
                previous,
                (type_, status, outcome.reason.as_str()),
                message,
                generation,
                now,
            )
        })
        .collect()
}

/// The condition (type, status, reason) with `message`; it keeps the
/// lastTransitionTime of the `previous` condition of its type when that
/// had the same status.
pub fn condition(
    previous: &[Condition],
    (type_, status, reason): (&str, &str, &str),
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Whether Ready changed status or reason between two condition lists: the
/// moments that deserve a Kubernetes Event (not every loop does).
pub fn ready_changed(previous: &[Condition], next: &[Condition]) -> bool {
    let key = |conditions: &[Condition]| {
        conditions
            .iter()
            .find(|c| c.type_ == READY)
            .map(|c| (c.status.clone(), c.reason.clone()))
    };
    key(previous) != key(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(1_800_000_000 + seconds).unwrap())
    }

    fn types(conditions: &[Condition]) -> Vec<(String, String)> {
        conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone()))
            .collect()
    }

    #[test]
    fn ready_outcome_has_only_ready_true() {
        let got = conditions(
            &[],
            &Outcome::new(Reason::Created, "created"),
            Some(3),
            &at(0),
        );
        assert_eq!(types(&got), vec![("Ready".into(), "True".into())]);
        assert_eq!(got[0].reason, "Created");
        assert_eq!(got[0].observed_generation, Some(3));
    }

    #[test]
    fn terminal_failure_is_stalled_not_reconciling() {
        let got = conditions(
            &[],
            &Outcome::new(Reason::SecretNotFound, "create it"),
            Some(1),
            &at(0),
        );
        assert_eq!(
            types(&got),
            vec![
                ("Ready".into(), "False".into()),
                ("Stalled".into(), "True".into())
            ]
        );
    }

    #[test]
    fn transient_failure_is_reconciling_not_stalled() {
        let got = conditions(
            &[],
            &Outcome::new(Reason::Throttled, "rate exceeded"),
            Some(1),
            &at(0),
        );
        assert_eq!(
            types(&got),
            vec![
                ("Ready".into(), "False".into()),
                ("Reconciling".into(), "True".into())
            ]
        );
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let first = conditions(
            &[],
            &Outcome::new(Reason::Created, "created"),
            Some(1),
            &at(0),
        );
        let same = conditions(
            &first,
            &Outcome::new(Reason::UpToDate, "up to date"),
            Some(1),
            &at(60),
        );
        assert_eq!(same[0].last_transition_time, at(0));
        let failed = conditions(
            &same,
            &Outcome::new(Reason::SecretNotFound, "gone"),
            Some(2),
            &at(120),
        );
        assert_eq!(failed[0].last_transition_time, at(120));
    }

    #[test]
    fn events_only_on_ready_transitions() {
        let created = conditions(
            &[],
            &Outcome::new(Reason::Created, "created"),
            Some(1),
            &at(0),
        );
        let again = conditions(
            &created,
            &Outcome::new(Reason::Created, "created"),
            Some(1),
            &at(5),
        );
        assert!(ready_changed(&[], &created));
        assert!(!ready_changed(&created, &again));
        let updated = conditions(
            &created,
            &Outcome::new(Reason::Updated, "updated"),
            Some(1),
            &at(9),
        );
        assert!(
            ready_changed(&created, &updated),
            "a new reason is a transition"
        );
    }
}
