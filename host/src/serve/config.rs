//! `berth serve`'s own config file: where it listens, who may call the admin API, where the
//! shared state lives, the plugin directory, the process's limits and what tenants may do.
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
//! listener: {headerTimeoutSeconds: 10, bodyTimeoutSeconds: 30, bodyKb: 1024,
//!            tokenRate: {perSecond: 50, burst: 100}, addressRate: {perSecond: 100, burst: 200}}
//! engine: {pooledInstances: 128, maxMemoryMb: 1024}   # the wasmtime engine every tenant shares
//! tenantPolicy: {allowCustomEndpoints: false, maxWeight: 10,
//!                limits: {plugin: {timeoutMs: 10000}, batchItems: 500}}   # ceilings on tenants' `limits:`
//! identity: {issuer: https://berth.example.com}   # Berth as its tenants' OIDC provider
//! ```
//!
//! Owns: parsing and checking this file (errors name the key and line). The worker's limits
//! ([`WorkerLimits`], `worker:`), the admin API listener's ([`ListenerLimits`], `listener:`) and
//! the plugin engine's ([`EngineLimits`], `engine:`, the operator's alone: a tenant's
//! `limits.engine` is refused) are declared in `crate::limits` with every other limit and
//! embedded here. Must not touch: tenants' configs (`serve::tenants`) or what the settings do.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::tenants::TenantPolicy;
use crate::config::{ConfigError, SecretValues, ValueRef};
pub use crate::limits::{EngineLimits, ListenerLimits, Rate, WorkerLimits};

