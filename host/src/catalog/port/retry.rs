//! The one retry policy every Port call goes through, and the shared request budget.
//!
//! Owns: which answers are retried (408, 429, 5xx, connection errors), how long to wait before
//! the next attempt (the server's `Retry-After` or `x-ratelimit-reset`, else exponential backoff
//! with jitter, as Ocean does), how few attempts a connection refused by this very machine gets,
//! and the [`Budget`] that bounds concurrency, spaces requests while Port's rate-limit window
//! runs low and pauses every caller when it is used up ([`pacing`]). The parsing and decisions
//! are pure functions; the numbers they use (attempts, delays) are `limits.port`, declared in
//! `crate::limits`.
//! Must not touch: HTTP requests, tokens or response bodies (`client.rs` and `auth.rs` call in).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use tokio::sync::{Semaphore, SemaphorePermit};

/// `x-ratelimit-reset` values above this are an epoch second, smaller ones a delta in seconds
/// (Ocean's threshold, see `docs/port-api.md`). A protocol rule, not a limit.
pub const EPOCH_THRESHOLD: f64 = 10_000.0;

/// Declared with every other limit (`limits.port.retry`); its behaviour is here.
pub use crate::limits::RetryPolicy;

impl RetryPolicy {
    /// Whether another attempt follows attempt number `attempt` (0-based).
    pub fn may_retry(&self, attempt: u32) -> bool {
        attempt + 1 < self.max_attempts.max(1)
    }

    /// Attempts in all for a failure to connect: `loopback_attempts` (at most; see
    /// `limits.port.loopbackRefusedAttempts`) when a loopback address refused the connection,
    /// else `max_attempts`.
    pub fn transport_attempts(&self, refused_by_loopback: bool, loopback_attempts: u32) -> u32 {
        let all = self.max_attempts.max(1);
        if refused_by_loopback {
            all.min(loopback_attempts.max(1))
        } else {
            all
        }
    }

    /// Exponential backoff after attempt `attempt` (0-based), before jitter, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2f64.powi(attempt.min(62) as i32);
        let secs = self.base_delay.as_secs_f64() * factor;
        if !secs.is_finite() || secs >= self.max_delay.as_secs_f64() {
            self.max_delay
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The wait before the next attempt: the server's hint when it gave one (capped), else the
    /// backoff reduced by up to `jitter` of itself. `unit` is a random number in `[0, 1)`.
    pub fn delay(&self, attempt: u32, server_hint: Option<Duration>, unit: f64) -> Duration {
        if let Some(hint) = server_hint {
            return hint.min(self.max_delay);
        }
        let backoff = self.backoff(attempt);
        let cut = self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0);
        backoff.mul_f64(1.0 - cut)
    }
}

/// Whether an HTTP status is worth another attempt. 401 is handled apart (token refresh).
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429) || ((500..=599).contains(&status) && status != 501)
}

/// Whether `url`'s host is this machine: `localhost` or a loopback address.
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = u.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let d = bare.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    }
}

/// `Retry-After`: seconds (integer or decimal) or an HTTP date (`Sun, 06 Nov 1994 08:49:37
/// GMT`), as a wait from `now` (zero when the date has passed).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Some(secs) = parse_seconds(value) {
        return Some(secs);
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `x-ratelimit-reset`: above [`EPOCH_THRESHOLD`] an epoch second, else seconds from now.
pub fn parse_ratelimit_reset(value: &str, now: SystemTime) -> Option<Duration> {
    let n: f64 = value.trim().parse().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    if n > EPOCH_THRESHOLD {
        let at = UNIX_EPOCH + Duration::from_secs_f64(n);
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    } else {
        Some(Duration::from_secs_f64(n))
    }
}

