//! `berth serve`'s own config file: where it listens, who may call the admin API, where the
//! shared state lives, the plugin directory, the worker's limits and what tenants may do.
//!
//! ```yaml
//! listen: 127.0.0.1:8080
//! state: postgres://berth@db/berth     # or a SQLite file (one worker); default .berth/serve.db
//! plugins: /opt/berth/plugins           # hot-reloaded for every tenant
//! blueprints: /opt/berth/blueprints     # ensured in every tenant's Port
//! secretKeyEnv: BERTH_SECRET_KEY        # 32 bytes, base64; seals tenant documents at rest
//! tokens:                               # bearer tokens of the admin API
//!   - token: {env: BERTH_ADMIN_TOKEN}   # every tenant
//!   - token: {file: /run/secrets/acme-token}
//!     tenant: acme                      # only tenant `acme`; sees nothing of the others
//! worker: {maxConcurrentSyncs: 1024, workSlots: 8, leaseSeconds: 30}
//! listener: {headerTimeoutSeconds: 10, bodyTimeoutSeconds: 30,
//!            tokenRate: {perSecond: 50, burst: 100}, addressRate: {perSecond: 100, burst: 200}}
//! //! tenantPolicy: {allowCustomEndpoints: false, maxWeight: 10}
//! identity: {issuer: https://berth.example.com}   # Berth as its tenants' OIDC provider
//! ```
//!
//! Owns: parsing and checking this file (errors name the key and line), every limit and
//! timeout of the worker in [`WorkerLimits`] and of the admin API's listener in
//! [`ListenerLimits`]. Must not touch: tenants' configs (`serve::tenants`) or what the
//! settings do.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::tenants::TenantPolicy;
use crate::config::{ConfigError, SecretValues, ValueRef};

/// One admin API token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    pub token: ValueRef,
    /// Limits the token to one tenant.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// Every limit and timeout of one worker process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkerLimits {
    /// Tenants synced at once by this worker. A sync spends most of its time waiting on its
    /// own tenant's AWS and Port rate limits, and the CPU work of all of them is shared by
    /// `workSlots`, so this is set high: a tenant falling due beyond it waits for a running
    /// sync to end (with 500 due at once and 256 places, the last waited minutes).
    #[serde(default = "d_syncs")]
    pub max_concurrent_syncs: usize,
    /// Plugin batches mapped at once across all tenants, shared fairly (`crate::fair`).
    #[serde(default = "d_slots")]
    pub work_slots: usize,
    /// A lease not renewed for this long is taken by another worker.
    #[serde(default = "d_lease")]
    pub lease_seconds: u64,
    /// How often a lease is renewed (well under `leaseSeconds`).
    #[serde(default = "d_heartbeat")]
    pub heartbeat_seconds: u64,
    /// How often the worker looks for due tenants.
    #[serde(default = "d_poll")]
    pub poll_millis: u64,
    /// How often each tenant's Port resync request is polled (0: never).
    #[serde(default = "d_port_poll")]
    pub port_poll_seconds: u64,
    /// Tenant setups (clients, mapping, AWS sessions) kept between syncs.
    #[serde(default = "d_cached")]
    pub max_cached_tenants: usize,
}

fn d_syncs() -> usize {
    1_024
}
fn d_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 4)
}
fn d_lease() -> u64 {
    30
}
fn d_heartbeat() -> u64 {
    5
}
fn d_poll() -> u64 {
    500
}
fn d_port_poll() -> u64 {
    60
}
fn d_cached() -> usize {
    1_000
}

impl Default for WorkerLimits {
    fn default() -> Self {
        Self {
            max_concurrent_syncs: d_syncs(),
            work_slots: d_slots(),
            lease_seconds: d_lease(),
            heartbeat_seconds: d_heartbeat(),
            poll_millis: d_poll(),
            port_poll_seconds: d_port_poll(),
            max_cached_tenants: d_cached(),
        }
    }
}

impl WorkerLimits {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_seconds)
    }
    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_millis)
    }
}

