//! When IAM need not be asked: a trigger that changes nothing, status trusted
//! on first sight after a start, or a drift check the account's drift budget
//! has no token for; and when to look again.

use super::desired::Desired;
use crate::controller::runtime::context::Context;
use crate::controller::runtime::context::InAccount;
use crate::controller::runtime::context::key;
use kube::ResourceExt;
use rand::Rng;
use std::time::{Duration, Instant};

use crate::controller::runtime::looks::Action;
use kube::runtime::reflector::ObjectRef;

use crate::{
    api::conditions::{self},
    api::login_profile::LoginProfile,
    api::reason::Reason,
    aws::iam::Iam,
    ops::metrics::ProfileState,
    rules::plan::Applied,
};

impl<I: Iam> Context<I> {
    /// Whether IAM needs asking only to look for drift: status says Ready
    /// for this generation with the source's current password.
    pub(super) fn only_drift_to_check(&self, lp: &LoginProfile, desired: &Desired) -> bool {
        lp.observed()
            && lp.status.as_ref().and_then(|s| s.observed_generation) == lp.metadata.generation
            && lp
                .condition(conditions::READY)
                .is_some_and(|c| c.status == "True" && c.reason != Reason::UpdateHeldBack.as_str())
            && desired.applied == Applied::Same
            && lp
                .status
                .as_ref()
                .and_then(|s| s.password_fingerprint.as_deref())
                == Some(desired.fingerprint.as_str())
    }
}

impl<I: Iam> InAccount<'_, I> {
    /// When to look again at an object IAM (or, at start, status) confirmed:
    /// its next drift check, one drift period away. That is the resync
    /// period, stretched when the account's drift budget cannot check every
    /// object in it: coming back sooner would only re-read the Secret to be
    /// put off again, and with thousands of objects those reads would fill
    /// the workers a change needs.
    pub(super) fn next_drift_check(&self, lp: &LoginProfile) -> Duration {
        self.look_again_within(lp, self.drift_period())
    }

    /// First sight after a start of an object status shows up to date: it is
    /// trusted with no IAM call, and its drift check is placed at a uniformly
    /// random point of the (effective) drift period, so a restart costs the
    /// account's IAM budget nothing and drift is found as late as it would
    /// be while running, never later. Returns when to look again.
    pub(super) fn trust_on_first_sight(
        &self,
        lp: &LoginProfile,
        desired: &Desired,
    ) -> Option<Duration> {
        if self.memory.knows(lp) || !self.only_drift_to_check(lp, desired) {
            return None;
        }
        let period = self.drift_period();
        let delay = period.mul_f64(rand::rng().random_range(0.0..1.0));
        self.memory
            .remember_verified(lp, desired.fingerprint.clone(), delay);
        Some(delay.min(self.next_drift_check(lp)))
    }

    /// When IAM need not be asked now: nothing changed since IAM (or, at
    /// start, status) last confirmed the object, or it is only a drift check
    /// and the drift budget has no token free. Says when to look again.
    pub(super) fn no_iam_call_needed(
        &self,
        lp: &LoginProfile,
        desired: &Desired,
    ) -> Option<Action> {
        if self.memory.recently_verified(lp, &desired.fingerprint) {
            return Some(Action::requeue(self.next_drift_check(lp)));
        }
        if let Some(delay) = self.trust_on_first_sight(lp, desired) {
            tracing::debug!(object = %ObjectRef::from_obj(lp), drift_check_in = ?delay, "status is up to date: trusted without asking IAM");
            self.metrics
                .set_profile_state(key(lp), Some(ProfileState::Ready));
            return Some(Action::requeue(delay));
        }
        if self.only_drift_to_check(lp, desired) {
            return self.drift_check_deferred().map(Action::requeue);
        }
        None
    }

    /// A drift check takes a token of its own budget; without one it gives
    /// the worker back and says when to try again.
    ///
    /// Each try reads the Secret (a change may hide there), so a deferred
    /// check comes back at a random point of the time the budget needs for
    /// all objects, not as soon as the next token frees: a backlog then costs
    /// about one extra Secret read per object, not one per token.
    pub(super) fn drift_check_deferred(&self) -> Option<Duration> {
        let period = self.drift_period();
        let backlog = period.min(Duration::from_secs_f64(
            self.admitted_objects(&self.account_id) as f64 / self.account.budget.drift.rate(),
        ));
        self.account
            .budget
            .drift
            .take()
            .err()
            .map(|wait| wait.max(backlog.mul_f64(rand::rng().random_range(0.0..1.0))))
    }

    /// The resync period, stretched when the drift budget cannot check every
    /// object in it (exported as a metric: what polling alone needs); while
    /// the IAMAccount's IAM events flow, the long period of
    /// `--drift-period-with-events` if that is longer.
    pub(super) fn drift_period(&self) -> Duration {
        let period = self.account.budget.drift.effective_period(
            self.admitted_objects(&self.account_id),
            self.settings.resync_period,
        );
        self.metrics.set_drift_check_period(period);
        let events_flow = self
            .event_flows
            .flowing(&self.iam_account.name_any(), Instant::now());
        match events_flow {
            true => period.max(self.settings.events.drift_period),
            false => period,
        }
    }
}
