//! The closed set of condition reasons, and for each failure whether it is
//! terminal (Stalled: wait for a change) or transient (retry with backoff).

/// Events whose reason is no condition's (docs/reference.md lists them).
pub const PASSWORD_GENERATED: &str = "PasswordGenerated";
pub const PASSWORD_ROTATED: &str = "PasswordRotated";
pub const CONSOLE_REENABLED: &str = "ConsoleReenabled";
pub const EVENT_ONLY_REASONS: [(&str, &str); 3] = [
    (
        PASSWORD_GENERATED,
        "with `generatePassword`, the operator created the Secret `passwordSecretRef` names, holding a generated password",
    ),
    (
        PASSWORD_ROTATED,
        "a generated password was replaced `generatePassword.rotateBefore` ahead of its expiry",
    ),
    (
        CONSOLE_REENABLED,
        "console access a governance rule had turned off is re-enabled: the login profile is created again",
    ),
];

use std::fmt;

/// A condition reason: CamelCase, stable, part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    // Ready=True
    UpToDate,
    Created,
    Updated,
    Adopted,
    /// The ownership record in IAM names this cluster and this LoginProfile
    /// (a rebuilt or restored cluster): taken back with no IAM write.
    Recognized,
    /// The ownership record named a cluster the IAMAccount takes ownership
    /// over from (`takeOwnershipFrom`): the record now names this cluster.
    HandedOver,
    /// IAMAccount: its credentials work (STS GetCallerIdentity answered).
    Verified,
    /// CreateOnly kept IAM's password although the Secret changed.
    UpdateHeldBack,
    /// RootLoginProfile: root's login profile was found and deleted (`state: Absent`).
    Removed,
    // Ready=False, terminal
    SecretNotFound,
    SecretKeyNotFound,
    InvalidPassword,
    PasswordPolicyViolation,
    LoginProfileExists,
    AccessDenied,
    SecretsManagerNotFound,
    SecretsManagerAccessDenied,
    SecretsManagerDecryptionFailure,
    SecretsManagerJsonKeyNotFound,
    SecretsManagerNotJson,
    /// The IAM user name (from spec.userName or the resource's name) is not one IAM allows.
    InvalidUserName,
    /// The operator may not read (or, with generatePassword, create) the Secret.
    SecretAccessDenied,
    /// The IAMAccount it names does not admit its namespace, its IAM user or
    /// its adoptionPolicy (or does not exist).
    NotAdmitted,
    /// An older LoginProfile manages the same IAM user in the same account.
    UserClaimed,
    /// The ownership record in IAM names another cluster (or another
    /// operator): no write and no deletion.
    OwnedElsewhere,
    /// The IAMAccount now acts in another AWS account than the profile lives in.
    AccountChanged,
    /// A governance rule with `DisableConsole` deleted the login profile.
    ConsoleDisabled,
    /// `spec.governance` (or the IAMAccount's) does not parse.
    InvalidGovernance,
    /// A `generatePassword.deliverTo` recipient (age, SSH or OpenPGP key) cannot be encrypted to.
    InvalidRecipient,
    /// RootLoginProfile: its IAMAccount does not exist or does not say `allowRootAccess: true`.
    RootAccessNotAllowed,
    /// RootLoginProfile: the organization has no root credentials management (centralized root access).
    RootCredentialsManagementDisabled,
    /// RootLoginProfile: its IAMAccount is neither the management account nor a delegated administrator for IAM.
    NotManagementAccount,
    /// RootLoginProfile: the account is the organization's management account, which AssumeRoot cannot act on.
    NotAMember,
    /// RootLoginProfile: STS refused AssumeRoot for the account.
    AssumeRootDenied,
    /// RootLoginProfile: an older RootLoginProfile manages the same account's root.
    AccountClaimed,
    // Ready=False, transient
    /// The IAMAccount it names has not verified its credentials.
    AccountNotReady,
    /// IAMAccount: STS refused the role (or GetCallerIdentity failed).
    AssumeRoleFailed,
    /// IAMAccount: being deleted, kept while LoginProfiles use it.
    InUse,
    /// The Kubernetes API failed while reading or creating the Secret.
    KubernetesError,
    UserNotFound,
    /// The mass-deletion guard holds this deletion (`--deletion-limit`).
    DeletionPaced,
    Throttled,
    LimitExceeded,
    TemporarilyUnmodifiable,
    ServiceFailure,
    IamError,
    SecretsManagerError,
    Deleting,
}

