//! Encrypted delivery of a generated password (`generatePassword.deliverTo`):
//! which age recipients (`age1…`, ssh-ed25519, ssh-rsa) and OpenPGP key
//! (src/rules/openpgp.rs) a LoginProfile names, the fingerprints status shows
//! for them, and the ASCII-armored ciphertexts that only their keys open: one
//! age file for all age recipients, one OpenPGP message for the OpenPGP key.
//! Pure: no I/O; the only randomness is the formats' own session keys.
//!
//! Errors name the recipient by its index and a short prefix, never the
//! password: the password is only ever an argument of [`Recipients::encrypt`].

use std::fmt;
use std::io::Write;
use std::str::FromStr;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::rules::openpgp::{PgpKeyError, PgpRecipient};

/// At most this many recipients per LoginProfile (the CRD says the same), so
/// the ciphertext stays a small part of the object's status.
pub const MAX_RECIPIENTS: usize = 10;

/// Why a recipient cannot be used. The message names which one and what to
/// fix; it is meant for the `InvalidRecipient` condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    #[error(
        "deliverTo names no recipient: give ageRecipients (age1… or SSH public keys) or pgpPublicKey"
    )]
    NoRecipient,
    #[error(transparent)]
    Pgp(#[from] PgpKeyError),
    #[error("deliverTo.ageRecipients has {0} recipients; at most {MAX_RECIPIENTS} are allowed")]
    TooMany(usize),
    #[error(
        "deliverTo.ageRecipients[{index}] ({prefix}) is neither an age X25519 recipient (age1…) \
         nor an SSH public key (ssh-ed25519 or ssh-rsa)"
    )]
    Unparseable { index: usize, prefix: String },
    #[error(
        "deliverTo.ageRecipients[{index}] ({prefix}) is an SSH key age cannot encrypt to: {why}; use ssh-ed25519, ssh-rsa (2048 bits or more) or an age1… key"
    )]
    UnsupportedSshKey {
        index: usize,
        prefix: String,
        why: String,
    },
    #[error(
        "deliverTo.ageRecipients[{index}] ({prefix}) is an RSA key shorter than 2048 bits; make a new one (`ssh-keygen -t ed25519`)"
    )]
    RsaTooShort { index: usize, prefix: String },
    #[error(
        "deliverTo.ageRecipients[{index}] ({prefix}) is an RSA key longer than age accepts (4096 bits at most)"
    )]
    RsaTooLong { index: usize, prefix: String },
    #[error("deliverTo.ageRecipients[{index}] ({prefix}) is not a valid SSH public key: {why}")]
    InvalidSshKey {
        index: usize,
        prefix: String,
        why: String,
    },
    #[error("deliverTo.ageRecipients[{index}] names the same key as [{first}]")]
    Duplicate { index: usize, first: usize },
}

/// One recipient, parsed, with the fingerprint status reports for it.
struct Recipient {
    key: Key,
    fingerprint: String,
}

enum Key {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

impl Recipient {
    fn as_age(&self) -> &dyn age::Recipient {
        match &self.key {
            Key::X25519(r) => r,
            Key::Ssh(r) => r,
        }
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Recipient").field(&self.fingerprint).finish()
    }
}

/// The recipients of one LoginProfile, in the order the spec lists them.
#[derive(Debug)]
pub struct Recipients(Vec<Recipient>);

impl Recipients {
    /// Parses every entry of `ageRecipients`; the first bad one is the error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, RecipientError> {
        if entries.is_empty() {
            return Err(RecipientError::NoRecipient);
        }
        if entries.len() > MAX_RECIPIENTS {
            return Err(RecipientError::TooMany(entries.len()));
        }
        let mut parsed: Vec<Recipient> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let recipient = parse_one(index, entry.as_ref().trim())?;
            if let Some(first) = parsed
                .iter()
                .position(|r| r.fingerprint == recipient.fingerprint)
            {
                return Err(RecipientError::Duplicate { index, first });
            }
            parsed.push(recipient);
        }
        Ok(Self(parsed))
    }

    /// The fingerprints, in spec order, as status records them: an age key
    /// as itself (it is short and already what `age-keygen -y` prints), an
    /// SSH key the way `ssh-keygen -l` prints it (`ssh-ed25519 SHA256:…`),
    /// so a person recognises their own key.
    pub fn fingerprints(&self) -> Vec<String> {
        self.0.iter().map(|r| r.fingerprint.clone()).collect()
    }

    /// The password as an ASCII-armored age file (`-----BEGIN AGE ENCRYPTED
    /// FILE-----`) that any one of the recipients can open with
    /// `age -d -i <their key>`.
    pub fn encrypt(&self, password: &[u8]) -> Result<String, EncryptError> {
        let encryptor = age::Encryptor::with_recipients(self.0.iter().map(Recipient::as_age))
            .map_err(|e| EncryptError(e.to_string()))?;
        let mut armored = Vec::new();
        let armor =
            age::armor::ArmoredWriter::wrap_output(&mut armored, age::armor::Format::AsciiArmor)
                .map_err(io_failure)?;
        let mut writer = encryptor.wrap_output(armor).map_err(io_failure)?;
        writer.write_all(password).map_err(io_failure)?;
        writer
            .finish()
            .and_then(|armor| armor.finish())
            .map_err(io_failure)?;
        String::from_utf8(armored).map_err(|_| EncryptError("armor is not UTF-8".into()))
    }
}

