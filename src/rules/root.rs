//! Root's login profile in a member account, decided without I/O: the
//! root-task policy each step runs under (AssumeRoot grants one per
//! session), the one write a declared state calls for given what an audit
//! session found, and which of several RootLoginProfiles naming one account
//! manages it.

use k8s_openapi::jiff::Timestamp;

use crate::api::root_login_profile::RootState;

/// AWS's root-task policies this operator uses, one per session: reads in
/// an audit session, and a write only in the session made for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootTask {
    /// GetLoginProfile, ListMFADevices, ListAccessKeys (no writes).
    Audit,
    /// DeleteLoginProfile (and the audit reads).
    DeleteCredentials,
    /// CreateLoginProfile without user name or password, GetLoginProfile.
    CreatePassword,
}

impl RootTask {
    /// The managed policy's name, as status and the docs show it.
    pub fn policy_name(self) -> &'static str {
        match self {
            RootTask::Audit => "IAMAuditRootUserCredentials",
            RootTask::DeleteCredentials => "IAMDeleteRootUserCredentials",
            RootTask::CreatePassword => "IAMCreateRootUserPassword",
        }
    }

    /// The ARN AssumeRoot takes as TaskPolicyArn.
    pub fn policy_arn(self) -> String {
        format!("arn:aws:iam::aws:policy/root-task/{}", self.policy_name())
    }
}

/// What an audit session read of root's credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootFindings {
    /// The login profile's CreateDate (RFC 3339), if root has one.
    pub login_profile: Option<String>,
    pub mfa_devices: u32,
    pub access_keys: u32,
}

/// The one write the declared state calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootWrite {
    /// Root is as declared.
    Nothing,
    /// `Absent`, and root has a login profile.
    DeleteLoginProfile,
    /// `RecoveryEnabled`, and root has none.
    CreateLoginProfile,
}

impl RootWrite {
    /// The task policy of the session the write is made in.
    pub fn task(self) -> RootTask {
        match self {
            RootWrite::Nothing => RootTask::Audit,
            RootWrite::DeleteLoginProfile => RootTask::DeleteCredentials,
            RootWrite::CreateLoginProfile => RootTask::CreatePassword,
        }
    }
}

/// The write `state` calls for, given what the audit found. A password
/// root set under `RecoveryEnabled` is root's own: never replaced.
pub fn write_for(state: RootState, found: &RootFindings) -> RootWrite {
    match (state, found.login_profile.is_some()) {
        (RootState::Absent, true) => RootWrite::DeleteLoginProfile,
        (RootState::RecoveryEnabled, false) => RootWrite::CreateLoginProfile,
        _ => RootWrite::Nothing,
    }
}

/// Of the RootLoginProfiles naming one account (name, creation time), the
/// one that manages it: the oldest, then the first by name, so every
/// replica and every restart picks the same one.
pub fn owner<'a>(
    claimants: impl IntoIterator<Item = (&'a str, Option<Timestamp>)>,
) -> Option<&'a str> {
    claimants
        .into_iter()
        .min_by_key(|(name, created)| (created.unwrap_or(Timestamp::MAX), *name))
        .map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(profile: bool) -> RootFindings {
        RootFindings {
            login_profile: profile.then(|| "2026-01-01T00:00:00Z".into()),
            ..Default::default()
        }
    }

    #[test]
    fn each_state_asks_for_at_most_one_write() {
        for (state, profile, write) in [
            (RootState::Absent, true, RootWrite::DeleteLoginProfile),
            (RootState::Absent, false, RootWrite::Nothing),
            (
                RootState::RecoveryEnabled,
                false,
                RootWrite::CreateLoginProfile,
            ),
            (RootState::RecoveryEnabled, true, RootWrite::Nothing),
        ] {
            assert_eq!(
                write_for(state, &found(profile)),
                write,
                "{state:?} {profile}"
            );
        }
    }

    #[test]
    fn each_write_has_its_own_task_policy() {
        assert_eq!(RootWrite::Nothing.task(), RootTask::Audit);
        assert_eq!(
            RootWrite::DeleteLoginProfile.task().policy_arn(),
            "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials"
        );
        assert_eq!(
            RootWrite::CreateLoginProfile.task().policy_name(),
            "IAMCreateRootUserPassword"
        );
    }

    #[test]
    fn the_oldest_claimant_manages_the_account() {
        let at = |s| Some(Timestamp::from_second(s).unwrap());
        assert_eq!(owner([("b", at(10)), ("a", at(20))]), Some("b"));
        assert_eq!(
            owner([("b", at(10)), ("a", at(10))]),
            Some("a"),
            "a tie: by name"
        );
        assert_eq!(owner([("new", None), ("old", at(1))]), Some("old"));
        assert_eq!(owner([]), None);
    }
}
