//! IAM access: the narrow trait the reconciler calls (what it needs of IAM,
//! and no more) and its aws-sdk-iam implementation with an explicit retry
//! configuration, per-call timeouts and a client-side rate limit shared by
//! every worker (IAM's limits are account-wide).

use std::{future::Future, num::NonZeroU32, sync::Arc, time::Duration};

use aws_sdk_iam::{
    error::{ProvideErrorMetadata, SdkError},
    operation::{
        RequestId as _, create_login_profile::CreateLoginProfileError,
        delete_login_profile::DeleteLoginProfileError,
        generate_credential_report::GenerateCredentialReportError,
        get_account_password_policy::GetAccountPasswordPolicyError,
        get_credential_report::GetCredentialReportError, get_login_profile::GetLoginProfileError,
        list_user_tags::ListUserTagsError, tag_user::TagUserError,
        update_login_profile::UpdateLoginProfileError,
    },
    types::ReportStateType,
};
use aws_smithy_types::{retry::RetryConfig, timeout::TimeoutConfig};
use governor::DefaultDirectRateLimiter;

use crate::aws::error_text::ACCESS_DENIED_CODES;
use crate::{
    api::conditions::Outcome, api::reason::Reason, ops::leader::WritePermit, ops::metrics::Metrics,
    rules::password::Password, rules::password_policy::PasswordPolicy, rules::plan::IamProfile,
};

/// IAM's id of a request it answered (`x-amzn-RequestId`), which CloudTrail
/// records as the event's `requestID`: how the operator knows its own
/// writes among IAM's events. `None` if the answer carried none.
pub type RequestId = Option<String>;

/// A credential report as IAM returned it.
#[derive(Debug, Clone)]
pub struct ReportText {
    pub csv: String,
    /// GeneratedTime: when IAM made the report (its facts are as of then).
    pub generated: Option<chrono::DateTime<chrono::Utc>>,
}

/// What an IAM call can fail with, as far as the reconciler cares.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    #[error("IAM has no such entity: {0}")]
    NoSuchEntity(String),
    #[error("the login profile already exists: {0}")]
    EntityAlreadyExists(String),
    #[error("IAM refused the password under the account password policy: {0}")]
    PasswordPolicyViolation(String),
    #[error("IAM refused the request: {0}")]
    InvalidInput(String),
    #[error("IAM limit exceeded: {0}")]
    LimitExceeded(String),
    #[error("the IAM user is temporarily unmodifiable: {0}")]
    TemporarilyUnmodifiable(String),
    #[error("IAM failed: {0}")]
    ServiceFailure(String),
    #[error("IAM throttled the request: {0}")]
    Throttling(String),
    #[error("access denied by IAM: {0}")]
    AccessDenied(String),
    #[error("the IAM call timed out")]
    Timeout,
    #[error("not sent: this replica may no longer hold the leader Lease")]
    NotLeader,
    #[error("could not reach IAM: {0}")]
    Unreachable(String),
    #[error("unexpected IAM error: {0}")]
    Other(String),
}

impl IamError {
    /// No answer came (a timeout, a lost connection, an answer that could
    /// not be read): IAM may have applied the call, or never received it.
    pub fn unanswered(&self) -> bool {
        matches!(
            self,
            IamError::Timeout | IamError::Unreachable(_) | IamError::Other(_)
        )
    }

    /// The condition reason this error is reported under.
    pub fn reason(&self) -> Reason {
        match self {
            IamError::NoSuchEntity(_) => Reason::UserNotFound,
            IamError::EntityAlreadyExists(_) => Reason::LoginProfileExists,
            IamError::PasswordPolicyViolation(_) => Reason::PasswordPolicyViolation,
            IamError::InvalidInput(_) => Reason::InvalidPassword,
            IamError::LimitExceeded(_) => Reason::LimitExceeded,
            IamError::TemporarilyUnmodifiable(_) => Reason::TemporarilyUnmodifiable,
            IamError::ServiceFailure(_) => Reason::ServiceFailure,
            IamError::Throttling(_) => Reason::Throttled,
            IamError::AccessDenied(_) => Reason::AccessDenied,
            IamError::Timeout
            | IamError::NotLeader
            | IamError::Unreachable(_)
            | IamError::Other(_) => Reason::IamError,
        }
    }

