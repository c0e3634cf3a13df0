//! Per-kind counts of a sync, and their rendering in Ocean's sync-metrics shape so that Port's
//! "sync status" UI shows Berth's syncs as it shows Ocean's.
//!
//! Owns: [`KindCounters`] (extract / transform / load / delete phases, Ocean's
//! `object_count_type` names) and [`kind_metrics_body`]. Must not touch: Port; `push` sends the
//! bodies.

use serde_json::{Value, json};

/// The counts of one resource entry (`kind` at `index` in the mapping), per phase.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KindCounters {
    pub kind: String,
    pub index: usize,
    /// Blueprints its entities went to (the first is reported, as Ocean reports one).
    pub blueprint: Option<String>,
    pub raw_extracted: u64,
    pub extract_failed: u64,
    pub transformed: u64,
    pub filtered_out: u64,
    pub transform_failed: u64,
    pub loaded: u64,
    pub load_failed: u64,
    /// Unchanged entities, not sent (Ocean's `load/skipped`).
    pub skipped: u64,
    pub deleted: u64,
}

impl KindCounters {
    /// Ocean's `kindIdentifier`: `{kind}-{index}`.
    pub fn identifier(&self) -> String {
        format!("{}-{}", self.kind, self.index)
    }
}

/// Who reports: the fields every metrics item repeats.
#[derive(Debug, Clone)]
pub struct Reporter {
    pub integration_type: String,
    pub integration_identifier: String,
    pub integration_version: String,
}

fn count(n: u64) -> Value {
    json!({ "object_count": n })
}

/// One kind's `KindMetrics` body (`syncState`: `running|completed|failed|aborted`).
pub fn kind_metrics_body(
    who: &Reporter,
    event_id: &str,
    sync_state: &str,
    duration_seconds: f64,
    k: &KindCounters,
) -> Value {
    let success = u8::from(sync_state == "completed");
    json!({
        "integrationType": who.integration_type,
        "integrationIdentifier": who.integration_identifier,
        "integrationVersion": who.integration_version,
        "oceanVersion": concat!("berth-", env!("CARGO_PKG_VERSION")),
        "installationType": "OnPrem",
        "executionMode": "single_process",
        "kindIdentifier": k.identifier(),
        "kind": k.kind,
        "kindIndex": k.index,
        "eventId": event_id,
        "syncState": sync_state,
        "blueprint": k.blueprint.clone().unwrap_or_default(),
        "metrics": {
            "phase": {
                "resync": {"duration_seconds": duration_seconds, "success": success},
                "extract": {"object_count_type": {
                    "raw_extracted": count(k.raw_extracted),
                    "failed": count(k.extract_failed),
                }},
                "transform": {"object_count_type": {
                    "transformed": count(k.transformed),
                    "filtered_out": count(k.filtered_out),
                    "failed": count(k.transform_failed),
                }},
                "load": {"object_count_type": {
                    "loaded": count(k.loaded),
                    "failed": count(k.load_failed),
                    "skipped": count(k.skipped),
                }},
                "delete": {"object_count_type": {
                    "deleted": count(k.deleted),
                }},
            }
        }
    })
}
