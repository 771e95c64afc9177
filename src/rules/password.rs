//! The console password: a newtype that never prints itself and is wiped from
//! memory when dropped, IAM's character rules checked before any IAM call,
//! and the keyed fingerprint that status shows instead of the password.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// IAM's length limits for a console password, in characters.
pub const MAX_CHARS: usize = 128;

/// A console password. `Debug` and `Display` print `<redacted>`; the bytes
/// are zeroized on drop. The only way to the text is [`Password::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Zeroizing<String>);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a Secret's value cannot be a console password. Messages name the rule
/// and the position, never the character itself or the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPassword {
    #[error("the password is empty")]
    Empty,
    #[error("the password has {0} characters; IAM allows at most {MAX_CHARS}")]
    TooLong(usize),
    #[error("the password is not valid UTF-8 text")]
    NotUtf8,
    #[error(
        "character {position} of the password is not allowed by IAM (allowed: tab, line feed, carriage return and U+0020 to U+00FF)"
    )]
    ForbiddenCharacter { position: usize },
    #[error(
        "the password ends with a line feed, which nobody can type at the console sign-in page; \
         remove it from the Secret (a Secret made with --from-file keeps the file's last newline: \
         use --from-literal, or a file without a trailing newline)"
    )]
    TrailingLineFeed,
}

impl Password {
    /// Reads a password from a Secret's bytes (UTF-8) and checks IAM's rules:
    /// 1 to 128 characters of tab, LF, CR and U+0020..U+00FF.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, InvalidPassword> {
        let text = Zeroizing::new(
            std::str::from_utf8(bytes)
                .map_err(|_| InvalidPassword::NotUtf8)?
                .to_owned(),
        );
        Self::new(text)
    }

    fn new(text: Zeroizing<String>) -> Result<Self, InvalidPassword> {
        let mut count = 0;
        for (index, c) in text.chars().enumerate() {
            if !is_allowed(c) {
                return Err(InvalidPassword::ForbiddenCharacter {
                    position: index + 1,
                });
            }
            count += 1;
        }
        match count {
            0 => Err(InvalidPassword::Empty),
            n if n > MAX_CHARS => Err(InvalidPassword::TooLong(n)),
            _ if text.ends_with('\n') => Err(InvalidPassword::TrailingLineFeed),
            _ => Ok(Self(text)),
        }
    }

    /// The password text, for the IAM call that sends it and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Password {
    type Error = InvalidPassword;
    fn try_from(text: &str) -> Result<Self, InvalidPassword> {
        Self::new(Zeroizing::new(text.to_owned()))
    }
}

fn is_allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}')
}

/// Computes the status fingerprint: HMAC-SHA256 over the user name and the
/// password under a key that only the operator holds, so a reader of the
/// resource cannot test guesses against it. The user name is mixed in so that
/// two users with the same password do not show the same fingerprint.
///
/// A fingerprint names its key (`hmac-sha256:<key id>:<hex>`), so that keys
/// can be rotated: new fingerprints use the current key, and fingerprints
/// under older keys still verify while those keys are kept.
#[derive(Clone)]
pub struct Fingerprinter {
    current: Key,
    older: Vec<Key>,
}

#[derive(Clone)]
struct Key {
    id: String,
    secret: Zeroizing<Vec<u8>>,
}

impl Key {
    fn new(secret: Zeroizing<Vec<u8>>) -> Self {
        // The id is a hash of the key: stable across restarts and replicas,
        // and it tells nothing about the key.
        let digest = Sha256::digest(secret.as_slice());
        let id = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Self { id, secret }
    }

    fn mac(&self, user_name: &str, password: &Password) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length");
        mac.update(user_name.as_bytes());
        mac.update(&[0]);
        mac.update(password.expose().as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl Key {
    /// The key behind seals: derived from the fingerprint key, so a seal
    /// can never be mistaken for a password fingerprint or the reverse.
    fn seal_mac(&self, kind: &str, uid: &str, value: &str) -> String {
        let mut derive = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length");
        derive.update(b"loginprofile-operator seal");
        let sealing = derive.finalize().into_bytes();
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&sealing)
            .expect("HMAC accepts keys of any length");
        for part in [kind, uid, value] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fingerprinter(<keys redacted>)")
    }
}

/// What status records as the applied password's fingerprint when the
/// operator cannot check it: a password kept at adoption, or one taken back
/// by an ownership record under a key it does not hold. It matches no
/// password ([`Verdict::UnknownKey`]), so the source is sent only when its
/// version changes.
pub const UNVERIFIED_PASSWORD: &str = "unverified";

/// Prefix of every fingerprint, naming the algorithm.
pub const FINGERPRINT_PREFIX: &str = "hmac-sha256:";
/// The length of a generated fingerprint key, in bytes.
pub const KEY_BYTES: usize = 32;

/// How a recorded fingerprint compares with a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It is the fingerprint of this password (under the key it names).
    Same,
    /// It is the fingerprint of another password.
    Different,
    /// Its key is not one the operator holds (lost, or never known): it
    /// cannot tell, and must not act on that alone.
    UnknownKey,
}

