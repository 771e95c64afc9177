//! Where the password comes from: the referenced Secret, read when a
//! LoginProfile needs it (never cached), and turned into a validated
//! [`Password`] or a terminal problem with a message that says what to fix;
//! and, with `generatePassword`, the Secret the operator creates.

use k8s_openapi::{ByteString, api::core::v1::Secret};

use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
};

use crate::{
    api::login_profile::{DeletionPolicy, LoginProfile, SecretKeyRef},
    api::reason::Reason,
    rules::password::Password,
    rules::plan::SourceProblem,
};

/// A password and the version of the Secret it came from.
#[derive(Debug)]
pub struct SourcedPassword {
    pub password: Password,
    pub resource_version: Option<String>,
}

/// Reads the LoginProfile's Secret from the API server, and says what is
/// wrong with it (or with reading it) in words a person can act on.
pub async fn read(
    client: &Client,
    lp: &LoginProfile,
    reference: &SecretKeyRef,
) -> Result<SourcedPassword, SourceProblem> {
    let namespace = lp.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret = secrets
        .get_opt(&reference.name)
        .await
        .map_err(|error| kubernetes_problem(&error, "read (get)", &namespace, &reference.name))?;
    password_from(&namespace, reference, secret.as_ref())
}

/// A failed Secret request as a problem status can report: refused by RBAC
/// is terminal (`SecretAccessDenied`, rechecked on resync), anything else is
/// transient (`KubernetesError`, retried with backoff).
pub fn kubernetes_problem(
    error: &kube::Error,
    verb: &str,
    namespace: &str,
    name: &str,
) -> SourceProblem {
    match error {
        kube::Error::Api(status) if status.is_forbidden() => SourceProblem {
            reason: Reason::SecretAccessDenied,
            message: format!(
                "the operator may not {verb} Secret {name:?} in namespace {namespace:?}; \
                 grant its ServiceAccount that on Secrets there (Helm chart: watchNamespaces, \
                 and generatedPasswords=true for generatePassword)"
            ),
        },
        other => SourceProblem {
            reason: Reason::KubernetesError,
            message: format!(
                "could not {verb} Secret {name:?} in namespace {namespace:?}: {other}; retrying"
            ),
        },
    }
}

/// Label on every Secret the operator generated a password into.
pub const GENERATED_FOR_LABEL: &str = "iam.loginprofile.dev/generated-for";

/// Creates the LoginProfile's Secret holding a generated password:
/// labelled, and owned by the LoginProfile (so it goes with it) unless its
/// deletion policy (or else `default_policy`) is `Retain`. Returns false
/// when the Secret already existed: an existing password is never replaced.
pub async fn create_generated(
    client: &Client,
    lp: &LoginProfile,
    reference: &SecretKeyRef,
    password: &Password,
    default_policy: DeletionPolicy,
) -> Result<bool, kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &lp.namespace().unwrap_or_default());
    let owned = lp.deletion_policy(default_policy) == DeletionPolicy::Delete;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(reference.name.clone()),
            labels: Some(
                [
                    (
                        "app.kubernetes.io/managed-by".to_string(),
                        "loginprofile-operator".to_string(),
                    ),
                    (GENERATED_FOR_LABEL.to_string(), lp.name_any()),
                ]
                .into(),
            ),
            owner_references: owned.then(|| lp.controller_owner_ref(&()).into_iter().collect()),
            ..Default::default()
        },
        data: Some(
            [(
                reference.key.clone(),
                ByteString(password.expose().as_bytes().to_vec()),
            )]
            .into(),
        ),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
        Err(error) => Err(error),
    }
}

/// Puts a new password into the Secret the operator generated for `lp`
/// (it carries the `generated-for` label naming `lp`), if the Secret is
/// still at `resource_version`. False when it is not the operator's, or
/// changed meanwhile: a password someone else wrote is never replaced.
pub async fn replace_generated(
    client: &Client,
    lp: &LoginProfile,
    reference: &SecretKeyRef,
    password: &Password,
    resource_version: &str,
) -> Result<bool, kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &lp.namespace().unwrap_or_default());
    let Some(secret) = secrets.get_opt(&reference.name).await? else {
        return Ok(false);
    };
    let ours = secret.labels().get(GENERATED_FOR_LABEL) == Some(&lp.name_any());
    if !ours || secret.resource_version().as_deref() != Some(resource_version) {
        return Ok(false);
    }
    let value = ByteString(password.expose().as_bytes().to_vec());
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": resource_version},
        "data": {reference.key.as_str(): value},
    });
    match secrets
        .patch(
            &reference.name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_conflict() => Ok(false),
        Err(error) => Err(error),
    }
}

