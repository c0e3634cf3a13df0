//! Every limit, rate and timeout of AWS discovery, in one struct (the
//! pattern of `crate::limits`), so that operators and reviewers find them all
//! here and nowhere else.
//!
//! An [`AwsLimits`] value is per tenant: each [`super::AwsTenant`] owns its
//! own, and its own rate limiter, so nothing here is process-wide. Must not
//! hold state.

use std::time::Duration;

/// Limits of one tenant's AWS discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsLimits {
    // ---- rate limiter (per API per account+region) ----
    /// Calls/s a bucket starts at; it climbs from here until AWS throttles.
    pub initial_rate: f64,
    /// Calls/s a bucket never goes below (so progress never stops).
    pub min_rate: f64,
    /// Calls/s a bucket never exceeds.
    pub max_rate: f64,
    /// Slow start (before the first throttle): calls/s added per accepted
    /// call, so the rate grows exponentially (×e per second at 1.0).
    pub slow_start_step: f64,
    /// Calls a bucket lets through at once after being idle.
    pub burst: f64,
    /// Multiplicative decrease on a throttle (CUBIC's beta).
    pub decrease_factor: f64,
    /// Growth constant of the cubic climb back (calls/s per s³).
    pub cubic_c: f64,
    /// Throttles this soon after a decrease are answers to calls sent
    /// before it and do not decrease again.
    pub decrease_cooldown: Duration,
    /// Window over which the accepted call rate is measured.
    pub measure_window: Duration,

    // ---- retries ----
    /// Attempts for a call that fails transiently (5xx, timeout, connection).
    pub max_attempts: u32,
    /// Attempts for a call that keeps being throttled; past this the scope
    /// fails (it is never taken for an empty result).
    pub max_throttled_attempts: u32,
    /// First backoff; doubles per attempt, full jitter.
    pub backoff_base: Duration,
    /// Cap on one backoff.
    pub backoff_max: Duration,

    // ---- timeouts ----
    /// One API call, from send to the last byte.
    pub call_timeout: Duration,
    /// TCP + TLS connect.
    pub connect_timeout: Duration,

    // ---- concurrency and memory ----
    /// API calls in flight at once, over all accounts, regions and kinds.
    pub max_in_flight: usize,
    /// Scopes (account × region × kind) being read at once.
    pub max_active_scopes: usize,
    /// Accounts prepared (role assumed, regions listed) at once.
    pub max_concurrent_accounts: usize,
    /// `GetResource` calls in flight per scope.
    pub get_concurrency_per_scope: usize,
    /// `MaxResults` of `ListResources` (1..=100).
    pub page_size: i32,
    /// Raw items buffered between discovery and its consumer.
    pub channel_items: usize,
    /// Plugins' `GetResource` answers kept per sync, per generation (two generations: a
    /// bounded, least-recently-used-like cache, so memory does not grow with the estate).
    pub lookup_cache_entries: usize,

    // ---- credentials ----
    /// Assumed-role sessions requested for this long.
    pub session_duration: Duration,
    /// Credentials are refreshed when they have less than this left.
    pub refresh_margin: Duration,
}

impl Default for AwsLimits {
    fn default() -> Self {
        Self {
            initial_rate: 20.0,
            min_rate: 0.5,
            max_rate: 1_000.0,
            slow_start_step: 2.0,
            burst: 5.0,
            decrease_factor: 0.85,
            cubic_c: 0.4,
            decrease_cooldown: Duration::from_millis(500),
            measure_window: Duration::from_secs(1),
            max_attempts: 5,
            max_throttled_attempts: 60,
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            call_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_in_flight: 64,
            max_active_scopes: 128,
            max_concurrent_accounts: 10,
            get_concurrency_per_scope: 16,
            page_size: 100,
            channel_items: 1024,
            lookup_cache_entries: 2048,
            session_duration: Duration::from_secs(3600),
            refresh_margin: Duration::from_secs(300),
        }
    }
}

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
