//! `berth sync` end to end: the local AWS emulator (an Organization of 3 member accounts × 2
//! regions, every seed kind) → the shipped plugins → the fake Port. The catalog must equal
//! what `berth discover | berth map` computes; a second sync must be a no-op; resources
//! deleted in AWS must disappear from Port, and only they.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use berth::aws::emulator::Emulator;
use berth_fake_port::{Config, FakePortHandle};
use serde_json::{Value, json};

const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn berth(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(&args)
            .env("BERTH_TEST_PORT_ID", "fake-client-id")
            .env("BERTH_CACHE_DIR", repo().join("target/test-aot-cache"))
            .output()
            .expect("run berth")
    })
    .await
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct World {
    emu: Emulator,
    port: FakePortHandle,
    dir: tempfile::TempDir,
    config: PathBuf,
    seed: Value,
}

async fn world() -> World {
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
    let config = dir.path().join("berth.yaml");
    let yaml = format!(
        r#"port:
  clientId: {{env: BERTH_TEST_PORT_ID}}
  clientSecret: {{file: port-secret}}
  baseUrl: {port}
  integration: {{identifier: berth-e2e}}
aws:
  auth: {{method: static, accessKeyId: testing, secretAccessKey: testing}}
  orgRoleArn: arn:aws:iam::123456789012:role/BerthOrgReader
  accountRoleName: BerthReadOnly
  externalId: berth-test-external-id
  endpointUrl: {aws}
mapping: {mapping}
blueprints: {blueprints}
plugins: {plugins}
state: state/berth.db
"#,
        port = port.base_url(),
        aws = emu.endpoint,
        mapping = repo().join("mappings/default.yaml").display(),
        blueprints = repo().join("mappings/blueprints").display(),
        plugins = repo().join("target/plugins").display(),
    );
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
    async fn sync(&self) -> Output {
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
    async fn expected(&self) -> BTreeMap<(String, String), Vec<Value>> {
        let out = berth(vec![
            "discover".into(),
            "--config".into(),
            self.config.display().to_string(),
            "--mapping".into(),
            repo().join("mappings/default.yaml").display().to_string(),
        ])
        .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let raw = self.dir.path().join("raw.jsonl");
        std::fs::write(&raw, &out.stdout).unwrap();
        let out = berth(vec![
            "--plugins".into(),
            repo().join("target/plugins").display().to_string(),
            "map".into(),
            "--mapping".into(),
            repo().join("mappings/default.yaml").display().to_string(),
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

    /// What the fake Port holds, in the same shape.
    fn catalog(&self) -> BTreeMap<(String, String), Value> {
        let mut m = BTreeMap::new();
        for (bp, entities) in self.port.snapshot().entities {
            for (id, e) in entities {
                m.insert(
                    (bp.clone(), id.clone()),
                    json!({"title": e.title, "properties": e.properties, "relations": e.relations}),
                );
            }
        }
        m
    }

    fn writes(&self) -> Vec<String> {
        self.port
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/entities/bulk") || r.path.contains("/delete"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

/// An entity as `berth map` prints it, reduced to what Port keeps (nulls are not stored).
fn comparable(e: &Value) -> Value {
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

fn comparable_port(e: &Value) -> Value {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_fills_port_with_what_map_computes_then_converges() {
    let w = world().await;

    let out = w.sync().await;
    let err = text(&out.stderr);
    assert!(out.status.success(), "first sync: {err}");
    assert!(err.contains("report: "), "{err}");

    let expected = w.expected().await;
    let catalog = w.catalog();
    assert!(
        expected.len() >= 40,
        "only {} entities expected",
        expected.len()
    );
    let want: BTreeSet<_> = expected.keys().cloned().collect();
    let got: BTreeSet<_> = catalog.keys().cloned().collect();
    assert_eq!(
        got.symmetric_difference(&want).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "Port and `berth map` disagree on which entities exist"
    );
    for (k, candidates) in &expected {
        let got = comparable_port(&catalog[k]);
        let want: Vec<Value> = candidates.iter().map(comparable).collect();
        assert!(
            want.contains(&got),
            "entity {k:?} differs: {got:#} not in {want:#?}"
        );
    }
    // Every seed kind made it, in every account and region where it was seeded.
    let kinds: BTreeSet<String> = expected
        .values()
        .flatten()
        .filter_map(|e| e["properties"]["kind"].as_str().map(str::to_string))
        .collect();
    for k in [
        "AWS::S3::Bucket",
        "AWS::EC2::Instance",
        "AWS::ECS::Cluster",
        "AWS::Lambda::Function",
        "AWS::RDS::DBInstance",
    ] {
        assert!(kinds.contains(k), "no {k} entity: {kinds:?}");
    }
    let accounts = expected.keys().filter(|(bp, _)| bp == "awsAccount").count();
    assert_eq!(accounts, 4, "management + 3 members");

    // Port's sync status shows a completed resync with per-kind metrics.
    let snap = w.port.snapshot();
    assert_eq!(
        snap.integrations["berth-e2e"]["resyncState"]["status"],
        "completed"
    );
    assert!(snap.sync_metrics["berth-e2e"].len() >= 6);

    // A second sync changes nothing: no upsert, no delete.
    w.port.clear_requests();
    let out = w.sync().await;
    assert!(out.status.success(), "second sync: {}", text(&out.stderr));
    assert_eq!(w.writes(), Vec::<String>::new(), "the second sync wrote");
    assert_eq!(w.catalog(), catalog);

    // Two EC2 instances of one member account and region are terminated. (Instance ids are
    // unique; the seed reuses function and database names across accounts, and the default
    // mapping's identifiers for those are names, so such an entity lives on while any
    // account still has it.)
    let member = w.seed["accounts"][0]["id"]
        .as_str()
        .expect("a member account id")
        .to_string();
    let gone_ids: Vec<String> = w.seed["identifiers"][&member]["eu-west-1"]["AWS::EC2::Instance"]
        .as_array()
        .expect("seeded instances")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(gone_ids.len(), 2);
    let ids: Vec<&str> = gone_ids.iter().map(String::as_str).collect();
    w.emu
        .remove(&member, "eu-west-1", "AWS::EC2::Instance", &ids)
        .await
        .expect("terminate instances");
    w.port.clear_requests();
    let out = w.sync().await;
    let err = text(&out.stderr);
    assert!(out.status.success(), "third sync: {err}");
    let after = w.catalog();
    let gone: BTreeSet<_> = catalog.keys().filter(|k| !after.contains_key(*k)).collect();
    assert_eq!(gone.len(), 2, "deleted: {gone:?}\n{err}");
    let gone_ids: BTreeSet<&str> = gone_ids.iter().map(String::as_str).collect();
    for (_, id) in &gone {
        assert!(
            gone_ids.contains(id.as_str()),
            "{id} should not have been deleted"
        );
    }
    assert_eq!(after.len(), catalog.len() - 2);
}
