//! The `IAMAccount` resource: cluster-scoped, written by cluster admins only.
//! It names the AWS account LoginProfiles act in (a role to assume, or the
//! operator's own credentials) and which namespaces and IAM users it admits.
//! The choice and the right are never the tenant's: a LoginProfile can only
//! name an IAMAccount, and that IAMAccount decides. Pure types, no I/O;
//! every doc comment here becomes `kubectl explain` text.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The IAMAccount a LoginProfile without `spec.accountRef` uses.
pub const DEFAULT_ACCOUNT: &str = "default";
/// Kept on an IAMAccount while LoginProfiles use it.
pub const ACCOUNT_FINALIZER: &str = "iam.loginprofile.dev/in-use";

/// An AWS account LoginProfiles may set console passwords in, and who may:
/// which namespaces, which IAM users. Empty lists and selectors admit
/// nothing.
// Each printcolumn(...) repeats the same keys, which clippy takes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "iam.loginprofile.dev",
    version = "v1alpha1",
    kind = "IAMAccount",
    plural = "iamaccounts",
    shortname = "iamacct",
    category = "aws",
    category = "iam",
    status = "IAMAccountStatus",
    doc = "An AWS account LoginProfiles may set console passwords in, and which namespaces and IAM users it admits.",
    printcolumn(name = "Account", type_ = "string", json_path = ".status.accountId"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "LoginProfiles",
        type_ = "integer",
        json_path = ".status.loginProfiles"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(
    "!has(self.roleArn) || self.roleArn.matches('^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/[\\\\w+=,.@/-]{1,512}$')"
).field_path(".roleArn").message("roleArn must be an IAM role ARN: arn:aws:iam::<12-digit account id>:role/<role name>"))]
#[x_kube(validation = Rule::new(
    "!has(self.externalId) || has(self.roleArn)"
).field_path(".externalId").reason(kube::core::Reason::FieldValueForbidden).message("externalId goes with roleArn: it is sent when the role is assumed"))]
#[x_kube(validation = Rule::new(
    "!has(self.allowRootAccess) || !self.allowRootAccess || ((!has(self.namespaces) || size(self.namespaces) == 0) && !has(self.namespaceSelector))"
).field_path(".allowRootAccess").reason(kube::core::Reason::FieldValueForbidden).message("allowRootAccess is for an IAMAccount no tenant uses: leave namespaces and namespaceSelector empty (its credentials act on member accounts' root users)"))]
#[serde(rename_all = "camelCase")]
pub struct IAMAccountSpec {
    /// The IAM role to assume (STS AssumeRole) for this account, on top of
    /// the operator's own credentials (IRSA, EKS Pod Identity, environment).
    /// Without it the operator's own credentials are used.
    // IAM's own limit on an ARN; without it the API server's cost estimate of
    // the CEL rule below is 5,033,172 of its 10,000,000 budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 20, max = 2048))]
    pub role_arn: Option<String>,

    /// The external ID the role's trust policy requires, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224), regex(pattern = r"^[\w+=,.@:/-]+$"))]
    pub external_id: Option<String>,

    /// The role session name (shown in CloudTrail). Defaults to
    /// `loginprofile-operator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 64), regex(pattern = r"^[\w+=,.@-]+$"))]
    pub session_name: Option<String>,

    /// Namespaces whose labels match are admitted. An empty or absent
    /// selector admits none (unlike most Kubernetes selectors): admitting
    /// every namespace must be written out, e.g. with
    /// `matchExpressions: [{key: kubernetes.io/metadata.name, operator: Exists}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = crate::api::schema::label_selector)]
    pub namespace_selector: Option<LabelSelector>,

