//! The writes the govern step asks for: a login profile deleted because a
//! rule with `DisableConsole` applies, and a generated password replaced in
//! its Secret `generatePassword.rotateBefore` ahead of its expiry.

use crate::api::conditions::Outcome;
use crate::api::login_profile::LoginProfile;
use crate::aws::iam::{Iam, IamError};
use crate::controller::login_profile::desired::Desired;
use crate::controller::login_profile::secret_source;
use crate::controller::runtime::context::InAccount;
use crate::rules::password_policy::{self, PasswordPolicy};

/// DeleteLoginProfile: console access off by a rule.
pub(in crate::controller::login_profile) async fn disable_console<I: Iam>(
    ctx: &InAccount<'_, I>,
    user: &str,
) -> Result<(), Outcome> {
    ctx.may_write()?;
    match ctx.account.iam.delete_login_profile(user).await {
        // Gone already (deleted out of band while the object was parked).
        Ok(()) | Err(IamError::NoSuchEntity(_)) => Ok(()),
        Err(error) => Err(error.outcome(user, None)),
    }
}

/// A new generated password in the Secret, meeting `policy`. Only a Secret
/// the operator generated is touched; the next reconcile sends it (one
/// UpdateLoginProfile) as any new password. Returns the Event's note when
/// it was replaced.
pub(in crate::controller::login_profile) async fn replace_generated<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    policy: &PasswordPolicy,
    desired: &Desired,
) -> Option<String> {
    let (Some(reference), Some(generate), Some(version)) = (
        lp.spec.password_secret_ref.as_ref(),
        lp.spec.generate_password.as_ref(),
        desired.version.text(),
    ) else {
        return None;
    };
    let password = password_policy::generate(generate.length as usize, policy).ok()?;
    match secret_source::replace_generated(&ctx.client, lp, reference, &password, &version).await {
        Ok(true) => Some(format!(
            "replaced the generated password of IAM user {user:?} in Secret {:?} ahead of its expiry (generatePassword.rotateBefore {})",
            reference.name, generate.rotate_before
        )),
        Ok(false) => None,
        Err(error) => {
            tracing::warn!(%error, "could not replace the generated password before it expires");
            None
        }
    }
}
