//! Adaptive client-side rate limiting: one token bucket per API per
//! account+region, whose rate follows what AWS accepts.
//!
//! Each bucket paces calls (one slot per 1/rate, with a small burst; a slot is
//! taken when it is due, never booked ahead, so a waiting call is paced at
//! the rate of the moment it goes, not of the moment it arrived), and
//! adapts like TCP CUBIC, as the AWS SDKs' "adaptive" retry mode does, but
//! per API and scope and with the throttles visible: it starts at
//! `initial_rate` and grows with each accepted call (slow start) until the
//! first throttle; a throttle cuts the rate to `decrease_factor` × the rate
//! AWS was measured to accept, and the rate then climbs back along a cubic
//! curve that flattens near the old maximum before probing above it. One
//! decrease per `decrease_cooldown`, because the calls already in flight
//! answer to the old rate.
//!
//! Owns: [`AdaptiveRate`] (the pure state machine, time passed in) and
//! [`Limiter`] (the per-tenant map of buckets, with counters). Must not make
//! calls or sleep for retries (`call.rs` does).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::limits::AwsLimits;

/// The rate state of one bucket.
#[derive(Debug, Clone)]
pub struct AdaptiveRate {
    rate: f64,
    w_max: f64,
    slow_start: bool,
    last_decrease: Option<Instant>,
    /// The last slot given (in the past by up to `burst - 1` intervals after idling).
    last_slot: Option<Instant>,
    accepted: VecDeque<Instant>,
    first_seen: Option<Instant>,
}

impl AdaptiveRate {
    pub fn new(l: &AwsLimits) -> Self {
        Self {
            rate: l.initial_rate.clamp(l.min_rate, l.max_rate),
            w_max: 0.0,
            slow_start: true,
            last_decrease: None,
            last_slot: None,
            accepted: VecDeque::new(),
            first_seen: None,
        }
    }

    /// Calls per second now.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Take the next slot if it is due at `now`; else the instant it will be due at the
    /// current rate, when the caller asks again. Nothing is booked ahead: calls that waited
    /// while slow start raised the rate go at the raised rate (booked at the first rate, the
    /// 64 calls a sync starts a bucket with took 3 s at 20/s while AWS allowed 50).
    pub fn try_take(&mut self, now: Instant, l: &AwsLimits) -> Result<(), Instant> {
        self.first_seen.get_or_insert(now);
        let interval = Duration::from_secs_f64(1.0 / self.rate);
        let earliest = now
            .checked_sub(interval.mul_f64(l.burst.max(1.0) - 1.0))
            .unwrap_or(now);
        let due = match self.last_slot {
            Some(last) => (last + interval).max(earliest),
            None => earliest,
        };
        if due <= now {
            self.last_slot = Some(due);
            Ok(())
        } else {
            Err(due)
        }
    }

    /// AWS answered (anything but a throttle).
    pub fn on_accepted(&mut self, now: Instant, l: &AwsLimits) {
        self.accepted.push_back(now);
        self.trim(now, l);
        if self.slow_start {
            // A fixed step per accepted call: exponential growth while
            // demand keeps up (doubling every ~0.35 s at the default step).
            self.rate = (self.rate + l.slow_start_step).min(l.max_rate);
        } else if let Some(t0) = self.last_decrease {
            let t = now.saturating_duration_since(t0).as_secs_f64();
            let k = (self.w_max * (1.0 - l.decrease_factor) / l.cubic_c).cbrt();
            let target = l.cubic_c * (t - k).powi(3) + self.w_max;
            self.rate = target.clamp(l.min_rate, l.max_rate);
        }
    }

    /// AWS throttled a call. Returns whether the rate was cut.
    pub fn on_throttled(&mut self, now: Instant, l: &AwsLimits) -> bool {
        self.trim(now, l);
        if let Some(t) = self.last_decrease
            && now.saturating_duration_since(t) < l.decrease_cooldown
        {
            return false;
        }
        let measured = self.measured_rate(now, l);
        self.w_max = if measured > 0.0 {
            measured.min(self.rate)
        } else {
            self.rate
        };
        self.rate = (self.w_max * l.decrease_factor).clamp(l.min_rate, l.max_rate);
        self.slow_start = false;
        self.last_decrease = Some(now);
        // Let the server's bucket refill a little before the next call: the next slot is one
        // interval (at the cut rate) from now.
        if self.last_slot.is_none_or(|last| last < now) {
            self.last_slot = Some(now);
        }
        true
    }

