//! The key behind the status fingerprints: read from a file (a mounted Secret
//! or a key an administrator manages), or kept in a Secret in the operator's
//! own namespace that the operator creates on its first start.

use std::path::Path;

use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use zeroize::Zeroizing;

use crate::password::KEY_BYTES;

/// The Secret that holds the generated key.
pub const KEY_SECRET_NAME: &str = "loginprofile-operator-fingerprint-key";
const KEY_FIELD: &str = "key";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the fingerprint key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("the fingerprint key file {0} is shorter than 16 bytes; use at least 32 random bytes")]
    TooShort(String),
    #[error(
        "no fingerprint key: pass --fingerprint-key-file, or --operator-namespace (or POD_NAMESPACE) so the operator can keep its key in a Secret there"
    )]
    NoSource,
    #[error("cannot read or create Secret {namespace}/{KEY_SECRET_NAME}: {source}")]
    Kubernetes {
        namespace: String,
        source: kube::Error,
    },
    #[error(
        "Secret {0}/{KEY_SECRET_NAME} has no usable `key` field; delete it to let the operator create a new one"
    )]
    Malformed(String),
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// Loads the key from `file` if given, else from (or into) the Secret in
/// `namespace`.
pub async fn load(
    client: &Client,
    file: Option<&Path>,
    namespace: Option<&str>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if let Some(path) = file {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| KeyError::File {
            path: path.display().to_string(),
            source,
        })?);
        if bytes.len() < 16 {
            return Err(KeyError::TooShort(path.display().to_string()));
        }
        return Ok(bytes);
    }
    let namespace = namespace
        .filter(|ns| !ns.is_empty())
        .ok_or(KeyError::NoSource)?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let kube_error = |source| KeyError::Kubernetes {
        namespace: namespace.to_string(),
        source,
    };
    if let Some(secret) = secrets.get_opt(KEY_SECRET_NAME).await.map_err(kube_error)? {
        return key_of(&secret).ok_or_else(|| KeyError::Malformed(namespace.to_string()));
    }
    let mut key = Zeroizing::new(vec![0u8; KEY_BYTES]);
    getrandom::fill(&mut key).map_err(|e| KeyError::Random(e.to_string()))?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(KEY_SECRET_NAME.into()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_string(),
                    "loginprofile-operator".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        data: Some([(KEY_FIELD.to_string(), ByteString(key.to_vec()))].into()),
        immutable: Some(true),
        ..Default::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => {
            tracing::info!(
                namespace,
                secret = KEY_SECRET_NAME,
                "created the fingerprint key Secret"
            );
            Ok(key)
        }
        // Another replica created it first: use theirs, so all agree.
        Err(kube::Error::Api(status)) if status.is_already_exists() => {
            let secret = secrets.get(KEY_SECRET_NAME).await.map_err(kube_error)?;
            key_of(&secret).ok_or_else(|| KeyError::Malformed(namespace.to_string()))
        }
        Err(source) => Err(kube_error(source)),
    }
}

fn key_of(secret: &Secret) -> Option<Zeroizing<Vec<u8>>> {
    let key = secret.data.as_ref()?.get(KEY_FIELD)?;
    (key.0.len() >= 16).then(|| Zeroizing::new(key.0.clone()))
}
