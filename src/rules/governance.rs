//! Console-access governance, judged: from what IAM's credential report
//! says of one person, the login profile's CreateDate and the rules in force
//! (the stricter of the LoginProfile's and its IAMAccount's), the
//! conditions to show (MFAActive, PasswordUsed, PasswordExpiring), whether
//! a rule turns console access off, when the password expires, and whether
//! a generated password is due for replacement. Pure: "now" is the
//! report's GeneratedTime, passed in, because that is when its facts held.

use chrono::{DateTime, Duration, Utc};

use crate::api::governance::{Governance, GovernanceAction};

pub const MFA_ACTIVE: &str = "MFAActive";
pub const PASSWORD_USED: &str = "PasswordUsed";
pub const PASSWORD_EXPIRING: &str = "PasswordExpiring";
/// The condition types governance owns (beside kstatus' Ready, Reconciling
/// and Stalled, which kstatus-based health reads; these it ignores).
pub const CONDITION_TYPES: [&str; 3] = [MFA_ACTIVE, PASSWORD_USED, PASSWORD_EXPIRING];

/// The IAM user tag that records when an IAMAccount's MFA grace period
/// started for that person: the CreateDate of the first login profile the
/// operator made for the user under the IAMAccount's rules. It outlives the
/// LoginProfile (a tenant cannot restart the grace by recreating the
/// object, re-enabling or sending a new password) and only someone with IAM
/// rights removes it, which restarts the grace at the next profile.
pub const FLOOR_SINCE_TAG: &str = "iam.loginprofile.dev/floor-since";

/// Every reason a governance condition carries: the condition, its status,
/// the reason and what it means (docs/reference.md lists them).
pub const REASONS: [(&str, &str, &str, &str); 11] = [
    (
        MFA_ACTIVE,
        "True",
        "MFAActive",
        "the IAM user has an active MFA device",
    ),
    (
        MFA_ACTIVE,
        "False",
        "MFAGracePeriod",
        "no MFA device yet, within the grace period of the `mfa` rule (the message says until when)",
    ),
    (
        MFA_ACTIVE,
        "False",
        "NoMFA",
        "no MFA device after the grace period, or with no `mfa` rule (CIS AWS Foundations 1.10)",
    ),
    (
        PASSWORD_USED,
        "True",
        "PasswordUsed",
        "the password was used to sign in within the `unused` threshold (45 days unless set), or the profile is younger",
    ),
    (
        PASSWORD_USED,
        "False",
        "PasswordUnused",
        "the password was not used to sign in for the `unused` threshold or longer (CIS AWS Foundations 1.12)",
    ),
    (
        PASSWORD_EXPIRING,
        "True",
        "PasswordExpiring",
        "the password expires within `expiryWarning` (14 days unless set) under the account policy's MaxPasswordAge",
    ),
    (
        PASSWORD_EXPIRING,
        "True",
        "PasswordExpired",
        "the password expired under the account policy's MaxPasswordAge",
    ),
    (
        PASSWORD_EXPIRING,
        "False",
        "PasswordNotExpiring",
        "the password expires later than `expiryWarning`",
    ),
    (
        PASSWORD_EXPIRING,
        "False",
        "NoPasswordExpiry",
        "the account password policy sets no MaxPasswordAge",
    ),
    (
        "all three",
        "Unknown",
        NOT_IN_REPORT,
        "the IAM user is not in IAM's credential report yet (IAM makes one at most every 4 hours)",
    ),
    (
        "all three",
        "Unknown",
        REPORT_UNAVAILABLE,
        "IAM's credential report could not be read; the message has IAM's error",
    ),
];

/// The user is not in the credential report yet.
pub const NOT_IN_REPORT: &str = "NotInReport";
/// The credential report could not be read.
pub const REPORT_UNAVAILABLE: &str = "ReportUnavailable";

