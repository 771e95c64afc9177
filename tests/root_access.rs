//! Root console access of member accounts. First the emulator's
//! centralized root access (hack/root_access.py), which moto lacks: AWS
//! Organizations' root credentials management, STS AssumeRoot with its
//! rules, and root's login profile in a root session, each as AWS documents
//! it and read back with the AWS CLI; every one of those tests fails against
//! plain moto (`LPO_MOTO_UNPATCHED=1`). Then RootLoginProfiles, reconciled by
//! the real operator against it and checked the same way: with an audit
//! session of the AWS CLI and the emulator's record of each root call and
//! its task policy.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

const TASKS: &str = "arn=arn:aws:iam::aws:policy/root-task/";

impl Organization {
    /// `aws sts assume-root` from `caller` for `target` with a root-task
    /// policy: the session's credentials, or STS's refusal.
    fn assume_root(&self, caller: &str, target: &str, task: &str) -> Result<Value, String> {
        env()
            .aws_in(
                caller,
                &[
                    "sts",
                    "assume-root",
                    "--target-principal",
                    target,
                    "--task-policy-arn",
                    &format!("{TASKS}{task}"),
                ],
            )
            .map(|answer| answer["Credentials"].clone())
    }

    /// Registers `account` as a delegated administrator for IAM.
    fn delegate_iam_to(&self, account: &str) {
        env()
            .aws_in(
                &self.management,
                &[
                    "organizations",
                    "register-delegated-administrator",
                    "--account-id",
                    account,
                    "--service-principal",
                    "iam.amazonaws.com",
                ],
            )
            .unwrap();
    }

    fn root_session(&self, member: &str, task: &str) -> Value {
        self.assume_root(&self.management, member, task)
            .unwrap_or_else(|e| panic!("AssumeRoot {task} for {member}: {e}"))
    }
}

fn refused_with(result: Result<Value, String>, code: &str) {
    match result {
        Ok(answer) => panic!("accepted, {code} expected: {answer}"),
        Err(error) => assert!(error.contains(code), "{code} expected: {error}"),
    }
}

#[test]
fn root_credentials_management_is_the_management_accounts_to_enable() {
    let org = Organization::new(false);
    let member = &org.members[0];
    refused_with(
        env().aws_in(
            member,
            &["iam", "enable-organizations-root-credentials-management"],
        ),
        "CallerIsNotManagementAccountException",
    );
    let enabled = env()
        .aws_in(
            &org.management,
            &["iam", "enable-organizations-root-credentials-management"],
        )
        .unwrap();
    assert_eq!(
        enabled["EnabledFeatures"],
        json!(["RootCredentialsManagement"])
    );
    // A delegated administrator for IAM may read the features, not change them.
    org.delegate_iam_to(member);
    let listed = env()
        .aws_in(member, &["iam", "list-organizations-features"])
        .unwrap();
    assert_eq!(listed["OrganizationId"], enabled["OrganizationId"]);
    refused_with(
        env().aws_in(
            member,
            &["iam", "disable-organizations-root-credentials-management"],
        ),
        "CallerIsNotManagementAccountException",
    );

    // Without trusted access for IAM, nothing can be enabled.
    let bare = unique_account_id();
    env()
        .aws_in(
            &bare,
            &[
                "organizations",
                "create-organization",
                "--feature-set",
                "ALL",
            ],
        )
        .unwrap();
    refused_with(
        env().aws_in(
            &bare,
            &["iam", "enable-organizations-root-credentials-management"],
        ),
        "ServiceAccessNotEnabledException",
    );
    refused_with(
        env().aws_in(
            &unique_account_id(),
            &["iam", "enable-organizations-root-credentials-management"],
        ),
        "OrganizationNotFoundException",
    );
}

