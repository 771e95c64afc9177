//! Faults a production cluster sees, injected against the real API server
//! and the IAM emulator (hack/moto_server.py's fault hooks): a process killed
//! after IAM applied its write, answers lost, throttling and 5xx bursts, a
//! lost fingerprint key. The oracle, as Sieve does it, is the end state of
//! the same scenario without the fault: every LoginProfile Ready, IAM holding
//! each Secret's password (proved by signing in: ChangePassword as the user
//! with the Secret's value as the old password), nothing left behind, at most
//! one accepted IAM write per object more than the fault-free run, and the
//! password in no log line. docs/reliability.md has the table.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

/// The oracle's last check: IAM holds `password` for `user` (the user can
/// sign in with it and change it), and no operator log line shows it.
fn iam_holds(user: &str, password: &str, operators: &[&Operator]) {
    iam_holds_in(None, user, password, operators)
}

/// [`iam_holds`] for a user of AWS account `account` (`None`: the default).
fn iam_holds_in(account: Option<&str>, user: &str, password: &str, operators: &[&Operator]) {
    change_password_as_user_in(account, user, password, &strong_password("signed-in"))
        .unwrap_or_else(|e| panic!("IAM does not hold the Secret's password for {user}: {e}"));
    for operator in operators {
        assert!(
            !operator.logs().contains(password),
            "a log line shows the password"
        );
    }
}

/// An operator that sent the create of LoginProfile `bob` (Secret `bob`
/// holding `password`) for `user`, killed while IAM held the answer; the
/// answer is then released, so IAM has the profile and nobody heard.
fn killed_after_held_create(namespace: &str, user: &str, password: &str) -> Operator {
    env().fault(json!({"action": "CreateLoginProfile", "user": user, "mode": "hold"}));
    let first = Operator::start(namespace, &[]);
    env().apply_ok(&secret(namespace, "bob", &[("password", password)]));
    env().apply_ok(&login_profile(
        namespace,
        "bob",
        json!({"userName": user, "passwordSecretRef": {"name": "bob"}}),
    ));
    env().wait_held("CreateLoginProfile", user);
    first.signal("KILL");
    env().release_held(user);
    first
}

#[test]
fn killed_after_iam_accepted_its_create() {
    let ns = TestNamespace::new("fault-kill-create");
    let mut users = TestUsers::default();
    let user = users.create("fault-kc");
    let password = strong_password("killcreate");
    let first = killed_after_held_create(&ns.name, &user, &password);

    let second = Operator::start(&ns.name, &[]);
    let lp = wait_ready_reason(&ns.name, "bob", "True", "Created", CONVERGE);
    assert!(status_str(&lp, "passwordFingerprint").starts_with("hmac-sha256:"));
    assert_eq!(accepted(&user, "CreateLoginProfile"), 1);
    assert_eq!(accepted(&user, "UpdateLoginProfile"), 0, "nothing re-sent");
    // Kubernetes writes as in the fault-free run: the finalizer patch, one
    // status, one Event (the first process died before writing status).
    let writes = wait_for("the operator's writes in the audit log", CONVERGE, || {
        let writes = operator_writes(&ns.name, "bob");
        (writes.values().sum::<u64>() >= 3).then_some(writes)
    });
    assert_eq!(
        writes.get("patch loginprofiles/status"),
        Some(&1),
        "{writes:?}"
    );
    assert_eq!(writes.get("patch loginprofiles"), Some(&1), "{writes:?}");
    iam_holds(&user, &password, &[&first, &second]);
}

/// The Secret changes while the process that created the profile is dead:
/// the next create is refused (a profile exists) after it marked the new
/// password as sending, and that mark must not pass for the first one.
#[test]
fn killed_after_iam_accepted_its_create_and_the_secret_changed_meanwhile() {
    let ns = TestNamespace::new("fault-kill-change");
    let mut users = TestUsers::default();
    let user = users.create("fault-kch");
    let (first_password, second_password) = (
        strong_password("killchange1"),
        strong_password("killchange2"),
    );
    let first = killed_after_held_create(&ns.name, &user, &first_password);
    env().apply_ok(&secret(&ns.name, "bob", &[("password", &second_password)]));

    let second = Operator::start(&ns.name, &[]);
    wait_ready_reason(&ns.name, "bob", "True", "Updated", CONVERGE);
    assert_eq!(accepted(&user, "CreateLoginProfile"), 1);
    assert_eq!(
        accepted(&user, "UpdateLoginProfile"),
        1,
        "the new password sent once"
    );
    iam_holds(&user, &second_password, &[&first, &second]);
}

