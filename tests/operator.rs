//! The operator end to end: the real binary against the real kube-apiserver
//! and the corrected IAM emulator. Outcomes are read back with kubectl and
//! the AWS CLI; IAM calls are counted at the emulator.

mod support;

use std::{collections::HashMap, time::Duration};

use serde_json::{Value, json};
use support::*;

#[test]
fn create_with_reset_required_matches_what_the_aws_cli_reads() {
    let f = Fixture::new("op-create", &[]);
    let mut users = TestUsers::default();
    let user = users.create("lp-create");
    f.apply_pair(
        "bob",
        &user,
        &strong_password("create"),
        json!({"passwordResetRequired": true}),
    );
    let lp = wait_ready_reason(f.ns(), "bob", "True", "Created", CONVERGE);
    // One IAM call creates a profile: a new LoginProfile tries the create
    // first (counted before the CLI reads).
    assert_eq!(
        calls(&user, "GetLoginProfile"),
        0,
        "{:?}",
        env().iam_calls(&user)
    );
    assert_eq!(calls(&user, "CreateLoginProfile"), 1);
    assert_eq!(iam_writes(&user), 1);

    let profile = iam_profile(&user).expect("IAM has the login profile");
    assert_eq!(profile["LoginProfile"]["PasswordResetRequired"], true);
    assert_eq!(lp["status"]["passwordResetRequired"], true);
    assert_eq!(
        seconds(status_str(&lp, "createDate")),
        seconds(profile["LoginProfile"]["CreateDate"].as_str().unwrap()),
        "status shows IAM's CreateDate"
    );
    assert!(status_str(&lp, "passwordFingerprint").starts_with("hmac-sha256:"));
    assert_eq!(
        lp["status"]["observedGeneration"],
        lp["metadata"]["generation"]
    );
    assert_eq!(status_str(&lp, "userName"), user);
    let reasons: Vec<Value> = events(f.ns(), "bob")
        .iter()
        .map(|e| e["reason"].clone())
        .collect();
    assert!(reasons.contains(&json!("Created")), "{reasons:?}");
    // Kubernetes writes, counted at the API server: the finalizer (with the
    // in-charge annotations), the Ready status and the Created Event; no
    // more (the CRD's status default replaced an early Progressing write).
    let expected: HashMap<String, u64> = [
        ("patch loginprofiles", 1),
        ("patch loginprofiles/status", 1),
        ("create events", 1),
    ]
    .map(|(write, n)| (write.to_string(), n))
    .into();
    let writes = wait_for("the operator's writes in the audit log", CONVERGE, || {
        let writes = operator_writes(f.ns(), "bob");
        (writes.values().sum::<u64>() >= 3).then_some(writes)
    });
    assert_eq!(writes, expected);
    // kubectl's printer columns.
    let table = env().kubectl_ok(&["get", "lp", "bob", "-n", f.ns()]);
    for column in ["USER", "READY", "RESET", "CREATED", "AGE"] {
        assert!(table.contains(column), "{table}");
    }
    assert!(table.contains(&user) && table.contains("True"));
}

