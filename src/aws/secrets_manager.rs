//! AWS Secrets Manager as a password source. Each call is billed, so a
//! cheap DescribeSecret tells whether the version changed, and
//! GetSecretValue runs only for a version not applied yet.

use std::sync::Arc;

use aws_sdk_secretsmanager::{
    error::{ProvideErrorMetadata, SdkError},
    operation::{describe_secret::DescribeSecretError, get_secret_value::GetSecretValueError},
};
use zeroize::Zeroizing;

use crate::aws::error_text::sort_service_error;
use crate::{
    api::login_profile::SecretsManagerRef, api::reason::Reason, ops::metrics::Metrics,
    rules::password::Password, rules::plan::SourceProblem,
};

/// Why the password could not be read from Secrets Manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmError {
    NotFound(String),
    AccessDenied(String),
    DecryptionFailure(String),
    /// Throttling, 5xx, network: retried with backoff.
    Transient(String),
}

impl SmError {
    /// The condition this error is reported under; never contains the value.
    pub fn problem(&self, reference: &SecretsManagerRef) -> SourceProblem {
        let id = &reference.secret_id;
        let (reason, message) = match self {
            SmError::NotFound(detail) => (
                Reason::SecretsManagerNotFound,
                format!(
                    "Secrets Manager has no secret {id:?} with stage {:?} ({detail}); create it or fix spec.passwordSecretsManagerRef",
                    reference.version_stage
                ),
            ),
            SmError::AccessDenied(detail) => (
                Reason::SecretsManagerAccessDenied,
                format!(
                    "the operator may not read Secrets Manager secret {id:?} ({detail}); grant secretsmanager:DescribeSecret and secretsmanager:GetSecretValue (and kms:Decrypt for its key)"
                ),
            ),
            SmError::DecryptionFailure(detail) => (
                Reason::SecretsManagerDecryptionFailure,
                format!(
                    "Secrets Manager could not decrypt secret {id:?} ({detail}); grant kms:Decrypt on its KMS key"
                ),
            ),
            SmError::Transient(detail) => (
                Reason::SecretsManagerError,
                format!(
                    "could not read Secrets Manager secret {id:?} ({detail}); retrying with backoff"
                ),
            ),
        };
        SourceProblem { reason, message }
    }
}

fn classify<E>(
    error: SdkError<E, aws_smithy_runtime_api::http::Response>,
    not_found: impl Fn(&E) -> bool,
    decryption: impl Fn(&E) -> bool,
) -> SmError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    sort_service_error(
        error,
        |error, message| {
            if not_found(error) {
                Some(SmError::NotFound(message))
            } else if decryption(error) {
                Some(SmError::DecryptionFailure(message))
            } else {
                None
            }
        },
        SmError::AccessDenied,
        SmError::Transient,
    )
}

/// The Secrets Manager client, sharing the SDK configuration (credentials,
/// retries, timeouts) with the IAM client.
#[derive(Clone)]
pub struct AwsSecretsManager {
    client: aws_sdk_secretsmanager::Client,
    metrics: Arc<Metrics>,
}

impl AwsSecretsManager {
    pub fn new(config: &aws_config::SdkConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(config),
            metrics,
        }
    }

    /// DescribeSecret: the VersionId that has the reference's stage.
    pub async fn current_version(&self, reference: &SecretsManagerRef) -> Result<String, SmError> {
        let result = self
            .client
            .describe_secret()
            .secret_id(&reference.secret_id)
            .send()
            .await
            .map_err(|error| {
                classify(
                    error,
                    |e| matches!(e, DescribeSecretError::ResourceNotFoundException(_)),
                    |_| false,
                )
            });
        self.metrics
            .secrets_manager_call("DescribeSecret", outcome(&result));
        let output = result?;
        output
            .version_ids_to_stages()
            .into_iter()
            .flatten()
            .find(|(_, stages)| stages.contains(&reference.version_stage))
            .map(|(version, _)| version.clone())
            .ok_or_else(|| {
                SmError::NotFound(format!(
                    "no version has stage {:?}",
                    reference.version_stage
                ))
            })
    }

    /// GetSecretValue: the password at the reference's stage, and its VersionId.
    pub async fn password(
        &self,
        reference: &SecretsManagerRef,
    ) -> Result<Result<(Password, String), SourceProblem>, SmError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(&reference.secret_id)
            .version_stage(&reference.version_stage)
            .send()
            .await
            .map_err(|error| {
                classify(
                    error,
                    |e| matches!(e, GetSecretValueError::ResourceNotFoundException(_)),
                    |e| matches!(e, GetSecretValueError::DecryptionFailure(_)),
                )
            });
        self.metrics
            .secrets_manager_call("GetSecretValue", outcome(&result));
        let output = result?;
        let version = output.version_id().unwrap_or_default().to_string();
        let text = match (output.secret_string(), output.secret_binary()) {
            (Some(text), _) => Zeroizing::new(text.to_string()),
            (None, Some(blob)) => match std::str::from_utf8(blob.as_ref()) {
                Ok(text) => Zeroizing::new(text.to_string()),
                Err(_) => {
                    return Ok(Err(invalid(
                        reference,
                        "the SecretBinary is not UTF-8 text".into(),
                    )));
                }
            },
            (None, None) => return Ok(Err(invalid(reference, "the secret has no value".into()))),
        };
        Ok(extract(reference, &text).map(|password| (password, version)))
    }
}

