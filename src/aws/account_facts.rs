//! Account-wide IAM facts every reconcile shares, each fetched once and
//! cached: the account password policy (refreshed on a timer and after IAM
//! refuses a password) and the credential report (a new one at most every
//! `--credential-report-interval`, since IAM makes one at most every 4 hours).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::{
    api::login_profile::iam_user_key,
    aws::iam::{Iam, IamError},
    rules::governance::PersonFacts,
    rules::password_policy::PasswordPolicy,
};

pub struct AccountCache {
    policy_refresh: Duration,
    report_interval: Duration,
    policy: Mutex<Option<(PasswordPolicy, Instant)>>,
    report: Mutex<Option<(Arc<CredentialReport>, Instant)>>,
}

/// One credential report: per user, what it says of the console password
/// and MFA, and when IAM generated it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CredentialReport {
    pub generated: Option<DateTime<Utc>>,
    users: HashMap<String, PersonFacts>,
}

impl CredentialReport {
    /// Parses IAM's CSV, by column name (IAM may add columns). A time
    /// column that holds no time (`N/A`, `no_information`) is `None`.
    pub fn parse(csv: &str, generated: Option<DateTime<Utc>>) -> Self {
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        let column = |name: &str| header.iter().position(|h| *h == name);
        let Some(user) = column("user") else {
            return Self::default();
        };
        let (enabled, used, changed, mfa) = (
            column("password_enabled"),
            column("password_last_used"),
            column("password_last_changed"),
            column("mfa_active"),
        );
        let users = lines
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                let field = |at: Option<usize>| at.and_then(|at| fields.get(at).copied());
                let time = |at| {
                    field(at)
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc))
                };
                let facts = PersonFacts {
                    password_enabled: field(enabled) == Some("true"),
                    password_last_used: time(used),
                    password_last_changed: time(changed),
                    mfa_active: field(mfa) == Some("true"),
                };
                Some((iam_user_key(fields.get(user)?), facts))
            })
            .collect();
        Self { generated, users }
    }

    /// What the report says of `user` (in any case: IAM tells users apart
    /// without it); `None` if the user is not in it (made after the report).
    pub fn user(&self, user: &str) -> Option<&PersonFacts> {
        self.users.get(&iam_user_key(user))
    }

    pub fn password_last_changed(&self, user: &str) -> Option<DateTime<Utc>> {
        self.user(user)
            .filter(|facts| facts.password_enabled)
            .and_then(|facts| facts.password_last_changed)
    }
}

impl AccountCache {
    pub fn new(policy_refresh: Duration, report_interval: Duration) -> Self {
        Self {
            policy_refresh,
            report_interval,
            policy: Mutex::new(None),
            report: Mutex::new(None),
        }
    }

    /// The account password policy, fetched when the cached one is older
    /// than the refresh period.
    pub async fn password_policy(&self, iam: &impl Iam) -> Result<PasswordPolicy, IamError> {
        let mut cached = self.policy.lock().await;
        if let Some((policy, at)) = cached.as_ref()
            && at.elapsed() < self.policy_refresh
        {
            return Ok(policy.clone());
        }
        let policy = iam.get_account_password_policy().await?;
        *cached = Some((policy.clone(), Instant::now()));
        Ok(policy)
    }

    /// Forgets the policy: IAM refused a password the cached policy allowed,
    /// so the policy may have changed.
    pub async fn forget_policy(&self) {
        *self.policy.lock().await = None;
    }

    /// The newest credential report no older than the report interval
    /// (generated and fetched when the cached one is older); `None` if IAM
    /// had not finished making one after 5 seconds.
    pub async fn credential_report(
        &self,
        iam: &impl Iam,
    ) -> Result<Option<Arc<CredentialReport>>, IamError> {
        let mut cached = self.report.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < self.report_interval);
        if !fresh {
            // IAM answers "started" first and "complete" a moment later.
            for attempt in 0..10 {
                if let Some(text) = iam.credential_report().await? {
                    let report = CredentialReport::parse(&text.csv, text.generated);
                    *cached = Some((Arc::new(report), Instant::now()));
                    break;
                }
                if attempt < 9 {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        Ok(cached.as_ref().map(|(report, _)| report.clone()))
    }

    /// When `user`'s password last changed, per the newest credential report
    /// no older than the report interval. `None`: not known (yet).
    pub async fn password_last_changed(
        &self,
        iam: &impl Iam,
        user: &str,
    ) -> Result<Option<DateTime<Utc>>, IamError> {
        Ok(self
            .credential_report(iam)
            .await?
            .and_then(|report| report.password_last_changed(user)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_report_says_of_each_user() {
        let csv = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active\n\
                   alice,arn:aws:iam::1:user/alice,2026-11-27T09:00:00+00:00,true,no_information,2026-11-27T10:11:12+00:00,N/A,true\n\
                   bob,arn:aws:iam::1:user/bob,2026-11-27T09:00:00+00:00,false,not_supported,N/A,N/A,false\n\
                   carl,arn:aws:iam::1:user/carl,2026-11-27T09:00:00+00:00,true,2026-11-28T08:00:00+00:00,2026-11-27T10:11:12+00:00,N/A,false\n";
        let report = CredentialReport::parse(csv, None);
        assert_eq!(
            report.password_last_changed("alice").unwrap().to_rfc3339(),
            "2026-11-27T10:11:12+00:00"
        );
        assert_eq!(report.password_last_changed("bob"), None, "no password");
        assert_eq!(
            report.password_last_changed("carol"),
            None,
            "not in the report"
        );
        let alice = report.user("alice").unwrap();
        assert!(alice.mfa_active && alice.password_enabled);
        assert_eq!(alice.password_last_used, None, "never used");
        let carl = report.user("Carl").unwrap();
        assert!(
            !carl.mfa_active,
            "a user found in any case, as IAM finds it"
        );
        assert_eq!(
            carl.password_last_used.unwrap().to_rfc3339(),
            "2026-11-28T08:00:00+00:00"
        );
    }
}