/// The server's wait hint: `Retry-After` first, then `x-ratelimit-reset` (Ocean's order).
pub fn server_hint(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    header(headers, "retry-after")
        .and_then(|v| parse_retry_after(v, now))
        .or_else(|| ratelimit_reset(headers, now))
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `x-ratelimit-reset` of an answer, as the time until the reset.
fn ratelimit_reset(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    header(headers, "x-ratelimit-reset").and_then(|v| parse_ratelimit_reset(v, now))
}

/// What Port's rate-limit headers on an answer ask of the callers that follow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Nothing said, or plenty left: requests go as fast as the budget lets them.
    Free,
    /// Few requests left in the window (no more than `low`, the requests one client may have
    /// in flight): start them at least this far apart, at the window's pace, instead of
    /// spending the remainder at once and being answered 429 (whose `Retry-After` is whole
    /// seconds, far longer than the window needed to refill).
    Spaced(Duration),
    /// The window is used up (`x-ratelimit-remaining: 0`): hold off until `x-ratelimit-reset`.
    Pause(Duration),
}

/// Reads `x-ratelimit-remaining`, `x-ratelimit-reset` and `x-ratelimit-limit`. `low` is how
/// many requests may be in flight at once: with that many left or fewer, spacing starts.
///
/// The gap is the window's own pace, `reset ÷ limit`: a window that refills as it goes (a
/// token bucket) then stays level instead of running dry, and one that only resets at its end
/// is used up no sooner than before and then paused for. Without a limit, what is left is
/// spread until the reset (`reset ÷ (remaining + 1)`, one more gap than requests, so the last
/// does not land on the reset).
pub fn pacing(headers: &HeaderMap, now: SystemTime, low: u64) -> Pacing {
    let number = |name: &str| header(headers, name).and_then(|v| v.trim().parse::<u64>().ok());
    match (
        number("x-ratelimit-remaining"),
        ratelimit_reset(headers, now),
    ) {
        (Some(0), Some(reset)) => Pacing::Pause(reset),
        (Some(n), Some(reset)) if n <= low && !reset.is_zero() => {
            let per = number("x-ratelimit-limit").unwrap_or(0).max(n + 1);
            Pacing::Spaced(reset / u32::try_from(per).unwrap_or(u32::MAX))
        }
        _ => Pacing::Free,
    }
}

fn parse_seconds(value: &str) -> Option<Duration> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let n: f64 = value.parse().ok()?;
    n.is_finite().then(|| Duration::from_secs_f64(n))
}