/// The pure part of [`read`]: what a Secret (or its absence) means.
pub fn password_from(
    namespace: &str,
    reference: &SecretKeyRef,
    secret: Option<&Secret>,
) -> Result<SourcedPassword, SourceProblem> {
    let Some(secret) = secret else {
        return Err(SourceProblem {
            reason: Reason::SecretNotFound,
            message: format!(
                "Secret {:?} does not exist in namespace {:?}; create it with the password under key {:?}",
                reference.name, namespace, reference.key
            ),
        });
    };
    let Some(bytes) = secret
        .data
        .as_ref()
        .and_then(|data| data.get(&reference.key))
    else {
        let mut keys: Vec<&String> = secret.data.iter().flat_map(|d| d.keys()).collect();
        keys.sort();
        let present = if keys.is_empty() {
            "no keys".to_string()
        } else {
            format!("{keys:?}")
        };
        return Err(SourceProblem {
            reason: Reason::SecretKeyNotFound,
            message: format!(
                "Secret {:?} has no key {:?} (it has: {present}); add the key or set spec.passwordSecretRef.key",
                reference.name, reference.key
            ),
        });
    };
    match Password::from_secret_bytes(&bytes.0) {
        Ok(password) => Ok(SourcedPassword {
            password,
            resource_version: secret.resource_version(),
        }),
        Err(invalid) => Err(SourceProblem {
            reason: Reason::InvalidPassword,
            message: format!(
                "the value of key {:?} in Secret {:?} cannot be an IAM console password: {invalid}; change the Secret",
                reference.key, reference.name
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(key: &str) -> SecretKeyRef {
        SecretKeyRef {
            name: "pw".into(),
            key: key.into(),
        }
    }

    fn secret(data: &[(&str, &[u8])]) -> Secret {
        let mut secret = Secret::default();
        secret.metadata.resource_version = Some("42".into());
        secret.data = Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), k8s_openapi::ByteString(v.to_vec())))
                .collect(),
        );
        secret
    }

    #[test]
    fn missing_secret_says_which_and_where() {
        let problem = password_from("team-a", &reference("password"), None).unwrap_err();
        assert_eq!(problem.reason, Reason::SecretNotFound);
        assert!(problem.message.contains("\"pw\"") && problem.message.contains("\"team-a\""));
    }

    #[test]
    fn missing_key_lists_the_keys_that_exist() {
        let problem = password_from(
            "team-a",
            &reference("password"),
            Some(&secret(&[("pass", b"x"), ("user", b"y")])),
        )
        .unwrap_err();
        assert_eq!(problem.reason, Reason::SecretKeyNotFound);
        assert!(
            problem.message.contains(r#"["pass", "user"]"#),
            "{}",
            problem.message
        );
    }

    #[test]
    fn invalid_value_names_the_rule_not_the_value() {
        let problem = password_from(
            "team-a",
            &reference("password"),
            Some(&secret(&[("password", "Secret€1".as_bytes())])),
        )
        .unwrap_err();
        assert_eq!(problem.reason, Reason::InvalidPassword);
        assert!(
            problem.message.contains("character 7"),
            "{}",
            problem.message
        );
        assert!(!problem.message.contains("Secret€1"));
    }

    #[test]
    fn a_good_value_carries_the_secret_version() {
        let sourced = password_from(
            "team-a",
            &reference("pw-key"),
            Some(&secret(&[("pw-key", b"Good-Password-1")])),
        )
        .unwrap();
        assert_eq!(sourced.password.expose(), "Good-Password-1");
        assert_eq!(sourced.resource_version.as_deref(), Some("42"));
    }
}
