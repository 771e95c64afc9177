//! The AWS clients of each IAMAccount: one set (IAM, Secrets Manager, STS,
//! SQS for its IAM events) per IAMAccount uid and generation, over
//! credentials that STS AssumeRole gives on top of the operator's own chain
//! (the SDK caches them and refreshes them before they expire), replaced
//! when the IAMAccount changes.
//! IAM's request limits are per AWS account, so the IAM rate limit and the
//! drift-check budget belong to the account the role lives in, shared by
//! every IAMAccount naming that account.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use kube::ResourceExt;

use crate::{
    api::conditions::Outcome,
    api::iam_account::{IAMAccount, UserTag},
    api::reason::Reason,
    aws::account_facts::AccountCache,
    aws::deletion_pacer::{DeletionLimit, DeletionPacer},
    aws::drift_budget::DriftBudget,
    aws::event_queue::EventQueue,
    aws::iam::Iam,
    aws::root::RootAccess,
    aws::secrets_manager::AwsSecretsManager,
};

/// What one IAMAccount's credentials reach.
pub struct Clients<I> {
    pub iam: I,
    pub secrets_manager: AwsSecretsManager,
    /// Answers "who are these credentials, in which account?"
    /// (GetCallerIdentity).
    pub caller_account: BoxedCallerAccount,
    /// AssumeRoot for member accounts' root (RootLoginProfiles).
    pub root: RootAccess,
    /// The SQS queue of IAM's events (`spec.events`).
    pub events: EventQueue,
}

/// STS GetCallerIdentity over an IAMAccount's credentials: who they are,
/// or why they do not work.
pub type BoxedCallerAccount =
    Box<dyn Fn() -> BoxFuture<'static, Result<Caller, String>> + Send + Sync>;

/// Who an IAMAccount's credentials are (STS GetCallerIdentity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The AWS account id they act in.
    pub account: String,
    /// Their ARN, as CloudTrail's `userIdentity.arn` names their calls.
    pub arn: String,
}

/// Makes the clients for an IAMAccount, paced by the given IAM rate limiter.
pub type Connector<I> = Box<
    dyn Fn(&IAMAccount, Arc<DefaultDirectRateLimiter>) -> BoxFuture<'static, Clients<I>>
        + Send
        + Sync,
>;

/// The share of an AWS account's IAM request budget this operator uses.
pub struct Budget {
    pub limiter: Arc<DefaultDirectRateLimiter>,
    pub drift: DriftBudget,
    /// The mass-deletion guard.
    pub deletions: DeletionPacer,
}

/// One IAMAccount (at one generation), connected.
pub struct Account<I> {
    pub name: String,
    uid: Option<String>,
    generation: Option<i64>,
    pub iam: I,
    pub secrets_manager: AwsSecretsManager,
    caller_account: BoxedCallerAccount,
    /// AssumeRoot with these credentials (RootLoginProfiles; only for an
    /// IAMAccount with `allowRootAccess`).
    pub root: RootAccess,
    /// The SQS queue of IAM's events (`spec.events`).
    pub events: EventQueue,
    /// The last answer of GetCallerIdentity that named an account, and when.
    verified: Mutex<Option<(Caller, Instant)>>,
    /// The account password policy and credential report.
    pub facts: AccountCache,
    pub budget: Arc<Budget>,
    required_tag: Option<UserTag>,
    /// Users seen carrying the required tag, and when.
    tagged: Mutex<HashMap<String, Instant>>,
    tag_refresh: Duration,
}

impl<I: Iam> Account<I> {
    /// The AWS account id the credentials act in, or why they do not work;
    /// an answer younger than `max_age` is not asked again.
    pub async fn caller_account(&self, max_age: Duration) -> Result<String, String> {
        self.caller(max_age).await.map(|caller| caller.account)
    }

