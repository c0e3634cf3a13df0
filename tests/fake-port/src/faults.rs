//! Fault injection and rate limiting: what a misbehaving or busy Port would do to a client.
//!
//! Owns: the [`Faults`] settings (changed at runtime through `/_fake/faults`), the seeded random
//! source, the token bucket of the real rate limit, and the per-request decision "answer this
//! request with a fault instead". Must not touch: catalog state or the request log; the server
//! middleware applies the decision and records it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::error::{self, ApiError};

/// A real token-bucket rate limit: `per_second` tokens refill each second, up to `burst`
/// (default: one second's worth). A request that finds no token gets 429.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub per_second: f64,
    #[serde(default)]
    pub burst: Option<u32>,
}

/// How `x-ratelimit-reset` is written: seconds until reset (what Terraform reads) or the UTC
/// epoch second of the reset (what Port's docs say). Clients must handle both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResetStyle {
    #[default]
    Delta,
    Epoch,
}

/// Faults in force. Every field is optional in JSON; `{}` means "no faults".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Seed of the random source behind the `*_rate` fractions (same seed, same sequence).
    pub seed: u64,
    /// Added to every `/v1` and ingest request before it is handled.
    pub latency_ms: u64,
    /// Real rate limit (token bucket) over all `/v1` and ingest requests.
    pub rate_limit: Option<RateLimit>,
    /// Fraction (0..=1) of matching requests answered 429 with `x-ratelimit-*` and `Retry-After`.
    pub rate_429: f64,
    /// `Retry-After` (and reset) seconds of an injected 429.
    pub retry_after_secs: u64,
    /// Fraction (0..=1) of matching requests answered with `status_5xx`.
    pub rate_5xx: f64,
    pub status_5xx: u16,
    /// Injected 5xx are sent *after* the request was carried out (the write stays): a lost
    /// response rather than a refused request.
    pub fail_after_write: bool,
    /// Answer 413 to matching requests whose body is larger than this many bytes.
    pub force_413_over_bytes: Option<usize>,
    /// Answer 413 to the next N matching requests that carry a body.
    pub force_413_next: u32,
    /// Answer 401 to the next N matching authenticated requests although their token is valid.
    pub early_401: u32,
    /// Only requests whose path contains this string get injected faults (429 fraction, 5xx,
    /// 413, early 401). Latency and the rate limit apply to every request.
    pub path_contains: Option<String>,
    /// Only requests with this method get injected faults.
    pub method: Option<String>,
    pub reset_style: ResetStyle,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            seed: 0,
            latency_ms: 0,
            rate_limit: None,
            rate_429: 0.0,
            retry_after_secs: 1,
            rate_5xx: 0.0,
            status_5xx: 503,
            fail_after_write: false,
            force_413_over_bytes: None,
            force_413_next: 0,
            early_401: 0,
            path_contains: None,
            method: None,
            reset_style: ResetStyle::Delta,
        }
    }
}

impl Faults {
    /// Checks ranges; the admin API answers 400 with this message.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [("rate_429", self.rate_429), ("rate_5xx", self.rate_5xx)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be between 0 and 1, got {v}"));
            }
        }
        if !(500..=599).contains(&self.status_5xx) {
            return Err(format!("status_5xx must be 5xx, got {}", self.status_5xx));
        }
        if let Some(rl) = &self.rate_limit
            && !(rl.per_second.is_finite() && rl.per_second > 0.0)
        {
            return Err("rate_limit.per_second must be > 0".into());
        }
        Ok(())
    }
}

/// SplitMix64: a tiny, well-known seeded generator; enough for "a fraction of calls".
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// What the server knows about a request when faults are decided.
pub struct RequestFacts<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub body_len: usize,
}

/// A fault the middleware must answer with.
pub struct Injected {
    /// Short name recorded in the request log (`rate_limited`, `injected_429`, ...).
    pub kind: &'static str,
    pub error: ApiError,
    /// Send it only after the handler ran (the write is kept).
    pub after_handler: bool,
}

/// Runtime fault state: settings, random source, token bucket and counters.
#[derive(Debug)]
pub struct FaultEngine {
    faults: Faults,
    rng: Rng,
    bucket: Option<Bucket>,
}

impl FaultEngine {
    pub fn new(faults: Faults) -> Self {
        let mut engine = Self {
            faults: Faults::default(),
            rng: Rng(0),
            bucket: None,
        };
        engine.set(faults);
        engine
    }

    pub fn get(&self) -> &Faults {
        &self.faults
    }