#[test]
fn secret_rotation_updates_once_and_keeps_create_date() {
    let f = Fixture::new("op-rotate", &[]);
    let mut users = TestUsers::default();
    let user = users.create("lp-rotate");
    let first = strong_password("rot1");
    f.apply_pair("alice", &user, &first, json!({}));
    let before = wait_ready_reason(f.ns(), "alice", "True", "Created", CONVERGE);

    let second = strong_password("rot2");
    f.set_password("alice", &second);
    let after = wait_ready_reason(f.ns(), "alice", "True", "Updated", Duration::from_secs(10));
    assert_eq!(calls(&user, "UpdateLoginProfile"), 1);
    assert_eq!(calls(&user, "CreateLoginProfile"), 1);
    assert_eq!(
        calls(&user, "GetLoginProfile"),
        0,
        "a create and a rotation cost one IAM call each: no look first"
    );
    assert_ne!(
        status_str(&before, "passwordFingerprint"),
        status_str(&after, "passwordFingerprint")
    );
    assert_eq!(
        status_str(&before, "createDate"),
        status_str(&after, "createDate")
    );
    let profile = iam_profile(&user).unwrap();
    assert_eq!(
        seconds(profile["LoginProfile"]["CreateDate"].as_str().unwrap()),
        seconds(status_str(&after, "createDate"))
    );

    // Rotating to the value already applied: no IAM call at all, no status write.
    let calls_before = env().iam_calls(&user);
    let resource_version = after["metadata"]["resourceVersion"].clone();
    let secret_rv_before = env().kubectl_ok(&[
        "get",
        "secret",
        "alice",
        "-n",
        f.ns(),
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    let reconciles_before = f.operator.metric_sum("loginprofile_reconciles_total");
    // Rewritten with the same value (and a label, so the object does change).
    env().kubectl_ok(&["label", "secret", "alice", "-n", f.ns(), "rotated=again"]);
    f.set_password("alice", &second);
    let secret_rv_after = env().kubectl_ok(&[
        "get",
        "secret",
        "alice",
        "-n",
        f.ns(),
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    assert_ne!(secret_rv_before, secret_rv_after, "the Secret did change");
    // The operator reacts to Secret changes within a second; give it three.
    holds_for(Duration::from_secs(3), || {
        assert_eq!(
            env().iam_calls(&user),
            calls_before,
            "an unchanged password caused an IAM call"
        );
    });
    assert_eq!(
        get_lp(f.ns(), "alice")["metadata"]["resourceVersion"],
        resource_version,
        "no status write"
    );
    assert!(
        f.operator.metric_sum("loginprofile_reconciles_total") > reconciles_before,
        "the Secret change did trigger a reconcile"
    );
}

#[test]
fn out_of_band_delete_is_recreated() {
    let f = Fixture::new("op-oob", &["--resync-period", "2s"]);
    let mut users = TestUsers::default();
    let user = users.create("lp-oob");
    f.apply_pair("carol", &user, &strong_password("oob"), json!({}));
    let created = wait_ready_reason(f.ns(), "carol", "True", "Created", CONVERGE);
    env().aws_ok(&["iam", "delete-login-profile", "--user-name", &user]);
    wait_for("IAM to have the profile again", CONVERGE, || {
        iam_profile(&user).ok()
    });
    let lp = wait_for("status to show the new CreateDate", CONVERGE, || {
        let lp = get_lp(f.ns(), "carol");
        (status_str(&lp, "createDate") != status_str(&created, "createDate")).then_some(lp)
    });
    assert!(
        ready(&lp)
            .unwrap()
            .2
            .contains("deleted outside the operator"),
        "{:?}",
        ready(&lp)
    );
    assert_eq!(calls(&user, "CreateLoginProfile"), 2);
    assert_eq!(calls(&user, "UpdateLoginProfile"), 0);
}

#[test]
fn deleting_the_loginprofile_deletes_the_iam_profile() {
    let f = Fixture::new("op-delete", &[]);
    let mut users = TestUsers::default();
    let user = users.create("lp-delete");
    f.apply_pair("dave", &user, &strong_password("del"), json!({}));
    wait_ready_reason(f.ns(), "dave", "True", "Created", CONVERGE);
    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "dave",
        "-n",
        f.ns(),
        "--timeout=30s",
    ]);
    let error = iam_profile(&user).unwrap_err();
    assert!(error.contains("NoSuchEntity"), "{error}");
    assert_eq!(calls(&user, "DeleteLoginProfile"), 1);
}

#[test]
fn retain_keeps_the_iam_profile() {
    let f = Fixture::new("op-retain", &[]);
    let mut users = TestUsers::default();
    let user = users.create("lp-retain");
    f.apply_pair(
        "erin",
        &user,
        &strong_password("ret"),
        json!({"deletionPolicy": "Retain"}),
    );
    wait_ready_reason(f.ns(), "erin", "True", "Created", CONVERGE);
    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "erin",
        "-n",
        f.ns(),
        "--timeout=30s",
    ]);
    iam_profile(&user).expect("the profile stays");
    assert_eq!(calls(&user, "DeleteLoginProfile"), 0);
}

