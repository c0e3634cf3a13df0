//! Shared by the `berth serve` tests: tenants on the local AWS emulator (one member account
//! each), each with its own fake Port, a serve config, and a running `berth serve`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_fake_port::FakePortHandle;
use serde_json::{Value, json};

use crate::e2e_support::{World, assert_port_holds, catalog_of, expected_from, repo};

pub const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";
pub const SECRET_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// The default mapping as JSON (tenants send it inline), without the Organization's accounts:
/// a tenant here reads one member account, which may not list its Organization.
pub fn tenant_mapping() -> Value {
    let text = std::fs::read_to_string(repo().join("mappings/default.yaml")).unwrap();
    let mut m: Value = serde_norway::from_str(&text).unwrap();
    m["resources"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["kind"] != "AWS::Organizations::Account");
    m
}

/// [`tenant_mapping`] as a file in `dir`, for `berth discover | berth map`.
pub fn tenant_mapping_file(dir: &Path) -> PathBuf {
    let p = dir.join("tenant-mapping.json");
    std::fs::write(&p, tenant_mapping().to_string()).unwrap();
    p
}

/// A tenant reading one member account of `w`'s Organization into its own Port.
pub struct TenantFixture {
    pub id: String,
    pub account: String,
    pub port: FakePortHandle,
    /// An equivalent `berth sync` config file, for what `berth discover | map` expects.
    pub file_config: PathBuf,
}

impl TenantFixture {
    pub async fn new(w: &World, id: &str, account: &str, dir: &Path) -> Self {
        let (_a, port) = berth_fake_port::spawn(berth_fake_port::Config::default())
            .await
            .unwrap();
        let file_config = dir.join(format!("{id}.yaml"));
        std::fs::write(
            &file_config,
            format!(
                "port:\n  clientId: {{env: BERTH_TEST_PORT_ID}}\n  clientSecret: {{file: port-secret}}\n  \
                 baseUrl: {}\n  integration: {{identifier: berth-{id}}}\n\
                 aws:\n  auth: {{method: static, accessKeyId: {{file: aws-key}}, \
                 secretAccessKey: {{file: aws-key}}}}\n  \
                 accountRoleArns: [arn:aws:iam::{account}:role/BerthReadOnly]\n  \
                 externalId: berth-test-external-id\n  endpointUrl: {}\n",
                port.base_url(),
                w.emu.endpoint,
            ),
        )
        .unwrap();
        std::fs::write(dir.join("port-secret"), "fake-client-secret").unwrap();
        std::fs::write(dir.join("aws-key"), "testing").unwrap();
        Self {
            id: id.into(),
            account: account.into(),
            port,
            file_config,
        }
    }

    /// Asserts that the tenant's Port holds exactly what `berth discover | berth map` computes
    /// for its account. Port also creates the tenant's own account entity, as the target of
    /// the resources' relations (the mapping's createMissingRelatedEntities); no other
    /// account appears.
    pub async fn assert_port_exact(&self, dir: &Path) {
        let expected = expected_from(&self.file_config, &tenant_mapping_file(dir), dir).await;
        assert!(!expected.is_empty());
        let mut catalog = catalog_of(&self.port);
        let own = ("awsAccount".to_string(), self.account.clone());
        assert!(catalog.remove(&own).is_some(), "{}: no {own:?}", self.id);
        assert_port_holds(&catalog, &expected);
    }

    /// The tenant document `PUT /v1/tenants/{id}` takes.
    pub fn document(&self, w: &World) -> Value {
        json!({
            "config": {
                "port": {
                    "clientId": "fake-client-id",
                    "clientSecret": {"secret": "portSecret"},
                    "baseUrl": self.port.base_url(),
                    "integration": {"identifier": format!("berth-{}", self.id)},
                },
                "aws": {
                    "auth": {"method": "static", "accessKeyId": {"secret": "awsKeyId"},
                             "secretAccessKey": {"secret": "awsSecret"}},
                    "accountRoleArns": [format!("arn:aws:iam::{}:role/BerthReadOnly", self.account)],
                    "externalId": "berth-test-external-id",
                    "endpointUrl": w.emu.endpoint,
                },
                "mapping": tenant_mapping(),
                "schedule": {"intervalMinutes": 60},
            },
            "secrets": {"portSecret": "fake-client-secret", "awsKeyId": "testing",
                        "awsSecret": "testing"},
        })
    }
}

/// The `berth` under test: this build's, or `BERTH_TEST_BIN` (say, an older build, to show
/// that a new test fails there).
pub fn berth_binary() -> PathBuf {
    std::env::var_os("BERTH_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth")))
}

/// A running `berth serve`.
pub struct Server {
    pub child: std::process::Child,
    pub base: String,
    pub log: PathBuf,
    pub http: reqwest::Client,
}

