//! `berth::catalog` against the in-process fake Port: a push under every fault lands each entity
//! exactly once, change detection makes a repeated push free, reconciliation deletes only what
//! it may, sync status reaches Port, and every request passes the fake's OpenAPI validation.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use berth::catalog::port::{
    ClientConfig, Credentials, Entity, PortClient, RetryPolicy, UpsertOptions, UserAgent,
};
use berth::catalog::push::{EntityIn, Outcome, PushReport};
use berth::catalog::{PushOptions, Pusher};
use berth::mapping::Settings;
use berth::scope::{ScopeKey, ScopeStatus};
use berth::store::Store;
use berth_fake_port::client::{Client, Fake};
use berth_fake_port::{FakePortHandle, Faults, LoggedRequest};
use proptest::prelude::*;
use serde_json::json;

const BP: &str = "service";
const KEY: &str = "my-aws@test";

/// A fake Port with the blueprint `service` (`size`: number).
async fn fake() -> FakePortHandle {
    let fake = Fake::start().await;
    fake.create_blueprint(json!({
        "identifier": BP,
        "title": "Service",
        "schema": {"properties": {"size": {"type": "number"}}}
    }))
    .await;
    fake.handle.clear_requests();
    fake.handle
}

fn client(handle: &FakePortHandle, integration: &str) -> PortClient {
    let mut cfg = ClientConfig::new(
        handle.base_url(),
        Credentials::new("fake-client-id", "fake-client-secret"),
        UserAgent::exporter("aws", "0.1.0", integration),
    );
    cfg.retry = RetryPolicy {
        max_attempts: 12,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(20),
        jitter: 0.25,
    };
    PortClient::new(cfg).expect("client")
}

fn entity(id: &str, size: i64) -> Entity {
    Entity::from_value(
        &json!({"identifier": id, "title": id, "blueprint": BP, "properties": {"size": size}}),
    )
    .unwrap()
}

fn scoped(id: &str, size: i64, scope: &ScopeKey) -> EntityIn {
    EntityIn {
        entity: entity(id, size),
        scope: scope.clone(),
        kind: scope.kind.clone(),
        kind_index: 0,
    }
}

fn unscoped(e: Entity) -> EntityIn {
    EntityIn {
        entity: e,
        scope: ScopeKey::unscoped(BP),
        kind: BP.into(),
        kind_index: 0,
    }
}

async fn store(dir: &Path) -> Store {
    Store::open_sqlite(&dir.join("state.db")).await.unwrap()
}

async fn push(
    port: &FakePortHandle,
    store: &Store,
    items: Vec<EntityIn>,
    scopes: &[(ScopeKey, ScopeStatus)],
    tweak: impl FnOnce(&mut PushOptions),
) -> PushReport {
    let mut opts = PushOptions::new(KEY, Settings::default());
    tweak(&mut opts);
    let mut p = Pusher::begin(client(port, "my-aws"), Some(store.clone()), opts)
        .await
        .expect("begin");
    for (k, s) in scopes {
        p.scopes_mut().set(k, s.clone());
    }
    for i in items {
        p.add(i).await.expect("add");
    }
    p.finish().await.expect("finish")
}

fn stored(port: &FakePortHandle) -> BTreeSet<String> {
    port.snapshot()
        .entities
        .get(BP)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn calls<'a>(log: &'a [LoggedRequest], suffix: &str) -> Vec<&'a LoggedRequest> {
    log.iter().filter(|r| r.path.ends_with(suffix)).collect()
}

/// Another integration writes an entity; reconciliation must never touch it.
async fn foreign_entity(port: &FakePortHandle) {
    let other = client(port, "someone-else");
    let r = other
        .upsert_bulk(BP, &[entity("foreign-1", 1)], UpsertOptions::default())
        .await
        .unwrap();
    assert!(r[0].is_ok());
}