/// CIS 1.12's threshold: PasswordUsed turns False after it when no rule
/// sets another.
const DEFAULT_UNUSED_DAYS: i64 = 45;
/// PasswordExpiring turns True this long before expiry unless set.
const DEFAULT_EXPIRY_WARNING_DAYS: i64 = 14;

/// What the credential report says of one IAM user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonFacts {
    pub password_enabled: bool,
    /// `None`: never used (IAM's `no_information`).
    pub password_last_used: Option<DateTime<Utc>>,
    pub password_last_changed: Option<DateTime<Utc>>,
    pub mfa_active: bool,
}

/// Parses a span as the CRD allows it: digits and one unit (`7d`, `36h`,
/// `90m`, `30s`).
pub fn span(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a length of time such as 7d, 36h, 90m or 30s");
    let unit = text.chars().last().ok_or_else(bad)?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let number: i64 = digits.parse().map_err(|_| bad())?;
    match unit {
        'd' => Ok(Duration::days(number)),
        'h' => Ok(Duration::hours(number)),
        'm' => Ok(Duration::minutes(number)),
        's' => Ok(Duration::seconds(number)),
        _ => Err(bad()),
    }
}

/// One rule in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The grace period (mfa) or the unused threshold (unused).
    pub within: Duration,
    pub action: GovernanceAction,
    /// Whose rule it is: `LoginProfile`, `IAMAccount`, or both (stricter
    /// parts of each).
    pub from: &'static str,
}

impl Rule {
    fn describe(&self, name: &str) -> String {
        format!(
            "{name}: {:?} after {} ({})",
            self.action,
            days(self.within),
            self.from
        )
    }
}

/// The rules in force for one LoginProfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub mfa: Option<Rule>,
    pub unused: Option<Rule>,
    pub expiry_warning: Duration,
    /// Where the LoginProfile asked for less than its IAMAccount allows.
    pub overridden: Vec<String>,
}

impl Rules {
    /// For `status.console.rules`: each rule, then what was overridden.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(rule) = &self.mfa {
            parts.push(rule.describe("mfa"));
        }
        if let Some(rule) = &self.unused {
            parts.push(rule.describe("unused"));
        }
        if parts.is_empty() {
            parts.push("report only".into());
        }
        parts.extend(self.overridden.iter().cloned());
        parts.join("; ")
    }
}

/// The rules in force: for each, the stricter of the LoginProfile's own
/// (`own`) and the IAMAccount's floor (`floor`): the shorter period, and
/// `DisableConsole` over `Report`. Errors name the field that does not parse.
pub fn in_force(own: Option<&Governance>, floor: Option<&Governance>) -> Result<Rules, String> {
    let mfa = |g: &Governance| {
        g.mfa
            .as_ref()
            .map(|r| Ok::<_, String>((span(&r.required_within)?, r.action)))
            .transpose()
    };
    let unused = |g: &Governance| {
        g.unused
            .as_ref()
            .map(|r| Ok::<_, String>((span(&r.after)?, r.action)))
            .transpose()
    };
    let warning = |g: &Governance| g.expiry_warning.as_deref().map(span).transpose();
    let mut overridden = Vec::new();
    let mut stricter = |name: &str, own: Option<(Duration, GovernanceAction)>, floor| {
        combine(name, own, floor, &mut overridden)
    };
    let rules_of = |g: Option<&Governance>| -> Result<_, String> {
        Ok(match g {
            Some(g) => (mfa(g)?, unused(g)?, warning(g)?),
            None => (None, None, None),
        })
    };
    let (own_mfa, own_unused, own_warning) =
        rules_of(own).map_err(|e| format!("spec.governance: {e}"))?;
    let (floor_mfa, floor_unused, floor_warning) =
        rules_of(floor).map_err(|e| format!("the IAMAccount's governance: {e}"))?;
    let mfa = stricter("mfa", own_mfa, floor_mfa);
    let unused = stricter("unused", own_unused, floor_unused);
    // A longer warning is the stricter one (it warns earlier).
    let expiry_warning = own_warning
        .into_iter()
        .chain(floor_warning)
        .max()
        .unwrap_or_else(|| Duration::days(DEFAULT_EXPIRY_WARNING_DAYS));
    Ok(Rules {
        mfa,
        unused,
        expiry_warning,
        overridden,
    })
}