#[test]
fn assume_root_follows_organizations_rules() {
    let org = Organization::new(false);
    let [first, second] = &org.members;
    let audit = "IAMAuditRootUserCredentials";
    refused_with(
        org.assume_root(&org.management, first, audit),
        "AccessDenied",
    );
    env()
        .aws_in(
            &org.management,
            &["iam", "enable-organizations-root-credentials-management"],
        )
        .unwrap();
    let session = org.assume_root(&org.management, first, audit).unwrap();
    assert!(session["AccessKeyId"].is_string() && session["Expiration"].is_string());
    // Not the management account itself, not an account outside, not from
    // a member that is no delegated administrator.
    refused_with(
        org.assume_root(&org.management, &org.management, audit),
        "AccessDenied",
    );
    refused_with(
        org.assume_root(&org.management, &unique_account_id(), audit),
        "AccessDenied",
    );
    refused_with(org.assume_root(second, first, audit), "AccessDenied");
    // Only AWS's root-task policies, for at most 900 seconds; the S3 and SQS
    // ones need the other feature (root sessions).
    refused_with(
        org.assume_root(&org.management, first, "AdministratorAccess"),
        "AccessDenied",
    );
    refused_with(
        org.assume_root(&org.management, first, "S3UnlockBucketPolicy"),
        "AccessDenied",
    );
    refused_with(
        env().aws_in(
            &org.management,
            &[
                "sts",
                "assume-root",
                "--target-principal",
                first,
                "--task-policy-arn",
                &format!("{TASKS}{audit}"),
                "--duration-seconds",
                "901",
            ],
        ),
        "ValidationError",
    );
    org.delegate_iam_to(second);
    org.assume_root(second, first, audit)
        .expect("a delegated administrator for IAM may assume root");
}

