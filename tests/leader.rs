//! Leader election: with two replicas, one reconciles and one stands by
//! (ready, so a rolling update can finish); when the leader dies, the
//! standby takes the Lease over and reconciles; a standby whose clock is
//! ahead does not take over a healthy leader; a leader frozen past its
//! Lease writes nothing to IAM when it wakes, not even the writes that were
//! waiting on its rate limiter, and exits; a write still unanswered when its
//! permit ends counts as an ambiguous answer.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

/// One replica of the operator, named like a Pod, electing on a 3 s Lease.
fn replica(namespace: &str, pod_name: &str) -> Operator {
    replica_with(namespace, pod_name, &[], &[])
}

fn replica_with(
    namespace: &str,
    pod_name: &str,
    extra_args: &[&str],
    extra_env: &[(&str, &str)],
) -> Operator {
    let mut args = vec!["--leader-elect", "--leader-election-duration", "3s"];
    args.extend_from_slice(extra_args);
    let mut env = vec![("POD_NAME", pod_name)];
    env.extend_from_slice(extra_env);
    Operator::spawn(
        namespace,
        namespace,
        &args,
        "info,loginprofile_operator=debug",
        None,
        &env,
    )
}

/// libfaketime (Debian's `libfaketime`, installed by hack/deps.sh): preloaded,
/// it moves the process's wall clock.
fn libfaketime() -> String {
    std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .map(|dir| dir.path().join("faketime/libfaketime.so.1"))
        .find(|path| path.exists())
        .expect("libfaketime is installed (hack/deps.sh)")
        .display()
        .to_string()
}

/// Once `first` leads, a second replica (`replica-b`) that stands by.
fn standby_beside(first: &Operator, namespace: &str) -> Operator {
    wait_until("replica-a to lead", CONVERGE, || {
        first.logs().contains("became the leader")
    });
    let second = replica(namespace, "replica-b");
    wait_until("replica-b to stand by", CONVERGE, || {
        second.logs().contains("standing by")
    });
    second
}

