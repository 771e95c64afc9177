//! Tenancy (docs/tenancy.md), against the real API server and the emulator's
//! several AWS accounts: each tenant's login profiles land only in the
//! account its IAMAccount admits it to, read back with that account's own
//! credentials; every refusal names its rule and costs no login-profile
//! call; one LoginProfile owns one IAM user; roles are assumed once and
//! again only when the IAMAccount changes; bad IAMAccounts are explained.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

/// Every operator verifies every IAMAccount in the cluster (it assumes each
/// role once), so the emulator's AssumeRole counts belong to one operator
/// only while no other test's operator runs: these tests take turns.
static ONE_OPERATOR_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_OPERATOR_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An AWS account of the emulator with a role the operator assumes.
struct Account {
    id: String,
}

impl Account {
    /// A new account holding role `role` (trust policy with `external_id`
    /// as its sts:ExternalId condition, if given).
    fn new(role: &str, external_id: Option<&str>) -> Self {
        let account = Self {
            id: unique_account_id(),
        };
        account.add_role(role, external_id);
        account
    }

    fn add_role(&self, role: &str, external_id: Option<&str>) {
        let mut statement = json!({
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "sts:AssumeRole",
        });
        if let Some(id) = external_id {
            statement["Condition"] = json!({"StringEquals": {"sts:ExternalId": id}});
        }
        let trust = json!({"Version": "2012-10-17", "Statement": [statement]}).to_string();
        self.aws_ok(&[
            "iam",
            "create-role",
            "--role-name",
            role,
            "--assume-role-policy-document",
            &trust,
        ]);
        // The permissions docs/tenancy.md gives the role: iam-policy.json.
        self.aws_ok(&[
            "iam",
            "put-role-policy",
            "--role-name",
            role,
            "--policy-name",
            "loginprofile-operator",
            "--policy-document",
            &shipped_policy("iam-policy.json", None),
        ]);
    }

    fn role_arn(&self, role: &str) -> String {
        format!("arn:aws:iam::{}:role/{role}", self.id)
    }

    fn aws(&self, args: &[&str]) -> Result<Value, String> {
        env().aws_in(&self.id, args)
    }

    fn aws_ok(&self, args: &[&str]) -> Value {
        self.aws(args)
            .unwrap_or_else(|e| panic!("aws {args:?} in {}: {e}", self.id))
    }

    fn create_user(&self, name: &str, tag: Option<(&str, &str)>) {
        self.aws_ok(&["iam", "create-user", "--user-name", name]);
        if let Some((key, value)) = tag {
            self.aws_ok(&[
                "iam",
                "tag-user",
                "--user-name",
                name,
                "--tags",
                &format!("Key={key},Value={value}"),
            ]);
        }
    }

    /// The user's login profile in this account, read with its credentials.
    fn login_profile(&self, user: &str) -> Result<Value, String> {
        self.aws(&["iam", "get-login-profile", "--user-name", user])
    }
}

/// No login-profile call at all (the emulator's count) for `user`.
fn no_login_profile_calls(user: &str) {
    let counted = env().iam_calls(user);
    for action in [
        "GetLoginProfile",
        "CreateLoginProfile",
        "UpdateLoginProfile",
        "DeleteLoginProfile",
    ] {
        assert_eq!(
            counted.get(action).copied().unwrap_or(0),
            0,
            "{action} for {user}: {counted:?}"
        );
    }
}