    /// Accepted calls per second over the last `measure_window`.
    pub fn measured_rate(&self, now: Instant, l: &AwsLimits) -> f64 {
        let span = match self.first_seen {
            Some(f) => now.saturating_duration_since(f).min(l.measure_window),
            None => return 0.0,
        };
        let span = span.as_secs_f64().max(0.05);
        self.accepted.len() as f64 / span
    }

    fn trim(&mut self, now: Instant, l: &AwsLimits) {
        while let Some(&t) = self.accepted.front() {
            if now.saturating_duration_since(t) > l.measure_window {
                self.accepted.pop_front();
            } else {
                break;
            }
        }
    }
}

/// Which bucket: one API in one account and region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketKey {
    /// `service:Action`, e.g. `cloudcontrol:GetResource`.
    pub api: &'static str,
    pub account_id: String,
    pub region: String,
}

/// Counters of one bucket.
#[derive(Debug, Default)]
pub struct BucketCounters {
    pub calls: AtomicU64,
    pub accepted: AtomicU64,
    pub throttled: AtomicU64,
    pub decreases: AtomicU64,
}

/// One bucket: its rate state and counters.
#[derive(Debug)]
pub struct Bucket {
    state: Mutex<AdaptiveRate>,
    pub counters: BucketCounters,
    limits: Arc<AwsLimits>,
}

