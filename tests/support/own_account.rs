//! An AWS account of the emulator for one test: an IAMAccount that acts in
//! it (through the role AWS Organizations makes in each account) and admits
//! one namespace of the test's. What is account-wide in IAM (the password
//! policy, the credential report, the emulator's clock) set there reaches no
//! other test, so the test runs beside the others.

use serde_json::{Value, json};

use super::*;

pub struct OwnAccount {
    /// The AWS account id.
    pub id: String,
    /// The IAMAccount acting in it.
    pub iam_account: String,
    pub ns: TestNamespace,
    _accounts: TestAccounts,
}

impl OwnAccount {
    /// A new account, a namespace, and an IAMAccount admitting every user of
    /// the account from that namespace, with `extra` spec fields. Verified
    /// once an operator watches the namespace ([`Self::wait_verified`]).
    pub fn new(prefix: &str, extra: Value) -> Self {
        let id = unique_account_id();
        let ns = TestNamespace::with_account(prefix, None);
        let name = unique(prefix).to_lowercase();
        let mut spec = json!({
            "roleArn": format!("arn:aws:iam::{id}:role/OrganizationAccountAccessRole"),
            "namespaces": [ns.name],
            "userNames": ["*"],
        });
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        env().apply_ok(&iam_account(&name, spec));
        Self {
            id,
            _accounts: TestAccounts(vec![name.clone()]),
            iam_account: name,
            ns,
        }
    }

    pub fn ns(&self) -> &str {
        &self.ns.name
    }

    /// Waits for an operator to verify the IAMAccount's credentials.
    pub fn wait_verified(&self) {
        wait_account_ready(&self.iam_account, "True", "Verified");
    }

    /// The AWS CLI in this account; panics on an error.
    pub fn aws(&self, args: &[&str]) -> Value {
        env()
            .aws_in(&self.id, args)
            .unwrap_or_else(|e| panic!("aws {args:?} in {}: {e}", self.id))
    }

    /// Creates an IAM user with a unique name here and returns the name
    /// (the account is the test's alone: nothing to remove afterwards).
    pub fn create_user(&self, prefix: &str) -> String {
        let user = unique(prefix);
        self.aws(&["iam", "create-user", "--user-name", &user]);
        user
    }

    /// Sets the account password policy (`update-account-password-policy`
    /// arguments).
    pub fn set_password_policy(&self, args: &[&str]) {
        let mut all = vec!["iam", "update-account-password-policy"];
        all.extend_from_slice(args);
        self.aws(&all);
    }

    /// A Secret `name` holding `password` and a LoginProfile `name` for
    /// `user` of this account, with `extra` spec fields.
    pub fn apply_pair(&self, name: &str, user: &str, password: &str, extra: Value) {
        env().apply_ok(&secret(self.ns(), name, &[("password", password)]));
        let mut spec = json!({
            "userName": user,
            "passwordSecretRef": {"name": name},
            "accountRef": {"name": self.iam_account},
        });
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        env().apply_ok(&login_profile(self.ns(), name, spec));
    }

    /// Whether `user` can change their password from `old` (IAM holds it).
    pub fn change_password_as_user(&self, user: &str, old: &str, new: &str) -> Result<(), String> {
        change_password_as_user_in(Some(&self.id), user, old, new)
    }
}
