//! The operator's own bookkeeping is no tenant's to write, and a refused
//! write is never recorded as applied (docs/reliability.md, "Who can write
//! what"). Each scenario is played by a tenant with its own ServiceAccount
//! token and the rights the chart's `edit` role gives (LoginProfiles and
//! Secrets, not LoginProfile status), against the real API server and the
//! emulator; whose password IAM holds is proved by signing in as the user.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

/// A LoginProfile manifest with the metadata a tenant chose to write.
fn login_profile_with(namespace: &str, name: &str, metadata: Value, spec: Value) -> String {
    let mut manifest: Value = serde_json::from_str(&login_profile(namespace, name, spec)).unwrap();
    manifest["metadata"]
        .as_object_mut()
        .unwrap()
        .extend(metadata.as_object().cloned().unwrap_or_default());
    manifest.to_string()
}

/// Someone other than the tenant (an admin) set `user`'s console password;
/// returns the profile's CreateDate (seconds since the epoch).
fn admin_sets_console_password(user: &str, password: &str) -> i64 {
    let created = env().aws_ok(&[
        "iam",
        "create-login-profile",
        "--user-name",
        user,
        "--password",
        password,
    ]);
    seconds(
        created["LoginProfile"]["CreateDate"]
            .as_str()
            .expect("IAM answers with the CreateDate"),
    )
}

/// Neither UpdateLoginProfile nor DeleteLoginProfile reached IAM for `user`.
fn no_write_changed(user: &str) {
    for action in ["UpdateLoginProfile", "DeleteLoginProfile"] {
        assert_eq!(calls(user, action), 0, "{action} for {user}");
    }
}

/// Deletes the LoginProfile as the tenant and waits until it is gone (the
/// operator ran its cleanup and removed the finalizer).
fn tenant_deletes(tenant: &Tenant, namespace: &str, name: &str) {
    tenant.kubectl_ok(&[
        "delete",
        "loginprofile",
        name,
        "-n",
        namespace,
        "--wait=true",
        "--timeout=60s",
    ]);
}

/// The tenant deletes LoginProfile `bob`: nothing is written to `user`,
/// whose profile IAM still holds with the admin's password.
fn deleting_it_leaves_the_admins_profile(
    tenant: &Tenant,
    namespace: &str,
    user: &str,
    admin: &str,
) {
    tenant_deletes(tenant, namespace, "bob");
    no_write_changed(user);
    change_password_as_user(user, admin, &strong_password("admin2"))
        .expect("IAM still holds the admin's password");
}

/// Waits for one more IAM call about `user` than `before` counted.
fn wait_for_another_call(user: &str, before: u64) {
    wait_until("the operator to look at IAM again", CONVERGE, || {
        env().iam_calls(user).values().sum::<u64>() > before
    });
}

