//! One sync's Port side: from mapped entities to a catalog that matches them.
//!
//! - [`changes`]: change detection, the hash of the body last written per entity.
//! - [`reconcile`]: which owned entities to delete, and why others are kept (a pure decision).
//! - [`metrics`]: per-kind counts in Ocean's sync-metrics shape.
//! - [`input`]: the entity and scope files `berth push` reads.
//! - [`push`]: the orchestration: resync state, change detection, upserts, relation retry,
//!   reconciliation, metrics, state store.
//!
//! Must not touch: AWS or plugins; entities arrive mapped, each with its scope
//! ([`crate::scope`], shared with discovery), whose statuses are all reconciliation trusts.

pub mod changes;
pub mod input;
pub mod metrics;
pub mod port;
pub mod push;
pub mod reconcile;

pub use push::{Plan, PushOptions, PushReport, Pusher};
