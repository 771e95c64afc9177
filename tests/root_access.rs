//! The emulator's centralized root access (hack/root_access.py), which moto
//! lacks: AWS Organizations' root credentials management, STS AssumeRoot
//! with its rules, and root's login profile in a root session, each as AWS
//! documents it and read back with the AWS CLI. Every test here fails
//! against plain moto (`LPO_MOTO_UNPATCHED=1`): the corrections issue 24's
//! RootLoginProfile will be tested against.

mod support;

use serde_json::{Value, json};
use support::*;

const TASKS: &str = "arn=arn:aws:iam::aws:policy/root-task/";

/// An organization of the emulator: its management account and two member
/// accounts, with trusted access for IAM and (unless asked not to) root
/// credentials management enabled.
struct Organization {
    management: String,
    members: [String; 2],
}

impl Organization {
    fn new(manage_root_credentials: bool) -> Self {
        let management = unique_account_id();
        let aws = |args: &[&str]| {
            env()
                .aws_in(&management, args)
                .unwrap_or_else(|e| panic!("aws {args:?}: {e}"))
        };
        aws(&[
            "organizations",
            "create-organization",
            "--feature-set",
            "ALL",
        ]);
        let member = |name: &str| {
            aws(&[
                "organizations",
                "create-account",
                "--email",
                &format!("{}@example.invalid", unique(name)),
                "--account-name",
                name,
            ])["CreateAccountStatus"]["AccountId"]
                .as_str()
                .expect("an account id")
                .to_string()
        };
        let members = [member("first"), member("second")];
        aws(&[
            "organizations",
            "enable-aws-service-access",
            "--service-principal",
            "iam.amazonaws.com",
        ]);
        if manage_root_credentials {
            aws(&["iam", "enable-organizations-root-credentials-management"]);
        }
        Self {
            management,
            members,
        }
    }

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