#[test]
fn forged_and_copied_marks_make_no_foreign_profile_ours() {
    let ns = TestNamespace::new("trust-forged");
    let tenant = Tenant::new(&ns.name);
    let operator = Operator::start(&ns.name, &[]);
    let mut users = TestUsers::default();

    // The status subresource, where the operator keeps what it believes, is
    // not the tenant's to write.
    let own = users.create("trust-own");
    tenant.apply_pair(&ns.name, "own", &own, &strong_password("own"));
    let genuine = wait_ready_reason(&ns.name, "own", "True", "Created", CONVERGE);
    let refused = tenant.kubectl(
        &[
            "patch",
            "loginprofile",
            "own",
            "-n",
            &ns.name,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"writesSettledThrough":null}}"#,
        ],
        None,
    );
    assert!(!refused.status.success(), "a tenant wrote status");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("forbidden"));

    // Two IAM users whose console passwords an admin set after `own`'s
    // marks were written: a mark copied from `own` would date before them.
    let (forged_user, copied_user) = (users.create("trust-forged"), users.create("trust-copied"));
    let (forged_admin, copied_admin) = (strong_password("admin-f"), strong_password("admin-c"));
    admin_sets_console_password(&forged_user, &forged_admin);
    admin_sets_console_password(&copied_user, &copied_admin);

    let forged = json!({
        "annotations": {"iam.loginprofile.dev/in-charge-since": "2000-01-01T00:00:00Z"},
        "finalizers": ["iam.loginprofile.dev/cleanup"],
    });
    let copied = json!({
        "annotations": genuine["metadata"]["annotations"],
        "finalizers": ["iam.loginprofile.dev/cleanup"],
    });
    assert!(
        copied["annotations"]["iam.loginprofile.dev/in-charge-since"].is_string(),
        "the genuine object carries a mark to copy: {genuine}"
    );
    let mut sent = Vec::new();
    for (name, user, metadata) in [
        ("forged", &forged_user, forged),
        ("copied", &copied_user, copied),
    ] {
        let first = strong_password(name);
        tenant.apply_ok(&secret(&ns.name, name, &[("password", &first)]));
        tenant.apply_ok(&login_profile_with(
            &ns.name,
            name,
            metadata,
            json!({"userName": user, "passwordSecretRef": {"name": name}}),
        ));
        wait_ready_reason(&ns.name, name, "False", "LoginProfileExists", CONVERGE);

        // A change of the tenant's Secret sends nothing to the other user.
        let before = env().iam_calls(user).values().sum();
        let next = strong_password("next");
        tenant.apply_ok(&secret(&ns.name, name, &[("password", &next)]));
        sent.extend([first, next]);
        wait_for_another_call(user, before);
        let lp = wait_ready_reason(&ns.name, name, "False", "LoginProfileExists", CONVERGE);
        assert!(lp["status"]["passwordFingerprint"].is_null(), "{lp}");
        no_write_changed(user);

        // Deleting it (with the finalizer the tenant added) deletes nothing.
        tenant_deletes(&tenant, &ns.name, name);
        no_write_changed(user);
    }
    change_password_as_user(&forged_user, &forged_admin, &strong_password("f2"))
        .expect("IAM still holds the admin's password");
    change_password_as_user(&copied_user, &copied_admin, &strong_password("c2"))
        .expect("IAM still holds the admin's password");
    let logs = operator.logs();
    assert!(sent.iter().all(|password| !logs.contains(password)));
}

#[test]
fn a_profile_made_while_waiting_for_its_user_is_not_taken() {
    let ns = TestNamespace::new("trust-waiting");
    let tenant = Tenant::new(&ns.name);
    let operator = Operator::start(&ns.name, &[]);
    let mut users = TestUsers::default();
    let user = users.reserve("trust-later");
    tenant.apply_pair(&ns.name, "bob", &user, &strong_password("tenant"));
    wait_ready_reason(&ns.name, "bob", "False", "UserNotFound", CONVERGE);

    // An admin creates the user with a console password of its own (the
    // operator, retrying meanwhile, is paused so it cannot slip in between).
    let admin = strong_password("admin");
    operator.signal("STOP");
    env().aws_ok(&["iam", "create-user", "--user-name", &user]);
    admin_sets_console_password(&user, &admin);
    operator.signal("CONT");
    let lp = wait_ready_reason(&ns.name, "bob", "False", "LoginProfileExists", CONVERGE);
    assert!(lp["status"]["passwordFingerprint"].is_null(), "{lp}");
    no_write_changed(&user);

    tenant_deletes(&tenant, &ns.name, "bob");
    no_write_changed(&user);
    change_password_as_user(&user, &admin, &strong_password("admin2"))
        .expect("IAM still holds the admin's password");
}

