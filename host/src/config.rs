//! Berth's config file (YAML): where Port is and who Berth is there, where its state lives, and
//! the mapping.
//!
//! Owns: parsing and checking the file (unknown keys and bad values are errors naming the key
//! and the line), resolving secret references (environment variable or file; never inline, so
//! a secret never sits in a config that is printed, logged or committed: Port's client secret
//! and AWS static keys alike) and paths relative to the file. Must not touch: what the settings do; callers build clients and stores from them.
//!
//! ```yaml
//! port:
//!   clientId: {env: PORT_CLIENT_ID}
//!   clientSecret: {file: /run/secrets/port-client-secret}
//!   region: eu                      # eu | us; or baseUrl: https://...
//!   integration: {identifier: my-aws, type: aws}
//! aws:                              # see `discovery::config`
//!   orgRoleArn: arn:aws:iam::111111111111:role/BerthOrgRead
//!   externalId: my-external-id
//!   regionPolicy: {allow: [eu-west-1, us-east-1]}
//! mapping: mappings/default.yaml    # or {fromPort: true}, or inline resources
//! plugins: /opt/berth/plugins
//! schedule: {intervalMinutes: 60, pollSeconds: 60}
//! limits: {plugin: {memoryMb: 256, timeoutMs: 5000}, batchItems: 50}   # see `crate::limits`
//! state: .berth/state.db            # SQLite file, or postgres://...
//! blueprints: mappings/blueprints   # ensured in Port before entities are written
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::catalog::port::{
    ClientConfig, Credentials, EU_BASE_URL, PortClient, PortError, US_BASE_URL, UserAgent,
};

/// A config file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The OS reason is the source, not part of this text: `{:#}` (anyhow) prints it once.
    #[error("{path}: cannot read")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// Where a value comes from. Secrets accept only `env` and `file` in a config file; a tenant of
/// `berth serve` names one of its own secrets with `secret` (and may use nothing else).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ValueRef {
    Env { env: String },
    File { file: PathBuf },
    Secret { secret: String },
    Inline(String),
}

impl fmt::Debug for ValueRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env { env } => write!(f, "{{env: {env}}}"),
            Self::File { file } => write!(f, "{{file: {}}}", file.display()),
            Self::Secret { secret } => write!(f, "{{secret: {secret}}}"),
            Self::Inline(_) => f.write_str("<inline>"),
        }
    }
}

/// The secret values a tenant's config may name with `{secret: NAME}` (empty for a config
/// file). Debug output shows names only.
#[derive(Clone, Default)]
pub struct SecretValues(std::sync::Arc<std::collections::BTreeMap<String, String>>);