#[tokio::test]
async fn under_faults_every_entity_lands_once_and_only_the_stale_one_goes() {
    let port = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    foreign_entity(&port).await;
    // Entities this integration wrote earlier without Berth's state (written by Ocean, say):
    // svc-0..9 are still in the input, stale-1 is not (1 of 11 owned goes: under the threshold).
    let ours = client(&port, "my-aws");
    let mut earlier: Vec<Entity> = (0..10).map(|i| entity(&format!("svc-{i}"), -1)).collect();
    earlier.push(entity("stale-1", 1));
    ours.upsert_bulk(BP, &earlier, UpsertOptions::default())
        .await
        .unwrap();
    port.clear_requests();
    port.set_faults(Faults {
        seed: 7,
        rate_429: 0.3,
        rate_5xx: 0.05,
        early_401: 1,
        // Full batches of 20 (~1,500 bytes) are refused, halves (~750) pass.
        force_413_over_bytes: Some(1200),
        retry_after_secs: 1,
        ..Faults::default()
    });
    let input: Vec<Entity> = (0..400).map(|i| entity(&format!("svc-{i}"), i)).collect();
    let report = push(
        &port,
        &store,
        input.iter().cloned().map(unscoped).collect(),
        &[],
        |_| {},
    )
    .await;
    assert_eq!(report.outcome, Outcome::Completed, "{}", report.render());
    assert_eq!((report.loaded, report.load_failed), (400, 0));
    assert_eq!(report.deleted, 1);
    let mut want: BTreeSet<String> = (0..400).map(|i| format!("svc-{i}")).collect();
    want.insert("foreign-1".into());
    assert_eq!(stored(&port), want);

    let log = port.requests();
    let faults: BTreeSet<&str> = log.iter().filter_map(|r| r.fault.as_deref()).collect();
    for f in ["injected_429", "injected_5xx", "early_401", "forced_413"] {
        assert!(faults.contains(f), "fault {f} never fired: {faults:?}");
    }
    // 20 batches of 20, each split in two by the 413: 40 accepted bulk calls of 10, so no
    // entity was written twice.
    let bulk = calls(&log, "/entities/bulk");
    assert_eq!(bulk.iter().filter(|r| r.status == 200).count(), 40);
    // The stored entities carry the values sent (none was replaced by a retried older body).
    let snap = port.snapshot();
    for i in [0, 199, 399] {
        assert_eq!(
            snap.entities[BP][&format!("svc-{i}")].properties["size"],
            json!(i)
        );
    }
    port.set_faults(Faults::default());
    port.clear_requests();

    // The same input again: no upsert, no delete.
    let again = push(
        &port,
        &store,
        input.iter().cloned().map(unscoped).collect(),
        &[],
        |_| {},
    )
    .await;
    assert_eq!(again.plan.total().unchanged, 400, "{}", again.render());
    let log = port.requests();
    assert!(calls(&log, "/entities/bulk").is_empty(), "{log:#?}");
    assert!(calls(&log, "/bulk/entities/delete").is_empty());
    assert_eq!(again.deleted, 0);

    // One changed entity: exactly one upsert call.
    port.clear_requests();
    let mut changed = input.clone();
    changed[17] = entity("svc-17", 1017);
    let third = push(
        &port,
        &store,
        changed.into_iter().map(unscoped).collect(),
        &[],
        |_| {},
    )
    .await;
    let t = third.plan.total();
    assert_eq!((t.update, t.unchanged, t.create), (1, 399, 0));
    let log = port.requests();
    assert_eq!(calls(&log, "/entities/bulk").len(), 1);
    assert_eq!(
        port.snapshot().entities[BP]["svc-17"].properties["size"],
        json!(1017)
    );
}

