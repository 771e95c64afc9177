//! The RootLoginProfile reconciler: admit (the account is this object's to
//! manage, its IAMAccount allows root access and is verified, the target is
//! not the management account) -> the organization manages root
//! credentials -> audit root in an IAMAuditRootUserCredentials session ->
//! the one write the state calls for, in a session of that write's own task
//! policy -> one status write, and an Event for every change made or
//! refusal met. Deleting the resource changes nothing in AWS
//! (`deletionPolicy: Retain` only), so it carries no finalizer.

use std::{sync::Arc, time::Duration};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{controller::Action, events::EventType, reflector::ObjectRef},
};
use rand::Rng;

use super::runtime::context::{Context, Error, FIELD_MANAGER, now_rfc3339};
use crate::{
    api::conditions::{self, Outcome},
    api::iam_account::IAMAccount,
    api::reason::Reason,
    api::root_login_profile::RootLoginProfile,
    aws::iam::{Iam, IamError},
    aws::root::{AssumeRootRefusal, OrganizationRefusal, RootSession},
    ops::events::Note,
    rules::root::{RootFindings, RootTask, RootWrite, owner, write_for},
};

/// What one reconcile learned and did.
struct Checked {
    found: RootFindings,
    task: RootTask,
    outcome: Outcome,
    /// The Event of a change made, if one was.
    change: Option<String>,
}

/// Keeps one RootLoginProfile's account as declared.
pub(super) async fn reconcile_root<I: Iam>(
    root: Arc<RootLoginProfile>,
    ctx: Arc<Context<I>>,
) -> Result<Action, Error> {
    if root.metadata.deletion_timestamp.is_some() {
        // Retain: nothing to do in AWS, and no finalizer to remove.
        ctx.memory.clear_root_failures(&root.name_any());
        return Ok(Action::await_change());
    }
    let account_id = root.spec.account_id.clone();
    let resync = ctx
        .settings
        .resync_period
        .mul_f64(rand::rng().random_range(0.9..1.1));
    let iam_account = match admitted(&root, &ctx) {
        Ok(iam_account) => iam_account,
        Err(refusal) => return fail(&root, &ctx, refusal, resync).await,
    };
    let connected = ctx.accounts.get(&iam_account).await;
    let budget = ctx.accounts.budget_of(&account_id);
    // A look with nothing changed is a drift check: on the member account's
    // drift budget, stepping aside while changes there are reconciled.
    let _change = if is_settled(&root) {
        if let Err(wait) = budget.drift.take() {
            return Ok(Action::requeue(wait));
        }
        None
    } else {
        Some(budget.drift.change())
    };

    if let Err(refused) = connected
        .root
        .root_credentials_management(ctx.settings.resync_period)
        .await
    {
        let outcome = match refused {
            OrganizationRefusal::NotManagementOrDelegatedAdministrator(message) => Outcome::new(
                Reason::NotManagementAccount,
                format!(
                    "IAMAccount {:?} acts in AWS account {}, which is neither the organization's management account \
                     nor a delegated administrator for IAM; name the IAMAccount of one that is ({message})",
                    iam_account.name_any(),
                    iam_account.verified_account_id().unwrap_or("?"),
                ),
            ),
            OrganizationRefusal::RootCredentialsManagementOff(message) => Outcome::new(
                Reason::RootCredentialsManagementDisabled,
                format!(
                    "centralized root access is not enabled: {message}; in the management account run \
                     `aws organizations enable-aws-service-access --service-principal iam.amazonaws.com` and \
                     `aws iam enable-organizations-root-credentials-management` (docs/root.md)"
                ),
            ),
            OrganizationRefusal::Iam(error) => failed(error, &account_id),
        };
        return fail(&root, &ctx, outcome, resync).await;
    }

    let limiter = budget.limiter.clone();
    let session = |task| connected.root.session(&account_id, task, limiter.clone());
    let checked = match check(&root, session).await {
        Ok(checked) => checked,
        Err(outcome) => return fail(&root, &ctx, outcome, resync).await,
    };
    if let Some(change) = &checked.change {
        publish(
            &root,
            &ctx,
            EventType::Normal,
            checked.outcome.reason,
            change,
        )
        .await;
    }
    write_status(&root, &ctx, Some(&checked), &checked.outcome).await?;
    ctx.memory.clear_root_failures(&root.name_any());
    ctx.metrics.set_root_ready(&root.name_any(), Some(true));
    Ok(Action::requeue(resync))
}