impl SecretValues {
    pub fn new(values: std::collections::BTreeMap<String, String>) -> Self {
        Self(std::sync::Arc::new(values))
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl ValueRef {
    /// Reads the value. `what` names the key for errors; the value never appears in one.
    pub fn resolve(
        &self,
        what: &str,
        base: &Path,
        secrets: &SecretValues,
    ) -> Result<String, String> {
        match self {
            Self::Inline(v) => Ok(v.clone()),
            Self::Secret { secret } => secrets
                .get(secret)
                .map(str::to_string)
                .ok_or_else(|| format!("{what}: no secret named {secret:?}")),
            Self::Env { env } => std::env::var(env)
                .map(|v| v.trim().to_string())
                .map_err(|_| format!("{what}: environment variable {env} is not set")),
            Self::File { file } => {
                let p = base.join(file);
                std::fs::read_to_string(&p)
                    .map(|v| v.trim().to_string())
                    .map_err(|e| format!("{what}: cannot read {}: {e}", p.display()))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PortRegion {
    Eu,
    Us,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationSection {
    /// The integration's identifier in Port (`installationId`).
    pub identifier: String,
    /// The integration type in the User-Agent and `$datasource` (`aws` is Ocean's AWS type,
    /// so Ocean-managed entities are adopted).
    #[serde(rename = "type", default = "default_type")]
    pub integration_type: String,
}

fn default_type() -> String {
    "aws".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortSection {
    pub client_id: ValueRef,
    pub client_secret: ValueRef,
    #[serde(default)]
    pub region: Option<PortRegion>,
    /// Overrides `region` (e.g. a local fake Port).
    #[serde(default)]
    pub base_url: Option<String>,
    pub integration: IntegrationSection,
    /// Requests to Port in flight at once: the first spelling of `limits.port.concurrency`,
    /// which it sets when given (see [`Config::parse`]).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Report `resyncState` and sync metrics (default true).
    #[serde(default)]
    pub report_status: Option<bool>,
}

/// Where the mapping (`resources:` and the top-level flags) comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum MappingSource {
    /// A Port mapping YAML file.
    File(PathBuf),
    /// `{fromPort: true}`: the integration's config in Port, as Ocean reads it.
    FromPort {
        #[serde(rename = "fromPort")]
        from_port: bool,
    },
    /// The mapping itself, inline.
    Inline(serde_norway::Value),
}

/// `schedule:` for `berth run`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Schedule {
    /// Minutes between resyncs (Ocean's default is 60 when scheduled).
    #[serde(default = "default_interval")]
    pub interval_minutes: u64,
    /// Seconds between polls of Port's resync-request watermark (0: never poll).
    #[serde(default = "default_poll")]
    pub poll_seconds: u64,
    /// Resync when `berth run` starts.
    #[serde(default = "yes")]
    pub resync_on_start: bool,
}

fn default_interval() -> u64 {
    60
}
fn default_poll() -> u64 {
    60
}
fn yes() -> bool {
    true
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            interval_minutes: default_interval(),
            poll_seconds: default_poll(),
            resync_on_start: true,
        }
    }
}

/// The parsed config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub port: PortSection,
    /// The AWS side (auth, accounts, regions); see [`crate::discovery::config`].
    #[serde(default)]
    pub aws: Option<crate::discovery::AwsConfig>,
    /// The mapping: a file, `{fromPort: true}`, or inline.
    #[serde(default)]
    pub mapping: Option<MappingSource>,
    /// The plugin directory (default `target/plugins`, or `--plugins`).
    #[serde(default)]
    pub plugins: Option<PathBuf>,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// `limits:`: every limit of the sync, as [`crate::limits::TenantLimits`] declares them;
    /// what the file leaves out keeps its default.
    #[serde(default)]
    pub limits: crate::limits::TenantLimits,
    /// Where `berth sync` writes its HTML report (default `berth-report.html` beside the
    /// state store).
    #[serde(default)]
    pub report: Option<PathBuf>,
    /// The state store: a SQLite file path or a `postgres://` URL.
    #[serde(default)]
    pub state: Option<String>,
    /// A directory of Port blueprint JSON files (e.g. `mappings/blueprints`) to ensure before
    /// writing entities: missing ones are created, existing ones only get what they lack.
    #[serde(default)]
    pub blueprints: Option<PathBuf>,
    /// The directory relative paths are resolved against (the file's).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// What `{secret: NAME}` references resolve to (a tenant's secrets; none for a file).
    #[serde(skip)]
    pub secrets: SecretValues,
    /// The `berth serve` worker running this config (sent to Port as `X-Berth-Worker`).
    #[serde(skip)]
    pub worker: Option<String>,
}

impl Config {
    pub fn from_path(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut c = Self::parse(&text, &path.display().to_string())?;
        c.base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        // AWS keys are read now, not per sync: the AWS side keeps its
        // credentials for as long as it runs.
        if let Some(aws) = &mut c.aws {
            aws.resolve_file_keys(&c.base_dir)
                .map_err(|e| ConfigError::Invalid {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
        }
        Ok(c)
    }

    pub fn parse(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: source_name.to_string(),
            message,
        };
        let mut c: Config = serde_norway::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if matches!(c.port.client_secret, ValueRef::Inline(_)) {
            return Err(invalid(
                "port.clientSecret: write it as {env: VARIABLE} or {file: PATH}; an inline \
                 secret ends up in backups, logs and version control"
                    .into(),
            ));
        }
        if c.port.integration.identifier.trim().is_empty() {
            return Err(invalid(
                "port.integration.identifier: must not be empty".into(),
            ));
        }
        if let Some(u) = &c.port.base_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(invalid(format!(
                "port.baseUrl: must start with http:// or https://, got {u:?}"
            )));
        }
        if c.port.concurrency == Some(0) {
            return Err(invalid("port.concurrency: must be at least 1".into()));
        }
        // One value from here on: the client, a tenant's ceiling and `effective` read the tree.
        if let Some(n) = c.port.concurrency {
            c.limits.port.concurrency = n;
        }
        // The static keys' references are read by the loader (`from_path`, or `berth serve`
        // with the tenant's secrets), so only their presence is checked here.
        if let Some(aws) = &c.aws {
            aws.check_settings()
                .map_err(|e| invalid(format!("aws: {e}")))?;
        }
        if let Some(MappingSource::FromPort { from_port: false }) = &c.mapping {
            return Err(invalid(
                "mapping: {fromPort: false} means nothing; give a file or an inline mapping".into(),
            ));
        }
        if let Some(s) = &c.schedule
            && s.interval_minutes == 0
        {
            return Err(invalid(
                "schedule.intervalMinutes: must be at least 1".into(),
            ));
        }
        Ok(c)
    }

    /// Port's base URL: `baseUrl`, else the region's (EU by default).
    pub fn port_base_url(&self) -> &str {
        match (&self.port.base_url, self.port.region) {
            (Some(u), _) => u,
            (None, Some(PortRegion::Us)) => US_BASE_URL,
            _ => EU_BASE_URL,
        }
    }

    /// A Port client with the resolved credentials.
    pub fn port_client(&self) -> Result<PortClient, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: "config".into(),
            message,
        };
        let id = self
            .port
            .client_id
            .resolve("port.clientId", &self.base_dir, &self.secrets)
            .map_err(invalid)?;
        let secret = self
            .port
            .client_secret
            .resolve("port.clientSecret", &self.base_dir, &self.secrets)
            .map_err(invalid)?;
        let ua = UserAgent::exporter(
            &self.port.integration.integration_type,
            env!("CARGO_PKG_VERSION"),
            &self.port.integration.identifier,
        );
        let mut cc = ClientConfig::new(self.port_base_url(), Credentials::new(id, secret), ua);
        cc.apply_limits(&self.limits.port);
        cc.worker = self.worker.clone();
        PortClient::new(cc).map_err(|e: PortError| invalid(e.to_string()))
    }

    /// The state store's key for this integration: the same identifier in two Port
    /// organisations (base URLs) are two integrations.
    pub fn integration_key(&self) -> String {
        format!(
            "{}@{}",
            self.port.integration.identifier,
            self.port_base_url()
        )
    }

    /// The state store location, resolved: a `postgres://` URL as is, a path against the
    /// file's directory (default `.berth/state.db` there).
    pub fn state_location(&self) -> StateLocation {
        match self.state.as_deref() {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                StateLocation::Url(u.to_string())
            }
            Some(p) => StateLocation::Sqlite(self.base_dir.join(p)),
            None => StateLocation::Sqlite(self.base_dir.join(".berth/state.db")),
        }
    }