fn outcome<T>(result: &Result<T, SmError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(SmError::NotFound(_)) => "not_found",
        Err(SmError::AccessDenied(_)) => "access_denied",
        Err(SmError::DecryptionFailure(_)) => "decryption_failure",
        Err(SmError::Transient(_)) => "error",
    }
}

fn invalid(reference: &SecretsManagerRef, why: String) -> SourceProblem {
    SourceProblem {
        reason: Reason::InvalidPassword,
        message: format!(
            "Secrets Manager secret {:?} cannot be an IAM console password: {why}; change the secret",
            reference.secret_id
        ),
    }
}

/// The password in a SecretString: the whole string, or with `jsonKey` the
/// string value under that key of a JSON object.
pub fn extract(reference: &SecretsManagerRef, text: &str) -> Result<Password, SourceProblem> {
    let id = &reference.secret_id;
    let value = match &reference.json_key {
        None => Zeroizing::new(text.to_string()),
        Some(key) => {
            // serde_json's error messages quote no input, but say nothing of it either way.
            let Ok(serde_json::Value::Object(mut object)) =
                serde_json::from_str::<serde_json::Value>(text)
            else {
                return Err(SourceProblem {
                    reason: Reason::SecretsManagerNotJson,
                    message: format!(
                        "Secrets Manager secret {id:?} is not a JSON object, so jsonKey {key:?} cannot be read; store JSON or remove jsonKey"
                    ),
                });
            };
            // The message names only the key the LoginProfile asked for: the
            // secret's other keys are its owner's business, not the tenant's.
            let Some(serde_json::Value::String(value)) = object.remove(key) else {
                return Err(SourceProblem {
                    reason: Reason::SecretsManagerJsonKeyNotFound,
                    message: format!(
                        "Secrets Manager secret {id:?} has no string under JSON key {key:?}; fix jsonKey or the secret"
                    ),
                });
            };
            let value = Zeroizing::new(value);
            for (_, other) in object.iter_mut() {
                zeroize_json(other);
            }
            value
        }
    };
    Password::from_secret_bytes(value.as_bytes()).map_err(|why| invalid(reference, why.to_string()))
}

/// Other values of the secret's JSON are wiped too, not only dropped.
fn zeroize_json(value: &mut serde_json::Value) {
    use zeroize::Zeroize;
    match value {
        serde_json::Value::String(text) => text.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(zeroize_json),
        serde_json::Value::Object(map) => map.iter_mut().for_each(|(_, v)| zeroize_json(v)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(json_key: Option<&str>) -> SecretsManagerRef {
        SecretsManagerRef {
            secret_id: "prod/bob".into(),
            json_key: json_key.map(Into::into),
            version_stage: "AWSCURRENT".into(),
        }
    }

    #[test]
    fn whole_string_or_json_key() {
        assert_eq!(
            extract(&reference(None), "Plain-Password-1")
                .unwrap()
                .expose(),
            "Plain-Password-1"
        );
        let json = r#"{"username":"bob","password":"Json-Password-1"}"#;
        assert_eq!(
            extract(&reference(Some("password")), json)
                .unwrap()
                .expose(),
            "Json-Password-1"
        );
    }

    #[test]
    fn each_problem_has_its_reason_and_hides_the_value() {
        let missing =
            extract(&reference(Some("pw")), r#"{"password":"Hidden-Value-1"}"#).unwrap_err();
        assert_eq!(missing.reason, Reason::SecretsManagerJsonKeyNotFound);
        assert!(
            missing.message.contains(r#""pw""#)
                && !missing.message.contains("password")
                && !missing.message.contains("Hidden-Value-1"),
            "names the key asked for, no other key, no value: {}",
            missing.message
        );
        let not_json = extract(&reference(Some("pw")), "Hidden-Value-1").unwrap_err();
        assert_eq!(not_json.reason, Reason::SecretsManagerNotJson);
        assert!(!not_json.message.contains("Hidden-Value-1"));
        let invalid = extract(&reference(None), "Hidden€Value").unwrap_err();
        assert_eq!(invalid.reason, Reason::InvalidPassword);
        assert!(!invalid.message.contains("Hidden"));
    }
}