/// Audits root and makes the one write the state calls for, each in its
/// own session.
async fn check<F, S>(root: &RootLoginProfile, session: S) -> Result<Checked, Outcome>
where
    S: Fn(RootTask) -> F,
    F: Future<Output = Result<RootSession, AssumeRootRefusal>>,
{
    let account = &root.spec.account_id;
    let open = |task: RootTask| {
        let made = session(task);
        async move {
            made.await.map_err(|refused| match refused {
                AssumeRootRefusal::Denied(message) => Outcome::new(
                    Reason::AssumeRootDenied,
                    format!(
                        "STS refused AssumeRoot for account {account} with {}: the account is not a member \
                         of the organization, or an SCP or the IAMAccount's policy denies sts:AssumeRoot \
                         for that task policy ({message})",
                        task.policy_name()
                    ),
                ),
                AssumeRootRefusal::Other(error) => failed(error, account),
            })
        }
    };
    let audit = open(RootTask::Audit).await?;
    let mut found = audit.audit().await.map_err(|e| failed(e, account))?;
    let write = write_for(root.spec.state, &found);
    let (outcome, change) = match write {
        RootWrite::Nothing => (
            Outcome::new(
                Reason::UpToDate,
                match &found.login_profile {
                    None => format!("root of account {account} has no console password"),
                    Some(created) => format!(
                        "root of account {account} has a login profile (created {created}): password recovery is possible"
                    ),
                },
            ),
            None,
        ),
        RootWrite::DeleteLoginProfile => {
            let created = found.login_profile.take().unwrap_or_default();
            open(RootTask::DeleteCredentials)
                .await?
                .delete_login_profile()
                .await
                .map_err(|e| failed(e, account))?;
            let message = format!(
                "deleted root's login profile in account {account} (created {created}): root has no console password"
            );
            (
                Outcome::new(Reason::Removed, message.clone()),
                Some(message),
            )
        }
        RootWrite::CreateLoginProfile => {
            let created = open(RootTask::CreatePassword)
                .await?
                .create_login_profile()
                .await
                .map_err(|e| failed(e, account))?;
            let message = format!(
                "created root's login profile in account {account} without a password: root may now set one through password recovery"
            );
            found.login_profile = Some(created);
            (
                Outcome::new(Reason::Created, message.clone()),
                Some(message),
            )
        }
    };
    Ok(Checked {
        found,
        task: write.task(),
        outcome,
        change,
    })
}

/// The outcome of a failed call for `account`'s root (in a root session,
/// or AssumeRoot's and ListOrganizationsFeatures' own failures). Not
/// IamError's own advice: that speaks of IAM users and the LoginProfile
/// policy.
fn failed(error: IamError, account: &str) -> Outcome {
    match error {
        IamError::AccessDenied(message) => Outcome::new(
            Reason::AccessDenied,
            format!(
                "AWS refused a call for account {account}'s root: grant it to the IAMAccount's role (docs/root.md \
                 has the policy), or an SCP denies it ({message})"
            ),
        ),
        // Someone made root's profile between the audit and the write: the
        // next check (soon, with backoff) sees it.
        IamError::EntityAlreadyExists(message) => Outcome::new(
            Reason::IamError,
            format!("root's login profile appeared meanwhile; looking again ({message})"),
        ),
        other => Outcome::new(
            other.reason(),
            format!("for account {account}'s root: {other}; retrying with backoff"),
        ),
    }
}

