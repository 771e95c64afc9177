//! The command line: `run`, `crd` and `sample`. Every flag of `run` also
//! reads an environment variable (shown in `--help`), so a Deployment can set
//! it either way.

use std::{net::SocketAddr, num::NonZeroU32, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::{api::login_profile::DeletionPolicy, ops::telemetry::LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "loginprofile-operator",
    version,
    about = "Kubernetes operator for IAM console passwords (login profiles)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller. A flag given twice takes its last value, so a
    /// wrapper's defaults can be overridden by what follows them.
    #[command(args_override_self = true)]
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions (LoginProfile, IAMAccount, RootLoginProfile) as YAML.
    Crd,
    /// Print docs/reference.md: every flag, metric, field and condition reason.
    Reference,
    /// Print a commented example: a LoginProfile and its Secret, or with `root` a RootLoginProfile and its IAMAccount.
    Sample {
        #[arg(value_enum, default_value = "login-profile")]
        kind: SampleKind,
    },
}

/// Which example `sample` prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SampleKind {
    LoginProfile,
    Root,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Namespace to watch; repeat (or comma-separate in the variable) for several. Default: all namespaces.
    #[arg(long = "namespace", env = "LPO_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,

    /// The operator's own namespace, where it keeps its fingerprint key Secret.
    #[arg(long, env = "POD_NAMESPACE")]
    pub operator_namespace: Option<String>,

    /// File holding the key for password fingerprints (at least 16 bytes). Default: a Secret in --operator-namespace.
    #[arg(long, env = "LPO_FINGERPRINT_KEY_FILE")]
    pub fingerprint_key_file: Option<PathBuf>,

    /// File holding an older fingerprint key that still verifies (repeatable): keep it while rotating keys.
    #[arg(
        long = "fingerprint-old-key-file",
        env = "LPO_FINGERPRINT_OLD_KEY_FILES",
        value_delimiter = ','
    )]
    pub fingerprint_old_key_files: Vec<PathBuf>,

    /// Address of the /livez, /readyz and /metrics endpoints.
    #[arg(long, env = "LPO_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// How often each LoginProfile is checked against IAM for drift (jittered by ±10%).
    #[arg(long, env = "LPO_RESYNC_PERIOD", default_value = "10m", value_parser = positive_duration)]
    pub resync_period: Duration,

    /// While an IAMAccount's IAM events flow (spec.events, docs/events.md), how often its LoginProfiles are still checked against IAM: events find drift sooner, and this check is the safety net. Never shorter than --resync-period.
    #[arg(long, env = "LPO_DRIFT_PERIOD_WITH_EVENTS", default_value = "6h", value_parser = positive_duration)]
    pub drift_period_with_events: Duration,

    /// How long the IAM event of the operator's own write may take to come back through an IAMAccount's queue; later, its events count as not flowing (condition EventsFlowing False, drift checks at --resync-period again).
    #[arg(long, env = "LPO_EVENT_DEADLINE", default_value = "15m", value_parser = positive_duration)]
    pub event_deadline: Duration,

    /// How long an IAMAccount with IAM events may go without a write of the operator's before it writes one to see that events still flow (the tag iam.loginprofile.dev/heartbeat on an IAM user its LoginProfiles manage).
    #[arg(long, env = "LPO_EVENT_HEARTBEAT_PERIOD", default_value = "1h", value_parser = positive_duration)]
    pub event_heartbeat_period: Duration,

    /// LoginProfiles reconciled at once.
    #[arg(long, env = "LPO_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// IAM calls per second in each AWS account (IAM's own limits are per account).
    #[arg(long, env = "LPO_IAM_RATE_LIMIT", default_value = "10")]
    pub iam_rate_limit: NonZeroU32,

    /// Drift checks (resyncs with nothing changed) per second, within --iam-rate-limit. Default: half of it.
    #[arg(long, env = "LPO_DRIFT_CHECK_RATE", value_parser = positive_rate)]
    pub drift_check_rate: Option<f64>,

    /// Deadline of one IAM call, its retries included. A create must also be answered within it of the mark that records it: only a profile IAM created in that window counts as the operator's own (docs/reliability.md).
    #[arg(long, env = "LPO_IAM_TIMEOUT", default_value = "30s", value_parser = positive_duration)]
    pub iam_timeout: Duration,

    /// Attempts per IAM call, the first included (the SDK's standard retry with backoff and jitter).
    #[arg(long, env = "LPO_IAM_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub iam_max_attempts: u32,

    /// First retry delay after a transient failure of one LoginProfile; doubles up to --max-backoff.
    #[arg(long, env = "LPO_MIN_BACKOFF", default_value = "2s", value_parser = positive_duration)]
    pub min_backoff: Duration,

    /// Longest retry delay after transient failures.
    #[arg(long, env = "LPO_MAX_BACKOFF", default_value = "5m", value_parser = positive_duration)]
    pub max_backoff: Duration,

    /// How long a fetched account password policy is trusted before it is read again.
    #[arg(long, env = "LPO_PASSWORD_POLICY_REFRESH", default_value = "10m", value_parser = positive_duration)]
    pub password_policy_refresh: Duration,

    /// Least time between two IAM credential reports per account (for passwordUpdatePolicy: Enforce and console-access governance; IAM makes one at most every 4 hours).
    #[arg(long, env = "LPO_CREDENTIAL_REPORT_INTERVAL", default_value = "4h", value_parser = humantime::parse_duration)]
    pub credential_report_interval: Duration,

    /// How often a LoginProfile whose password is in AWS Secrets Manager checks for a new version (one DescribeSecret per check).
    #[arg(long, env = "LPO_SECRETS_MANAGER_POLL_INTERVAL", default_value = "10m", value_parser = positive_duration)]
    pub secrets_manager_poll_interval: Duration,

    /// Reconcile only while holding a coordination.k8s.io Lease, so several replicas can run (one leads, the others stand by).
    #[arg(long, env = "LPO_LEADER_ELECT")]
    pub leader_elect: bool,

    /// Name of the leader election Lease.
    #[arg(
        long,
        env = "LPO_LEADER_ELECTION_LEASE",
        default_value = "loginprofile-operator"
    )]
    pub leader_election_lease: String,

    /// Namespace of the leader election Lease. Default: --operator-namespace.
    #[arg(long, env = "LPO_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// A leader that has not renewed its Lease for this long is replaced.
    #[arg(long, env = "LPO_LEADER_ELECTION_DURATION", default_value = "15s", value_parser = lease_duration)]
    pub leader_election_duration: Duration,

    /// This cluster's id in the ownership record the operator writes on each IAM user it manages (tags under iam.loginprofile.dev/; docs/disaster-recovery.md): a rebuilt or restored cluster that keeps the id (and the fingerprint key) takes its own login profiles back with no IAM write, and a cluster with another id never writes to or deletes them. 1 to 63 letters, digits, '.', '_' or '-'. Without it no record is written, and a profile recorded as any cluster's is left alone.
    #[arg(long, env = "LPO_CLUSTER_ID", value_parser = cluster_id)]
    pub cluster_id: Option<String>,

    /// The mass-deletion guard: at most this many login profiles deleted per AWS account within --deletion-window (a burst of this many, then one per window / limit); more wait as DeletionPaced until the window allows, or until a cluster admin sets the IAMAccount's spec.allowDeletionsUntil. 0: no limit.
    #[arg(long, env = "LPO_DELETION_LIMIT", default_value = "10")]
    pub deletion_limit: u32,

    /// The window of --deletion-limit.
    #[arg(long, env = "LPO_DELETION_WINDOW", default_value = "10m", value_parser = positive_duration)]
    pub deletion_window: Duration,

    /// What deleting a LoginProfile that sets no spec.deletionPolicy does to its login profile: Delete or Retain.
    #[arg(long, env = "LPO_DEFAULT_DELETION_POLICY", default_value = "Delete", value_parser = deletion_policy)]
    pub default_deletion_policy: DeletionPolicy,

    /// Report every LoginProfile's MFA, last sign-in and password expiry in status.console (docs/governance.md), as if each had `spec.governance: {}`. Off by default: it needs iam:GenerateCredentialReport and iam:GetCredentialReport, which an existing IAM policy may not grant; LoginProfiles and IAMAccounts with governance ask for the report anyway.
    #[arg(long, env = "LPO_REPORT_CONSOLE_ACTIVITY")]
    pub report_console_activity: bool,

    /// Reconcile RootLoginProfiles: root's console password in member accounts, through STS AssumeRoot with the credentials of an IAMAccount that says allowRootAccess (docs/root.md). Off by default: it needs the RootLoginProfile CRD, RBAC on it, and a management account's credentials.
    #[arg(long, env = "LPO_MANAGE_ROOT_LOGIN_PROFILES")]
    pub manage_root_login_profiles: bool,

    /// With --manage-root-login-profiles: only the RootLoginProfiles whose labels match this selector (e.g. `operator=org-a`), so that two operators can split them. Default: all.
    #[arg(long, env = "LPO_ROOT_LOGIN_PROFILE_SELECTOR", default_value = "")]
    pub root_login_profile_selector: String,

    /// Log format.
    #[arg(long, env = "LPO_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log filter in RUST_LOG syntax, for example `info` or `loginprofile_operator=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
}

