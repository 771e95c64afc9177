//! Lifecycle policies against the real environment: passwordUpdatePolicy
//! (Enforce, CreateOnly), the account password policy pre-check, generated
//! passwords, and the combinations the API server refuses. IAM calls are
//! counted at the emulator.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

/// Enforce learns of an out-of-band change from IAM's credential report,
/// which IAM makes at most every 4 hours: the test runs in an AWS account
/// of its own, whose clock it moves past that (the operator asks for a
/// report every second here).
#[test]
fn enforce_reverts_an_out_of_band_change_seen_in_the_next_credential_report() {
    let own = OwnAccount::new("lc-enforce", json!({}));
    let (account, ns) = (&own.id, &own.ns);
    let _operator = Operator::start(
        &ns.name,
        &[
            "--resync-period",
            "2s",
            "--credential-report-interval",
            "1s",
        ],
    );
    own.wait_verified();
    let user = own.create_user("lc-enforce");
    let ours = strong_password("ours");
    own.apply_pair(
        "kim",
        &user,
        &ours,
        json!({"passwordUpdatePolicy": "Enforce"}),
    );
    wait_ready_reason(&ns.name, "kim", "True", "Created", CONVERGE);
    // IAM made the report the operator reads before the change below.
    wait_until("the operator's first credential report", CONVERGE, || {
        env()
            .iam_calls(&format!("account:{account}"))
            .get("GetCredentialReport")
            .is_some_and(|n| *n > 0)
    });
    // The report's change times have one-second resolution.
    env().advance_clock(account, 2);
    let theirs = strong_password("theirs");
    own.aws(&[
        "iam",
        "update-login-profile",
        "--user-name",
        &user,
        "--password",
        &theirs,
    ]);
    // Until IAM makes a new report, the change is not in it: nothing is done.
    holds_for(Duration::from_secs(5), || {
        let lp = get_lp(&ns.name, "kim");
        assert!(
            !ready(&lp)
                .unwrap()
                .2
                .contains("changed outside the operator"),
            "seen before any report showed it"
        );
    });
    env().advance_clock(account, 4 * 3600 + 60);
    let lp = wait_for(
        "the operator to set the Secret's password again",
        CONVERGE,
        || {
            let lp = get_lp(&ns.name, "kim");
            ready(&lp)?
                .2
                .contains("changed outside the operator")
                .then_some(lp)
        },
    );
    assert!(!status_str(&lp, "passwordChangedOutOfBand").is_empty());
    // IAM has the Secret's password again, not the other one: the user can
    // change from it and not from theirs (tried first, while IAM still holds
    // what the operator set).
    assert!(
        change_password_as_user_in(Some(account), &user, &theirs, &strong_password("x")).is_err()
    );
    change_password_as_user_in(Some(account), &user, &ours, &strong_password("check"))
        .expect("IAM has the Secret's password");
    let _ = env().aws_in(
        account,
        &["iam", "delete-login-profile", "--user-name", &user],
    );
}