impl Fingerprinter {
    /// A fingerprinter that writes with `current` and still verifies
    /// fingerprints made with any of `older`.
    pub fn new(current: Zeroizing<Vec<u8>>, older: Vec<Zeroizing<Vec<u8>>>) -> Self {
        Self {
            current: Key::new(current),
            older: older.into_iter().map(Key::new).collect(),
        }
    }

    /// The fingerprint of `password` under the current key.
    pub fn fingerprint(&self, user_name: &str, password: &Password) -> String {
        let key = &self.current;
        format!(
            "{FINGERPRINT_PREFIX}{}:{}",
            key.id,
            key.mac(user_name, password)
        )
    }

    /// Compares a recorded fingerprint with `password`, under the key the
    /// fingerprint names.
    pub fn verify(&self, recorded: &str, user_name: &str, password: &Password) -> Verdict {
        let Some((id, mac)) = recorded
            .strip_prefix(FINGERPRINT_PREFIX)
            .and_then(|rest| rest.split_once(':'))
        else {
            return Verdict::UnknownKey;
        };
        match std::iter::once(&self.current)
            .chain(&self.older)
            .find(|key| key.id == id)
        {
            Some(key) if key.mac(user_name, password) == mac => Verdict::Same,
            Some(_) => Verdict::Different,
            None => Verdict::UnknownKey,
        }
    }
}

impl Fingerprinter {
    /// A seal over `value`, bound to the object `uid` and to what the value
    /// is (`kind`), under the current key: only the operator can make one,
    /// and it is worthless on another object or for another purpose.
    pub fn seal(&self, kind: &str, uid: &str, value: &str) -> String {
        let key = &self.current;
        format!(
            "{FINGERPRINT_PREFIX}{}:{}",
            key.id,
            key.seal_mac(kind, uid, value)
        )
    }

