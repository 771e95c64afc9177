//! Prometheus metrics. Every label has a small, fixed set of values: no
//! object names, user names or messages, which would grow without bound.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IamCallLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IamEventLabels {
    /// One of the event names acted on, or `unknown` for a message that is
    /// not one of them.
    event: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    condition: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// The states of an IAMAccount's IAM events, for the `iam_event_queues` gauge.
pub const EVENT_QUEUE_STATES: [&str; 4] = ["flowing", "unconfirmed", "late", "unreadable"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsoleLabels {
    /// The AWS account id: one per IAMAccount, so bounded.
    account_id: String,
    finding: &'static str,
}

/// What governance found about one LoginProfile's person, for the
/// `console_users` gauge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ConsoleFindings {
    pub no_mfa: bool,
    pub unused: bool,
    pub expiring: bool,
    pub disabled: bool,
}

impl ConsoleFindings {
    const LABELS: [&'static str; 4] = ["no_mfa", "unused", "expiring", "disabled"];

    fn has(self, finding: &str) -> bool {
        match finding {
            "no_mfa" => self.no_mfa,
            "unused" => self.unused,
            "expiring" => self.expiring,
            _ => self.disabled,
        }
    }
}

/// Where a managed LoginProfile stands, for the `profiles` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileState {
    Ready,
    Reconciling,
    Stalled,
    /// Being deleted, held by the mass-deletion guard.
    DeletionPaced,
}

