//! The `LoginProfile` resource: its spec, its status and the CRD generated
//! from them. Pure types, no I/O; every doc comment here becomes
//! `kubectl explain` text.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};

use crate::api::conditions;
use crate::api::governance::{ConsoleStatus, Governance};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of every resource this operator serves.
pub const GROUP: &str = "iam.loginprofile.dev";
/// The finalizer that deletes the IAM login profile before the resource goes.
pub const FINALIZER: &str = "iam.loginprofile.dev/cleanup";
/// The Secret key read when `passwordSecretRef.key` is not given.
pub const DEFAULT_SECRET_KEY: &str = "password";
/// A console password (IAM login profile) for one IAM user, taken from a Secret.
///
/// The operator creates the login profile (`aws iam create-login-profile`),
/// sets the password again whenever the Secret's value changes, recreates the
/// profile if it is deleted outside the operator, and deletes it when this
/// resource is deleted (unless `deletionPolicy: Retain`).
// Each printcolumn(...) repeats the same keys, which clippy takes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "iam.loginprofile.dev",
    version = "v1alpha1",
    kind = "LoginProfile",
    plural = "loginprofiles",
    shortname = "lp",
    category = "aws",
    category = "iam",
    namespaced,
    status = "LoginProfileStatus",
    doc = "A console password (IAM login profile) for one IAM user, taken from a Secret.",
    printcolumn(name = "User", type_ = "string", json_path = ".status.userName"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = 1
    ),
    printcolumn(
        name = "Reset",
        type_ = "boolean",
        json_path = ".status.passwordResetRequired"
    ),
    printcolumn(name = "Created", type_ = "date", json_path = ".status.createDate"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(
    "has(self.userName) == has(oldSelf.userName) && (!has(self.userName) || self.userName == oldSelf.userName)"
).field_path(".userName").reason(kube::core::Reason::FieldValueForbidden).message("userName is immutable: to manage another IAM user, create a new LoginProfile and delete this one"))]
#[x_kube(validation = Rule::new(
    "has(self.accountRef) == has(oldSelf.accountRef) && (!has(self.accountRef) || self.accountRef.name == oldSelf.accountRef.name)"
).field_path(".accountRef").reason(kube::core::Reason::FieldValueForbidden).message("accountRef is immutable: a LoginProfile never moves its login profile to another account; create a new LoginProfile and delete this one"))]
#[x_kube(validation = Rule::new(
    "(has(self.passwordSecretRef) ? 1 : 0) + (has(self.passwordSecretsManagerRef) ? 1 : 0) + (has(self.generatePassword) && has(self.generatePassword.deliverTo) ? 1 : 0) == 1"
).field_path(".passwordSecretRef").reason(kube::core::Reason::FieldValueRequired).message("set exactly one password source: passwordSecretRef (a Kubernetes Secret), passwordSecretsManagerRef (an AWS Secrets Manager secret) or generatePassword.deliverTo (generated, delivered encrypted)"))]
#[x_kube(validation = Rule::new(
    "!has(self.generatePassword) || has(self.passwordSecretRef) || has(self.generatePassword.deliverTo)"
).field_path(".generatePassword").reason(kube::core::Reason::FieldValueForbidden).message("generatePassword needs passwordSecretRef (generate into a Secret) or generatePassword.deliverTo (deliver encrypted, no Secret)"))]
#[x_kube(validation = Rule::new(
    "!(has(self.generatePassword) && has(self.generatePassword.deliverTo) && has(self.passwordUpdatePolicy) && self.passwordUpdatePolicy != 'OnSecretChange')"
).field_path(".passwordUpdatePolicy").reason(kube::core::Reason::FieldValueForbidden).message("generatePassword.deliverTo goes only with passwordUpdatePolicy: OnSecretChange: a delivered password is set once per issue and never enforced over the person's own"))]
#[x_kube(validation = Rule::new(
    "!(has(self.passwordUpdatePolicy) && self.passwordUpdatePolicy == 'Enforce' && has(self.passwordResetRequired) && self.passwordResetRequired)"
).field_path(".passwordResetRequired").reason(kube::core::Reason::FieldValueForbidden).message("passwordUpdatePolicy: Enforce cannot go with passwordResetRequired: true: Enforce would undo the new password the user is required to choose at first sign-in"))]
#[serde(rename_all = "camelCase")]
pub struct LoginProfileSpec {
    /// The IAM user whose console password this is. Defaults to the
    /// LoginProfile's name. 1 to 64 characters of letters, digits and
    /// `_+=,.@-`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[\w+=,.@-]+$"))]
    pub user_name: Option<String>,