#[test]
fn a_rolled_back_password_is_never_recorded_as_applied() {
    // In an AWS account of its own: reuse prevention is account-wide.
    let account = OwnAccount::new("trust-rollback", json!({}));
    account.set_password_policy(&["--password-reuse-prevention", "24"]);
    let ns = &account.ns;
    let tenant = Tenant::new(&ns.name);
    let _operator = Operator::start(&ns.name, &[]);
    account.wait_verified();
    let user = account.create_user("trust-rollback");
    let (first, second) = (strong_password("p1"), strong_password("p2"));
    tenant.apply_ok(&secret(&ns.name, "bob", &[("password", &first)]));
    tenant.apply_ok(&login_profile(
        &ns.name,
        "bob",
        json!({"userName": user, "passwordSecretRef": {"name": "bob"},
               "accountRef": {"name": account.iam_account}}),
    ));
    wait_ready_reason(&ns.name, "bob", "True", "Created", CONVERGE);
    tenant.apply_ok(&secret(&ns.name, "bob", &[("password", &second)]));
    let updated = wait_ready_reason(&ns.name, "bob", "True", "Updated", CONVERGE);
    let second_fingerprint = status_str(&updated, "passwordFingerprint").to_string();

    // Back to the first password: IAM refuses it as reused.
    tenant.apply_ok(&secret(&ns.name, "bob", &[("password", &first)]));
    wait_ready_reason(
        &ns.name,
        "bob",
        "False",
        "PasswordPolicyViolation",
        CONVERGE,
    );

    // A touch of the Secret: the operator tries again, IAM refuses again,
    // and that refusal is not taken for IAM holding the first password.
    let before = calls(&user, "UpdateLoginProfile");
    tenant.kubectl_ok(&[
        "annotate",
        "secret",
        "bob",
        "-n",
        &ns.name,
        "touched=1",
        "--overwrite",
    ]);
    wait_until("the operator to send the password again", CONVERGE, || {
        calls(&user, "UpdateLoginProfile") > before
    });
    holds_for(Duration::from_secs(3), || {
        let lp = get_lp(&ns.name, "bob");
        let (status, reason, _) = ready(&lp).expect("a Ready condition");
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "PasswordPolicyViolation")
        );
        assert_eq!(status_str(&lp, "passwordFingerprint"), second_fingerprint);
    });
    account
        .change_password_as_user(&user, &second, &strong_password("p3"))
        .expect("IAM holds the second password");
}

#[test]
fn login_profiles_that_are_not_admitted_cost_the_owner_no_reads() {
    let owner = TestNamespace::new("trust-owner");
    let outsider = TestNamespace::with_account("trust-outsider", None);
    let operator = Operator::start(&owner.name, &["--namespace", &outsider.name]);
    let mut users = TestUsers::default();
    let user = users.create("trust-owned");
    env().apply_ok(&secret(
        &owner.name,
        "bob",
        &[("password", &strong_password("o1"))],
    ));
    env().apply_ok(&login_profile(
        &owner.name,
        "bob",
        json!({"userName": user, "passwordSecretRef": {"name": "bob"}}),
    ));
    wait_ready_reason(&owner.name, "bob", "True", "Created", CONVERGE);

    // 50 LoginProfiles naming the owner's user, from a namespace no
    // IAMAccount admits (a read per rival would be 50 reads; the bound is 5).
    let tenant = Tenant::new(&outsider.name);
    let items: Vec<Value> = (0..50)
        .map(|i| {
            serde_json::from_str(&login_profile(
                &outsider.name,
                &format!("rival-{i}"),
                json!({"userName": user, "passwordSecretRef": {"name": "none"}}),
            ))
            .unwrap()
        })
        .collect();
    tenant.apply_ok(&json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string());
    wait_until(
        "all 50 to be refused as not admitted",
        Duration::from_secs(120),
        || {
            let refused = list_lps(&outsider.name)
                .iter()
                .filter(|lp| ready(lp).is_some_and(|(_, reason, _)| reason == "NotAdmitted"))
                .count();
            refused == 50
        },
    );

    // A rotation of the owner's Secret reads none of them.
    let reads = |ns: &str| {
        operator_requests_in(ns)
            .get("get loginprofiles")
            .copied()
            .unwrap_or(0)
    };
    let before = (reads(&owner.name), reads(&outsider.name));
    let rotated = strong_password("o2");
    env().apply_ok(&secret(&owner.name, "bob", &[("password", &rotated)]));
    wait_ready_reason(&owner.name, "bob", "True", "Updated", CONVERGE);
    let after = (reads(&owner.name), reads(&outsider.name));
    let spent = (after.0 - before.0) + (after.1 - before.1);
    assert!(
        spent < 5,
        "the rotation cost {spent} reads of LoginProfiles ({before:?} -> {after:?})"
    );
    assert_eq!(iam_writes(&user), 2, "one create, one rotation");
    assert!(!operator.logs().contains(&rotated));
}