impl ProfileState {
    fn label(self) -> &'static str {
        match self {
            ProfileState::Ready => "ready",
            ProfileState::Reconciling => "reconciling",
            ProfileState::Stalled => "stalled",
            ProfileState::DeletionPaced => "deletion_paced",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    iam_calls: Family<IamCallLabels, Counter>,
    secrets_manager_calls: Family<IamCallLabels, Counter>,
    sqs_calls: Family<IamCallLabels, Counter>,
    iam_events: Family<IamEventLabels, Counter>,
    iam_event_lag: Histogram,
    event_queues: Family<StateLabels, Gauge>,
    event_queue_states: Mutex<HashMap<String, &'static str>>,
    profiles: Family<ConditionLabels, Gauge>,
    drift_check_period: Gauge<f64, std::sync::atomic::AtomicU64>,
    resync_period: Gauge<f64, std::sync::atomic::AtomicU64>,
    leader: Gauge,
    accounts: Family<ConditionLabels, Gauge>,
    console: Family<ConsoleLabels, Gauge>,
    /// Governance findings of each object, keyed by namespace/name, with
    /// its account id; never exported by object.
    console_states: Mutex<HashMap<String, (String, ConsoleFindings)>>,
    /// Whether each IAMAccount is ready, by name; never exported as a label.
    account_states: Mutex<HashMap<String, bool>>,
    roots: Family<ConditionLabels, Gauge>,
    root_states: Mutex<HashMap<String, bool>>,
    /// The state of each managed object, keyed by namespace/name, so the
    /// gauge can be recomputed; never exported as a label.
    states: Mutex<HashMap<String, ProfileState>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("loginprofile");
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles of LoginProfiles by result (ok, stalled, error), every one counted, those that needed no call too",
            reconciles.clone(),
        );
        let iam_calls = Family::<IamCallLabels, Counter>::default();
        registry.register(
            "iam_calls",
            "IAM API calls by operation and outcome (after the SDK's own retries)",
            iam_calls.clone(),
        );
        let secrets_manager_calls = Family::<IamCallLabels, Counter>::default();
        registry.register(
            "secretsmanager_calls",
            "AWS Secrets Manager API calls by operation and outcome",
            secrets_manager_calls.clone(),
        );
        let sqs_calls = Family::<IamCallLabels, Counter>::default();
        registry.register(
            "sqs_calls",
            "SQS API calls on the queues of IAM events (IAMAccount spec.events), by operation and outcome",
            sqs_calls.clone(),
        );
        let iam_events = Family::<IamEventLabels, Counter>::default();
        registry.register(
            "iam_events",
            "Messages received from the queues of IAM events, by event name and outcome (handled: the LoginProfiles naming its user were woken; own: the operator's own write, come back; unmatched: no LoginProfile of the IAMAccount names its user; duplicate: its eventID was seen; refused: a call IAM refused, which changed nothing; foreign: another AWS account's; ignored: another call or service; malformed)",
            iam_events.clone(),
        );
        let iam_event_lag = Histogram::new([1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0]);
        registry.register(
            "iam_event_lag_seconds",
            "How long after IAM answered a call its event was received (the event's eventTime to its receipt)",
            iam_event_lag.clone(),
        );
        let event_queues = Family::<StateLabels, Gauge>::default();
        registry.register(
            "iam_event_queues",
            "IAMAccounts whose IAM events are received, by state (flowing: the operator's own writes come back in time, drift checks at --drift-period-with-events; unconfirmed: none came back yet; late: one did not come back within --event-deadline; unreadable: the queue cannot be read)",
            event_queues.clone(),
        );
        // Every state from zero: the alert's expression exists before the first queue.
        for state in EVENT_QUEUE_STATES {
            event_queues.get_or_create(&StateLabels { state }).set(0);
        }
        let profiles = Family::<ConditionLabels, Gauge>::default();
        registry.register(
            "profiles",
            "Managed LoginProfiles by condition (ready, reconciling, stalled, deletion_paced: a deletion the mass-deletion guard holds)",
            profiles.clone(),
        );
        let drift_check_period = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "drift_check_period_seconds",
            "How often each LoginProfile is checked for drift: the resync period, or longer when --drift-check-rate cannot check them all in it",
            drift_check_period.clone(),
        );
        let resync_period = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "resync_period_seconds",
            "The configured --resync-period: the drift check period the operator aims for",
            resync_period.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica may write to IAM (it holds the Lease, or runs without leader election), else 0",
            leader.clone(),
        );
        let accounts = Family::<ConditionLabels, Gauge>::default();
        registry.register(
            "iam_accounts",
            "IAMAccounts by condition (ready: their credentials work; not_ready)",
            accounts.clone(),
        );
        let roots = Family::<ConditionLabels, Gauge>::default();
        registry.register(
            "root_login_profiles",
            "RootLoginProfiles by condition (ready: root is as declared; not_ready), with --manage-root-login-profiles",
            roots.clone(),
        );
        // Both series from zero: the alert's expression exists before the first one.
        for condition in ["ready", "not_ready"] {
            roots.get_or_create(&ConditionLabels { condition }).set(0);
        }
        let console = Family::<ConsoleLabels, Gauge>::default();
        registry.register(
            "console_users",
            "LoginProfiles whose person breaks a console-access rule, by AWS account id and finding (no_mfa, unused, expiring, disabled), from the credential report",
            console.clone(),
        );
        // Every result from zero, so rates and ratios exist before the first error.
        for result in ["ok", "stalled", "error"] {
            let _ = reconciles.get_or_create(&ResultLabels { result });
        }
        Self {
            registry,
            reconciles,
            iam_calls,
            secrets_manager_calls,
            sqs_calls,
            iam_events,
            iam_event_lag,
            event_queues,
            event_queue_states: Mutex::new(HashMap::new()),
            profiles,
            drift_check_period,
            resync_period,
            leader,
            accounts,
            console,
            console_states: Mutex::new(HashMap::new()),
            account_states: Mutex::new(HashMap::new()),
            roots,
            root_states: Mutex::new(HashMap::new()),
            states: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, result: &'static str) {
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub fn iam_call(&self, operation: &'static str, outcome: &'static str) {
        self.iam_calls
            .get_or_create(&IamCallLabels { operation, outcome })
            .inc();
    }

    pub fn secrets_manager_call(&self, operation: &'static str, outcome: &'static str) {
        self.secrets_manager_calls
            .get_or_create(&IamCallLabels { operation, outcome })
            .inc();
    }

    pub fn sqs_call(&self, operation: &'static str, outcome: &'static str) {
        self.sqs_calls
            .get_or_create(&IamCallLabels { operation, outcome })
            .inc();
    }

    pub fn iam_event(&self, event: &'static str, outcome: &'static str) {
        self.iam_events
            .get_or_create(&IamEventLabels { event, outcome })
            .inc();
    }

    /// An event was received `lag` after IAM answered its call.
    pub fn iam_event_lag(&self, lag: std::time::Duration) {
        self.iam_event_lag.observe(lag.as_secs_f64());
    }

    /// Records the state of IAMAccount `name`'s events (one of
    /// [`EVENT_QUEUE_STATES`]; `None`: no longer received) and recounts.
    pub fn set_event_queue_state(&self, name: &str, state: Option<&'static str>) {
        let mut states = self
            .event_queue_states
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match state {
            Some(state) => states.insert(name.to_string(), state),
            None => states.remove(name),
        };
        for state in EVENT_QUEUE_STATES {
            let count = states.values().filter(|s| **s == state).count();
            self.event_queues
                .get_or_create(&StateLabels { state })
                .set(count as i64);
        }
    }

    /// Where one managed object stands, as last set.
    pub fn profile_state(&self, key: &str) -> Option<ProfileState> {
        let states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states.get(key).copied()
    }

    /// Records the state of one object (`None`: it is gone) and updates the gauge.
    pub fn set_profile_state(&self, key: String, state: Option<ProfileState>) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        match state {
            Some(state) => states.insert(key, state),
            None => states.remove(&key),
        };
        self.count_profiles(&states);
    }

    /// Records what governance found for one object (`None`: nothing, or
    /// it is gone) and recounts its account's series.
    pub fn set_console_findings(&self, key: String, found: Option<(String, ConsoleFindings)>) {
        let mut states = self
            .console_states
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = match found {
            Some(found) => states.insert(key, found),
            None => states.remove(&key),
        };
        self.count_console(&states, before.map(|(account, _)| account));
    }

    /// Recounts every account that has a series, and `also` (an account
    /// whose last object may just have gone: its series drop to zero).
    fn count_console(
        &self,
        states: &HashMap<String, (String, ConsoleFindings)>,
        also: Option<String>,
    ) {
        let mut accounts: Vec<String> = states.values().map(|(a, _)| a.clone()).collect();
        accounts.extend(also);
        accounts.sort();
        accounts.dedup();
        for account_id in accounts {
            for finding in ConsoleFindings::LABELS {
                let count = states
                    .values()
                    .filter(|(a, f)| *a == account_id && f.has(finding))
                    .count();
                self.console
                    .get_or_create(&ConsoleLabels {
                        account_id: account_id.clone(),
                        finding,
                    })
                    .set(count as i64);
            }
        }
    }

    pub fn set_drift_check_period(&self, period: std::time::Duration) {
        self.drift_check_period.set(period.as_secs_f64());
    }

    pub fn set_resync_period(&self, period: std::time::Duration) {
        self.resync_period.set(period.as_secs_f64());
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Records whether an IAMAccount is ready (`None`: it is gone).
    pub fn set_account_ready(&self, name: &str, ready: Option<bool>) {
        count_ready(&self.account_states, &self.accounts, name, ready);
    }

    /// Records whether a RootLoginProfile is ready (`None`: it is gone).
    pub fn set_root_ready(&self, name: &str, ready: Option<bool>) {
        count_ready(&self.root_states, &self.roots, name, ready);
    }

    /// Forgets every object `keep` says is gone (deleted without a finalizer
    /// run, or no longer watched), so the gauge counts only what exists.
    pub fn retain_profiles(&self, keep: impl Fn(&str) -> bool) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states.retain(|key, _| keep(key));
        self.count_profiles(&states);
        let mut console = self
            .console_states
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let accounts: Vec<String> = console.values().map(|(a, _)| a.clone()).collect();
        console.retain(|key, _| keep(key));
        for account in accounts {
            self.count_console(&console, Some(account));
        }
    }

    fn count_profiles(&self, states: &HashMap<String, ProfileState>) {
        for each in [
            ProfileState::Ready,
            ProfileState::Reconciling,
            ProfileState::Stalled,
            ProfileState::DeletionPaced,
        ] {
            let count = states.values().filter(|s| **s == each).count();
            self.profiles
                .get_or_create(&ConditionLabels {
                    condition: each.label(),
                })
                .set(count as i64);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// Records `name`'s readiness (`None`: gone) in `states` and sets the
/// ready / not_ready counts of `family` from them.
fn count_ready(
    states: &Mutex<HashMap<String, bool>>,
    family: &Family<ConditionLabels, Gauge>,
    name: &str,
    ready: Option<bool>,
) {
    let mut states = states.lock().unwrap_or_else(PoisonError::into_inner);
    match ready {
        Some(ready) => states.insert(name.to_string(), ready),
        None => states.remove(name),
    };
    let ready = states.values().filter(|r| **r).count();
    for (condition, count) in [("ready", ready), ("not_ready", states.len() - ready)] {
        family
            .get_or_create(&ConditionLabels { condition })
            .set(count as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_bounded_labels() {
        let metrics = Metrics::default();
        metrics.reconciled("ok");
        metrics.iam_call("CreateLoginProfile", "ok");
        metrics.set_profile_state("team-a/bob".into(), Some(ProfileState::Ready));
        metrics.set_profile_state("team-a/eve".into(), Some(ProfileState::Stalled));
        metrics.set_profile_state("team-a/eve".into(), None);
        let text = metrics.render();
        assert!(
            text.contains(r#"loginprofile_reconciles_total{result="ok"} 1"#),
            "{text}"
        );
        assert!(text.contains(
            r#"loginprofile_iam_calls_total{operation="CreateLoginProfile",outcome="ok"} 1"#
        ));
        assert!(text.contains(r#"loginprofile_profiles{condition="ready"} 1"#));
        assert!(text.contains(r#"loginprofile_profiles{condition="stalled"} 0"#));
        assert!(!text.contains("bob"), "object names never become labels");
        metrics.set_account_ready("team-a-account", Some(false));
        metrics.set_account_ready("default", Some(true));
        let text = metrics.render();
        assert!(text.contains(r#"loginprofile_iam_accounts{condition="not_ready"} 1"#));
        assert!(text.contains(r#"loginprofile_root_login_profiles{condition="not_ready"} 0"#));
        metrics.set_root_ready("org-a", Some(false));
        metrics.set_root_ready("org-b", Some(true));
        metrics.set_root_ready("org-b", None);
        let text = metrics.render();
        assert!(text.contains(r#"loginprofile_root_login_profiles{condition="not_ready"} 1"#));
        assert!(text.contains(r#"loginprofile_root_login_profiles{condition="ready"} 0"#));
        assert!(
            !text.contains("team-a-account"),
            "account names never become labels"
        );
        let no_mfa = ConsoleFindings {
            no_mfa: true,
            ..ConsoleFindings::default()
        };
        metrics.set_console_findings("team-a/bob".into(), Some(("111122223333".into(), no_mfa)));
        metrics.set_console_findings("team-a/eve".into(), Some(("111122223333".into(), no_mfa)));
        let text = metrics.render();
        assert!(
            text.contains(
                r#"loginprofile_console_users{account_id="111122223333",finding="no_mfa"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"loginprofile_console_users{account_id="111122223333",finding="disabled"} 0"#
        ));
        metrics.set_console_findings("team-a/bob".into(), None);
        metrics.retain_profiles(|key| key != "team-a/eve");
        assert!(metrics.render().contains(
            r#"loginprofile_console_users{account_id="111122223333",finding="no_mfa"} 0"#
        ));
    }
}