    /// The Secret, in the same namespace, that holds the password. Exactly
    /// one password source is set: passwordSecretRef,
    /// passwordSecretsManagerRef or generatePassword.deliverTo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,

    /// An AWS Secrets Manager secret that holds the password. Exactly one
    /// password source is set: passwordSecretRef, passwordSecretsManagerRef
    /// or generatePassword.deliverTo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secrets_manager_ref: Option<Box<SecretsManagerRef>>,

    /// Whether the user must choose a new password at the next sign-in. Sent
    /// with every password the operator sets; changing only this field sends
    /// only the flag. IAM clearing it after the user's own change is expected,
    /// not drift. Defaults to false, and to true with
    /// `generatePassword.deliverTo` (the person replaces the delivered
    /// password at first sign-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_reset_required: Option<bool>,

    /// When the operator sets the password: `OnSecretChange` (default) at
    /// creation and whenever the Secret's value changes, never undoing a
    /// change the user made in the console; `Enforce` also re-applies the
    /// Secret's password when IAM's credential report shows it was changed
    /// outside the operator; `CreateOnly` sets it once and only reports
    /// later Secret changes.
    #[serde(default)]
    pub password_update_policy: PasswordUpdatePolicy,

    /// Generate a random password that meets the account password policy:
    /// into the referenced Secret when it does not exist, or, with
    /// `deliverTo`, in the operator's memory only, delivered encrypted in
    /// `status.encryptedPassword`. A password that exists is never
    /// regenerated, except to replace a generated one `rotateBefore` its
    /// expiry under the policy's MaxPasswordAge (and, with `deliverTo`, when
    /// the recipients or `reissue` change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_password: Option<Box<GeneratePassword>>,

    /// What deleting this resource does to the IAM login profile (see
    /// DeletionPolicy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// What to do when the IAM user already has a login profile this resource
    /// did not create: `Fail` (default) reports `LoginProfileExists` and leaves
    /// it alone; `Adopt` takes it over by setting the Secret's password;
    /// `AdoptKeepingPassword` takes it over keeping its password until the
    /// source changes.
    #[serde(default)]
    pub adoption_policy: AdoptionPolicy,

    /// The IAMAccount (cluster-scoped, written by cluster admins) that says
    /// which AWS account this login profile lives in, and whether this
    /// namespace and this IAM user are admitted there. Defaults to the
    /// IAMAccount named `default`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_ref: Option<AccountRef>,

    /// Console-access governance (docs/governance.md): report the person's
    /// MFA, last sign-in and password expiry in `status.console`, and
    /// optionally disable console access that breaks a rule. The
    /// IAMAccount's `governance` is a floor: the stricter rule applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governance: Option<Box<Governance>>,
}

/// A reference to an IAMAccount by name.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AccountRef {
    /// The IAMAccount's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A key of a Secret in the LoginProfile's own namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name (same namespace as the LoginProfile).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key within the Secret's data. Defaults to `password`.
    #[serde(default = "default_secret_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// A secret in AWS Secrets Manager, in the operator's AWS account and region.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretsManagerRef {
    /// The secret's name or ARN.
    #[schemars(length(min = 1, max = 2048))]
    pub secret_id: String,
    /// When the SecretString is JSON: the key that holds the password.
    /// Without it the whole SecretString is the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub json_key: Option<String>,
    /// The version stage to read. Defaults to AWSCURRENT.
    #[serde(default = "default_version_stage")]
    #[schemars(length(min = 1, max = 256))]
    pub version_stage: String,
}

fn default_version_stage() -> String {
    "AWSCURRENT".to_string()
}

fn default_secret_key() -> String {
    DEFAULT_SECRET_KEY.to_string()
}