/// What a namespace editor creates where nothing admits it reaches the
/// operator through its listings: LoginProfiles are listed in pages of 50
/// (never in one answer from the API server's cache, which would hold every
/// object whole at once), each trimmed before the next page, and none is
/// lost or starves the owner's.
#[test]
fn objects_nobody_admits_are_listed_in_pages_and_starve_nothing() {
    let owner = TestNamespace::new("trust-pages");
    let outsider = TestNamespace::with_account("trust-pages-out", None);
    let tenant = Tenant::new(&outsider.name);
    // 60 before the operator starts, five of them at the CRD's bounds (ten
    // 1024-character age recipients, a 16 KiB OpenPGP key, 240 KB of
    // annotations: about 270 KB each).
    let at_bounds = json!({"userName": "anyone", "generatePassword": {"deliverTo": {
        "ageRecipients": (0..10).map(|i| format!("age1{}", i.to_string().repeat(1020))).collect::<Vec<_>>(),
        "pgpPublicKey": "-".repeat(16384)}}});
    let padding = json!({"annotations": {"padding.example.com/tenant": "x".repeat(240_000)}});
    for i in 0..60 {
        let (metadata, spec) = if i < 5 {
            (padding.clone(), at_bounds.clone())
        } else {
            (
                json!({}),
                json!({"userName": "anyone", "passwordSecretRef": {"name": "none"}}),
            )
        };
        // Created, not applied: kubectl apply would copy the 240 KB into
        // its last-applied annotation, past the API server's 256 KB bound.
        let manifest = login_profile_with(&outsider.name, &format!("junk-{i}"), metadata, spec);
        let created = tenant.kubectl(&["create", "-f", "-"], Some(&manifest));
        assert!(
            created.status.success(),
            "kubectl create as the tenant: {created:?}"
        );
    }
    let mut users = TestUsers::default();
    let user = users.create("trust-pages");
    env().apply_ok(&secret(
        &owner.name,
        "bob",
        &[("password", &strong_password("p"))],
    ));
    env().apply_ok(&login_profile(
        &owner.name,
        "bob",
        json!({"userName": user, "passwordSecretRef": {"name": "bob"}}),
    ));
    let _operator = Operator::start(&owner.name, &["--namespace", &outsider.name]);
    wait_ready_reason(&owner.name, "bob", "True", "Created", CONVERGE);
    wait_until("all 60 refused as not admitted", CONVERGE, || {
        list_lps(&outsider.name)
            .iter()
            .filter(|lp| ready(lp).is_some_and(|(_, reason, _)| reason == "NotAdmitted"))
            .count()
            == 60
    });

    let lists = operator_profile_lists(&outsider.name);
    assert!(
        !lists.is_empty(),
        "the audit log shows the operator's listing"
    );
    let parameters = |uri: &str| -> Vec<String> {
        let query = uri.split_once('?').map_or("", |(_, query)| query);
        query.split('&').map(str::to_string).collect()
    };
    for uri in &lists {
        let asked = parameters(uri);
        assert!(
            asked.iter().any(|p| p == "limit=50")
                && !asked.iter().any(|p| p == "resourceVersion=0"),
            "a list in pages of 50, not from the cache in one answer: {uri}"
        );
    }
    assert!(
        lists
            .iter()
            .any(|uri| parameters(uri).iter().any(|p| p.starts_with("continue="))),
        "60 objects took a second page: {lists:?}"
    );
}

#[test]
fn a_secrets_manager_secret_the_account_does_not_admit_is_never_read() {
    let ns = TestNamespace::new("trust-sm");
    let tenant = Tenant::new(&ns.name);
    let operator = Operator::start(&ns.name, &["--secrets-manager-poll-interval", "1s"]);
    let mut users = TestUsers::default();
    let user = users.create("trust-sm");
    // Another team's secret, outside the `prod/*` the test IAMAccount admits.
    let secret_id = unique("team-b/payroll");
    create_secrets_manager_secret(
        &secret_id,
        &json!({"payroll-db-password": strong_password("theirs")}).to_string(),
    );
    tenant.apply_ok(&login_profile(
        &ns.name,
        "bob",
        json!({"userName": user,
               "passwordSecretsManagerRef": {"secretId": secret_id, "jsonKey": "password"}}),
    ));
    let lp = wait_ready_reason(&ns.name, "bob", "False", "NotAdmitted", CONVERGE);
    let (_, _, message) = ready(&lp).unwrap();
    assert!(message.contains("secretsManagerSecretIds"), "{message}");
    assert!(!message.contains("payroll-db-password"), "{message}");
    // Over several of the 1 s Secrets Manager polls, not once.
    holds_for(Duration::from_secs(4), || {
        assert_eq!(
            env().iam_calls(&secret_id).values().sum::<u64>(),
            0,
            "no Secrets Manager call for a secret not admitted"
        );
    });
    assert_eq!(iam_writes(&user), 0);
    assert!(!operator.logs().contains("payroll-db-password"));
}