/// A cautious cluster's default (`--default-deletion-policy=Retain`, the
/// chart's `operator.defaultDeletionPolicy`): a LoginProfile that sets no
/// policy keeps its profile when deleted, one that says Delete does not.
#[test]
fn the_operators_default_deletion_policy_applies_to_profiles_that_set_none() {
    let f = Fixture::new("op-default-retain", &["--default-deletion-policy=Retain"]);
    let mut users = TestUsers::default();
    let kept = users.create("lp-dflt-kept");
    let deleted = users.create("lp-dflt-gone");
    f.apply_pair("kept", &kept, &strong_password("k"), json!({}));
    f.apply_pair(
        "gone",
        &deleted,
        &strong_password("g"),
        json!({"deletionPolicy": "Delete"}),
    );
    let stored = wait_ready_reason(f.ns(), "kept", "True", "Created", CONVERGE);
    assert!(
        stored["spec"].get("deletionPolicy").is_none(),
        "the CRD fills in no policy, so the operator's default decides: {stored}"
    );
    wait_ready_reason(f.ns(), "gone", "True", "Created", CONVERGE);
    for name in ["kept", "gone"] {
        env().kubectl_ok(&[
            "delete",
            "loginprofile",
            name,
            "-n",
            f.ns(),
            "--timeout=30s",
        ]);
    }
    iam_profile(&kept).expect("the profile of a LoginProfile without a policy stays");
    assert_eq!(calls(&kept, "DeleteLoginProfile"), 0);
    let error = iam_profile(&deleted).unwrap_err();
    assert!(error.contains("NoSuchEntity"), "{error}");
}

#[test]
fn existing_profile_is_refused_or_adopted() {
    let f = Fixture::new("op-adopt", &[]);
    let mut users = TestUsers::default();
    let user = users.create("lp-adopt");
    let theirs = strong_password("theirs");
    env().aws_ok(&[
        "iam",
        "create-login-profile",
        "--user-name",
        &user,
        "--password",
        &theirs,
    ]);
    f.apply_pair("frank", &user, &strong_password("ours"), json!({}));
    let lp = wait_ready_reason(f.ns(), "frank", "False", "LoginProfileExists", CONVERGE);
    assert!(ready(&lp).unwrap().2.contains("adoptionPolicy: Adopt"));
    // The operator's create-first attempt was refused (EntityAlreadyExists);
    // it looked, and changed nothing.
    assert_eq!(
        calls(&user, "CreateLoginProfile"),
        2,
        "the test's and the refused one"
    );
    assert_eq!(calls(&user, "GetLoginProfile"), 1);
    assert_eq!(
        calls(&user, "UpdateLoginProfile") + calls(&user, "DeleteLoginProfile"),
        0
    );
    support::change_password_as_user(&user, &theirs, &strong_password("theirs2"))
        .expect("the user's own password still works");
    // Deleting a refused LoginProfile leaves the profile it never managed.
    env().apply_ok(&login_profile(
        f.ns(),
        "frank",
        json!({"userName": user, "passwordSecretRef": {"name": "frank"}, "adoptionPolicy": "Adopt"}),
    ));
    wait_ready_reason(f.ns(), "frank", "True", "Adopted", CONVERGE);
    assert_eq!(calls(&user, "UpdateLoginProfile"), 1);
}

#[test]
fn secret_created_after_the_loginprofile_converges_without_resync() {
    let f = Fixture::new("op-late", &["--resync-period", "1h"]);
    let mut users = TestUsers::default();
    let user = users.create("lp-late");
    env().apply_ok(&login_profile(
        f.ns(),
        "gina",
        json!({"userName": user, "passwordSecretRef": {"name": "gina-pw"}}),
    ));
    let lp = wait_ready_reason(f.ns(), "gina", "False", "SecretNotFound", CONVERGE);
    let (_, _, message) = ready(&lp).unwrap();
    assert!(
        message.contains("gina-pw") && message.contains("create it"),
        "{message}"
    );
    assert!(
        condition_true(&lp, "Stalled"),
        "a missing Secret is terminal: Stalled"
    );
    assert_eq!(iam_writes(&user), 0);
    env().apply_ok(&secret(
        f.ns(),
        "gina-pw",
        &[("password", &strong_password("late"))],
    ));
    wait_ready_reason(f.ns(), "gina", "True", "Created", Duration::from_secs(10));
}