/// The IAMAccount this object acts through, or why it may not act; from
/// the caches, before any AWS call.
fn admitted<I: Iam>(root: &RootLoginProfile, ctx: &Context<I>) -> Result<Arc<IAMAccount>, Outcome> {
    let account_id = &root.spec.account_id;
    let claimants: Vec<Arc<RootLoginProfile>> = ctx
        .root_profiles
        .get()
        .map(|store| {
            store
                .state()
                .into_iter()
                .filter(|other| {
                    other.spec.account_id == *account_id
                        && other.metadata.deletion_timestamp.is_none()
                })
                .collect()
        })
        .unwrap_or_default();
    let name = root.name_any();
    let manager = owner(claimants.iter().map(|other| {
        (
            other.metadata.name.as_deref().unwrap_or_default(),
            other.metadata.creation_timestamp.as_ref().map(|t| t.0),
        )
    }));
    if let Some(manager) = manager
        && manager != name
    {
        return Err(Outcome::new(
            Reason::AccountClaimed,
            format!(
                "RootLoginProfile {manager:?} manages root of account {account_id}; this one takes over once that one is deleted"
            ),
        ));
    }
    let wanted = root.management_account_name();
    let iam_account = ctx.tenancy.get().and_then(|t| t.account(wanted));
    let Some(iam_account) = iam_account.filter(|a| a.metadata.deletion_timestamp.is_none()) else {
        return Err(Outcome::new(
            Reason::RootAccessNotAllowed,
            format!(
                "IAMAccount {wanted:?} (spec.managementAccountRef) does not exist or is being deleted"
            ),
        ));
    };
    if !iam_account.spec.allow_root_access {
        return Err(Outcome::new(
            Reason::RootAccessNotAllowed,
            format!(
                "IAMAccount {wanted:?} does not allow root access: a cluster admin sets spec.allowRootAccess: true \
                 on the management account's IAMAccount only"
            ),
        ));
    }
    let Some(management) = iam_account.verified_account_id() else {
        let why = iam_account.not_ready_message().unwrap_or_default();
        return Err(Outcome::new(
            Reason::AccountNotReady,
            format!("IAMAccount {wanted:?} is not verified yet: {why}"),
        ));
    };
    if management == account_id {
        return Err(Outcome::new(
            Reason::NotAMember,
            format!(
                "account {account_id} is the organization's management account (IAMAccount {wanted:?} acts in it): \
                 AssumeRoot acts only on member accounts' root"
            ),
        ));
    }
    Ok(iam_account)
}

/// Ready for its current generation: a look now is a drift check.
fn is_settled(root: &RootLoginProfile) -> bool {
    root.status.as_ref().is_some_and(|status| {
        status.observed_generation == root.metadata.generation
            && status
                .conditions
                .iter()
                .any(|c| c.type_ == conditions::READY && c.status == "True")
    })
}

/// Reports a refusal or failure: terminal ones wait for the resync (the
/// cause is outside the cluster, or a change of this object or its
/// IAMAccount triggers a reconcile); transient ones back off.
async fn fail<I: Iam>(
    root: &RootLoginProfile,
    ctx: &Context<I>,
    outcome: Outcome,
    resync: Duration,
) -> Result<Action, Error> {
    let transitioned = write_status(root, ctx, None, &outcome).await?;
    ctx.metrics.set_root_ready(&root.name_any(), Some(false));
    if transitioned {
        publish(
            root,
            ctx,
            EventType::Warning,
            outcome.reason,
            &outcome.message,
        )
        .await;
    }
    if outcome.reason.is_terminal() {
        ctx.memory.clear_root_failures(&root.name_any());
        return Ok(Action::requeue(resync));
    }
    Err(Error::Transient {
        reason: outcome.reason,
        message: outcome.message,
    })
}