fn combine(
    name: &str,
    own: Option<(Duration, GovernanceAction)>,
    floor: Option<(Duration, GovernanceAction)>,
    overridden: &mut Vec<String>,
) -> Option<Rule> {
    match (own, floor) {
        (None, None) => None,
        (Some((within, action)), None) => Some(Rule {
            within,
            action,
            from: "LoginProfile",
        }),
        (None, Some((within, action))) => Some(Rule {
            within,
            action,
            from: "IAMAccount",
        }),
        (Some(own), Some(floor)) => {
            let within = own.0.min(floor.0);
            let action = own.1.max(floor.1);
            let looser = own.0 > floor.0 || own.1 < floor.1;
            if looser {
                overridden.push(format!(
                    "the LoginProfile's {name} rule ({:?} after {}) is looser than its IAMAccount's ({:?} after {}): the stricter applies",
                    own.1,
                    days(own.0),
                    floor.1,
                    days(floor.0)
                ));
            }
            let from = match (own == (within, action), floor == (within, action)) {
                (true, _) => "LoginProfile",
                (false, true) => "IAMAccount",
                (false, false) => "LoginProfile and IAMAccount",
            };
            Some(Rule {
                within,
                action,
                from,
            })
        }
    }
}

/// What one reconcile knows, for [`judge`].
#[derive(Debug, Clone, Default)]
pub struct Inputs<'a> {
    /// `None`: the user is not in the report (made before the user was).
    pub facts: Option<&'a PersonFacts>,
    /// The report's GeneratedTime.
    pub now: DateTime<Utc>,
    /// The login profile's CreateDate; `None`: it has none.
    pub profile_created: Option<DateTime<Utc>>,
    /// Under an IAMAccount's rules: when the MFA grace period started for
    /// this person ([`FLOOR_SINCE_TAG`]). It counts from there, not from a
    /// profile made since, so a re-enable or a recreated LoginProfile
    /// restarts nothing.
    pub floor_since: Option<DateTime<Utc>>,
    /// The expiry a generated password was last replaced for: until the
    /// next report shows the new password's change, the report still gives
    /// that expiry, and it must not cause a second replacement. (IAM's
    /// clock only: the operator's own may differ.)
    pub replaced_for: Option<DateTime<Utc>>,
    /// MaxPasswordAge and HardExpiry of the account policy.
    pub expiry: Option<(Duration, bool)>,
    /// For a password the operator generated: `rotateBefore`.
    pub rotate_before: Option<Duration>,
}

/// One governance condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub type_: &'static str,
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

/// A rule that turns console access off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disable {
    /// `mfa` or `unused`.
    pub rule: &'static str,
    pub message: String,
}

/// What the rules make of one person's facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judged {
    pub findings: Vec<Finding>,
    pub expires_at: Option<DateTime<Utc>>,
    pub disable: Option<Disable>,
    /// A generated password is within `rotateBefore` of expiring.
    pub rotate_due: bool,
}