#[tokio::test]
async fn reconciliation_respects_scopes_threshold_and_other_datasources() {
    let port = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    foreign_entity(&port).await;
    let a = ScopeKey::new("111111111111", "eu-west-1", "AWS::Lambda::Function");
    let b = ScopeKey::new("111111111111", "us-east-1", "AWS::Lambda::Function");
    let first = push(
        &port,
        &store,
        vec![
            scoped("a1", 1, &a),
            scoped("a2", 1, &a),
            scoped("a3", 1, &a),
            scoped("b1", 1, &b),
            scoped("b2", 1, &b),
        ],
        &[],
        |_| {},
    )
    .await;
    assert_eq!(first.loaded, 5);

    // Region B is denied now and returns nothing; a2 is gone from region A.
    let second = push(
        &port,
        &store,
        vec![scoped("a1", 1, &a), scoped("a3", 1, &a)],
        &[
            (a.clone(), ScopeStatus::Complete),
            (
                b.clone(),
                ScopeStatus::Denied("AccessDenied: not authorized".into()),
            ),
        ],
        |_| {},
    )
    .await;
    assert_eq!(second.deleted, 1, "{}", second.render());
    // The report names the scope as it always has, then why it did not complete.
    assert!(
        second.render().contains(
            "  Denied: AWS::Lambda::Function in account 111111111111 region us-east-1: \
             AccessDenied: not authorized\n"
        ),
        "{}",
        second.render()
    );
    assert_eq!(second.outcome, Outcome::Partial);
    assert_eq!(
        stored(&port),
        ["a1", "a3", "b1", "b2", "foreign-1"]
            .map(String::from)
            .into()
    );
    assert!(
        second.kept.keys().any(|k| k.contains("denied")),
        "{:?}",
        second.kept
    );

    // Both scopes complete and empty: deleting all 4 of 4 owned entities is above the 0.9
    // threshold, so nothing goes and the report says why.
    let third = push(
        &port,
        &store,
        vec![],
        &[
            (a.clone(), ScopeStatus::Complete),
            (b.clone(), ScopeStatus::Complete),
        ],
        |_| {},
    )
    .await;
    assert_eq!(third.deleted, 0);
    let why = third.refused.clone().expect("refused");
    assert!(
        why.contains("4 of 4") && why.contains("entityDeletionThreshold"),
        "{why}"
    );
    assert_eq!(stored(&port).len(), 5);

    // A failed entity in a complete scope keeps that scope's stale entities too.
    let fourth = push(
        &port,
        &store,
        vec![
            scoped("a1", 1, &a),
            EntityIn {
                entity: Entity::from_value(&json!({"identifier": "bad", "blueprint": BP,
                    "properties": {"size": "not a number"}}))
                .unwrap(),
                ..scoped("x", 0, &a)
            },
            scoped("b1", 1, &b),
            scoped("b2", 1, &b),
        ],
        &[
            (a.clone(), ScopeStatus::Complete),
            (b.clone(), ScopeStatus::Complete),
        ],
        |_| {},
    )
    .await;
    assert_eq!(fourth.load_failed, 1, "{}", fourth.render());
    assert_eq!(fourth.deleted, 0, "{}", fourth.render());
    assert!(stored(&port).contains("a3"));
    assert!(stored(&port).contains("foreign-1"));
}

#[tokio::test]
async fn dry_run_plans_without_writing() {
    let port = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    push(
        &port,
        &store,
        (0..5)
            .map(|i| unscoped(entity(&format!("e{i}"), i)))
            .collect(),
        &[],
        |_| {},
    )
    .await;
    port.clear_requests();
    let before = port.snapshot();
    let states_before = store.entity_states(KEY).await.unwrap();
    // e0 unchanged, e1 changed, e5 new, e2..e4 gone.
    let items = vec![
        unscoped(entity("e0", 0)),
        unscoped(entity("e1", 100)),
        unscoped(entity("e5", 5)),
    ];
    let plan = push(&port, &store, items, &[], |o| o.dry_run = true).await;
    let t = plan.plan.total();
    assert_eq!((t.create, t.update, t.unchanged, t.delete), (1, 1, 1, 3));
    let log = port.requests();
    assert!(
        log.iter().all(|r| r.method == "GET"
            || r.path.ends_with("/search")
            || r.path.ends_with("/access_token")),
        "a dry run wrote: {log:#?}"
    );
    assert_eq!(port.snapshot().entities, before.entities);
    assert_eq!(store.entity_states(KEY).await.unwrap(), states_before);
    assert!(plan.render().contains("dry run"), "{}", plan.render());
}