impl RunArgs {
    /// What no single flag can check: flags that contradict each other.
    pub fn check(&self) -> Result<(), String> {
        if self.min_backoff > self.max_backoff {
            return Err(format!(
                "--min-backoff ({}) is longer than --max-backoff ({}): make --max-backoff at least as long",
                humantime::format_duration(self.min_backoff),
                humantime::format_duration(self.max_backoff)
            ));
        }
        Ok(())
    }
}

/// A duration longer than zero ("0s" would spin or divide by zero).
fn positive_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("must be longer than zero (for example 30s or 10m)".into());
    }
    Ok(duration)
}

/// The Lease's duration: renewals time out after a sixth of it and stop at
/// two thirds, so below 3 s a renewal would have under half a second.
fn lease_duration(text: &str) -> Result<Duration, String> {
    let duration = positive_duration(text)?;
    if duration < Duration::from_secs(3) {
        return Err("must be at least 3s (renewals time out after a sixth of it)".into());
    }
    Ok(duration)
}

/// `Delete` or `Retain`, spelled as in `spec.deletionPolicy`.
fn deletion_policy(text: &str) -> Result<DeletionPolicy, String> {
    serde_json::from_value(serde_json::Value::String(text.into())).map_err(|_| {
        format!("{text:?} is neither Delete nor Retain (spelled as in spec.deletionPolicy)")
    })
}