/// Judges one person against the rules, as of the report's time.
pub fn judge(rules: &Rules, inputs: &Inputs) -> Judged {
    let Some(created) = inputs.profile_created else {
        return Judged::default();
    };
    let Some(facts) = inputs.facts else {
        return Judged {
            findings: unknown(
                NOT_IN_REPORT,
                "the IAM user is not in the credential report yet (IAM makes one at most every 4 hours)",
            ),
            ..Judged::default()
        };
    };
    let now = inputs.now;
    let mut judged = Judged::default();

    // MFA (CIS 1.10), from the profile's CreateDate, or under an
    // IAMAccount's rules from the first profile made for the person.
    let (mfa_from, counted_from) = grace_start(created, inputs.floor_since);
    let mfa = if facts.mfa_active {
        finding(
            MFA_ACTIVE,
            "True",
            "MFAActive",
            "the IAM user has an active MFA device".into(),
        )
    } else {
        match &rules.mfa {
            Some(rule) if now - mfa_from >= rule.within => {
                let message = format!(
                    "the IAM user has no active MFA device {} after {counted_from} ({})",
                    days(now - mfa_from),
                    rule.describe("mfa")
                );
                if rule.action == GovernanceAction::DisableConsole {
                    judged.disable = Some(Disable {
                        rule: "mfa",
                        message: message.clone(),
                    });
                }
                finding(MFA_ACTIVE, "False", "NoMFA", message)
            }
            Some(rule) => finding(
                MFA_ACTIVE,
                "False",
                "MFAGracePeriod",
                format!(
                    "the IAM user has no active MFA device; required by {} ({})",
                    time(mfa_from + rule.within),
                    rule.describe("mfa")
                ),
            ),
            None => finding(
                MFA_ACTIVE,
                "False",
                "NoMFA",
                "the IAM user has no active MFA device (CIS AWS Foundations 1.10 asks for one)"
                    .into(),
            ),
        }
    };
    judged.findings.push(mfa);

    // Unused (CIS 1.12): idle since the last sign-in, or since the profile
    // was made if it never was (or was made after that sign-in).
    let since = facts
        .password_last_used
        .map_or(created, |used| used.max(created));
    let idle = now - since;
    let threshold = rules
        .unused
        .as_ref()
        .map_or(Duration::days(DEFAULT_UNUSED_DAYS), |r| r.within);
    let what = match facts.password_last_used {
        Some(used) if used >= created => format!("last used to sign in at {}", time(used)),
        _ => format!(
            "not used to sign in since its login profile was created at {}",
            time(created)
        ),
    };
    let used = if idle >= threshold {
        let message = match &rules.unused {
            Some(rule) => format!(
                "the password was {what}, {} ago ({})",
                days(idle),
                rule.describe("unused")
            ),
            None => format!(
                "the password was {what}, {} ago (CIS AWS Foundations 1.12: {})",
                days(idle),
                days(threshold)
            ),
        };
        if let Some(rule) = &rules.unused
            && rule.action == GovernanceAction::DisableConsole
            && judged.disable.is_none()
        {
            judged.disable = Some(Disable {
                rule: "unused",
                message: message.clone(),
            });
        }
        finding(PASSWORD_USED, "False", "PasswordUnused", message)
    } else {
        finding(
            PASSWORD_USED,
            "True",
            "PasswordUsed",
            format!("the password was {what} (threshold {})", days(threshold)),
        )
    };
    judged.findings.push(used);

    // Expiry: from the last change the report shows.
    let expiring = match (inputs.expiry, facts.password_last_changed) {
        (Some((max_age, hard)), Some(changed)) => {
            let expires_at = changed + max_age;
            judged.expires_at = Some(expires_at);
            judged.rotate_due = inputs
                .rotate_before
                .is_some_and(|before| now >= expires_at - before)
                && inputs.replaced_for != Some(expires_at);
            let hard = if hard {
                "; the account policy sets HardExpiry: once expired, only an administrator can set a new one"
            } else {
                ""
            };
            if now >= expires_at {
                finding(
                    PASSWORD_EXPIRING,
                    "True",
                    "PasswordExpired",
                    format!("the password expired at {}{hard}", time(expires_at)),
                )
            } else if now >= expires_at - rules.expiry_warning {
                finding(
                    PASSWORD_EXPIRING,
                    "True",
                    "PasswordExpiring",
                    format!("the password expires at {}{hard}", time(expires_at)),
                )
            } else {
                finding(
                    PASSWORD_EXPIRING,
                    "False",
                    "PasswordNotExpiring",
                    format!("the password expires at {}", time(expires_at)),
                )
            }
        }
        _ => finding(
            PASSWORD_EXPIRING,
            "False",
            "NoPasswordExpiry",
            "the account password policy sets no MaxPasswordAge".into(),
        ),
    };
    judged.findings.push(expiring);
    judged
}