fn lease_holder(namespace: &str) -> String {
    env().kubectl_ok(&[
        "get",
        "lease",
        "loginprofile-operator",
        "-n",
        namespace,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
}

#[test]
fn one_replica_leads_and_a_standby_takes_over() {
    let ns = TestNamespace::new("leader");
    let first = replica(&ns.name, "replica-a");
    let second = standby_beside(&first, &ns.name);
    let lease = |field: &str| {
        env().kubectl_ok(&[
            "get",
            "lease",
            "loginprofile-operator",
            "-n",
            &ns.name,
            "-o",
            &format!("jsonpath={{.spec.{field}}}"),
        ])
    };
    let holder = || lease("holderIdentity");
    assert_eq!(holder(), "replica-a");

    let mut users = TestUsers::default();
    let one = users.create("leader-one");
    env().apply_ok(&secret(
        &ns.name,
        "pw",
        &[("password", &strong_password("leader"))],
    ));
    env().apply_ok(&login_profile(
        &ns.name,
        "one",
        json!({"userName": one, "passwordSecretRef": {"name": "pw"}}),
    ));
    wait_ready_reason(&ns.name, "one", "True", "Created", CONVERGE);
    assert_eq!(
        second.metric_sum("loginprofile_reconciles_total"),
        0.0,
        "the standby reconciled"
    );
    assert!(
        first.metric_sum("loginprofile_reconciles_total") >= 1.0,
        "the leader's reconciles are counted where the standby's are read"
    );
    assert!(
        second.is_ready(),
        "a standby is ready to take over (else a rolling update never finishes)"
    );

    // The leader dies without a word; the standby waits out the Lease.
    drop(first);
    wait_until(
        "replica-b to take the Lease over",
        Duration::from_secs(20),
        || holder() == "replica-b",
    );
    let two = users.create("leader-two");
    env().apply_ok(&login_profile(
        &ns.name,
        "two",
        json!({"userName": two, "passwordSecretRef": {"name": "pw"}}),
    ));
    wait_ready_reason(&ns.name, "two", "True", "Created", CONVERGE);
    assert!(second.logs().contains("became the leader"));
    let transitions = lease("leaseTransitions");
    assert_eq!(transitions, "1");
}

#[test]
fn a_leader_frozen_past_its_lease_writes_nothing_when_it_wakes() {
    let ns = TestNamespace::new("leader-frozen");
    let mut first = replica(&ns.name, "replica-a");
    let second = standby_beside(&first, &ns.name);
    let mut users = TestUsers::default();
    let user = users.create("leader-frozen");
    let old = strong_password("frozen-old");
    env().apply_ok(&secret(&ns.name, "pw", &[("password", &old)]));
    env().apply_ok(&login_profile(
        &ns.name,
        "bob",
        json!({"userName": user, "passwordSecretRef": {"name": "pw"}}),
    ));
    wait_ready_reason(&ns.name, "bob", "True", "Created", CONVERGE);

    // Freeze the leader (a long GC pause, a stalled node) past its Lease;
    // the standby takes over and applies a rotation.
    first.signal("STOP");
    wait_until("replica-b to lead", Duration::from_secs(30), || {
        second.logs().contains("became the leader")
    });
    let new = strong_password("frozen-new");
    env().apply_ok(&secret(&ns.name, "pw", &[("password", &new)]));
    wait_ready_reason(&ns.name, "bob", "True", "Updated", CONVERGE);
    assert_eq!(calls(&user, "UpdateLoginProfile"), 1);

    // The old leader wakes: its deadline has passed, so it gives up and
    // exits without writing to IAM.
    first.signal("CONT");
    wait_until("the woken replica to exit", CONVERGE, || {
        first.exited().is_some()
    });
    assert!(
        !first.exited().unwrap().success(),
        "it exits non-zero (restarted as a standby)"
    );
    assert_eq!(calls(&user, "UpdateLoginProfile"), 1, "no second writer");
    assert_eq!(calls(&user, "CreateLoginProfile"), 1);
    change_password_as_user(&user, &new, &strong_password("frozen-user"))
        .expect("IAM holds the Secret's new password");
}

#[test]
fn a_standby_whose_clock_is_ahead_does_not_take_over_a_healthy_leader() {
    let ns = TestNamespace::new("leader-skew");
    let first = replica(&ns.name, "replica-a");
    wait_until("replica-a to lead", CONVERGE, || {
        first.logs().contains("became the leader")
    });
    // 30 s ahead: the leader's renewTime always reads 30 s old to it.
    let preload = libfaketime();
    let second = replica_with(
        &ns.name,
        "replica-b",
        &[],
        &[
            ("LD_PRELOAD", &preload),
            ("FAKETIME", "+30s"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    wait_until("replica-b to stand by or lead", CONVERGE, || {
        let logs = second.logs();
        logs.contains("standing by") || logs.contains("became the leader")
    });
    holds_for(Duration::from_secs(8), || {
        assert!(
            !second.logs().contains("became the leader"),
            "the skewed standby took over a healthy leader"
        );
        assert_eq!(lease_holder(&ns.name), "replica-a");
    });
    // It still takes over once the leader is really gone.
    drop(first);
    wait_until(
        "replica-b to take the Lease over",
        Duration::from_secs(20),
        || lease_holder(&ns.name) == "replica-b",
    );
}

#[test]
fn a_frozen_leader_sends_none_of_the_writes_waiting_on_its_rate_limiter() {
    let ns = TestNamespace::new("leader-limiter");
    // One IAM call a second: the leader's workers queue behind its limiter.
    let mut first = replica_with(&ns.name, "replica-a", &["--iam-rate-limit", "1"], &[]);
    let second = standby_beside(&first, &ns.name);
    let mut users = TestUsers::default();
    let names = users.create_many(&unique("leader-lim"), 8);
    env().apply_ok(&secret(
        &ns.name,
        "pw",
        &[("password", &strong_password("limiter"))],
    ));
    for (i, user) in names.iter().enumerate() {
        env().apply_ok(&login_profile(
            &ns.name,
            &format!("lp-{i}"),
            json!({"userName": user, "passwordSecretRef": {"name": "pw"}}),
        ));
    }
    let creates = || -> u64 {
        names
            .iter()
            .map(|user| calls(user, "CreateLoginProfile"))
            .sum()
    };
    wait_until("the leader's first create", CONVERGE, || creates() >= 1);
    // Frozen with creates still waiting on its limiter; the standby takes
    // over and converges every LoginProfile.
    first.signal("STOP");
    wait_all_ready(&ns.name, names.len(), Duration::from_secs(90));
    let writes =
        |user: &String| calls(user, "CreateLoginProfile") + calls(user, "UpdateLoginProfile");
    let before: Vec<u64> = names.iter().map(writes).collect();

    first.signal("CONT");
    wait_until("the woken replica to exit", CONVERGE, || {
        first.exited().is_some()
    });
    let after: Vec<u64> = names.iter().map(writes).collect();
    assert_eq!(after, before, "the woken leader sent a write");
    assert!(second.logs().contains("became the leader"));
}

/// A create IAM applied but had not answered when the write permit it was
/// sent under ended: the healthy leader stops waiting at the permit's end
/// (its Lease is renewed, but the permit the write was sent under is over),
/// long before the SDK's own attempt timeout (10 s of the default 30 s
/// deadline), and counts it as an ambiguous answer: it keeps leading, looks,
/// and recognizes the profile as the one it sent instead of sending again.
#[test]
fn a_write_unanswered_when_its_permit_ends_is_an_ambiguous_answer() {
    let ns = TestNamespace::new("leader-permit");
    let mut leader = replica(&ns.name, "replica-a");
    wait_until("replica-a to lead", CONVERGE, || {
        leader.logs().contains("became the leader")
    });
    let mut users = TestUsers::default();
    let user = users.create("leader-permit");
    let password = strong_password("permit");
    env().fault(json!({"action": "CreateLoginProfile", "user": user, "mode": "hold"}));
    env().apply_ok(&secret(&ns.name, "pw", &[("password", &password)]));
    env().apply_ok(&login_profile(
        &ns.name,
        "bob",
        json!({"userName": user, "passwordSecretRef": {"name": "pw"}}),
    ));
    env().wait_held("CreateLoginProfile", &user);

    let timed_out =
        r#"loginprofile_iam_calls_total{operation="CreateLoginProfile",outcome="timeout"}"#;
    wait_until(
        "the create to time out at its permit's end (3 s Lease), before the SDK's 10 s attempt timeout",
        Duration::from_secs(9),
        || leader.metric_sum(timed_out) >= 1.0,
    );
    assert!(
        env()
            .held()
            .iter()
            .any(|call| call["action"] == "CreateLoginProfile" && call["user"] == user),
        "IAM still holds the call: the permit ended the wait, not IAM's answer"
    );
    env().release_held(&user);

    wait_ready_reason(&ns.name, "bob", "True", "Created", Duration::from_secs(60));
    assert_eq!(calls(&user, "CreateLoginProfile"), 1, "not sent again");
    assert_eq!(calls(&user, "UpdateLoginProfile"), 0);
    assert!(leader.exited().is_none(), "a healthy leader keeps leading");
    assert_eq!(lease_holder(&ns.name), "replica-a");
    change_password_as_user(&user, &password, &strong_password("permit-user"))
        .expect("IAM holds the Secret's password");
    assert!(!leader.logs().contains(&password));
}