#[test]
fn a_root_session_acts_on_roots_login_profile_within_its_task_policy() {
    let org = Organization::new(true);
    let member = &org.members[0];
    // Someone recovered root's password in the console.
    env().root_state(member, json!({"login_profile": true, "mfa_devices": 1}));

    let audit = org.root_session(member, "IAMAuditRootUserCredentials");
    let profile = env().aws_as(&audit, &["iam", "get-login-profile"]).unwrap();
    assert!(
        profile["LoginProfile"]["CreateDate"].is_string(),
        "{profile}"
    );
    let devices = env().aws_as(&audit, &["iam", "list-mfa-devices"]).unwrap();
    assert_eq!(devices["MFADevices"].as_array().unwrap().len(), 1);
    refused_with(
        env().aws_as(&audit, &["iam", "delete-login-profile"]),
        "AccessDenied",
    );
    refused_with(env().aws_as(&audit, &["iam", "list-users"]), "AccessDenied");

    let delete = org.root_session(member, "IAMDeleteRootUserCredentials");
    env()
        .aws_as(&delete, &["iam", "delete-login-profile"])
        .unwrap();
    refused_with(
        env().aws_as(&delete, &["iam", "get-login-profile"]),
        "NoSuchEntity",
    );
    assert_eq!(
        env().root_state(member, json!({}))["login_profile"],
        Value::Null
    );

    let create = org.root_session(member, "IAMCreateRootUserPassword");
    refused_with(
        env().aws_as(
            &create,
            &[
                "iam",
                "create-login-profile",
                "--password",
                "Not-Allowed-123!",
            ],
        ),
        "InvalidInput",
    );
    let created = env()
        .aws_as(&create, &["iam", "create-login-profile"])
        .unwrap();
    assert!(
        created["LoginProfile"]["CreateDate"].is_string(),
        "{created}"
    );
    refused_with(
        env().aws_as(&create, &["iam", "create-login-profile"]),
        "EntityAlreadyExists",
    );
    refused_with(
        env().aws_as(&create, &["iam", "delete-login-profile"]),
        "AccessDenied",
    );
    // The other member's root was never touched.
    assert_eq!(
        env().root_state(&org.members[1], json!({}))["login_profile"],
        Value::Null
    );

    // Each call is on record with the task policy of its session.
    let calls: Vec<(String, String)> = env()
        .root_calls()
        .iter()
        .filter(|call| call["account"] == member.as_str())
        .map(|call| {
            (
                call["action"].as_str().unwrap().to_string(),
                call["task"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (action, task) in [
        ("DeleteLoginProfile", "IAMDeleteRootUserCredentials"),
        ("CreateLoginProfile", "IAMCreateRootUserPassword"),
        ("ListMFADevices", "IAMAuditRootUserCredentials"),
    ] {
        assert!(
            calls.contains(&(action.to_string(), task.to_string())),
            "{action} in {task}: {calls:?}"
        );
    }
}

#[test]
fn a_root_session_expires() {
    let org = Organization::new(true);
    let member = &org.members[0];
    let session = env()
        .aws_in(
            &org.management,
            &[
                "sts",
                "assume-root",
                "--target-principal",
                member,
                "--task-policy-arn",
                &format!("{TASKS}IAMAuditRootUserCredentials"),
                "--duration-seconds",
                "1",
            ],
        )
        .unwrap()["Credentials"]
        .clone();
    wait_until("the one-second root session to expire", CONVERGE, || {
        env()
            .aws_as(&session, &["iam", "list-mfa-devices"])
            .is_err_and(|e| e.contains("ExpiredToken"))
    });
}

/// Every root-session call the emulator saw in `account`: (action, task policy).
fn root_calls_in(account: &str) -> Vec<(String, String)> {
    env()
        .root_calls()
        .iter()
        .filter(|call| call["account"] == account)
        .map(|call| {
            (
                call["action"].as_str().unwrap().to_string(),
                call["task"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn count(calls: &[(String, String)], action: &str) -> usize {
    calls.iter().filter(|(a, _)| a == action).count()
}

/// An operator managing only the RootLoginProfiles of one test (its label),
/// looking again every 3 s, and what the test made, removed when dropped.
struct RootFixture {
    label: String,
    _ns: TestNamespace,
    operator: Operator,
    accounts: TestAccounts,
    roots: Vec<String>,
}

impl RootFixture {
    fn new(prefix: &str) -> Self {
        let ns = TestNamespace::new(prefix);
        let label = unique(prefix);
        let selector = format!("lpo-test={label}");
        let operator = Operator::start(
            &ns.name,
            &[
                "--manage-root-login-profiles",
                "--root-login-profile-selector",
                &selector,
                "--resync-period",
                "3s",
                "--min-backoff",
                "1s",
            ],
        );
        Self {
            label,
            _ns: ns,
            operator,
            accounts: TestAccounts(Vec::new()),
            roots: Vec::new(),
        }
    }

    /// An IAMAccount acting in `account` (its OrganizationAccountAccessRole),
    /// verified.
    fn iam_account(&mut self, account: &str, allow_root_access: bool) -> String {
        let name = self.iam_account_unverified(account, allow_root_access);
        wait_account_ready(&name, "True", "Verified");
        name
    }

    /// The same, not waiting for the operator to verify it.
    fn iam_account_unverified(&mut self, account: &str, allow_root_access: bool) -> String {
        let name = unique("root-acct");
        env().apply_ok(&iam_account(
            &name,
            json!({
                "roleArn": format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole"),
                "allowRootAccess": allow_root_access,
            }),
        ));
        self.accounts.0.push(name.clone());
        name
    }

    /// Applies RootLoginProfile `name` (this test's label) and returns its name.
    fn apply(&mut self, name: &str, account: &str, iam_account: &str, state: &str) -> String {
        let name = unique(name);
        env().apply_ok(
            &json!({
                "apiVersion": "iam.loginprofile.dev/v1alpha1",
                "kind": "RootLoginProfile",
                "metadata": {"name": name, "labels": {"lpo-test": self.label}},
                "spec": {
                    "accountId": account,
                    "managementAccountRef": {"name": iam_account},
                    "state": state,
                },
            })
            .to_string(),
        );
        self.roots.push(name.clone());
        name
    }
}

impl Drop for RootFixture {
    fn drop(&mut self) {
        for name in &self.roots {
            let _ = env().kubectl(&["delete", "rootloginprofile", name, "--wait=false"]);
        }
    }
}

fn get_root(name: &str) -> Value {
    serde_json::from_str(&env().kubectl_ok(&["get", "rootloginprofile", name, "-o", "json"]))
        .unwrap()
}

/// Waits for Ready with `status` and `reason` for the current generation.
fn wait_root(name: &str, status: &str, reason: &str) -> Value {
    wait_roots(&[(name, status, reason)]).remove(0)
}

/// [`wait_root`] for several at once, each as first seen in its state: a
/// write's outcome lasts only until the next look (3 s), so waiting for one
/// and then the other could miss the second's.
fn wait_roots(wanted: &[(&str, &str, &str)]) -> Vec<Value> {
    let mut seen: Vec<Option<Value>> = vec![None; wanted.len()];
    let what: Vec<String> = wanted
        .iter()
        .map(|(name, status, reason)| format!("RootLoginProfile {name} Ready={status} {reason}"))
        .collect();
    wait_until(&what.join(", "), CONVERGE, || {
        for (slot, (name, status, reason)) in seen.iter_mut().zip(wanted) {
            if slot.is_some() {
                continue;
            }
            let root = get_root(name);
            if ready(&root).is_some_and(|(s, r, _)| s == *status && r == *reason)
                && root["status"]["observedGeneration"] == root["metadata"]["generation"]
            {
                *slot = Some(root);
            }
        }
        seen.iter().all(Option::is_some)
    });
    seen.into_iter().flatten().collect()
}

/// Root's login profile in `member` as an audit session of the AWS CLI
/// reads it: its CreateDate, or None.
fn audited_profile(org: &Organization, member: &str) -> Option<String> {
    let audit = org.root_session(member, "IAMAuditRootUserCredentials");
    match env().aws_as(&audit, &["iam", "get-login-profile"]) {
        Ok(profile) => Some(profile["LoginProfile"]["CreateDate"].as_str()?.to_string()),
        Err(error) => {
            assert!(error.contains("NoSuchEntity"), "{error}");
            None
        }
    }
}

/// Events about RootLoginProfile `name` with `reason` (cluster-scoped
/// objects' Events are in `kube-system`, out of tenants' reach).
fn root_events(name: &str, reason: &str) -> usize {
    events("kube-system", name)
        .iter()
        .filter(|event| event["reason"] == reason)
        .count()
}

#[test]
fn absent_and_recovery_enabled_are_kept_through_drift_each_write_in_its_own_session() {
    let org = Organization::new(true);
    let [absent, recovery] = &org.members;
    // Someone recovered root's password in the first account, which has an
    // MFA device and an access key; the second's root has no password.
    env().root_state(
        absent,
        json!({"login_profile": true, "mfa_devices": 1, "access_keys": 1}),
    );
    let mut fixture = RootFixture::new("root-keep");
    let management = fixture.iam_account(&org.management, true);
    let removed = fixture.apply("absent", absent, &management, "Absent");
    let enabled = fixture.apply("recovery", recovery, &management, "RecoveryEnabled");

    let [removed_now, enabled_now] = <[Value; 2]>::try_from(wait_roots(&[
        (&removed, "True", "Removed"),
        (&enabled, "True", "Created"),
    ]))
    .unwrap();
    let status = &removed_now["status"];
    assert_eq!(status["loginProfile"], false, "{status}");
    assert_eq!(status["mfaDevices"], 1, "{status}");
    assert_eq!(status["accessKeys"], 1, "{status}");
    assert_eq!(status["lastTaskPolicy"], "IAMDeleteRootUserCredentials");
    assert!(status["checkedAt"].is_string(), "{status}");
    assert_eq!(audited_profile(&org, absent), None);
    let status = &enabled_now["status"];
    let created = status["createDate"]
        .as_str()
        .expect("createDate")
        .to_string();
    assert_eq!(status["loginProfile"], true, "{status}");
    assert_eq!(status["lastTaskPolicy"], "IAMCreateRootUserPassword");
    assert_eq!(
        audited_profile(&org, recovery).as_deref(),
        Some(created.as_str())
    );
    assert_eq!(root_events(&removed, "Removed"), 1);
    assert_eq!(root_events(&enabled, "Created"), 1);

    // Later checks (every 3 s) find each as declared and write nothing.
    wait_until("a later check of both", CONVERGE, || {
        [&removed, &enabled]
            .iter()
            .all(|name| get_root(name)["status"]["lastTaskPolicy"] == "IAMAuditRootUserCredentials")
    });
    assert_eq!(
        count(&root_calls_in(recovery), "CreateLoginProfile"),
        1,
        "created once"
    );
    assert_eq!(
        count(&root_calls_in(absent), "DeleteLoginProfile"),
        1,
        "deleted once"
    );

    // Drift behind the operator's back: a password recovered again in the
    // first, root's profile deleted in the second. The next check mends and
    // reports each.
    env().root_state(absent, json!({"login_profile": true}));
    env().root_state(recovery, json!({"login_profile": false}));
    wait_until("both drifts mended and reported", CONVERGE, || {
        root_events(&removed, "Removed") == 2 && root_events(&enabled, "Created") == 2
    });
    assert_eq!(audited_profile(&org, absent), None);
    assert!(audited_profile(&org, recovery).is_some());

    // Every call in a session of the right task policy: reads in audit
    // sessions, each write alone in a session made for it.
    for member in [absent, recovery] {
        for (action, task) in root_calls_in(member) {
            let expected = match action.as_str() {
                "GetLoginProfile" | "ListMFADevices" | "ListAccessKeys" => {
                    "IAMAuditRootUserCredentials"
                }
                "DeleteLoginProfile" => "IAMDeleteRootUserCredentials",
                "CreateLoginProfile" => "IAMCreateRootUserPassword",
                other => panic!("{member}: the operator called {other} in a root session"),
            };
            // The test's own audit sessions (audited_profile) read too.
            assert_eq!(task, expected, "{member}: {action}");
        }
    }
    assert_eq!(count(&root_calls_in(recovery), "CreateLoginProfile"), 2);
    assert_eq!(count(&root_calls_in(absent), "DeleteLoginProfile"), 2);

    // Deleting the resources changes nothing in AWS (deletionPolicy Retain).
    env().kubectl_ok(&["delete", "rootloginprofile", &removed, &enabled]);
    env().root_state(absent, json!({"login_profile": true}));
    let before = (root_calls_in(absent).len(), root_calls_in(recovery).len());
    holds_for(Duration::from_secs(5), || {
        assert_eq!(
            (root_calls_in(absent).len(), root_calls_in(recovery).len()),
            before,
            "no root call after deletion"
        );
    });
    assert!(audited_profile(&org, recovery).is_some());
}

#[test]
fn each_refusal_has_its_reason_and_makes_no_root_call() {
    let org = Organization::new(true);
    let plain = Organization::new(false);
    let [member, other] = &org.members;
    env().root_state(member, json!({"login_profile": true}));
    let mut fixture = RootFixture::new("root-refuse");
    let management = fixture.iam_account_unverified(&org.management, true);
    let not_allowed = fixture.iam_account_unverified(&org.management, false);
    let from_member = fixture.iam_account_unverified(other, true);
    let no_root_management = fixture.iam_account_unverified(&plain.management, true);
    for name in [&management, &not_allowed, &from_member, &no_root_management] {
        wait_account_ready(name, "True", "Verified");
    }
    let outsider = unique_account_id();

    // One account each: a second RootLoginProfile for an account would wait
    // for the first (AccountClaimed) before anything else is checked.
    let [first_plain, second_plain] = &plain.members;
    let applied = [
        (
            "not-allowed",
            member.as_str(),
            not_allowed.as_str(),
            "RootAccessNotAllowed",
            "allowRootAccess",
        ),
        (
            "no-account",
            other.as_str(),
            "no-such-iamaccount",
            "RootAccessNotAllowed",
            "does not exist",
        ),
        (
            "mgmt",
            org.management.as_str(),
            management.as_str(),
            "NotAMember",
            "management account",
        ),
        (
            "outsider",
            outsider.as_str(),
            management.as_str(),
            "AssumeRootDenied",
            "not a member",
        ),
        (
            "from-member",
            second_plain.as_str(),
            from_member.as_str(),
            "NotManagementAccount",
            "delegated administrator",
        ),
        (
            "no-feature",
            first_plain.as_str(),
            no_root_management.as_str(),
            "RootCredentialsManagementDisabled",
            "enable-organizations-root-credentials-management",
        ),
    ]
    .map(|(name, account, iam_account, reason, words)| {
        (
            name,
            fixture.apply(name, account, iam_account, "Absent"),
            reason,
            words,
        )
    });
    for (name, root, reason, words) in applied {
        let refused = wait_root(&root, "False", reason);
        let stalled = condition(&refused, "Stalled").expect("Stalled");
        assert_eq!(stalled.0, "True", "{name}");
        assert!(stalled.2.contains(words), "{name}: {}", stalled.2);
        assert_eq!(root_events(&root, reason), 1, "{name}: one Warning Event");
    }
    // None of them wrote anything: no root session call at all in the
    // accounts they named, and root's password is still there.
    for account in [member, other, &outsider, first_plain, second_plain] {
        assert_eq!(root_calls_in(account), Vec::new(), "{account}");
    }
    assert!(env().root_state(member, json!({}))["login_profile"].is_string());
    let gauge = |condition: &str, n: usize| {
        format!("loginprofile_root_login_profiles{{condition=\"{condition}\"}} {n}")
    };
    let metrics = fixture.operator.metrics();
    assert!(metrics.contains(&gauge("not_ready", 6)), "{metrics}");

    // Once allowed, the same object acts.
    let first = fixture.roots[0].clone();
    env().kubectl_ok(&[
        "patch",
        "iamaccount",
        &not_allowed,
        "--type=merge",
        "-p",
        r#"{"spec":{"allowRootAccess":true}}"#,
    ]);
    wait_root(&first, "True", "Removed");
    wait_until("the gauge to count it ready", CONVERGE, || {
        let metrics = fixture.operator.metrics();
        metrics.contains(&gauge("ready", 1)) && metrics.contains(&gauge("not_ready", 5))
    });
}

#[test]
fn a_second_root_login_profile_for_an_account_waits_for_the_first() {
    let org = Organization::new(true);
    let member = &org.members[0];
    let mut fixture = RootFixture::new("root-claim");
    let management = fixture.iam_account(&org.management, true);
    let first = fixture.apply("first", member, &management, "Absent");
    wait_root(&first, "True", "UpToDate");
    let second = fixture.apply("second", member, &management, "RecoveryEnabled");
    let claimed = wait_root(&second, "False", "AccountClaimed");
    let message = ready(&claimed).unwrap().2;
    assert!(message.contains(&first), "{message}");
    holds_for(Duration::from_secs(4), || {
        assert_eq!(count(&root_calls_in(member), "CreateLoginProfile"), 0);
    });
    // The first goes (nothing changes in AWS); the second takes over.
    env().kubectl_ok(&["delete", "rootloginprofile", &first]);
    wait_root(&second, "True", "Created");
    assert_eq!(count(&root_calls_in(member), "CreateLoginProfile"), 1);
}
