//! A local fake of Port's REST API (getport.io), built from what Berth and Ocean need of it and
//! Port's published OpenAPI spec (vendored as `openapi.yaml` next to this crate's manifest).
//!
//! Owns: the whole fake server: routes, in-memory state, request validation against the spec,
//! fault injection, the request log and optional state persistence. Must not touch: anything
//! outside this crate; Berth's own Port client lives in the host crate and only talks to this
//! server over HTTP.
//!
//! Use it in-process from tests with [`spawn`] (one server per test on an ephemeral port), or
//! from the command line with `cargo run -p berth-fake-port -- --port 5555 [--state FILE]`.
//! Tests talk to it over HTTP through the `client` module (feature `client`).

mod auth;
mod catalog;
#[cfg(feature = "client")]
pub mod client;
mod clock;
mod config;
mod error;
mod faults;
mod integration;
mod model;
mod query;
mod reqlog;
mod routes;
mod search;
mod server;
pub mod spec;

pub use config::{Config, Credential, DatasourcePolicy, ExpiresInOnReuse};
pub use faults::{Faults, RateLimit, ResetStyle};
pub use model::{Entity, Snapshot};
pub use reqlog::LoggedRequest;
pub use server::{FakePortHandle, spawn};
