//! The observe step: the password source (a Kubernetes Secret, generated if
//! asked, or AWS Secrets Manager) and, for `Enforce`, the credential report.

use super::*;

/// The password the spec asks for, as far as it had to be read.
pub(super) struct Desired {
    pub(super) fingerprint: String,
    /// `None` when the source's version is the one already applied, so the
    /// (billed) value was not fetched; fetched later only if a plan needs it.
    pub(super) password: Option<Password>,
    pub(super) version: SourceVersion,
}

/// Which version of the source the password is.
#[derive(Clone)]
pub(super) enum SourceVersion {
    Secret(Option<String>),
    SecretsManager(String),
}

impl SourceVersion {
    pub(super) fn text(&self) -> Option<String> {
        match self {
            SourceVersion::Secret(rv) => rv.clone(),
            SourceVersion::SecretsManager(id) => Some(id.clone()),
        }
    }
}

/// Reads the password source named by the spec (generating the Secret when
/// asked to). A Secrets Manager secret whose version was already applied is
/// not fetched: its fingerprint is the one in status.
pub(super) async fn observe_source<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    user: &str,
) -> Result<Result<Desired, SourceProblem>, Error> {
    let spec = &lp.spec;
    if let Some(reference) = &spec.password_secret_ref {
        let mut sourced = source::read(&ctx.client, lp, reference)
            .await
            .map_err(Error::Kube)?;
        if let (Err(problem), Some(generate)) = (&sourced, &spec.generate_password)
            && problem.reason == Reason::SecretNotFound
        {
            sourced = generate_secret(lp, ctx, user, reference, generate.length).await?;
        }
        return Ok(sourced.map(|s| Desired {
            fingerprint: ctx.fingerprinter.fingerprint(user, &s.password),
            password: Some(s.password),
            version: SourceVersion::Secret(s.resource_version),
        }));
    }
    let Some(reference) = &spec.password_secrets_manager_ref else {
        return Ok(Err(SourceProblem {
            reason: Reason::SecretNotFound,
            message: "set spec.passwordSecretRef or spec.passwordSecretsManagerRef".into(),
        }));
    };
    let version = match ctx.secrets_manager.current_version(reference).await {
        Ok(version) => version,
        Err(error) => return Ok(Err(error.problem(reference))),
    };
    let status = lp.status.as_ref();
    if let (Some(applied), Some(fingerprint)) = (
        status.and_then(|s| s.secrets_manager_version_id.as_ref()),
        status.and_then(|s| s.password_fingerprint.as_ref()),
    ) && *applied == version
    {
        return Ok(Ok(Desired {
            fingerprint: fingerprint.clone(),
            password: None,
            version: SourceVersion::SecretsManager(version),
        }));
    }
    fetch_secrets_manager(lp, ctx, user).await
}

/// GetSecretValue for a LoginProfile whose source is Secrets Manager.
pub(super) async fn fetch_secrets_manager<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    user: &str,
) -> Result<Result<Desired, SourceProblem>, Error> {
    let Some(reference) = &lp.spec.password_secrets_manager_ref else {
        unreachable!("only a Secrets Manager source is fetched lazily");
    };
    Ok(match ctx.secrets_manager.password(reference).await {
        Ok(Ok((password, version))) => Ok(Desired {
            fingerprint: ctx.fingerprinter.fingerprint(user, &password),
            password: Some(password),
            version: SourceVersion::SecretsManager(version),
        }),
        Ok(Err(problem)) => Err(problem),
        Err(error) => Err(error.problem(reference)),
    })
}

/// `Enforce` only: whether IAM's credential report shows a password change
/// after the operator's last one.
pub(super) async fn enforce_check<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    user: &str,
    observed: Option<&IamProfile>,
) -> Result<bool, IamError> {
    let applied_at = lp
        .status
        .as_ref()
        .and_then(|s| s.password_last_applied_time.as_deref())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let (PasswordUpdatePolicy::Enforce, Some(_), Some(applied_at)) =
        (lp.spec.password_update_policy, observed, applied_at)
    else {
        return Ok(false);
    };
    let changed = ctx.account.password_last_changed(&ctx.iam, user).await?;
    Ok(changed.is_some_and(|changed| changed > applied_at))
}

/// Creates the missing Secret with a random password that meets the account
/// policy (`spec.generatePassword`), and returns it as the source.
pub(super) async fn generate_secret<I: Iam>(
    lp: &LoginProfile,
    ctx: &Context<I>,
    user: &str,
    reference: &crate::crd::SecretKeyRef,
    length: u32,
) -> Result<Result<source::SourcedPassword, SourceProblem>, Error> {
    let policy = match ctx.account.password_policy(&ctx.iam).await {
        Ok(policy) => policy,
        Err(error) => {
            tracing::warn!(%error, "could not read the account password policy; generating for AWS's default rules");
            crate::policy::PasswordPolicy::AwsDefault
        }
    };
    let password =
        crate::policy::generate(length as usize, &policy).map_err(|e| Error::Transient {
            reason: Reason::IamError,
            message: format!("the operating system's random number generator failed: {e}"),
        })?;
    let created = source::create_generated(&ctx.client, lp, reference, &password)
        .await
        .map_err(Error::Kube)?;
    if created {
        let note = format!(
            "generated a password for IAM user {user:?} into Secret {:?}",
            reference.name
        );
        note_event(lp, ctx, EventType::Normal, "PasswordGenerated", note).await;
    }
    // Read it back, so a Secret another writer made first wins.
    source::read(&ctx.client, lp, reference)
        .await
        .map_err(Error::Kube)
}