    /// Opens the state store where `state:` says.
    pub async fn open_store(&self) -> Result<crate::store::Store, crate::store::StoreError> {
        match self.state_location() {
            StateLocation::Sqlite(p) => crate::store::Store::open_sqlite(&p).await,
            StateLocation::Url(u) => crate::store::Store::open(&u).await,
        }
    }

    /// The mapping file, when the mapping is one.
    pub fn mapping_path(&self) -> Option<PathBuf> {
        match &self.mapping {
            Some(MappingSource::File(m)) => Some(self.base_dir.join(m)),
            _ => None,
        }
    }

    /// Reads the mapping from where the config says (Port's integration config for
    /// `{fromPort: true}`).
    pub async fn load_mapping(
        &self,
        client: &PortClient,
    ) -> Result<crate::mapping::MappingFile, ConfigError> {
        let invalid = |path: String, message: String| ConfigError::Invalid { path, message };
        match &self.mapping {
            None => Err(invalid(
                "config".into(),
                "mapping: missing; give a file (mapping: mappings/default.yaml), inline \
                 resources, or {fromPort: true}"
                    .into(),
            )),
            Some(MappingSource::File(_)) => {
                let p = self.mapping_path().expect("a file mapping");
                // The error names the file already.
                crate::mapping::MappingFile::from_path(&p)
                    .map_err(|e| invalid(e.source_name, e.message))
                    .inspect(log_warnings)
            }
            Some(MappingSource::Inline(v)) => {
                let text = serde_norway::to_string(v)
                    .map_err(|e| invalid("mapping".into(), e.to_string()))?;
                crate::mapping::MappingFile::parse(&text, "mapping")
                    .map_err(|e| invalid(e.source_name, e.message))
                    .inspect(log_warnings)
            }
            Some(MappingSource::FromPort { .. }) => {
                let id = &self.port.integration.identifier;
                let integration = client
                    .get_integration(id)
                    .await
                    .map_err(|e| invalid("mapping".into(), format!("fromPort: {e}")))?
                    .ok_or_else(|| {
                        invalid(
                            "mapping".into(),
                            format!("fromPort: Port has no integration {id:?}"),
                        )
                    })?;
                let config = integration.get("config").cloned().unwrap_or_default();
                let text = serde_json::to_string(&config)
                    .map_err(|e| invalid("mapping".into(), e.to_string()))?;
                crate::mapping::MappingFile::parse(&text, &format!("Port integration {id} config"))
                    .map_err(|e| invalid(e.source_name, e.message))
                    .inspect(log_warnings)
            }
        }
    }

