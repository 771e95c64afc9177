//! The closed set of condition reasons, and for each failure whether it is
//! terminal (Stalled: wait for a change) or transient (retry with backoff).

use std::fmt;

/// A condition reason: CamelCase, stable, part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    // Ready=True
    UpToDate,
    Created,
    Updated,
    Adopted,
    /// IAMAccount: its credentials work (STS GetCallerIdentity answered).
    Verified,
    /// CreateOnly kept IAM's password although the Secret changed.
    UpdateHeldBack,
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
    /// The IAMAccount now acts in another AWS account than the profile lives in.
    AccountChanged,
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
    Throttled,
    LimitExceeded,
    TemporarilyUnmodifiable,
    ServiceFailure,
    IamError,
    SecretsManagerError,
    Deleting,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UpToDate => "UpToDate",
            Reason::Created => "Created",
            Reason::Updated => "Updated",
            Reason::Adopted => "Adopted",
            Reason::Verified => "Verified",
            Reason::NotAdmitted => "NotAdmitted",
            Reason::UserClaimed => "UserClaimed",
            Reason::AccountChanged => "AccountChanged",
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
                | Reason::AccountChanged
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
                | Reason::Verified
                | Reason::UpdateHeldBack
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