    /// Whether IAM definitely did not apply the write: it parsed the request
    /// and refused it. A timeout, an unreachable endpoint, a 5xx or an answer
    /// the SDK could not place may hide a write IAM applied.
    pub fn is_definite_refusal(&self) -> bool {
        match self {
            IamError::NoSuchEntity(_)
            | IamError::EntityAlreadyExists(_)
            | IamError::PasswordPolicyViolation(_)
            | IamError::InvalidInput(_)
            | IamError::LimitExceeded(_)
            | IamError::TemporarilyUnmodifiable(_)
            | IamError::Throttling(_)
            | IamError::AccessDenied(_)
            | IamError::NotLeader => true,
            IamError::ServiceFailure(_)
            | IamError::Timeout
            | IamError::Unreachable(_)
            | IamError::Other(_) => false,
        }
    }

    /// The status outcome of this failure, with a message that says what to
    /// do. The password is scrubbed from IAM's text in case IAM ever echoes
    /// its input.
    pub fn outcome(&self, user: &str, password: Option<&Password>) -> Outcome {
        let detail = match password {
            Some(password) if !password.expose().is_empty() => {
                self.to_string().replace(password.expose(), "<redacted>")
            }
            _ => self.to_string(),
        };
        let advice = match self.reason() {
            Reason::UserNotFound => format!(
                "IAM user {user:?} does not exist; create it (aws iam create-user --user-name {user}) and the operator will retry"
            ),
            Reason::PasswordPolicyViolation => {
                "the password breaks the account password policy (aws iam get-account-password-policy); change the Secret".into()
            }
            Reason::InvalidPassword => "IAM refused the password; change the Secret".into(),
            Reason::AccessDenied => {
                "the operator's AWS identity lacks permission; grant the actions in docs/iam-policy.json".into()
            }
            Reason::Throttled => {
                "IAM is throttling this account's requests; the operator backs off and retries (see --iam-rate-limit)".into()
            }
            Reason::TemporarilyUnmodifiable => {
                "IAM cannot change this user right now (just created, or being deleted); retrying".into()
            }
            Reason::LimitExceeded => "an IAM limit was hit; retrying with backoff".into(),
            Reason::ServiceFailure => "IAM failed internally; retrying with backoff".into(),
            _ => "retrying with backoff".into(),
        };
        Outcome::new(self.reason(), format!("{advice} ({detail})"))
    }

    /// A short, bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            IamError::NoSuchEntity(_) => "no_such_entity",
            IamError::EntityAlreadyExists(_) => "entity_already_exists",
            IamError::PasswordPolicyViolation(_) => "password_policy_violation",
            IamError::InvalidInput(_) => "invalid_input",
            IamError::LimitExceeded(_) => "limit_exceeded",
            IamError::TemporarilyUnmodifiable(_) => "temporarily_unmodifiable",
            IamError::ServiceFailure(_) => "service_failure",
            IamError::Throttling(_) => "throttled",
            IamError::AccessDenied(_) => "access_denied",
            IamError::Timeout => "timeout",
            IamError::NotLeader => "not_leader",
            IamError::Unreachable(_) => "unreachable",
            IamError::Other(_) => "other",
        }
    }
}

