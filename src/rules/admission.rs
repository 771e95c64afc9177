//! Who may set which password, decided before any AWS call: the IAMAccount a
//! LoginProfile names must admit its namespace (by name or label selector),
//! its IAM user (name patterns) and, if asked for, adoption; the account
//! must be verified, and must be the one the profile already lives in; and
//! of several LoginProfiles naming one IAM user in one account, only the
//! oldest acts. Pure functions over what the caches hold; refusals name the
//! rule that refused, never another tenant.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{
    ResourceExt,
    core::{Selector, SelectorExt},
};

use crate::{
    api::conditions::Outcome,
    api::iam_account::IAMAccount,
    api::login_profile::{LoginProfile, iam_user_key},
    api::reason::Reason,
};

/// The namespace of a LoginProfile as the admission rules see it.
pub struct NamespaceView<'a> {
    pub name: &'a str,
    /// `None`: the namespace is not (yet) in the cache.
    pub labels: Option<&'a BTreeMap<String, String>>,
}

/// Whether `account` admits `lp` (in `namespace`) to act in it. `Ok` carries
/// the verified AWS account id.
pub fn admit(
    lp: &LoginProfile,
    account: Option<&IAMAccount>,
    namespace: &NamespaceView<'_>,
) -> Result<String, Outcome> {
    let name = lp.account_name();
    let refuse = |message: String| Err(Outcome::new(Reason::NotAdmitted, message));
    // Whether an IAMAccount of that name exists is no business of a
    // namespace it does not admit: one message for both.
    let not_admitted = || {
        refuse(format!(
            "IAMAccount {name:?} does not exist or does not admit namespace {:?} (it is not in spec.namespaces \
             and its labels do not match spec.namespaceSelector): ask a cluster admin (see docs/tenancy.md), \
             or set spec.accountRef.name to one that admits this namespace",
            namespace.name
        ))
    };
    let Some(account) = account.filter(|account| namespace_admitted(account, namespace)) else {
        return not_admitted();
    };
    let already_there = lp
        .status
        .as_ref()
        .is_some_and(|s| s.account_id.is_some() || s.password_fingerprint.is_some());
    if account.metadata.deletion_timestamp.is_some() && !already_there {
        return refuse(format!(
            "IAMAccount {name:?} is being deleted: it serves the LoginProfiles that already use it until they \
             go, and admits no new one; name another IAMAccount in spec.accountRef"
        ));
    }
    let user = lp.user_name();
    if !account
        .spec
        .user_names
        .iter()
        .any(|p| user_name_matches(p, &user))
    {
        return refuse(format!(
            "IAMAccount {name:?} does not admit IAM user {user:?}: no pattern of spec.userNames matches it"
        ));
    }
    if let Some(reference) = &lp.spec.password_secrets_manager_ref
        && !account
            .spec
            .secrets_manager_secret_ids
            .iter()
            .any(|p| glob_match(p, &reference.secret_id))
    {
        return refuse(format!(
            "IAMAccount {name:?} does not admit Secrets Manager secret {:?}: no pattern of \
             spec.secretsManagerSecretIds matches it (ask a cluster admin, or use a Kubernetes Secret)",
            reference.secret_id
        ));
    }
    if lp.spec.adoption_policy.adopts() && !account.spec.allow_adoption {
        return refuse(format!(
            "IAMAccount {name:?} does not allow adoptionPolicy: {:?} (spec.allowAdoption is false): \
             use adoptionPolicy: Fail, or ask a cluster admin",
            lp.spec.adoption_policy
        ));
    }
    let Some(account_id) = account.verified_account_id() else {
        return Err(Outcome::new(
            Reason::AccountNotReady,
            format!(
                "IAMAccount {name:?} is not ready: {}",
                account.not_ready_message().unwrap_or_default()
            ),
        ));
    };
    if let Some(recorded) = lp.status.as_ref().and_then(|s| s.account_id.as_deref())
        && recorded != account_id
    {
        return Err(Outcome::new(
            Reason::AccountChanged,
            format!(
                "the login profile lives in AWS account {recorded}, but IAMAccount {name:?} now acts in {account_id}; \
                 a LoginProfile never moves to another account: create a new LoginProfile and delete this one"
            ),
        ));
    }
    Ok(account_id.to_string())
}

