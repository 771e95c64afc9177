//! The IAMAccount reconciler: a finalizer while LoginProfiles use it, and a
//! status that says whether its credentials work and in which AWS account.

use super::runtime::context::Context;
use super::runtime::context::Error;
use super::runtime::context::FIELD_MANAGER;
use super::runtime::event_flow;
use super::runtime::watch::PROFILES_PER_PAGE;
use crate::api::conditions;
use crate::api::conditions::Outcome;
use crate::api::login_profile::LoginProfile;
use crate::api::reason::Reason;
use crate::aws::iam::Iam;
use crate::ops::events::Note;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::Client;
use kube::Resource;
use kube::ResourceExt;
use kube::api::Patch;
use kube::api::PatchParams;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use std::sync::Arc;
use std::time::Duration;

use crate::api::iam_account::{ACCOUNT_FINALIZER, IAMAccount, IAMAccountStatus};

/// How often a verified IAMAccount is looked at again without a change
/// (LoginProfiles coming and going trigger it at once).
const COUNT_REFRESH: Duration = Duration::from_secs(60);
/// How often an IAMAccount being deleted counts the LoginProfiles that
/// still need it, cluster-wide.
const DELETION_RECOUNT: Duration = Duration::from_secs(30);
/// How soon failing credentials are tried again.
const RETRY_CREDENTIALS: Duration = Duration::from_secs(30);
/// How often an IAMAccount with `spec.events` reports what its receiver
/// concluded (EventsFlowing).
const EVENTS_REFRESH: Duration = Duration::from_secs(10);

/// Keeps an IAMAccount's finalizer and status: Ready when STS
/// GetCallerIdentity answers with its credentials (in the account its role
/// names), the account id, and how many LoginProfiles use it. Being
/// deleted, it is kept while any LoginProfile it served remains.
pub(super) async fn reconcile_account<I: Iam>(
    account: Arc<IAMAccount>,
    ctx: Arc<Context<I>>,
) -> Result<Action, Error> {
    let name = account.name_any();
    let api: Api<IAMAccount> = Api::all(ctx.client.clone());
    let deleting = account.metadata.deletion_timestamp.is_some();
    let in_use = match deleting {
        true => users_in_cluster(&ctx.client, &name).await?,
        false => 0,
    };
    if deleting && in_use == 0 {
        remove_finalizer(&api, &account).await?;
        ctx.accounts.forget(&name).await;
        ctx.metrics.set_account_ready(&name, None);
        return Ok(Action::await_change());
    }
    if !deleting && !account.finalizers().iter().any(|f| f == ACCOUNT_FINALIZER) {
        let mut finalizers = account.finalizers().to_vec();
        finalizers.push(ACCOUNT_FINALIZER.into());
        let patch = serde_json::json!({"metadata": {
            "resourceVersion": account.resource_version(),
            "finalizers": finalizers,
        }});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::Kube)?;
    }
    let users = ctx
        .cached_profiles()
        .filter(|lp| lp.account_name() == name)
        .count();
    let connected = ctx.accounts.get(&account).await;
    let (account_id, outcome, next) = match connected
        .caller_account(ctx.settings.resync_period)
        .await
    {
        Ok(id) if account.role_account_id().is_some_and(|named| named != id) => (
            None,
            Outcome::new(
                Reason::AssumeRoleFailed,
                format!(
                    "the credentials act in AWS account {id}, not in {} that spec.roleArn names",
                    account.role_account_id().unwrap_or_default()
                ),
            ),
            RETRY_CREDENTIALS,
        ),
        Ok(id) => (
            Some(id.clone()),
            Outcome::new(
                Reason::Verified,
                format!("the credentials work in AWS account {id}"),
            ),
            COUNT_REFRESH,
        ),
        Err(error) => (
            None,
            Outcome::new(
                Reason::AssumeRoleFailed,
                match &account.spec.role_arn {
                    Some(role) => format!(
                        "cannot act as role {role}: check its trust policy (it must trust the operator's \
                             identity, with spec.externalId if it asks for one) ({error})"
                    ),
                    None => format!("the operator's own AWS credentials do not work ({error})"),
                },
            ),
            RETRY_CREDENTIALS,
        ),
    };
    // Deletion counts as a new generation: status keeps up with it, since
    // the LoginProfiles still act (and delete their profiles) through it.
    let verified = account_id.is_some();
    let events = account.spec.events.as_ref().map(|_| {
        let verdict = ctx.event_flows.verdict(&name, std::time::Instant::now());
        event_flow::condition(
            verdict.as_ref(),
            ctx.settings.events.drift_period,
            ctx.settings.resync_period,
        )
    });
    let next = match events {
        Some(_) => next.min(EVENTS_REFRESH),
        None => next,
    };
    write_status(&api, &account, account_id, users, &outcome, events).await?;
    ctx.metrics.set_account_ready(&name, Some(verified));
    if deleting {
        let note = Note {
            type_: EventType::Normal,
            reason: Reason::InUse.as_str(),
            action: "Delete",
            note: format!(
                "kept while {in_use} LoginProfile(s) name this IAMAccount; it goes once they are deleted"
            ),
        };
        if let Err(error) = ctx.events.publish(&account.object_ref(&()), note).await {
            tracing::warn!(%error, "could not publish an event");
        }
        // The deletions of watched LoginProfiles trigger it at once; this
        // cluster-wide count is for those no operator here watches.
        return Ok(Action::requeue(DELETION_RECOUNT));
    }
    Ok(Action::requeue(next))
}