/// IMF-fixdate (RFC 9110 §5.6.7), the form HTTP dates are sent in.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_weekday, day, month, year, time, zone] = parts.as_slice() else {
        return None;
    };
    if *zone != "GMT" {
        return None;
    }
    let day: u32 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as u32
        + 1;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + (*h * 3600 + *m * 60 + *s) as i64;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A random number in `[0, 1)` for jitter (SplitMix64 over a process-wide counter seeded from
/// the clock; good enough to spread retries, not for anything secret).
pub fn jitter_unit() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut z = STATE
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(seed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The request budget shared by every caller of one client: at most `concurrency` requests in
/// flight, a common pause when Port says to wait (a 429, or `x-ratelimit-remaining: 0`), so
/// concurrent batches do not keep burning requests into 429s, and a spacing between request
/// starts while the window runs low ([`Pacing::Spaced`]).
#[derive(Debug)]
pub struct Budget {
    permits: Semaphore,
    paused_until: Mutex<Option<Instant>>,
    /// The gap between request starts, and when the next may start.
    spacing: Mutex<(Option<Duration>, Instant)>,
}

impl Budget {
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Semaphore::new(concurrency.max(1)),
            paused_until: Mutex::new(None),
            spacing: Mutex::new((None, Instant::now())),
        }
    }

    /// Waits out any common pause, then takes a slot for one request (at its turn, while
    /// requests are spaced).
    pub async fn acquire(&self) -> SemaphorePermit<'_> {
        loop {
            self.wait_pause().await;
            // The semaphore is never closed.
            let permit = self.permits.acquire().await.expect("budget semaphore open");
            if let Some(at) = self.next_turn() {
                tokio::time::sleep_until(at.into()).await;
            }
            if self.pause_left().is_none() {
                return permit;
            }
        }
    }

    /// Applies what an answer's headers ask (`max` bounds any wait a server can impose).
    pub fn observe(&self, pacing: Pacing, max: Duration) {
        match pacing {
            Pacing::Pause(wait) => self.pause_for(wait.min(max)),
            Pacing::Spaced(gap) => self.space(Some(gap.min(max))),
            Pacing::Free => self.space(None),
        }
    }

    fn space(&self, gap: Option<Duration>) {
        self.spacing.lock().unwrap_or_else(|e| e.into_inner()).0 = gap;
    }

    /// While requests are spaced: the instant this caller's request may start (booked, so
    /// the next caller goes one gap later).
    fn next_turn(&self) -> Option<Instant> {
        let mut s = self.spacing.lock().unwrap_or_else(|e| e.into_inner());
        let gap = s.0?;
        let at = s.1.max(Instant::now());
        s.1 = at + gap;
        Some(at)
    }

    /// Makes every caller hold off for `wait` from now (an existing longer pause stays).
    pub fn pause_for(&self, wait: Duration) {
        if wait.is_zero() {
            return;
        }
        let until = Instant::now() + wait;
        let mut p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none_or(|old| old < until) {
            *p = Some(until);
        }
    }

    fn pause_left(&self) -> Option<Duration> {
        let p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        p.and_then(|until| until.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    async fn wait_pause(&self) {
        while let Some(left) = self.pause_left() {
            tokio::time::sleep(left).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 207, 400, 401, 403, 404, 409, 413, 422, 501] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = at(784_111_770); // 1994-11-06 08:49:30 UTC
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(" 1.5 ", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn http_date_matches_known_epochs() {
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(UNIX_EPOCH)
        );
        assert_eq!(
            parse_http_date("Thu, 26 Nov 2026 09:40:00 GMT"),
            Some(at(1_795_686_000))
        );
        assert_eq!(parse_http_date("Thu, 26 Nov 2026 09:40:00 CET"), None);
    }

    #[test]
    fn ratelimit_reset_epoch_or_delta() {
        let now = at(1_800_000_000);
        assert_eq!(
            parse_ratelimit_reset("2", now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_ratelimit_reset("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_ratelimit_reset("1800000005", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_ratelimit_reset("1799999990", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_ratelimit_reset("x", now), None);
        assert_eq!(parse_ratelimit_reset("-1", now), None);
    }

    #[test]
    fn server_hint_prefers_retry_after() {
        let now = at(1_800_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(server_hint(&h, now), None);
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1800000004"));
        assert_eq!(server_hint(&h, now), Some(Duration::from_secs(4)));
        h.insert("retry-after", HeaderValue::from_static("1"));
        assert_eq!(server_hint(&h, now), Some(Duration::from_secs(1)));
    }

    #[test]
    fn pacing_spreads_a_low_window_and_pauses_on_an_empty_one() {
        let now = at(1_800_000_000);
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("3"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("50"));
        assert_eq!(pacing(&h, now, 8), Pacing::Free);
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("5"));
        assert_eq!(
            pacing(&h, now, 8),
            Pacing::Spaced(Duration::from_millis(500))
        );
        assert_eq!(pacing(&h, now, 4), Pacing::Free);
        // With the window's size known, its own pace: 60 per 3 s.
        h.insert("x-ratelimit-limit", HeaderValue::from_static("60"));
        assert_eq!(
            pacing(&h, now, 8),
            Pacing::Spaced(Duration::from_millis(50))
        );
        // A limit smaller than what is left says nothing useful: spread what is left.
        h.insert("x-ratelimit-limit", HeaderValue::from_static("2"));
        assert_eq!(
            pacing(&h, now, 8),
            Pacing::Spaced(Duration::from_millis(500))
        );
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        assert_eq!(pacing(&h, now, 8), Pacing::Pause(Duration::from_secs(3)));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1800000002"));
        assert_eq!(pacing(&h, now, 8), Pacing::Pause(Duration::from_secs(2)));
        h.remove("x-ratelimit-reset");
        assert_eq!(pacing(&h, now, 8), Pacing::Free);
    }

    #[tokio::test]
    async fn spaced_requests_start_a_gap_apart_until_the_window_is_free() {
        let b = Budget::new(8);
        let gap = Duration::from_millis(40);
        b.observe(Pacing::Spaced(gap), Duration::from_secs(60));
        // Turns are booked one gap apart, whoever asks.
        let turns: Vec<Instant> = (0..3).map(|_| b.next_turn().expect("spaced")).collect();
        assert_eq!(turns[1] - turns[0], gap);
        assert_eq!(turns[2] - turns[1], gap);
        // A caller waits for its turn: the next is one gap after the last booked.
        let _p = b.acquire().await;
        assert!(Instant::now() >= turns[2] + gap);
        // A server that says the window is free again lifts the spacing.
        b.observe(Pacing::Free, Duration::from_secs(60));
        assert_eq!(b.next_turn(), None);
        // No server hint waits longer than the client's ceiling.
        b.observe(Pacing::Spaced(Duration::from_secs(600)), gap);
        let (t0, t1) = (
            b.next_turn().expect("spaced"),
            b.next_turn().expect("spaced"),
        );
        assert_eq!(t1 - t0, gap);
    }

    #[test]
    fn a_refused_loopback_gets_few_attempts_a_remote_host_all() {
        let p = RetryPolicy::default();
        let loopback = crate::limits::PortLimits::default().loopback_refused_attempts;
        assert_eq!(p.transport_attempts(true, loopback), 3);
        assert_eq!(p.transport_attempts(false, loopback), 10);
        assert_eq!(p.transport_attempts(true, 0), 1, "one attempt at least");
        let one = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        assert_eq!(one.transport_attempts(true, loopback), 1);
        for local in [
            "http://127.0.0.1:9",
            "http://127.3.4.5/v1",
            "http://[::1]:80/x",
            "http://localhost:5555",
            "http://LOCALHOST",
        ] {
            assert!(is_loopback_url(local), "{local}");
        }
        for remote in [
            "https://api.port.io",
            "http://10.0.0.1:9",
            "http://[2001:db8::1]/",
            "http://localhost.example.com",
            "not a url",
        ] {
            assert!(!is_loopback_url(remote), "{remote}");
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_millis(300));
        assert_eq!(p.backoff(1), Duration::from_millis(600));
        assert_eq!(p.backoff(4), Duration::from_millis(4800));
        assert_eq!(p.backoff(20), Duration::from_secs(300));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(300));
        assert!(p.may_retry(0));
        assert!(p.may_retry(8));
        assert!(!p.may_retry(9), "10 attempts in all");
    }

    #[test]
    fn delay_uses_hint_capped_else_jittered_backoff() {
        let p = RetryPolicy {
            max_delay: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(2)), 0.9),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(60)), 0.0),
            Duration::from_secs(10)
        );
        assert_eq!(p.delay(1, None, 0.0), Duration::from_millis(600));
        let jittered = p.delay(1, None, 0.999);
        assert!(jittered >= Duration::from_millis(450) && jittered < Duration::from_millis(600));
    }

    #[test]
    fn jitter_unit_in_range_and_varies() {
        let xs: Vec<f64> = (0..100).map(|_| jitter_unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(xs.windows(2).any(|w| w[0] != w[1]));
    }

    #[tokio::test]
    async fn budget_pause_holds_callers() {
        let b = Budget::new(2);
        b.pause_for(Duration::from_millis(60));
        let start = Instant::now();
        let _p = b.acquire().await;
        assert!(start.elapsed() >= Duration::from_millis(55));
    }
}