#[test]
fn each_tenant_acts_only_in_the_account_that_admits_it() {
    let _turn = take_turn();
    let role = "loginprofile-operator";
    let (a, b) = (
        Account::new(role, None),
        Account::new(role, Some("b-external")),
    );
    let suffix = unique("t").to_lowercase();
    let (account_a, account_b) = (format!("tenant-a{suffix}"), format!("tenant-b{suffix}"));
    let _accounts = TestAccounts(vec![account_a.clone(), account_b.clone()]);
    let ns_a = TestNamespace::with_account("ten-a", None);
    let ns_b = TestNamespace::with_account("ten-b", Some(&account_b));
    let ns_c = TestNamespace::with_account("ten-c", None);
    env().apply_ok(&iam_account(
        &account_a,
        json!({"roleArn": a.role_arn(role), "namespaces": [ns_a.name], "userNames": ["ta-*"]}),
    ));
    env().apply_ok(&iam_account(
        &account_b,
        json!({
            "roleArn": b.role_arn(role), "externalId": "b-external",
            "namespaceSelector": {"matchLabels": {ACCOUNT_LABEL: account_b}},
            "userNames": ["tb-*"],
            "requiredUserTag": {"key": "console", "value": "allowed"},
        }),
    ));
    // A key of its own: the AssumeRole calls counted below are this
    // operator's, whatever other tests' operators verify meanwhile (every
    // operator keeps every IAMAccount's status).
    let key = OperatorKey::new();
    let operator = Operator::start_with_env(
        &ns_a.name,
        &["--namespace", &ns_b.name, "--namespace", &ns_c.name],
        &key.env(),
    );
    let ready_a = wait_account_ready(&account_a, "True", "Verified");
    assert_eq!(ready_a["status"]["accountId"], a.id.as_str());
    let ready_b = wait_account_ready(&account_b, "True", "Verified");
    assert_eq!(ready_b["status"]["accountId"], b.id.as_str());

    let u = unique("").replace('-', "");
    let user = |prefix: &str| format!("{prefix}{u}");
    let (ta, tb, tb_untagged, tb_relabel, outsider) = (
        user("ta-x"),
        user("tb-x"),
        user("tb-untagged"),
        user("tb-relabel"),
        user("admin"),
    );
    a.create_user(&ta, None);
    b.create_user(&tb, Some(("console", "allowed")));
    b.create_user(&tb_untagged, None);
    b.create_user(&tb_relabel, Some(("console", "allowed")));
    b.create_user(&outsider, Some(("console", "allowed")));
    let (a, b) = (&a, &b);
    let (account_a, account_b) = (account_a.as_str(), account_b.as_str());
    let (ns_a, ns_b, ns_c) = (&ns_a, &ns_b, &ns_c);
    let lp = |ns: &TestNamespace, name: &str, user: &str, account: &str| {
        env().apply_ok(&secret(
            &ns.name,
            name,
            &[("password", &strong_password(name))],
        ));
        env().apply_ok(&login_profile(
            &ns.name,
            name,
            json!({"userName": user, "accountRef": {"name": account},
                   "passwordSecretRef": {"name": name}}),
        ));
    };

    // Each tenant's profile lands in its own account, and only there.
    lp(ns_a, "mine", &ta, account_a);
    lp(ns_b, "mine", &tb, account_b);
    let in_a = wait_ready_reason(&ns_a.name, "mine", "True", "Created", CONVERGE);
    assert_eq!(in_a["status"]["accountId"], a.id.as_str());
    wait_ready_reason(&ns_b.name, "mine", "True", "Created", CONVERGE);
    // Each IAMAccount counts the LoginProfiles naming it as they come, not
    // at its next look a minute after it was verified.
    for account in [account_a, account_b] {
        wait_until(
            &format!("IAMAccount {account} to count its LoginProfile"),
            CONVERGE,
            || get_account(account)["status"]["loginProfiles"] == 1,
        );
    }
    a.login_profile(&ta)
        .expect("tenant A's profile is in account A");
    b.login_profile(&tb)
        .expect("tenant B's profile is in account B");
    // Users of the same names in the other account, and in the operator's
    // own, have no profile (their reads answer NoSuchEntity for the profile,
    // not for a user that does not exist).
    b.create_user(&ta, None);
    a.create_user(&tb, None);
    for name in [&ta, &tb] {
        env().aws_ok(&["iam", "create-user", "--user-name", name]);
    }
    assert!(no_such_profile(b.login_profile(&ta)) && no_such_profile(a.login_profile(&tb)));
    assert!(
        no_such_profile(iam_profile(&ta)) && no_such_profile(iam_profile(&tb)),
        "nothing in the operator's own account"
    );
    for name in [&ta, &tb] {
        env().aws_ok(&["iam", "delete-user", "--user-name", name]);
    }

    // Refusals: each names its rule; none costs a login-profile call.
    lp(ns_a, "steal", &tb, account_b);
    let refused = wait_ready_reason(&ns_a.name, "steal", "False", "NotAdmitted", CONVERGE);
    let message = ready(&refused).unwrap().2;
    assert!(
        message.contains(&format!("does not admit namespace {:?}", ns_a.name)),
        "{message}"
    );
    assert!(condition_true(&refused, "Stalled"));
    lp(ns_b, "outside", &outsider, account_b);
    let refused = wait_ready_reason(&ns_b.name, "outside", "False", "NotAdmitted", CONVERGE);
    assert!(ready(&refused).unwrap().2.contains("spec.userNames"));
    no_login_profile_calls(&outsider);
    lp(ns_b, "untagged", &tb_untagged, account_b);
    let refused = wait_ready_reason(&ns_b.name, "untagged", "False", "NotAdmitted", CONVERGE);
    assert!(ready(&refused).unwrap().2.contains("console=allowed"));
    no_login_profile_calls(&tb_untagged);
    assert!(no_such_profile(b.login_profile(&tb_untagged)));

    // Labelling the namespace admits it, with no change to the LoginProfile.
    lp(ns_c, "relabel", &tb_relabel, account_b);
    let waiting = wait_ready_reason(&ns_c.name, "relabel", "False", "NotAdmitted", CONVERGE);
    no_login_profile_calls(&tb_relabel);
    env().kubectl_ok(&[
        "label",
        "namespace",
        &ns_c.name,
        &format!("{ACCOUNT_LABEL}={account_b}"),
    ]);
    let admitted = wait_ready_reason(&ns_c.name, "relabel", "True", "Created", CONVERGE);
    assert_eq!(
        admitted["metadata"]["generation"], waiting["metadata"]["generation"],
        "admitted without touching the LoginProfile"
    );
    b.login_profile(&tb_relabel)
        .expect("in account B once admitted");

    // Unlabelled again, it is no longer admitted; deleting it then leaves
    // its login profile alone and makes no AWS call for its user.
    env().kubectl_ok(&[
        "label",
        "namespace",
        &ns_c.name,
        &format!("{ACCOUNT_LABEL}-"),
    ]);
    wait_ready_reason(&ns_c.name, "relabel", "False", "NotAdmitted", CONVERGE);
    let before = env().iam_calls(&tb_relabel);
    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "relabel",
        "-n",
        &ns_c.name,
        "--wait=false",
    ]);
    wait_for(
        "the LoginProfile nobody admits to be gone",
        CONVERGE,
        || {
            let found = env().kubectl(&["get", "loginprofile", "relabel", "-n", &ns_c.name]);
            String::from_utf8_lossy(&found.stderr)
                .contains("NotFound")
                .then_some(())
        },
    );
    assert_eq!(
        env().iam_calls(&tb_relabel),
        before,
        "no AWS call for the user of a LoginProfile nobody admits, deleted"
    );
    b.login_profile(&tb_relabel)
        .expect("its login profile left alone in account B");

    // Credentials are cached: more reconciles (rotations) assume no role.
    let role_b = format!("{}@{}", b.role_arn("loginprofile-operator"), key.id);
    let assumed = calls(&role_b, "AssumeRole");
    assert!(assumed >= 1, "account B is reached through its role");
    for round in 0..3 {
        env().apply_ok(&secret(
            &ns_b.name,
            "mine",
            &[("password", &strong_password(&format!("rotate{round}")))],
        ));
        wait_for("the rotation to be applied", CONVERGE, || {
            let lp = get_lp(&ns_b.name, "mine");
            (ready(&lp)?.1 == "Updated" && calls(&tb, "UpdateLoginProfile") == round + 1)
                .then_some(())
        });
    }
    assert_eq!(
        calls(&role_b, "AssumeRole"),
        assumed,
        "3 rotations assumed the role again"
    );
    // The tag check is made before the first write and remembered: the
    // rotations read the user's tags no more.
    assert_eq!(calls(&tb, "ListUserTags"), 1, "the tag check is remembered");

    // A new role (new generation) is picked up: the next write assumes it.
    a.add_role("loginprofile-operator-2", None);
    env().kubectl_ok(&[
        "patch",
        "iamaccount",
        account_a,
        "--type=merge",
        "-p",
        &json!({"spec": {"roleArn": a.role_arn("loginprofile-operator-2")}}).to_string(),
    ]);
    let through_new_role = strong_password("new-role");
    env().apply_ok(&secret(
        &ns_a.name,
        "mine",
        &[("password", &through_new_role)],
    ));
    wait_for("the rotation through the new role", CONVERGE, || {
        (calls(&ta, "UpdateLoginProfile") == 1
            && calls(&a.role_arn("loginprofile-operator-2"), "AssumeRole") >= 1)
            .then_some(())
    });
    wait_ready_reason(&ns_a.name, "mine", "True", "Updated", CONVERGE);

    // The password never shows in the operator's log.
    assert!(!operator.logs().contains(&through_new_role));
}