#[test]
fn bad_secret_values_stall_with_their_own_reason_and_harm_nothing_else() {
    let f = Fixture::new("op-bad", &[]);
    let mut users = TestUsers::default();
    let good_user = users.create("lp-good");
    // (name, Secret data, reason, words the message must have)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "no-key",
            vec![("other", "x".into())],
            "SecretKeyNotFound",
            "has no key \"password\"",
        ),
        (
            "empty",
            vec![("password", String::new())],
            "InvalidPassword",
            "empty",
        ),
        (
            "too-long",
            vec![("password", "Aa1!".repeat(33))],
            "InvalidPassword",
            "at most 128",
        ),
        (
            "euro",
            vec![("password", "Abcdefgh1!€xyz".into())],
            "InvalidPassword",
            "character 11",
        ),
        (
            "control",
            vec![("password", "Abcdefgh1!\u{7}xyz".into())],
            "InvalidPassword",
            "character 11",
        ),
    ];
    let mut names = Vec::new();
    for (name, data, _, _) in &cases {
        let user = users.create(&format!("lp-{name}"));
        let data: Vec<(&str, &str)> = data.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env().apply_ok(&secret(f.ns(), name, &data));
        env().apply_ok(&login_profile(
            f.ns(),
            name,
            json!({"userName": user, "passwordSecretRef": {"name": name}}),
        ));
        names.push(user);
    }
    // A good one beside them converges as usual.
    f.apply_pair("good", &good_user, &strong_password("good"), json!({}));
    wait_ready_reason(f.ns(), "good", "True", "Created", CONVERGE);
    for ((name, data, reason, needle), user) in cases.iter().zip(&names) {
        let lp = wait_ready_reason(f.ns(), name, "False", reason, CONVERGE);
        let (_, _, message) = ready(&lp).unwrap();
        assert!(message.contains(needle), "{name}: {message}");
        for (_, value) in data {
            if !value.is_empty() {
                assert!(
                    !message.contains(value.as_str()),
                    "{name}: the message shows the value"
                );
            }
        }
        assert_eq!(
            env().iam_calls(user).get("CreateLoginProfile"),
            None,
            "{name}: no IAM write"
        );
        let events = events(f.ns(), name);
        assert!(
            events
                .iter()
                .any(|e| e["reason"] == *reason && e["type"] == "Warning"),
            "{name}: {events:?}"
        );
    }
    // Fixing the Secret converges without touching the LoginProfile.
    f.set_password("euro", &strong_password("fixed"));
    wait_ready_reason(f.ns(), "euro", "True", "Created", Duration::from_secs(10));
}

#[test]
fn user_created_later_converges_without_a_change() {
    let f = Fixture::new("op-nouser", &[]);
    let mut users = TestUsers::default();
    let user = users.reserve("lp-later");
    f.apply_pair("hank", &user, &strong_password("later"), json!({}));
    let lp = wait_ready_reason(f.ns(), "hank", "False", "UserNotFound", CONVERGE);
    let (_, _, message) = ready(&lp).unwrap();
    assert!(
        message.contains(&format!("aws iam create-user --user-name {user}")),
        "{message}"
    );
    assert!(
        condition_true(&lp, "Reconciling"),
        "a missing user is retried: Reconciling"
    );
    env().aws_ok(&["iam", "create-user", "--user-name", &user]);
    wait_ready_reason(f.ns(), "hank", "True", "Created", CONVERGE);
}