/// A serve config in `dir` with `state` and extra YAML lines; tokens: the admin one and
/// `scoped` (token, tenant) pairs.
pub fn serve_config(
    dir: &Path,
    name: &str,
    state: &str,
    scoped: &[(&str, &str)],
    extra: &str,
) -> PathBuf {
    let mut tokens = "tokens:\n  - token: {env: BERTH_TEST_ADMIN_TOKEN}\n".to_string();
    for (i, (_, tenant)) in scoped.iter().enumerate() {
        tokens += &format!("  - token: {{env: BERTH_TEST_SCOPED_{i}}}\n    tenant: {tenant}\n");
    }
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "listen: {listen}\nstate: {state}\nplugins: {}\nblueprints: {}\n{tokens}\
             tenantPolicy: {{allowCustomEndpoints: true, allowStaticKeys: true}}\n{extra}",
            repo().join("target/plugins").display(),
            repo().join("mappings/blueprints").display(),
        ),
    )
    .unwrap();
    path
}

impl Drop for Server {
    /// A failed test must not leave a server running (it would also hold the test's output
    /// pipe open).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub async fn start(config: &Path, scoped: &[(&str, &str)], log: PathBuf) -> Self {
        let text = std::fs::read_to_string(config).unwrap();
        let listen = text
            .lines()
            .find_map(|l| l.strip_prefix("listen: "))
            .unwrap()
            .to_string();
        let mut cmd = std::process::Command::new(berth_binary());
        cmd.args(["serve", "--config"])
            .arg(config)
            .env("BERTH_SECRET_KEY", SECRET_KEY)
            .env("BERTH_TEST_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("BERTH_CACHE_DIR", repo().join("target/test-aot-cache"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (i, (token, _)) in scoped.iter().enumerate() {
            cmd.env(format!("BERTH_TEST_SCOPED_{i}"), token);
        }
        let child = cmd.spawn().unwrap();
        let s = Self {
            child,
            base: format!("http://{listen}"),
            log,
            http: reqwest::Client::new(),
        };
        for _ in 0..600 {
            if let Ok(r) = s.http.get(format!("{}/healthz", s.base)).send().await
                && r.status().is_success()
            {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("berth serve did not come up: {}", s.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// (status, JSON body) of a call with `token`.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn put_tenant(&self, id: &str, doc: &Value) -> (u16, Value) {
        self.call(
            reqwest::Method::PUT,
            &format!("/v1/tenants/{id}"),
            Some(ADMIN_TOKEN),
            Some(doc),
        )
        .await
    }

    /// The tenant's schedule and lease (`running`, `worker`, ...).
    pub async fn status(&self, id: &str) -> Value {
        let (st, v) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/tenants/{id}/status"),
                Some(ADMIN_TOKEN),
                None,
            )
            .await;
        assert_eq!(st, 200, "{v}");
        v["status"].clone()
    }

    /// The tenant's sync history (newest first).
    pub async fn syncs(&self, id: &str) -> Vec<Value> {
        let (st, v) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/tenants/{id}/syncs"),
                Some(ADMIN_TOKEN),
                None,
            )
            .await;
        assert_eq!(st, 200, "{v}");
        v["syncs"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the tenant has `n` finished syncs; returns them (newest first).
    pub async fn wait_syncs(&self, id: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let start = std::time::Instant::now();
        loop {
            let syncs = self.syncs(id).await;
            let done: Vec<Value> = syncs
                .into_iter()
                .filter(|s| s["status"] != "running")
                .collect();
            if done.len() >= n {
                return done;
            }
            if start.elapsed() > timeout {
                panic!(
                    "tenant {id}: {} of {n} syncs after {timeout:?}: {done:#?}\n{}",
                    done.len(),
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        self.child.wait().unwrap().code()
    }
}

/// A fresh database on the throwaway Postgres cluster (`BERTH_TEST_POSTGRES_URL`, started by
/// `scripts/test` through `tests/postgres/start`); its URL.
pub async fn fresh_postgres_database(prefix: &str) -> String {
    use sqlx::Connection;
    let admin_url = std::env::var("BERTH_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "BERTH_TEST_POSTGRES_URL is not set: start a throwaway cluster with \
             `export BERTH_TEST_POSTGRES_URL=$(tests/postgres/start)`, or run ./scripts/test"
        )
    });
    let name = format!("{prefix}_{}_{}", std::process::id(), berth::store::now_ms());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&admin_url).await.unwrap();
    // The name is made of a fixed prefix and digits.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let (main, query) = match admin_url.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (admin_url.as_str(), None),
    };
    let prefix = main.rsplit_once('/').unwrap().0;
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}
