//! The admit step, before any AWS call: the IAMAccount a LoginProfile names
//! admits it (rules/admission.rs over the caches), and no other admitted
//! LoginProfile owns its IAM user (the claim index, then at most the first
//! in line read fresh).

use crate::controller::runtime::context::Context;
use crate::controller::runtime::context::InAccount;
use crate::controller::runtime::tenancy::TenancyStores;
use std::sync::Arc;

use kube::{Api, ResourceExt, runtime::reflector::ObjectRef};

use crate::{
    api::conditions::Outcome, api::login_profile::LoginProfile, api::reason::Reason, aws::iam::Iam,
    rules::admission, rules::governance,
};

impl<I: Iam> Context<I> {
    /// Whether `lp` may act, and in which AWS account: the IAMAccount it
    /// names admits its namespace and its user (docs/tenancy.md), and no
    /// other LoginProfile owns the same user there. Makes no AWS call: a
    /// refusal costs IAM nothing.
    pub(super) async fn admitted(&self, lp: &LoginProfile) -> Result<InAccount<'_, I>, Outcome> {
        let Some(tenancy) = self.tenancy.get() else {
            return Err(Outcome::new(
                Reason::AccountNotReady,
                "the operator is starting: its IAMAccount and Namespace caches are not filled yet",
            ));
        };
        tenancy.wait_until_ready().await;
        let account = tenancy.account(lp.account_name());
        let account_id = tenancy.admit(lp, account.as_deref())?;
        let rivals = self.rivals(lp, tenancy, &account_id).await?;
        admission::claim(lp, &rivals, |other| self.manages(other))?;
        let account = account.expect("admitted by an IAMAccount that exists");
        Ok(InAccount {
            shared: self,
            account: self.accounts.get(&account).await,
            iam_account: account,
            account_id,
        })
    }

    /// For a LoginProfile its IAMAccount refuses (parked) whose status
    /// records a login profile made here: the user status names and the
    /// IAMAccount of that AWS account with the strictest MFA rule, so the
    /// person's grace keeps counting while the object is parked. Read from
    /// status and the caches only: spec is the tenant's to change (another
    /// IAMAccount, another user), status is not.
    pub(super) async fn parked_under_floor(
        &self,
        lp: &LoginProfile,
    ) -> Option<(InAccount<'_, I>, String)> {
        let status = lp.status.as_ref()?;
        let (Some(_), Some(account_id), Some(user)) =
            (&status.create_date, &status.account_id, &status.user_name)
        else {
            return None;
        };
        let tenancy = self.tenancy.get()?;
        let strictest = tenancy
            .accounts
            .state()
            .into_iter()
            .filter(|account| account.verified_account_id() == Some(account_id.as_str()))
            .filter_map(|account| {
                let mfa = account.spec.governance.as_ref()?.mfa.as_ref()?;
                let within = governance::span(&mfa.required_within).ok()?;
                Some(((std::cmp::Reverse(mfa.action), within), account))
            })
            .min_by_key(|(strictness, _)| *strictness)?
            .1;
        let in_account = InAccount {
            shared: self,
            account: self.accounts.get(&strictest).await,
            iam_account: strictest,
            account_id: account_id.clone(),
        };
        Some((in_account, user.clone()))
    }

    /// Whether the operator believes `lp` manages its IAM user: status
    /// records a password, or a sealed, open mark says it took charge.
    /// Nothing a tenant can write makes this true.
    pub(super) fn manages(&self, lp: &LoginProfile) -> bool {
        self.marks(lp).in_charge_since().is_some()
            || lp
                .status
                .as_ref()
                .is_some_and(|s| s.password_fingerprint.is_some())
    }

    /// The cached LoginProfiles other than `lp` that name its IAM user and
    /// that their IAMAccounts admit to the AWS account `account_id`, first
    /// in line first. Read from the caches only: what a tenant whose
    /// namespace is not admitted creates costs no API request.
    pub(super) fn claimants_of(
        &self,
        lp: &LoginProfile,
        tenancy: &TenancyStores,
        account_id: &str,
    ) -> Vec<Arc<LoginProfile>> {
        let mut claimants: Vec<Arc<LoginProfile>> = self
            .claims
            .claimants(&lp.user_name(), |object| self.cached(object))
            .into_iter()
            .filter(|other| other.uid() != lp.uid())
            .filter(|other| {
                let theirs = tenancy.account(other.account_name());
                tenancy
                    .admit(other, theirs.as_deref())
                    .is_ok_and(|id| id == account_id)
            })
            .collect();
        claimants.sort_by_cached_key(|other| admission::rank(other, self.manages(other)));
        claimants
    }

    /// The rival that can keep `lp` from acting: the first in line of the
    /// other admitted claimants of its IAM user, read fresh from the API
    /// server (its cached copy may not show yet that it took charge). At
    /// most one read, unless the first in line is gone meanwhile.
    pub(super) async fn rivals(
        &self,
        lp: &LoginProfile,
        tenancy: &TenancyStores,
        account_id: &String,
    ) -> Result<Vec<LoginProfile>, Outcome> {
        for other in self.claimants_of(lp, tenancy, account_id) {
            let api: Api<LoginProfile> =
                Api::namespaced(self.client.clone(), &other.namespace().unwrap_or_default());
            let fresh = match api.get_opt(&other.name_any()).await {
                Ok(Some(fresh)) if fresh.uid() == other.uid() => fresh,
                Ok(_) => continue,
                Err(error) => {
                    return Err(Outcome::new(
                        Reason::KubernetesError,
                        format!(
                            "could not read the LoginProfiles naming the same IAM user: {error}"
                        ),
                    ));
                }
            };
            let theirs = tenancy.account(fresh.account_name());
            if tenancy.admit(&fresh, theirs.as_deref()).as_ref() != Ok(account_id) {
                continue;
            }
            tracing::debug!(object = %ObjectRef::from_obj(lp), rival = %ObjectRef::from_obj(&fresh), "another LoginProfile names the same IAM user");
            return Ok(vec![fresh]);
        }
        Ok(Vec::new())
    }

    /// Of the LoginProfiles that name `gone`'s IAM user, the one first in
    /// line once `gone` is deleted: the only one that may take it over now.
    pub(crate) fn next_in_line(&self, gone: &LoginProfile) -> Option<ObjectRef<LoginProfile>> {
        let tenancy = self.tenancy.get()?;
        let theirs = tenancy.account(gone.account_name());
        let account_id = gone
            .status
            .as_ref()
            .and_then(|s| s.account_id.clone())
            .or_else(|| {
                theirs
                    .as_deref()
                    .and_then(|a| a.verified_account_id())
                    .map(str::to_string)
            })?;
        self.claimants_of(gone, tenancy, &account_id)
            .first()
            .map(|next| ObjectRef::from_obj(&**next))
    }
}
