//! Leader election: with two replicas, one reconciles and one stands by;
//! when the leader dies, the standby takes the Lease over and reconciles.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

#[test]
fn one_replica_leads_and_a_standby_takes_over() {
    let ns = TestNamespace::new("leader");
    let args = ["--leader-elect", "--leader-election-duration", "3s"];
    let filter = "info,loginprofile_operator=debug";
    let first = Operator::spawn(
        &ns.name,
        &ns.name,
        &args,
        filter,
        None,
        &[("POD_NAME", "replica-a")],
    );
    wait_until("replica-a to lead", CONVERGE, || first.is_ready());
    let second = Operator::spawn(
        &ns.name,
        &ns.name,
        &args,
        filter,
        None,
        &[("POD_NAME", "replica-b")],
    );
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
        !second.is_ready(),
        "a standby is not ready: its caches are not running"
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