    /// Who the credentials are, or why they do not work; an answer younger
    /// than `max_age` is not asked again.
    pub async fn caller(&self, max_age: Duration) -> Result<Caller, String> {
        if let Some((caller, at)) = self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            && at.elapsed() < max_age
        {
            return Ok(caller.clone());
        }
        let caller = (self.caller_account)().await?;
        *self.verified.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((caller.clone(), Instant::now()));
        Ok(caller)
    }

    /// Before the first write for `user`: whether it carries the tag the
    /// IAMAccount requires (ListUserTags; a yes is remembered a while).
    pub async fn check_required_tag(&self, user: &str) -> Result<(), Outcome> {
        let Some(tag) = &self.required_tag else {
            return Ok(());
        };
        let seen = |tagged: &HashMap<String, Instant>| {
            tagged
                .get(user)
                .is_some_and(|at| at.elapsed() < self.tag_refresh)
        };
        if seen(&self.tagged.lock().unwrap_or_else(PoisonError::into_inner)) {
            return Ok(());
        }
        let tags = self.iam.user_tags(user).await;
        match tags.map(|tags| tags.into_iter().find(|(key, _)| *key == tag.key)) {
            Ok(Some((_, value))) if value == tag.value => {
                self.tagged
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(user.to_string(), Instant::now());
                Ok(())
            }
            Ok(_) => Err(Outcome::new(
                Reason::NotAdmitted,
                format!(
                    "IAMAccount {:?} admits only IAM users tagged {}={}, and IAM user {user:?} is not \
                     (spec.requiredUserTag; an IAM admin opts a user in with aws iam tag-user)",
                    self.name, tag.key, tag.value
                ),
            )),
            Err(error) => Err(error.outcome(user, None)),
        }
    }
}

/// Every IAMAccount's clients, made on first use.
pub struct Accounts<I> {
    connect: Connector<I>,
    rate_limit: NonZeroU32,
    drift_check_rate: f64,
    policy_refresh: Duration,
    report_interval: Duration,
    deletion_limit: DeletionLimit,
    by_name: tokio::sync::Mutex<HashMap<String, Arc<Account<I>>>>,
    budgets: Mutex<HashMap<String, Arc<Budget>>>,
}

/// How accounts are paced and how long account facts are trusted.
pub struct AccountSettings {
    pub rate_limit: NonZeroU32,
    pub drift_check_rate: f64,
    pub password_policy_refresh: Duration,
    pub credential_report_interval: Duration,
    pub deletion_limit: DeletionLimit,
}

impl<I: Iam> Accounts<I> {
    pub fn new(connect: Connector<I>, settings: AccountSettings) -> Self {
        Self {
            connect,
            rate_limit: settings.rate_limit,
            drift_check_rate: settings.drift_check_rate,
            policy_refresh: settings.password_policy_refresh,
            report_interval: settings.credential_report_interval,
            deletion_limit: settings.deletion_limit,
            by_name: tokio::sync::Mutex::new(HashMap::new()),
            budgets: Mutex::new(HashMap::new()),
        }
    }

    /// The clients for this IAMAccount as it is now: the cached ones while
    /// its uid and generation are the same, new ones (new credentials)
    /// after it changed.
    pub async fn get(&self, account: &IAMAccount) -> Arc<Account<I>> {
        let name = account.name_any();
        let mut by_name = self.by_name.lock().await;
        if let Some(known) = by_name.get(&name)
            && known.uid == account.uid()
            && known.generation == account.metadata.generation
        {
            return known.clone();
        }
        let budget = self.budget_of(account.role_account_id().unwrap_or("own"));
        let clients = (self.connect)(account, budget.limiter.clone()).await;
        let connected = Arc::new(Account {
            name: name.clone(),
            uid: account.uid(),
            generation: account.metadata.generation,
            iam: clients.iam,
            secrets_manager: clients.secrets_manager,
            caller_account: clients.caller_account,
            root: clients.root,
            events: clients.events,
            verified: Mutex::new(None),
            facts: AccountCache::new(self.policy_refresh, self.report_interval),
            budget,
            required_tag: account.spec.required_user_tag.clone(),
            tagged: Mutex::new(HashMap::new()),
            tag_refresh: self.policy_refresh,
        });
        by_name.insert(name, connected.clone());
        connected
    }