impl Reason {
    /// Every reason, in the order of `as_str` (docs/reference.md lists them).
    pub const ALL: &'static [Reason] = &[
        Reason::UpToDate,
        Reason::Created,
        Reason::Updated,
        Reason::Adopted,
        Reason::Recognized,
        Reason::HandedOver,
        Reason::Verified,
        Reason::NotAdmitted,
        Reason::UserClaimed,
        Reason::OwnedElsewhere,
        Reason::AccountChanged,
        Reason::ConsoleDisabled,
        Reason::InvalidGovernance,
        Reason::InvalidRecipient,
        Reason::Removed,
        Reason::RootAccessNotAllowed,
        Reason::RootCredentialsManagementDisabled,
        Reason::NotManagementAccount,
        Reason::NotAMember,
        Reason::AssumeRootDenied,
        Reason::AccountClaimed,
        Reason::AccountNotReady,
        Reason::AssumeRoleFailed,
        Reason::InUse,
        Reason::UpdateHeldBack,
        Reason::SecretNotFound,
        Reason::SecretKeyNotFound,
        Reason::InvalidPassword,
        Reason::PasswordPolicyViolation,
        Reason::LoginProfileExists,
        Reason::AccessDenied,
        Reason::SecretsManagerNotFound,
        Reason::SecretsManagerAccessDenied,
        Reason::SecretsManagerDecryptionFailure,
        Reason::SecretsManagerJsonKeyNotFound,
        Reason::SecretsManagerNotJson,
        Reason::SecretsManagerError,
        Reason::InvalidUserName,
        Reason::SecretAccessDenied,
        Reason::KubernetesError,
        Reason::UserNotFound,
        Reason::DeletionPaced,
        Reason::Throttled,
        Reason::LimitExceeded,
        Reason::TemporarilyUnmodifiable,
        Reason::ServiceFailure,
        Reason::IamError,
        Reason::Deleting,
    ];

    /// What the reason means and what to do about it (docs/reference.md).
    pub fn meaning(self) -> &'static str {
        match self {
            Reason::UpToDate => "IAM has the source's password; nothing to do",
            Reason::Created => "the operator created the login profile with the source's password",
            Reason::Updated => {
                "the operator sent the source's new password (or only passwordResetRequired)"
            }
            Reason::Adopted => {
                "an existing login profile was taken over (`adoptionPolicy: Adopt` sent the source's password; `AdoptKeepingPassword` kept the one it had)"
            }
            Reason::Recognized => {
                "the user's ownership record in IAM names this cluster (`--cluster-id`) and this LoginProfile: a rebuilt or restored cluster took its own profile back with no IAM write (docs/disaster-recovery.md)"
            }
            Reason::Verified => {
                "IAMAccount: its credentials work (STS GetCallerIdentity answered in the account)"
            }
            Reason::UpdateHeldBack => {
                "`passwordUpdatePolicy: CreateOnly`: the source changed, IAM keeps the first password"
            }
            Reason::SecretNotFound => {
                "create the Secret in the LoginProfile's namespace (the operator notices at once)"
            }
            Reason::SecretKeyNotFound => {
                "add the key to the Secret, or set `passwordSecretRef.key`"
            }
            Reason::InvalidPassword => {
                "empty, over 128 characters, not UTF-8, a character IAM refuses (the message gives its position, never the character), or a trailing line feed: change the source"
            }
            Reason::PasswordPolicyViolation => {
                "the password breaks the account password policy (the message names every rule, checked before any IAM write) or IAM refused it (reuse): change the source"
            }
            Reason::LoginProfileExists => {
                "the user already has a login profile this resource did not create: set `adoptionPolicy: Adopt` (if the IAMAccount allows it) or delete that profile"
            }
            Reason::AccessDenied => {
                "grant the operator the IAM action the message names (docs/iam-policy.json; an SCP or permissions boundary may deny it too); rechecked every resync"
            }
            Reason::SecretsManagerNotFound => {
                "the Secrets Manager secret or version stage does not exist (docs/policies.md); rechecked every poll"
            }
            Reason::SecretsManagerAccessDenied => {
                "grant the operator secretsmanager:GetSecretValue and DescribeSecret on the secret (and kms:Decrypt on its key)"
            }
            Reason::SecretsManagerDecryptionFailure => {
                "the secret's KMS key does not let the operator decrypt it"
            }
            Reason::SecretsManagerJsonKeyNotFound => {
                "the SecretString is a JSON object with no string under `passwordSecretsManagerRef.jsonKey` (missing, or another type)"
            }
            Reason::SecretsManagerNotJson => {
                "`jsonKey` is set but the SecretString is not a JSON object"
            }
            Reason::InvalidUserName => {
                "the IAM user name (`spec.userName`, or the resource's name when it is not set) is not 1..64 of `[\\w+=,.@-]`: set `spec.userName`"
            }
            Reason::SecretAccessDenied => {
                "the operator may not read (or, for `generatePassword`, create) the Secret: grant it (chart: `watchNamespaces`, `generatedPasswords.enabled`)"
            }
            Reason::NotAdmitted => {
                "the IAMAccount does not exist, is being deleted, or does not admit this namespace, user, Secrets Manager secret, `adoptionPolicy: Adopt`, or a user without its `requiredUserTag`; the message names the rule (ask a cluster admin)"
            }
            Reason::UserClaimed => {
                "an older LoginProfile manages this IAM user in this account; this one takes over once that one is deleted"
            }
            Reason::HandedOver => {
                "the user's ownership record named a cluster the IAMAccount's `takeOwnershipFrom` lists: it now names this cluster (one TagUser; no password sent when the source holds the recorded one)"
            }
            Reason::OwnedElsewhere => {
                "the user's ownership record in IAM names another cluster id (the message names it): nothing is written or deleted, whatever `adoptionPolicy` says; hand ownership over (docs/disaster-recovery.md) or remove the record"
            }
            Reason::AccountChanged => {
                "the IAMAccount now acts in another AWS account than the profile lives in: restore it, or re-create the LoginProfile"
            }
            Reason::ConsoleDisabled => {
                "a governance rule (`mfa` or `unused` with `action: DisableConsole`) deleted the login profile; the message names the rule. Re-enable: a new `spec.governance.reenable` value or a new password (docs/governance.md)"
            }
            Reason::InvalidGovernance => {
                "a period in `spec.governance` or the IAMAccount's `governance` does not parse: write it as digits and one of d, h, m, s"
            }
            Reason::InvalidRecipient => {
                "a `generatePassword.deliverTo` recipient cannot be encrypted to: an `ageRecipients` entry (unparseable, an RSA key under 2048 bits, a key kind age cannot use, a duplicate; named by index) or the `pgpPublicKey` (unparseable, revoked, expired, no live encryption subkey; named by fingerprint). Nothing was sent to IAM: fix the key"
            }
            Reason::Removed => {
                "RootLoginProfile `state: Absent`: root had a login profile (someone used password recovery); the operator deleted it (an Event says when it had been created)"
            }
            Reason::RootAccessNotAllowed => {
                "RootLoginProfile: the IAMAccount in `managementAccountRef` does not exist or lacks `allowRootAccess: true` (a cluster admin sets it on the management account's IAMAccount only); no AWS call was made"
            }
            Reason::RootCredentialsManagementDisabled => {
                "RootLoginProfile: the organization has no centralized root access: enable trusted access for IAM and root credentials management in the management account (docs/root.md: `aws iam enable-organizations-root-credentials-management`); rechecked every resync"
            }
            Reason::NotManagementAccount => {
                "RootLoginProfile: the IAMAccount's credentials are neither the organization's management account nor a delegated administrator for IAM (`aws organizations register-delegated-administrator --service-principal iam.amazonaws.com`)"
            }
            Reason::NotAMember => {
                "RootLoginProfile: `accountId` is the organization's management account, whose root AssumeRoot cannot act on: name a member account"
            }
            Reason::AssumeRootDenied => {
                "RootLoginProfile: STS refused AssumeRoot: the account is not a member of the organization, or an SCP or the IAMAccount's own policy denies `sts:AssumeRoot` with the task policy the message names (docs/root.md has the policy); rechecked every resync"
            }
            Reason::AccountClaimed => {
                "RootLoginProfile: an older RootLoginProfile manages this account's root; this one takes over once that one is deleted"
            }
            Reason::AccountNotReady => {
                "the IAMAccount's credentials are not verified yet (`kubectl describe iamaccount`: `AssumeRoleFailed` says why); retried"
            }
            Reason::AssumeRoleFailed => {
                "IAMAccount: STS refused the role or the credentials failed; fix the trust policy (docs/troubleshooting.md); retried every 30 s"
            }
            Reason::InUse => "IAMAccount being deleted: kept while LoginProfiles name it",
            Reason::KubernetesError => {
                "the Kubernetes API failed reading or creating the Secret; retried with backoff"
            }
            Reason::UserNotFound => "create the IAM user; retried with backoff",
            Reason::DeletionPaced => {
                "the mass-deletion guard: more login profiles of this AWS account were deleted within `--deletion-window` than `--deletion-limit` allows; this one is deleted when the window allows, or at once if a cluster admin sets the IAMAccount's `allowDeletionsUntil` (docs/troubleshooting.md)"
            }
            Reason::Throttled => "IAM throttled the call; retried with backoff and jitter",
            Reason::LimitExceeded => "an IAM limit was hit; retried with backoff",
            Reason::TemporarilyUnmodifiable => {
                "IAM cannot change the login profile right now (it was just changed); retried"
            }
            Reason::ServiceFailure => "IAM failed; retried with backoff",
            Reason::IamError => "another IAM error (the message has it); retried with backoff",
            Reason::SecretsManagerError => "Secrets Manager failed; retried with backoff",
            Reason::Deleting => {
                "an Event while the finalizer deletes (or keeps) the IAM login profile"
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UpToDate => "UpToDate",
            Reason::Created => "Created",
            Reason::Updated => "Updated",
            Reason::Adopted => "Adopted",
            Reason::Recognized => "Recognized",
            Reason::HandedOver => "HandedOver",
            Reason::OwnedElsewhere => "OwnedElsewhere",
            Reason::Verified => "Verified",
            Reason::NotAdmitted => "NotAdmitted",
            Reason::UserClaimed => "UserClaimed",
            Reason::AccountChanged => "AccountChanged",
            Reason::ConsoleDisabled => "ConsoleDisabled",
            Reason::InvalidGovernance => "InvalidGovernance",
            Reason::InvalidRecipient => "InvalidRecipient",
            Reason::Removed => "Removed",
            Reason::RootAccessNotAllowed => "RootAccessNotAllowed",
            Reason::RootCredentialsManagementDisabled => "RootCredentialsManagementDisabled",
            Reason::NotManagementAccount => "NotManagementAccount",
            Reason::NotAMember => "NotAMember",
            Reason::AssumeRootDenied => "AssumeRootDenied",
            Reason::AccountClaimed => "AccountClaimed",
            Reason::AccountNotReady => "AccountNotReady",
            Reason::AssumeRoleFailed => "AssumeRoleFailed",
            Reason::InUse => "InUse",
            Reason::UpdateHeldBack => "UpdateHeldBack",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::SecretKeyNotFound => "SecretKeyNotFound",
            Reason::InvalidPassword => "InvalidPassword",
            Reason::PasswordPolicyViolation => "PasswordPolicyViolation",
            Reason::LoginProfileExists => "LoginProfileExists",
            Reason::AccessDenied => "AccessDenied",
            Reason::SecretsManagerNotFound => "SecretsManagerNotFound",
            Reason::SecretsManagerAccessDenied => "SecretsManagerAccessDenied",
            Reason::SecretsManagerDecryptionFailure => "SecretsManagerDecryptionFailure",
            Reason::SecretsManagerJsonKeyNotFound => "SecretsManagerJsonKeyNotFound",
            Reason::SecretsManagerNotJson => "SecretsManagerNotJson",
            Reason::SecretsManagerError => "SecretsManagerError",
            Reason::InvalidUserName => "InvalidUserName",
            Reason::SecretAccessDenied => "SecretAccessDenied",
            Reason::KubernetesError => "KubernetesError",
            Reason::UserNotFound => "UserNotFound",
            Reason::DeletionPaced => "DeletionPaced",
            Reason::Throttled => "Throttled",
            Reason::LimitExceeded => "LimitExceeded",
            Reason::TemporarilyUnmodifiable => "TemporarilyUnmodifiable",
            Reason::ServiceFailure => "ServiceFailure",
            Reason::IamError => "IamError",
            Reason::Deleting => "Deleting",
        }
    }

    /// Terminal failures set Stalled and wait for a change of the
    /// LoginProfile or its Secret (or, for AccessDenied, of the AWS account,
    /// which the operator rechecks slowly). The others retry with backoff.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Reason::SecretNotFound
                | Reason::SecretKeyNotFound
                | Reason::InvalidPassword
                | Reason::InvalidUserName
                | Reason::SecretAccessDenied
                | Reason::NotAdmitted
                | Reason::UserClaimed
                | Reason::OwnedElsewhere
                | Reason::AccountChanged
                | Reason::ConsoleDisabled
                | Reason::InvalidGovernance
                | Reason::InvalidRecipient
                | Reason::RootAccessNotAllowed
                | Reason::RootCredentialsManagementDisabled
                | Reason::NotManagementAccount
                | Reason::NotAMember
                | Reason::AssumeRootDenied
                | Reason::AccountClaimed
                | Reason::PasswordPolicyViolation
                | Reason::LoginProfileExists
                | Reason::AccessDenied
                | Reason::SecretsManagerNotFound
                | Reason::SecretsManagerAccessDenied
                | Reason::SecretsManagerDecryptionFailure
                | Reason::SecretsManagerJsonKeyNotFound
                | Reason::SecretsManagerNotJson
        )
    }

    pub fn is_ready(self) -> bool {
        matches!(
            self,
            Reason::UpToDate
                | Reason::Created
                | Reason::Updated
                | Reason::Adopted
                | Reason::Recognized
                | Reason::HandedOver
                | Reason::Verified
                | Reason::UpdateHeldBack
                | Reason::Removed
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
