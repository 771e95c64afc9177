//! Account-wide IAM facts every reconcile shares, each fetched once and
//! cached: the account password policy (refreshed on a timer and after IAM
//! refuses a password) and the credential report (a new one at most every
//! `--credential-report-interval`, since IAM makes one at most every 4 hours).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::{
    aws::iam::{Iam, IamError},
    rules::password_policy::PasswordPolicy,
};

pub struct AccountCache {
    policy_refresh: Duration,
    report_interval: Duration,
    policy: Mutex<Option<(PasswordPolicy, Instant)>>,
    report: Mutex<Option<(CredentialReport, Instant)>>,
}

/// `password_last_changed` per user, from the credential report's CSV.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CredentialReport {
    password_last_changed: HashMap<String, DateTime<Utc>>,
}

impl CredentialReport {
    /// Parses IAM's CSV. Users without a password (`N/A`) are left out.
    pub fn parse(csv: &str) -> Self {
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        let (Some(user), Some(changed)) = (
            header.iter().position(|h| *h == "user"),
            header.iter().position(|h| *h == "password_last_changed"),
        ) else {
            return Self::default();
        };
        let password_last_changed = lines
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                let time = DateTime::parse_from_rfc3339(fields.get(changed)?).ok()?;
                Some((fields.get(user)?.to_string(), time.with_timezone(&Utc)))
            })
            .collect();
        Self {
            password_last_changed,
        }
    }

    pub fn password_last_changed(&self, user: &str) -> Option<DateTime<Utc>> {
        self.password_last_changed.get(user).copied()
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

    /// When `user`'s password last changed, per the newest credential report
    /// no older than the report interval. `None`: not known (yet).
    pub async fn password_last_changed(
        &self,
        iam: &impl Iam,
        user: &str,
    ) -> Result<Option<DateTime<Utc>>, IamError> {
        let mut cached = self.report.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < self.report_interval);
        if !fresh {
            // IAM answers "started" first and "complete" a moment later.
            for attempt in 0..10 {
                if let Some(csv) = iam.credential_report().await? {
                    *cached = Some((CredentialReport::parse(&csv), Instant::now()));
                    break;
                }
                if attempt < 9 {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        Ok(cached
            .as_ref()
            .and_then(|(report, _)| report.password_last_changed(user)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_password_last_changed() {
        let csv = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation\n\
                   alice,arn:aws:iam::1:user/alice,2026-11-27T09:00:00+00:00,true,no_information,2026-11-27T10:11:12+00:00,N/A\n\
                   bob,arn:aws:iam::1:user/bob,2026-11-27T09:00:00+00:00,false,not_supported,N/A,N/A\n";
        let report = CredentialReport::parse(csv);
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
    }
}
