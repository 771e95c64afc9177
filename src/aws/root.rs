//! Centralized root access (AWS Organizations, 2024-11): with a management
//! account's (or IAM delegated administrator's) credentials, whether the
//! organization manages root credentials (IAM ListOrganizationsFeatures),
//! and STS AssumeRoot sessions for a member account's root, one per task
//! policy. A session is used for the calls of one reconcile and never after
//! its Expiration: every call checks it first. In a session, root's login
//! profile calls go without UserName (and CreateLoginProfile without a
//! password), as AWS documents CreateLoginProfile for AssumeRoot.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime},
};

use aws_sdk_iam::operation::{
    list_access_keys::ListAccessKeysError, list_mfa_devices::ListMFADevicesError,
    list_organizations_features::ListOrganizationsFeaturesError,
};
use aws_sdk_iam::types::FeatureType;
use aws_sdk_sts::operation::assume_root::AssumeRootError;
use governor::DefaultDirectRateLimiter;

use crate::{
    aws::iam::{
        AwsIam, IamError, classify, create_profile_error, delete_profile_error, get_profile_error,
        rfc3339, text,
    },
    ops::leader::WritePermit,
    ops::metrics::Metrics,
    rules::root::{RootFindings, RootTask},
};

/// The longest session AssumeRoot grants (seconds); ours need a few calls.
const SESSION_SECONDS: i32 = 900;

/// Why the organization's root credentials cannot be managed from here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganizationRefusal {
    /// The credentials are neither the management account's nor a
    /// delegated administrator's for IAM.
    #[error("{0}")]
    NotManagementOrDelegatedAdministrator(String),
    /// No organization, not all features, no trusted access for IAM, or
    /// root credentials management not enabled.
    #[error("{0}")]
    RootCredentialsManagementOff(String),
    #[error(transparent)]
    Iam(IamError),
}

/// Why AssumeRoot gave no session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssumeRootRefusal {
    /// AccessDenied: not a member, or a policy denies it.
    #[error("{0}")]
    Denied(String),
    #[error(transparent)]
    Other(IamError),
}

/// What the management account's credentials reach for root access.
pub struct RootAccess {
    sts: aws_sdk_sts::Client,
    /// IAM with the management account's credentials (ListOrganizationsFeatures).
    management: AwsIam,
    /// The SDK configuration sessions' IAM clients start from (endpoint,
    /// retries, timeouts), with the session's credentials put in.
    config: aws_config::SdkConfig,
    metrics: Arc<Metrics>,
    permit: WritePermit,
    /// When ListOrganizationsFeatures last said root credentials management
    /// is on: one answer serves every member account's checks a while.
    confirmed: Mutex<Option<Instant>>,
}

impl RootAccess {
    pub fn new(
        sts: aws_sdk_sts::Client,
        config: aws_config::SdkConfig,
        management_limiter: Arc<DefaultDirectRateLimiter>,
        metrics: Arc<Metrics>,
        permit: WritePermit,
    ) -> Self {
        Self {
            sts,
            management: AwsIam::new(&config, management_limiter, metrics.clone(), permit.clone()),
            config,
            metrics,
            permit,
            confirmed: Mutex::new(None),
        }
    }

    /// Whether the organization has root credentials management on
    /// (ListOrganizationsFeatures), or why it cannot say. A yes younger than
    /// `max_age` is not asked again; a refusal always is, so a fix in AWS is
    /// seen at the next check (and a feature turned off meanwhile makes
    /// AssumeRoot refuse).
    pub async fn root_credentials_management(
        &self,
        max_age: Duration,
    ) -> Result<(), OrganizationRefusal> {
        let fresh = |at: &Option<Instant>| at.is_some_and(|at| at.elapsed() < max_age);
        if fresh(
            &self
                .confirmed
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        ) {
            return Ok(());
        }
        let iam = &self.management;
        // The organization's refusals are answers, not failed calls: they
        // come back inside Ok and are counted as answered.
        let answer = iam
            .call("ListOrganizationsFeatures", async {
                match iam.client().list_organizations_features().send().await {
                    Ok(features) => Ok(Ok(features)),
                    Err(error) => match error.as_service_error().and_then(refusal) {
                        Some(refused) => Ok(Err(refused)),
                        None => Err(classify(error, |_| None)),
                    },
                }
            })
            .await
            .map_err(OrganizationRefusal::Iam)??;
        if answer
            .enabled_features()
            .contains(&FeatureType::RootCredentialsManagement)
        {
            *self
                .confirmed
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
            return Ok(());
        }
        Err(OrganizationRefusal::RootCredentialsManagementOff(format!(
            "organization {} has root credentials management off (enabled features: {:?})",
            answer.organization_id().unwrap_or("?"),
            answer
                .enabled_features()
                .iter()
                .map(FeatureType::as_str)
                .collect::<Vec<_>>()
        )))
    }

