//! IAM as a person reads it: users made and removed per test, the
//! emulator's call counts, signing in as the user, the shipped policy
//! files, Secrets Manager secrets.

use std::collections::HashMap;

use serde_json::Value;

use super::*;

/// IAM users made by one test; deleted (login profile first) when dropped.
#[derive(Default)]
pub struct TestUsers {
    names: Vec<String>,
    bulk: Vec<String>,
}

/// Runs one boto3 IAM call (`create_user`, `delete_user`, ...) for each
/// name, in one Python process of the emulator's venv; errors are ignored
/// (cleanup of what may not exist).
fn bulk_users(call: &str, names: &[String]) {
    bulk_users_in(None, call, names)
}

/// [`bulk_users`] in AWS account `account` (through the role AWS
/// Organizations makes in each account), or the default one.
fn bulk_users_in(account: Option<&str>, call: &str, names: &[String]) {
    let client = match account {
        Some(account) => format!(
            "c = boto3.client('sts').assume_role(RoleArn='arn:aws:iam::{account}:role/OrganizationAccountAccessRole', RoleSessionName='tests')['Credentials']\n\
             iam = boto3.client('iam', aws_access_key_id=c['AccessKeyId'], aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken'])\n"
        ),
        None => "iam = boto3.client('iam')\n".to_string(),
    };
    let script = format!(
        "import boto3, sys\n\
         {client}\
         for name in sys.stdin.read().split():\n\
         \x20   try:\n\
         \x20       if '{call}' == 'delete_user':\n\
         \x20           try: iam.delete_login_profile(UserName=name)\n\
         \x20           except Exception: pass\n\
         \x20           for policy in iam.list_user_policies(UserName=name)['PolicyNames']:\n\
         \x20               iam.delete_user_policy(UserName=name, PolicyName=policy)\n\
         \x20       iam.{call}(UserName=name)\n\
         \x20   except Exception as e:\n\
         \x20       if '{call}' != 'delete_user': raise\n"
    );
    let mut python = env().command("python");
    python.args(["-c", &script]);
    let output = run_with_stdin(python, &names.join("\n"));
    // From a Drop during a test's panic, a second panic would abort every
    // test of the binary: the cleanup is then best effort.
    assert!(
        output.status.success() || std::thread::panicking(),
        "boto3 {call}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Creates IAM users `names` in AWS account `account` (one process).
pub fn create_users_in(account: &str, names: &[String]) {
    bulk_users_in(Some(account), "create_user", names);
}

impl TestUsers {
    /// Creates an IAM user with a unique name and returns the name.
    pub fn create(&mut self, prefix: &str) -> String {
        let name = self.reserve(prefix);
        env().aws_ok(&["iam", "create-user", "--user-name", &name]);
        name
    }

    /// Creates `n` IAM users named `<prefix>-<i>` (one process, so hundreds
    /// take seconds, not minutes) and returns the names.
    pub fn create_many(&mut self, prefix: &str, n: usize) -> Vec<String> {
        let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
        bulk_users("create_user", &names);
        self.bulk.extend(names.iter().cloned());
        names
    }

    /// A unique user name that is cleaned up, without creating the user.
    pub fn reserve(&mut self, prefix: &str) -> String {
        let name = unique(prefix);
        self.names.push(name.clone());
        name
    }
}

impl Drop for TestUsers {
    fn drop(&mut self) {
        // One boto3 process for every user (login profile, then the user),
        // not two AWS CLI runs per user.
        let everyone: Vec<String> = self.bulk.iter().chain(&self.names).cloned().collect();
        if !everyone.is_empty() {
            bulk_users("delete_user", &everyone);
        }
    }
}

/// A 12-digit AWS account id no other test run uses (the emulator keeps
/// every account it has seen until it restarts).
pub fn unique_account_id() -> String {
    let digits: String = unique("").chars().filter(char::is_ascii_digit).collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let id = format!("9{nanos:09}{digits}00");
    id[..12].to_string()
}

/// An AWS Secrets Manager secret `id` whose SecretString is `value`.
pub fn create_secrets_manager_secret(id: &str, value: &str) {
    env().aws_ok(&[
        "secretsmanager",
        "create-secret",
        "--name",
        id,
        "--secret-string",
        value,
    ]);
}

pub fn iam_profile(user: &str) -> Result<Value, String> {
    env().aws(&["iam", "get-login-profile", "--user-name", user])
}

/// Whether a GetLoginProfile answered that there is none (NoSuchEntity),
/// not merely failed (a typo, an unreachable endpoint, a wrong account).
pub fn no_such_profile(read: Result<Value, String>) -> bool {
    matches!(read, Err(error) if error.contains("NoSuchEntity"))
}

pub fn calls(user: &str, action: &str) -> u64 {
    env().iam_calls(user).get(action).copied().unwrap_or(0)
}

/// The calls of `action` naming `user` that IAM applied and answered with
/// success.
pub fn accepted(user: &str, action: &str) -> u64 {
    env().accepted(user).get(action).copied().unwrap_or(0)
}

pub fn iam_writes(user: &str) -> u64 {
    [
        "CreateLoginProfile",
        "UpdateLoginProfile",
        "DeleteLoginProfile",
    ]
    .iter()
    .map(|a| calls(user, a))
    .sum()
}

/// What a person needs to change their own password with a key of their
/// own (AWS's managed policy IAMUserChangePassword): the emulator authorizes
/// every call an IAM user signs against the user's policies.
const CHANGE_OWN_PASSWORD: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iam:ChangePassword", "iam:GetAccountPasswordPolicy"], "Resource": "*"}]}"#;

/// ChangePassword as the IAM user itself, with an access key of its own (the
/// way the user changes the password at sign-in). The key is deleted after.
pub fn change_password_as_user(user: &str, old: &str, new: &str) -> Result<(), String> {
    change_password_as_user_in(None, user, old, new)
}

/// [`change_password_as_user`] for a user of AWS account `account` (`None`:
/// the emulator's default account).
pub fn change_password_as_user_in(
    account: Option<&str>,
    user: &str,
    old: &str,
    new: &str,
) -> Result<(), String> {
    let env = env();
    let admin = |args: &[&str]| match account {
        Some(account) => env
            .aws_in(account, args)
            .unwrap_or_else(|e| panic!("aws {args:?} in {account}: {e}")),
        None => env.aws_ok(args),
    };
    admin(&[
        "iam",
        "put-user-policy",
        "--user-name",
        user,
        "--policy-name",
        "change-own-password",
        "--policy-document",
        CHANGE_OWN_PASSWORD,
    ]);
    let key = admin(&["iam", "create-access-key", "--user-name", user]);
    let key_id = key["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let output = env
        .command("aws")
        .args([
            "iam",
            "change-password",
            // `=` keeps a password that starts with `-` (generated ones can)
            // from being read as an option.
            &format!("--old-password={old}"),
            &format!("--new-password={new}"),
        ])
        .env("AWS_ACCESS_KEY_ID", &key_id)
        .env(
            "AWS_SECRET_ACCESS_KEY",
            key["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
        )
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("aws runs");
    admin(&[
        "iam",
        "delete-access-key",
        "--user-name",
        user,
        "--access-key-id",
        &key_id,
    ]);
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Checks that every user can sign in with its Secret's password (and
/// change it, as at a first sign-in), in one process for hundreds of users.
pub fn sign_in_all(passwords: &HashMap<String, String>) {
    let script = "import boto3, json, os, sys\n\
                  iam = boto3.client('iam')\n\
                  failed = []\n\
                  for user, password in json.load(sys.stdin).items():\n\
                  \x20   iam.put_user_policy(UserName=user, PolicyName='change-own-password', PolicyDocument=os.environ['POLICY'])\n\
                  \x20   key = iam.create_access_key(UserName=user)['AccessKey']\n\
                  \x20   as_user = boto3.client('iam', aws_access_key_id=key['AccessKeyId'],\n\
                  \x20       aws_secret_access_key=key['SecretAccessKey'])\n\
                  \x20   try: as_user.change_password(OldPassword=password, NewPassword=password + 'x')\n\
                  \x20   except Exception: failed.append(user)\n\
                  \x20   iam.delete_access_key(UserName=user, AccessKeyId=key['AccessKeyId'])\n\
                  print(json.dumps(failed))\n";
    let mut python = env().command("python");
    python
        .args(["-c", script])
        .env("POLICY", CHANGE_OWN_PASSWORD);
    let output = run_with_stdin(python, &serde_json::to_string(passwords).unwrap());
    let failed: Vec<String> = serde_json::from_slice(&stdout_of(output, "sign-in").into_bytes())
        .expect("the list of users who could not sign in");
    assert!(
        failed.is_empty(),
        "IAM does not hold the Secret's password for {failed:?}"
    );
}

/// A second access key of the operator's own IAM user (a user may hold two):
/// an operator started with it is the same principal, but the emulator
/// counts its calls apart (`<key>@<access key id>`) from those of the other
/// tests' operators. Deleted when dropped.
pub struct OperatorKey {
    pub id: String,
    secret: String,
}

/// The IAM user hack/devenv.sh makes for the operator.
const OPERATOR_USER: &str = "loginprofile-operator";

impl OperatorKey {
    pub fn new() -> Self {
        let key = env().aws_ok(&["iam", "create-access-key", "--user-name", OPERATOR_USER]);
        let field = |name: &str| key["AccessKey"][name].as_str().unwrap().to_string();
        Self {
            id: field("AccessKeyId"),
            secret: field("SecretAccessKey"),
        }
    }

    /// The environment an operator process signs with it in.
    pub fn env(&self) -> [(&str, &str); 2] {
        [
            ("AWS_ACCESS_KEY_ID", &self.id),
            ("AWS_SECRET_ACCESS_KEY", &self.secret),
        ]
    }
}

impl Drop for OperatorKey {
    fn drop(&mut self) {
        let _ = env().aws(&[
            "iam",
            "delete-access-key",
            "--user-name",
            OPERATOR_USER,
            "--access-key-id",
            &self.id,
        ]);
    }
}

/// A policy file of docs/ as the test environment fills it in
/// (hack/operator_identity.py), optionally without one action.
pub fn shipped_policy(file: &str, without: Option<&str>) -> String {
    let mut python = env().command("python");
    python.args([&format!("{ROOT}/hack/operator_identity.py"), "policy", file]);
    if let Some(action) = without {
        python.args(["--without", action]);
    }
    stdout_of(
        python.output().expect("python runs"),
        "operator_identity.py policy",
    )
}