/// When the operator sends the Secret's password to IAM.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PasswordUpdatePolicy {
    /// At creation and whenever the Secret's value changes.
    #[default]
    OnSecretChange,
    /// Also whenever the password was changed outside the operator.
    Enforce,
    /// Only at creation; later Secret changes are reported, not applied.
    CreateOnly,
}

/// How to generate a password when the referenced Secret does not exist.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GeneratePassword {
    /// Characters, 8 to 128 (raised to the account policy's minimum if that is higher).
    #[serde(default = "default_generated_length")]
    #[schemars(range(min = 8, max = 128))]
    pub length: u32,
    /// A generated password is replaced (one UpdateLoginProfile) this long
    /// before it expires under the account policy's MaxPasswordAge, so it
    /// never expires. Default 7d. Needs the credential report, which a
    /// policy with MaxPasswordAge turns on for generated passwords.
    #[serde(default = "default_rotate_before")]
    #[schemars(length(max = 6), regex(pattern = r"^[0-9]{1,5}[dhms]$"))]
    pub rotate_before: String,
    /// Deliver the password encrypted to these recipients
    /// (`status.encryptedPassword`) instead of keeping it in a Secret: no
    /// Secret and no log ever holds it. Exclusive with passwordSecretRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_to: Option<DeliverTo>,
    /// With `deliverTo`: any string; a change issues a new password (one
    /// UpdateLoginProfile) encrypted to the recipients, e.g. when the person
    /// lost the first one. GitOps-friendly: a commit, not a command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub reissue: Option<String>,
}

/// Who can open a generated password: any one of them decrypts it with
/// their private key (`age -d -i key`, `gpg -d`). At least one recipient.
/// A change issues a new password for the new recipients; the old
/// ciphertext then opens to a password IAM no longer holds.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "(has(self.ageRecipients) && size(self.ageRecipients) > 0) || has(self.pgpPublicKey)"
).reason(kube::core::Reason::FieldValueRequired).message("deliverTo needs at least one recipient: ageRecipients or pgpPublicKey"))]
pub struct DeliverTo {
    /// Up to 10 public keys, all in one age file (`status.encryptedPassword.age`):
    /// age X25519 (`age1…`, from `age-keygen`), or OpenSSH `ssh-ed25519` /
    /// `ssh-rsa` (2048 to 4096 bits) lines as in `~/.ssh/id_ed25519.pub`;
    /// at most 1024 characters each (an ssh-rsa 4096-bit line is about 750).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(length(min = 1, max = 1024)))]
    pub age_recipients: Vec<String>,
    /// An ASCII-armored OpenPGP public key with a live encryption subkey,
    /// exported without third-party signatures (`gpg --armor --export
    /// --export-options export-minimal KEYID`: about 3 KB for RSA 4096, under
    /// 1 KB for Curve25519), at most 16384 characters; the password goes to
    /// `status.encryptedPassword.pgp` for `gpg -d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16384))]
    pub pgp_public_key: Option<String>,
}

/// The ownership record in IAM (tags on the user) this operator last wrote
/// or found, so that
/// an unchanged one is never written again.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RecordedOwner {
    /// The cluster id the record names.
    #[schemars(length(max = 256))]
    pub cluster_id: String,
    /// The password fingerprint it carries.
    #[schemars(length(max = 256))]
    pub password_fingerprint: String,
    /// The CreateDate of the profile it speaks of.
    #[schemars(length(max = 256))]
    pub profile_created: String,
}

/// A generated password, encrypted to `generatePassword.deliverTo`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EncryptedPassword {
    /// The password as an ASCII-armored age file, for `ageRecipients`:
    /// `kubectl get lp NAME -o jsonpath='{.status.encryptedPassword.age}' |
    /// age -d -i KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub age: Option<String>,
    /// The password as an ASCII-armored OpenPGP message, for
    /// `pgpPublicKey`: `kubectl get lp NAME -o
    /// jsonpath='{.status.encryptedPassword.pgp}' | gpg -d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub pgp: Option<String>,
    /// The recipients it is encrypted to: an age key as itself, an SSH key
    /// as `ssh-keygen -l` prints it (`ssh-ed25519 SHA256:…`), an OpenPGP key
    /// as `openpgp <fingerprint>`.
    #[schemars(length(max = 11), inner(length(max = 128)))]
    pub recipients: Vec<String>,
    /// When the operator generated it.
    #[schemars(extend("format" = "date-time"))]
    pub generated_at: String,
    /// The keyed fingerprint of the password it encrypts
    /// (`status.passwordFingerprint` while IAM holds it).
    #[schemars(length(max = 256))]
    pub password_fingerprint: String,
    /// The `generatePassword.reissue` it was issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub reissue: Option<String>,
}