impl Bucket {
    /// Wait for this bucket's next slot.
    pub async fn wait(&self) {
        loop {
            let due = {
                let mut s = self.state.lock().expect("limiter lock");
                s.try_take(Instant::now(), &self.limits).err()
            };
            match due {
                None => break,
                // Others waiting for the same slot wake with it; one takes it, the rest ask
                // for the next.
                Some(at) => tokio::time::sleep_until(at.into()).await,
            }
        }
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub fn accepted(&self) {
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        let mut s = self.state.lock().expect("limiter lock");
        s.on_accepted(Instant::now(), &self.limits);
    }

    pub fn throttled(&self) {
        self.counters.throttled.fetch_add(1, Ordering::Relaxed);
        let mut s = self.state.lock().expect("limiter lock");
        if s.on_throttled(Instant::now(), &self.limits) {
            self.counters.decreases.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn rate(&self) -> f64 {
        self.state.lock().expect("limiter lock").rate()
    }
}

/// A snapshot of one bucket for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSnapshot {
    pub key: BucketKey,
    pub calls: u64,
    pub accepted: u64,
    pub throttled: u64,
    pub decreases: u64,
    pub rate: f64,
}

/// All buckets of one tenant. Kept across syncs, so a tenant starts each
/// sync at the rates it learnt in the previous one.
#[derive(Debug)]
pub struct Limiter {
    limits: Arc<AwsLimits>,
    buckets: Mutex<HashMap<BucketKey, Arc<Bucket>>>,
}

impl Limiter {
    pub fn new(limits: Arc<AwsLimits>) -> Self {
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn bucket(&self, api: &'static str, account_id: &str, region: &str) -> Arc<Bucket> {
        let key = BucketKey {
            api,
            account_id: account_id.to_string(),
            region: region.to_string(),
        };
        let mut map = self.buckets.lock().expect("limiter lock");
        map.entry(key)
            .or_insert_with(|| {
                Arc::new(Bucket {
                    state: Mutex::new(AdaptiveRate::new(&self.limits)),
                    counters: BucketCounters::default(),
                    limits: self.limits.clone(),
                })
            })
            .clone()
    }

    pub fn snapshot(&self) -> Vec<BucketSnapshot> {
        let map = self.buckets.lock().expect("limiter lock");
        let mut v: Vec<BucketSnapshot> = map
            .iter()
            .map(|(k, b)| BucketSnapshot {
                key: k.clone(),
                calls: b.counters.calls.load(Ordering::Relaxed),
                accepted: b.counters.accepted.load(Ordering::Relaxed),
                throttled: b.counters.throttled.load(Ordering::Relaxed),
                decreases: b.counters.decreases.load(Ordering::Relaxed),
                rate: b.rate(),
            })
            .collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AwsLimits {
        AwsLimits {
            initial_rate: 10.0,
            burst: 1.0,
            ..AwsLimits::default()
        }
    }

    /// Takes `n` slots one after the other, each as soon as it is due, from `t`.
    fn take(r: &mut AdaptiveRate, l: &AwsLimits, mut t: Instant, n: usize) -> Vec<Instant> {
        let mut slots = Vec::new();
        while slots.len() < n {
            match r.try_take(t, l) {
                Ok(()) => slots.push(t),
                Err(due) => {
                    assert!(due > t);
                    t = due;
                }
            }
        }
        slots
    }

    #[test]
    fn slots_are_paced_at_the_rate() {
        let l = limits();
        let mut r = AdaptiveRate::new(&l);
        let t0 = Instant::now();
        let slots = take(&mut r, &l, t0, 5);
        assert_eq!(slots[0], t0);
        for w in slots.windows(2) {
            let gap = w[1] - w[0];
            assert!((gap.as_secs_f64() - 0.1).abs() < 1e-6, "{gap:?}");
        }
    }

    #[test]
    fn burst_lets_idle_buckets_send_at_once() {
        let l = AwsLimits {
            burst: 3.0,
            ..limits()
        };
        let mut r = AdaptiveRate::new(&l);
        let t0 = Instant::now();
        let _ = take(&mut r, &l, t0, 1);
        let later = t0 + Duration::from_secs(10);
        let s = take(&mut r, &l, later, 4);
        assert_eq!(&s[..3], &[later, later, later]);
        assert!(s[3] > later);
    }

    /// Calls that wait while the rate grows go at the grown rate: after one call at 10/s, the
    /// rate raised to 50/s by accepted calls, nine waiting calls are done in nine intervals of
    /// the new rate (0.18 s), not of the old (0.9 s, when slots were booked on arrival).
    #[test]
    fn waiting_calls_go_at_the_rate_of_the_moment() {
        let l = limits();
        let mut r = AdaptiveRate::new(&l);
        let t0 = Instant::now();
        assert_eq!(r.try_take(t0, &l), Ok(()));
        for _ in 0..20 {
            r.on_accepted(t0, &l);
        }
        assert!((r.rate() - 50.0).abs() < 1e-9, "{}", r.rate());
        let slots = take(&mut r, &l, t0, 9);
        let last = slots.last().unwrap().duration_since(t0);
        assert!(last <= Duration::from_millis(181), "{last:?}");
    }

    /// Simulates a server that accepts `limit` calls/s (token bucket of
    /// `limit` burst) and checks the client settles near it: mostly
    /// accepted, rate within bounds, few throttles.
    #[test]
    fn converges_near_the_servers_limit() {
        let l = AwsLimits::default();
        let mut r = AdaptiveRate::new(&l);
        let limit = 50.0;
        let mut server_tokens = limit;
        let mut t = Instant::now();
        let start = t;
        let mut last = t;
        let (mut ok, mut throttled) = (0u32, 0u32);
        while t - start < Duration::from_secs(60) {
            if let Err(due) = r.try_take(t, &l) {
                t = due;
                continue;
            }
            server_tokens = (server_tokens + (t - last).as_secs_f64() * limit).min(limit);
            last = t;
            if server_tokens >= 1.0 {
                server_tokens -= 1.0;
                ok += 1;
                r.on_accepted(t, &l);
            } else {
                throttled += 1;
                r.on_throttled(t, &l);
            }
        }
        let accepted_rate = ok as f64 / 60.0;
        assert!(
            accepted_rate > 0.9 * limit,
            "accepted {accepted_rate}/s of {limit}/s"
        );
        assert!(
            throttled < ok / 10,
            "{throttled} throttled vs {ok} accepted"
        );
        assert!(
            r.rate() > 0.6 * limit && r.rate() < 1.5 * limit,
            "{}",
            r.rate()
        );
    }

    #[test]
    fn a_throttle_cuts_once_per_cooldown_and_climbs_back() {
        let l = limits();
        let mut r = AdaptiveRate::new(&l);
        let t0 = Instant::now();
        for i in 0..40 {
            r.on_accepted(t0 + Duration::from_millis(25 * i), &l);
        }
        let before = r.rate();
        let t1 = t0 + Duration::from_secs(1);
        assert!(r.on_throttled(t1, &l));
        let cut = r.rate();
        assert!(cut < before);
        assert!(
            !r.on_throttled(t1 + Duration::from_millis(100), &l),
            "cooldown"
        );
        assert_eq!(r.rate(), cut);
        r.on_accepted(t1 + Duration::from_secs(30), &l);
        assert!(r.rate() > cut, "climbs back");
    }
}
