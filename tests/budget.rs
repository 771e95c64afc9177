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
    env().apply_ok(&secret(
        &ns.name,
        &format!("lp-{}", N - 1),
        &[("password", &strong_password("rotated"))],
    ));
    wait_until("the rotation to reach IAM", CONVERGE, || {
        calls(rotated, "UpdateLoginProfile") == 1
    });
    let checked = gets(&names);
    assert!(
        checked < N as u64,
        "the rotation waited for the drift backlog ({checked} of {N} drift checks done first)"
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