#[test]
fn iam_errors_each_get_their_reason_and_retry_behaviour() {
    let f = Fixture::new("op-iamerr", &["--iam-max-attempts", "2"]);
    let mut users = TestUsers::default();
    // (fault code, HTTP status, reason, terminal, faults in a row). The SDK
    // itself retries throttling and 5xx (2 attempts here), so those get more
    // faults to stay visible for a few reconciles.
    let cases = [
        (
            "PasswordPolicyViolation",
            400,
            "PasswordPolicyViolation",
            true,
            6,
        ),
        ("AccessDenied", 403, "AccessDenied", true, 6),
        ("Throttling", 400, "Throttled", false, 12),
        ("ServiceFailure", 500, "ServiceFailure", false, 12),
        (
            "EntityTemporarilyUnmodifiable",
            409,
            "TemporarilyUnmodifiable",
            false,
            6,
        ),
    ];
    let mut made = Vec::new();
    for (i, (code, status, reason, terminal, count)) in cases.iter().enumerate() {
        let user = users.create(&format!("lp-err{i}"));
        // EntityTemporarilyUnmodifiable is an update-time error: adopt an existing profile.
        let action = if *code == "EntityTemporarilyUnmodifiable" {
            "UpdateLoginProfile"
        } else {
            "CreateLoginProfile"
        };
        if action == "UpdateLoginProfile" {
            env().aws_ok(&[
                "iam",
                "create-login-profile",
                "--user-name",
                &user,
                "--password",
                &strong_password("pre"),
            ]);
        }
        env().inject_fault(action, &user, code, *status, *count);
        made.push((format!("err{i}"), user, *reason, *terminal, action));
    }
    // Applied together, after the slow set-up, so all fail at the same time.
    for (name, user, _, _, action) in &made {
        let extra = if *action == "UpdateLoginProfile" {
            json!({"adoptionPolicy": "Adopt"})
        } else {
            json!({})
        };
        f.apply_pair(name, user, &strong_password("err"), extra);
    }
    // Watch all of them at once: each must show its reason with the right
    // kind (transient ones only for a while, until their faults run out).
    let mut seen = vec![false; made.len()];
    wait_until("every IAM error to show in status", CONVERGE, || {
        let list: Value =
            serde_json::from_str(&env().kubectl_ok(&["get", "lp", "-n", f.ns(), "-o", "json"]))
                .unwrap();
        for (i, (name, _, reason, terminal, _)) in made.iter().enumerate() {
            let Some(lp) = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|lp| lp["metadata"]["name"] == *name)
            else {
                continue;
            };
            let kind = if *terminal { "Stalled" } else { "Reconciling" };
            let has_kind = condition_true(lp, kind);
            if ready(lp).is_some_and(|(s, r, _)| s == "False" && r == *reason) && has_kind {
                seen[i] = true;
            }
        }
        seen.iter().all(|s| *s)
    });
    for (name, user, reason, terminal, action) in &made {
        let warned = events(f.ns(), name)
            .iter()
            .any(|e| e["reason"] == *reason && e["type"] == "Warning");
        assert!(warned, "{name}: a Warning event with reason {reason}");
        if !terminal {
            // Transient: retried with backoff until the faults run out.
            let want = if *action == "UpdateLoginProfile" {
                "Adopted"
            } else {
                "Created"
            };
            wait_ready_reason(f.ns(), name, "True", want, Duration::from_secs(60));
            assert!(calls(user, action) > 6, "{name}: retried past the faults");
        }
    }
    // Terminal failures are not retried in a loop.
    let terminal_calls: Vec<u64> = made
        .iter()
        .filter(|m| m.3)
        .map(|m| calls(&m.1, m.4))
        .collect();
    holds_for(Duration::from_secs(3), || {
        let now: Vec<u64> = made
            .iter()
            .filter(|m| m.3)
            .map(|m| calls(&m.1, m.4))
            .collect();
        assert_eq!(terminal_calls, now, "stalled objects were retried");
    });
    let metrics = f.operator.metrics();
    assert!(
        metrics.contains(
            "loginprofile_iam_calls_total{operation=\"CreateLoginProfile\",outcome=\"throttled\"}"
        ),
        "{metrics}"
    );
}

#[test]
fn reset_flag_change_is_sent_alone_and_the_users_own_change_is_not_drift() {
    let f = Fixture::new("op-flag", &["--resync-period", "2s"]);
    let mut users = TestUsers::default();
    let user = users.create("lp-flag");
    let password = strong_password("flag");
    f.apply_pair(
        "ivy",
        &user,
        &password,
        json!({"passwordResetRequired": false}),
    );
    wait_ready_reason(f.ns(), "ivy", "True", "Created", CONVERGE);
    // An admin forces a reset: the flag alone goes to IAM.
    env().kubectl_ok(&[
        "patch",
        "lp",
        "ivy",
        "-n",
        f.ns(),
        "--type=merge",
        "-p",
        r#"{"spec":{"passwordResetRequired":true}}"#,
    ]);
    wait_for("IAM to require a reset", CONVERGE, || {
        (iam_profile(&user).ok()?["LoginProfile"]["PasswordResetRequired"] == true).then_some(())
    });
    assert_eq!(calls(&user, "UpdateLoginProfile"), 1);
    // The user changes the password at sign-in; IAM clears the flag.
    change_password_as_user(&user, &password, &strong_password("mine"))
        .expect("the user's own change");
    let writes = iam_writes(&user);
    // Several resyncs (2s) pass: the operator reads, but never writes.
    let reads_before = calls(&user, "GetLoginProfile");
    wait_until("three resyncs to read IAM", Duration::from_secs(20), || {
        calls(&user, "GetLoginProfile") >= reads_before + 3
    });
    assert_eq!(
        iam_writes(&user),
        writes,
        "the operator fought the user's own change"
    );
    let lp = get_lp(f.ns(), "ivy");
    assert_eq!(
        lp["status"]["passwordResetRequired"], false,
        "status shows what IAM reports"
    );
    assert!(
        !status_str(&lp, "passwordChangedOutOfBand").is_empty(),
        "status shows the user's own change: {}",
        lp["status"]
    );
}