/// The operator's count of reconciles once it has not moved for 3 s.
fn reconciles_at_rest(operator: &Operator) -> f64 {
    wait_for("the operator to come to rest", CONVERGE, || {
        let before = operator.metric_sum("loginprofile_reconciles_total");
        std::thread::sleep(Duration::from_secs(3));
        (operator.metric_sum("loginprofile_reconciles_total") == before).then_some(before)
    })
}

/// Deleting the owner wakes the next claimant in line only, not every
/// LoginProfile waiting for the same user (docs/reliability.md): with
/// sixteen waiting, the deletion costs the owner's reconciles and the next
/// one's, and the others stay as they were.
#[test]
fn deleting_the_owner_wakes_only_the_next_in_line() {
    let _turn = take_turn();
    let owner_ns = TestNamespace::new("line-owner");
    let waiting_ns = TestNamespace::new("line-waiting");
    // No resync within the test: every reconcile counted is one a change woke.
    let operator = Operator::start(
        &owner_ns.name,
        &["--namespace", &waiting_ns.name, "--resync-period", "1h"],
    );
    let mut users = TestUsers::default();
    let user = users.create("line");
    for ns in [&owner_ns, &waiting_ns] {
        let password = strong_password(&ns.name);
        env().apply_ok(&secret(&ns.name, "pw", &[("password", &password)]));
    }
    let claim = |ns: &TestNamespace, name: &str| {
        login_profile(
            &ns.name,
            name,
            json!({"userName": user, "passwordSecretRef": {"name": "pw"}}),
        )
    };
    env().apply_ok(&claim(&owner_ns, "owner"));
    wait_ready_reason(&owner_ns.name, "owner", "True", "Created", CONVERGE);
    const WAITING: usize = 16;
    for i in 0..WAITING {
        env().apply_ok(&claim(&waiting_ns, &format!("lp-{i}")));
    }
    let with_reason = |reason: &str| {
        list_lps(&waiting_ns.name)
            .into_iter()
            .filter(|lp| ready(lp).is_some_and(|(_, r, _)| r == reason))
            .count()
    };
    wait_until("every claimant to wait", CONVERGE, || {
        with_reason("UserClaimed") == WAITING
    });
    let before = reconciles_at_rest(&operator);

    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "owner",
        "-n",
        &owner_ns.name,
        "--timeout=30s",
    ]);
    wait_until("the next in line to take the user over", CONVERGE, || {
        with_reason("Created") == 1
    });
    let woken = reconciles_at_rest(&operator) - before;
    assert!(
        woken < 8.0,
        "{woken} reconciles after the deletion: more than the owner's and the next one's"
    );
    assert_eq!(
        with_reason("UserClaimed"),
        WAITING - 1,
        "the others still wait"
    );
}