    /// An AssumeRoot session for `account`'s root under `task`, whose IAM
    /// calls are paced by `limiter` (the member account's IAM budget).
    pub async fn session(
        &self,
        account: &str,
        task: RootTask,
        limiter: Arc<DefaultDirectRateLimiter>,
    ) -> Result<RootSession, AssumeRootRefusal> {
        let answer = self
            .sts
            .assume_root()
            .target_principal(account)
            .task_policy_arn(
                aws_sdk_sts::types::PolicyDescriptorType::builder()
                    .arn(task.policy_arn())
                    .build(),
            )
            .duration_seconds(SESSION_SECONDS)
            .send()
            .await;
        let credentials = answer.map_err(|error| {
            classify(error, |e| match e {
                AssumeRootError::ExpiredTokenException(e) => Some(IamError::Other(format!(
                    "ExpiredToken: {}",
                    text(e.message())
                ))),
                AssumeRootError::RegionDisabledException(e) => Some(IamError::Other(format!(
                    "STS is not activated in this region: {}",
                    text(e.message())
                ))),
                _ => None,
            })
        });
        self.metrics.iam_call(
            "AssumeRoot",
            credentials
                .as_ref()
                .map_or_else(IamError::metric_label, |_| "ok"),
        );
        let credentials = credentials
            .map_err(|error| match error {
                IamError::AccessDenied(message) => AssumeRootRefusal::Denied(message),
                other => AssumeRootRefusal::Other(other),
            })?
            .credentials()
            .cloned()
            .ok_or_else(|| {
                AssumeRootRefusal::Other(IamError::Other(
                    "STS AssumeRoot answered without credentials".into(),
                ))
            })?;
        let expires =
            SystemTime::try_from(*credentials.expiration()).unwrap_or(SystemTime::UNIX_EPOCH);
        let session_credentials = aws_sdk_iam::config::Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_string()),
            Some(expires),
            "AssumeRoot",
        );
        let config = self
            .config
            .to_builder()
            .credentials_provider(aws_sdk_iam::config::SharedCredentialsProvider::new(
                session_credentials,
            ))
            .build();
        Ok(RootSession {
            iam: AwsIam::new(&config, limiter, self.metrics.clone(), self.permit.clone()),
            task,
            expires,
        })
    }
}

/// The organization's typed refusals of ListOrganizationsFeatures.
fn refusal(error: &ListOrganizationsFeaturesError) -> Option<OrganizationRefusal> {
    let off = |what: &str, message: Option<&str>| {
        Some(OrganizationRefusal::RootCredentialsManagementOff(format!(
            "{what} ({})",
            text(message)
        )))
    };
    match error {
        ListOrganizationsFeaturesError::AccountNotManagementOrDelegatedAdministratorException(
            e,
        ) => Some(OrganizationRefusal::NotManagementOrDelegatedAdministrator(
            text(e.message()),
        )),
        ListOrganizationsFeaturesError::OrganizationNotFoundException(e) => {
            off("the account is in no organization", e.message())
        }
        ListOrganizationsFeaturesError::OrganizationNotInAllFeaturesModeException(e) => off(
            "the organization does not have all features enabled",
            e.message(),
        ),
        ListOrganizationsFeaturesError::ServiceAccessNotEnabledException(e) => off(
            "trusted access for IAM (iam.amazonaws.com) is not enabled in the organization",
            e.message(),
        ),
        _ => None,
    }
}

/// One AssumeRoot session: root of one member account, one task policy.
pub struct RootSession {
    iam: AwsIam,
    pub task: RootTask,
    expires: SystemTime,
}

impl RootSession {
    /// Refuses to send anything once the session has expired: a new
    /// session is made for the next reconcile instead.
    fn live(&self) -> Result<(), IamError> {
        if SystemTime::now() >= self.expires {
            return Err(IamError::Other(format!(
                "the {} root session has expired; a new one is made at the next reconcile",
                self.task.policy_name()
            )));
        }
        Ok(())
    }

    /// Root's login profile, MFA devices and access keys.
    pub async fn audit(&self) -> Result<RootFindings, IamError> {
        Ok(RootFindings {
            login_profile: self.login_profile().await?,
            mfa_devices: self.mfa_devices().await?,
            access_keys: self.access_keys().await?,
        })
    }

