//! Faults of the control plane itself, in their own test binary because they
//! disturb every client of the environment (make test runs this binary
//! alone, after the others of its group; inside it, a lock runs the
//! scenarios one at a time): the API
//! server restarting while 200 LoginProfiles converge (some provably not yet
//! Ready when it goes down), and the operator frozen while objects change
//! and etcd's history is compacted, so that its watches come back with 410
//! Gone and it lists again (the audit log shows the listing). The oracle is
//! tests/faults.rs's.

mod support;

use std::{collections::HashMap, process::Command, sync::Mutex, time::Duration};

use serde_json::json;
use support::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn devenv(command: &str) {
    let status = Command::new("bash")
        .arg(format!("{ROOT}/hack/devenv.sh"))
        .arg(command)
        .status()
        .expect("bash runs");
    assert!(status.success(), "hack/devenv.sh {command} failed");
}

fn pair(namespace: &str, name: &str, user: &str, password: &str) -> String {
    format!(
        "{}\n---\n{}\n---\n",
        secret(namespace, name, &[("password", password)]),
        login_profile(
            namespace,
            name,
            json!({"userName": user, "passwordSecretRef": {"name": name}}),
        )
    )
}

#[test]
fn the_api_server_restarts_while_200_converge() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const N: usize = 200;
    let ns = TestNamespace::new("disrupt-restart");
    let mut users = TestUsers::default();
    let prefix = unique("disrupt-rs");
    let names = users.create_many(&prefix, N);
    // Everything applied before the operator starts (applying 400 objects
    // takes seconds on a busy machine, and an operator already running
    // would work through them meanwhile), then 10 creates a second: about
    // 20 s of work, so the API server goes down in the middle of it.
    let passwords = apply_many(&ns.name, &names, "restart");
    let operator = Operator::start(&ns.name, &["--iam-rate-limit", "10"]);
    let ready_now = || {
        list_lps(&ns.name)
            .iter()
            .filter(|lp| ready(lp).is_some_and(|(status, _, _)| status == "True"))
            .count()
    };
    wait_until("the operator to be at work", CONVERGE, || ready_now() >= 1);
    let ready_before = ready_now();
    assert!(
        ready_before < N,
        "work was pending when the API server went down ({ready_before} of {N} Ready)"
    );
    devenv("restart-apiserver");
    wait_all_ready(&ns.name, N, Duration::from_secs(300));
    for user in &names {
        assert_eq!(accepted(user, "CreateLoginProfile"), 1, "{user}");
        assert_eq!(
            accepted(user, "UpdateLoginProfile"),
            0,
            "{user}: no write beyond the create (docs/reliability.md)"
        );
    }
    sign_in_all(&passwords);
    assert!(passwords.values().all(|p| !operator.logs().contains(p)));
}

#[test]
fn a_frozen_operator_resumes_after_changes_and_a_compaction() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const N: usize = 15;
    let ns = TestNamespace::new("disrupt-freeze");
    let mut users = TestUsers::default();
    let prefix = unique("disrupt-fz");
    let names = users.create_many(&prefix, N + 5);
    let operator = Operator::start(&ns.name, &[]);
    apply_many(&ns.name, &names[..N], "before");
    wait_all_ready(&ns.name, N, Duration::from_secs(120));

    // Frozen (a stalled node, a long pause) while the API server restarts
    // (its watches cut before anything changed: no change waits in their
    // sockets) and the cluster moves on: five rotations, five deletions,
    // five new objects; then etcd forgets the history, so the operator's
    // watches can only resume by listing again (410 Gone).
    let lists_before = operator_profile_lists(&ns.name).len();
    operator.signal("STOP");
    devenv("restart-apiserver");
    let mut expected = HashMap::new();
    let mut manifest = String::new();
    for (i, user) in names.iter().enumerate().take(5) {
        let password = strong_password("rotated");
        manifest += &secret(&ns.name, &format!("lp-{i}"), &[("password", &password)]);
        manifest += "\n---\n";
        expected.insert(user.clone(), password);
    }
    for (i, user) in names.iter().enumerate().skip(N) {
        let password = strong_password("new");
        manifest += &pair(&ns.name, &format!("lp-{i}"), user, &password);
        expected.insert(user.clone(), password);
    }
    env().apply_ok(&manifest);
    let deleted: Vec<String> = (5..10).map(|i| format!("lp-{i}")).collect();
    let mut delete = vec!["delete", "lp", "-n", ns.name.as_str(), "--wait=false"];
    delete.extend(deleted.iter().map(String::as_str));
    env().kubectl_ok(&delete);
    devenv("compact-etcd");
    operator.signal("CONT");

    wait_all_ready(&ns.name, N, Duration::from_secs(120));
    // Its watch could not resume from a history etcd forgot (410 Gone): it
    // listed again, as the API server's audit log shows.
    let lists_after = operator_profile_lists(&ns.name).len();
    assert!(
        lists_after > lists_before,
        "the operator listed LoginProfiles again after the compaction ({lists_before} -> {lists_after})"
    );
    for (i, user) in names.iter().enumerate() {
        let (creates, updates) = (
            accepted(user, "CreateLoginProfile"),
            accepted(user, "UpdateLoginProfile"),
        );
        assert_eq!(creates, 1, "{user}");
        match i {
            0..5 => assert_eq!(updates, 1, "{user}: the rotation, once"),
            5..10 => assert!(
                no_such_profile(iam_profile(user)),
                "{user}: deleted with its resource"
            ),
            _ => assert_eq!(updates, 0, "{user}"),
        }
    }
    assert!(expected.values().all(|p| !operator.logs().contains(p)));
    sign_in_all(&expected);
}