    /// Replaces the settings; reseeds the random source and refills the bucket.
    pub fn set(&mut self, faults: Faults) {
        self.rng = Rng(faults.seed);
        self.bucket = faults.rate_limit.as_ref().map(|rl| Bucket {
            tokens: burst(rl),
            last: Instant::now(),
        });
        self.faults = faults;
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.faults.latency_ms)
    }

    fn matches(&self, req: &RequestFacts<'_>) -> bool {
        let path_ok = self
            .faults
            .path_contains
            .as_deref()
            .is_none_or(|p| req.path.contains(p));
        let method_ok = self
            .faults
            .method
            .as_deref()
            .is_none_or(|m| req.method.as_str().eq_ignore_ascii_case(m));
        path_ok && method_ok
    }

    /// Decides whether this request is answered with a fault instead of being handled. Checked
    /// in this order: real rate limit, injected 429, injected 5xx, forced 413.
    pub fn decide(&mut self, req: &RequestFacts<'_>) -> Option<Injected> {
        if let Some(retry) = self.take_token() {
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                error::RATE_LIMITED,
                "Rate limit exceeded, please retry later",
            );
            error.headers = Some(Box::new(self.ratelimit_headers(Some(retry))));
            return Some(Injected {
                kind: "rate_limited",
                error,
                after_handler: false,
            });
        }
        if !self.matches(req) {
            return None;
        }
        // Draw both numbers for every matching request so one fraction does not shift the
        // other's sequence.
        let r429 = self.rng.next_f64();
        let r5xx = self.rng.next_f64();
        if r429 < self.faults.rate_429 {
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                error::RATE_LIMITED,
                "Rate limit exceeded (injected), please retry later",
            );
            let retry = Duration::from_secs(self.faults.retry_after_secs);
            error.headers = Some(Box::new(self.injected_429_headers(retry)));
            return Some(Injected {
                kind: "injected_429",
                error,
                after_handler: false,
            });
        }
        if r5xx < self.faults.rate_5xx {
            let status = StatusCode::from_u16(self.faults.status_5xx)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return Some(Injected {
                kind: "injected_5xx",
                error: ApiError::new(status, error::INTERNAL, "Injected server error"),
                after_handler: self.faults.fail_after_write,
            });
        }
        let over = self
            .faults
            .force_413_over_bytes
            .is_some_and(|limit| req.body_len > limit);
        let next = req.body_len > 0 && self.faults.force_413_next > 0;
        if over || next {
            if next && !over {
                self.faults.force_413_next -= 1;
            }
            return Some(Injected {
                kind: "forced_413",
                error: ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    error::PAYLOAD_TOO_LARGE,
                    "Request body is too large (injected)",
                ),
                after_handler: false,
            });
        }
        None
    }

    /// Consumes one armed early 401 if this request matches.
    pub fn take_early_401(&mut self, req: &RequestFacts<'_>) -> bool {
        if self.faults.early_401 > 0 && self.matches(req) {
            self.faults.early_401 -= 1;
            true
        } else {
            false
        }
    }

    /// Takes a token; `Some(wait)` when none is left (how long until one is).
    fn take_token(&mut self) -> Option<Duration> {
        let rl = self.faults.rate_limit.clone()?;
        let bucket = self.bucket.as_mut()?;
        let now = Instant::now();
        let cap = burst(&rl);
        bucket.tokens = (bucket.tokens
            + now.duration_since(bucket.last).as_secs_f64() * rl.per_second)
            .min(cap);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / rl.per_second,
            ))
        }
    }

    /// `x-ratelimit-*` headers describing the bucket (present on every response while a rate
    /// limit is configured); with `retry` also `Retry-After`.
    pub fn ratelimit_headers(&self, retry: Option<Duration>) -> HeaderMap {
        let mut h = HeaderMap::new();
        let (Some(rl), Some(bucket)) = (&self.faults.rate_limit, &self.bucket) else {
            return h;
        };
        let cap = burst(rl);
        let period = (cap / rl.per_second).ceil().max(1.0) as u64;
        let until_full = ((cap - bucket.tokens).max(0.0) / rl.per_second).ceil() as u64;
        let remaining = bucket.tokens.floor().max(0.0) as u64;
        put(&mut h, "x-ratelimit-limit", cap as u64);
        put(&mut h, "x-ratelimit-period", period);
        put(&mut h, "x-ratelimit-remaining", remaining);
        put(
            &mut h,
            "x-ratelimit-reset",
            self.reset_value(until_full.max(u64::from(retry.is_some()))),
        );
        if let Some(retry) = retry {
            put(
                &mut h,
                "retry-after",
                (retry.as_secs_f64().ceil() as u64).max(1),
            );
        }
        h
    }

    fn injected_429_headers(&self, retry: Duration) -> HeaderMap {
        let mut h = self.ratelimit_headers(None);
        let secs = retry.as_secs();
        if h.is_empty() {
            // No real limit configured: describe a nominal window that is used up.
            put(&mut h, "x-ratelimit-limit", 1000);
            put(&mut h, "x-ratelimit-period", 60);
        }
        put(&mut h, "x-ratelimit-remaining", 0);
        put(&mut h, "x-ratelimit-reset", self.reset_value(secs));
        put(&mut h, "retry-after", secs);
        h
    }

    fn reset_value(&self, delta_secs: u64) -> u64 {
        match self.faults.reset_style {
            ResetStyle::Delta => delta_secs,
            ResetStyle::Epoch => {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
                    + delta_secs
            }
        }
    }
}

fn burst(rl: &RateLimit) -> f64 {
    rl.burst
        .map(f64::from)
        .unwrap_or_else(|| rl.per_second.ceil())
        .max(1.0)
}

fn put(h: &mut HeaderMap, name: &'static str, v: u64) {
    h.insert(name, HeaderValue::from(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_seeded_and_roughly_uniform() {
        let mut a = Rng(7);
        let mut b = Rng(7);
        let xs: Vec<f64> = (0..1000).map(|_| a.next_f64()).collect();
        let ys: Vec<f64> = (0..1000).map(|_| b.next_f64()).collect();
        assert_eq!(xs, ys);
        let below = xs.iter().filter(|x| **x < 0.3).count();
        assert!((230..370).contains(&below), "{below}");
    }

    #[test]
    fn bucket_refuses_beyond_burst() {
        let mut e = FaultEngine::new(Faults {
            rate_limit: Some(RateLimit {
                per_second: 5.0,
                burst: Some(3),
            }),
            ..Faults::default()
        });
        let req = RequestFacts {
            method: &Method::GET,
            path: "/v1/blueprints",
            body_len: 0,
        };
        for _ in 0..3 {
            assert!(e.decide(&req).is_none());
        }
        let f = e.decide(&req).expect("fourth request is limited");
        assert_eq!(f.kind, "rate_limited");
        let h = f.error.headers.expect("rate-limit headers");
        assert_eq!(h["retry-after"], "1");
        assert_eq!(h["x-ratelimit-remaining"], "0");
    }
}
