//! A tenant of `berth serve`: its document (the sync config of `berth sync`, its secrets, its
//! weight and allowed plugins), the checks that make an untrusted document safe to run, and
//! its sealed form in the store.
//!
//! A tenant's config is untrusted: it may not read the worker's environment or files
//! (`{env}`/`{file}` references, plugin, state, report, blueprint or mapping paths), may not
//! borrow the worker's own AWS identity unless the operator allows it (and then only to
//! assume the tenant's roles with an external id), may not point Berth at other endpoints
//! unless the operator allows it, and may not raise its sandbox limits above the operator's.
//! Secrets arrive in `secrets:` and are referred to as `{secret: NAME}`; they are write-only
//! (the API shows their names) and the whole document is sealed at rest.
//!
//! Owns: [`TenantDoc`], [`TenantPolicy`], validation, redaction and sealing. Must not touch:
//! HTTP (`serve::api`) or scheduling (`serve::worker`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::secrets::SecretKey;
use crate::config::{Config, MappingSource, SecretValues, ValueRef};

/// A tenant document as the API takes it (`PUT /v1/tenants/{id}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TenantDoc {
    /// The sync config (the `berth sync` config file's keys, as JSON).
    pub config: Value,
    /// Secret values by name; `null` removes one. Merged into the stored ones on update.
    #[serde(default)]
    pub secrets: BTreeMap<String, Option<String>>,
    /// Share of the work budget relative to other tenants (default 1).
    #[serde(default)]
    pub weight: Option<u32>,
    /// Plugins (by name) this tenant may use; absent: the operator's default.
    #[serde(default)]
    pub plugins: Option<Vec<String>>,
}

/// What is sealed in the store: the document with its secrets merged.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredTenant {
    pub config: Value,
    pub secrets: BTreeMap<String, String>,
    pub weight: u32,
    pub plugins: Option<Vec<String>>,
}

/// What the operator lets tenants do (`serve.tenantPolicy`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TenantPolicy {
    /// Tenants may set `aws.endpointUrl` and `port.baseUrl` (local emulators; never in a
    /// hosted service, where it would let a tenant aim Berth at internal addresses).
    #[serde(default)]
    pub allow_custom_endpoints: bool,
    /// Tenants may use the worker's own AWS identity (`aws.auth.method: default`) to assume
    /// their roles; an `externalId` is then required (the confused-deputy guard).
    #[serde(default)]
    pub allow_host_credentials: bool,
    /// Plugins a tenant gets when its document names none (absent: every plugin).
    #[serde(default)]
    pub default_plugins: Option<Vec<String>>,
    /// The highest sandbox memory a tenant may ask for, MiB.
    #[serde(default = "default_max_memory")]
    pub max_plugin_memory_mb: u64,
    /// The longest plugin call time a tenant may ask for, ms.
    #[serde(default = "default_max_timeout")]
    pub max_plugin_timeout_ms: u64,
    /// The shortest schedule interval, minutes.
    #[serde(default = "one")]
    pub min_interval_minutes: u64,
}

fn default_max_memory() -> u64 {
    256
}
fn default_max_timeout() -> u64 {
    10_000
}
fn one() -> u64 {
    1
}

impl Default for TenantPolicy {
    fn default() -> Self {
        Self {
            allow_custom_endpoints: false,
            allow_host_credentials: false,
            default_plugins: None,
            max_plugin_memory_mb: default_max_memory(),
            max_plugin_timeout_ms: default_max_timeout(),
            min_interval_minutes: 1,
        }
    }
}

/// Why a tenant document is refused: the key and the reason.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct TenantError(pub String);

/// Tenant ids are path segments, store keys and metric labels: keep them plain.
pub fn check_id(id: &str) -> Result<(), TenantError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && id.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(TenantError(format!(
            "tenant id {id:?}: 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
        )))
    }
}

impl StoredTenant {
    /// Merges an update into what is stored (secrets not named keep their values).
    pub fn merged(previous: Option<&StoredTenant>, doc: TenantDoc) -> StoredTenant {
        let mut secrets = previous.map(|p| p.secrets.clone()).unwrap_or_default();
        for (k, v) in doc.secrets {
            match v {
                Some(v) => {
                    secrets.insert(k, v);
                }
                None => {
                    secrets.remove(&k);
                }
            }
        }
        StoredTenant {
            config: doc.config,
            secrets,
            weight: doc.weight.unwrap_or(1).max(1),
            plugins: doc.plugins,
        }
    }