#[test]
fn one_login_profile_owns_one_iam_user() {
    let _turn = take_turn();
    let owner_ns = TestNamespace::new("claim-owner");
    let other_ns = TestNamespace::new("claim-other");
    let operator = Operator::start(&owner_ns.name, &["--namespace", &other_ns.name]);
    let mut users = TestUsers::default();
    let user = users.create("claimed");
    // Every password sent, to look for in the logs at the end.
    let sent = std::cell::RefCell::new(Vec::new());
    let apply = |ns: &TestNamespace, tag: &str| {
        let password = strong_password(tag);
        env().apply_ok(&secret(&ns.name, "pw", &[("password", &password)]));
        sent.borrow_mut().push(password);
        env().apply_ok(&login_profile(
            &ns.name,
            "lp",
            json!({"userName": user, "passwordSecretRef": {"name": "pw"}}),
        ));
    };
    apply(&owner_ns, "owner");
    wait_ready_reason(&owner_ns.name, "lp", "True", "Created", CONVERGE);
    apply(&other_ns, "loser");
    let loser = wait_ready_reason(&other_ns.name, "lp", "False", "UserClaimed", CONVERGE);
    let message = ready(&loser).unwrap().2;
    assert!(
        !message.contains(&owner_ns.name),
        "the refusal does not name the other tenant: {message}"
    );
    let writes = iam_writes(&user);

    // Deleting the loser leaves the owner's profile alone.
    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "lp",
        "-n",
        &other_ns.name,
        "--timeout=30s",
    ]);
    iam_profile(&user).expect("the owner's profile stays");
    assert_eq!(iam_writes(&user), writes, "no IAM write for the loser");

    // With the owner gone (its profile deleted), the next claimant takes over.
    apply(&other_ns, "second");
    wait_ready_reason(&other_ns.name, "lp", "False", "UserClaimed", CONVERGE);
    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "lp",
        "-n",
        &owner_ns.name,
        "--timeout=30s",
    ]);
    wait_ready_reason(&other_ns.name, "lp", "True", "Created", CONVERGE);
    iam_profile(&user).expect("the new owner's profile");
    let logs = operator.logs();
    assert!(
        sent.borrow()
            .iter()
            .all(|password| !logs.contains(password))
    );
}