    /// Namespaces admitted by name, in addition to the selector.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 1024),
        inner(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub namespaces: Vec<String>,

    /// The IAM users whose console passwords admitted LoginProfiles may set:
    /// patterns where `*` matches any run of characters and `?` one
    /// (`team-a-*`). Empty admits no user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 1024),
        inner(length(min = 1, max = 128)),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub user_names: Vec<String>,

    /// A tag the IAM user must carry before the operator sets its password:
    /// an opt-in on the IAM side, checked (ListUserTags) before the first
    /// write for a user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_user_tag: Option<UserTag>,

    /// The AWS Secrets Manager secrets that admitted LoginProfiles may take
    /// their password from (`passwordSecretsManagerRef.secretId`), as
    /// patterns where `*` matches any run of characters and `?` one, over
    /// the secretId exactly as the LoginProfile writes it (a name such as
    /// `team-a/*`, or an ARN such as
    /// `arn:aws:secretsmanager:*:*:secret:team-a/*`). The operator reads
    /// them with this account's credentials, so empty admits none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 256),
        inner(length(min = 1, max = 2048)),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub secrets_manager_secret_ids: Vec<String>,

    /// Cluster ids whose login profiles in this account this cluster takes
    /// over (a blue/green cutover; docs/disaster-recovery.md). A LoginProfile
    /// admitted here whose IAM user's ownership record names one of them
    /// becomes this cluster's: the record is rewritten (one TagUser) and no
    /// password is sent when the source holds the recorded one (the same
    /// fingerprint key in both clusters); otherwise the source's password
    /// is sent next. The other cluster then finds this one's record and
    /// neither writes nor deletes. Needs `--cluster-id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 64),
        inner(length(min = 1, max = 63), regex(pattern = r"^[A-Za-z0-9._-]+$")),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub take_ownership_from: Vec<String>,

    /// Until this time (RFC 3339), deletions of login profiles in this
    /// account are not paced by the mass-deletion guard (`--deletion-limit`):
    /// a cluster admin's confirmation that a mass deletion is intended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub allow_deletions_until: Option<String>,

    /// Whether LoginProfiles admitted here may use `adoptionPolicy: Adopt`
    /// (take over a login profile they did not create, overwriting its
    /// password). Default false.
    #[serde(default)]
    pub allow_adoption: bool,

    /// Whether RootLoginProfiles may name this IAMAccount
    /// (`managementAccountRef`): its credentials then call STS AssumeRoot
    /// for member accounts' root users, so they must be the organization's
    /// management account's or a delegated administrator's for IAM.
    /// Default false: an IAMAccount tenants use never acts on root, and
    /// one with root access admits no namespace.
    #[serde(default)]
    pub allow_root_access: bool,

    /// Console-access rules every LoginProfile in this account follows at
    /// least (docs/governance.md): a LoginProfile may make a rule stricter
    /// (shorter, or `DisableConsole`), never looser. Setting it turns on the
    /// credential report for every LoginProfile here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governance: Option<crate::api::governance::Governance>,

    /// IAM's events for this account (docs/events.md): CloudTrail's records
    /// of IAM calls, which an EventBridge rule in us-east-1 sends to an SQS
    /// queue. The operator reads the queue with this account's credentials,
    /// and an event about an IAM user wakes the LoginProfiles naming it at
    /// once: drift made outside the operator is acted on within seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventSource>,
}

/// Where IAM's events for an account arrive.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EventSource {
    /// The URL of the SQS queue (in us-east-1, where IAM's events go) that
    /// the EventBridge rule sends them to, e.g.
    /// `https://sqs.us-east-1.amazonaws.com/111122223333/iam-events`.
    #[schemars(length(min = 8, max = 2048), regex(pattern = r"^https?://\S+$"))]
    pub sqs_queue_url: String,
}

/// An IAM tag: key and value.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UserTag {
    #[schemars(length(min = 1, max = 128))]
    pub key: String,
    #[schemars(length(max = 256))]
    pub value: String,
}

/// What the operator found out about the account.
// Defaulted like LoginProfile's status: GitOps tools read an IAMAccount the
// operator has not checked yet as in progress, not as healthy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": crate::api::conditions::NOT_OBSERVED}))]
pub struct IAMAccountStatus {
    /// The `metadata.generation` the operator last checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The AWS account id the credentials act in (STS GetCallerIdentity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 12))]
    pub account_id: Option<String>,
    /// How many LoginProfiles (that this operator watches) use this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_profiles: Option<u32>,
    /// `Ready`: the credentials work; `Stalled` while they do not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::api::schema::conditions)]
    pub conditions: Vec<Condition>,
}

impl IAMAccount {
    /// The account id the role ARN names, if any: known without a call.
    pub fn role_account_id(&self) -> Option<&str> {
        self.spec
            .role_arn
            .as_deref()
            .and_then(|arn| arn.split(':').nth(4))
            .filter(|id| !id.is_empty())
    }

    /// The account id, once verified for the current generation.
    pub fn verified_account_id(&self) -> Option<&str> {
        let status = self.status.as_ref()?;
        let ready = status
            .conditions
            .iter()
            .any(|c| c.type_ == crate::api::conditions::READY && c.status == "True");
        (ready && status.observed_generation == self.metadata.generation)
            .then_some(status.account_id.as_deref())
            .flatten()
    }

    /// The Ready condition's message, if it is not ready.
    pub fn not_ready_message(&self) -> Option<String> {
        if self.verified_account_id().is_some() {
            return None;
        }
        Some(
            self.status
                .as_ref()
                .and_then(|s| {
                    s.conditions
                        .iter()
                        .find(|c| c.type_ == crate::api::conditions::READY)
                })
                .filter(|c| c.observed_generation == self.metadata.generation)
                .map(|c| c.message.clone())
                .unwrap_or_else(|| "its credentials have not been checked yet".into()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn the_crd_is_cluster_scoped_and_checks_the_role_arn() {
        let crd = serde_json::to_value(IAMAccount::crd()).unwrap();
        assert_eq!(crd["spec"]["scope"], "Cluster");
        let text = crd.to_string();
        assert!(text.contains("roleArn must be an IAM role ARN"), "{text}");
    }

    #[test]
    fn the_role_arn_names_its_account() {
        let account = |arn: Option<&str>| {
            IAMAccount::new(
                "a",
                serde_json::from_value(serde_json::json!({ "roleArn": arn })).unwrap(),
            )
        };
        assert_eq!(
            account(Some("arn:aws:iam::111111111111:role/x")).role_account_id(),
            Some("111111111111")
        );
        assert_eq!(account(None).role_account_id(), None);
    }
}