    /// The plugin directory from the config, resolved against the file's directory.
    pub fn plugins_dir(&self) -> Option<PathBuf> {
        self.plugins.as_ref().map(|p| self.base_dir.join(p))
    }

    /// The HTML report's path.
    pub fn report_path(&self) -> PathBuf {
        match &self.report {
            Some(p) => self.base_dir.join(p),
            None => match self.state_location() {
                StateLocation::Sqlite(p) => p.with_file_name("berth-report.html"),
                StateLocation::Url(_) => self.base_dir.join("berth-report.html"),
            },
        }
    }

    /// The blueprint documents of `blueprints:` (every `*.json` of the directory, by name), or
    /// none when the key is absent.
    pub fn blueprint_documents(&self) -> Result<Vec<serde_json::Value>, ConfigError> {
        let Some(dir) = self.blueprints.as_ref().map(|d| self.base_dir.join(d)) else {
            return Ok(Vec::new());
        };
        let read_err = |source| ConfigError::Read {
            path: dir.display().to_string(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(f).map_err(|source| ConfigError::Read {
                    path: f.display().to_string(),
                    source,
                })?;
                serde_json::from_str(&text).map_err(|e| ConfigError::Invalid {
                    path: f.display().to_string(),
                    message: format!("not a blueprint JSON document: {e}"),
                })
            })
            .collect()
    }
}

/// The mapping's warnings go to the log here; `berth map` prints its own on stderr.
fn log_warnings(m: &crate::mapping::MappingFile) {
    for w in &m.warnings {
        tracing::warn!("{w}");
    }
}