fn default_rotate_before() -> String {
    "7d".into()
}

fn default_generated_length() -> u32 {
    24
}

/// What happens to the IAM login profile when this resource is deleted:
/// `Delete` removes it, `Retain` keeps it. Unset: the operator's
/// `--default-deletion-policy` when the resource is deleted (the chart's
/// `operator.defaultDeletionPolicy`, `Delete` unless the admin chose
/// `Retain`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Delete the IAM login profile (the user can no longer sign in to the console).
    #[default]
    Delete,
    /// Keep the IAM login profile and its password.
    Retain,
}

/// What to do with a login profile that exists before this resource set one.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AdoptionPolicy {
    /// Report `LoginProfileExists` and leave the existing profile untouched.
    #[default]
    Fail,
    /// Take the existing profile over by setting the Secret's password.
    Adopt,
    /// Take the existing profile over and keep the password it has (a
    /// migration: people keep their passwords); the source's password is
    /// sent at the source's next change.
    AdoptKeepingPassword,
}

impl AdoptionPolicy {
    /// Whether it takes over a profile this resource did not create.
    pub fn adopts(self) -> bool {
        self != AdoptionPolicy::Fail
    }
}

/// What the operator last observed and did. Follows the kstatus conventions,
/// so Argo CD and Flux judge health from the conditions.
// The API server fills in `{observedGeneration: -1}` until the operator
// writes: kstatus (Flux) and our Argo CD health check then read a LoginProfile
// nobody has acted on as in progress, never as healthy, without an early
// status write (Flux's own CRDs do the same).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": conditions::NOT_OBSERVED}))]
pub struct LoginProfileStatus {
    /// The `metadata.generation` the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The IAM user this resource manages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub user_name: Option<String>,
    /// The AWS account the login profile lives in. Once recorded, the
    /// operator acts only in this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 12))]
    pub account_id: Option<String>,
    /// When IAM created the login profile (IAM's CreateDate). Changes only if
    /// the profile is deleted and created again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub create_date: Option<String>,
    /// Whether the user must change the password at the next sign-in, as IAM
    /// last reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_reset_required: Option<bool>,
    /// The `passwordResetRequired` value the operator last sent to IAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_password_reset_required: Option<bool>,
    /// When the operator last sent a password to IAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub password_last_applied_time: Option<String>,
    /// A keyed fingerprint (HMAC-SHA256 under a key only the operator holds)
    /// of the password last sent to IAM. It tells whether the Secret changed;
    /// it cannot be used to guess the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub password_fingerprint: Option<String>,
    /// When the password was changed outside the operator (by the user at
    /// sign-in or later, or by another tool): the time of the user's own
    /// ChangePassword where IAM's events report it (docs/events.md), else
    /// when the operator learned of the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub password_changed_out_of_band: Option<String>,
    /// A password change that `passwordUpdatePolicy: CreateOnly` did not
    /// apply: the Secret's resourceVersion or the Secrets Manager VersionId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub held_back_source_version: Option<String>,
    /// The Secrets Manager VersionId whose password was last sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub secrets_manager_version_id: Option<String>,
    /// The Secret's resourceVersion when its password was last sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub secret_resource_version: Option<String>,
    /// Every IAM write this operator started up to this time (its own
    /// clock) has a known outcome: the crash-safety marks in this object's
    /// annotations written until then vouch for nothing (docs/reliability.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub writes_settled_through: Option<String>,
    /// The ownership record on the IAM user (`--cluster-id`): the cluster,
    /// password fingerprint and profile it names, as last written or found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_record: Option<RecordedOwner>,
    /// With `generatePassword.deliverTo`: the password IAM was last given,
    /// encrypted to the recipients. Written only after IAM accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_password: Option<Box<EncryptedPassword>>,
    /// The person behind the login profile, from IAM's credential report:
    /// MFA, last use, expiry (with `spec.governance`, an IAMAccount
    /// `governance` or `--report-console-activity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<Box<ConsoleStatus>>,
    /// `Ready`, `Reconciling` and `Stalled`, as kstatus defines them; with
    /// governance also `MFAActive`, `PasswordUsed` and `PasswordExpiring`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::api::schema::conditions)]
    pub conditions: Vec<Condition>,
}