/// Where the MFA grace counts from, and how a message says so: the
/// profile's CreateDate, or the recorded first one when that is earlier.
fn grace_start(
    created: DateTime<Utc>,
    floor_since: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, String) {
    match floor_since.filter(|first| *first < created) {
        Some(first) => (
            first,
            format!(
                "the first login profile made for it under its IAMAccount's rules ({})",
                time(first)
            ),
        ),
        None => (created, "its login profile was created".to_string()),
    }
}

/// Whether a login profile may be made again for a person whose MFA grace
/// under an IAMAccount's rules started at `floor_since` (a re-enable, a
/// new password after a rule turned console access off, a recreated
/// LoginProfile): not when a `DisableConsole` MFA rule would turn it off at
/// once. Says why not.
pub fn refuse_again(
    rules: &Rules,
    facts: Option<&PersonFacts>,
    now: DateTime<Utc>,
    floor_since: DateTime<Utc>,
) -> Option<Disable> {
    let rule = rules.mfa.as_ref()?;
    let without_mfa = facts.is_none_or(|f| !f.mfa_active);
    (rule.action == GovernanceAction::DisableConsole
        && without_mfa
        && now - floor_since >= rule.within)
        .then(|| Disable {
            rule: "mfa",
            message: format!(
                "the IAM user has no active MFA device {} after the first login profile made for it under its IAMAccount's rules ({}) ({})",
                days(now - floor_since),
                time(floor_since),
                rule.describe("mfa")
            ),
        })
}

/// Every governance condition Unknown, for `reason`.
pub fn unknown(reason: &'static str, message: &str) -> Vec<Finding> {
    CONDITION_TYPES
        .iter()
        .map(|type_| finding(type_, "Unknown", reason, message.to_string()))
        .collect()
}

fn finding(
    type_: &'static str,
    status: &'static str,
    reason: &'static str,
    message: String,
) -> Finding {
    Finding {
        type_,
        status,
        reason,
        message,
    }
}