    /// Whether `seal` is this operator's seal of `value` for `kind` on the
    /// object `uid`, under any key it holds. A seal under a key it does not
    /// hold is not believed.
    pub fn unseal(&self, kind: &str, uid: &str, value: &str, seal: &str) -> bool {
        let Some((id, mac)) = seal
            .strip_prefix(FINGERPRINT_PREFIX)
            .and_then(|rest| rest.split_once(':'))
        else {
            return false;
        };
        std::iter::once(&self.current)
            .chain(&self.older)
            .filter(|key| key.id == id)
            .any(|key| {
                let expected = key.seal_mac(kind, uid, value);
                expected.len() == mac.len()
                    && expected
                        .bytes()
                        .zip(mac.bytes())
                        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                        == 0
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Password, InvalidPassword> {
        Password::try_from(text)
    }

    #[test]
    fn boundary_characters() {
        assert_eq!(
            check("ab\u{8}c").unwrap_err(),
            InvalidPassword::ForbiddenCharacter { position: 3 }
        );
        assert!(check("ab\u{9}c").is_ok(), "tab is allowed");
        assert!(check("a\nb\rc").is_ok(), "LF and CR are allowed");
        assert_eq!(
            check("Secret-from-a-file-1\n").unwrap_err(),
            InvalidPassword::TrailingLineFeed
        );
        assert_eq!(
            check("Secret-from-windows-1\r\n").unwrap_err(),
            InvalidPassword::TrailingLineFeed
        );
        assert_eq!(
            check("\u{1f}").unwrap_err(),
            InvalidPassword::ForbiddenCharacter { position: 1 }
        );
        assert!(check("\u{20}").is_ok(), "space is the first printable");
        assert!(check("\u{ff}").is_ok(), "ÿ is the last allowed");
        assert_eq!(
            check("x\u{100}").unwrap_err(),
            InvalidPassword::ForbiddenCharacter { position: 2 }
        );
        assert_eq!(
            check("Pass€word1").unwrap_err(),
            InvalidPassword::ForbiddenCharacter { position: 5 }
        );
    }

    #[test]
    fn boundary_lengths_count_characters_not_bytes() {
        assert_eq!(check("").unwrap_err(), InvalidPassword::Empty);
        assert!(check(&"é".repeat(128)).is_ok(), "128 two-byte characters");
        assert_eq!(
            check(&"a".repeat(129)).unwrap_err(),
            InvalidPassword::TooLong(129)
        );
        assert!(check(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn secret_bytes_must_be_utf8() {
        assert_eq!(
            Password::from_secret_bytes(&[0x61, 0xff]).unwrap_err(),
            InvalidPassword::NotUtf8
        );
        assert_eq!(
            Password::from_secret_bytes("Grüße-1".as_bytes())
                .unwrap()
                .expose(),
            "Grüße-1"
        );
    }

    #[test]
    fn debug_and_display_are_redacted() {
        let password = check("hunter2-Secret").unwrap();
        for shown in [format!("{password:?}"), format!("{password}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("redacted"));
        }
        let error = check("hunter2€").unwrap_err().to_string();
        assert!(
            !error.contains("hunter2") && !error.contains('€'),
            "{error}"
        );
    }

    #[test]
    fn fingerprint_is_keyed_and_per_user() {
        let password = check("Correct-Horse-9").unwrap();
        let a = Fingerprinter::new(Zeroizing::new(b"key-a".to_vec()), vec![]);
        let b = Fingerprinter::new(Zeroizing::new(b"key-b".to_vec()), vec![]);
        let fa = a.fingerprint("bob", &password);
        assert!(fa.starts_with(FINGERPRINT_PREFIX));
        assert_eq!(fa, a.fingerprint("bob", &password), "deterministic");
        assert_ne!(fa, b.fingerprint("bob", &password), "depends on the key");
        assert_ne!(fa, a.fingerprint("alice", &password), "depends on the user");
        assert!(!fa.contains("Correct"));
    }

    #[test]
    fn seals_are_bound_to_key_object_and_kind() {
        let keys = Fingerprinter::new(Zeroizing::new(b"key-a".to_vec()), vec![]);
        let seal = keys.seal("in-charge-since", "uid-1", "2026-12-02T06:00:00.000Z");
        assert!(keys.unseal(
            "in-charge-since",
            "uid-1",
            "2026-12-02T06:00:00.000Z",
            &seal
        ));
        assert!(
            !keys.unseal(
                "in-charge-since",
                "uid-2",
                "2026-12-02T06:00:00.000Z",
                &seal
            ),
            "copied to another object"
        );
        assert!(
            !keys.unseal(
                "in-charge-since",
                "uid-1",
                "2000-01-01T00:00:00.000Z",
                &seal
            ),
            "another value"
        );
        assert!(
            !keys.unseal("sending", "uid-1", "2026-12-02T06:00:00.000Z", &seal),
            "another kind"
        );
        let other = Fingerprinter::new(Zeroizing::new(b"key-b".to_vec()), vec![]);
        assert!(!other.unseal(
            "in-charge-since",
            "uid-1",
            "2026-12-02T06:00:00.000Z",
            &seal
        ));
        let rotated = Fingerprinter::new(
            Zeroizing::new(b"key-b".to_vec()),
            vec![Zeroizing::new(b"key-a".to_vec())],
        );
        assert!(rotated.unseal(
            "in-charge-since",
            "uid-1",
            "2026-12-02T06:00:00.000Z",
            &seal
        ));
        assert!(!keys.unseal("k", "u", "v", "forged"));
    }

    #[test]
    fn fingerprints_verify_under_the_key_they_name() {
        let password = check("Correct-Horse-9").unwrap();
        let other = check("Battery-Staple-7").unwrap();
        let old = Fingerprinter::new(Zeroizing::new(b"old-key".to_vec()), vec![]);
        let recorded = old.fingerprint("bob", &password);
        let rotated = Fingerprinter::new(
            Zeroizing::new(b"new-key".to_vec()),
            vec![Zeroizing::new(b"old-key".to_vec())],
        );
        assert_eq!(rotated.verify(&recorded, "bob", &password), Verdict::Same);
        assert_eq!(rotated.verify(&recorded, "bob", &other), Verdict::Different);
        assert_ne!(
            rotated.fingerprint("bob", &password),
            recorded,
            "new ones use the new key"
        );
        let lost = Fingerprinter::new(Zeroizing::new(b"new-key".to_vec()), vec![]);
        assert_eq!(
            lost.verify(&recorded, "bob", &password),
            Verdict::UnknownKey
        );
        let legacy = "hmac-sha256:0123456789abcdef";
        assert_eq!(lost.verify(legacy, "bob", &password), Verdict::UnknownKey);
    }
}
