//! The account's IAM budget: a restart trusts status and costs no IAM call,
//! drift checks have their own budget and never hold a change back, and a
//! rotation costs one call (tests/operator.rs counts that one). Not timed:
//! each assertion is about which calls IAM received, and in what order.

mod support;

use std::time::Duration;

use support::*;

fn gets(users: &[String]) -> u64 {
    users.iter().map(|u| calls(u, "GetLoginProfile")).sum()
}

#[test]
fn a_restart_trusts_status_and_costs_no_iam_call() {
    let ns = TestNamespace::new("budget-restart");
    let mut users = TestUsers::default();
    let names = users.create_many(&unique("budget-rs"), 10);
    let first = Operator::start(&ns.name, &[]);
    apply_many(&ns.name, &names, "budget");
    wait_all_ready(&ns.name, names.len(), CONVERGE);
    assert!(first.stop().success());
    let before: Vec<_> = names.iter().map(|u| env().iam_calls(u)).collect();

    // A resync of 83 days, so that no drift check of the ten falls into the
    // 5 s window by chance: each is placed at a uniformly random point of
    // the period (with 24 h one did, once: a 1 in 1,700 draw).
    let second = Operator::start(&ns.name, &["--resync-period", "2000h"]);
    holds_for(Duration::from_secs(5), || {
        let now: Vec<_> = names.iter().map(|u| env().iam_calls(u)).collect();
        assert_eq!(
            now, before,
            "a restart made IAM calls for up-to-date objects"
        );
    });
    assert!(
        second
            .metrics()
            .contains(r#"loginprofile_profiles{condition="ready"} 10"#)
    );
}

#[test]
fn a_rotation_is_not_queued_behind_a_drift_backlog() {
    const N: usize = 40;
    let ns = TestNamespace::new("budget-backlog");
    let mut users = TestUsers::default();
    let names = users.create_many(&unique("budget-bl"), N);
    let first = Operator::start(&ns.name, &[]);
    apply_many(&ns.name, &names, "budget");
    wait_all_ready(&ns.name, N, CONVERGE);
    assert!(first.stop().success());

    // Every drift check falls due within 4 s, at 2 a second: a backlog of
    // about 20 s, and the effective drift period stretches to N / rate.
    let second = Operator::start(
        &ns.name,
        &["--resync-period", "4s", "--drift-check-rate", "2"],
    );
    wait_until("the drift backlog to start", CONVERGE, || gets(&names) >= 2);
    let rotated = &names[N - 1];
    let checked_at_change = gets(&names);
    env().apply_ok(&secret(
        &ns.name,
        &format!("lp-{}", N - 1),
        &[("password", &strong_password("rotated"))],
    ));
    wait_until("the rotation to reach IAM", CONVERGE, || {
        calls(rotated, "UpdateLoginProfile") == 1
    });
    // Queued behind the backlog, the rotation would come after the drift
    // checks still due when the Secret changed (at 2 a second); it must
    // come before most of them.
    let checked = gets(&names) - checked_at_change;
    let still_due = N as u64 - checked_at_change;
    assert!(
        checked < still_due / 2,
        "the rotation waited for the drift backlog ({checked} of the {still_due} drift checks still due were done first)"
    );
    wait_until(
        "the drift backlog to drain",
        Duration::from_secs(120),
        || gets(&names) >= N as u64,
    );
    assert!(
        second
            .metrics()
            .contains("loginprofile_drift_check_period_seconds 20"),
        "N / rate = 20 s: {}",
        second.metrics()
    );
}

/// More drift checks fall due than the workers can make (one worker, every
/// object due each second, a drift budget far above it), for as long as the
/// test runs. New LoginProfiles still become Ready, and every old one still
/// gets its drift check: what is due is taken in the order it fell due, not
/// in an order where some objects always come last.
#[test]
fn no_login_profile_waits_forever_behind_an_endless_drift_backlog() {
    const N: usize = 120;
    const LATE: usize = 20;
    let ns = TestNamespace::new("budget-starve");
    let mut users = TestUsers::default();
    let names = users.create_many(&unique("budget-sv"), N);
    let late_users = users.create_many(&unique("budget-lt"), LATE);
    let first = Operator::start(&ns.name, &[]);
    apply_many(&ns.name, &names, "budget");
    wait_all_ready(&ns.name, N, CONVERGE);
    assert!(first.stop().success());

    let before: Vec<u64> = names.iter().map(|u| calls(u, "GetLoginProfile")).collect();
    let _overloaded = Operator::start(
        &ns.name,
        &[
            "--resync-period",
            "1s",
            "--iam-rate-limit",
            "1000",
            "--concurrency",
            "1",
        ],
    );
    wait_until("the drift backlog to build up", CONVERGE, || {
        gets(&names) >= before.iter().sum::<u64>() + 2 * N as u64
    });
    let mut manifest = String::new();
    for (i, user) in late_users.iter().enumerate() {
        let name = format!("late-{i}");
        manifest += &secret(&ns.name, &name, &[("password", &strong_password("late"))]);
        manifest += "\n---\n";
        manifest += &login_profile(
            &ns.name,
            &name,
            serde_json::json!({"userName": user, "passwordSecretRef": {"name": name}}),
        );
        manifest += "\n---\n";
    }
    env().apply_ok(&manifest);
    wait_all_ready(&ns.name, N + LATE, Duration::from_secs(60));
    wait_until(
        "every old LoginProfile to get a drift check",
        Duration::from_secs(60),
        || {
            names
                .iter()
                .zip(&before)
                .all(|(user, was)| calls(user, "GetLoginProfile") > *was)
        },
    );
}

/// Two IAMAccounts that act in one AWS account (both with the operator's
/// own credentials) share its drift budget: the drift period stretches over
/// the LoginProfiles of both, as IAM's rate limit is the account's, not an
/// IAMAccount's. (The request rate limit is the same shared budget's.)
#[test]
fn iam_accounts_of_one_aws_account_share_its_drift_budget() {
    const EACH: usize = 6;
    let by_default = TestNamespace::new("budget-shared-a");
    let by_second = TestNamespace::with_account("budget-shared-b", None);
    let second = format!("second{}", unique("").to_lowercase());
    let _accounts = TestAccounts(vec![second.clone()]);
    env().apply_ok(&iam_account(
        &second,
        serde_json::json!({"namespaces": [by_second.name], "userNames": ["*"]}),
    ));
    let mut users = TestUsers::default();
    let names = users.create_many(&unique("budget-sh"), 2 * EACH);
    let operator = Operator::start(
        &by_default.name,
        &[
            "--namespace",
            &by_second.name,
            "--drift-check-rate",
            "1",
            "--resync-period",
            "5s",
        ],
    );
    wait_account_ready(&second, "True", "Verified");
    apply_many(&by_default.name, &names[..EACH], "shared-a");
    apply_many_with(
        &by_second.name,
        &names[EACH..],
        "shared-b",
        serde_json::json!({"accountRef": {"name": second}}),
    );
    wait_all_ready(&by_default.name, EACH, CONVERGE);
    wait_all_ready(&by_second.name, EACH, CONVERGE);
    // 12 LoginProfiles in the account at 1 drift check a second: a period
    // of 12 s (6 s if each IAMAccount had a budget of its own). The count
    // is refreshed every 30 s.
    wait_until(
        "the drift period over both IAMAccounts",
        Duration::from_secs(75),
        || operator.metric_sum("loginprofile_drift_check_period_seconds") == 12.0,
    );
}
