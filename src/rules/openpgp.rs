//! An OpenPGP recipient (`deliverTo.pgpPublicKey`): the ASCII-armored public
//! key a person exports with `gpg --armor --export`, checked the way an
//! OpenPGP implementation must before encrypting to it (its self-signatures
//! verify, it is neither revoked nor expired, and it has a live subkey
//! flagged for encryption), and the ASCII-armored message `gpg -d` opens.
//! rPGP (the `pgp` crate) parses and encrypts; this module only chooses.
//! Pure: no I/O, the time is an argument.

use std::time::{Duration, SystemTime};

use pgp::composed::{
    ArmorOptions, Deserializable, MessageBuilder, SignedPublicKey, SignedPublicSubKey,
};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Timestamp};

/// Why an OpenPGP public key cannot be encrypted to. The key is named by its
/// fingerprint (as `gpg --fingerprint` shows it, without spaces).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgpKeyError {
    #[error(
        "deliverTo.pgpPublicKey is not an ASCII-armored OpenPGP public key (export one with `gpg --armor --export KEYID`): {0}"
    )]
    Unparseable(String),
    #[error("deliverTo.pgpPublicKey {fingerprint}: its self-signatures do not verify")]
    BadSignatures { fingerprint: String },
    #[error("deliverTo.pgpPublicKey {fingerprint} is revoked")]
    Revoked { fingerprint: String },
    #[error(
        "deliverTo.pgpPublicKey {fingerprint} expired at {expired}; extend it (`gpg --quick-set-expire {fingerprint} 1y`) and export it again"
    )]
    Expired {
        fingerprint: String,
        expired: String,
    },
    #[error(
        "deliverTo.pgpPublicKey {fingerprint} has no encryption subkey that is live (not expired or revoked); add one (`gpg --quick-add-key {fingerprint} cv25519 encr`) and export it again"
    )]
    NoEncryptionSubkey { fingerprint: String },
}

/// A checked OpenPGP public key and the subkey a message is encrypted to.
pub struct PgpRecipient {
    key: SignedPublicKey,
    subkey: usize,
    fingerprint: String,
}

impl std::fmt::Debug for PgpRecipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PgpRecipient")
            .field(&self.fingerprint)
            .finish()
    }
}

impl PgpRecipient {
    /// Parses and checks `armored` as it stands at `now`. Of several live
    /// encryption subkeys the newest is used, as GnuPG does.
    pub fn parse(armored: &str, now: SystemTime) -> Result<Self, PgpKeyError> {
        let (key, _headers) = SignedPublicKey::from_string(armored.trim())
            .map_err(|e| PgpKeyError::Unparseable(e.to_string()))?;
        let fingerprint = format!("{:X}", key.fingerprint());
        key.verify_bindings()
            .map_err(|_| PgpKeyError::BadSignatures {
                fingerprint: fingerprint.clone(),
            })?;
        // Any revocation refuses: a false refusal costs a new export, a
        // missed one would hand the password to a key its owner gave up.
        if !key.details.revocation_signatures.is_empty() {
            return Err(PgpKeyError::Revoked { fingerprint });
        }
        let self_signature = newest(
            key.details
                .users
                .iter()
                .flat_map(|user| user.signatures.iter())
                .chain(key.details.direct_signatures.iter()),
        );
        if let Some(expired) = self_signature.and_then(|s| expiry(key.primary_key.created_at(), s))
            && expired <= now
        {
            return Err(PgpKeyError::Expired {
                fingerprint,
                expired: chrono::DateTime::<chrono::Utc>::from(expired)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            });
        }
        let subkey = key
            .public_subkeys
            .iter()
            .enumerate()
            .filter_map(|(index, subkey)| live_encryption_key(subkey, now).map(|c| (c, index)))
            .max()
            .map(|(_, index)| index)
            .ok_or_else(|| PgpKeyError::NoEncryptionSubkey {
                fingerprint: fingerprint.clone(),
            })?;
        Ok(Self {
            key,
            subkey,
            fingerprint,
        })
    }

    /// What status shows: `openpgp <primary key fingerprint>`.
    pub fn fingerprint(&self) -> String {
        format!("openpgp {}", self.fingerprint)
    }

