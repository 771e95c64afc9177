//! The keys behind the status fingerprints: read from files (a mounted Secret
//! or keys an administrator manages), or kept in a Secret in the operator's
//! own namespace that the operator creates on its first start. Besides the
//! current key, older keys (files given with `--fingerprint-old-key-file`, or
//! `old-*` fields of the Secret) keep verifying the fingerprints made with
//! them, so a key can be rotated without re-sending any password
//! (docs/reliability.md).

use std::path::Path;

use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use zeroize::Zeroizing;

use crate::rules::password::KEY_BYTES;

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
        "Secret {0}/{KEY_SECRET_NAME} has no usable `key` field (at least 16 bytes); put one there, or delete the Secret to let the operator create a new key (fingerprints under the lost key are then re-made without re-sending passwords whose source did not change)"
    )]
    Malformed(String),
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// The current key and the older ones that still verify.
pub struct Keys {
    pub current: Zeroizing<Vec<u8>>,
    pub older: Vec<Zeroizing<Vec<u8>>>,
}

fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| KeyError::File {
        path: path.display().to_string(),
        source,
    })?);
    if bytes.len() < 16 {
        return Err(KeyError::TooShort(path.display().to_string()));
    }
    Ok(bytes)
}

/// Loads the keys: from `file` (and `old_files`) if given, else from (or
/// into) the Secret in `namespace`.
pub async fn load(
    client: &Client,
    file: Option<&Path>,
    old_files: &[std::path::PathBuf],
    namespace: Option<&str>,
) -> Result<Keys, KeyError> {
    let mut older = old_files
        .iter()
        .map(|path| read_key_file(path))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = file {
        return Ok(Keys {
            current: read_key_file(path)?,
            older,
        });
    }
    let current = load_secret(client, namespace, &mut older).await?;
    Ok(Keys { current, older })
}

/// The key kept in the Secret (created with a random key if absent); its
/// `old-*` fields are added to `older`.
async fn load_secret(
    client: &Client,
    namespace: Option<&str>,
    older: &mut Vec<Zeroizing<Vec<u8>>>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let namespace = namespace
        .filter(|ns| !ns.is_empty())
        .ok_or(KeyError::NoSource)?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let kube_error = |source| KeyError::Kubernetes {
        namespace: namespace.to_string(),
        source,
    };
    if let Some(secret) = secrets.get_opt(KEY_SECRET_NAME).await.map_err(kube_error)? {
        older.extend(old_keys_of(&secret));
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
        // Not immutable: rotating the key means adding the old one under
        // `old-*` and a new one under `key` (docs/reliability.md).
        data: Some([(KEY_FIELD.to_string(), ByteString(key.to_vec()))].into()),
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

fn old_keys_of(secret: &Secret) -> Vec<Zeroizing<Vec<u8>>> {
    secret
        .data
        .iter()
        .flatten()
        .filter(|(field, key)| field.starts_with("old-") && key.0.len() >= 16)
        .map(|(_, key)| Zeroizing::new(key.0.clone()))
        .collect()
}

fn key_of(secret: &Secret) -> Option<Zeroizing<Vec<u8>>> {
    let key = secret.data.as_ref()?.get(KEY_FIELD)?;
    (key.0.len() >= 16).then(|| Zeroizing::new(key.0.clone()))
}
