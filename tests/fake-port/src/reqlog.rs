//! The request log: one line per request the fake answered, for tests that count calls
//! ("no upserts on the second push") and for people watching a demo.
//!
//! Owns: the bounded in-memory log and its filtering. Must not touch: how requests are answered;
//! the server middleware appends to it after the response is known. Admin calls (`/_fake/*`)
//! are not logged.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Keeps at most this many entries (the oldest are dropped).
const CAPACITY: usize = 500_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// 1-based arrival order.
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    /// When the request arrived (`2026-03-01T10:00:00.000Z`).
    pub timestamp: String,
    pub body_bytes: usize,
    pub user_agent: Option<String>,
    /// The `X-Berth-Worker` header: which `berth serve` worker sent it.
    #[serde(default)]
    pub worker: Option<String>,
    /// The injected fault that answered it, if any (`rate_limited`, `injected_429`,
    /// `injected_5xx`, `forced_413`, `early_401`).
    pub fault: Option<String>,
    pub duration_ms: f64,
}

impl LoggedRequest {
    /// When the request arrived, in milliseconds since the epoch.
    pub fn arrived_millis(&self) -> Option<i64> {
        crate::clock::millis(&self.timestamp)
    }
}

#[derive(Debug, Default)]
pub struct RequestLog {
    next_seq: u64,
    dropped: u64,
    entries: VecDeque<LoggedRequest>,
}

/// Filters of `GET /_fake/requests`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LogFilter {
    pub method: Option<String>,
    pub path_contains: Option<String>,
    pub status: Option<u16>,
    pub since_seq: Option<u64>,
}

impl RequestLog {
    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub fn push(&mut self, entry: LoggedRequest) {
        if self.entries.len() == CAPACITY {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(entry);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.dropped = 0;
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn filtered(&self, f: &LogFilter) -> Vec<LoggedRequest> {
        let mut out: Vec<LoggedRequest> = self
            .entries
            .iter()
            .filter(|e| {
                f.method
                    .as_deref()
                    .is_none_or(|m| e.method.eq_ignore_ascii_case(m))
                    && f.path_contains
                        .as_deref()
                        .is_none_or(|p| e.path.contains(p))
                    && f.status.is_none_or(|s| e.status == s)
                    && f.since_seq.is_none_or(|s| e.seq > s)
            })
            .cloned()
            .collect();
        // Concurrent requests finish out of order; report them in arrival order.
        out.sort_by_key(|e| e.seq);
        out
    }
}