/// Where the state store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    Sqlite(PathBuf),
    Url(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "port:\n  clientId: {env: X_ID}\n  clientSecret: {file: secret.txt}\n  \
                      integration: {identifier: my-aws}\nmapping: m.yaml\n";

    #[test]
    fn parses_and_resolves_relative_paths() {
        let mut c = Config::parse(OK, "c.yaml").unwrap();
        c.base_dir = PathBuf::from("/etc/berth");
        assert_eq!(c.port_base_url(), EU_BASE_URL);
        assert_eq!(c.port.integration.integration_type, "aws");
        assert_eq!(
            c.mapping_path().unwrap(),
            PathBuf::from("/etc/berth/m.yaml")
        );
        assert_eq!(
            c.state_location(),
            StateLocation::Sqlite(PathBuf::from("/etc/berth/.berth/state.db"))
        );
        assert_eq!(c.integration_key(), format!("my-aws@{EU_BASE_URL}"));
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = format!("{OK}statee: x\n");
        let e = Config::parse(&text, "c.yaml").unwrap_err().to_string();
        assert!(e.contains("statee") && e.contains("line 6"), "{e}");
        let text = OK.replace("integration:", "integratoin:");
        let e = Config::parse(&text, "c.yaml").unwrap_err().to_string();
        assert!(e.contains("integratoin"), "{e}");
    }

    #[test]
    fn limits_are_the_tree_of_crate_limits() {
        let text = format!(
            "{OK}limits:\n  pluginTimeoutMs: 5000\n  batchItems: 200\n  \
             aws: {{maxInFlight: 8}}\n  port: {{retry: {{maxAttempts: 2}}}}\n"
        );
        let c = Config::parse(&text, "c.yaml").unwrap();
        assert_eq!(
            c.limits.plugin.call_timeout,
            std::time::Duration::from_secs(5)
        );
        assert_eq!(c.limits.batch_items, 200);
        assert_eq!(c.limits.aws.max_in_flight, 8);
        assert_eq!(c.limits.port.retry.max_attempts, 2);
        // `port.concurrency`, the first spelling, sets the tree's value.
        let text = OK.replace("integration:", "concurrency: 3\n  integration:");
        let c = Config::parse(&text, "c.yaml").unwrap();
        assert_eq!(c.limits.port.concurrency, 3);
        // An unknown key is named with its path and line.
        let text = format!("{OK}limits:\n  plugin:\n    memoryMbb: 1\n");
        let e = Config::parse(&text, "c.yaml").unwrap_err().to_string();
        assert!(
            e.contains("limits.plugin") && e.contains("memoryMbb") && e.contains("line 8"),
            "{e}"
        );
        let text = format!("{OK}limits: {{port: {{bulkEntities: 50}}}}\n");
        let e = Config::parse(&text, "c.yaml").unwrap_err().to_string();
        assert!(e.contains("limits.port.bulkEntities: 1 to 20"), "{e}");
    }

    #[test]
    fn inline_secret_is_refused_without_echoing_it() {
        let text = OK.replace("{file: secret.txt}", "hunter2");
        let e = Config::parse(&text, "c.yaml").unwrap_err().to_string();
        assert!(
            e.contains("port.clientSecret") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn aws_keys_are_read_from_references_and_never_inline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("aws-secret"), "aws-s3cr3t\n").unwrap();
        let write = |aws: &str| {
            let p = dir.path().join("berth.yaml");
            std::fs::write(&p, format!("{OK}aws:\n  {aws}\n")).unwrap();
            p
        };
        let p = write(
            "auth: {method: static, accessKeyId: {env: BERTH_TEST_AWS_KEY_ID_SURELY_UNSET}, \
             secretAccessKey: {file: aws-secret}}",
        );
        let e = Config::from_path(&p).unwrap_err().to_string();
        assert!(
            e.contains("aws.auth.accessKeyId") && e.contains("BERTH_TEST_AWS_KEY_ID_SURELY_UNSET"),
            "{e}"
        );
        let p = write(
            "auth: {method: static, accessKeyId: {file: aws-secret}, secretAccessKey: {file: aws-secret}}",
        );
        let c = Config::from_path(&p).unwrap();
        let aws = c.aws.as_ref().unwrap();
        aws.check().unwrap();
        assert_eq!(
            aws.auth.secret_access_key.as_ref().unwrap().expose(),
            "aws-s3cr3t"
        );
        assert!(!format!("{c:?}").contains("aws-s3cr3t"));
        let p = write(
            "auth: {method: static, accessKeyId: {file: aws-secret}, secretAccessKey: hunter2}",
        );
        let e = Config::from_path(&p).unwrap_err().to_string();
        assert!(
            e.contains("aws.auth.secretAccessKey")
                && e.contains("{file: PATH}")
                && !e.contains("hunter2"),
            "{e}"
        );
        let p = write("regions: ['x@127.0.0.1:9/']");
        let e = Config::from_path(&p).unwrap_err().to_string();
        assert!(e.contains("aws.regions[0]") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn missing_env_secret_names_the_variable_not_a_value() {
        let r = ValueRef::Env {
            env: "BERTH_TEST_SURELY_UNSET".into(),
        };
        let e = r
            .resolve(
                "port.clientSecret",
                Path::new("."),
                &SecretValues::default(),
            )
            .unwrap_err();
        assert!(e.contains("BERTH_TEST_SURELY_UNSET"), "{e}");
        assert_eq!(
            format!("{:?}", ValueRef::Inline("s3cret".into())),
            "<inline>"
        );
    }
}