/// A push that Port stops taking ends with one history record, `failed`, that says why (not
/// an empty reason, and not a record left `running`), and Port hears the resync failed.
#[tokio::test]
async fn a_push_port_stops_taking_leaves_one_failed_record_with_why() {
    let port = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let mut p = Pusher::begin(
        client(&port, "my-aws"),
        Some(store.clone()),
        PushOptions::new(KEY, Settings::default()),
    )
    .await
    .expect("begin");
    // A token Port keeps refusing stops the push (a refused entity would only fail itself).
    port.set_faults(Faults {
        early_401: 1_000,
        path_contains: Some("/entities/bulk".into()),
        ..Faults::default()
    });
    for i in 0..5 {
        p.add(unscoped(entity(&format!("e{i}"), i)))
            .await
            .expect("add");
    }
    let e = p.finish().await.expect_err("Port refuses every token");
    let history = store.sync_history(KEY, 10).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].status, "failed", "{history:?}");
    let summary: serde_json::Value =
        serde_json::from_str(history[0].summary.as_deref().unwrap()).unwrap();
    assert_eq!(summary["error"], e.to_string(), "{summary}");
    port.set_faults(Faults::default());
    let state = &port.snapshot().integrations["my-aws"]["resyncState"];
    assert_eq!(state["status"], "failed", "{state}");
}

#[tokio::test]
async fn status_and_metrics_reach_port_and_every_request_is_valid() {
    let port = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    // Owned before: e0..e9 (kept) and `old` (stale): 1 of 11 goes, under the threshold.
    let ours = client(&port, "my-aws");
    let mut before: Vec<Entity> = (0..10).map(|i| entity(&format!("e{i}"), i)).collect();
    before.push(entity("old", 1));
    ours.upsert_bulk(BP, &before, UpsertOptions::default())
        .await
        .unwrap();
    port.clear_requests();
    let settings = Settings {
        delete_dependent_entities: false,
        ..Settings::default()
    };
    let report = push(
        &port,
        &store,
        (0..30)
            .map(|i| unscoped(entity(&format!("e{i}"), i)))
            .collect(),
        &[],
        |o| o.settings = settings,
    )
    .await;
    assert_eq!(
        (report.loaded, report.deleted),
        (30, 1),
        "{}",
        report.render()
    );

    let log = port.requests();
    // The fake answers 400/422 to a request its OpenAPI schemas refuse; the one expected
    // failure is the 404 that precedes creating the integration.
    let bad: Vec<_> = log
        .iter()
        .filter(|r| {
            let expected_404 =
                r.status == 404 && r.method == "GET" && r.path == "/v1/integration/my-aws";
            !(200..300).contains(&r.status) && !expected_404
        })
        .collect();
    assert!(bad.is_empty(), "requests the fake refused: {bad:#?}");
    let routes: BTreeSet<String> = log
        .iter()
        .map(|r| format!("{} {}", r.method, r.path.replace("my-aws", "{id}")))
        .collect();
    for want in [
        "POST /v1/auth/access_token",
        "GET /v1/integration/{id}",
        "POST /v1/integration",
        "PATCH /v1/integration/{id}/resync-state",
        "POST /v1/blueprints/service/entities/search",
        "POST /v1/blueprints/service/entities/bulk",
        "DELETE /v1/blueprints/service/entities/old",
        "PUT /ingest/{id}/metrics/syncMetrics/resync/{event}/kind/service-0",
        "POST /ingest/{id}/metrics/syncMetrics",
    ] {
        let found = routes.iter().any(|r| {
            if want.contains("{event}") {
                r.starts_with("PUT /ingest/{id}/metrics/syncMetrics/resync/")
                    && r.ends_with("/kind/service-0")
            } else {
                r == want
            }
        });
        assert!(found, "route {want} not used: {routes:#?}");
    }

    let snap = port.snapshot();
    let state = &snap.integrations["my-aws"]["resyncState"];
    assert_eq!(state["status"], "completed", "{state}");
    assert!(state["lastResyncEnd"].is_string());
    let metrics = &snap.sync_metrics["my-aws"];
    let m = metrics
        .iter()
        .find(|m| m["kindIdentifier"] == "service-0")
        .expect("kind metrics");
    let load = &m["metrics"]["phase"]["load"]["object_count_type"];
    assert_eq!(load["loaded"]["object_count"], 30);
    assert_eq!(m["syncState"], "completed");
    assert!(
        metrics.iter().any(
            |m| m["metrics"]["phase"]["delete"]["object_count_type"]["deleted"]["object_count"]
                == 1
        ),
        "{metrics:#?}"
    );
    let history = store.sync_history(KEY, 5).await.unwrap();
    assert_eq!(history[0].status, "completed");

    // With cascading deletes (the default) a stale entity goes through the bulk delete route,
    // which must pass validation too.
    port.clear_requests();
    let report = push(
        &port,
        &store,
        (0..29)
            .map(|i| unscoped(entity(&format!("e{i}"), i)))
            .collect(),
        &[],
        |_| {},
    )
    .await;
    assert_eq!(report.deleted, 1, "{}", report.render());
    let log = port.requests();
    let del = calls(&log, "/bulk/entities/delete");
    assert_eq!(del.len(), 1);
    assert_eq!(del[0].status, 200);
    assert_eq!(del[0].query.as_deref(), Some("delete_dependents=true"));
    assert!(!stored(&port).contains("e29"));
}