/// The time a sealed mark of the operator's carries (its value before the seal).
fn mark_time(lp: &Value, annotation: &str) -> Option<i64> {
    let value = lp["metadata"]["annotations"][annotation].as_str()?;
    let (value, _seal) = value.rsplit_once(' ')?;
    let time = value.rsplit(' ').next()?;
    Some(seconds(time))
}

/// Waits until the wall clock is past `at` (seconds since the epoch): the
/// scenario needs that moment behind it, not a guess of how long it takes.
fn wait_past(at: i64) {
    wait_until("the moment to pass", CONVERGE, || {
        chrono::Utc::now().timestamp() > at
    });
}

#[test]
fn a_mark_a_tenant_keeps_open_never_makes_a_later_profile_ours() {
    let ns = TestNamespace::new("trust-open-mark");
    let tenant = Tenant::new(&ns.name);
    // IAM writes answered within 10 s of their mark, or abandoned.
    let operator = Operator::start(&ns.name, &["--iam-timeout", "10s"]);
    let mut users = TestUsers::default();
    let user = users.create("trust-open");

    // The operator's create is refused, and the refusal is held while the
    // tenant edits the object (so the status write that would settle the
    // marks meets a newer object) and parks it (its Secret gone).
    env().fault(
        json!({"action": "CreateLoginProfile", "user": user, "mode": "hold",
                       "code": "LimitExceeded", "status": 409}),
    );
    let tenant_password = strong_password("tenant");
    tenant.apply_pair(&ns.name, "bob", &user, &tenant_password);
    env().wait_held("CreateLoginProfile", &user);
    tenant.kubectl_ok(&["label", "loginprofile", "bob", "-n", &ns.name, "edited=1"]);
    tenant.kubectl_ok(&["delete", "secret", "bob", "-n", &ns.name]);
    env().release_held(&user);
    let parked = wait_ready_reason(&ns.name, "bob", "False", "SecretNotFound", CONVERGE);
    let marked = mark_time(&parked, "iam.loginprofile.dev/in-charge-since")
        .expect("the operator took charge with a sealed mark");

    // Past the attempt's window (mark + 10 s + 2 s of clock skew), an admin
    // gives the user a console password of its own.
    wait_past(marked + 12);
    let admin = strong_password("admin");
    let created = admin_sets_console_password(&user, &admin);

    // The tenant brings its Secret back: the admin's profile is not ours.
    wait_past(created + 3);
    tenant.apply_ok(&secret(&ns.name, "bob", &[("password", &tenant_password)]));
    let lp = wait_ready_reason(&ns.name, "bob", "False", "LoginProfileExists", CONVERGE);
    assert!(lp["status"]["passwordFingerprint"].is_null(), "{lp}");
    no_write_changed(&user);
    // A new password in the Secret, then the object's deletion: still nothing.
    tenant.apply_ok(&secret(
        &ns.name,
        "bob",
        &[("password", &strong_password("tenant2"))],
    ));
    wait_ready_reason(&ns.name, "bob", "False", "LoginProfileExists", CONVERGE);
    deleting_it_leaves_the_admins_profile(&tenant, &ns.name, &user, &admin);
    assert!(!operator.logs().contains(&tenant_password));
}

/// A namespace whose IAMAccount (of its own, verified) does not allow
/// adoption, a tenant with `edit` rights there, and an operator watching it.
struct NoAdoption {
    ns: TestNamespace,
    account: String,
    tenant: Tenant,
    operator: Operator,
    _accounts: TestAccounts,
}

impl NoAdoption {
    fn new(prefix: &str) -> Self {
        let ns = TestNamespace::with_account(prefix, None);
        let account = format!("no-adopt{}", unique("").to_lowercase());
        let accounts = TestAccounts(vec![account.clone()]);
        env().apply_ok(&iam_account(
            &account,
            json!({"namespaces": [ns.name], "userNames": ["*"]}),
        ));
        let tenant = Tenant::new(&ns.name);
        let operator = Operator::start(&ns.name, &[]);
        wait_account_ready(&account, "True", "Verified");
        Self {
            ns,
            account,
            tenant,
            operator,
            _accounts: accounts,
        }
    }
}

