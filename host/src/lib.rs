//! # Berth
//!
//! Keeps a Port software catalog in sync with AWS. The native host does the
//! trusted work (AWS, Port, scheduling); each resource kind's enrichment and
//! mapping runs as a sandboxed WebAssembly component (see [`plugin`]).
//!
//! The folders follow the data: [`discovery`] reads AWS into raw items, [`pipeline`] wires the
//! stages, [`plugin`] enriches and maps items in the sandbox, [`catalog`] makes Port match.
//! `docs/architecture.md` follows one `berth sync` through them, file by file.
//!
//! - [`discovery`]: AWS (credentials, accounts, regions, Cloud Control, adaptive rate limits),
//!   streaming raw items, and each scope's completeness.
//! - [`pipeline`]: the map stage, one resync end to end, its display and report, golden cases.
//! - [`mapping`]: Port's mapping YAML (the user's config of what to map), read and checked;
//!   every stage reads it.
//! - [`plugin`]: the wasmtime engine, plugin loading and calls, the registry, the plugins'
//!   cloud lookups, fair share of the sandbox among tenants.
//! - [`catalog`]: the Port side: the API client ([`catalog::port`]), change detection,
//!   upserts, reconciliation, sync status and metrics.
//! - [`scope`]: the (account, region, kind) unit of discovery completeness, how each ended
//!   and why; what decides which entities may be deleted.
//! - [`store`]: Berth's state (change detection, sync history, tenants, schedules, leases),
//!   SQLite or Postgres.
//! - [`serve`]: `berth serve`, the multi-tenant service (admin API, leases, fair share).
//! - [`config`]: the config file (Port, state store, mapping), secrets by reference.
//! - [`limits`]: every limit and timeout, as one tree of data.
//! - [`error_text`], [`json_text`], [`panics`]: one line per error, JSON laid out as `jq`
//!   prints it, panics caught at task boundaries.
//!
//! The command line (`main.rs` and `commands/`) is the binary's, not this library's.

pub mod catalog;
pub mod config;
pub mod discovery;
pub mod error_text;
pub mod json_text;
pub mod limits;
pub mod mapping;
pub mod panics;
pub mod pipeline;
pub mod plugin;
pub mod scope;
pub mod serve;
pub mod store;