    /// `password` as an ASCII-armored OpenPGP message (SEIPD v1, AES-256,
    /// which every GnuPG 2.x opens) to the chosen subkey.
    pub fn encrypt(&self, password: &[u8]) -> Result<String, String> {
        let mut rng = rand08::rngs::OsRng;
        // rPGP takes the plaintext as `Bytes`, which it does not zeroize:
        // the one copy of the password outside `Zeroizing`, freed at return.
        let mut builder = MessageBuilder::from_bytes("", password.to_vec())
            .seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
        builder
            .encrypt_to_key(&mut rng, &self.key.public_subkeys[self.subkey])
            .map_err(|e| e.to_string())?;
        builder
            .to_armored_string(rng, ArmorOptions::default())
            .map_err(|e| e.to_string())
    }
}

/// The creation time of `subkey` when its current binding says it encrypts
/// and it has not expired.
fn live_encryption_key(subkey: &SignedPublicSubKey, now: SystemTime) -> Option<u32> {
    let binding = newest(subkey.signatures.iter())?;
    let flags = binding.key_flags();
    let encrypts = binding.typ() == Some(SignatureType::SubkeyBinding)
        && (flags.encrypt_comms() || flags.encrypt_storage())
        && subkey.key.algorithm().can_encrypt();
    let live = expiry(subkey.key.created_at(), binding).is_none_or(|at| at > now);
    (encrypts && live).then(|| subkey.key.created_at().as_secs())
}

/// The newest of a component's signatures: its current state.
fn newest<'a>(signatures: impl Iterator<Item = &'a Signature>) -> Option<&'a Signature> {
    signatures.max_by_key(|s| s.created().map_or(0, |t| t.as_secs()))
}

/// When a key made at `created` expires under `signature` (`None`: never).
fn expiry(created: Timestamp, signature: &Signature) -> Option<SystemTime> {
    let after: Duration = signature.key_expiration_time()?.into();
    (!after.is_zero()).then(|| SystemTime::from(created) + after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgp::composed::{Message, SignedSecretKey};

    const ALICE: &str = include_str!("../../tests/fixtures/test-keys/pgp-alice.asc");
    const ALICE_SECRET: &str = include_str!("../../tests/fixtures/test-keys/pgp-alice.key");
    const SIGN_ONLY: &str = include_str!("../../tests/fixtures/test-keys/pgp-sign-only.asc");
    const EXPIRED: &str = include_str!("../../tests/fixtures/test-keys/pgp-expired.asc");
    const REVOKED: &str = include_str!("../../tests/fixtures/test-keys/pgp-revoked.asc");

    #[test]
    fn alice_alone_opens_the_message() {
        let alice = PgpRecipient::parse(ALICE, SystemTime::now()).unwrap();
        assert_eq!(
            alice.fingerprint(),
            "openpgp 648F91587543A47533F1C59EBE623D1013D31EBB"
        );
        let armored = alice.encrypt(b"Correct-Horse-9").unwrap();
        assert!(armored.starts_with("-----BEGIN PGP MESSAGE-----"));
        assert!(!armored.contains("Correct-Horse-9"));
        let (secret, _) = SignedSecretKey::from_string(ALICE_SECRET).unwrap();
        let (message, _) = Message::from_string(&armored).unwrap();
        let mut opened = message.decrypt(&"".into(), &secret).unwrap();
        assert_eq!(opened.as_data_vec().unwrap(), b"Correct-Horse-9");
    }

    #[test]
    fn keys_gpg_would_refuse_are_refused_with_the_fix() {
        let now = SystemTime::now();
        let refused = |armored: &str| PgpRecipient::parse(armored, now).unwrap_err();
        assert!(
            matches!(refused(SIGN_ONLY), PgpKeyError::NoEncryptionSubkey { .. }),
            "{:?}",
            refused(SIGN_ONLY)
        );
        let expired = refused(EXPIRED);
        assert!(
            matches!(&expired, PgpKeyError::Expired { expired, .. } if expired.starts_with("2024-06-01")),
            "{expired:?}"
        );
        assert!(expired.to_string().contains("gpg --quick-set-expire"));
        assert!(matches!(refused(REVOKED), PgpKeyError::Revoked { .. }));
        assert!(matches!(refused("hello"), PgpKeyError::Unparseable(_)));
        // The same expired key was fine before it expired.
        let before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_710_000_000);
        assert!(PgpRecipient::parse(EXPIRED, before).is_ok());
    }
}
