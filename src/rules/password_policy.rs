//! The account password policy: checking a password against it before any
//! IAM write (naming every rule it breaks), and generating passwords that
//! meet it. Pure; the policy itself is read and cached by the controller.

use crate::rules::password::{MAX_CHARS, Password};

/// IAM's symbol set for RequireSymbols.
pub const SYMBOLS: &str = "!@#$%^&*()_+-=[]{}|'";

/// The parts of GetAccountPasswordPolicy that constrain a new password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordPolicy {
    /// No custom policy (GetAccountPasswordPolicy answered NoSuchEntity):
    /// AWS's default rules apply.
    AwsDefault,
    Custom {
        minimum_length: usize,
        require_symbols: bool,
        require_numbers: bool,
        require_uppercase: bool,
        require_lowercase: bool,
        /// How many previous passwords IAM refuses to take again (0: none).
        reuse_prevention: u32,
        /// MaxPasswordAge in days (0: passwords never expire).
        max_age_days: u32,
        /// HardExpiry: an expired password cannot be changed at sign-in;
        /// only an administrator can set a new one.
        hard_expiry: bool,
    },
}

impl PasswordPolicy {
    /// The rules `password` breaks, as short phrases; empty when it complies.
    /// Reuse prevention cannot be checked here (IAM keeps the history), so
    /// IAM's own PasswordPolicyViolation still covers it.
    pub fn violations(&self, password: &Password, user_name: &str) -> Vec<String> {
        let text = password.expose();
        let length = text.chars().count();
        let has_upper = text.chars().any(|c| c.is_ascii_uppercase());
        let has_lower = text.chars().any(|c| c.is_ascii_lowercase());
        let has_number = text.chars().any(|c| c.is_ascii_digit());
        let has_symbol = text.chars().any(|c| SYMBOLS.contains(c));
        let mut broken = Vec::new();
        match *self {
            PasswordPolicy::AwsDefault => {
                if length < 8 {
                    broken.push(format!("needs at least 8 characters (has {length})"));
                }
                let classes = [has_upper, has_lower, has_number, has_symbol]
                    .iter()
                    .filter(|b| **b)
                    .count();
                if classes < 3 {
                    broken.push(format!(
                        "needs at least three of: uppercase letters, lowercase letters, numbers, symbols (has {classes})"
                    ));
                }
                if text == user_name {
                    broken.push("must not be the user name".into());
                }
            }
            PasswordPolicy::Custom {
                minimum_length,
                require_symbols,
                require_numbers,
                require_uppercase,
                require_lowercase,
                ..
            } => {
                if length < minimum_length {
                    broken.push(format!(
                        "needs at least {minimum_length} characters (has {length})"
                    ));
                }
                if require_uppercase && !has_upper {
                    broken.push("needs an uppercase letter".into());
                }
                if require_lowercase && !has_lower {
                    broken.push("needs a lowercase letter".into());
                }
                if require_numbers && !has_number {
                    broken.push("needs a number".into());
                }
                if require_symbols && !has_symbol {
                    broken.push(format!("needs a symbol ({SYMBOLS})"));
                }
            }
        }
        broken
    }

    /// Whether IAM refuses a password the user had before (then re-sending
    /// a password IAM already holds is refused, not accepted).
    pub fn prevents_reuse(&self) -> bool {
        matches!(self, PasswordPolicy::Custom { reuse_prevention, .. } if *reuse_prevention > 0)
    }

    /// How long a password lives (MaxPasswordAge), and whether its expiry
    /// is hard; `None` when passwords never expire.
    pub fn expiry(&self) -> Option<(chrono::Duration, bool)> {
        match *self {
            PasswordPolicy::Custom {
                max_age_days,
                hard_expiry,
                ..
            } if max_age_days > 0 => {
                Some((chrono::Duration::days(max_age_days.into()), hard_expiry))
            }
            _ => None,
        }
    }

    fn minimum_length(&self) -> usize {
        match self {
            PasswordPolicy::AwsDefault => 8,
            PasswordPolicy::Custom { minimum_length, .. } => *minimum_length,
        }
    }
}

const UPPER: &str = "ABCDEFGHJKLMNPQRSTUVWXYZ";
const LOWER: &str = "abcdefghijkmnopqrstuvwxyz";
const DIGITS: &str = "23456789";

/// A random password of `length` characters (raised to the policy's minimum)
/// with every character class, so it meets any policy IAM can express. The
/// randomness comes from the OS CSPRNG; look-alike characters are left out.
pub fn generate(length: usize, policy: &PasswordPolicy) -> Result<Password, getrandom::Error> {
    let length = length.max(policy.minimum_length()).clamp(8, MAX_CHARS);
    let classes = [UPPER, LOWER, DIGITS, SYMBOLS];
    let all: Vec<char> = classes.concat().chars().collect();
    loop {
        let mut bytes = zeroize::Zeroizing::new(vec![0u8; length * 2]);
        getrandom::fill(&mut bytes)?;
        // Two bytes per character keep the modulo bias below 0.2%.
        let text: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(
            bytes
                .chunks(2)
                .map(|pair| all[(usize::from(pair[0]) << 8 | usize::from(pair[1])) % all.len()])
                .collect(),
        );
        if classes
            .iter()
            .all(|class| text.chars().any(|c| class.contains(c)))
        {
            return Ok(
                Password::try_from(text.as_str()).expect("generated from allowed characters")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(text: &str) -> Password {
        Password::try_from(text).unwrap()
    }

    fn strict() -> PasswordPolicy {
        PasswordPolicy::Custom {
            minimum_length: 14,
            require_symbols: true,
            require_numbers: true,
            require_uppercase: true,
            require_lowercase: true,
            reuse_prevention: 0,
            max_age_days: 0,
            hard_expiry: false,
        }
    }

    #[test]
    fn names_every_broken_rule() {
        assert_eq!(
            strict().violations(&pw("weakpassw"), "bob"),
            vec![
                "needs at least 14 characters (has 9)".to_string(),
                "needs an uppercase letter".into(),
                "needs a number".into(),
                format!("needs a symbol ({SYMBOLS})"),
            ]
        );
        assert!(
            strict()
                .violations(&pw("Strong-Password-14"), "bob")
                .is_empty()
        );
    }

    #[test]
    fn aws_default_rules() {
        let default = PasswordPolicy::AwsDefault;
        assert!(default.violations(&pw("Abcdefg1"), "bob").is_empty());
        assert_eq!(
            default.violations(&pw("abcdefgh"), "bob").len(),
            1,
            "one class only"
        );
        assert_eq!(
            default.violations(&pw("Ab1!"), "bob"),
            vec!["needs at least 8 characters (has 4)"]
        );
        assert!(
            default
                .violations(&pw("Bob-Smith-1"), "Bob-Smith-1")
                .contains(&"must not be the user name".to_string())
        );
    }

    #[test]
    fn generated_passwords_meet_the_policy_and_differ() {
        let a = generate(24, &strict()).unwrap();
        let b = generate(24, &strict()).unwrap();
        assert_eq!(a.expose().chars().count(), 24);
        assert!(strict().violations(&a, "bob").is_empty());
        assert_ne!(a, b);
        assert_eq!(
            generate(8, &strict()).unwrap().expose().len(),
            14,
            "raised to the policy minimum"
        );
    }
}