/// Every recipient of one LoginProfile: its age recipients and its OpenPGP
/// key, each optional, at least one.
#[derive(Debug)]
pub struct Delivery {
    age: Option<Recipients>,
    pgp: Option<PgpRecipient>,
}

/// The ciphertexts of one password: what status records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// For the age recipients, when there are any.
    pub age: Option<String>,
    /// For the OpenPGP key, when there is one.
    pub pgp: Option<String>,
}

impl Delivery {
    /// Parses `ageRecipients` and `pgpPublicKey` (checked as it stands at
    /// `now`); the first bad one is the error.
    pub fn parse<S: AsRef<str>>(
        age_entries: &[S],
        pgp_public_key: Option<&str>,
        now: std::time::SystemTime,
    ) -> Result<Self, RecipientError> {
        if age_entries.is_empty() && pgp_public_key.is_none() {
            return Err(RecipientError::NoRecipient);
        }
        let age = (!age_entries.is_empty())
            .then(|| Recipients::parse(age_entries))
            .transpose()?;
        let pgp = pgp_public_key
            .map(|armored| PgpRecipient::parse(armored, now))
            .transpose()?;
        Ok(Self { age, pgp })
    }

    /// The fingerprints status records: the age recipients' in spec order,
    /// then the OpenPGP key's (`openpgp <fingerprint>`).
    pub fn fingerprints(&self) -> Vec<String> {
        let mut all = self
            .age
            .as_ref()
            .map(Recipients::fingerprints)
            .unwrap_or_default();
        all.extend(self.pgp.as_ref().map(PgpRecipient::fingerprint));
        all
    }

    /// `password` encrypted for every recipient.
    pub fn encrypt(&self, password: &[u8]) -> Result<Sealed, EncryptError> {
        Ok(Sealed {
            age: self.age.as_ref().map(|r| r.encrypt(password)).transpose()?,
            pgp: self
                .pgp
                .as_ref()
                .map(|r| r.encrypt(password).map_err(EncryptError))
                .transpose()?,
        })
    }
}

/// Encryption failed (it writes to memory, so this is not expected); the text
/// is age's and never holds the plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("encryption failed: {0}")]
pub struct EncryptError(String);

fn io_failure(e: std::io::Error) -> EncryptError {
    EncryptError(e.kind().to_string())
}

fn parse_one(index: usize, entry: &str) -> Result<Recipient, RecipientError> {
    let prefix = prefix_of(entry);
    if entry.starts_with("age1") {
        return age::x25519::Recipient::from_str(entry)
            .map(|r| Recipient {
                fingerprint: r.to_string(),
                key: Key::X25519(r),
            })
            .map_err(|_| RecipientError::Unparseable { index, prefix });
    }
    if !entry.starts_with("ssh-") && !entry.starts_with("ecdsa-") && !entry.starts_with("sk-") {
        return Err(RecipientError::Unparseable { index, prefix });
    }
    use age::ssh::ParseRecipientKeyError as E;
    let key = age::ssh::Recipient::from_str(entry).map_err(|e| match e {
        E::RsaModulusTooSmall => RecipientError::RsaTooShort {
            index,
            prefix: prefix.clone(),
        },
        E::RsaModulusTooLarge => RecipientError::RsaTooLong {
            index,
            prefix: prefix.clone(),
        },
        E::Unsupported(kind) => RecipientError::UnsupportedSshKey {
            index,
            prefix: prefix.clone(),
            why: format!("{kind} keys are not supported by age"),
        },
        E::Invalid(why) => RecipientError::InvalidSshKey {
            index,
            prefix: prefix.clone(),
            why: why.to_string(),
        },
        // `Ignore` (a key age skips) and whatever a later age adds.
        _ => RecipientError::UnsupportedSshKey {
            index,
            prefix: prefix.clone(),
            why: "age cannot encrypt to this kind of key".to_string(),
        },
    })?;
    Ok(Recipient {
        fingerprint: ssh_fingerprint(entry).ok_or_else(|| RecipientError::InvalidSshKey {
            index,
            prefix: prefix.clone(),
            why: "the key is not base64".to_string(),
        })?,
        key: Key::Ssh(key),
    })
}

