//! Startup configuration of one fake Port server.
//!
//! Owns: the settings fixed when a server starts (listen address, accepted credentials, token
//! lifetime, body cap, state file, initial faults, UNCERTAIN-behaviour switches). Must not touch:
//! runtime state; faults changed at runtime live in `faults.rs` behind the admin API.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use crate::faults::Faults;

/// One accepted `clientId`/`clientSecret` pair for `POST /v1/auth/access_token`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub client_id: String,
    pub client_secret: String,
}

impl Credential {
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        }
    }
}

/// What `expiresIn` says when a credential set asks again while its token is still valid (Port
/// hands back the same token; the contract leaves the number UNCERTAIN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpiresInOnReuse {
    /// The seconds the reused token really has left.
    #[default]
    Remaining,
    /// The full lifetime again, although the token expires earlier: exercises clients that trust
    /// their own clock too much.
    Full,
}

/// Which writer's User-Agent an entity's `$datasource` keeps (UNCERTAIN in the contract).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DatasourcePolicy {
    /// Every write sets `$datasource` to the writer's User-Agent (lets an integration adopt
    /// entities another writer created).
    #[default]
    LastWriter,
    /// `$datasource` is fixed when the entity is created.
    FirstWriter,
}

/// Settings of one server. `Config::default()` listens on an ephemeral port of 127.0.0.1 and
/// accepts the credentials `fake-client-id` / `fake-client-secret`.
#[derive(Clone, Debug)]
pub struct Config {
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    pub credentials: Vec<Credential>,
    /// Token lifetime; Port's is 3 hours.
    pub token_ttl: Duration,
    pub expires_in_on_reuse: ExpiresInOnReuse,
    /// Request bodies larger than this get 413 on every route (Port: 1 MiB).
    pub max_body_bytes: usize,
    /// Validate request bodies and query strings against the OpenAPI spec (422 on drift).
    pub validate_requests: bool,
    /// Let `GET` routes answer without an `Authorization` header, so a browser can look around.
    /// A header that is present must still carry a valid token.
    pub public_reads: bool,
    pub datasource_policy: DatasourcePolicy,
    /// Faults in force from the start; change them at runtime with `/_fake/faults`.
    pub faults: Faults,
    /// Load state from this JSON file at start (when it exists) and save it there on shutdown.
    pub state_file: Option<PathBuf>,
    /// Also save the state this often while it changes (needs `state_file`).
    pub save_interval: Option<Duration>,
}

pub const DEFAULT_CLIENT_ID: &str = "fake-client-id";
pub const DEFAULT_CLIENT_SECRET: &str = "fake-client-secret";
pub const ONE_MIB: usize = 1024 * 1024;

impl Default for Config {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            credentials: vec![Credential::new(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)],
            token_ttl: Duration::from_secs(3 * 60 * 60),
            expires_in_on_reuse: ExpiresInOnReuse::Remaining,
            max_body_bytes: ONE_MIB,
            validate_requests: true,
            public_reads: false,
            datasource_policy: DatasourcePolicy::LastWriter,
            faults: Faults::default(),
            state_file: None,
            save_interval: None,
        }
    }
}