    /// Parses and checks the config under `policy`; the result is ready to run.
    pub fn checked_config(&self, id: &str, policy: &TenantPolicy) -> Result<Config, TenantError> {
        let bad = |m: String| TenantError(format!("tenant {id}: {m}"));
        let text = serde_json::to_string(&self.config).map_err(|e| bad(e.to_string()))?;
        // The `berth sync` parser refuses inline Port secrets; tenants use `{secret: NAME}`.
        let mut c = Config::parse(&text, "config").map_err(|e| bad(e.to_string()))?;
        for (key, v) in [
            ("config.port.clientId", &c.port.client_id),
            ("config.port.clientSecret", &c.port.client_secret),
        ] {
            match v {
                ValueRef::Secret { secret } if !self.secrets.contains_key(secret) => {
                    return Err(bad(format!(
                        "{key}: no secret named {secret:?} in `secrets`"
                    )));
                }
                ValueRef::Secret { .. } => {}
                ValueRef::Inline(_) if key.ends_with("clientId") => {}
                _ => {
                    return Err(bad(format!(
                        "{key}: write it as {{secret: NAME}} and send the value in `secrets`; \
                         a tenant cannot read the worker's environment or files"
                    )));
                }
            }
        }
        for (key, set) in [
            ("plugins", c.plugins.is_some()),
            ("state", c.state.is_some()),
            ("report", c.report.is_some()),
            ("blueprints", c.blueprints.is_some()),
        ] {
            if set {
                return Err(bad(format!(
                    "config.{key}: a tenant cannot name paths on the worker; the operator sets it"
                )));
            }
        }
        match &c.mapping {
            Some(MappingSource::File(_)) => {
                return Err(bad(
                    "config.mapping: give the mapping inline or {fromPort: true}; a tenant cannot name files"
                        .into(),
                ));
            }
            None => {
                return Err(bad(
                    "config.mapping: missing; give the mapping inline or {fromPort: true}".into(),
                ));
            }
            _ => {}
        }
        if c.port.base_url.is_some() && !policy.allow_custom_endpoints {
            return Err(bad(
                "config.port.baseUrl: not allowed here; use port.region (eu or us)".into(),
            ));
        }
        let Some(aws) = &c.aws else {
            return Err(bad("config.aws: missing".into()));
        };
        if aws.endpoint_url.is_some() && !policy.allow_custom_endpoints {
            return Err(bad("config.aws.endpointUrl: not allowed here".into()));
        }
        use crate::aws::config::AuthMethod;
        match aws.auth.method {
            AuthMethod::Static => {}
            AuthMethod::Default if policy.allow_host_credentials => {
                if aws.external_id.as_deref().is_none_or(str::is_empty) {
                    return Err(bad(
                        "config.aws.externalId: required when assuming roles with the service's own identity"
                            .into(),
                    ));
                }
                if aws.org_role_arn.is_none() && aws.account_role_arns.is_empty() {
                    return Err(bad(
                        "config.aws: give orgRoleArn or accountRoleArns to assume; the service's own identity is not yours to read"
                            .into(),
                    ));
                }
            }
            _ => {
                return Err(bad(
                    "config.aws.auth.method: a tenant uses `static` keys (their secret key sealed with \
                     the tenant) or, where the operator allows it, `default` to assume its roles"
                        .into(),
                ));
            }
        }
        if let Some(mb) = c.limits.plugin_memory_mb
            && mb > policy.max_plugin_memory_mb
        {
            return Err(bad(format!(
                "config.limits.pluginMemoryMb: at most {} here",
                policy.max_plugin_memory_mb
            )));
        }
        if let Some(ms) = c.limits.plugin_timeout_ms
            && ms > policy.max_plugin_timeout_ms
        {
            return Err(bad(format!(
                "config.limits.pluginTimeoutMs: at most {} here",
                policy.max_plugin_timeout_ms
            )));
        }
        if let Some(s) = &c.schedule
            && s.interval_minutes < policy.min_interval_minutes
        {
            return Err(bad(format!(
                "config.schedule.intervalMinutes: at least {} here",
                policy.min_interval_minutes
            )));
        }
        c.secrets = SecretValues::new(self.secrets.clone());
        Ok(c)
    }

    /// The plugins this tenant may use (`None`: all).
    pub fn allowed_plugins(&self, policy: &TenantPolicy) -> Option<BTreeSet<String>> {
        self.plugins
            .as_ref()
            .or(policy.default_plugins.as_ref())
            .map(|p| p.iter().cloned().collect())
    }

    /// Schedule interval in milliseconds.
    pub fn interval_ms(config: &Config) -> i64 {
        let minutes = config.schedule.as_ref().map_or(60, |s| s.interval_minutes);
        (minutes as i64).saturating_mul(60_000)
    }

    /// The document as the API shows it: secret names only, AWS keys redacted.
    pub fn redacted(&self) -> Value {
        let mut config = self.config.clone();
        for path in [
            &["aws", "auth", "secretAccessKey"][..],
            &["aws", "auth", "sessionToken"][..],
        ] {
            if let Some(v) = pointer_mut(&mut config, path) {
                *v = json!("***");
            }
        }
        json!({
            "config": config,
            "secrets": self.secrets.keys().collect::<Vec<_>>(),
            "weight": self.weight,
            "plugins": self.plugins,
        })
    }

    /// Sealed text for the store, bound to the tenant id.
    pub fn seal(&self, id: &str, key: &SecretKey) -> String {
        let plain = serde_json::to_vec(self).expect("a tenant document serialises");
        key.seal(&format!("tenant:{id}"), &plain)
    }

