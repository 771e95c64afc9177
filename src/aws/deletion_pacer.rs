//! The mass-deletion guard: at most `--deletion-limit` login profiles
//! deleted per AWS account per `--deletion-window` (a burst of the limit,
//! then one per window / limit), so that deleting an Argo CD Application, a
//! prune, a namespace or the CRD cannot remove every console password at
//! the IAM rate limit. A deletion beyond it waits (the LoginProfile says
//! `DeletionPaced`) until the window allows it or a cluster admin allows
//! deletions for a while (the IAMAccount's `allowDeletionsUntil`). Kept in
//! memory: a restarted operator starts with a full allowance.

use std::{num::NonZeroU32, time::Duration};

use governor::{
    DefaultDirectRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

/// How many deletions, per how long.
#[derive(Debug, Clone, Copy)]
pub struct DeletionLimit {
    /// `None`: no limit.
    pub per_window: Option<NonZeroU32>,
    pub window: Duration,
}

pub struct DeletionPacer {
    limiter: Option<DefaultDirectRateLimiter>,
}

impl DeletionPacer {
    pub fn new(limit: DeletionLimit) -> Self {
        let limiter = limit.per_window.map(|n| {
            let period = (limit.window / n.get()).max(Duration::from_millis(1));
            RateLimiter::direct(
                Quota::with_period(period)
                    .expect("a positive period")
                    .allow_burst(n),
            )
        });
        Self { limiter }
    }

    /// Takes one deletion, or says how long until the next is allowed.
    pub fn take(&self) -> Result<(), Duration> {
        match &self.limiter {
            None => Ok(()),
            Some(limiter) => limiter
                .check()
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_passes_then_the_rest_wait_about_a_share_of_the_window() {
        let pacer = DeletionPacer::new(DeletionLimit {
            per_window: NonZeroU32::new(3),
            window: Duration::from_secs(600),
        });
        for _ in 0..3 {
            assert_eq!(pacer.take(), Ok(()));
        }
        let wait = pacer.take().unwrap_err();
        assert!(
            wait > Duration::from_secs(190) && wait <= Duration::from_secs(200),
            "{wait:?}"
        );
        let unlimited = DeletionPacer::new(DeletionLimit {
            per_window: None,
            window: Duration::from_secs(600),
        });
        assert!((0..1000).all(|_| unlimited.take().is_ok()));
    }
}
