//! Timestamps as Port writes them: ISO-8601 UTC with milliseconds (`2026-03-01T10:00:00.000Z`).
//!
//! Owns: formatting "now", parsing client-supplied date-times and comparing them at millisecond
//! precision. Must not touch: anything stateful.

use jiff::Timestamp;

pub fn now() -> Timestamp {
    Timestamp::now()
}

/// `2026-03-01T10:00:00.000Z`.
pub fn format(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub fn now_string() -> String {
    format(now())
}

/// Parses an RFC 3339 / ISO-8601 date-time with an offset (`Z`, `+00:00`, any precision).
pub fn parse(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok()
}

/// Milliseconds since the epoch of a date-time string, if it parses.
pub fn millis(s: &str) -> Option<i64> {
    parse(s).map(|t| t.as_millisecond())
}
