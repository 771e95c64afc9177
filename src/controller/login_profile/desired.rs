//! The password the spec asks for, as observe hands it forward to decide,
//! act and report ([`Desired`], [`SourceVersion`]), and a new one made to
//! the account's password policy, for the sources that generate one.

use crate::api::login_profile::EncryptedPassword;
use crate::api::login_profile::LoginProfile;
use crate::api::login_profile::LoginProfileStatus;
use crate::api::reason::Reason;
use crate::aws::iam::Iam;
use crate::controller::runtime::context::InAccount;
use crate::rules::password::Password;
use crate::rules::password::Verdict;
use crate::rules::plan::Applied;
use crate::rules::plan::SourceProblem;

/// The password the spec asks for, as far as it had to be read.
pub(super) struct Desired {
    /// Under the current fingerprint key.
    pub(super) fingerprint: String,
    /// `None` when the source's version is the one already applied, so the
    /// (billed) value was not fetched; fetched later only if a plan needs it.
    pub(super) password: Option<Password>,
    pub(super) version: SourceVersion,
    /// How it compares with the password status records as applied.
    pub(super) applied: Applied,
    /// A newly issued delivered password's ciphertext, for status once IAM
    /// accepted the password.
    pub(super) delivery: Option<EncryptedPassword>,
    /// The Secret this reconcile generated the password into, for the
    /// report step's Event.
    pub(super) generated_into: Option<String>,
}

impl Desired {
    pub(super) fn new(
        lp: &LoginProfile,
        ctx: &InAccount<'_, impl Iam>,
        user: &str,
        password: Password,
        version: SourceVersion,
    ) -> Self {
        Self {
            fingerprint: ctx.fingerprinter.fingerprint(user, &password),
            password: Some(password),
            version,
            applied: Applied::Nothing,
            delivery: None,
            generated_into: None,
        }
        .compared_with(lp, ctx, user)
    }

    /// Compares with what `lp`'s status records. A fingerprint under a key
    /// the operator no longer holds never causes a write by itself: if the
    /// source's version is the one status recorded, it is the same password
    /// (and status gets a fingerprint under the current key).
    pub(super) fn compared_with(
        mut self,
        lp: &LoginProfile,
        ctx: &InAccount<'_, impl Iam>,
        user: &str,
    ) -> Self {
        let status = lp.status.as_ref();
        self.applied = match status.and_then(|s| s.password_fingerprint.as_deref()) {
            None => Applied::Nothing,
            Some(recorded) => match self.verdict_of(recorded, ctx, user) {
                Verdict::Same => Applied::Same,
                Verdict::Different => Applied::Different,
                Verdict::UnknownKey if self.version.recorded_in(status) => Applied::Same,
                Verdict::UnknownKey => Applied::Different,
            },
        };
        self
    }

    /// How a recorded fingerprint compares with this password.
    pub(super) fn verdict_of(
        &self,
        recorded: &str,
        ctx: &InAccount<'_, impl Iam>,
        user: &str,
    ) -> Verdict {
        match &self.password {
            Some(password) => ctx.fingerprinter.verify(recorded, user, password),
            // Not fetched because its version is the applied one.
            None if recorded == self.fingerprint => Verdict::Same,
            None => Verdict::Different,
        }
    }
}

/// Which version of the source the password is.
#[derive(Clone)]
pub(super) enum SourceVersion {
    Secret(Option<String>),
    SecretsManager(String),
    /// Generated for `deliverTo`: no version outside status.
    Delivered,
}

impl SourceVersion {
    /// Whether status recorded this version as the one applied.
    fn recorded_in(&self, status: Option<&LoginProfileStatus>) -> bool {
        match self {
            SourceVersion::Secret(rv) => {
                rv.is_some()
                    && status.and_then(|s| s.secret_resource_version.as_ref()) == rv.as_ref()
            }
            SourceVersion::SecretsManager(id) => {
                status.and_then(|s| s.secrets_manager_version_id.as_ref()) == Some(id)
            }
            SourceVersion::Delivered => false,
        }
    }

    pub(super) fn text(&self) -> Option<String> {
        match self {
            SourceVersion::Secret(rv) => rv.clone(),
            SourceVersion::SecretsManager(id) => Some(id.clone()),
            SourceVersion::Delivered => None,
        }
    }
}

/// A random password of `length` characters that meets the account
/// password policy (AWS's default rules when the policy cannot be read).
pub(super) async fn generated_password<I: Iam>(
    ctx: &InAccount<'_, I>,
    length: u32,
) -> Result<Password, SourceProblem> {
    let policy = match ctx.account.facts.password_policy(&ctx.account.iam).await {
        Ok(policy) => policy,
        Err(error) => {
            tracing::warn!(%error, "could not read the account password policy; generating for AWS's default rules");
            crate::rules::password_policy::PasswordPolicy::AwsDefault
        }
    };
    crate::rules::password_policy::generate(length as usize, &policy).map_err(|e| SourceProblem {
        reason: Reason::IamError,
        message: format!("the operating system's random number generator failed: {e}"),
    })
}