/// Exponential backoff with jitter after a transient failure, as for
/// LoginProfiles (`--min-backoff` .. `--max-backoff`).
pub(super) fn root_error_policy<I: Iam>(
    root: Arc<RootLoginProfile>,
    error: &Error,
    ctx: Arc<Context<I>>,
) -> Action {
    let name = root.name_any();
    let attempts = ctx.memory.count_root_failure(&name);
    let delay = super::runtime::looks::backoff(
        attempts,
        ctx.settings.min_backoff,
        ctx.settings.max_backoff,
        rand::rng().random_range(0.5..1.0),
    );
    tracing::warn!(root_login_profile = %name, %error, attempts, retry_in = ?delay, "RootLoginProfile reconcile failed");
    Action::requeue(delay)
}

/// One server-side apply of the status when it changed; whether Ready
/// changed status or reason with it (a transition, worth an Event).
async fn write_status<I: Iam>(
    root: &RootLoginProfile,
    ctx: &Context<I>,
    checked: Option<&Checked>,
    outcome: &Outcome,
) -> Result<bool, Error> {
    let previous = root.status.clone().unwrap_or_default();
    let mut next = previous.clone();
    next.observed_generation = root.metadata.generation;
    if let Some(checked) = checked {
        next.login_profile = Some(checked.found.login_profile.is_some());
        next.create_date = checked.found.login_profile.clone();
        next.mfa_devices = Some(checked.found.mfa_devices);
        next.access_keys = Some(checked.found.access_keys);
        next.last_task_policy = Some(checked.task.policy_name().into());
        next.checked_at = Some(now_rfc3339());
    }
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    next.conditions = conditions::conditions(
        &previous.conditions,
        outcome,
        root.metadata.generation,
        &now,
    );
    if previous == next {
        return Ok(false);
    }
    let transitioned = conditions::ready_changed(&previous.conditions, &next.conditions);
    let patch = serde_json::json!({
        "apiVersion": RootLoginProfile::api_version(&()),
        "kind": RootLoginProfile::kind(&()),
        "metadata": {"resourceVersion": root.resource_version()},
        "status": next,
    });
    Api::<RootLoginProfile>::all(ctx.client.clone())
        .patch_status(
            &root.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(Error::Kube)?;
    Ok(transitioned)
}

async fn publish<I: Iam>(
    root: &RootLoginProfile,
    ctx: &Context<I>,
    type_: EventType,
    reason: Reason,
    note: &str,
) {
    let note = Note {
        type_,
        reason: reason.as_str(),
        action: match reason {
            Reason::Removed => "DeleteRootLoginProfile",
            Reason::Created => "CreateRootLoginProfile",
            _ => "Reconcile",
        },
        note: note.to_string(),
    };
    if let Err(error) = ctx.events.publish(&root.object_ref(&()), note).await {
        tracing::warn!(%error, "could not publish an event");
    }
}

/// The RootLoginProfiles an IAMAccount's change concerns: those naming it.
pub(super) fn naming_iam_account<I: Iam>(
    ctx: &Context<I>,
    iam_account: &str,
) -> Vec<ObjectRef<RootLoginProfile>> {
    cached_where(ctx, |root| root.management_account_name() == iam_account)
}

/// The RootLoginProfiles claiming `account_id`: when one goes, the next
/// in line may take over.
pub(super) fn claiming<I: Iam>(
    ctx: &Context<I>,
    account_id: &str,
) -> Vec<ObjectRef<RootLoginProfile>> {
    cached_where(ctx, |root| root.spec.account_id == account_id)
}

fn cached_where<I: Iam>(
    ctx: &Context<I>,
    keep: impl Fn(&RootLoginProfile) -> bool,
) -> Vec<ObjectRef<RootLoginProfile>> {
    ctx.root_profiles
        .get()
        .map(|store| {
            store
                .state()
                .iter()
                .filter(|root| keep(root))
                .map(|root| ObjectRef::from_obj(&**root))
                .collect()
        })
        .unwrap_or_default()
}