#[test]
fn the_answer_to_a_create_is_lost() {
    let ns = TestNamespace::new("fault-lost-create");
    let operator = Operator::start(&ns.name, &[]);
    let mut users = TestUsers::default();
    let user = users.create("fault-lc");
    let password = strong_password("lostcreate");
    env().fault(
        json!({"action": "CreateLoginProfile", "user": user, "mode": "lost",
                       "code": "ServiceFailure", "status": 500}),
    );
    env().apply_ok(&secret(&ns.name, "bob", &[("password", &password)]));
    env().apply_ok(&login_profile(
        &ns.name,
        "bob",
        json!({"userName": user, "passwordSecretRef": {"name": "bob"}}),
    ));
    wait_ready_reason(&ns.name, "bob", "True", "Created", CONVERGE);
    assert_eq!(accepted(&user, "CreateLoginProfile"), 1);
    assert_eq!(accepted(&user, "UpdateLoginProfile"), 0);
    // Two status writes (the transient ServiceFailure, then Created) where
    // the fault-free run has one.
    let writes = operator_writes(&ns.name, "bob");
    assert!(
        writes
            .get("patch loginprofiles/status")
            .copied()
            .unwrap_or(0)
            <= 2,
        "{writes:?}"
    );
    // Deleting it removes the profile the operator made (status had missed it).
    env().kubectl_ok(&[
        "delete",
        "lp",
        "bob",
        "-n",
        &ns.name,
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(
        no_such_profile(iam_profile(&user)),
        "no profile is left behind"
    );
    assert!(!operator.logs().contains(&password));
}

/// A rotation IAM applied while its answer was held, the operator killed
/// before it heard it; a second operator then finishes. Returns how many
/// rotations IAM accepted, after checking the LoginProfile is Ready
/// (`Updated`, not Stalled) and IAM holds the new password. In an AWS
/// account of its own: its password policy is the test's.
fn rotation_accepted_then_operator_killed(account: &OwnAccount, tag: &str) -> u64 {
    let ns = account.ns();
    let user = account.create_user(tag);
    let second_password = strong_password("rotateto");
    let first = Operator::start(ns, &[]);
    account.wait_verified();
    account.apply_pair("bob", &user, &strong_password("rotatefrom"), json!({}));
    wait_ready_reason(ns, "bob", "True", "Created", CONVERGE);
    env().fault(json!({"action": "UpdateLoginProfile", "user": user, "mode": "hold"}));
    env().apply_ok(&secret(ns, "bob", &[("password", &second_password)]));
    env().wait_held("UpdateLoginProfile", &user);
    first.signal("KILL");
    env().release_held(&user);

    let second = Operator::start(ns, &[]);
    let lp = wait_ready_reason(ns, "bob", "True", "Updated", CONVERGE);
    assert!(!condition_true(&lp, "Stalled"));
    let updates = accepted(&user, "UpdateLoginProfile");
    iam_holds_in(
        Some(&account.id),
        &user,
        &second_password,
        &[&first, &second],
    );
    updates
}

#[test]
fn killed_after_iam_accepted_a_rotation_in_an_account_that_refuses_reuse() {
    let account = OwnAccount::new("fault-kill-update", json!({}));
    account.set_password_policy(&["--password-reuse-prevention", "24"]);
    let updates = rotation_accepted_then_operator_killed(&account, "fault-ku");
    assert_eq!(updates, 1, "IAM took the password once");
}

#[test]
fn killed_after_iam_accepted_a_rotation_in_an_account_without_reuse_prevention() {
    // Without PasswordReusePrevention IAM accepts the same password again:
    // the next operator sends it once more (docs/reliability.md: one write
    // more), and ends Ready with the Secret's password in IAM.
    let account = OwnAccount::new("fault-kill-update-reuse", json!({}));
    let updates = rotation_accepted_then_operator_killed(&account, "fault-kr");
    assert_eq!(
        updates, 2,
        "the lost rotation, then the same password once more"
    );
}

#[test]
fn a_status_write_from_a_stale_copy_is_refused_and_the_reconcile_runs_again() {
    // The create's answer is held while someone edits the object (a label:
    // a new resourceVersion, the same generation). The status write that
    // follows was computed from the older copy: the API server refuses it
    // (409) instead of letting it overwrite the newer object, and the next
    // reconcile records the create, with no second IAM write.
    let ns = TestNamespace::new("fault-stale");
    let operator = Operator::start(&ns.name, &[]);
    let mut users = TestUsers::default();
    let user = users.create("fault-st");
    let password = strong_password("stale");
    env().fault(json!({"action": "CreateLoginProfile", "user": user, "mode": "hold"}));
    env().apply_ok(&secret(&ns.name, "bob", &[("password", &password)]));
    env().apply_ok(&login_profile(
        &ns.name,
        "bob",
        json!({"userName": user, "passwordSecretRef": {"name": "bob"}}),
    ));
    env().wait_held("CreateLoginProfile", &user);
    env().kubectl_ok(&["label", "lp", "bob", "-n", &ns.name, "edited=meanwhile"]);
    env().release_held(&user);

    let lp = wait_ready_reason(&ns.name, "bob", "True", "Created", CONVERGE);
    assert_eq!(lp["metadata"]["labels"]["edited"], "meanwhile");
    // The refused write, then one accepted after it.
    wait_until(
        "the refused and the accepted status write",
        CONVERGE,
        || {
            let codes = operator_status_write_codes(&ns.name, "bob");
            codes
                .iter()
                .position(|code| *code == 409)
                .is_some_and(|refused| codes[refused..].contains(&200))
        },
    );
    assert_eq!(accepted(&user, "CreateLoginProfile"), 1);
    assert_eq!(accepted(&user, "UpdateLoginProfile"), 0);
    iam_holds(&user, &password, &[&operator]);
}

#[test]
fn killed_during_deletion() {
    let ns = TestNamespace::new("fault-kill-delete");
    let mut users = TestUsers::default();
    let user = users.create("fault-kd");
    let first = Operator::start(&ns.name, &[]);
    env().apply_ok(&secret(
        &ns.name,
        "bob",
        &[("password", &strong_password("kd"))],
    ));
    env().apply_ok(&login_profile(
        &ns.name,
        "bob",
        json!({"userName": user, "passwordSecretRef": {"name": "bob"}}),
    ));
    wait_ready_reason(&ns.name, "bob", "True", "Created", CONVERGE);
    env().fault(json!({"action": "DeleteLoginProfile", "user": user, "mode": "hold"}));
    env().kubectl_ok(&["delete", "lp", "bob", "-n", &ns.name, "--wait=false"]);
    env().wait_held("DeleteLoginProfile", &user);
    first.signal("KILL");
    env().release_held(&user);

    let _second = Operator::start(&ns.name, &[]);
    wait_until("the LoginProfile to be gone", CONVERGE, || {
        !env()
            .kubectl(&["get", "lp", "bob", "-n", &ns.name])
            .status
            .success()
    });
    assert!(
        no_such_profile(iam_profile(&user)),
        "no profile is left behind"
    );
    assert_eq!(accepted(&user, "DeleteLoginProfile"), 1);
}

/// A LoginProfile `bob` for a new user, created by an operator that then
/// stops cleanly: the user, its password and the recorded fingerprint.
fn created_then_stopped(
    ns: &TestNamespace,
    users: &mut TestUsers,
    tag: &str,
) -> (String, String, String) {
    created_then_stopped_with(ns, users, tag, &[])
}

/// [`created_then_stopped`] by an operator started with `args`.
fn created_then_stopped_with(
    ns: &TestNamespace,
    users: &mut TestUsers,
    tag: &str,
    args: &[&str],
) -> (String, String, String) {
    let user = users.create(tag);
    let password = strong_password(&tag.replace('-', ""));
    let first = Operator::start(&ns.name, args);
    env().apply_ok(&secret(&ns.name, "bob", &[("password", &password)]));
    env().apply_ok(&login_profile(
        &ns.name,
        "bob",
        json!({"userName": user, "passwordSecretRef": {"name": "bob"}}),
    ));
    let before = wait_ready_reason(&ns.name, "bob", "True", "Created", CONVERGE);
    let fingerprint = status_str(&before, "passwordFingerprint").to_string();
    assert!(first.stop().success());
    (user, password, fingerprint)
}

#[test]
fn a_lost_fingerprint_key_re_sends_no_password() {
    let ns = TestNamespace::new("fault-key");
    let mut users = TestUsers::default();
    let (user, password, old_fingerprint) = created_then_stopped(&ns, &mut users, "fault-key");
    // The key Secret is gone (deleted by hand, a namespace move, a restore).
    env().kubectl_ok(&[
        "delete",
        "secret",
        "loginprofile-operator-fingerprint-key",
        "-n",
        &ns.name,
    ]);
    let second = Operator::start(&ns.name, &["--resync-period", "3s"]);
    // The Secret did not change, so the password is re-fingerprinted under
    // the new key, with no IAM write.
    let lp = wait_for(
        "status re-fingerprinted under the new key",
        CONVERGE,
        || {
            let lp = get_lp(&ns.name, "bob");
            (status_str(&lp, "passwordFingerprint") != old_fingerprint).then_some(lp)
        },
    );
    assert_eq!(ready(&lp).unwrap().0, "True");
    holds_for(Duration::from_secs(4), || {
        assert_eq!(calls(&user, "UpdateLoginProfile"), 0, "no password re-sent");
    });
    iam_holds(&user, &password, &[&second]);
}

/// The key rotation of docs/reliability.md, step by step: the old key under
/// `old-1` and a new one under `key` of the operator's key Secret, a restart,
/// the old key dropped, another restart. No password is re-sent, and
/// fingerprints end under the new key.
#[test]
fn the_fingerprint_key_rotates_as_documented() {
    let ns = TestNamespace::new("fault-rotate-key");
    let mut users = TestUsers::default();
    let (user, password, old_fingerprint) = created_then_stopped(&ns, &mut users, "fault-rk");

    // Step 1: the old key under old-1, a new one under key.
    let key_secret = "loginprofile-operator-fingerprint-key";
    let old_key = env().kubectl_ok(&[
        "get",
        "secret",
        key_secret,
        "-n",
        &ns.name,
        "-o",
        "jsonpath={.data.key}",
    ]);
    let new_key = "bmV3LWtleS1vZi0zMi1yYW5kb20tYnl0ZXMtISEhISE="; // 32 bytes, base64
    let patch = json!({"data": {"key": new_key, "old-1": old_key.trim()}}).to_string();
    env().kubectl_ok(&["patch", "secret", key_secret, "-n", &ns.name, "-p", &patch]);

    // Step 2: restart; the fingerprint is re-made under the new key.
    let second = Operator::start(&ns.name, &["--resync-period", "3s"]);
    let old_key_id = old_fingerprint.split(':').nth(1).unwrap().to_string();
    let lp = wait_for("the fingerprint under the new key", CONVERGE, || {
        let lp = get_lp(&ns.name, "bob");
        let fingerprint = status_str(&lp, "passwordFingerprint");
        (!fingerprint.contains(&format!(":{old_key_id}:"))).then_some(lp)
    });
    assert_eq!(ready(&lp).unwrap().0, "True");
    assert!(second.stop().success());

    // Step 3: drop the old key; nothing changes, nothing is re-sent.
    let drop_old = r#"[{"op": "remove", "path": "/data/old-1"}]"#;
    env().kubectl_ok(&[
        "patch",
        "secret",
        key_secret,
        "-n",
        &ns.name,
        "--type=json",
        "-p",
        drop_old,
    ]);
    let third = Operator::start(&ns.name, &["--resync-period", "3s"]);
    let new_fingerprint = status_str(&lp, "passwordFingerprint").to_string();
    holds_for(Duration::from_secs(4), || {
        let now = get_lp(&ns.name, "bob");
        assert_eq!(status_str(&now, "passwordFingerprint"), new_fingerprint);
        assert_eq!(ready(&now).unwrap().0, "True");
    });
    assert_eq!(calls(&user, "UpdateLoginProfile"), 0, "no password re-sent");
    iam_holds(&user, &password, &[&third]);
}

#[test]
fn the_fingerprint_key_files_rotate_as_documented() {
    // The same rotation with keys in files (--fingerprint-key-file and
    // --fingerprint-old-key-file, what the chart's existingSecret and
    // oldKeys mount): the new key, the old one beside it, then the new alone.
    let ns = TestNamespace::new("fault-key-files");
    let mut users = TestUsers::default();
    let folder = std::path::Path::new(ROOT)
        .join("target/test-logs")
        .join(&ns.name);
    std::fs::create_dir_all(&folder).unwrap();
    let key_file = |name: &str, key: &str| {
        let path = folder.join(name);
        std::fs::write(&path, key).unwrap();
        path.to_string_lossy().into_owned()
    };
    let old_key = key_file("old", "the-old-key-of-32-random-bytes!!");
    let new_key = key_file("new", "the-new-key-of-32-random-bytes!!");
    let (user, password, old_fingerprint) = created_then_stopped_with(
        &ns,
        &mut users,
        "fault-kf",
        &["--fingerprint-key-file", &old_key],
    );
    let old_key_id = old_fingerprint.split(':').nth(1).unwrap().to_string();

    let second = Operator::start(
        &ns.name,
        &[
            "--resync-period",
            "3s",
            "--fingerprint-key-file",
            &new_key,
            "--fingerprint-old-key-file",
            &old_key,
        ],
    );
    let lp = wait_for("the fingerprint under the new key", CONVERGE, || {
        let lp = get_lp(&ns.name, "bob");
        let fingerprint = status_str(&lp, "passwordFingerprint");
        (!fingerprint.contains(&format!(":{old_key_id}:"))).then_some(lp)
    });
    assert_eq!(ready(&lp).unwrap().0, "True");
    assert!(second.stop().success());

    let third = Operator::start(
        &ns.name,
        &["--resync-period", "3s", "--fingerprint-key-file", &new_key],
    );
    let new_fingerprint = status_str(&lp, "passwordFingerprint").to_string();
    holds_for(Duration::from_secs(4), || {
        let now = get_lp(&ns.name, "bob");
        assert_eq!(status_str(&now, "passwordFingerprint"), new_fingerprint);
        assert_eq!(ready(&now).unwrap().0, "True");
    });
    assert_eq!(calls(&user, "UpdateLoginProfile"), 0, "no password re-sent");
    iam_holds(&user, &password, &[&third]);
}

/// N objects converge while `faults` (built from the users' name prefix)
/// are injected: all Ready, none Stalled, one accepted create each and no
/// accepted update (docs/reliability.md: no extra write), every user can
/// sign in, no log line shows a password.
fn converge_under_faults(
    tag: &str,
    n: usize,
    faults: impl Fn(&str) -> Vec<Value>,
    timeout: Duration,
) {
    let ns = TestNamespace::new(tag);
    let mut users = TestUsers::default();
    let prefix = unique(tag);
    let names = users.create_many(&prefix, n);
    for fault in faults(&format!("{prefix}-*")) {
        env().fault(fault);
    }
    let operator = Operator::start(&ns.name, &[]);
    let passwords = apply_many(&ns.name, &names, tag);
    let items = wait_all_ready(&ns.name, n, timeout);
    assert!(items.iter().all(|lp| !condition_true(lp, "Stalled")));
    for user in &names {
        assert_eq!(accepted(user, "CreateLoginProfile"), 1, "{user}");
        assert_eq!(
            accepted(user, "UpdateLoginProfile"),
            0,
            "{user}: an extra write"
        );
    }
    sign_in_all(&passwords);
    assert!(passwords.values().all(|p| !operator.logs().contains(p)));
}

#[test]
fn twenty_percent_throttling_on_every_iam_call_for_50_objects() {
    // Every call the operator makes for these users (the sign-in check's own
    // access-key calls are left alone).
    let throttle = |users: &str| {
        vec![
            json!({"action": "*LoginProfile", "user": users, "mode": "error",
                    "code": "Throttling", "status": 400, "rate": 0.2, "for_seconds": 600}),
        ]
    };
    converge_under_faults("fault-thr", 50, throttle, Duration::from_secs(300));
}

#[test]
fn a_thirty_second_burst_of_5xx() {
    // Half the calls fail outright, half are applied and their answers lost.
    let burst = |users: &str| {
        vec![
            json!({"action": "*LoginProfile", "user": users, "mode": "error",
                   "code": "ServiceFailure", "status": 500, "rate": 0.5, "for_seconds": 30}),
            json!({"action": "*LoginProfile", "user": users, "mode": "lost",
                   "code": "ServiceUnavailable", "status": 503, "for_seconds": 30,
                   "count": 1000000}),
        ]
    };
    converge_under_faults("fault-5xx", 20, burst, Duration::from_secs(120));
}
