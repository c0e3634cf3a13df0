//! # Berth
//!
//! Keeps a Port software catalog in sync with AWS. The native host does the
//! trusted work (AWS, Port, scheduling); each resource kind's enrichment and
//! mapping runs as a sandboxed WebAssembly component (see [`plugin`]).
//!
//! Modules, each owning one concept:
//! - [`json_text`]: JSON text laid out as `jq` prints it.
//! - [`limits`]: every sandbox limit and timeout, per tenant.
//! - [`lookup`]: the host side of the plugins' read-only cloud lookups.
//! - [`panics`]: panics caught at task boundaries, and injected ones for tests.
//! - [`plugin`]: the wasmtime engine, plugin loading, calls, registry.
//! - [`mapping`]: Port's mapping YAML, read and checked on the host.
//! - [`map`]: the streaming `berth map` pipeline (raw items → entities).
//! - [`plugin_test`]: `berth plugin test` golden cases.
//! - [`plugin_new`]: `berth plugin new`, a plugin crate to start from.
//! - [`bench`]: `berth bench` workloads that print figures.
//! - [`config`]: the config file (Port, state store, mapping), secrets by reference.
//! - [`error_text`]: one line of text for an error chain, causes said once, never `Debug`.
//! - [`fair`]: one process's work slots shared fairly among tenants.
//! - [`port`]: the Port API client (tokens, retries, bulk upsert, deletes, sync status).
//! - [`aws`]: AWS discovery (credentials, accounts, regions, Cloud Control,
//!   adaptive rate limits) streaming raw items, and the plugins' AWS lookups.
//! - [`scope`]: the (account, region, kind) unit of discovery completeness, how each ended
//!   and why; what decides which entities may be deleted.
//! - [`store`]: Berth's state (change detection, sync history, tenants, schedules, leases),
//!   SQLite or Postgres.
//! - [`sync`]: one sync's Port side: change detection, upserts, reconciliation, metrics.
//! - [`resync`]: one resync end to end (discover → map → push), streaming.
//! - [`report`]: the end-of-resync summary table and HTML report.
//! - [`runner`]: `berth sync`/`berth run` setup, triggers, graceful stop, `/metrics`.
//! - [`serve`]: `berth serve`, the multi-tenant service (admin API, leases, fair share).

pub mod aws;
pub mod bench;
pub mod config;
pub mod display;
pub mod error_text;
pub mod fair;
pub mod json_text;
pub mod limits;
pub mod lookup;
pub mod map;
pub mod mapping;
pub mod panics;
pub mod plugin;
pub mod plugin_new;
pub mod plugin_test;
pub mod port;
pub mod report;
pub mod resync;
pub mod runner;
pub mod scope;
pub mod serve;
pub mod store;
pub mod sync;
