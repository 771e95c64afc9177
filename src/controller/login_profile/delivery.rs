//! The password source of `generatePassword.deliverTo`: a password that
//! lives only in the operator's memory until IAM holds it, and in status
//! only as ciphertext for the recipients (src/rules/delivery.rs). The one
//! status records is kept while the recipients and `reissue` are the ones
//! it was issued for and no send since is unconfirmed; otherwise a new one is
//! issued. Never re-encrypted: the old plaintext is gone, and the person may
//! have changed it at sign-in anyway.

use super::desired::Desired;
use super::desired::SourceVersion;
use crate::api::login_profile::EncryptedPassword;
use crate::api::login_profile::LoginProfile;
use crate::api::reason::Reason;
use crate::aws::iam::Iam;
use crate::controller::runtime::context::InAccount;
use crate::controller::runtime::context::now_rfc3339;
use crate::rules::delivery::Delivery;
use crate::rules::plan::Applied;
use crate::rules::plan::SourceProblem;

/// The delivered password as far as this pass needs it: the one status
/// records (not held: only its fingerprint), or a newly issued one.
pub(super) async fn observe_delivered<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
) -> Result<Desired, SourceProblem> {
    let recipients = recipients_of(lp)?;
    let status = lp.status.as_ref();
    let recorded = status.and_then(|s| s.encrypted_password.as_ref());
    if let Some(recorded) = recorded
        && recorded.recipients == recipients.fingerprints()
        && recorded.reissue == reissue_of(lp)
        && status.and_then(|s| s.password_fingerprint.as_deref())
            == Some(recorded.password_fingerprint.as_str())
        // A send whose answer never reached status may have replaced the
        // password this ciphertext opens to.
        && ctx.marks(lp).unconfirmed_sending().is_none()
    {
        return Ok(Desired {
            fingerprint: recorded.password_fingerprint.clone(),
            password: None,
            version: SourceVersion::Delivered,
            applied: Applied::Same,
            delivery: None,
            generated_into: None,
        });
    }
    issue(lp, ctx, user, &recipients).await
}

/// A new password, generated for the account password policy, with its
/// ciphertext for the recipients, ready to send. Status gets the ciphertext
/// only after IAM accepted the password.
pub(super) async fn issue<I: Iam>(
    lp: &LoginProfile,
    ctx: &InAccount<'_, I>,
    user: &str,
    recipients: &Delivery,
) -> Result<Desired, SourceProblem> {
    let length = lp.spec.generate_password.as_ref().map_or(24, |g| g.length);
    let password = super::desired::generated_password(ctx, length).await?;
    let sealed = recipients
        .encrypt(password.expose().as_bytes())
        .map_err(|error| SourceProblem {
            reason: Reason::IamError,
            message: format!("could not encrypt the generated password: {error}"),
        })?;
    let mut desired = Desired::new(lp, ctx, user, password, SourceVersion::Delivered);
    desired.delivery = Some(EncryptedPassword {
        age: sealed.age,
        pgp: sealed.pgp,
        recipients: recipients.fingerprints(),
        generated_at: now_rfc3339(),
        password_fingerprint: desired.fingerprint.clone(),
        reissue: reissue_of(lp),
    });
    Ok(desired)
}

/// The spec's recipients, parsed; an entry that cannot be encrypted to stops
/// everything before any IAM call.
pub(super) fn recipients_of(lp: &LoginProfile) -> Result<Delivery, SourceProblem> {
    let deliver_to = lp.spec.delivery();
    let entries = deliver_to.map_or(&[][..], |d| d.age_recipients.as_slice());
    let pgp = deliver_to.and_then(|d| d.pgp_public_key.as_deref());
    Delivery::parse(entries, pgp, std::time::SystemTime::now()).map_err(|error| SourceProblem {
        reason: Reason::InvalidRecipient,
        message: format!("{error} (nothing was sent to IAM)"),
    })
}

fn reissue_of(lp: &LoginProfile) -> Option<String> {
    lp.spec
        .generate_password
        .as_ref()
        .and_then(|g| g.reissue.clone())
}
