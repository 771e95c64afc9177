//! Console-access governance, as people write and read it: the rules a
//! LoginProfile (and, as a floor tenants cannot lower, its IAMAccount) sets
//! for MFA, unused passwords and expiry, and what `status.console` shows of
//! the person behind the login profile. Pure types; the judging is in
//! rules/governance.rs. CIS AWS Foundations mapping: docs/governance.md.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the operator does about one person's console access. Any rule
/// written here turns on the credential report for this LoginProfile
/// (`governance: {}` reports without rules).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Governance {
    /// CIS 1.10: the IAM user must have an active MFA device within
    /// `requiredWithin` of the login profile's CreateDate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa: Option<MfaRule>,
    /// CIS 1.12: the console password must be used at least every `after`
    /// (counted from its last use, or from the profile's CreateDate if it
    /// was never used, so a profile made today is not unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unused: Option<UnusedRule>,
    /// How long before the password expires (account policy MaxPasswordAge)
    /// `PasswordExpiring` turns True. Default 14d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 6), regex(pattern = r"^[0-9]{1,5}[dhms]$"))]
    pub expiry_warning: Option<String>,
    /// A login profile a rule disabled stays deleted until a person acts:
    /// setting this to a value other than the one in force when it was
    /// disabled (any string, e.g. a date or a ticket number) re-enables it
    /// once. A new password in the source re-enables it too. Ignored on an
    /// IAMAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub reenable: Option<String>,
}

/// The MFA rule.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MfaRule {
    /// Grace period from the login profile's CreateDate. Default 7d.
    #[serde(default = "default_mfa_within")]
    #[schemars(length(max = 6), regex(pattern = r"^[0-9]{1,5}[dhms]$"))]
    pub required_within: String,
    /// `Report` (default) or `DisableConsole`.
    #[serde(default)]
    pub action: GovernanceAction,
}

/// The unused-password rule.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UnusedRule {
    /// How long a password may go unused. Default 45d (CIS 1.12).
    #[serde(default = "default_unused_after")]
    #[schemars(length(max = 6), regex(pattern = r"^[0-9]{1,5}[dhms]$"))]
    pub after: String,
    /// `Report` (default) or `DisableConsole`.
    #[serde(default)]
    pub action: GovernanceAction,
}

fn default_mfa_within() -> String {
    "7d".into()
}

fn default_unused_after() -> String {
    "45d".into()
}

/// What a broken rule leads to.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum GovernanceAction {
    /// A condition, an Event and a metric; console access stays.
    #[default]
    Report,
    /// Also delete the login profile (console access off; the IAM user and
    /// its access keys stay), until a person re-enables it.
    DisableConsole,
}

/// What IAM's credential report says of this login profile's person, and
/// what the rules made of it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleStatus {
    /// When IAM generated the credential report these facts come from (it
    /// makes one at most every 4 hours); ages are measured at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub report_generated_at: Option<String>,
    /// Whether the IAM user has an active MFA device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_active: Option<bool>,
    /// When the console password was last used to sign in; absent if never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub password_last_used: Option<String>,
    /// When the password last changed (by anyone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub password_last_changed: Option<String>,
    /// When the password expires under the account policy's MaxPasswordAge;
    /// absent when the policy sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub password_expires_at: Option<String>,
    /// The rules in force and where each comes from (this LoginProfile or
    /// its IAMAccount, whichever is stricter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub rules: Option<String>,
    /// The `passwordExpiresAt` a generated password was last replaced
    /// ahead of (so one report's expiry causes one replacement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub replaced_for_expiry: Option<String>,
    /// Set while a rule keeps console access off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<ConsoleDisabled>,
    /// Under an IAMAccount's MFA rule: when the person's grace period
    /// started (the first login profile the operator made for the user
    /// under it), as recorded on the IAM user
    /// (`iam.loginprofile.dev/floor-since`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub floor_since: Option<String>,
}

/// Why and when a rule turned console access off.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleDisabled {
    /// `mfa` or `unused`.
    #[schemars(length(max = 16))]
    pub rule: String,
    /// When the operator deleted the login profile.
    #[schemars(extend("format" = "date-time"))]
    pub at: String,
    /// What the rule found.
    #[schemars(length(max = 1024))]
    pub message: String,
    /// `governance.reenable` when it was disabled: another value re-enables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub reenable: Option<String>,
}