#[test]
fn adoption_the_account_forbids_is_refused_and_takes_nothing() {
    let NoAdoption {
        ns,
        account,
        _accounts,
        tenant,
        operator: _operator,
    } = NoAdoption::new("trust-no-adopt");
    let mut users = TestUsers::default();
    let user = users.create("trust-no-adopt");
    let admin = strong_password("admin");
    admin_sets_console_password(&user, &admin);
    let before = env().iam_calls(&user);

    tenant.apply_ok(&secret(
        &ns.name,
        "bob",
        &[("password", &strong_password("tenant"))],
    ));
    tenant.apply_ok(&login_profile(
        &ns.name,
        "bob",
        json!({"userName": user, "accountRef": {"name": account},
               "adoptionPolicy": "Adopt", "passwordSecretRef": {"name": "bob"}}),
    ));
    let refused = wait_ready_reason(&ns.name, "bob", "False", "NotAdmitted", CONVERGE);
    let (_, _, message) = ready(&refused).unwrap();
    assert!(message.contains("allowAdoption"), "{message}");
    holds_for(Duration::from_secs(3), || {
        assert_eq!(
            env().iam_calls(&user),
            before,
            "no IAM call for a refused adoption"
        );
    });
    change_password_as_user(&user, &admin, &strong_password("admin2"))
        .expect("the admin's password is still the one IAM holds");
}

#[test]
fn switching_to_adopt_during_a_create_takes_nothing_the_account_forbids() {
    let NoAdoption {
        ns,
        account,
        _accounts,
        tenant,
        operator,
    } = NoAdoption::new("trust-adopt-switch");
    let mut users = TestUsers::default();
    let user = users.create("trust-switch");
    let admin = strong_password("admin");
    let created = admin_sets_console_password(&user, &admin);
    wait_past(created + 3);

    // The first create's answer is lost (its marks stay open); a retry's
    // answer (IAM: the profile exists) is held while the tenant asks for
    // adoption, which this IAMAccount does not allow.
    env().fault(
        json!({"action": "CreateLoginProfile", "user": user, "mode": "error",
                       "code": "ServiceFailure", "status": 500}),
    );
    env().fault(json!({"action": "CreateLoginProfile", "user": user, "mode": "hold"}));
    let tenant_password = strong_password("tenant");
    tenant.apply_ok(&secret(&ns.name, "bob", &[("password", &tenant_password)]));
    tenant.apply_ok(&login_profile(
        &ns.name,
        "bob",
        json!({"userName": user, "accountRef": {"name": account},
               "passwordSecretRef": {"name": "bob"}}),
    ));
    // Either the retry is sent and held, or the operator looked first and
    // refused the admin's profile: the tenant switches at that moment.
    let held = wait_for("a held retry, or the refusal", CONVERGE, || {
        if env()
            .held()
            .iter()
            .any(|call| call["action"] == "CreateLoginProfile" && call["user"] == user.as_str())
        {
            return Some(true);
        }
        let lp = get_lp(&ns.name, "bob");
        ready(&lp)
            .is_some_and(|(_, reason, _)| reason == "LoginProfileExists")
            .then_some(false)
    });
    tenant.kubectl_ok(&[
        "patch",
        "loginprofile",
        "bob",
        "-n",
        &ns.name,
        "--type=merge",
        "-p",
        r#"{"spec":{"adoptionPolicy":"Adopt"}}"#,
    ]);
    if held {
        env().release_held(&user);
    }
    env().clear_faults(&user);
    let lp = wait_ready_reason(&ns.name, "bob", "False", "NotAdmitted", CONVERGE);
    let (_, _, message) = ready(&lp).unwrap();
    assert!(message.contains("allowAdoption"), "{message}");
    holds_for(Duration::from_secs(3), || no_write_changed(&user));
    deleting_it_leaves_the_admins_profile(&tenant, &ns.name, &user, &admin);
    assert!(!operator.logs().contains(&tenant_password));
}

