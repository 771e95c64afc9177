//! The drift-check budget: drift checks (a resync with nothing changed) take
//! their own tokens, at most `--drift-check-rate` a second (default: half of
//! `--iam-rate-limit`), so the account's shared IAM budget always has room
//! for changes; and while a change (a create, a rotation, a spec change, a
//! deletion) is being reconciled, drift checks step aside altogether, and
//! while one waits in the queue (the controller's `PendingChanges`) they
//! step aside before reading anything. A check that cannot go does not wait holding a worker:
//! it is put back for later.
//! When the objects need more checks per resync period than the budget
//! allows, the effective period stretches to N / rate; that is logged once
//! and exported as a metric.

use std::{
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    time::Duration,
};

use governor::{
    DefaultDirectRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

pub struct DriftBudget {
    limiter: DefaultDirectRateLimiter,
    rate: f64,
    stretched: AtomicBool,
    changes_in_flight: AtomicUsize,
}

/// A change being reconciled; drift checks wait while any is.
pub struct Change<'a>(&'a AtomicUsize);

impl Drop for Change<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl DriftBudget {
    /// A budget of `rate` drift checks per second (no bursts beyond one).
    pub fn new(rate: f64) -> Self {
        let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
        Self {
            limiter: RateLimiter::direct(
                Quota::with_period(period).expect("a positive drift-check period"),
            ),
            rate,
            stretched: AtomicBool::new(false),
            changes_in_flight: AtomicUsize::new(0),
        }
    }

    /// Drift checks per second at most.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Marks a change in progress until the guard is dropped.
    pub fn change(&self) -> Change<'_> {
        self.changes_in_flight.fetch_add(1, Ordering::Relaxed);
        Change(&self.changes_in_flight)
    }

    /// Takes a token for a drift check, or says how long to wait: until a
    /// token is free, or a second while changes are in progress.
    pub fn take(&self) -> Result<(), Duration> {
        if self.changes_in_flight.load(Ordering::Relaxed) > 0 {
            return Err(Duration::from_secs(1));
        }
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// The period in which each of `objects` gets one drift check: the
    /// resync period, or longer when the budget cannot check them all in it.
    pub fn effective_period(&self, objects: usize, resync: Duration) -> Duration {
        let needed = Duration::from_secs_f64(objects as f64 / self.rate);
        let period = resync.max(needed);
        if period > resync && !self.stretched.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                objects,
                drift_check_rate = self.rate,
                resync_period = ?resync,
                effective_period = ?period,
                "more drift checks are due per resync period than --drift-check-rate allows: each object is checked about every effective_period"
            );
        }
        period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_stretches_to_objects_over_rate() {
        let budget = DriftBudget::new(5.0);
        let resync = Duration::from_secs(600);
        assert_eq!(
            budget.effective_period(1000, resync),
            resync,
            "1000 / 5 = 200 s fits"
        );
        assert_eq!(
            budget.effective_period(5000, resync),
            Duration::from_secs(1000),
            "5000 / 5 = 1000 s"
        );
    }

    #[test]
    fn drift_checks_step_aside_while_a_change_is_reconciled() {
        let budget = DriftBudget::new(100.0);
        let change = budget.change();
        assert_eq!(budget.take(), Err(Duration::from_secs(1)));
        drop(change);
        assert!(budget.take().is_ok());
    }

    #[test]
    fn a_token_is_taken_or_the_wait_is_named() {
        let budget = DriftBudget::new(1.0);
        assert!(budget.take().is_ok());
        let wait = budget.take().unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
    }
}