/// A cluster id for the ownership record.
fn cluster_id(text: &str) -> Result<String, String> {
    match crate::rules::ownership::cluster_id_problem(text) {
        Some(problem) => Err(problem),
        None => Ok(text.to_string()),
    }
}

/// A rate per second: a finite number above zero.
fn positive_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !rate.is_finite() || rate <= 0.0 {
        return Err("must be a number above zero (checks per second, e.g. 0.5 or 5)".into());
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_repeatable_namespace() {
        let cli = Cli::try_parse_from([
            "lpo",
            "run",
            "--namespace",
            "a",
            "--namespace",
            "b",
            "--resync-period",
            "90s",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("run expected")
        };
        assert_eq!(args.namespaces, ["a", "b"]);
        let twice = Cli::try_parse_from([
            "lpo",
            "run",
            "--iam-rate-limit",
            "100",
            "--iam-rate-limit",
            "1",
        ])
        .unwrap();
        let Command::Run(twice) = twice.command else {
            panic!("run expected")
        };
        assert_eq!(twice.iam_rate_limit.get(), 1, "the last value wins");
        assert_eq!(args.resync_period, Duration::from_secs(90));
        assert_eq!(args.iam_max_attempts, 3);
        assert_eq!(args.http_addr.port(), 8080);
    }

    #[test]
    fn impossible_values_are_refused_with_what_to_fix() {
        for (flag, value, needle) in [
            ("--drift-check-rate", "0", "above zero"),
            ("--drift-check-rate", "-1", "above zero"),
            ("--drift-check-rate", "NaN", "above zero"),
            ("--drift-check-rate", "fast", "not a number"),
            ("--resync-period", "0s", "longer than zero"),
            ("--iam-timeout", "0s", "longer than zero"),
            ("--concurrency", "0", "0"),
            ("--leader-election-duration", "1s", "at least 3s"),
            ("--secrets-manager-poll-interval", "0s", "longer than zero"),
        ] {
            let error = Cli::try_parse_from(["lpo", "run", &format!("{flag}={value}")])
                .expect_err(flag)
                .to_string();
            assert!(
                error.contains(flag) && error.contains(needle),
                "{flag} {value}: {error}"
            );
        }
        let cli =
            Cli::try_parse_from(["lpo", "run", "--min-backoff", "10s", "--max-backoff", "5s"])
                .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("run expected")
        };
        let error = args.check().unwrap_err();
        assert!(error.contains("--min-backoff"), "{error}");
    }

    #[test]
    fn every_run_flag_reads_an_environment_variable() {
        let command = Cli::command();
        let run = command.find_subcommand("run").unwrap();
        for arg in run
            .get_arguments()
            .filter(|a| a.get_long().is_some() && a.get_id() != "help")
        {
            assert!(
                arg.get_env().is_some(),
                "--{} has no environment variable",
                arg.get_long().unwrap()
            );
            assert!(
                arg.get_help().is_some(),
                "--{} has no help",
                arg.get_long().unwrap()
            );
        }
    }
}