#[test]
fn a_name_longer_than_iam_allows_is_reported() {
    let ns = TestNamespace::new("trust-long-name");
    let _operator = Operator::start(&ns.name, &[]);
    // A valid Kubernetes name of 70 characters, and no spec.userName.
    let name = format!("n{}", "x".repeat(69));
    env().apply_ok(&secret(
        &ns.name,
        "s",
        &[("password", &strong_password("long"))],
    ));
    env().apply_ok(&login_profile(
        &ns.name,
        &name,
        json!({"passwordSecretRef": {"name": "s"}}),
    ));
    let lp = wait_ready_reason(&ns.name, &name, "False", "InvalidUserName", CONVERGE);
    let (_, _, message) = ready(&lp).unwrap();
    assert!(message.contains("70 characters long"), "{message}");
    assert!(condition_true(&lp, "Stalled"), "{lp}");
    assert!(lp["status"]["userName"].is_null(), "{lp}");
}

#[test]
fn a_profile_someone_else_creates_after_a_deletion_is_not_taken() {
    let ns = TestNamespace::new("trust-recreated");
    let tenant = Tenant::new(&ns.name);
    let operator = Operator::start(&ns.name, &["--resync-period", "2s"]);
    let mut users = TestUsers::default();
    let user = users.create("trust-recreated");
    let tenant_password = strong_password("tenant");
    tenant.apply_pair(&ns.name, "bob", &user, &tenant_password);
    let lp = wait_ready_reason(&ns.name, "bob", "True", "Created", CONVERGE);
    let ours = seconds(status_str(&lp, "createDate"));

    // While the operator is paused (so it cannot recreate its own in
    // between), an admin replaces the profile with one of its own.
    operator.signal("STOP");
    env().aws_ok(&["iam", "delete-login-profile", "--user-name", &user]);
    wait_past(ours + 1);
    let admin = strong_password("admin");
    admin_sets_console_password(&user, &admin);
    let writes_before = ["UpdateLoginProfile", "DeleteLoginProfile"].map(|a| calls(&user, a));
    operator.signal("CONT");

    let lp = wait_ready_reason(&ns.name, "bob", "False", "LoginProfileExists", CONVERGE);
    let (_, _, message) = ready(&lp).unwrap();
    assert!(
        message.contains("created again outside the operator"),
        "{message}"
    );
    // A new password in the Secret, then the object's deletion: neither
    // reaches the admin's profile.
    tenant.apply_ok(&secret(
        &ns.name,
        "bob",
        &[("password", &strong_password("tenant2"))],
    ));
    wait_ready_reason(&ns.name, "bob", "False", "LoginProfileExists", CONVERGE);
    tenant_deletes(&tenant, &ns.name, "bob");
    assert_eq!(
        ["UpdateLoginProfile", "DeleteLoginProfile"].map(|a| calls(&user, a)),
        writes_before,
        "the operator wrote to the admin's profile"
    );
    change_password_as_user(&user, &admin, &strong_password("admin2"))
        .expect("IAM still holds the admin's password");
    assert!(!operator.logs().contains(&tenant_password));
}

#[test]
fn a_case_variant_of_a_claimed_user_is_the_same_user() {
    let owner = TestNamespace::new("trust-case-owner");
    let other = TestNamespace::new("trust-case-other");
    let tenant = Tenant::new(&other.name);
    let operator = Operator::start(&owner.name, &["--namespace", &other.name]);
    let mut users = TestUsers::default();
    let user = users.create("trust-case");
    let owner_password = strong_password("owner");
    env().apply_ok(&secret(&owner.name, "lp", &[("password", &owner_password)]));
    env().apply_ok(&login_profile(
        &owner.name,
        "lp",
        json!({"userName": user, "passwordSecretRef": {"name": "lp"}}),
    ));
    wait_ready_reason(&owner.name, "lp", "True", "Created", CONVERGE);

    // IAM does not tell `user` from its upper-case spelling: one user, one owner.
    let variant = user.to_uppercase();
    let writes = (iam_writes(&user), iam_writes(&variant));
    let variant_password = strong_password("variant");
    tenant.apply_pair(&other.name, "lp", &variant, &variant_password);
    wait_ready_reason(&other.name, "lp", "False", "UserClaimed", CONVERGE);
    holds_for(Duration::from_secs(3), || {
        assert_eq!((iam_writes(&user), iam_writes(&variant)), writes);
    });
    tenant_deletes(&tenant, &other.name, "lp");
    assert_eq!((iam_writes(&user), iam_writes(&variant)), writes);
    change_password_as_user(&user, &owner_password, &strong_password("owner2"))
        .expect("IAM still holds the owner's password");
    let logs = operator.logs();
    assert!(!logs.contains(&variant_password) && !logs.contains(&owner_password));
}