#[test]
fn after_an_owner_that_retained_the_next_claimant_follows_its_own_adoption_policy() {
    let _turn = take_turn();
    let owner_ns = TestNamespace::new("claim-retain");
    let next_ns = TestNamespace::new("claim-next");
    let _operator = Operator::start(&owner_ns.name, &["--namespace", &next_ns.name]);
    let mut users = TestUsers::default();
    let user = users.create("retained");
    let owner_password = strong_password("retainer");
    env().apply_ok(&secret(
        &owner_ns.name,
        "pw",
        &[("password", &owner_password)],
    ));
    env().apply_ok(&login_profile(
        &owner_ns.name,
        "lp",
        json!({"userName": user, "passwordSecretRef": {"name": "pw"},
               "deletionPolicy": "Retain"}),
    ));
    wait_ready_reason(&owner_ns.name, "lp", "True", "Created", CONVERGE);
    let next_password = strong_password("next");
    env().apply_ok(&secret(
        &next_ns.name,
        "pw",
        &[("password", &next_password)],
    ));
    let next = |adoption: &str| {
        login_profile(
            &next_ns.name,
            "lp",
            json!({"userName": user, "passwordSecretRef": {"name": "pw"},
                   "adoptionPolicy": adoption}),
        )
    };
    env().apply_ok(&next("Fail"));
    wait_ready_reason(&next_ns.name, "lp", "False", "UserClaimed", CONVERGE);

    // The owner goes and keeps the profile: the next claimant, under Fail,
    // takes nothing; the profile keeps the owner's password.
    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "lp",
        "-n",
        &owner_ns.name,
        "--timeout=30s",
    ]);
    wait_ready_reason(&next_ns.name, "lp", "False", "LoginProfileExists", CONVERGE);
    let accepted = |action: &str| env().accepted(&user).get(action).copied().unwrap_or(0);
    assert_eq!(accepted("CreateLoginProfile"), 1, "only the owner's create");
    assert_eq!(accepted("UpdateLoginProfile"), 0, "no password taken over");
    change_password_as_user(&user, &owner_password, &strong_password("changed"))
        .expect("IAM still holds the retaining owner's password");

    // Under Adopt (this IAMAccount allows it), it takes the profile over.
    env().apply_ok(&next("Adopt"));
    wait_ready_reason(&next_ns.name, "lp", "True", "Adopted", CONVERGE);
    assert_eq!(accepted("CreateLoginProfile"), 1);
    assert_eq!(
        accepted("UpdateLoginProfile"),
        1,
        "the adoption sent its password"
    );
    change_password_as_user(&user, &next_password, &strong_password("after"))
        .expect("IAM holds the new owner's password");
}