pub(super) fn account_error_policy<I: Iam>(
    account: Arc<IAMAccount>,
    error: &Error,
    _ctx: Arc<Context<I>>,
) -> Action {
    tracing::warn!(iam_account = %account.name_any(), %error, "IAMAccount reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// LoginProfiles in the whole cluster (not only the watched namespaces)
/// that this IAMAccount served (status records the AWS account it acted
/// in, which only the operator writes): they may still need it to delete
/// their profiles. One that merely names it, never admitted, holds nothing.
/// Read once per try while it is being deleted.
async fn users_in_cluster(client: &Client, account: &str) -> Result<usize, Error> {
    let api: Api<LoginProfile> = Api::all(client.clone());
    let mut params = kube::api::ListParams::default().limit(PROFILES_PER_PAGE);
    let mut users = 0;
    loop {
        let page = api.list(&params).await.map_err(Error::Kube)?;
        users += page
            .items
            .iter()
            .filter(|lp| lp.account_name() == account)
            .filter(|lp| lp.status.as_ref().is_some_and(|s| s.account_id.is_some()))
            .count();
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(users),
        }
    }
}

async fn remove_finalizer(api: &Api<IAMAccount>, account: &IAMAccount) -> Result<(), Error> {
    let finalizers: Vec<&String> = account
        .finalizers()
        .iter()
        .filter(|f| *f != ACCOUNT_FINALIZER)
        .collect();
    let patch = serde_json::json!({"metadata": {
        "resourceVersion": account.resource_version(),
        "finalizers": finalizers,
    }});
    api.patch(
        &account.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(())
}

/// One server-side apply of the status, when it changed: the kstatus
/// conditions of `outcome`, and with `spec.events` the EventsFlowing
/// condition (status, reason, message).
async fn write_status(
    api: &Api<IAMAccount>,
    account: &IAMAccount,
    account_id: Option<String>,
    users: usize,
    outcome: &Outcome,
    events: Option<(&'static str, &'static str, String)>,
) -> Result<(), Error> {
    let previous = account.status.clone().unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut conditions = conditions::conditions(
        &previous.conditions,
        outcome,
        account.metadata.generation,
        &now,
    );
    if let Some((status, reason, message)) = events {
        conditions.push(conditions::condition(
            &previous.conditions,
            (event_flow::EVENTS_FLOWING, status, reason),
            message,
            account.metadata.generation,
            &now,
        ));
    }
    let next = IAMAccountStatus {
        observed_generation: account.metadata.generation,
        account_id: account_id.or_else(|| {
            // Keep the last verified id while the credentials fail: it is
            // where the LoginProfiles' profiles live.
            previous.account_id.clone()
        }),
        login_profiles: Some(u32::try_from(users).unwrap_or(u32::MAX)),
        conditions,
    };
    // conditions::conditions keeps each unchanged condition as it was, so an
    // unchanged status compares equal.
    if previous == next {
        return Ok(());
    }
    let patch = serde_json::json!({
        "apiVersion": IAMAccount::api_version(&()),
        "kind": IAMAccount::kind(&()),
        "metadata": {"resourceVersion": account.resource_version()},
        "status": next,
    });
    api.patch_status(
        &account.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(())
}