/// RFC 3339 to the second, as status writes times.
pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A time status (or a tag) recorded with [`time`], read back.
pub fn time_of(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// A period in whole days (hours below two days), for messages.
fn days(period: Duration) -> String {
    if period >= Duration::days(2) {
        format!("{}d", period.num_days())
    } else if period >= Duration::hours(1) {
        format!("{}h", period.num_hours())
    } else {
        format!("{}s", period.num_seconds().max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::governance::{MfaRule, UnusedRule};

    const DISABLE: GovernanceAction = GovernanceAction::DisableConsole;
    const REPORT: GovernanceAction = GovernanceAction::Report;

    fn at(day: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::days(day)
    }

    fn governance(
        mfa: Option<(&str, GovernanceAction)>,
        unused: Option<(&str, GovernanceAction)>,
    ) -> Governance {
        Governance {
            mfa: mfa.map(|(within, action)| MfaRule {
                required_within: within.into(),
                action,
            }),
            unused: unused.map(|(after, action)| UnusedRule {
                after: after.into(),
                action,
            }),
            ..Governance::default()
        }
    }

    fn status_of<'a>(judged: &'a Judged, type_: &str) -> (&'a str, &'a str) {
        let f = judged.findings.iter().find(|f| f.type_ == type_).unwrap();
        (f.status, f.reason)
    }

    #[test]
    fn spans_parse_as_the_crd_allows_them() {
        assert_eq!(span("7d"), Ok(Duration::days(7)));
        assert_eq!(span("36h"), Ok(Duration::hours(36)));
        assert_eq!(span("90m"), Ok(Duration::minutes(90)));
        assert_eq!(span("30s"), Ok(Duration::seconds(30)));
        for bad in ["", "d", "7", "7w", "-1d", "1.5d"] {
            assert!(span(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn the_stricter_of_profile_and_account_applies_and_says_so() {
        let own = governance(Some(("30d", REPORT)), Some(("10d", REPORT)));
        let floor = governance(Some(("7d", DISABLE)), Some(("45d", DISABLE)));
        let rules = in_force(Some(&own), Some(&floor)).unwrap();
        let mfa = rules.mfa.clone().unwrap();
        assert_eq!(
            (mfa.within, mfa.action, mfa.from),
            (Duration::days(7), DISABLE, "IAMAccount")
        );
        let unused = rules.unused.clone().unwrap();
        assert_eq!(
            (unused.within, unused.action, unused.from),
            (Duration::days(10), DISABLE, "LoginProfile and IAMAccount")
        );
        let text = rules.describe();
        assert!(text.contains("the LoginProfile's mfa rule (Report after 30d) is looser than its IAMAccount's (DisableConsole after 7d)"), "{text}");
        // A stricter LoginProfile is simply obeyed.
        let strict = governance(Some(("1d", DISABLE)), None);
        let rules = in_force(Some(&strict), Some(&floor)).unwrap();
        assert!(rules.overridden.is_empty());
        assert_eq!(rules.mfa.unwrap().from, "LoginProfile");
    }

    #[test]
    fn no_mfa_is_reported_then_disabled_after_the_grace_period() {
        let rules = in_force(Some(&governance(Some(("7d", DISABLE)), None)), None).unwrap();
        let facts = PersonFacts {
            password_enabled: true,
            ..PersonFacts::default()
        };
        let mut inputs = Inputs {
            facts: Some(&facts),
            now: at(3),
            profile_created: Some(at(0)),
            ..Inputs::default()
        };
        let early = judge(&rules, &inputs);
        assert_eq!(status_of(&early, MFA_ACTIVE), ("False", "MFAGracePeriod"));
        assert_eq!(early.disable, None);
        inputs.now = at(8);
        let late = judge(&rules, &inputs);
        assert_eq!(status_of(&late, MFA_ACTIVE), ("False", "NoMFA"));
        assert_eq!(late.disable.as_ref().unwrap().rule, "mfa");
        let with_mfa = PersonFacts {
            mfa_active: true,
            ..facts.clone()
        };
        inputs.facts = Some(&with_mfa);
        let fine = judge(&rules, &inputs);
        assert_eq!(status_of(&fine, MFA_ACTIVE), ("True", "MFAActive"));
        assert_eq!(fine.disable, None);
    }

    #[test]
    fn unused_counts_from_the_last_sign_in_or_the_profile_creation() {
        let rules = in_force(Some(&governance(None, Some(("45d", DISABLE)))), None).unwrap();
        let used_long_ago = PersonFacts {
            password_enabled: true,
            password_last_used: Some(at(0)),
            ..PersonFacts::default()
        };
        let inputs = Inputs {
            facts: Some(&used_long_ago),
            now: at(46),
            profile_created: Some(at(0)),
            ..Inputs::default()
        };
        let judged = judge(&rules, &inputs);
        assert_eq!(
            status_of(&judged, PASSWORD_USED),
            ("False", "PasswordUnused")
        );
        assert_eq!(judged.disable.unwrap().rule, "unused");
        // Never used, made 10 days ago: within the grace of a new profile.
        let never = PersonFacts {
            password_enabled: true,
            ..PersonFacts::default()
        };
        let new = Inputs {
            facts: Some(&never),
            now: at(10),
            profile_created: Some(at(0)),
            ..Inputs::default()
        };
        let judged = judge(&rules, &new);
        assert_eq!(status_of(&judged, PASSWORD_USED), ("True", "PasswordUsed"));
        assert_eq!(judged.disable, None);
        // Re-created after its last use: counts from the new profile.
        let recreated = Inputs {
            profile_created: Some(at(45)),
            ..inputs
        };
        assert_eq!(judge(&rules, &recreated).disable, None);
    }

    #[test]
    fn under_an_iam_account_floor_the_mfa_grace_starts_at_the_first_profile() {
        let floor = governance(Some(("7d", DISABLE)), Some(("45d", DISABLE)));
        let rules = in_force(None, Some(&floor)).unwrap();
        let no_mfa = PersonFacts {
            password_enabled: true,
            ..PersonFacts::default()
        };
        // Re-made on day 20 (a re-enable, a recreated object): the grace
        // counted from day 0 is over all the same.
        let remade = Inputs {
            facts: Some(&no_mfa),
            now: at(21),
            profile_created: Some(at(20)),
            floor_since: Some(at(0)),
            ..Inputs::default()
        };
        let judged = judge(&rules, &remade);
        let disable = judged.disable.clone().unwrap();
        assert_eq!(disable.rule, "mfa");
        assert!(
            disable
                .message
                .contains("21d after the first login profile"),
            "the message says where the grace started: {}",
            disable.message
        );
        // Unused still counts from the profile in use (1 day, not 21).
        assert_eq!(status_of(&judged, PASSWORD_USED), ("True", "PasswordUsed"));
        // Without the record the new profile would have had a fresh grace.
        let forgotten = Inputs {
            floor_since: None,
            ..remade.clone()
        };
        assert_eq!(judge(&rules, &forgotten).disable, None);
        // A record later than the profile counts from the profile.
        let later = Inputs {
            floor_since: Some(at(25)),
            now: at(26),
            ..remade
        };
        let judged = judge(&rules, &later);
        assert_eq!(status_of(&judged, MFA_ACTIVE), ("False", "MFAGracePeriod"));
    }

    #[test]
    fn a_profile_is_not_made_again_once_the_floor_grace_is_over_without_mfa() {
        let floor = governance(Some(("7d", DISABLE)), None);
        let rules = in_force(None, Some(&floor)).unwrap();
        let no_mfa = PersonFacts::default();
        let refused = refuse_again(&rules, Some(&no_mfa), at(8), at(0)).unwrap();
        assert_eq!(refused.rule, "mfa");
        // Not in the report yet counts as no device.
        assert!(refuse_again(&rules, None, at(8), at(0)).is_some());
        // Within the grace, or with a device, it may.
        assert_eq!(refuse_again(&rules, Some(&no_mfa), at(6), at(0)), None);
        let with_mfa = PersonFacts {
            mfa_active: true,
            ..PersonFacts::default()
        };
        assert_eq!(refuse_again(&rules, Some(&with_mfa), at(8), at(0)), None);
        // A rule that only reports never refuses.
        let reporting = in_force(None, Some(&governance(Some(("7d", REPORT)), None))).unwrap();
        assert_eq!(refuse_again(&reporting, Some(&no_mfa), at(8), at(0)), None);
    }

    #[test]
    fn every_reason_judged_is_listed_and_every_listed_one_is_judged() {
        let mut seen = std::collections::BTreeSet::new();
        let mut note = |judged: &Judged| {
            for f in &judged.findings {
                seen.insert((f.type_, f.status, f.reason));
            }
        };
        let strict = in_force(
            Some(&governance(Some(("7d", DISABLE)), Some(("45d", REPORT)))),
            None,
        )
        .unwrap();
        let none = in_force(None, None).unwrap();
        let people = [
            PersonFacts::default(),
            PersonFacts {
                mfa_active: true,
                password_last_used: Some(at(40)),
                password_last_changed: Some(at(0)),
                ..PersonFacts::default()
            },
            PersonFacts {
                password_last_changed: Some(at(-85)),
                ..PersonFacts::default()
            },
            PersonFacts {
                password_last_changed: Some(at(-95)),
                ..PersonFacts::default()
            },
        ];
        for facts in &people {
            for rules in [&strict, &none] {
                let ninety_days = Some((Duration::days(90), false));
                for (now, expiry) in [(at(1), None), (at(1), ninety_days), (at(50), ninety_days)] {
                    note(&judge(
                        rules,
                        &Inputs {
                            facts: Some(facts),
                            now,
                            profile_created: Some(at(0)),
                            expiry,
                            ..Inputs::default()
                        },
                    ));
                }
            }
        }
        note(&judge(
            &strict,
            &Inputs {
                profile_created: Some(at(0)),
                ..Inputs::default()
            },
        ));
        for finding in unknown(REPORT_UNAVAILABLE, "") {
            seen.insert((finding.type_, finding.status, finding.reason));
        }
        let listed: std::collections::BTreeSet<(&str, &str, &str)> = REASONS
            .iter()
            .map(|(type_, status, reason, _)| (*type_, *status, *reason))
            .collect();
        let judged: std::collections::BTreeSet<(&str, &str, &str)> = seen
            .iter()
            .map(|(type_, status, reason)| {
                let type_ = if *status == "Unknown" {
                    "all three"
                } else {
                    *type_
                };
                (type_, *status, *reason)
            })
            .collect();
        assert_eq!(judged, listed);
    }

    #[test]
    fn report_only_rules_never_disable() {
        let rules = in_force(
            Some(&governance(Some(("1d", REPORT)), Some(("1d", REPORT)))),
            None,
        )
        .unwrap();
        let facts = PersonFacts::default();
        let inputs = Inputs {
            facts: Some(&facts),
            now: at(100),
            profile_created: Some(at(0)),
            ..Inputs::default()
        };
        let judged = judge(&rules, &inputs);
        assert_eq!(judged.disable, None);
        assert_eq!(status_of(&judged, MFA_ACTIVE).0, "False");
        assert_eq!(status_of(&judged, PASSWORD_USED).0, "False");
    }

    #[test]
    fn expiry_follows_the_last_change_and_rotation_comes_before_it() {
        let rules = in_force(Some(&Governance::default()), None).unwrap();
        let facts = PersonFacts {
            password_enabled: true,
            password_last_changed: Some(at(0)),
            ..PersonFacts::default()
        };
        let mut inputs = Inputs {
            facts: Some(&facts),
            now: at(10),
            profile_created: Some(at(0)),
            expiry: Some((Duration::days(90), true)),
            rotate_before: Some(Duration::days(7)),
            ..Inputs::default()
        };
        let judged = judge(&rules, &inputs);
        assert_eq!(judged.expires_at, Some(at(90)));
        assert_eq!(
            status_of(&judged, PASSWORD_EXPIRING),
            ("False", "PasswordNotExpiring")
        );
        assert!(!judged.rotate_due);
        inputs.now = at(80);
        let warned = judge(&rules, &inputs);
        assert_eq!(
            status_of(&warned, PASSWORD_EXPIRING),
            ("True", "PasswordExpiring")
        );
        assert!(warned.findings[2].message.contains("HardExpiry"));
        assert!(!warned.rotate_due);
        inputs.now = at(84);
        assert!(judge(&rules, &inputs).rotate_due);
        // Replaced: the same report (same expiry) does not replace it again.
        inputs.replaced_for = Some(at(90));
        assert!(!judge(&rules, &inputs).rotate_due);
        // Not generated: reported, never rotated.
        inputs.replaced_for = None;
        inputs.rotate_before = None;
        inputs.now = at(91);
        let expired = judge(&rules, &inputs);
        assert!(!expired.rotate_due);
        assert_eq!(
            status_of(&expired, PASSWORD_EXPIRING),
            ("True", "PasswordExpired")
        );
    }

    #[test]
    fn nothing_is_judged_without_a_profile_and_unknown_before_the_report_has_the_user() {
        let rules = in_force(None, None).unwrap();
        assert_eq!(judge(&rules, &Inputs::default()), Judged::default());
        let judged = judge(
            &rules,
            &Inputs {
                profile_created: Some(at(0)),
                ..Inputs::default()
            },
        );
        assert!(judged.findings.iter().all(|f| f.status == "Unknown"));
    }
}