    /// GetLoginProfile without UserName: root's CreateDate, or `None`.
    async fn login_profile(&self) -> Result<Option<String>, IamError> {
        self.live()?;
        let iam = &self.iam;
        iam.call("GetLoginProfile", async {
            match iam.client().get_login_profile().send().await {
                Ok(output) => Ok(output
                    .login_profile()
                    .map(|profile| rfc3339(profile.create_date()))),
                Err(error) => match classify(error, get_profile_error) {
                    IamError::NoSuchEntity(_) => Ok(None),
                    other => Err(other),
                },
            }
        })
        .await
    }

    async fn mfa_devices(&self) -> Result<u32, IamError> {
        self.live()?;
        let iam = &self.iam;
        iam.call("ListMFADevices", async {
            iam.client()
                .list_mfa_devices()
                .send()
                .await
                .map(|output| count(output.mfa_devices().len()))
                .map_err(|error| {
                    classify(error, |e| match e {
                        ListMFADevicesError::NoSuchEntityException(e) => {
                            Some(IamError::NoSuchEntity(text(e.message())))
                        }
                        ListMFADevicesError::ServiceFailureException(e) => {
                            Some(IamError::ServiceFailure(text(e.message())))
                        }
                        _ => None,
                    })
                })
        })
        .await
    }

    async fn access_keys(&self) -> Result<u32, IamError> {
        self.live()?;
        let iam = &self.iam;
        iam.call("ListAccessKeys", async {
            iam.client()
                .list_access_keys()
                .send()
                .await
                .map(|output| count(output.access_key_metadata().len()))
                .map_err(|error| {
                    classify(error, |e| match e {
                        ListAccessKeysError::NoSuchEntityException(e) => {
                            Some(IamError::NoSuchEntity(text(e.message())))
                        }
                        ListAccessKeysError::ServiceFailureException(e) => {
                            Some(IamError::ServiceFailure(text(e.message())))
                        }
                        _ => None,
                    })
                })
        })
        .await
    }

    /// DeleteLoginProfile without UserName (IAMDeleteRootUserCredentials).
    /// NoSuchEntity counts as done.
    pub async fn delete_login_profile(&self) -> Result<(), IamError> {
        self.live()?;
        let iam = &self.iam;
        iam.write("DeleteLoginProfile", async {
            match iam.client().delete_login_profile().send().await {
                Ok(_) => Ok(()),
                Err(error) => match classify(error, delete_profile_error) {
                    IamError::NoSuchEntity(_) => Ok(()),
                    other => Err(other),
                },
            }
        })
        .await
    }

    /// CreateLoginProfile with neither UserName nor Password
    /// (IAMCreateRootUserPassword): root may recover its password. The new
    /// profile's CreateDate; EntityAlreadyExists when root has one.
    pub async fn create_login_profile(&self) -> Result<String, IamError> {
        self.live()?;
        let iam = &self.iam;
        iam.write("CreateLoginProfile", async {
            let output = iam
                .client()
                .create_login_profile()
                // One attempt, as for users: a retry after a lost answer
                // would be refused as existing; the next audit tells.
                .customize()
                .config_override(iam.single_attempt())
                .send()
                .await
                .map_err(|error| classify(error, create_profile_error))?;
            output
                .login_profile()
                .map(|profile| rfc3339(profile.create_date()))
                .ok_or_else(|| {
                    IamError::Other("CreateLoginProfile answered without a LoginProfile".into())
                })
        })
        .await
    }
}

fn count(items: usize) -> u32 {
    u32::try_from(items).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::types::error::{
        AccountNotManagementOrDelegatedAdministratorException, ServiceAccessNotEnabledException,
    };

    #[test]
    fn the_organizations_refusals_are_told_apart_by_their_types() {
        let not_admin =
            ListOrganizationsFeaturesError::AccountNotManagementOrDelegatedAdministratorException(
                AccountNotManagementOrDelegatedAdministratorException::builder()
                    .message("not the management account")
                    .build(),
            );
        assert_eq!(
            refusal(&not_admin),
            Some(OrganizationRefusal::NotManagementOrDelegatedAdministrator(
                "not the management account".into()
            ))
        );
        let no_access = ListOrganizationsFeaturesError::ServiceAccessNotEnabledException(
            ServiceAccessNotEnabledException::builder()
                .message("m")
                .build(),
        );
        assert!(matches!(
            refusal(&no_access),
            Some(OrganizationRefusal::RootCredentialsManagementOff(text)) if text.contains("trusted access for IAM")
        ));
        let other = ListOrganizationsFeaturesError::generic(
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("Throttling")
                .build(),
        );
        assert_eq!(refusal(&other), None, "left to the common classification");
    }
}
