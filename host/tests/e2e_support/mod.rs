//! Shared by the end-to-end tests: the local AWS emulator (an Organization of 3 member
//! accounts × 2 regions) and a fake Port, a config file for them, and ways to run `berth`
//! and to read what Port holds.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use berth_fake_port::{Config, FakePortHandle};
use berth_test_kit::emulator::Emulator;
use serde_json::{Value, json};

pub const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

pub use berth_test_kit::repo_root as repo;

pub async fn berth(args: Vec<String>) -> Output {
    berth_env(args, Vec::new()).await
}

/// [`berth`] with more environment variables (e.g. `BERTH_FAILPOINTS`).
pub async fn berth_env(args: Vec<String>, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(&args)
            .env("BERTH_TEST_PORT_ID", "fake-client-id")
            .env("BERTH_CACHE_DIR", repo().join("target/test-aot-cache"))
            .env_remove("BERTH_FAILPOINTS")
            .envs(env)
            .output()
            .expect("run berth")
    })
    .await
    .unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub struct World {
    pub emu: Emulator,
    pub port: FakePortHandle,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub seed: Value,
}

/// A seeded emulator, a fake Port and a config file for both (default mapping, shipped
/// plugins and blueprints, state in a temporary directory).
pub async fn world() -> World {
    world_with("mapping: {mapping}\nplugins: {plugins}\n").await
}

/// [`world`] with other `mapping:`/`plugins:` lines (`{mapping}`, `{plugins}`, `{repo}` are
/// replaced).
pub async fn world_with(tail: &str) -> World {
    let emu = Emulator::start(&repo().join("tests/aws-emulator"))
        .await
        .expect("emulator");
    emu.regions(&json!({ "enabled": REGIONS })).await.unwrap();
    let seed = emu
        .seed(&[
            "--accounts",
            "3",
            "--regions",
            &REGIONS.join(","),
            "--per-kind",
            "2",
            "--workers",
            "4",
        ])
        .await
        .expect("seed");
    let (_a, port) = berth_fake_port::spawn(Config::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("port-secret"), "fake-client-secret").unwrap();
    std::fs::write(dir.path().join("aws-key"), "testing").unwrap();
    let config = dir.path().join("berth.yaml");
    let yaml = format!(
        r#"port:
  clientId: {{env: BERTH_TEST_PORT_ID}}
  clientSecret: {{file: port-secret}}
  baseUrl: {port}
  integration: {{identifier: berth-e2e}}
aws:
  auth: {{method: static, accessKeyId: {{file: aws-key}}, secretAccessKey: {{file: aws-key}}}}
  orgRoleArn: arn:aws:iam::123456789012:role/BerthOrgReader
  accountRoleName: BerthReadOnly
  externalId: berth-test-external-id
  endpointUrl: {aws}
blueprints: {blueprints}
state: state/berth.db
"#,
        port = port.base_url(),
        aws = emu.endpoint,
        blueprints = repo().join("mappings/blueprints").display(),
    );
    let yaml = yaml
        + &tail
            .replace(
                "{mapping}",
                &repo().join("mappings/default.yaml").display().to_string(),
            )
            .replace(
                "{plugins}",
                &repo().join("target/plugins").display().to_string(),
            )
            .replace("{repo}", &repo().display().to_string());
    std::fs::write(&config, yaml).unwrap();
    World {
        emu,
        port,
        dir,
        config,
        seed,
    }
}

impl World {
    pub async fn sync(&self) -> Output {
        berth(vec![
            "sync".into(),
            "--config".into(),
            self.config.display().to_string(),
        ])
        .await
    }

    /// What `berth discover | berth map` computes, by (blueprint, identifier): every candidate
    /// (the seed mapping's identifiers are not unique across accounts for some kinds, e.g. an
    /// RDS instance name; Port keeps one of them).
    pub async fn expected(&self) -> BTreeMap<(String, String), Vec<Value>> {
        expected_from(
            &self.config,
            &repo().join("mappings/default.yaml"),
            self.dir.path(),
        )
        .await
    }

    /// What the fake Port holds, in the same shape.
    pub fn catalog(&self) -> BTreeMap<(String, String), Value> {
        catalog_of(&self.port)
    }

    /// `berth sync` with more environment variables.
    pub async fn sync_env(&self, env: &[(&str, &str)]) -> Output {
        berth_env(
            vec![
                "sync".into(),
                "--config".into(),
                self.config.display().to_string(),
            ],
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .await
    }

    /// Forgets everything Berth remembered (as after a move from Ocean or a lost
    /// `state.db`): the state store is new at the next sync.
    pub fn forget_state(&self) {
        let _ = std::fs::remove_dir_all(self.dir.path().join("state"));
    }

    /// Points the config file at another mapping file.
    pub fn use_mapping(&self, mapping: &Path) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("mapping:") {
                    format!("mapping: {}", mapping.display())
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&self.config, text + "\n").unwrap();
    }