    /// Drops the clients of an IAMAccount that is gone.
    pub async fn forget(&self, name: &str) {
        self.by_name.lock().await.remove(name);
    }

    /// The budget of the AWS account `key` (the role's account id, or `own`
    /// for the operator's own credentials), shared by its IAMAccounts and
    /// by the root sessions acting in it.
    pub fn budget_of(&self, key: &str) -> Arc<Budget> {
        self.budgets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.to_string())
            .or_insert_with(|| {
                Arc::new(Budget {
                    limiter: Arc::new(RateLimiter::direct(Quota::per_second(self.rate_limit))),
                    drift: DriftBudget::new(self.drift_check_rate),
                    deletions: DeletionPacer::new(self.deletion_limit),
                })
            })
            .clone()
    }
}

/// The role session name when the IAMAccount names none (CloudTrail shows it).
const DEFAULT_SESSION_NAME: &str = "loginprofile-operator";

/// Connects IAMAccounts with the AWS SDK: the operator's own configuration
/// (see [`crate::aws::iam::sdk_config`]), or, with `roleArn`, credentials from
/// STS AssumeRole made with it. The clients of one IAMAccount share one
/// credentials cache (the SDK's), so the role is assumed once and again
/// only shortly before the credentials expire.
pub fn aws_connector(
    base: aws_config::SdkConfig,
    metrics: Arc<crate::ops::metrics::Metrics>,
    permit: crate::ops::leader::WritePermit,
) -> Connector<crate::aws::iam::AwsIam> {
    Box::new(move |account, limiter| {
        let base = base.clone();
        let metrics = metrics.clone();
        let permit = permit.clone();
        let spec = account.spec.clone();
        Box::pin(async move {
            let config = match &spec.role_arn {
                None => base,
                Some(role_arn) => {
                    let mut role = aws_config::sts::AssumeRoleProvider::builder(role_arn)
                        .session_name(
                            spec.session_name
                                .clone()
                                .unwrap_or_else(|| DEFAULT_SESSION_NAME.into()),
                        )
                        .configure(&base);
                    if let Some(external_id) = &spec.external_id {
                        role = role.external_id(external_id);
                    }
                    let provider = role.build().await;
                    base.into_builder()
                        .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(
                            provider,
                        ))
                        .build()
                }
            };
            let mut sts_config = aws_sdk_sts::config::Builder::from(&config);
            if config.region().is_none() {
                sts_config = sts_config.region(aws_sdk_sts::config::Region::new("us-east-1"));
            }
            let sts = aws_sdk_sts::Client::from_conf(sts_config.build());
            let root = RootAccess::new(
                sts.clone(),
                config.clone(),
                limiter.clone(),
                metrics.clone(),
                permit.clone(),
            );
            let caller_account: BoxedCallerAccount = Box::new(move || {
                let sts = sts.clone();
                Box::pin(async move {
                    match sts.get_caller_identity().send().await {
                        Ok(identity) => match identity.account() {
                            Some(account) => Ok(Caller {
                                account: account.to_string(),
                                arn: identity.arn().unwrap_or_default().to_string(),
                            }),
                            None => {
                                Err("STS GetCallerIdentity answered without an account id".into())
                            }
                        },
                        Err(error) => Err(crate::aws::error_text::causes(&error)),
                    }
                })
            });
            Clients {
                iam: crate::aws::iam::AwsIam::new(&config, limiter, metrics.clone(), permit),
                secrets_manager: AwsSecretsManager::new(&config, metrics.clone()),
                caller_account,
                root,
                events: EventQueue::new(&config, metrics),
            }
        })
    })
}
