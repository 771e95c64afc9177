//! The development environment itself: a real kube-apiserver (with RBAC and
//! ServiceAccount tokens) read back through the built kubectl, and an IAM
//! emulator whose corrections each restore an IAM behaviour that unpatched
//! moto gets wrong (every test here fails against plain moto).

mod support;

use std::collections::HashMap;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    CONVERGE, EventQueue, TestNamespace, TestUsers, change_password_as_user_in, env, holds_for,
    strong_password, tag_user_in, unique, unique_account_id, wait_for, wait_until,
};

#[test]
fn namespace_and_crd_round_trip_through_the_api_server() {
    let env = env();
    let ns = TestNamespace::new("devenv-ns");
    let shown = env.kubectl_ok(&[
        "get",
        "namespace",
        &ns.name,
        "-o",
        "jsonpath={.status.phase}",
    ]);
    assert_eq!(shown, "Active");
    // The CRD was applied by the test support from crds/; kubectl reads it back.
    let crd: Value = serde_json::from_str(&env.kubectl_ok(&[
        "get",
        "crd",
        "loginprofiles.iam.loginprofile.dev",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(crd["spec"]["names"]["kind"], "LoginProfile");
    assert!(
        support::condition_true(&crd, "Established"),
        "the CRD is served"
    );
    let explained = env.kubectl_ok(&["explain", "loginprofile.spec.passwordSecretRef"]);
    assert!(explained.contains("same namespace"), "{explained}");
}

#[test]
fn service_account_tokens_and_rbac_allow_and_deny() {
    let env = env();
    let ns = TestNamespace::new("devenv-rbac");
    let n = ns.name.as_str();
    env.kubectl_ok(&["create", "serviceaccount", "reader", "-n", n]);
    env.kubectl_ok(&[
        "create",
        "role",
        "read-configmaps",
        "--verb=get,list",
        "--resource=configmaps",
        "-n",
        n,
    ]);
    env.kubectl_ok(&[
        "create",
        "rolebinding",
        "reader-reads",
        "--role=read-configmaps",
        &format!("--serviceaccount={n}:reader"),
        "-n",
        n,
    ]);
    // TokenRequest: a real, signed ServiceAccount token.
    let token = env.kubectl_ok(&["create", "token", "reader", "-n", n, "--duration=10m"]);
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    // A kubeconfig-free kubectl: only the server, its CA and the token.
    let server = env.kubectl_ok(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    let ca = format!("{}/target/devenv/pki/ca.crt", support::ROOT);
    let as_reader = |args: &[&str]| {
        let mut all = vec![
            "--kubeconfig",
            "/dev/null",
            "--server",
            &server,
            "--certificate-authority",
            &ca,
            "--token",
            token,
        ];
        all.extend_from_slice(args);
        env.kubectl(&all)
    };
    let whoami = as_reader(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout),
        format!("system:serviceaccount:{n}:reader")
    );
    let allowed = as_reader(&["get", "configmaps", "-n", n]);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let denied = as_reader(&["get", "secrets", "-n", n]);
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("forbidden"));
    let other_namespace = as_reader(&["get", "configmaps", "-n", "default"]);
    assert!(String::from_utf8_lossy(&other_namespace.stderr).contains("forbidden"));
}

#[test]
fn create_login_profile_honours_password_reset_required() {
    let env = env();
    let mut users = TestUsers::default();
    let user = users.create("emu-reset");
    let created = env.aws_ok(&[
        "iam",
        "create-login-profile",
        "--user-name",
        &user,
        "--password",
        &strong_password("a"),
        "--password-reset-required",
    ]);
    assert_eq!(created["LoginProfile"]["PasswordResetRequired"], true);
    let read = env.aws_ok(&["iam", "get-login-profile", "--user-name", &user]);
    assert_eq!(read["LoginProfile"]["PasswordResetRequired"], true);
}

#[test]
fn update_without_password_keeps_the_profile_and_password() {
    let env = env();
    let mut users = TestUsers::default();
    let user = users.create("emu-update");
    let password = strong_password("b");
    env.aws_ok(&[
        "iam",
        "create-login-profile",
        "--user-name",
        &user,
        "--password",
        &password,
    ]);
    env.aws_ok(&[
        "iam",
        "update-login-profile",
        "--user-name",
        &user,
        "--password-reset-required",
    ]);
    let read = env.aws_ok(&["iam", "get-login-profile", "--user-name", &user]);
    assert_eq!(
        read["LoginProfile"]["PasswordResetRequired"], true,
        "the flag alone changed"
    );
    // The password is unchanged: the user can still change it with the old one.
    support::change_password_as_user(&user, &password, &strong_password("b2"))
        .expect("old password still valid");
}

#[test]
fn create_date_is_the_profiles_not_the_users() {
    let env = env();
    let mut users = TestUsers::default();
    let user = users.create("emu-date");
    let user_created = env.aws_ok(&["iam", "get-user", "--user-name", &user])["User"]["CreateDate"]
        .as_str()
        .unwrap()
        .to_string();
    let profile = env.aws_ok(&[
        "iam",
        "create-login-profile",
        "--user-name",
        &user,
        "--password",
        &strong_password("c"),
    ]);
    let profile_created = profile["LoginProfile"]["CreateDate"].as_str().unwrap();
    assert!(
        parse(profile_created) > parse(&user_created),
        "profile {profile_created} should postdate user {user_created}"
    );
    env.aws_ok(&["iam", "delete-login-profile", "--user-name", &user]);
    let again = env.aws_ok(&[
        "iam",
        "create-login-profile",
        "--user-name",
        &user,
        "--password",
        &strong_password("c2"),
    ]);
    assert!(parse(again["LoginProfile"]["CreateDate"].as_str().unwrap()) > parse(profile_created));
}

#[test]
fn passwords_are_checked_against_iams_rules_and_the_account_policy() {
    // In an AWS account of its own: the password policy is account-wide.
    let env = env();
    let account = unique_account_id();
    let aws = |args: &[&str]| env.aws_in(&account, args);
    let user = unique("emu-policy");
    aws(&["iam", "create-user", "--user-name", &user]).unwrap();
    let create = |password: &str| {
        aws(&[
            "iam",
            "create-login-profile",
            "--user-name",
            &user,
            "--password",
            password,
        ])
    };
    // The character rule: U+20AC is outside U+0020..U+00FF.
    let refused = create("Abcdefgh1!€xyz").unwrap_err();
    assert!(refused.contains("ValidationError"), "{refused}");
    // AWS's default rules with no custom policy: 8+ characters, 3 of 4 classes.
    let refused = create("alllowercase").unwrap_err();
    assert!(refused.contains("PasswordPolicyViolation"), "{refused}");
    // A custom policy.
    aws(&[
        "iam",
        "update-account-password-policy",
        "--minimum-password-length",
        "20",
        "--require-symbols",
        "--password-reuse-prevention",
        "2",
    ])
    .unwrap();
    let short = create("Short-Pass-1!");
    let strong = strong_password("d");
    let created = create(&strong);
    let reused = aws(&[
        "iam",
        "update-login-profile",
        "--user-name",
        &user,
        "--password",
        &strong,
    ]);
    assert!(short.unwrap_err().contains("PasswordPolicyViolation"));
    created.expect("a strong password passes the policy");
    assert!(
        reused.unwrap_err().contains("PasswordPolicyViolation"),
        "reuse prevention"
    );
}

/// IAM's credential report is a snapshot: its rows are as of
/// GenerateCredentialReport, served unchanged until IAM makes a new one,
/// which it does only when the last is over 4 hours old (plain moto writes
/// the rows when the report is read, and never moves password_last_changed).
#[test]
fn the_credential_report_is_a_snapshot_made_at_most_every_four_hours() {
    let env = env();
    let account = unique_account_id();
    let aws = |args: &[&str]| {
        env.aws_in(&account, args)
            .unwrap_or_else(|e| panic!("aws {args:?} in {account}: {e}"))
    };
    let user = unique("emu-report");
    aws(&["iam", "create-user", "--user-name", &user]);
    aws(&[
        "iam",
        "create-login-profile",
        "--user-name",
        &user,
        "--password",
        &strong_password("e"),
    ]);
    let (first, made) = password_last_changed(&account, &user);
    // A change after the snapshot is not in it, however often it is asked for.
    env.advance_clock(&account, 60);
    aws(&[
        "iam",
        "update-login-profile",
        "--user-name",
        &user,
        "--password",
        &strong_password("e2"),
    ]);
    let (same, made_again) = password_last_changed(&account, &user);
    assert_eq!(
        (same.as_str(), made_again.as_str()),
        (first.as_str(), made.as_str())
    );
    // Four hours later (the account's clock), IAM makes a new one.
    env.advance_clock(&account, 4 * 3600);
    let (moved, newer) = password_last_changed(&account, &user);
    assert!(parse(&moved) > parse(&first), "{moved} after {first}");
    assert!(parse(&newer) > parse(&made), "{newer} after {made}");
    aws(&["iam", "delete-login-profile", "--user-name", &user]);
    env.advance_clock(&account, 4 * 3600 + 60);
    assert_eq!(
        password_last_changed(&account, &user).0,
        "N/A",
        "no password, no date"
    );
}

/// IAM does not distinguish user names by case: a case variant cannot be
/// created, and a call naming one reaches the user (plain moto keys users by
/// the exact name).
#[test]
fn user_names_are_not_distinguished_by_case() {
    let env = env();
    let mut users = TestUsers::default();
    let user = users.create("emu-Case");
    let variant = user.to_uppercase();
    let refused = env
        .aws(&["iam", "create-user", "--user-name", &variant])
        .unwrap_err();
    assert!(refused.contains("EntityAlreadyExists"), "{refused}");
    env.aws_ok(&[
        "iam",
        "create-login-profile",
        "--user-name",
        &variant,
        "--password",
        &strong_password("c"),
    ]);
    let read = env.aws_ok(&[
        "iam",
        "get-login-profile",
        "--user-name",
        &user.to_lowercase(),
    ]);
    assert_eq!(
        read["LoginProfile"]["UserName"],
        user.as_str(),
        "the name it was created with"
    );
    let listed = env.aws_ok(&["iam", "get-user", "--user-name", &variant]);
    assert_eq!(listed["User"]["UserName"], user.as_str());
}

#[test]
fn change_password_as_the_user_clears_the_reset_flag() {
    let env = env();
    let mut users = TestUsers::default();
    let user = users.create("emu-change");
    let first = strong_password("f");
    env.aws_ok(&[
        "iam",
        "create-login-profile",
        "--user-name",
        &user,
        "--password",
        &first,
        "--password-reset-required",
    ]);
    let wrong = support::change_password_as_user(&user, "Wrong-Old-1!", &strong_password("f1"));
    assert!(wrong.is_err(), "the old password is checked");
    support::change_password_as_user(&user, &first, &strong_password("f2"))
        .expect("ChangePassword works");
    let read = env.aws_ok(&["iam", "get-login-profile", "--user-name", &user]);
    assert_eq!(read["LoginProfile"]["PasswordResetRequired"], false);
}

#[test]
fn fault_injection_answers_with_iam_errors() {
    let env = env();
    let user = unique("emu-fault");
    env.inject_fault(
        "GetLoginProfile",
        &user,
        "EntityTemporarilyUnmodifiable",
        409,
        1,
    );
    let error = env
        .aws(&["iam", "get-login-profile", "--user-name", &user])
        .unwrap_err();
    assert!(error.contains("EntityTemporarilyUnmodifiable"), "{error}");
    let error = env
        .aws(&["iam", "get-login-profile", "--user-name", &user])
        .unwrap_err();
    assert!(
        error.contains("NoSuchEntity"),
        "the fault was used up: {error}"
    );
    assert_eq!(env.iam_calls(&user).get("GetLoginProfile"), Some(&2));
}

/// The credential report of `account` (generated if need be) as its
/// GeneratedTime and the row of `user`, by column name.
fn report_row(account: &str, user: &str) -> (String, HashMap<String, String>) {
    let env = env();
    support::wait_until("a credential report", Duration::from_secs(10), || {
        env.aws_in(account, &["iam", "generate-credential-report"])
            .is_ok_and(|answer| answer["State"] == "COMPLETE")
    });
    let report = env
        .aws_in(account, &["iam", "get-credential-report"])
        .unwrap();
    let csv = String::from_utf8(base64_decode(report["Content"].as_str().unwrap())).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row = csv
        .lines()
        .find(|l| l.starts_with(&format!("{user},")))
        .unwrap_or_else(|| panic!("{user} is not in the report"));
    let row = header
        .iter()
        .zip(row.split(','))
        .map(|(h, v)| (h.to_string(), v.to_string()))
        .collect();
    (report["GeneratedTime"].as_str().unwrap().to_string(), row)
}

/// A user with a console password in an AWS account of its own (the
/// tests that move an account's clock must not move anyone else's).
fn account_with_console_user(prefix: &str) -> (String, String) {
    let env = env();
    let account = unique_account_id();
    let user = unique(prefix);
    env.aws_in(&account, &["iam", "create-user", "--user-name", &user])
        .unwrap();
    env.aws_in(
        &account,
        &[
            "iam",
            "create-login-profile",
            "--user-name",
            &user,
            "--password",
            &strong_password("r"),
        ],
    )
    .unwrap();
    (account, user)
}

/// The report says when it was made (moto: 2015-02-02T20:02:02Z forever),
/// and a new one is made once the last is over 4 hours old.
#[test]
fn credential_report_says_when_it_was_made() {
    let env = env();
    let (account, user) = account_with_console_user("emu-generated");
    let (generated, _) = report_row(&account, &user);
    let age = chrono::Utc::now().signed_duration_since(parse(&generated));
    assert!(
        age.num_seconds().abs() < 120,
        "GeneratedTime {generated} is not now"
    );
    env.advance_clock(&account, 5 * 3600);
    env.aws_in(&account, &["iam", "generate-credential-report"])
        .unwrap();
    let (later, _) = report_row(&account, &user);
    let ahead = parse(&later).signed_duration_since(parse(&generated));
    assert!(
        (ahead.num_minutes() - 300).abs() <= 2,
        "a report 5 hours later (the account's clock): {generated} then {later}"
    );
}

/// password_next_rotation is the last change plus MaxPasswordAge (moto:
/// not_supported), N/A without one; password_last_used follows a recorded
/// sign-in; both on the account's clock, 46 days on.
#[test]
fn credential_report_says_when_a_password_must_rotate_and_was_last_used() {
    let env = env();
    let (account, user) = account_with_console_user("emu-rotate");
    let run = |args: &[&str]| {
        env.aws_in(&account, args)
            .unwrap_or_else(|e| panic!("aws {args:?}: {e}"))
    };
    let (_, row) = report_row(&account, &user);
    assert_eq!(
        row["password_next_rotation"], "N/A",
        "no MaxPasswordAge, no rotation"
    );
    assert_eq!(row["password_last_used"], "no_information");

    run(&[
        "iam",
        "update-account-password-policy",
        "--max-password-age",
        "90",
    ]);
    env.advance_clock(&account, 46 * 86400);
    run(&[
        "iam",
        "update-login-profile",
        "--user-name",
        &user,
        "--password",
        &strong_password("r2"),
    ]);
    env.record_sign_in(&account, &user);
    let (_, row) = report_row(&account, &user);
    let changed = parse(&row["password_last_changed"]);
    let ahead = changed.signed_duration_since(chrono::Utc::now());
    assert!(
        (ahead.num_days() - 46).abs() <= 1,
        "the change carries the account's clock: {changed}"
    );
    assert_eq!(
        parse(&row["password_next_rotation"]),
        changed + chrono::Duration::days(90),
        "last change + MaxPasswordAge"
    );
    let used = parse(&row["password_last_used"]);
    assert!(used >= changed, "signed in after the change: {used}");
}

/// `user`'s password_last_changed in `account`'s credential report, and
/// the report's GeneratedTime (asking IAM to generate one first).
fn password_last_changed(account: &str, user: &str) -> (String, String) {
    let env = env();
    let aws = |args: &[&str]| {
        env.aws_in(account, args)
            .unwrap_or_else(|e| panic!("aws {args:?} in {account}: {e}"))
    };
    support::wait_until("a credential report", Duration::from_secs(10), || {
        aws(&["iam", "generate-credential-report"])["State"] == "COMPLETE"
    });
    let report = aws(&["iam", "get-credential-report"]);
    let content = report["Content"].as_str().unwrap();
    let csv = String::from_utf8(base64_decode(content)).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = header
        .iter()
        .position(|h| *h == "password_last_changed")
        .unwrap();
    let row = csv
        .lines()
        .find(|l| l.starts_with(&format!("{user},")))
        .unwrap_or_else(|| panic!("{user} is not in the report"));
    let generated = report["GeneratedTime"].as_str().unwrap().to_string();
    (row.split(',').nth(column).unwrap().to_string(), generated)
}

fn parse(time: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(time).unwrap_or_else(|e| panic!("{time}: {e}"))
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// IAM's writes reach an EventBridge rule's SQS queue as CloudTrail events
/// (moto's IAM emits none): the login-profile calls, a person's own
/// ChangePassword (named by its caller) and the tag calls, each with its
/// user, caller, a unique eventID and the request id of IAM's answer,
/// never with a password; delivery is best effort, so the emulator can drop events or delay them.
#[test]
fn iam_writes_reach_an_event_rules_queue_as_cloudtrail_events() {
    let env = env();
    let account = unique_account_id();
    let queue = EventQueue::create(&account);
    let user = unique("evt");
    let passwords = [
        strong_password("evt-1"),
        strong_password("evt-2"),
        strong_password("evt-3"),
    ];
    let admin = |args: &[&str]| env.aws_in(&account, args).unwrap();
    admin(&["iam", "create-user", "--user-name", &user]);
    admin(&[
        "iam",
        "create-login-profile",
        "--user-name",
        &user,
        "--password",
        &passwords[0],
    ]);
    admin(&[
        "iam",
        "update-login-profile",
        "--user-name",
        &user,
        "--password",
        &passwords[1],
    ]);
    change_password_as_user_in(Some(&account), &user, &passwords[1], &passwords[2]).unwrap();
    // Refused calls are recorded too, with IAM's error.
    change_password_as_user_in(Some(&account), &user, &passwords[0], &passwords[1])
        .expect_err("IAM refuses a wrong old password");
    let tag_request = tag_user_in(&account, &user, "team", "a");
    admin(&["iam", "delete-login-profile", "--user-name", &user]);

    let mut events = Vec::new();
    wait_until("six IAM events in the queue", CONVERGE, || {
        events.extend(queue.drain());
        events.len() >= 6
    });
    let bodies = serde_json::to_string(&events).unwrap();
    for password in &passwords {
        assert!(
            !bodies.contains(password.as_str()),
            "an event shows a password"
        );
    }
    let mut names: Vec<&str> = events
        .iter()
        .map(|e| e["detail"]["eventName"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ChangePassword",
            "ChangePassword",
            "CreateLoginProfile",
            "DeleteLoginProfile",
            "TagUser",
            "UpdateLoginProfile"
        ]
    );
    let refused: Vec<&Value> = events
        .iter()
        .map(|e| &e["detail"])
        .filter(|detail| !detail["errorCode"].is_null())
        .collect();
    assert_eq!(refused.len(), 1, "{bodies}");
    assert_eq!(refused[0]["eventName"], "ChangePassword");
    assert_eq!(refused[0]["errorCode"], "InvalidInput");
    assert!(refused[0]["errorMessage"].as_str().is_some(), "{bodies}");
    let mut ids = std::collections::HashSet::new();
    for event in &events {
        let detail = &event["detail"];
        assert_eq!(event["source"], "aws.iam");
        assert_eq!(event["detail-type"], "AWS API Call via CloudTrail");
        assert_eq!(detail["eventSource"], "iam.amazonaws.com");
        assert_eq!(detail["awsRegion"], "us-east-1");
        assert_eq!(detail["recipientAccountId"], account.as_str());
        assert!(ids.insert(detail["eventID"].as_str().unwrap().to_string()));
        assert!(!detail["requestID"].as_str().unwrap().is_empty());
        if detail["eventName"] == "TagUser" {
            // The answer's request id: how the operator knows its own.
            assert_eq!(detail["requestID"], tag_request.as_str());
        }
        if detail["eventName"] == "ChangePassword" {
            // It acts on the caller: the user is in userIdentity only.
            assert_eq!(detail["userIdentity"]["type"], "IAMUser");
            assert_eq!(detail["userIdentity"]["userName"], user.as_str());
        } else {
            assert_eq!(detail["requestParameters"]["userName"], user.as_str());
            assert_eq!(detail["userIdentity"]["type"], "AssumedRole");
            assert!(
                detail["userIdentity"]["arn"]
                    .as_str()
                    .unwrap()
                    .contains(":assumed-role/OrganizationAccountAccessRole/"),
                "{detail}"
            );
        }
    }

    // Dropped: IAM applies the call, no event comes.
    queue.delivery(0.0, 1.0);
    admin(&[
        "iam",
        "create-login-profile",
        "--user-name",
        &user,
        "--password",
        &passwords[0],
    ]);
    holds_for(Duration::from_secs(2), || {
        assert!(queue.drain().is_empty(), "a dropped event arrived")
    });
    // Delayed: it comes, later.
    queue.delivery(2.0, 0.0);
    let sent = Instant::now();
    admin(&["iam", "delete-login-profile", "--user-name", &user]);
    let late = wait_for("the delayed event", CONVERGE, || queue.drain().pop());
    assert_eq!(late["detail"]["eventName"], "DeleteLoginProfile");
    assert!(
        sent.elapsed() >= Duration::from_secs(2),
        "it came undelayed"
    );
}