/// `berth push` end to end: config with secrets by reference, a dry run, a real push, and a
/// malformed input line that stops the push before anything is reconciled.
#[tokio::test]
async fn berth_push_command() {
    let port = fake().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "fake-client-secret\n").unwrap();
    let config = dir.path().join("berth.yaml");
    std::fs::write(
        &config,
        format!(
            "port:\n  clientId: {{env: BERTH_TEST_PORT_ID}}\n  clientSecret: {{file: secret}}\n  \
             baseUrl: {}\n  integration: {{identifier: my-aws}}\nstate: state/berth.db\n\
             blueprints: {}\n",
            port.base_url(),
            berth_test_kit::repo_root()
                .join("mappings/blueprints")
                .display()
        ),
    )
    .unwrap();
    let input = dir.path().join("entities.jsonl");
    let lines: Vec<String> = (0..3)
        .map(|i| entity(&format!("c{i}"), i).full_json())
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.env("BERTH_TEST_PORT_ID", "fake-client-id")
            .args(["push", "--config"])
            .arg(&config)
            .arg("--input")
            .arg(&input)
            .args(extra);
        cmd
    };
    let out = tokio::task::spawn_blocking({
        let mut c = run(&["--dry-run"]);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("dry run") && err.contains("total"), "{err}");
    assert!(stored(&port).is_empty(), "a dry run wrote");

    let out = tokio::task::spawn_blocking({
        let mut c = run(&[]);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(stored(&port), ["c0", "c1", "c2"].map(String::from).into());
    assert!(dir.path().join("state/berth.db").is_file());
    assert!(!err.contains("fake-client-secret"));
    // The shipped blueprints were created on the way.
    let bps = port.snapshot().blueprints;
    for bp in ["awsAccount", "cloudResource", "ecsService"] {
        assert!(bps.contains_key(bp), "{bp} missing: {:?}", bps.keys());
    }

    // A truncated file: the push stops at the bad line and deletes nothing.
    std::fs::write(&input, format!("{}\n{{\"identifier\": \"c1\"", lines[0])).unwrap();
    let out = tokio::task::spawn_blocking({
        let mut c = run(&[]);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("entities.jsonl:2"), "{err}");
    assert_eq!(stored(&port).len(), 3);
}

/// An identifier two accounts share: the scope that wrote it keeps it, whatever the arrival
/// order, so a repeated sync writes nothing (Port alone would flip between the two).
#[tokio::test]
async fn a_shared_identifier_is_written_once_and_stays_put() {
    let port = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let a = ScopeKey::new("111111111111", "eu-west-1", "AWS::RDS::DBInstance");
    let b = ScopeKey::new("222222222222", "eu-west-1", "AWS::RDS::DBInstance");
    let both = [
        (a.clone(), ScopeStatus::Complete),
        (b.clone(), ScopeStatus::Complete),
    ];
    let first = push(
        &port,
        &store,
        vec![
            scoped("db-1", 1, &a),
            scoped("db-1", 2, &b),
            scoped("db-2", 3, &b),
        ],
        &both,
        |_| {},
    )
    .await;
    assert_eq!(
        (first.loaded, first.duplicates),
        (2, 1),
        "{}",
        first.render()
    );
    assert_eq!(
        port.snapshot().entities[BP]["db-1"].properties["size"],
        json!(1)
    );
    port.clear_requests();
    let second = push(
        &port,
        &store,
        vec![
            scoped("db-2", 3, &b),
            scoped("db-1", 2, &b),
            scoped("db-1", 1, &a),
        ],
        &both,
        |_| {},
    )
    .await;
    assert_eq!(second.duplicates, 1);
    assert!(
        calls(&port.requests(), "/entities/bulk").is_empty(),
        "{}",
        second.render()
    );
    assert_eq!(
        port.snapshot().entities[BP]["db-1"].properties["size"],
        json!(1)
    );
    // The owner scope no longer produces it: the other scope's write goes through.
    let third = push(
        &port,
        &store,
        vec![scoped("db-2", 3, &b), scoped("db-1", 2, &b)],
        &both,
        |_| {},
    )
    .await;
    assert_eq!(third.plan.total().update, 1, "{}", third.render());
    assert_eq!(
        port.snapshot().entities[BP]["db-1"].properties["size"],
        json!(2)
    );
}

/// `mapping: {fromPort: true}` reads the integration's config from Port, as Ocean does.
#[tokio::test]
async fn mapping_from_port() {
    let port = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("berth.yaml");
    std::fs::write(dir.path().join("secret"), "fake-client-secret").unwrap();
    std::fs::write(
        &config_path,
        format!(
            "port:\n  clientId: fake-client-id\n  clientSecret: {{file: secret}}\n  baseUrl: {}\n  \
             integration: {{identifier: from-port}}\nmapping: {{fromPort: true}}\n",
            port.base_url()
        ),
    )
    .unwrap();
    let config = berth::config::Config::from_path(&config_path).unwrap();
    let client = config.port_client().unwrap();
    // No integration yet: a clear error.
    let err = config.load_mapping(&client).await.unwrap_err().to_string();
    assert!(
        err.contains("no integration") && err.contains("from-port"),
        "{err}"
    );
    let r = Client::connect(port.base_url())
        .await
        .post(
            "/v1/integration",
            json!({
                "installationId": "from-port",
                "installationAppType": "aws",
                "config": {
                    "deleteDependentEntities": false,
                    "entityDeletionThreshold": 0.5,
                    "resources": [{
                        "kind": "AWS::S3::Bucket",
                        "selector": {"query": "true"},
                        "port": {"entity": {"mappings": {
                            "identifier": ".Identifier", "blueprint": "\"bucket\""
                        }}}
                    }]
                }
            }),
        )
        .await;
    assert!(r.is_success(), "{}", r.body);
    let m = config.load_mapping(&client).await.unwrap();
    assert_eq!(m.resources.len(), 1);
    assert_eq!(m.resources[0].kind, "AWS::S3::Bucket");
    assert!(!m.settings.delete_dependent_entities);
    assert_eq!(m.settings.entity_deletion_threshold, 0.5);
}

// ---- shared identifiers, as a property ---------------------------------------------------------

/// How one scope's discovery ends in one sync of the property.
#[derive(Debug, Clone, Copy)]
enum ScopeEnd {
    Complete,
    /// Denied or failed part-way: only some of its items (the `emit` bits) arrive.
    Denied,
    Failed,
    /// Read completely, but one of its entities is refused by Port.
    EntityRefused,
}

#[derive(Debug, Clone)]
struct SyncStep {
    /// Per scope (account × region): which of the shared names it has now (bit per name).
    has: Vec<u8>,
    ends: Vec<ScopeEnd>,
    /// Per scope: which of its names a denied or failed scope still emits.
    emit: Vec<u8>,
    /// Accounts still in the Organization (bit per account).
    members: u8,
    forget_state: bool,
    /// Arrival order of the sync's entities.
    order_seed: u64,
}

const SHARED_ACCOUNTS: usize = 3;
const SHARED_REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const SHARED_SCOPES: usize = SHARED_ACCOUNTS * SHARED_REGIONS.len();
/// Few names over many scopes: most names are in several scopes at once.
const SHARED_NAMES: u32 = 4;

fn shared_scope(i: usize) -> ScopeKey {
    ScopeKey::new(
        format!(
            "{}",
            111_111_111_111u64 * (i / SHARED_REGIONS.len()) as u64 + 111_111_111_111
        ),
        SHARED_REGIONS[i % SHARED_REGIONS.len()],
        "AWS::RDS::DBInstance",
    )
}

fn sync_step(faults: bool) -> impl Strategy<Value = SyncStep> {
    let end = if faults {
        prop_oneof![
            5 => Just(ScopeEnd::Complete),
            1 => Just(ScopeEnd::Denied),
            1 => Just(ScopeEnd::Failed),
            1 => Just(ScopeEnd::EntityRefused),
        ]
        .boxed()
    } else {
        Just(ScopeEnd::Complete).boxed()
    };
    (
        prop::collection::vec(0u8..(1 << SHARED_NAMES), SHARED_SCOPES),
        prop::collection::vec(end, SHARED_SCOPES),
        prop::collection::vec(any::<u8>(), SHARED_SCOPES),
        if faults {
            prop_oneof![4 => Just(0b111u8), 1 => 0u8..8].boxed()
        } else {
            Just(0b111u8).boxed()
        },
        prop::bool::weighted(if faults { 0.2 } else { 0.0 }),
        any::<u64>(),
    )
        .prop_map(
            |(has, ends, emit, members, forget_state, order_seed)| SyncStep {
                has,
                ends,
                emit,
                members,
                forget_state,
                order_seed,
            },
        )
}

/// What AWS holds for the integration at one step: the names some member account has, of the
/// scopes in `which` (bits of names per scope).
fn shared_truth(s: &SyncStep, which: &[u8]) -> BTreeSet<String> {
    (0..SHARED_SCOPES)
        .filter(|i| s.members >> (i / SHARED_REGIONS.len()) & 1 == 1)
        .flat_map(|i| (0..SHARED_NAMES).filter(move |n| (s.has[i] & which[i]) >> n & 1 == 1))
        .map(|n| format!("db-{n}"))
        .collect()
}

/// Per scope, the names a sync has shown Berth in it (bits), after step `s`: a scope that
/// emits a name shows it; one that completes without it, or whose account left, proves it
/// gone. What a scope has never been read with cannot be known (the state store is new, or
/// the scope was unreadable since the name appeared), so the property asks only for these.
fn witness(witnessed: &mut [u8], s: &SyncStep) {
    for (i, w) in witnessed.iter_mut().enumerate() {
        *w = if s.members >> (i / SHARED_REGIONS.len()) & 1 == 0 {
            0
        } else {
            match s.ends[i] {
                ScopeEnd::Complete => s.has[i],
                ScopeEnd::EntityRefused => *w | s.has[i],
                ScopeEnd::Denied | ScopeEnd::Failed => *w | (s.has[i] & s.emit[i]),
            }
        };
    }
}

/// One sync of the property, as `pipeline::resync` drives a push: entities in a random order,
/// then every scope's end, the Organization's members, and the finish.
async fn shared_sync(port: &FakePortHandle, dir: &Path, s: &SyncStep) -> PushReport {
    let settings = Settings {
        entity_deletion_threshold: 1.0,
        ..Settings::default()
    };
    let mut opts = PushOptions::new(KEY, settings);
    opts.input_scopes_complete = false;
    let store = store(dir).await;
    let mut p = Pusher::begin(client(port, "my-aws"), Some(store), opts)
        .await
        .expect("begin");
    let mut items = Vec::new();
    let mut known = std::collections::HashSet::new();
    for i in 0..SHARED_SCOPES {
        let scope = shared_scope(i);
        if s.members >> (i / SHARED_REGIONS.len()) & 1 == 0 {
            continue;
        }
        known.insert(scope.account_id.clone());
        let partial = matches!(s.ends[i], ScopeEnd::Denied | ScopeEnd::Failed);
        for n in (0..SHARED_NAMES).filter(|n| s.has[i] >> n & 1 == 1) {
            if !partial || s.emit[i] >> n & 1 == 1 {
                // Each scope's body differs, so which scope wrote an entity shows.
                items.push(scoped(&format!("db-{n}"), i as i64, &scope));
            }
        }
        if matches!(s.ends[i], ScopeEnd::EntityRefused) {
            items.push(EntityIn {
                entity: Entity::from_value(&json!({"identifier": format!("bad-{i}"),
                    "blueprint": BP, "properties": {"size": "not a number"}}))
                .unwrap(),
                ..scoped("x", 0, &scope)
            });
        }
    }
    // A fixed shuffle per step: the same names arrive from several scopes in any order.
    let mut rng = s.order_seed | 1;
    for i in (1..items.len()).rev() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        items.swap(i, (rng % (i as u64 + 1)) as usize);
    }
    for item in items {
        p.add(item).await.expect("add");
    }
    for i in 0..SHARED_SCOPES {
        if s.members >> (i / SHARED_REGIONS.len()) & 1 == 0 {
            continue;
        }
        let status = match s.ends[i] {
            ScopeEnd::Complete | ScopeEnd::EntityRefused => ScopeStatus::Complete,
            ScopeEnd::Denied => ScopeStatus::Denied("AccessDenied".into()),
            ScopeEnd::Failed => ScopeStatus::Failed("throttled".into()),
        };
        p.scopes_mut().set(&shared_scope(i), status);
    }
    p.retire_accounts_not_in(&known);
    p.finish().await.expect("finish")
}

/// Identifiers several accounts and regions share are one entity in Port: over random
/// syncs (names appearing and going in each scope, scopes denied, failed or with a refused
/// entity, accounts leaving and coming back, the state store lost), no sync deletes a name
/// that a member account still has and a sync showed in it, and a clean sync then holds
/// exactly what AWS has.
#[test]
fn a_shared_identifier_goes_only_when_no_scope_may_still_have_it() {
    let mut runner = berth_test_kit::property_runner(file!(), "PROPTEST_CASES", 48, None);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let case = (
        sync_step(false),
        prop::collection::vec(sync_step(true), 1..6),
        sync_step(false),
    );
    let figures = std::sync::Mutex::new((0u64, 0u64, 0u64));
    let result =
        runner.run(&case, |(first, steps, clean)| {
            rt.block_on(async {
            let port = fake().await;
            let dir = tempfile::tempdir().unwrap();
            let mut deleted_total = 0u64;
            shared_sync(&port, dir.path(), &first).await;
            let mut witnessed = first.has.clone();
            for s in &steps {
                if s.forget_state {
                    for f in ["state.db", "state.db-wal", "state.db-shm"] {
                        let _ = std::fs::remove_file(dir.path().join(f));
                    }
                    witnessed.fill(0);
                }
                let before = stored(&port);
                let report = shared_sync(&port, dir.path(), s).await;
                let after = stored(&port);
                let known = shared_truth(s, &witnessed);
                for gone in before.difference(&after) {
                    prop_assert!(
                        !known.contains(gone),
                        "{gone} was deleted, but a member account that showed it still has it: {}",
                        report.render()
                    );
                    deleted_total += 1;
                }
                witness(&mut witnessed, s);
            }
            let report = shared_sync(&port, dir.path(), &clean).await;
            let held: BTreeSet<String> = stored(&port)
                .into_iter()
                .filter(|n| n.starts_with("db-"))
                .collect();
            let everything = [u8::MAX; SHARED_SCOPES];
            prop_assert_eq!(&held, &shared_truth(&clean, &everything), "{}", report.render());
            let mut f = figures.lock().unwrap();
            f.0 += 1;
            f.1 += steps.len() as u64;
            f.2 += deleted_total;
            Ok(())
        })
        });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (cases, syncs, deleted) = figures.into_inner().unwrap();
    eprintln!(
        "shared identifiers: {cases} cases, {syncs} syncs under faults, {deleted} deletions, \
         none of a name a member account that showed it still had; every case converged after a clean sync"
    );
}
