//! Berth's client of Port's REST API (getport.io), as `docs/port-api.md` describes it.
//!
//! Owns: talking to Port over HTTP: credentials and access tokens ([`auth`]), the one retry
//! policy and shared request budget ([`retry`]), the client with its calls ([`client`]), and
//! blueprint ensuring plus the relation-ordered retry of failed entities ([`blueprints`]), the
//! owned-entity listing and deletes ([`entities`]), the integration resource with resync
//! state and sync metrics ([`integration`]), and the entity record the catalog side carries
//! ([`entity`]).
//! Must not touch: mappings, AWS, plugins or sync state; callers hand in [`Entity`] records
//! whose bodies are sent as the mapper wrote them, and get per-entity results back.

pub mod auth;
pub mod blueprints;
pub mod client;
pub mod entities;
pub mod entity;
pub mod integration;
pub mod retry;

pub use auth::{Credentials, Secret};
pub use blueprints::{BlueprintConflict, BlueprintExtension, BlueprintReport, ConflictKind};
pub use client::{
    ClientConfig, EU_BASE_URL, EntityError, EntityResult, PortClient, US_BASE_URL, UpsertOptions,
    UserAgent,
};
pub use entity::Entity;
pub use retry::RetryPolicy;

/// What can go wrong at the crate boundary of a Port call. Per-entity failures of a bulk upsert
/// are not errors of the call; they come back in [`EntityResult`].
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// `POST /v1/auth/access_token` refused the credentials (or kept failing).
    #[error("Port did not grant an access token (HTTP {status}): {message}")]
    Auth { status: u16, message: String },
    /// A request was answered 401 again right after the token was renewed.
    #[error("Port answered 401 Unauthorized to {path} with a fresh token: {message}")]
    Unauthorized { path: String, message: String },
    /// Port could not be reached (connection, TLS or timeout) after every attempt. `cause` is
    /// the root cause said once, not the HTTP stack's chain of wrappers (no `#[source]`: a
    /// `{:#}` printer would repeat it).
    #[error("Port at {url} unreachable after {attempts} attempt{}: {cause}", if *attempts == 1 { "" } else { "s" })]
    Transport {
        url: String,
        attempts: u32,
        cause: String,
    },
    /// Port's answer could not be read.
    #[error("unexpected answer from Port: {0}")]
    InvalidResponse(String),
    /// Port refused a request that is not a per-entity write (e.g. creating a blueprint).
    #[error("Port answered HTTP {status} to {request}: {message}")]
    Rejected {
        request: String,
        status: u16,
        message: String,
    },
    /// The caller's input cannot be sent (e.g. a blueprint without an identifier).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The client could not be set up (bad base URL, HTTP client construction).
    #[error("invalid Port client configuration: {0}")]
    Config(String),
}