/// One admin API token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    pub token: ValueRef,
    /// Limits the token to one tenant.
    #[serde(default)]
    pub tenant: Option<String>,
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
    /// The wasmtime engine of the plugin registry, shared by every tenant. Also the engine of
    /// `tenant_policy.limits` once read, so that ceilings and tenants are checked against it.
    #[serde(default)]
    pub engine: EngineLimits,
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
        c.worker.check().map_err(invalid)?;
        c.listener.check().map_err(invalid)?;
        c.tenant_policy.check().map_err(|e| invalid(e.0))?;
        c.engine.check().map_err(invalid)?;
        // The ceilings are checked against the engine: a plugin memory ceiling above the pool's
        // slot size would let tenants ask for what cannot run.
        c.tenant_policy.limits.engine = c.engine.clone();
        c.tenant_policy
            .limits
            .check()
            .map_err(|e| invalid(format!("tenantPolicy.{e}")))?;
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
    use std::time::Duration;

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
        assert_eq!(c.listener.token_rate, ListenerLimits::default().token_rate);
        let e = parse("listener: {bodyTimeoutSeconds: 0}\n").unwrap_err();
        assert!(e.to_string().contains("listener.bodyTimeoutSeconds"), "{e}");
        let e = parse("listener: {tokenRate: {perSecond: 0, burst: 1}}\n").unwrap_err();
        assert!(e.to_string().contains("listener.tokenRate"), "{e}");
        let e = parse("listener: {idle: 3}\n").unwrap_err();
        assert!(e.to_string().contains("idle"), "{e}");
        let e = parse("tenantPolicy: {maxWeight: 0}\n").unwrap_err();
        assert!(e.to_string().contains("tenantPolicy.maxWeight"), "{e}");
        let e = parse("worker: {workSlots: 0}\n").unwrap_err();
        assert!(e.to_string().contains("worker.workSlots"), "{e}");
        let e = parse("worker: {leaseSecond: 3}\n").unwrap_err();
        assert!(e.to_string().contains("leaseSecond"), "{e}");
        let e = parse("tenantPolicy:\n  limits: {aws: {maxInFlite: 3}}\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("tenantPolicy.limits.aws.maxInFlite: unknown key"),
            "{e}"
        );
        let c = parse("tenantPolicy: {maxPluginTimeoutMs: 2000}\n").unwrap();
        assert_eq!(c.tenant_policy.limits.plugin.call_timeout.as_millis(), 2000);
        let c = parse("listener: {bodyKb: 64, addressSweepSeconds: 5}\n").unwrap();
        assert_eq!(c.listener.max_body_bytes, 64 << 10);
        assert_eq!(c.listener.address_sweep(), Duration::from_secs(5));
        assert_eq!(ListenerLimits::default().max_body_bytes, 1 << 20);
        let e = parse("listener: {bodyKb: 0}\n").unwrap_err();
        assert!(e.to_string().contains("listener.bodyKb"), "{e}");
        let e = parse("listener: {addressSweepSeconds: 0}\n").unwrap_err();
        assert!(
            e.to_string().contains("listener.addressSweepSeconds"),
            "{e}"
        );
    }

    #[test]
    fn the_port_poll_budget_is_a_floor_under_the_poll_interval() {
        let c = parse("listen: 127.0.0.1:9000\n").unwrap();
        assert_eq!(c.worker.port_poll_budget(), Duration::from_secs(60));
        let c = parse("worker: {portPollSeconds: 2}\n").unwrap();
        assert_eq!(c.worker.port_poll_budget(), Duration::from_secs(10));
        let c = parse("worker: {portPollSeconds: 2, portPollBudgetSeconds: 3}\n").unwrap();
        assert_eq!(c.worker.port_poll_budget(), Duration::from_secs(3));
        let e = parse("worker: {portPollBudgetSeconds: 0}\n").unwrap_err();
        assert!(
            e.to_string().contains("worker.portPollBudgetSeconds"),
            "{e}"
        );
    }

    /// An operator who raises the engine's memory past the default 1 GiB can let tenants use
    /// it: neither the policy's ceiling nor a tenant's `limits:` is held against the default
    /// engine they never chose; both are held against the operator's.
    #[test]
    fn a_raised_engine_lets_tenants_past_the_default_memory() {
        let c = parse(
            "engine: {maxMemoryMb: 2048}
tenantPolicy: {limits: {plugin: {memoryMb: 2048}}}
",
        )
        .unwrap();
        let tenant = crate::limits::TenantLimits::default()
            .overlay(&serde_json::json!({"plugin": {"memoryMb": 1536}}))
            .unwrap();
        let written = [(
            "plugin.memoryMb".to_string(),
            "config.limits.plugin.memoryMb".to_string(),
        )]
        .into_iter()
        .collect();
        let l = tenant.under(&c.tenant_policy.limits, &written).unwrap();
        assert_eq!(l.plugin.max_memory_bytes, 1536 << 20);
        assert_eq!(l.engine.max_memory_bytes, 2048 << 20);
        // Past the operator's engine, the policy itself is refused.
        let e = parse(
            "engine: {maxMemoryMb: 2048}
tenantPolicy: {limits: {plugin: {memoryMb: 4096}}}
",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("plugin.memoryMb") && e.contains("2048"), "{e}");
        // A process that runs on the default engine (`berth sync`, `berth map`) still refuses
        // more than that engine gives.
        assert!(
            tenant
                .check()
                .unwrap_err()
                .contains("engine.maxMemoryMb (1024)")
        );
    }

    /// `engine:` is the operator's: read with every key checked, put under the tenants'
    /// ceilings (which tenants' trees take it from), and the ceilings checked against it.
    #[test]
    fn the_engine_is_read_and_bounds_the_ceilings() {
        let c = parse(
            "engine: {pooledInstances: 3, maxMemoryMb: 512, epochTickMs: 5, \
             idleInstancesTotal: 9, wasmStackMb: 2}\n",
        )
        .unwrap();
        assert_eq!(c.engine.pooled_instances, 3);
        assert_eq!(c.engine.max_memory_bytes, 512 << 20);
        assert_eq!(c.engine.epoch_tick, Duration::from_millis(5));
        assert_eq!(c.engine.max_idle_instances_total, 9);
        assert_eq!(c.engine.max_wasm_stack, 2 << 20);
        assert_eq!(c.tenant_policy.limits.engine, c.engine);
        let tenant = crate::limits::TenantLimits::default()
            .under(&c.tenant_policy.limits, &Default::default())
            .unwrap();
        assert_eq!(tenant.engine, c.engine);
        // Left out: the defaults.
        let c = parse("listen: 127.0.0.1:9000\n").unwrap();
        assert_eq!(c.engine, EngineLimits::default());

        let e = parse("engine: {pooledInstance: 3}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("engine") && e.contains("unknown field `pooledInstance`"),
            "{e}"
        );
        let e = parse("engine:\n  maxMemoryMb: 512\n  stackMb: 2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("stackMb") && e.contains("line 3"), "{e}");
        let e = parse("engine: {pooledInstances: 0}\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("engine.pooledInstances: must be at least 1"),
            "{e}"
        );
        // A memory ceiling past the pool's slot size: refused, written or the default's.
        let e = parse("engine: {maxMemoryMb: 128}\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("tenantPolicy.limits.plugin.memoryMb: at most engine.maxMemoryMb (128)"),
            "{e}"
        );
        let c = parse(
            "engine: {maxMemoryMb: 128}\ntenantPolicy: {limits: {plugin: {memoryMb: 128}}}\n",
        )
        .unwrap();
        assert_eq!(c.tenant_policy.limits.plugin.max_memory_bytes, 128 << 20);
        // The engine is not a ceiling: the policy cannot name it.
        let e = parse("tenantPolicy: {limits: {engine: {pooledInstances: 3}}}\n").unwrap_err();
        assert!(e.to_string().contains("tenantPolicy.limits.engine"), "{e}");
    }
}