/// The IAM calls the reconciler makes. Each method documents its contract.
pub trait Iam: Send + Sync + 'static {
    /// GetLoginProfile. `Ok(None)` when IAM answers NoSuchEntity (no login
    /// profile, or no such user: IAM does not say which).
    fn get_login_profile(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Option<IamProfile>, IamError>> + Send;

    /// CreateLoginProfile with the password and the reset flag.
    fn create_login_profile(
        &self,
        user: &str,
        password: &Password,
        reset_required: bool,
    ) -> impl Future<Output = Result<(IamProfile, RequestId), IamError>> + Send;

    /// UpdateLoginProfile. `password: None` sends only the reset flag and
    /// leaves the password as it is.
    fn update_login_profile(
        &self,
        user: &str,
        password: Option<&Password>,
        reset_required: bool,
    ) -> impl Future<Output = Result<RequestId, IamError>> + Send;

    /// DeleteLoginProfile. NoSuchEntity counts as done (`Ok`).
    fn delete_login_profile(&self, user: &str)
    -> impl Future<Output = Result<(), IamError>> + Send;

    /// GetAccountPasswordPolicy. NoSuchEntity (no custom policy) is
    /// [`PasswordPolicy::AwsDefault`].
    fn get_account_password_policy(
        &self,
    ) -> impl Future<Output = Result<PasswordPolicy, IamError>> + Send;

    /// GenerateCredentialReport, then GetCredentialReport once the report is
    /// complete: the report, or `None` while IAM is still making it.
    fn credential_report(
        &self,
    ) -> impl Future<Output = Result<Option<ReportText>, IamError>> + Send;

    /// ListUserTags: the user's tags (key, value). NoSuchEntity (no such
    /// user) is an error.
    fn user_tags(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, IamError>> + Send;

    /// TagUser: sets these tags on the user (others are kept).
    fn tag_user(
        &self,
        user: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<RequestId, IamError>> + Send;
}

/// How the SDK client behaves; every field is a flag of `run`.
#[derive(Debug, Clone)]
pub struct IamClientConfig {
    /// Attempts per call, the first included (the SDK's standard retry mode:
    /// exponential backoff with jitter; throttling and 5xx are retried).
    pub max_attempts: u32,
    /// Deadline for one call, retries included.
    pub timeout: Duration,
    /// IAM calls per second per AWS account.
    pub rate_limit: NonZeroU32,
}

/// The AWS SDK configuration shared by the IAM and Secrets Manager clients:
/// the default credential and region chain (environment, IRSA web identity,
/// EKS Pod Identity, instance profile; `AWS_ENDPOINT_URL` points it at an
/// emulator), rustls with ring, and explicit retries and timeouts.
pub async fn sdk_config(config: &IamClientConfig) -> aws_config::SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(config.timeout)
                .operation_attempt_timeout(config.timeout / config.max_attempts.max(1))
                .connect_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await
}

/// The aws-sdk-iam implementation.
#[derive(Clone)]
pub struct AwsIam {
    client: aws_sdk_iam::Client,
    limiter: Arc<DefaultDirectRateLimiter>,
    metrics: Arc<Metrics>,
    /// Writes are sent only within it (leader election).
    permit: WritePermit,
}

impl AwsIam {
    /// The IAM client over an SDK configuration (see [`sdk_config`]), paced
    /// by `limiter`: the rate limit of the AWS account it acts in, shared by
    /// every client acting there.
    pub fn new(
        shared: &aws_config::SdkConfig,
        limiter: Arc<DefaultDirectRateLimiter>,
        metrics: Arc<Metrics>,
        permit: WritePermit,
    ) -> Self {
        // IAM is a global service whose endpoint lives in us-east-1; the
        // region only matters for signing, so default it rather than fail.
        let mut iam_config = aws_sdk_iam::config::Builder::from(shared);
        if shared.region().is_none() {
            iam_config = iam_config.region(aws_sdk_iam::config::Region::new("us-east-1"));
        }
        Self {
            client: aws_sdk_iam::Client::from_conf(iam_config.build()),
            limiter,
            metrics,
            permit,
        }
    }

    /// The SDK client, for the calls other modules of this layer make
    /// through [`AwsIam::call`] and [`AwsIam::write`] (src/aws/root.rs).
    pub(super) fn client(&self) -> &aws_sdk_iam::Client {
        &self.client
    }

    /// The configuration override for writes that must not be retried by
    /// the SDK (the reconciler retries them with what it learned).
    pub(super) fn single_attempt(&self) -> aws_sdk_iam::config::Builder {
        aws_sdk_iam::config::Builder::default()
            .retry_config(RetryConfig::standard().with_max_attempts(1))
    }

    pub(super) async fn call<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, IamError>>,
    ) -> Result<T, IamError> {
        self.limiter.until_ready().await;
        let result = call.await;
        self.count(operation, result)
    }

    /// A write: the write permit is checked after the rate limiter's wait,
    /// right before the request, and the request must be sent and answered
    /// before the permit ends (a timeout then is an ambiguous answer, like
    /// any other). A replica frozen or kept waiting past its deadline sends
    /// nothing.
    pub(super) async fn write<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, IamError>>,
    ) -> Result<T, IamError> {
        self.limiter.until_ready().await;
        let result = match self.permit.deadline() {
            None => call.await,
            Some(until) if tokio::time::Instant::now() >= until => Err(IamError::NotLeader),
            Some(until) => tokio::time::timeout_at(until, call)
                .await
                .unwrap_or(Err(IamError::Timeout)),
        };
        self.count(operation, result)
    }

    fn count<T>(
        &self,
        operation: &'static str,
        result: Result<T, IamError>,
    ) -> Result<T, IamError> {
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.metric_label(),
        };
        self.metrics.iam_call(operation, outcome);
        result
    }
}