/// `<type> SHA256:<unpadded base64 of the key blob's SHA-256>`, as
/// `ssh-keygen -l` prints it (without the bit count and comment).
fn ssh_fingerprint(entry: &str) -> Option<String> {
    let mut fields = entry.split_whitespace();
    let kind = fields.next()?;
    // ssh-keygen pads (a 3072-bit RSA key ends in `=`); age also takes a
    // key whose padding was cut off, so the fingerprint must too.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let blob = lenient.decode(fields.next()?).ok()?;
    let digest = Sha256::digest(&blob);
    Some(format!(
        "{kind} SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    ))
}

/// Enough of a recipient to find it in a list, short enough for a condition
/// message (an RSA public key is 400+ characters).
fn prefix_of(entry: &str) -> String {
    const SHOWN: usize = 24;
    let mut chars = entry.chars();
    let shown: String = chars.by_ref().take(SHOWN).collect();
    if chars.next().is_some() {
        format!("{shown}…")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    // Test keys made for these tests with `ssh-keygen -q -N ""`; they guard nothing.
    const ED25519_PUB: &str = include_str!("../../tests/fixtures/test-keys/id_ed25519.pub");
    const ED25519_KEY: &str = include_str!("../../tests/fixtures/test-keys/id_ed25519");
    const RSA2048_PUB: &str = include_str!("../../tests/fixtures/test-keys/id_rsa2048.pub");
    const RSA3072_PUB: &str = include_str!("../../tests/fixtures/test-keys/id_rsa3072.pub");
    const RSA1024_PUB: &str = include_str!("../../tests/fixtures/test-keys/id_rsa1024.pub");
    const ECDSA_PUB: &str = include_str!("../../tests/fixtures/test-keys/id_ecdsa.pub");

    fn decrypt(armored: &str, identity: &dyn age::Identity) -> Option<Vec<u8>> {
        let decryptor =
            age::Decryptor::new(age::armor::ArmoredReader::new(armored.as_bytes())).ok()?;
        let mut reader = decryptor.decrypt(std::iter::once(identity)).ok()?;
        let mut plain = Vec::new();
        reader.read_to_end(&mut plain).ok()?;
        Some(plain)
    }

    fn ssh_identity() -> age::ssh::Identity {
        age::ssh::Identity::from_buffer(ED25519_KEY.as_bytes(), None).expect("test key parses")
    }

    #[test]
    fn each_recipient_alone_opens_the_ciphertext() {
        let alice = age::x25519::Identity::generate();
        let stranger = age::x25519::Identity::generate();
        let recipients =
            Recipients::parse(&[alice.to_public().to_string(), ED25519_PUB.to_string()]).unwrap();
        let armored = recipients.encrypt(b"Correct-Horse-9").unwrap();
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        assert!(!armored.contains("Correct-Horse-9"));
        assert_eq!(
            decrypt(&armored, &alice).as_deref(),
            Some(&b"Correct-Horse-9"[..])
        );
        assert_eq!(
            decrypt(&armored, &ssh_identity()).as_deref(),
            Some(&b"Correct-Horse-9"[..])
        );
        assert_eq!(decrypt(&armored, &stranger), None);
    }

    #[test]
    fn two_encryptions_of_one_password_differ() {
        let recipients = Recipients::parse(&[ED25519_PUB]).unwrap();
        assert_ne!(
            recipients.encrypt(b"same").unwrap(),
            recipients.encrypt(b"same").unwrap()
        );
    }

    #[test]
    fn fingerprints_are_what_people_recognise() {
        let alice = age::x25519::Identity::generate().to_public().to_string();
        let recipients = Recipients::parse(&[alice.clone(), ED25519_PUB.to_string()]).unwrap();
        let fingerprints = recipients.fingerprints();
        assert_eq!(fingerprints[0], alice);
        // What `ssh-keygen -lf tests/fixtures/test-keys/id_ed25519.pub` printed for the test key.
        assert_eq!(
            fingerprints[1],
            "ssh-ed25519 SHA256:bM8y0KT9kNcUs4Kvyst7uFPJAVxmepXl7+L07Cc9mQQ"
        );
        assert!(RSA2048_PUB.starts_with("ssh-rsa"));
        assert!(
            Recipients::parse(&[RSA2048_PUB]).unwrap().fingerprints()[0]
                .starts_with("ssh-rsa SHA256:")
        );
    }

    #[test]
    fn an_rsa_key_with_or_without_its_padding_has_one_fingerprint() {
        // What `ssh-keygen -lf` printed for the 3072-bit key, whose base64 ends in `=`.
        let want = vec!["ssh-rsa SHA256:yLqV7tmOWItLSY5K7VMUfWVVDtZBQRLT4vpwjuNJ19w".to_string()];
        let unpadded = RSA3072_PUB.trim().replace('=', "");
        assert_eq!(
            Recipients::parse(&[RSA3072_PUB]).unwrap().fingerprints(),
            want
        );
        assert_eq!(Recipients::parse(&[unpadded]).unwrap().fingerprints(), want);
    }

    #[test]
    fn bad_recipients_say_which_and_why() {
        let alice = age::x25519::Identity::generate().to_public().to_string();
        let cases: Vec<(Vec<String>, RecipientError)> = vec![
            (vec![], RecipientError::NoRecipient),
            (vec![alice.clone(); 11], RecipientError::TooMany(11)),
            (
                vec![alice.clone(), "hello".into()],
                RecipientError::Unparseable {
                    index: 1,
                    prefix: "hello".into(),
                },
            ),
            (
                vec!["age1notakey".into()],
                RecipientError::Unparseable {
                    index: 0,
                    prefix: "age1notakey".into(),
                },
            ),
            (
                vec![RSA1024_PUB.into()],
                RecipientError::RsaTooShort {
                    index: 0,
                    prefix: prefix_of(RSA1024_PUB.trim()),
                },
            ),
            (
                vec![alice.clone(), format!("  {alice}\n")],
                RecipientError::Duplicate { index: 1, first: 0 },
            ),
        ];
        for (entries, want) in cases {
            assert_eq!(
                Recipients::parse(&entries).unwrap_err(),
                want,
                "{entries:?}"
            );
        }
        let ecdsa = Recipients::parse(&[ECDSA_PUB]).unwrap_err();
        assert!(
            matches!(ecdsa, RecipientError::UnsupportedSshKey { index: 0, .. }),
            "{ecdsa:?}"
        );
        let broken = Recipients::parse(&["ssh-ed25519 AAAA!!!"]).unwrap_err();
        assert!(
            matches!(broken, RecipientError::InvalidSshKey { index: 0, .. }),
            "{broken:?}"
        );
    }

    #[test]
    fn a_delivery_takes_age_recipients_an_openpgp_key_or_both() {
        const PGP: &str = include_str!("../../tests/fixtures/test-keys/pgp-alice.asc");
        let now = std::time::SystemTime::now();
        let none: [&str; 0] = [];
        assert_eq!(
            Delivery::parse(&none, None, now).unwrap_err(),
            RecipientError::NoRecipient
        );
        let both = Delivery::parse(&[ED25519_PUB], Some(PGP), now).unwrap();
        assert_eq!(both.fingerprints().len(), 2);
        assert!(both.fingerprints()[1].starts_with("openpgp "));
        let sealed = both.encrypt(b"pw").unwrap();
        assert!(sealed.age.is_some() && sealed.pgp.is_some());
        let only_pgp = Delivery::parse(&none, Some(PGP), now).unwrap();
        assert_eq!(only_pgp.encrypt(b"pw").unwrap().age, None);
        assert!(matches!(
            Delivery::parse(&none, Some("junk"), now).unwrap_err(),
            RecipientError::Pgp(PgpKeyError::Unparseable(_))
        ));
    }

    #[test]
    fn messages_are_short_and_name_the_entry() {
        let message = Recipients::parse(&[RSA1024_PUB]).unwrap_err().to_string();
        assert!(message.contains("ageRecipients[0]"), "{message}");
        assert!(message.len() < 200, "{message}");
    }
}
