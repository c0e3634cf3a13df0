//! AWS discovery's limits: [`AwsLimits`] is declared with every other limit in
//! `crate::limits` (the `limits.aws` key of a config), and re-exported here so that the AWS
//! code names it locally. This module adds the behaviour that is only arithmetic on them.
//!
//! An [`AwsLimits`] value is per tenant: each [`super::AwsTenant`] owns its
//! own, and its own rate limiter, so nothing here is process-wide. Must not
//! hold state.

use std::time::Duration;

pub use crate::limits::AwsLimits;

impl AwsLimits {
    /// Backoff before attempt `attempt + 1` (0-based), with full jitter;
    /// `unit` is a random number in `[0, 1)`.
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let cap = self.backoff_base.as_secs_f64() * 2f64.powi(attempt.min(30) as i32);
        let cap = cap.min(self.backoff_max.as_secs_f64());
        // Full jitter, but never zero: a zero wait turns a throttle storm into a busy loop.
        Duration::from_secs_f64(cap * (0.1 + 0.9 * unit.clamp(0.0, 1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let l = AwsLimits::default();
        assert!(l.backoff(0, 0.99) <= Duration::from_millis(50));
        assert!(l.backoff(3, 0.99) > l.backoff(1, 0.99));
        assert!(l.backoff(40, 0.99) <= l.backoff_max);
        assert!(l.backoff(2, 0.0) > Duration::ZERO);
        assert!(l.backoff(2, 0.0) < l.backoff(2, 0.9));
    }
}