impl LoginProfileStatus {
    /// IAM's login profile turned out to be someone else's (`LoginProfileExists`):
    /// nothing of it is recorded as this resource's any more (no password
    /// applied, no CreateDate), so no later change or deletion takes it for
    /// this resource's own without looking at IAM again.
    pub fn disown(&mut self) {
        self.create_date = None;
        self.password_reset_required = None;
        self.applied_password_reset_required = None;
        self.password_fingerprint = None;
        self.owner_record = None;
    }
}

impl LoginProfileSpec {
    /// Whether the user must choose a new password at the next sign-in:
    /// `passwordResetRequired`, else true for a delivered password.
    pub fn reset_required(&self) -> bool {
        self.password_reset_required
            .unwrap_or_else(|| self.delivery().is_some())
    }

    /// `generatePassword.deliverTo`, when the password is delivered encrypted.
    pub fn delivery(&self) -> Option<&DeliverTo> {
        self.generate_password.as_ref()?.deliver_to.as_ref()
    }
}

/// An IAM user name as IAM compares names: without case ("you cannot create
/// users named both TESTUSER and testuser", and a call naming either finds
/// the one user). User names are ASCII (`[\w+=,.@-]`), so ASCII folding is
/// exact. Claims, admission and report lookups all compare through it.
pub fn iam_user_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl LoginProfile {
    /// The IAM user name: `spec.userName`, or else the resource's name.
    pub fn user_name(&self) -> String {
        self.spec
            .user_name
            .clone()
            .unwrap_or_else(|| self.metadata.name.clone().unwrap_or_default())
    }

    /// The IAM user it names, as IAM tells users apart (see [`iam_user_key`]).
    pub fn user_key(&self) -> String {
        iam_user_key(&self.user_name())
    }

    /// What deleting this resource does to its login profile: its own
    /// `spec.deletionPolicy`, else the operator's default.
    pub fn deletion_policy(&self, default: DeletionPolicy) -> DeletionPolicy {
        self.spec.deletion_policy.unwrap_or(default)
    }

    /// The IAMAccount this resource names (or `default`).
    pub fn account_name(&self) -> &str {
        self.spec
            .account_ref
            .as_ref()
            .map_or(crate::api::iam_account::DEFAULT_ACCOUNT, |r| {
                r.name.as_str()
            })
    }

    /// Why the IAM user name cannot be valid, if it cannot: IAM allows 1..64
    /// of `[\w+=,.@-]`. The CRD checks `spec.userName`; a name taken from
    /// `metadata.name` is checked here, before any IAM call.
    pub fn user_name_problem(&self) -> Option<String> {
        let name = self.user_name();
        let from = if self.spec.user_name.is_some() {
            "spec.userName"
        } else {
            "the LoginProfile's name (spec.userName is not set)"
        };
        let length = name.chars().count();
        if length == 0 || length > 64 {
            return Some(format!(
                "the IAM user name from {from} is {length} characters long; IAM allows 1 to 64: set spec.userName"
            ));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
        name.chars().position(|c| !allowed(c)).map(|at| {
            format!(
                "the IAM user name from {from} has a character IAM does not allow at position {}; \
                 IAM allows letters, digits and _+=,.@-: set spec.userName",
                at + 1
            )
        })
    }

    /// Whether the operator has written a status for the current generation
    /// at least once (the CRD's default status says -1 until then).
    pub fn observed(&self) -> bool {
        self.status
            .as_ref()
            .and_then(|s| s.observed_generation)
            .is_some_and(|g| g != conditions::NOT_OBSERVED)
    }

    /// The condition of the given type, if the status has one.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn defaults_fill_in_from_a_minimal_spec() {
        let spec: LoginProfileSpec =
            serde_json::from_value(serde_json::json!({"passwordSecretRef": {"name": "s"}}))
                .unwrap();
        assert_eq!(spec.password_secret_ref.as_ref().unwrap().key, "password");
        assert!(!spec.reset_required());
        assert_eq!(spec.deletion_policy, None);
        assert_eq!(spec.adoption_policy, AdoptionPolicy::Fail);
        assert_eq!(spec.user_name, None);
    }

    #[test]
    fn a_delivered_password_must_be_replaced_at_first_sign_in_unless_told_otherwise() {
        let delivered = |extra: serde_json::Value| {
            let mut spec = serde_json::json!({"generatePassword": {"deliverTo": {"ageRecipients": ["age1x"]}}});
            spec.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::from_value::<LoginProfileSpec>(spec).unwrap()
        };
        assert!(delivered(serde_json::json!({})).reset_required());
        assert!(!delivered(serde_json::json!({"passwordResetRequired": false})).reset_required());
        assert!(delivered(serde_json::json!({})).delivery().is_some());
    }

    #[test]
    fn user_names_iam_refuses_are_found_before_any_call() {
        let spec: LoginProfileSpec =
            serde_json::from_value(serde_json::json!({"passwordSecretRef": {"name": "s"}}))
                .unwrap();
        let named = |name: &str| LoginProfile::new(name, spec.clone());
        assert_eq!(named("bob.smith@example.com").user_name_problem(), None);
        assert_eq!(named(&"a".repeat(64)).user_name_problem(), None);
        let long = named(&"a".repeat(70)).user_name_problem().unwrap();
        assert!(
            long.contains("70 characters") && long.contains("set spec.userName"),
            "{long}"
        );
        let odd = named("team/bob").user_name_problem().unwrap();
        assert!(odd.contains("position 5"), "{odd}");
    }

    #[test]
    fn the_crd_defaults_status_to_not_observed() {
        let crd = serde_json::to_value(LoginProfile::crd()).unwrap();
        let status =
            &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"];
        assert_eq!(
            status["default"],
            serde_json::json!({"observedGeneration": -1})
        );
        let defaulted: LoginProfile = serde_json::from_value(serde_json::json!({
            "apiVersion": "iam.loginprofile.dev/v1alpha1", "kind": "LoginProfile",
            "metadata": {"name": "bob"}, "spec": {"passwordSecretRef": {"name": "s"}},
            "status": status["default"],
        }))
        .unwrap();
        assert!(!defaulted.observed());
    }

    #[test]
    fn every_free_text_field_of_the_spec_is_bounded() {
        let crd = serde_json::to_value(LoginProfile::crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        let sm = &spec["passwordSecretsManagerRef"]["properties"];
        assert_eq!(sm["jsonKey"]["maxLength"], 256);
        assert_eq!(sm["secretId"]["maxLength"], 2048);
        assert_eq!(sm["versionStage"]["maxLength"], 256);
        assert_eq!(spec["userName"]["maxLength"], 64);
        assert_eq!(
            spec["passwordSecretRef"]["properties"]["key"]["maxLength"],
            253
        );
    }

    #[test]
    fn user_name_defaults_to_the_resource_name() {
        let spec: LoginProfileSpec =
            serde_json::from_value(serde_json::json!({"passwordSecretRef": {"name": "s"}}))
                .unwrap();
        let lp = LoginProfile::new("bob", spec);
        assert_eq!(lp.user_name(), "bob");
    }

    #[test]
    fn crd_carries_names_columns_and_rules() {
        let crd = serde_json::to_string(&LoginProfile::crd()).unwrap();
        for needle in [
            r#""shortNames":["lp"]"#,
            r#""categories":["aws","iam"]"#,
            r#""name":"Reset""#,
            "userName is immutable",
            r#""pattern":"^[\\w+=,.@-]+$""#,
        ] {
            assert!(crd.contains(needle), "CRD lacks {needle}");
        }
    }
}