#[test]
fn bad_iam_accounts_are_refused_or_explained() {
    let _turn = take_turn();
    let suffix = unique("bad").to_lowercase();
    let (invalid, unassumable, wrong_id, in_use) = (
        format!("invalid{suffix}"),
        format!("unassumable{suffix}"),
        format!("wrong-id{suffix}"),
        format!("in-use{suffix}"),
    );
    let _accounts = TestAccounts(vec![unassumable.clone(), wrong_id.clone(), in_use.clone()]);

    // An ARN that is not a role's is refused by the API server (CEL).
    let refused = env().apply(&iam_account(
        &invalid,
        json!({"roleArn": "arn:aws:iam::12345:user/bob", "userNames": ["*"]}),
    ));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("roleArn must be an IAM role ARN"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let ns = TestNamespace::with_account("bad-acct", None);
    let operator = Operator::start(&ns.name, &[]);
    let account = Account::new("exists", None);
    env().apply_ok(&iam_account(
        &unassumable,
        json!({"roleArn": account.role_arn("does-not-exist"),
               "namespaces": [ns.name], "userNames": ["*"]}),
    ));
    let failing = wait_account_ready(&unassumable, "False", "AssumeRoleFailed");
    assert!(
        ready(&failing).unwrap().2.contains("trust policy"),
        "{failing}"
    );
    // A role whose trust policy asks for an ExternalId, named with another.
    account.add_role("guarded", Some("the-right-id"));
    env().apply_ok(&iam_account(
        &wrong_id,
        json!({"roleArn": account.role_arn("guarded"), "externalId": "a-wrong-id",
               "namespaces": [ns.name], "userNames": ["*"]}),
    ));
    let refused = wait_account_ready(&wrong_id, "False", "AssumeRoleFailed");
    assert!(
        ready(&refused).unwrap().2.contains("externalId"),
        "the message names what to check: {refused}"
    );
    let mut users = TestUsers::default();
    let user = users.reserve("bad-acct");
    env().apply_ok(&secret(
        &ns.name,
        "pw",
        &[("password", &strong_password("bad"))],
    ));
    env().apply_ok(&login_profile(
        &ns.name,
        "waits",
        json!({"userName": user, "accountRef": {"name": unassumable},
               "passwordSecretRef": {"name": "pw"}}),
    ));
    let waits = wait_ready_reason(&ns.name, "waits", "False", "AccountNotReady", CONVERGE);
    assert!(ready(&waits).unwrap().2.contains(&unassumable));
    no_login_profile_calls(&user);

    // A name no IAMAccount has.
    env().apply_ok(&login_profile(
        &ns.name,
        "nowhere",
        json!({"userName": user, "accountRef": {"name": format!("missing{suffix}")},
               "passwordSecretRef": {"name": "pw"}}),
    ));
    let nowhere = wait_ready_reason(&ns.name, "nowhere", "False", "NotAdmitted", CONVERGE);
    assert!(ready(&nowhere).unwrap().2.contains("does not exist"));

    // accountRef cannot be changed (CEL).
    let moved = env().kubectl(&[
        "patch",
        "loginprofile",
        "nowhere",
        "-n",
        &ns.name,
        "--type=merge",
        "-p",
        r#"{"spec":{"accountRef":{"name":"default"}}}"#,
    ]);
    assert!(String::from_utf8_lossy(&moved.stderr).contains("accountRef is immutable"));

    // An IAMAccount in use is kept until its LoginProfiles go.
    env().apply_ok(&iam_account(
        &in_use,
        json!({"namespaces": [ns.name], "userNames": ["*"]}),
    ));
    wait_account_ready(&in_use, "True", "Verified");
    let user2 = users.create("in-use");
    env().apply_ok(&login_profile(
        &ns.name,
        "user",
        json!({"userName": user2, "accountRef": {"name": in_use},
               "passwordSecretRef": {"name": "pw"}}),
    ));
    wait_ready_reason(&ns.name, "user", "True", "Created", CONVERGE);
    env().kubectl_ok(&["delete", "iamaccount", &in_use, "--wait=false"]);
    holds_for(Duration::from_secs(3), || {
        assert!(
            env()
                .kubectl(&["get", "iamaccount", &in_use])
                .status
                .success(),
            "kept while in use"
        );
    });
    // ... and admits no new LoginProfile meanwhile.
    let late_user = users.reserve("late");
    env().apply_ok(&login_profile(
        &ns.name,
        "late",
        json!({"userName": late_user, "accountRef": {"name": in_use},
               "passwordSecretRef": {"name": "pw"}}),
    ));
    let late = wait_ready_reason(&ns.name, "late", "False", "NotAdmitted", CONVERGE);
    assert!(ready(&late).unwrap().2.contains("being deleted"), "{late}");
    no_login_profile_calls(&late_user);
    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "late",
        "-n",
        &ns.name,
        "--timeout=30s",
    ]);
    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "user",
        "-n",
        &ns.name,
        "--timeout=30s",
    ]);
    assert!(
        no_such_profile(iam_profile(&user2)),
        "its profile was deleted through it"
    );
    wait_until("the IAMAccount to go", CONVERGE, || {
        !env()
            .kubectl(&["get", "iamaccount", &in_use])
            .status
            .success()
    });
    drop(operator);
}