#[test]
fn create_only_holds_a_secret_change_back_and_reports_it() {
    let f = Fixture::new("lc-createonly", &[]);
    let mut users = TestUsers::default();
    let user = users.create("lc-createonly");
    let first = strong_password("first");
    f.apply_pair(
        "lee",
        &user,
        &first,
        json!({"passwordUpdatePolicy": "CreateOnly"}),
    );
    let created = wait_ready_reason(f.ns(), "lee", "True", "Created", CONVERGE);
    f.set_password("lee", &strong_password("second"));
    let lp = wait_ready_reason(
        f.ns(),
        "lee",
        "True",
        "UpdateHeldBack",
        Duration::from_secs(10),
    );
    let secret_rv = env().kubectl_ok(&[
        "get",
        "secret",
        "lee",
        "-n",
        f.ns(),
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    assert_eq!(status_str(&lp, "heldBackSourceVersion"), secret_rv);
    assert_eq!(
        status_str(&lp, "passwordFingerprint"),
        status_str(&created, "passwordFingerprint"),
        "the applied password is unchanged"
    );
    assert_eq!(calls(&user, "UpdateLoginProfile"), 0);
    assert!(
        events(f.ns(), "lee")
            .iter()
            .any(|e| e["reason"] == "UpdateHeldBack")
    );
    change_password_as_user(&user, &first, &strong_password("check"))
        .expect("IAM still has the first password");
}

#[test]
fn password_policy_precheck_and_generated_passwords() {
    // In an AWS account of its own: the password policy is account-wide.
    let account = OwnAccount::new("lc-policy", json!({}));
    account.set_password_policy(&[
        "--minimum-password-length",
        "14",
        "--require-symbols",
        "--require-numbers",
        "--require-uppercase-characters",
        "--require-lowercase-characters",
    ]);
    let ns = account.ns();
    let operator = Operator::start(ns, &["--password-policy-refresh", "1s"]);
    account.wait_verified();

    // Pre-check: a weak password names each broken rule and writes nothing.
    let weak_user = account.create_user("lc-weak");
    account.apply_pair("weak", &weak_user, "weakpassw", json!({}));
    let lp = wait_ready_reason(ns, "weak", "False", "PasswordPolicyViolation", CONVERGE);
    let (_, _, message) = ready(&lp).unwrap();
    for rule in [
        "needs at least 14 characters (has 9)",
        "needs an uppercase letter",
        "needs a number",
        "needs a symbol",
    ] {
        assert!(message.contains(rule), "{rule:?} missing from {message:?}");
    }
    assert!(!message.contains("weakpassw"));
    assert_eq!(
        iam_writes(&weak_user),
        0,
        "no IAM write for a password the policy refuses"
    );
    env().apply_ok(&secret(
        ns,
        "weak",
        &[("password", &strong_password("fixed"))],
    ));
    wait_ready_reason(ns, "weak", "True", "Created", CONVERGE);

    // Generated: the Secret appears with a policy-compliant password.
    let gen_user = account.create_user("lc-gen");
    env().apply_ok(&login_profile(
        ns,
        "gen",
        json!({"userName": gen_user, "passwordSecretRef": {"name": "gen-pw"}, "generatePassword": {"length": 20},
               "accountRef": {"name": account.iam_account}}),
    ));
    wait_ready_reason(ns, "gen", "True", "Created", CONVERGE);
    let secret: serde_json::Value = serde_json::from_str(
        &env().kubectl_ok(&["get", "secret", "gen-pw", "-n", ns, "-o", "json"]),
    )
    .unwrap();
    use base64::Engine;
    let password = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(secret["data"]["password"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(password.chars().count(), 20);
    assert!(password.chars().any(|c| c.is_ascii_uppercase()));
    assert!(password.chars().any(|c| c.is_ascii_lowercase()));
    assert!(password.chars().any(|c| c.is_ascii_digit()));
    assert!(password.chars().any(|c| "!@#$%^&*()_+-=[]{}|'".contains(c)));
    assert_eq!(
        secret["metadata"]["labels"]["iam.loginprofile.dev/generated-for"],
        "gen"
    );
    assert_eq!(
        secret["metadata"]["ownerReferences"][0]["kind"],
        "LoginProfile"
    );
    assert!(
        events(ns, "gen")
            .iter()
            .any(|e| e["reason"] == "PasswordGenerated")
    );
    let generated_rv = secret["metadata"]["resourceVersion"].clone();

    // A restart does not regenerate it.
    drop(operator);
    let operator = Operator::start(ns, &[]);
    wait_until("the restarted operator to reconcile it", CONVERGE, || {
        operator.logs().contains("/gen.")
    });
    let again: serde_json::Value = serde_json::from_str(
        &env().kubectl_ok(&["get", "secret", "gen-pw", "-n", ns, "-o", "json"]),
    )
    .unwrap();
    assert_eq!(
        again["metadata"]["resourceVersion"], generated_rv,
        "never regenerated"
    );
    assert_eq!(calls(&gen_user, "CreateLoginProfile"), 1);
    assert_eq!(calls(&gen_user, "UpdateLoginProfile"), 0);
    // IAM has the generated password.
    account
        .change_password_as_user(&gen_user, &password, &strong_password("mine"))
        .expect("IAM has the generated password");
}

#[test]
fn refused_combinations_are_refused_by_the_api_server() {
    let ns = TestNamespace::new("lc-cel");
    let cases = [
        (
            json!({"passwordSecretRef": {"name": "s"}, "passwordUpdatePolicy": "Enforce", "passwordResetRequired": true}),
            "Enforce would undo the new password the user is required to choose",
        ),
        (
            json!({"passwordSecretRef": {"name": "s"}, "generatePassword": {"length": 7}}),
            "spec.generatePassword.length",
        ),
        (
            json!({"passwordSecretRef": {"name": "s"}, "passwordUpdatePolicy": "Sometimes"}),
            "Unsupported value: \"Sometimes\"",
        ),
        (
            json!({"passwordSecretRef": {"name": "s"}, "deletionPolicy": "Keep"}),
            "Unsupported value: \"Keep\"",
        ),
    ];
    for (spec, needle) in cases {
        let output = env().apply(&login_profile(&ns.name, "refused", spec.clone()));
        assert!(!output.status.success(), "{spec} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{spec}: {stderr}");
    }
}

/// Secrets Manager calls the emulator received for one SecretId.
fn sm_calls(secret_id: &str, action: &str) -> u64 {
    calls(secret_id, action)
}

#[test]
fn secrets_manager_source_creates_rotates_and_reads_only_new_versions() {
    let f = Fixture::new("lc-sm", &["--secrets-manager-poll-interval", "1s"]);
    let mut users = TestUsers::default();
    let user = users.create("lc-sm");
    let secret_id = unique("prod/lc-sm");
    let first = strong_password("sm1");
    create_secrets_manager_secret(
        &secret_id,
        &json!({"username": user, "password": first}).to_string(),
    );
    env().apply_ok(&login_profile(
        f.ns(),
        "sam",
        json!({"userName": user, "passwordSecretsManagerRef": {"secretId": secret_id, "jsonKey": "password"}}),
    ));
    let created = wait_ready_reason(f.ns(), "sam", "True", "Created", CONVERGE);
    assert!(!status_str(&created, "secretsManagerVersionId").is_empty());
    change_password_as_user(&user, &first, &first.replace("sm1", "sm1b"))
        .expect("IAM has the Secrets Manager password");
    // The user's own change above is not drift for OnSecretChange; rotate in
    // Secrets Manager: a new version is a password change.
    let second = strong_password("sm2");
    env().aws_ok(&[
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        &secret_id,
        "--secret-string",
        &json!({"password": second}).to_string(),
    ]);
    let updated = wait_ready_reason(f.ns(), "sam", "True", "Updated", CONVERGE);
    assert_ne!(
        status_str(&updated, "secretsManagerVersionId"),
        status_str(&created, "secretsManagerVersionId")
    );
    assert_eq!(calls(&user, "UpdateLoginProfile"), 1);
    assert_eq!(
        sm_calls(&secret_id, "GetSecretValue"),
        2,
        "one read per version"
    );
    // Polls that find the same version describe it, never read it.
    let described = sm_calls(&secret_id, "DescribeSecret");
    wait_until("three more polls", CONVERGE, || {
        sm_calls(&secret_id, "DescribeSecret") >= described + 3
    });
    assert_eq!(sm_calls(&secret_id, "GetSecretValue"), 2);
    assert_eq!(calls(&user, "UpdateLoginProfile"), 1);
    change_password_as_user(&user, &second, &strong_password("sm3"))
        .expect("IAM has the rotated password");
}

#[test]
fn secrets_manager_errors_each_have_their_reason() {
    let f = Fixture::new("lc-smerr", &["--secrets-manager-poll-interval", "1s"]);
    let mut users = TestUsers::default();
    let hidden = strong_password("HIDDENsm");
    let make = |suffix: &str, value: &str| {
        let id = unique(&format!("prod/lc-smerr-{suffix}"));
        create_secrets_manager_secret(&id, value);
        id
    };
    let json_value = json!({"password": hidden}).to_string();
    let denied = make("denied", &json_value);
    env().inject_fault(
        "DescribeSecret",
        &denied,
        "AccessDeniedException",
        400,
        1000,
    );
    let undecryptable = make("kms", &json_value);
    env().inject_fault(
        "GetSecretValue",
        &undecryptable,
        "DecryptionFailure",
        400,
        1000,
    );
    let cases = [
        (
            "missing",
            unique("prod/none"),
            Some("password"),
            "SecretsManagerNotFound",
        ),
        (
            "denied",
            denied,
            Some("password"),
            "SecretsManagerAccessDenied",
        ),
        (
            "kms",
            undecryptable,
            Some("password"),
            "SecretsManagerDecryptionFailure",
        ),
        (
            "nokey",
            make("nokey", &json_value),
            Some("pw"),
            "SecretsManagerJsonKeyNotFound",
        ),
        (
            "notjson",
            make("notjson", &hidden),
            Some("password"),
            "SecretsManagerNotJson",
        ),
    ];
    for (name, id, key, _) in &cases {
        let user = users.create(&format!("lc-smerr-{name}"));
        env().apply_ok(&login_profile(
            f.ns(),
            name,
            json!({"userName": user, "passwordSecretsManagerRef": {"secretId": id, "jsonKey": key}}),
        ));
    }
    for (name, _, _, reason) in &cases {
        let lp = wait_ready_reason(f.ns(), name, "False", reason, CONVERGE);
        let (_, _, message) = ready(&lp).unwrap();
        assert!(!message.contains("HIDDEN"), "{name}: {message}");
        assert!(condition_true(&lp, "Stalled"), "{name} is terminal");
    }
    let events = env().kubectl_ok(&["get", "events", "-n", f.ns(), "-o", "json"]);
    assert!(!events.contains("HIDDEN") && !f.operator.logs().contains("HIDDEN"));
}

#[test]
fn exactly_one_password_source_is_required() {
    let ns = TestNamespace::new("lc-onesource");
    let sm = json!({"secretId": "prod/x"});
    for (spec, needle) in [
        (
            json!({"passwordSecretRef": {"name": "s"}, "passwordSecretsManagerRef": sm}),
            "set exactly one password source",
        ),
        (
            json!({"passwordResetRequired": true}),
            "set exactly one password source",
        ),
        (
            json!({"passwordSecretsManagerRef": sm, "generatePassword": {}}),
            "generatePassword needs passwordSecretRef",
        ),
        (
            json!({"generatePassword": {"deliverTo": {}}}),
            "deliverTo needs at least one recipient",
        ),
        (
            json!({"generatePassword": {"deliverTo": {"ageRecipients": ["age1x"]}},
                   "passwordUpdatePolicy": "Enforce"}),
            "deliverTo goes only with passwordUpdatePolicy: OnSecretChange",
        ),
    ] {
        let output = env().apply(&login_profile(&ns.name, "refused", spec.clone()));
        assert!(!output.status.success(), "{spec} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{spec}: {stderr}");
    }
}

#[test]
fn a_denied_deletion_says_so_and_retain_lets_it_go() {
    let f = Fixture::new("lc-deny-delete", &[]);
    let mut users = TestUsers::default();
    let user = users.create("lc-deny-delete");
    f.apply_pair("bob", &user, &strong_password("denied"), json!({}));
    wait_ready_reason(f.ns(), "bob", "True", "Created", CONVERGE);
    env().fault(json!({"action": "DeleteLoginProfile", "user": user,
                       "code": "AccessDenied", "status": 403, "count": 1000}));
    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "bob",
        "-n",
        f.ns(),
        "--wait=false",
    ]);
    let lp = wait_ready_reason(f.ns(), "bob", "False", "AccessDenied", CONVERGE);
    let (_, _, message) = ready(&lp).unwrap();
    assert!(
        message.contains("could not delete") && message.contains("deletionPolicy: Retain"),
        "{message}"
    );

    // The documented way out: keep the profile, let the LoginProfile go.
    env().kubectl_ok(&[
        "patch",
        "loginprofile",
        "bob",
        "-n",
        f.ns(),
        "--type=merge",
        "-p",
        r#"{"spec":{"deletionPolicy":"Retain"}}"#,
    ]);
    wait_until("the LoginProfile to be gone", CONVERGE, || {
        !env()
            .kubectl(&["get", "loginprofile", "bob", "-n", f.ns()])
            .status
            .success()
    });
    env().clear_faults(&user);
    iam_profile(&user).expect("the profile is kept");
}