fn profile_from(profile: &aws_sdk_iam::types::LoginProfile) -> IamProfile {
    IamProfile {
        create_date: rfc3339(profile.create_date()),
        password_reset_required: profile.password_reset_required(),
    }
}

pub(super) fn rfc3339(time: &aws_smithy_types::DateTime) -> String {
    chrono::DateTime::from_timestamp(time.secs(), 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// IAM's answer to input its API model refuses, such as a password outside
/// the allowed characters.
const VALIDATION_CODES: &[&str] = &["ValidationError", "InvalidInput"];

/// Maps an SDK error to [`IamError`]: `typed` matches the operation's modeled
/// variants; what is left is classified by the SDK error kind.
pub(super) fn classify<E>(
    error: SdkError<E, aws_smithy_runtime_api::http::Response>,
    typed: impl FnOnce(&E) -> Option<IamError>,
) -> IamError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match error {
        SdkError::ServiceError(context) => {
            let service_error = context.err();
            if let Some(known) = typed(service_error) {
                return known;
            }
            let message = service_error.message().unwrap_or_default().to_string();
            match service_error.code() {
                Some(code)
                    if aws_runtime::retries::classifiers::THROTTLING_ERRORS.contains(&code) =>
                {
                    IamError::Throttling(message)
                }
                Some(code) if ACCESS_DENIED_CODES.contains(&code) => {
                    IamError::AccessDenied(message)
                }
                Some(code) if VALIDATION_CODES.contains(&code) => IamError::InvalidInput(message),
                code => IamError::Other(format!(
                    "{}: {message}",
                    code.unwrap_or("unknown error code")
                )),
            }
        }
        SdkError::TimeoutError(_) => IamError::Timeout,
        unreachable @ SdkError::DispatchFailure(_) => {
            IamError::Unreachable(crate::aws::error_text::causes(&unreachable))
        }
        other => IamError::Other(crate::aws::error_text::causes(&other)),
    }
}

/// GetLoginProfile's modeled errors (a user's profile, or root's in a root session).
pub(super) fn get_profile_error(error: &GetLoginProfileError) -> Option<IamError> {
    match error {
        GetLoginProfileError::NoSuchEntityException(e) => {
            Some(IamError::NoSuchEntity(text(e.message())))
        }
        GetLoginProfileError::ServiceFailureException(e) => {
            Some(IamError::ServiceFailure(text(e.message())))
        }
        _ => None,
    }
}

/// CreateLoginProfile's modeled errors.
pub(super) fn create_profile_error(error: &CreateLoginProfileError) -> Option<IamError> {
    match error {
        CreateLoginProfileError::EntityAlreadyExistsException(e) => {
            Some(IamError::EntityAlreadyExists(text(e.message())))
        }
        CreateLoginProfileError::NoSuchEntityException(e) => {
            Some(IamError::NoSuchEntity(text(e.message())))
        }
        CreateLoginProfileError::PasswordPolicyViolationException(e) => {
            Some(IamError::PasswordPolicyViolation(text(e.message())))
        }
        CreateLoginProfileError::LimitExceededException(e) => {
            Some(IamError::LimitExceeded(text(e.message())))
        }
        CreateLoginProfileError::ServiceFailureException(e) => {
            Some(IamError::ServiceFailure(text(e.message())))
        }
        _ => None,
    }
}

/// DeleteLoginProfile's modeled errors.
pub(super) fn delete_profile_error(error: &DeleteLoginProfileError) -> Option<IamError> {
    match error {
        DeleteLoginProfileError::NoSuchEntityException(e) => {
            Some(IamError::NoSuchEntity(text(e.message())))
        }
        DeleteLoginProfileError::EntityTemporarilyUnmodifiableException(e) => {
            Some(IamError::TemporarilyUnmodifiable(text(e.message())))
        }
        DeleteLoginProfileError::LimitExceededException(e) => {
            Some(IamError::LimitExceeded(text(e.message())))
        }
        DeleteLoginProfileError::ServiceFailureException(e) => {
            Some(IamError::ServiceFailure(text(e.message())))
        }
        _ => None,
    }
}

/// The message of a modeled IAM exception (its own field, not the metadata).
pub(super) fn text(message: Option<&str>) -> String {
    message.unwrap_or_default().to_string()
}

impl Iam for AwsIam {
    async fn get_login_profile(&self, user: &str) -> Result<Option<IamProfile>, IamError> {
        self.call("GetLoginProfile", async {
            match self.client.get_login_profile().user_name(user).send().await {
                Ok(output) => Ok(output.login_profile().map(profile_from)),
                Err(error) => match classify(error, get_profile_error) {
                    IamError::NoSuchEntity(_) => Ok(None),
                    other => Err(other),
                },
            }
        })
        .await
    }

    async fn create_login_profile(
        &self,
        user: &str,
        password: &Password,
        reset_required: bool,
    ) -> Result<(IamProfile, RequestId), IamError> {
        self.write("CreateLoginProfile", async {
            let output = self
                .client
                .create_login_profile()
                .user_name(user)
                .password(password.expose())
                .password_reset_required(reset_required)
                // One attempt: a retry after a lost answer would be refused
                // as existing, and the operator must tell its own lost
                // create from someone else's profile (docs/reliability.md).
                .customize()
                .config_override(self.single_attempt())
                .send()
                .await
                .map_err(|error| classify(error, create_profile_error))?;
            let profile = output.login_profile().map(profile_from).ok_or_else(|| {
                IamError::Other("CreateLoginProfile answered without a LoginProfile".into())
            })?;
            Ok((profile, output.request_id().map(str::to_string)))
        })
        .await
    }

    async fn update_login_profile(
        &self,
        user: &str,
        password: Option<&Password>,
        reset_required: bool,
    ) -> Result<RequestId, IamError> {
        self.write("UpdateLoginProfile", async {
            self.client
                .update_login_profile()
                .user_name(user)
                .set_password(password.map(|p| p.expose().to_owned()))
                .password_reset_required(reset_required)
                // A password is sent once per reconcile: the SDK must not
                // retry it after a lost answer, because in an account that
                // refuses reused passwords the retry would be refused for
                // the very password the lost attempt applied. The next
                // reconcile recognizes that refusal (docs/reliability.md).
                .customize()
                .config_override(match password {
                    Some(_) => self.single_attempt(),
                    None => aws_sdk_iam::config::Builder::default(),
                })
                .send()
                .await
                .map(|output| output.request_id().map(str::to_string))
                .map_err(|error| {
                    classify(error, |e| match e {
                        UpdateLoginProfileError::EntityTemporarilyUnmodifiableException(e) => {
                            Some(IamError::TemporarilyUnmodifiable(text(e.message())))
                        }
                        UpdateLoginProfileError::NoSuchEntityException(e) => {
                            Some(IamError::NoSuchEntity(text(e.message())))
                        }
                        UpdateLoginProfileError::PasswordPolicyViolationException(e) => {
                            Some(IamError::PasswordPolicyViolation(text(e.message())))
                        }
                        UpdateLoginProfileError::LimitExceededException(e) => {
                            Some(IamError::LimitExceeded(text(e.message())))
                        }
                        UpdateLoginProfileError::ServiceFailureException(e) => {
                            Some(IamError::ServiceFailure(text(e.message())))
                        }
                        _ => None,
                    })
                })
        })
        .await
    }

    async fn get_account_password_policy(&self) -> Result<PasswordPolicy, IamError> {
        self.call(
            "GetAccountPasswordPolicy",
            self.fetch_account_password_policy(),
        )
        .await
    }

    async fn credential_report(&self) -> Result<Option<ReportText>, IamError> {
        self.call("GetCredentialReport", self.fetch_credential_report())
            .await
    }

    async fn user_tags(&self, user: &str) -> Result<Vec<(String, String)>, IamError> {
        self.call("ListUserTags", async {
            let output = self
                .client
                .list_user_tags()
                .user_name(user)
                .max_items(100)
                .send()
                .await
                .map_err(|error| {
                    classify(error, |e| match e {
                        ListUserTagsError::NoSuchEntityException(e) => {
                            Some(IamError::NoSuchEntity(text(e.message())))
                        }
                        ListUserTagsError::ServiceFailureException(e) => {
                            Some(IamError::ServiceFailure(text(e.message())))
                        }
                        _ => None,
                    })
                })?;
            Ok(output
                .tags()
                .iter()
                .map(|tag| (tag.key().to_string(), tag.value().to_string()))
                .collect())
        })
        .await
    }

    async fn tag_user(&self, user: &str, tags: &[(String, String)]) -> Result<RequestId, IamError> {
        let tags = tags
            .iter()
            .map(|(key, value)| {
                aws_sdk_iam::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(|error| IamError::Other(error.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.write("TagUser", async {
            self.client
                .tag_user()
                .user_name(user)
                .set_tags(Some(tags))
                .send()
                .await
                .map(|output| output.request_id().map(str::to_string))
                .map_err(|error| {
                    classify(error, |e| match e {
                        TagUserError::NoSuchEntityException(e) => {
                            Some(IamError::NoSuchEntity(text(e.message())))
                        }
                        TagUserError::InvalidInputException(e) => {
                            Some(IamError::InvalidInput(text(e.message())))
                        }
                        TagUserError::LimitExceededException(e) => {
                            Some(IamError::LimitExceeded(text(e.message())))
                        }
                        TagUserError::ConcurrentModificationException(e) => {
                            Some(IamError::TemporarilyUnmodifiable(text(e.message())))
                        }
                        TagUserError::ServiceFailureException(e) => {
                            Some(IamError::ServiceFailure(text(e.message())))
                        }
                        _ => None,
                    })
                })
        })
        .await
    }

    async fn delete_login_profile(&self, user: &str) -> Result<(), IamError> {
        self.write("DeleteLoginProfile", async {
            match self
                .client
                .delete_login_profile()
                .user_name(user)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(error) => match classify(error, delete_profile_error) {
                    IamError::NoSuchEntity(_) => Ok(()),
                    other => Err(other),
                },
            }
        })
        .await
    }
}

impl AwsIam {
    async fn fetch_account_password_policy(&self) -> Result<PasswordPolicy, IamError> {
        match self.client.get_account_password_policy().send().await {
            Ok(output) => Ok(match output.password_policy() {
                Some(policy) => PasswordPolicy::Custom {
                    minimum_length: policy.minimum_password_length().unwrap_or(6).max(0) as usize,
                    require_symbols: policy.require_symbols(),
                    require_numbers: policy.require_numbers(),
                    require_uppercase: policy.require_uppercase_characters(),
                    require_lowercase: policy.require_lowercase_characters(),
                    reuse_prevention: policy.password_reuse_prevention().unwrap_or(0).max(0) as u32,
                    max_age_days: policy.max_password_age().unwrap_or(0).max(0) as u32,
                    hard_expiry: policy.hard_expiry().unwrap_or(false),
                },
                None => PasswordPolicy::AwsDefault,
            }),
            Err(error) => match classify(error, |e| match e {
                GetAccountPasswordPolicyError::NoSuchEntityException(e) => {
                    Some(IamError::NoSuchEntity(text(e.message())))
                }
                GetAccountPasswordPolicyError::ServiceFailureException(e) => {
                    Some(IamError::ServiceFailure(text(e.message())))
                }
                _ => None,
            }) {
                IamError::NoSuchEntity(_) => Ok(PasswordPolicy::AwsDefault),
                other => Err(other),
            },
        }
    }

    async fn fetch_credential_report(&self) -> Result<Option<ReportText>, IamError> {
        let generated = self
            .client
            .generate_credential_report()
            .send()
            .await
            .map_err(|error| {
                classify(error, |e| match e {
                    GenerateCredentialReportError::LimitExceededException(e) => {
                        Some(IamError::LimitExceeded(text(e.message())))
                    }
                    GenerateCredentialReportError::ServiceFailureException(e) => {
                        Some(IamError::ServiceFailure(text(e.message())))
                    }
                    _ => None,
                })
            })?;
        if generated.state() != Some(&ReportStateType::Complete) {
            return Ok(None);
        }
        let report = self
            .client
            .get_credential_report()
            .send()
            .await
            .map_err(|error| {
                classify(error, |e| match e {
                    GetCredentialReportError::ServiceFailureException(e) => {
                        Some(IamError::ServiceFailure(text(e.message())))
                    }
                    _ => None,
                })
            })?;
        let generated = report
            .generated_time()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
        Ok(report.content().map(|blob| ReportText {
            csv: String::from_utf8_lossy(blob.as_ref()).into_owned(),
            generated,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::types::error::{NoSuchEntityException, PasswordPolicyViolationException};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::{body::SdkBody, error::ErrorMetadata};

    fn service_error<E>(error: E, status: u16) -> SdkError<E, Response> {
        SdkError::service_error(
            error,
            Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty()),
        )
    }

    fn unhandled(code: &str) -> CreateLoginProfileError {
        CreateLoginProfileError::generic(ErrorMetadata::builder().code(code).message("m").build())
    }

    fn classify_create(error: CreateLoginProfileError) -> IamError {
        classify(service_error(error, 400), |e| match e {
            CreateLoginProfileError::NoSuchEntityException(e) => {
                Some(IamError::NoSuchEntity(text(e.message())))
            }
            CreateLoginProfileError::PasswordPolicyViolationException(e) => {
                Some(IamError::PasswordPolicyViolation(text(e.message())))
            }
            _ => None,
        })
    }

    #[test]
    fn typed_variants_win() {
        let error = CreateLoginProfileError::NoSuchEntityException(
            NoSuchEntityException::builder()
                .message("no user bob")
                .build(),
        );
        assert_eq!(
            classify_create(error),
            IamError::NoSuchEntity("no user bob".into())
        );
        let error = CreateLoginProfileError::PasswordPolicyViolationException(
            PasswordPolicyViolationException::builder()
                .message("too short")
                .build(),
        );
        assert_eq!(
            classify_create(error).reason(),
            Reason::PasswordPolicyViolation
        );
    }

    #[test]
    fn unmodeled_errors_are_classified_by_the_sdk_error_kind() {
        assert_eq!(
            classify_create(unhandled("Throttling")).reason(),
            Reason::Throttled
        );
        assert_eq!(
            classify_create(unhandled("AccessDenied")).reason(),
            Reason::AccessDenied
        );
        assert_eq!(
            classify_create(unhandled("ValidationError")).reason(),
            Reason::InvalidPassword
        );
        assert_eq!(
            classify_create(unhandled("SomethingNew")).reason(),
            Reason::IamError
        );
    }

    #[test]
    fn messages_never_carry_the_password() {
        let password = Password::try_from("S3cret-Pa55!").unwrap();
        let error =
            IamError::PasswordPolicyViolation("password S3cret-Pa55! was used before".into());
        let outcome = error.outcome("bob", Some(&password));
        assert_eq!(outcome.reason, Reason::PasswordPolicyViolation);
        assert!(
            !outcome.message.contains("S3cret-Pa55!"),
            "{}",
            outcome.message
        );
    }

    #[test]
    fn user_not_found_says_how_to_fix_it() {
        let outcome = IamError::NoSuchEntity("no user".into()).outcome("bob", None);
        assert_eq!(outcome.reason, Reason::UserNotFound);
        assert!(
            outcome
                .message
                .contains("aws iam create-user --user-name bob")
        );
    }

    #[test]
    fn timestamps_are_rfc3339_seconds() {
        let time = aws_smithy_types::DateTime::from_secs(1_795_255_910);
        assert_eq!(rfc3339(&time), "2026-11-21T10:11:50Z");
    }
}