/// A token bucket: `perSecond` requests on average, `burst` at once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// Every limit of the admin API's listener: what an unauthenticated or abusive client can
/// hold of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenerLimits {
    /// A request's head must arrive within this of the connection opening, or of the previous
    /// response on a kept-alive connection (hyper starts the same timer when a connection goes
    /// idle), so it is also the keep-alive idle timeout.
    #[serde(default = "d_header_timeout")]
    pub header_timeout_seconds: u64,
    /// A request's whole body must arrive within this once its handler starts reading it
    /// (bodies are read only after the token is checked).
    #[serde(default = "d_body_timeout")]
    pub body_timeout_seconds: u64,
    /// Per bearer token, after it is checked: one tenant's automation cannot starve the
    /// others' or the operator's calls.
    #[serde(default = "d_token_rate")]
    pub token_rate: Rate,
    /// Per client address (IPv6: per /64), every request, authenticated or not (`/healthz`,
    /// `/openapi.json`, wrong tokens). Behind a reverse proxy every client shares the
    /// proxy's address.
    #[serde(default = "d_address_rate")]
    pub address_rate: Rate,
}

fn d_header_timeout() -> u64 {
    10
}
fn d_body_timeout() -> u64 {
    30
}
// High enough that a dashboard or a test polling a handful of tenants several times a
// second is never refused; low enough that one client cannot monopolise the sealing and
// the state store behind the API.
fn d_token_rate() -> Rate {
    Rate {
        per_second: 50,
        burst: 100,
    }
}
fn d_address_rate() -> Rate {
    Rate {
        per_second: 100,
        burst: 200,
    }
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            header_timeout_seconds: d_header_timeout(),
            body_timeout_seconds: d_body_timeout(),
            token_rate: d_token_rate(),
            address_rate: d_address_rate(),
        }
    }
}

impl ListenerLimits {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_seconds)
    }
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_seconds)
    }

    fn check(&self) -> Result<(), String> {
        if self.header_timeout_seconds == 0 || self.body_timeout_seconds == 0 {
            return Err(
                "listener.headerTimeoutSeconds and listener.bodyTimeoutSeconds: must be at least 1"
                    .into(),
            );
        }
        for (key, r) in [
            ("listener.tokenRate", self.token_rate),
            ("listener.addressRate", self.address_rate),
        ] {
            if r.per_second == 0 || r.burst == 0 {
                return Err(format!("{key}: perSecond and burst must be at least 1"));
            }
        }
        Ok(())
    }
}

/// The parsed `berth serve` config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServeConfig {
    #[serde(default = "d_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub plugins: Option<PathBuf>,
    /// Blueprints (a directory of JSON documents) ensured in every tenant's Port.
    #[serde(default)]
    pub blueprints: Option<PathBuf>,
    #[serde(default = "d_key_env")]
    pub secret_key_env: String,
    #[serde(default)]
    pub tokens: Vec<TokenSection>,
    /// This worker's name in leases (default: host name and process id).
    #[serde(default)]
    pub worker_id: Option<String>,
    #[serde(default)]
    pub worker: WorkerLimits,
    #[serde(default)]
    pub listener: ListenerLimits,
    #[serde(default)]
    pub tenant_policy: TenantPolicy,
    /// Berth as its tenants' OIDC identity provider (`aws.auth.method: berthIdentity`).
    #[serde(default)]
    pub identity: Option<super::identity::IdentityConfig>,
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn d_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn d_key_env() -> String {
    "BERTH_SECRET_KEY".into()
}

/// A resolved admin token.
#[derive(Clone)]
pub struct AdminToken {
    pub token: String,
    pub tenant: Option<String>,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminToken(***, tenant: {:?})", self.tenant)
    }
}