/// A namespace and its LoginProfile applied together (one `kubectl apply`,
/// as GitOps tools do) converge in seconds: the namespace's first sighting
/// re-checks the LoginProfiles in it, which may have been refused before the
/// cache had it, instead of leaving them to the next resync (an hour here).
#[test]
fn a_namespace_applied_with_its_login_profile_is_admitted_at_once() {
    let _turn = take_turn();
    let home = TestNamespace::new("ns-home");
    let fresh = unique("ns-fresh");
    let operator = Operator::start_custom(
        &fresh,
        &home.name,
        &["--resync-period", "1h"],
        "info,loginprofile_operator=debug",
        None,
    );
    let mut users = TestUsers::default();
    let user = users.create("ns-fresh");
    let items = [
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": fresh, "labels": {ACCOUNT_LABEL: "default"}}}),
        serde_json::from_str::<Value>(&secret(
            &fresh,
            "pw",
            &[("password", &strong_password("fresh"))],
        ))
        .unwrap(),
        serde_json::from_str::<Value>(&login_profile(
            &fresh,
            "bob",
            json!({"userName": user, "passwordSecretRef": {"name": "pw"}}),
        ))
        .unwrap(),
    ];
    let _cleanup = TestNamespace {
        name: fresh.clone(),
    };
    env().apply_ok(&json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string());
    wait_ready_reason(&fresh, "bob", "True", "Created", CONVERGE);
    drop(operator);
}
