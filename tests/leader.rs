//! Leader election: with two replicas, one reconciles and one stands by
//! (ready, so a rolling update can finish); when the leader dies, the
//! standby takes the Lease over and reconciles; a leader frozen past its
//! Lease writes nothing to IAM when it wakes, and exits.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

/// One replica of the operator, named like a Pod, electing on a 3 s Lease.
fn replica(namespace: &str, pod_name: &str) -> Operator {
    Operator::spawn(
        namespace,
        namespace,
        &["--leader-elect", "--leader-election-duration", "3s"],
        "info,loginprofile_operator=debug",
        None,
        &[("POD_NAME", pod_name)],
    )
}

#[test]
fn one_replica_leads_and_a_standby_takes_over() {
    let ns = TestNamespace::new("leader");
    let first = replica(&ns.name, "replica-a");
    wait_until("replica-a to lead", CONVERGE, || {
        first.logs().contains("became the leader")
    });
    let second = replica(&ns.name, "replica-b");
    wait_until("replica-b to stand by", CONVERGE, || {
        second.logs().contains("standing by")
    });
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
    assert!(!second.logs().contains("decided"), "the standby reconciled");
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
    wait_until("replica-a to lead", CONVERGE, || {
        first.logs().contains("became the leader")
    });
    let second = replica(&ns.name, "replica-b");
    wait_until("replica-b to stand by", CONVERGE, || {
        second.logs().contains("standing by")
    });
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