    pub fn writes(&self) -> Vec<String> {
        self.port
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/entities/bulk") || r.path.contains("/delete"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

/// An entity as `berth map` prints it, reduced to what Port keeps (nulls are not stored).
pub fn comparable(e: &Value) -> Value {
    let strip = |v: &Value| -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => json!({}),
        }
    };
    json!({
        "title": e.get("title").cloned().unwrap_or(Value::Null),
        "properties": strip(&e["properties"]),
        "relations": strip(&e["relations"]),
    })
}

pub fn comparable_port(e: &Value) -> Value {
    let strip = |v: &Value| -> Value {
        Value::Object(
            v.as_object()
                .into_iter()
                .flatten()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    };
    json!({"title": e["title"], "properties": strip(&e["properties"]), "relations": strip(&e["relations"])})
}

impl World {
    /// The id of the `i`th seeded member account.
    pub fn member(&self, i: usize) -> String {
        self.seed["accounts"][i]["id"]
            .as_str()
            .expect("a member account id")
            .to_string()
    }

    /// The seeded identifiers of one kind in one account and region.
    pub fn seeded(&self, account: &str, region: &str, kind: &str) -> Vec<String> {
        self.seed["identifiers"][account][region][kind]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The keys Port holds.
    pub fn keys(&self) -> std::collections::BTreeSet<(String, String)> {
        self.catalog().into_keys().collect()
    }

    /// Port's `resyncState.status` for the test integration.
    pub fn resync_status(&self) -> Value {
        self.port.snapshot().integrations["berth-e2e"]["resyncState"]["status"].clone()
    }

    /// Asserts that Port holds exactly what `berth discover | berth map` computes now.
    pub async fn assert_matches_aws(&self) {
        assert_port_holds(&self.catalog(), &self.expected().await);
    }

    /// A clean sync (faults cleared) converges to exactly what AWS has.
    pub async fn assert_converges(&self) {
        self.emu.faults(&json!({"rules": []})).await.unwrap();
        self.port.set_faults(berth_fake_port::Faults::default());
        let out = self.sync().await;
        assert!(out.status.success(), "clean sync: {}", text(&out.stderr));
        self.assert_matches_aws().await;
        assert_eq!(self.resync_status(), "completed");
    }
}

/// What `berth discover | berth map` computes for the config file `config` and `mapping`
/// (scratch files go in `dir`), by (blueprint, identifier), every candidate.
pub async fn expected_from(
    config: &Path,
    mapping: &Path,
    dir: &Path,
) -> BTreeMap<(String, String), Vec<Value>> {
    let out = berth(vec![
        "discover".into(),
        "--config".into(),
        config.display().to_string(),
        "--mapping".into(),
        mapping.display().to_string(),
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let raw = dir.join(format!(
        "raw-{}.jsonl",
        config.file_stem().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&raw, &out.stdout).unwrap();
    let out = berth(vec![
        "--plugins".into(),
        repo().join("target/plugins").display().to_string(),
        "map".into(),
        "--mapping".into(),
        mapping.display().to_string(),
        "--input".into(),
        raw.display().to_string(),
    ])
    .await;
    let mut m = BTreeMap::new();
    for line in text(&out.stdout).lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let key = (
            e["blueprint"].as_str().unwrap().to_string(),
            e["identifier"].as_str().unwrap().to_string(),
        );
        m.entry(key).or_insert_with(Vec::new).push(e);
    }
    m
}

/// What a fake Port holds, by (blueprint, identifier).
pub fn catalog_of(port: &FakePortHandle) -> BTreeMap<(String, String), Value> {
    let mut m = BTreeMap::new();
    for (bp, entities) in port.snapshot().entities {
        for (id, e) in entities {
            m.insert(
                (bp.clone(), id.clone()),
                json!({"title": e.title, "properties": e.properties, "relations": e.relations}),
            );
        }
    }
    m
}

/// Asserts that `catalog` holds exactly the `expected` entities (one of each's candidates).
pub fn assert_port_holds(
    catalog: &BTreeMap<(String, String), Value>,
    expected: &BTreeMap<(String, String), Vec<Value>>,
) {
    let want: std::collections::BTreeSet<_> = expected.keys().cloned().collect();
    let got: std::collections::BTreeSet<_> = catalog.keys().cloned().collect();
    assert_eq!(
        got.symmetric_difference(&want).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "Port and `berth map` disagree on which entities exist"
    );
    for (k, candidates) in expected {
        let got = comparable_port(&catalog[k]);
        let want: Vec<Value> = candidates.iter().map(comparable).collect();
        assert!(
            want.contains(&got),
            "entity {k:?} differs: {got:#} not in {want:#?}"
        );
    }
}