impl ServeConfig {
    pub fn from_path(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: name.clone(),
            source,
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: name.clone(),
            message,
        };
        let mut c: ServeConfig =
            serde_norway::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        c.base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let w = &c.worker;
        if w.max_concurrent_syncs == 0 || w.work_slots == 0 {
            return Err(invalid(
                "worker.maxConcurrentSyncs and worker.workSlots: must be at least 1".into(),
            ));
        }
        if w.heartbeat_seconds == 0 || w.heartbeat_seconds * 2 > w.lease_seconds {
            return Err(invalid(format!(
                "worker.heartbeatSeconds: must be at least 1 and at most half of leaseSeconds ({})",
                w.lease_seconds
            )));
        }
        c.listener.check().map_err(invalid)?;
        c.tenant_policy.check().map_err(|e| invalid(e.0))?;
        if let Some(i) = c.identity.as_mut() {
            i.check().map_err(invalid)?;
        }
        for (i, t) in c.tokens.iter().enumerate() {
            if matches!(t.token, ValueRef::Inline(_) | ValueRef::Secret { .. }) {
                return Err(invalid(format!(
                    "tokens[{i}].token: write it as {{env: VARIABLE}} or {{file: PATH}}"
                )));
            }
            if let Some(id) = &t.tenant {
                super::tenants::check_id(id)
                    .map_err(|e| invalid(format!("tokens[{i}].tenant: {e}")))?;
            }
        }
        Ok(c)
    }

    /// Resolves the admin tokens; an empty or short token is refused.
    pub fn admin_tokens(&self) -> Result<Vec<AdminToken>, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: "serve config".into(),
            message,
        };
        self.tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let token = t
                    .token
                    .resolve(
                        &format!("tokens[{i}].token"),
                        &self.base_dir,
                        &SecretValues::default(),
                    )
                    .map_err(invalid)?;
                if token.len() < 16 {
                    return Err(invalid(format!(
                        "tokens[{i}].token: at least 16 characters"
                    )));
                }
                Ok(AdminToken {
                    token,
                    tenant: t.tenant.clone(),
                })
            })
            .collect()
    }

    pub fn state_url(&self) -> String {
        match self.state.as_deref() {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                u.to_string()
            }
            Some(p) => format!("sqlite://{}?mode=rwc", self.base_dir.join(p).display()),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.base_dir.join(".berth/serve.db").display()
            ),
        }
    }

    pub fn worker_id(&self) -> String {
        self.worker_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "worker".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServeConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("serve.yaml");
        std::fs::write(&p, text).unwrap();
        ServeConfig::from_path(&p)
    }

    #[test]
    fn defaults_and_errors_name_the_key() {
        let c = parse("listen: 127.0.0.1:9000\n").unwrap();
        assert_eq!(c.worker.lease_seconds, 30);
        assert!(c.state_url().ends_with(".berth/serve.db?mode=rwc"));
        let e = parse("tokens:\n  - token: plain-text-token-here\n").unwrap_err();
        assert!(e.to_string().contains("tokens[0].token"), "{e}");
        let e = parse("worker: {leaseSeconds: 4, heartbeatSeconds: 3}\n").unwrap_err();
        assert!(e.to_string().contains("heartbeatSeconds"), "{e}");
        let e = parse("wroker: {}\n").unwrap_err();
        assert!(e.to_string().contains("wroker"), "{e}");
        let e = parse("tokens:\n  - {token: {env: X}, tenant: 'A B'}\n").unwrap_err();
        assert!(e.to_string().contains("tokens[0].tenant"), "{e}");
        let e = parse("identity: {issuer: 'http://berth.example.com'}\n").unwrap_err();
        assert!(e.to_string().contains("identity.issuer"), "{e}");
        let e =
            parse("identity: {issuer: 'https://b.example.com', rotationSecs: 9}\n").unwrap_err();
        assert!(e.to_string().contains("rotationSecs"), "{e}");
        let c = parse("identity: {issuer: 'https://b.example.com/oidc/'}\n").unwrap();
        let i = c.identity.unwrap();
        assert_eq!(
            (i.issuer.as_str(), i.path()),
            ("https://b.example.com/oidc", "/oidc".into())
        );
    }

    #[test]
    fn listener_limits_default_and_are_checked() {
        let c = parse("listen: 127.0.0.1:9000\n").unwrap();
        assert_eq!(c.listener.header_timeout(), Duration::from_secs(10));
        assert_eq!(c.listener.body_timeout(), Duration::from_secs(30));
        let c =
            parse("listener: {headerTimeoutSeconds: 2, addressRate: {perSecond: 1, burst: 3}}\n")
                .unwrap();
        assert_eq!(c.listener.header_timeout_seconds, 2);
        assert_eq!(
            c.listener.address_rate,
            Rate {
                per_second: 1,
                burst: 3
            }
        );
        assert_eq!(c.listener.token_rate, d_token_rate());
        let e = parse("listener: {bodyTimeoutSeconds: 0}\n").unwrap_err();
        assert!(e.to_string().contains("listener.bodyTimeoutSeconds"), "{e}");
        let e = parse("listener: {tokenRate: {perSecond: 0, burst: 1}}\n").unwrap_err();
        assert!(e.to_string().contains("listener.tokenRate"), "{e}");
        let e = parse("listener: {idle: 3}\n").unwrap_err();
        assert!(e.to_string().contains("idle"), "{e}");
        let e = parse("tenantPolicy: {maxWeight: 0}\n").unwrap_err();
        assert!(e.to_string().contains("tenantPolicy.maxWeight"), "{e}");
    }
}