#[test]
fn bad_user_names_are_refused_at_apply_time() {
    let f = Fixture::new("op-name", &[]);
    for (user, needle) in [
        ("bad name!", "should match"),
        (&*"u".repeat(65), "Too long"),
    ] {
        let output = env().apply(&login_profile(
            f.ns(),
            "x",
            json!({"userName": user, "passwordSecretRef": {"name": "s"}}),
        ));
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("spec.userName") && stderr.contains(needle),
            "{stderr}"
        );
    }
    // userName cannot change once set.
    env().apply_ok(&login_profile(
        f.ns(),
        "y",
        json!({"userName": "first", "passwordSecretRef": {"name": "s"}}),
    ));
    let output = env().apply(&login_profile(
        f.ns(),
        "y",
        json!({"userName": "second", "passwordSecretRef": {"name": "s"}}),
    ));
    assert!(String::from_utf8_lossy(&output.stderr).contains("userName is immutable"));
}

#[test]
fn the_password_never_leaves_the_secret_and_iam() {
    let ns = TestNamespace::new("op-leak");
    let operator = Operator::start_with_log_filter(&ns.name, &[], "trace");
    let mut users = TestUsers::default();
    let user = users.create("lp-leak");
    let missing_user = users.reserve("lp-leak-missing");
    let first = strong_password("LEAKfirst");
    let second = strong_password("LEAKsecond");
    let invalid = "LEAKinvalid€-Password-1!";
    env().apply_ok(&secret(&ns.name, "leak", &[("password", &first)]));
    env().apply_ok(&login_profile(
        &ns.name,
        "leak",
        json!({"userName": user, "passwordSecretRef": {"name": "leak"}}),
    ));
    wait_ready_reason(&ns.name, "leak", "True", "Created", CONVERGE);
    env().apply_ok(&secret(&ns.name, "leak", &[("password", &second)]));
    wait_ready_reason(&ns.name, "leak", "True", "Updated", CONVERGE);
    // Error paths: IAM refusing the password, a missing user, an invalid value.
    env().inject_fault(
        "UpdateLoginProfile",
        &user,
        "PasswordPolicyViolation",
        400,
        1,
    );
    env().apply_ok(&secret(&ns.name, "leak", &[("password", &first)]));
    wait_ready_reason(
        &ns.name,
        "leak",
        "False",
        "PasswordPolicyViolation",
        CONVERGE,
    );
    env().apply_ok(&secret(&ns.name, "nouser", &[("password", &first)]));
    env().apply_ok(&login_profile(
        &ns.name,
        "nouser",
        json!({"userName": missing_user, "passwordSecretRef": {"name": "nouser"}}),
    ));
    wait_ready_reason(&ns.name, "nouser", "False", "UserNotFound", CONVERGE);
    env().apply_ok(&secret(&ns.name, "invalid", &[("password", invalid)]));
    env().apply_ok(&login_profile(
        &ns.name,
        "invalid",
        json!({"passwordSecretRef": {"name": "invalid"}}),
    ));
    wait_ready_reason(&ns.name, "invalid", "False", "InvalidPassword", CONVERGE);
    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "leak",
        "-n",
        &ns.name,
        "--timeout=30s",
    ]);

    let logs = operator.logs();
    assert!(logs.contains("TRACE"), "the operator logged at trace level");
    let statuses = env().kubectl_ok(&["get", "loginprofiles", "-n", &ns.name, "-o", "json"]);
    let events = env().kubectl_ok(&["get", "events", "-n", &ns.name, "-o", "json"]);
    let metrics = operator.metrics();
    use base64::Engine;
    let encoded: Vec<String> = [first.as_str(), second.as_str(), invalid]
        .iter()
        .map(|p| base64::engine::general_purpose::STANDARD.encode(p))
        .collect();
    let mut needles = vec![first.as_str(), second.as_str(), invalid, "LEAK"];
    needles.extend(encoded.iter().map(String::as_str));
    for secret_text in needles {
        for (place, text) in [
            ("logs", &logs),
            ("status", &statuses),
            ("events", &events),
            ("metrics", &metrics),
        ] {
            assert!(
                !text.contains(secret_text),
                "the password {secret_text:?} appears in the {place}"
            );
        }
    }
    let stopped = operator.stop();
    assert!(
        stopped.success(),
        "graceful shutdown on SIGTERM: {stopped:?}"
    );
}