/// Whether the namespace is listed by name or matches the selector. An empty
/// selector matches nothing here.
fn namespace_admitted(account: &IAMAccount, namespace: &NamespaceView<'_>) -> bool {
    if account.spec.namespaces.iter().any(|n| n == namespace.name) {
        return true;
    }
    let (Some(selector), Some(labels)) = (&account.spec.namespace_selector, namespace.labels)
    else {
        return false;
    };
    !selector_is_empty(selector)
        && Selector::try_from(selector.clone()).is_ok_and(|s| s.matches(labels))
}

fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|l| l.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
}

/// Whether an IAMAccount's `userNames` pattern admits `user`, compared as
/// IAM compares user names (without case): a pattern admits every spelling
/// of the users it names, and no case variant slips past it.
pub fn user_name_matches(pattern: &str, user: &str) -> bool {
    glob_match(&iam_user_key(pattern), &iam_user_key(user))
}

/// `*` matches any run of characters (also none), `?` exactly one; the rest
/// matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                last_star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match last_star {
                Some((star, matched)) => {
                    p = star + 1;
                    t = matched + 1;
                    last_star = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Where a LoginProfile stands in line for its IAM user (lower goes first):
/// one that already manages it (`manages`: took charge, or recorded a
/// password, as the operator believes from what only it writes) first, then
/// the oldest, then by uid, so every replica and every reconcile agree.
/// Managing comes first because creationTimestamp has one-second
/// resolution: of two made in the same second, the uid must not take the
/// user from the one that acts.
pub fn rank(lp: &LoginProfile, manages: bool) -> ClaimRank {
    ClaimRank(
        !manages,
        lp.metadata.creation_timestamp.as_ref().map(|t| t.0),
        lp.uid().unwrap_or_default(),
    )
}

/// A place in line for an IAM user (see [`rank`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClaimRank(bool, Option<k8s_openapi::jiff::Timestamp>, String);

/// Whether `lp` owns its IAM user among `rivals`: the other admitted
/// LoginProfiles naming the same user in the same AWS account, ranked with
/// `manages`. A refusal says so without naming the owner (it may be
/// another tenant's).
pub fn claim<'a>(
    lp: &LoginProfile,
    rivals: impl IntoIterator<Item = &'a LoginProfile>,
    manages: impl Fn(&LoginProfile) -> bool,
) -> Result<(), Outcome> {
    let mine = rank(lp, manages(lp));
    let older = rivals
        .into_iter()
        .filter(|other| other.uid() != lp.uid())
        .any(|other| rank(other, manages(other)) < mine);
    if older {
        return Err(Outcome::new(
            Reason::UserClaimed,
            format!(
                "IAM user {:?} is already managed by an older LoginProfile; this one waits, and takes over \
                 (under its own adoptionPolicy) once that one is deleted",
                lp.user_name()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn account(spec: serde_json::Value, account_id: Option<&str>) -> IAMAccount {
        let mut account = IAMAccount::new("team-a", serde_json::from_value(spec).unwrap());
        account.metadata.generation = Some(1);
        account.status = account_id.map(|id| crate::api::iam_account::IAMAccountStatus {
            observed_generation: Some(1),
            account_id: Some(id.into()),
            login_profiles: None,
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: "Verified".into(),
                message: String::new(),
                observed_generation: Some(1),
                last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
            }],
        });
        account
    }

    fn lp(name: &str, spec: serde_json::Value) -> LoginProfile {
        let mut spec_value = serde_json::json!({"passwordSecretRef": {"name": "s"}});
        spec_value
            .as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        let mut lp = LoginProfile::new(name, serde_json::from_value(spec_value).unwrap());
        lp.metadata.namespace = Some("ns-a".into());
        lp
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn user_name_patterns_compare_as_iam_does() {
        assert!(user_name_matches("team-a-*", "Team-A-Bob"));
        assert!(user_name_matches("Alice", "alice"));
        assert!(!user_name_matches("team-a-*", "team-b-bob"));
    }

    #[test]
    fn globs_match_like_shell_patterns() {
        assert!(glob_match("team-a-*", "team-a-bob"));
        assert!(glob_match("team-a-*", "team-a-"));
        assert!(!glob_match("team-a-*", "team-b-bob"));
        assert!(glob_match("*", "anyone"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*-admin-*x", "ops-admin-1-admin-x"));
        assert!(!glob_match("bob", "bobby"));
        assert!(!glob_match("", "bob"));
    }

    #[test]
    fn empty_rules_admit_nothing() {
        let open_users = serde_json::json!({"userNames": ["*"], "namespaceSelector": {}});
        let labelled = labels(&[("team", "a")]);
        let ns = NamespaceView {
            name: "ns-a",
            labels: Some(&labelled),
        };
        let refused = admit(
            &lp("bob", serde_json::json!({})),
            Some(&account(open_users, Some("1"))),
            &ns,
        )
        .unwrap_err();
        assert_eq!(refused.reason, Reason::NotAdmitted);
        assert!(
            refused
                .message
                .contains("does not admit namespace \"ns-a\""),
            "{}",
            refused.message
        );

        let no_users = serde_json::json!({"namespaces": ["ns-a"]});
        let refused = admit(
            &lp("bob", serde_json::json!({})),
            Some(&account(no_users, Some("1"))),
            &ns,
        )
        .unwrap_err();
        assert!(
            refused.message.contains("spec.userNames"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn secrets_manager_secrets_are_admitted_by_pattern_only() {
        let ns = NamespaceView {
            name: "ns-a",
            labels: None,
        };
        let from = |secret_id: &str| {
            let mut lp = lp("team-a-bob", serde_json::json!({}));
            lp.spec.password_secret_ref = None;
            lp.spec.password_secrets_manager_ref =
                Some(Box::new(crate::api::login_profile::SecretsManagerRef {
                    secret_id: secret_id.into(),
                    json_key: None,
                    version_stage: "AWSCURRENT".into(),
                }));
            lp
        };
        let none = account(
            serde_json::json!({"namespaces": ["ns-a"], "userNames": ["*"]}),
            Some("111111111111"),
        );
        let refused = admit(&from("team-a/bob"), Some(&none), &ns).unwrap_err();
        assert_eq!(refused.reason, Reason::NotAdmitted);
        assert!(
            refused.message.contains("spec.secretsManagerSecretIds"),
            "{}",
            refused.message
        );
        let team_a = account(
            serde_json::json!({"namespaces": ["ns-a"], "userNames": ["*"],
                "secretsManagerSecretIds": ["team-a/*", "arn:aws:secretsmanager:*:111111111111:secret:team-a/*"]}),
            Some("111111111111"),
        );
        assert!(admit(&from("team-a/bob"), Some(&team_a), &ns).is_ok());
        assert!(
            admit(
                &from("arn:aws:secretsmanager:us-east-1:111111111111:secret:team-a/bob-AbCdEf"),
                Some(&team_a),
                &ns
            )
            .is_ok()
        );
        assert!(admit(&from("team-b/alice"), Some(&team_a), &ns).is_err());
        assert!(
            admit(
                &from("arn:aws:secretsmanager:us-east-1:111111111111:secret:team-b/alice"),
                Some(&team_a),
                &ns
            )
            .is_err()
        );
        assert!(
            admit(&lp("team-a-bob", serde_json::json!({})), Some(&none), &ns).is_ok(),
            "a Kubernetes Secret needs no such rule"
        );
    }

    #[test]
    fn admits_by_name_or_selector_and_checks_users_and_adoption() {
        let labelled = labels(&[("team", "a")]);
        let ns = NamespaceView {
            name: "ns-a",
            labels: Some(&labelled),
        };
        let by_label = account(
            serde_json::json!({"namespaceSelector": {"matchLabels": {"team": "a"}}, "userNames": ["team-a-*"]}),
            Some("111111111111"),
        );
        assert_eq!(
            admit(
                &lp("team-a-bob", serde_json::json!({})),
                Some(&by_label),
                &ns
            )
            .unwrap(),
            "111111111111"
        );
        let outside = admit(&lp("admin", serde_json::json!({})), Some(&by_label), &ns).unwrap_err();
        assert!(
            outside.message.contains("IAM user \"admin\""),
            "{}",
            outside.message
        );
        for policy in ["Adopt", "AdoptKeepingPassword"] {
            let adopt = admit(
                &lp("team-a-bob", serde_json::json!({"adoptionPolicy": policy})),
                Some(&by_label),
                &ns,
            )
            .unwrap_err();
            assert!(adopt.message.contains("allowAdoption"), "{}", adopt.message);
            assert!(adopt.message.contains(policy), "{}", adopt.message);
        }

        let other_ns = NamespaceView {
            name: "ns-b",
            labels: None,
        };
        let by_name = account(
            serde_json::json!({"namespaces": ["ns-b"], "userNames": ["*"]}),
            Some("1"),
        );
        assert!(admit(&lp("x", serde_json::json!({})), Some(&by_name), &other_ns).is_ok());
        let missing = admit(&lp("x", serde_json::json!({})), None, &other_ns).unwrap_err();
        assert!(
            missing
                .message
                .contains("IAMAccount \"default\" does not exist")
        );
        // A namespace it does not admit learns nothing of whether it exists.
        let elsewhere = account(
            serde_json::json!({"namespaces": ["ns-c"], "userNames": ["*"]}),
            Some("1"),
        );
        let refused =
            admit(&lp("x", serde_json::json!({})), Some(&elsewhere), &other_ns).unwrap_err();
        assert_eq!(refused.message, missing.message);
    }

    #[test]
    fn an_unverified_or_moved_account_is_not_used() {
        let ns = NamespaceView {
            name: "ns-a",
            labels: None,
        };
        let spec = serde_json::json!({"namespaces": ["ns-a"], "userNames": ["*"]});
        let unverified = admit(
            &lp("bob", serde_json::json!({})),
            Some(&account(spec.clone(), None)),
            &ns,
        )
        .unwrap_err();
        assert_eq!(unverified.reason, Reason::AccountNotReady);
        let mut moved = lp("bob", serde_json::json!({}));
        moved.status = Some(crate::api::login_profile::LoginProfileStatus {
            account_id: Some("111111111111".into()),
            ..Default::default()
        });
        let refused = admit(
            &moved,
            Some(&account(spec.clone(), Some("222222222222"))),
            &ns,
        )
        .unwrap_err();
        assert_eq!(refused.reason, Reason::AccountChanged);

        let mut deleting = account(spec, Some("111111111111"));
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        let new = admit(&lp("bob", serde_json::json!({})), Some(&deleting), &ns).unwrap_err();
        assert_eq!(new.reason, Reason::NotAdmitted);
        assert!(new.message.contains("being deleted"), "{}", new.message);
        assert!(
            admit(&moved, Some(&deleting), &ns).is_ok(),
            "one that already uses it is served until it goes"
        );
    }

    #[test]
    fn the_oldest_claim_wins_and_the_refusal_names_nobody() {
        let at = |name: &str, uid: &str, secs: i64| {
            let mut lp = lp(name, serde_json::json!({"userName": "bob"}));
            lp.metadata.uid = Some(uid.into());
            lp.metadata.creation_timestamp = Some(Time(
                k8s_openapi::jiff::Timestamp::from_second(secs).unwrap(),
            ));
            lp
        };
        let (old, young, twin) = (
            at("old", "u1", 10),
            at("young", "u2", 20),
            at("twin", "u0", 20),
        );
        let by_status = |lp: &LoginProfile| {
            lp.status
                .as_ref()
                .is_some_and(|s| s.password_fingerprint.is_some())
        };
        assert!(claim(&old, [&young, &twin], by_status).is_ok());
        let refused = claim(&young, [&old], by_status).unwrap_err();
        assert_eq!(refused.reason, Reason::UserClaimed);
        assert!(!refused.message.contains("\"old\""), "{}", refused.message);
        assert!(
            claim(&twin, [&young], by_status).is_ok(),
            "same second: the uid decides"
        );
        assert!(claim(&young, [&twin], by_status).is_err());
        let mut managing = at("managing", "u9", 20);
        managing.status = Some(crate::api::login_profile::LoginProfileStatus {
            password_fingerprint: Some("fp".into()),
            ..Default::default()
        });
        assert!(
            claim(&managing, [&old, &twin], by_status).is_ok(),
            "the one that manages the user keeps it"
        );
        assert!(claim(&old, [&managing], by_status).is_err());
        assert!(
            claim(&young, [&old], |lp: &LoginProfile| lp.name_any() == "young").is_ok(),
            "managing is what the caller believes, nothing the object says of itself"
        );
    }
}