    pub fn open(id: &str, sealed: &str, key: &SecretKey) -> Result<Self, TenantError> {
        let plain = key
            .open(&format!("tenant:{id}"), sealed)
            .map_err(|e| TenantError(format!("tenant {id}: {e}")))?;
        serde_json::from_slice(&plain)
            .map_err(|e| TenantError(format!("tenant {id}: stored document is unreadable: {e}")))
    }
}

fn pointer_mut<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, k| v.get_mut(*k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(config: Value) -> StoredTenant {
        StoredTenant::merged(
            None,
            TenantDoc {
                config,
                secrets: [("portSecret".to_string(), Some("s3cr3t-value".to_string()))].into(),
                weight: None,
                plugins: None,
            },
        )
    }

    fn base() -> Value {
        json!({
            "port": {"clientId": "id", "clientSecret": {"secret": "portSecret"},
                     "integration": {"identifier": "acme-aws"}},
            "aws": {"auth": {"method": "static", "accessKeyId": "AKIA", "secretAccessKey": "aws-secret"}},
            "mapping": {"resources": []}
        })
    }

    fn refused(config: Value, policy: &TenantPolicy, needle: &str) {
        let e = doc(config).checked_config("acme", policy).unwrap_err();
        assert!(e.0.contains(needle), "{e}");
    }

    #[test]
    fn a_plain_tenant_is_accepted_and_its_secret_resolves() {
        let c = doc(base())
            .checked_config("acme", &TenantPolicy::default())
            .unwrap();
        assert_eq!(c.secrets.get("portSecret"), Some("s3cr3t-value"));
    }

    #[test]
    fn untrusted_configs_cannot_reach_the_worker() {
        let p = TenantPolicy::default();
        let mut c = base();
        c["port"]["clientSecret"] = json!({"env": "BERTH_SECRET_KEY"});
        refused(c, &p, "config.port.clientSecret");
        let mut c = base();
        c["port"]["clientSecret"] = json!({"file": "/etc/shadow"});
        refused(c, &p, "config.port.clientSecret");
        let mut c = base();
        c["port"]["clientSecret"] = json!({"secret": "other"});
        refused(c, &p, "no secret named");
        let mut c = base();
        c["mapping"] = json!("/etc/passwd");
        refused(c, &p, "config.mapping");
        let mut c = base();
        c["plugins"] = json!("/tmp/evil");
        refused(c, &p, "config.plugins");
        let mut c = base();
        c["state"] = json!("postgres://x");
        refused(c, &p, "config.state");
        let mut c = base();
        c["aws"]["endpointUrl"] = json!("http://169.254.169.254");
        refused(c, &p, "config.aws.endpointUrl");
        let mut c = base();
        c["port"]["baseUrl"] = json!("http://10.0.0.1");
        refused(c, &p, "config.port.baseUrl");
        let mut c = base();
        c["aws"]["auth"] = json!({"method": "default"});
        c["aws"]["orgRoleArn"] = json!("arn:aws:iam::123456789012:role/R");
        refused(c.clone(), &p, "config.aws.auth.method");
        let host = TenantPolicy {
            allow_host_credentials: true,
            ..TenantPolicy::default()
        };
        refused(c.clone(), &host, "externalId");
        c["aws"]["externalId"] = json!("x-1");
        doc(c).checked_config("acme", &host).unwrap();
        let mut c = base();
        c["limits"] = json!({"pluginMemoryMb": 4096});
        refused(c, &p, "pluginMemoryMb");
    }

    #[test]
    fn secrets_merge_and_never_show() {
        let first = doc(base());
        let next = StoredTenant::merged(
            Some(&first),
            TenantDoc {
                config: base(),
                secrets: [("extra".to_string(), Some("x".to_string()))].into(),
                weight: Some(3),
                plugins: Some(vec!["generic".into()]),
            },
        );
        assert_eq!(next.secrets["portSecret"], "s3cr3t-value");
        assert_eq!(next.weight, 3);
        let shown = next.redacted().to_string();
        assert!(
            !shown.contains("s3cr3t-value") && !shown.contains("aws-secret"),
            "{shown}"
        );
        assert!(shown.contains("portSecret"));
        let removed = StoredTenant::merged(
            Some(&next),
            TenantDoc {
                config: base(),
                secrets: [("extra".to_string(), None)].into(),
                ..TenantDoc::default()
            },
        );
        assert!(!removed.secrets.contains_key("extra"));
    }

    #[test]
    fn sealed_documents_hide_secrets_and_stay_with_their_tenant() {
        let key = SecretKey::from_bytes(&[9; 32]).unwrap();
        let t = doc(base());
        let sealed = t.seal("acme", &key);
        assert!(!sealed.contains("s3cr3t") && !sealed.contains("aws-secret"));
        assert_eq!(
            StoredTenant::open("acme", &sealed, &key).unwrap().secrets,
            t.secrets
        );
        assert!(StoredTenant::open("other", &sealed, &key).is_err());
    }

    #[test]
    fn ids_are_plain() {
        check_id("acme-1").unwrap();
        for bad in ["", "-x", "A", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
