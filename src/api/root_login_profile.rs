//! The `RootLoginProfile` resource: whether the root user of one member
//! account of an AWS organization has a console password, declared and
//! kept so through AWS Organizations' centralized root access (STS
//! AssumeRoot). Cluster-scoped and for cluster admins only: the chart
//! aggregates it to no tenant role. Pure types, no I/O; every doc comment
//! here becomes `kubectl explain` text.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::login_profile::AccountRef;

/// Root's console password in one member account of an AWS organization:
/// `Absent` (removed whenever found) or `RecoveryEnabled` (root may set one
/// through password recovery).
// Each printcolumn(...) repeats the same keys, which clippy takes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "iam.loginprofile.dev",
    version = "v1alpha1",
    kind = "RootLoginProfile",
    plural = "rootloginprofiles",
    shortname = "rootlp",
    category = "aws",
    status = "RootLoginProfileStatus",
    doc = "Root's console password in one member account of an AWS organization, declared: Absent or RecoveryEnabled, kept so through centralized root access (STS AssumeRoot).",
    printcolumn(name = "Account", type_ = "string", json_path = ".spec.accountId"),
    printcolumn(name = "State", type_ = "string", json_path = ".spec.state"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Profile",
        type_ = "boolean",
        json_path = ".status.loginProfile"
    ),
    printcolumn(name = "MFA", type_ = "integer", json_path = ".status.mfaDevices"),
    printcolumn(name = "Keys", type_ = "integer", json_path = ".status.accessKeys"),
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
    "self.accountId.matches('^[0-9]{12}$')"
).field_path(".accountId").message("accountId must be the 12-digit id of a member account of the organization (aws organizations list-accounts)"))]
#[x_kube(validation = Rule::new(
    "self.accountId == oldSelf.accountId"
).field_path(".accountId").reason(kube::core::Reason::FieldValueForbidden).message("accountId is immutable: create a RootLoginProfile for the other account and delete this one (deleting changes nothing in AWS)"))]
#[serde(rename_all = "camelCase")]
pub struct RootLoginProfileSpec {
    /// The member account whose root user this is: 12 digits. Not the
    /// management account (AssumeRoot cannot act on it). Immutable.
    #[schemars(length(min = 12, max = 12))]
    pub account_id: String,

    /// The IAMAccount whose credentials are the organization's management
    /// account's or a delegated administrator's for IAM. It must say
    /// `allowRootAccess: true`: an IAMAccount tenants use can never act on
    /// root.
    pub management_account_ref: AccountRef,

    /// `Absent`: root has no console password; one found (someone used
    /// password recovery) is deleted and reported. `RecoveryEnabled`: root
    /// may recover its password (CreateLoginProfile with neither user name
    /// nor password when root has none); a password root set is left alone.
    pub state: RootState,

    /// What deleting this resource does in AWS: `Retain`, the only value,
    /// changes nothing (root keeps whatever it has then). Deleting root's
    /// password because a Kubernetes object went away could lock an account
    /// out of its only break-glass path, so it is not offered.
    #[serde(default)]
    pub deletion_policy: RootDeletionPolicy,
}

/// Root's console password, as declared.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootState {
    /// No console password: one found is deleted (IAMDeleteRootUserCredentials).
    Absent,
    /// Password recovery possible: a login profile is created when root
    /// has none (IAMCreateRootUserPassword, no password sent).
    RecoveryEnabled,
}

/// What deleting a RootLoginProfile does in AWS.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RootDeletionPolicy {
    /// Nothing: root keeps its login profile, or its lack of one.
    #[default]
    Retain,
}

/// What the last audit session found of root's credentials.
// Defaulted like LoginProfile's status: GitOps tools read an object the
// operator has not checked yet as in progress, not as healthy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": crate::api::conditions::NOT_OBSERVED}))]
pub struct RootLoginProfileStatus {
    /// The `metadata.generation` the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Whether root has a login profile (a console password, or the
    /// possibility to recover one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_profile: Option<bool>,
    /// When root's login profile was created (RFC 3339), while it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_date: Option<String>,
    /// Root's MFA devices (CIS: root should have one while it has a password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_devices: Option<u32>,
    /// Root's access keys (CIS: root should have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_keys: Option<u32>,
    /// The root-task policy of the last AssumeRoot session the operator
    /// used (IAMAuditRootUserCredentials for a check; the delete or create
    /// one when it changed something).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_task_policy: Option<String>,
    /// When root's credentials were last read (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<String>,
    /// `Ready`, and `Reconciling` or `Stalled` while it is not, the kstatus way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::api::schema::conditions)]
    pub conditions: Vec<Condition>,
}

impl RootLoginProfile {
    /// The IAMAccount whose credentials call AssumeRoot.
    pub fn management_account_name(&self) -> &str {
        &self.spec.management_account_ref.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn the_crd_is_cluster_scoped_and_checks_the_account_id() {
        let crd = serde_json::to_value(RootLoginProfile::crd()).unwrap();
        assert_eq!(crd["spec"]["scope"], "Cluster");
        let text = crd.to_string();
        assert!(text.contains("accountId must be the 12-digit id"), "{text}");
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(
            spec["properties"]["deletionPolicy"]["enum"],
            serde_json::json!(["Retain"])
        );
    }

    #[test]
    fn the_deletion_policy_defaults_to_retain() {
        let spec: RootLoginProfileSpec = serde_json::from_value(serde_json::json!({
            "accountId": "111122223333",
            "managementAccountRef": {"name": "org"},
            "state": "Absent",
        }))
        .unwrap();
        assert_eq!(spec.deletion_policy, RootDeletionPolicy::Retain);
        assert_eq!(spec.state, RootState::Absent);
    }
}
