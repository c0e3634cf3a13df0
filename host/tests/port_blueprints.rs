//! `berth::catalog::port` blueprints and the relation-ordered retry, against the in-process fake Port:
//! the real `mappings/blueprints` created in relation order and idempotently, a user's
//! blueprint only ever extended (conflicts reported, not changed), and entities whose relation
//! targets come later (or sit on a cycle) retried after their targets.

use std::collections::BTreeSet;
use std::time::Duration;

use berth::catalog::port::{
    ClientConfig, ConflictKind, Credentials, Entity, PortClient, RetryPolicy, UpsertOptions,
    UserAgent,
};
use berth_fake_port::{Config, FakePortHandle};
use serde_json::{Value, json};

async fn fake() -> FakePortHandle {
    let (_addr, handle) = berth_fake_port::spawn(Config::default())
        .await
        .expect("fake port");
    handle
}

fn client(handle: &FakePortHandle) -> PortClient {
    let mut cfg = ClientConfig::new(
        handle.base_url(),
        Credentials::new("fake-client-id", "fake-client-secret"),
        UserAgent::exporter("aws", "0.1.0", "my-aws"),
    );
    cfg.retry = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(20),
        jitter: 0.25,
    };
    PortClient::new(cfg).expect("client")
}

/// The real blueprints of `mappings/blueprints`, in reverse file-name order (dependents first,
/// so the client has to sort them).
fn real_blueprints() -> Vec<Value> {
    let dir = berth_test_kit::repo_root().join("mappings/blueprints");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("mappings/blueprints")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files.reverse();
    files
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn ids(v: &[Value]) -> Vec<String> {
    v.iter()
        .map(|b| b["identifier"].as_str().unwrap().to_string())
        .collect()
}

/// Requests that write (anything but GET and the token call).
fn writes(handle: &FakePortHandle) -> Vec<(String, String)> {
    handle
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.path != "/v1/auth/access_token")
        .map(|r| (r.method, r.path))
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn real_blueprints_created_in_relation_order_then_no_op() {
    let handle = fake().await;
    let port = client(&handle);
    let bps = real_blueprints();
    assert_eq!(ids(&bps), ["ecsService", "cloudResource", "awsAccount"]);
    assert_eq!(bps[0]["relations"]["cluster"]["target"], "cloudResource");
    assert_eq!(bps[1]["relations"]["account"]["target"], "awsAccount");

    let report = port.ensure_blueprints(&bps).await.expect("ensure");
    assert_eq!(
        report.created,
        ["awsAccount", "cloudResource", "ecsService"]
    );
    assert!(report.extended.is_empty() && report.unchanged.is_empty());
    assert!(report.conflicts.is_empty());
    // Three creates, one per blueprint, and nothing else written.
    let w = writes(&handle);
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w.iter().all(|(m, p)| m == "POST" && p == "/v1/blueprints"));
    let snap = handle.snapshot();
    for bp in &bps {
        let id = bp["identifier"].as_str().unwrap();
        let stored = &snap.blueprints[id];
        assert_eq!(stored["schema"]["properties"], bp["schema"]["properties"]);
        assert_eq!(keys(&stored["relations"]), keys(&bp["relations"]));
    }

    handle.clear_requests();
    let again = port.ensure_blueprints(&bps).await.expect("ensure again");
    assert!(again.created.is_empty() && again.extended.is_empty());
    assert!(again.conflicts.is_empty());
    assert_eq!(
        again.unchanged,
        ["ecsService", "cloudResource", "awsAccount"]
    );
    assert!(writes(&handle).is_empty(), "{:?}", writes(&handle));
    assert_eq!(handle.requests().len(), 3, "one GET per blueprint");
}

#[tokio::test]
async fn user_blueprint_is_only_extended_and_conflicts_are_left_alone() {
    let handle = fake().await;
    let port = client(&handle);
    // The user's own versions: extra properties, a stricter `required`, a `status` of another
    // type, and a cloudResource without our relation.
    let user = vec![
        json!({"identifier": "awsAccount", "title": "Accounts (ours)", "schema": {
            "properties": {
                "owner_team": {"type": "string", "title": "Owner"},
                "status": {"type": "number"},
                "arn": {"type": "string", "title": "The ARN"}
            },
            "required": ["owner_team"]}}),
        json!({"identifier": "cloudResource", "title": "Resources", "schema": {
            "properties": {"cost": {"type": "number"}, "kind": {"type": "string"}}}}),
    ];
    let setup = port.ensure_blueprints(&user).await.expect("user setup");
    assert_eq!(setup.created, ["awsAccount", "cloudResource"]);
    handle.clear_requests();

    let report = port
        .ensure_blueprints(&real_blueprints())
        .await
        .expect("ensure");
    assert_eq!(report.created, ["ecsService"]);
    assert!(report.unchanged.is_empty());
    assert_eq!(report.extended.len(), 2);
    let cr = report
        .extended
        .iter()
        .find(|e| e.blueprint == "cloudResource")
        .unwrap();
    assert_eq!(cr.added_relations, ["account"]);
    assert!(!cr.added_properties.contains(&"kind".to_string()));
    assert_eq!(cr.added_properties.len(), 10);
    let acct = report
        .extended
        .iter()
        .find(|e| e.blueprint == "awsAccount")
        .unwrap();
    let added: BTreeSet<&str> = acct.added_properties.iter().map(String::as_str).collect();
    assert_eq!(
        added,
        BTreeSet::from(["email", "joined_method", "joined_timestamp"])
    );
    assert!(acct.added_relations.is_empty());
    assert_eq!(report.conflicts.len(), 1, "{:?}", report.conflicts);
    let c = &report.conflicts[0];
    assert_eq!(
        (c.blueprint.as_str(), c.key.as_str(), c.kind),
        ("awsAccount", "status", ConflictKind::PropertyType)
    );
    assert_eq!((c.wanted.as_str(), c.found.as_str()), ("string", "number"));
    // Only creates and patches; never a PUT or DELETE.
    let w = writes(&handle);
    assert!(w.iter().all(|(m, _)| m == "POST" || m == "PATCH"), "{w:?}");

    let snap = handle.snapshot();
    let a = &snap.blueprints["awsAccount"];
    let props = &a["schema"]["properties"];
    assert_eq!(a["title"], "Accounts (ours)");
    assert_eq!(props["owner_team"]["title"], "Owner");
    assert_eq!(props["status"]["type"], "number", "conflict left alone");
    assert_eq!(
        props["arn"]["title"], "The ARN",
        "existing property untouched"
    );
    assert_eq!(props["joined_timestamp"]["format"], "date-time");
    assert_eq!(a["schema"]["required"], json!(["owner_team"]));
    let r = &snap.blueprints["cloudResource"];
    assert_eq!(r["schema"]["properties"]["cost"]["type"], "number");
    assert_eq!(r["relations"]["account"]["target"], "awsAccount");
    assert_eq!(
        snap.blueprints["ecsService"]["relations"]["cluster"]["target"],
        "cloudResource"
    );

    // Once extended, a second run writes nothing and still reports the conflict.
    handle.clear_requests();
    let again = port.ensure_blueprints(&real_blueprints()).await.unwrap();
    assert_eq!(again.unchanged.len(), 3);
    assert_eq!(again.conflicts, report.conflicts);
    assert!(writes(&handle).is_empty());
}

#[tokio::test]
async fn entities_whose_targets_come_later_land_after_the_retry() {
    let handle = fake().await;
    let port = client(&handle);
    port.ensure_blueprints(&real_blueprints()).await.unwrap();
    handle.clear_requests();

    let entities = vec![
        json!({"identifier": "svc-1", "blueprint": "ecsService", "properties": {"desired_count": 2},
               "relations": {"cluster": "cl-1", "account": "111111111111"}}),
        json!({"identifier": "svc-2", "blueprint": "ecsService", "properties": {},
               "relations": {"cluster": "cl-2"}}),
        json!({"identifier": "svc-bad", "blueprint": "ecsService",
               "properties": {"desired_count": "two"}, "relations": {}}),
        json!({"identifier": "cl-1", "blueprint": "cloudResource", "properties": {"kind": "ecs"},
               "relations": {"account": "111111111111"}}),
        json!({"identifier": "cl-2", "blueprint": "cloudResource", "properties": {"kind": "ecs"},
               "relations": {"account": "222222222222"}}),
        json!({"identifier": "111111111111", "blueprint": "awsAccount", "properties": {}}),
        json!({"identifier": "222222222222", "blueprint": "awsAccount", "properties": {}}),
        json!({"identifier": "nobp"}),
    ];
    // The last has no blueprint, which `Entity::from_value` refuses: its record says so.
    let (named, unnamed) = entities.split_at(entities.len() - 1);
    let mut records = Entity::from_values(named).unwrap();
    records.push(Entity {
        identifier: "nobp".into(),
        body: unnamed[0].to_string(),
        ..Entity::default()
    });
    let opts = UpsertOptions {
        merge: false,
        create_missing_related_entities: false,
    };
    let results = port
        .upsert_with_relation_retry(&records, opts)
        .await
        .expect("upsert");
    assert_eq!(results.len(), entities.len());
    for (r, e) in results.iter().zip(&entities) {
        assert_eq!(r.identifier, e["identifier"].as_str().unwrap());
    }
    for (i, r) in results.iter().enumerate() {
        match i {
            2 => assert_eq!(r.outcome.as_ref().unwrap_err().status, Some(422)),
            7 => assert_eq!(r.outcome.as_ref().unwrap_err().status, None),
            _ => assert!(r.is_ok(), "{r:?}"),
        }
    }
    let snap = handle.snapshot();
    let count: usize = snap.entities.values().map(|m| m.len()).sum();
    assert_eq!(count, 6, "no placeholders, no bad entity");
    assert_eq!(
        snap.entities["ecsService"]["svc-1"].relations["cluster"],
        "cl-1"
    );
    assert_eq!(
        snap.entities["cloudResource"]["cl-2"].relations["account"],
        "222222222222"
    );

    // Every call sent create_missing_related_entities=false, and the clusters' retry came
    // before the services' retry.
    let bulk: Vec<_> = handle
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/entities/bulk"))
        .collect();
    assert!(bulk.iter().all(|r| {
        r.query
            .as_deref()
            .unwrap_or_default()
            .contains("create_missing_related_entities=false")
    }));
    let last = |bp: &str| {
        bulk.iter()
            .filter(|r| r.path == format!("/v1/blueprints/{bp}/entities/bulk"))
            .map(|r| r.seq)
            .collect::<Vec<_>>()
    };
    let (svc, cl, acct) = (
        last("ecsService"),
        last("cloudResource"),
        last("awsAccount"),
    );
    assert_eq!((svc.len(), cl.len(), acct.len()), (2, 2, 1));
    assert!(cl[1] < svc[1], "clusters retried before services");
}

#[tokio::test]
async fn relation_cycle_still_lands_what_can_land() {
    let handle = fake().await;
    let port = client(&handle);
    // A blueprint relating to itself: the relation is added after the blueprint exists.
    let node = json!({"identifier": "node", "title": "Node", "schema": {"properties": {}},
        "relations": {"next": {"title": "Next", "target": "node", "required": false, "many": false}}});
    let report = port.ensure_blueprints(&[node]).await.expect("ensure node");
    assert_eq!(report.created, ["node"]);
    assert_eq!(
        handle.snapshot().blueprints["node"]["relations"]["next"]["target"],
        "node"
    );

    let e = |id: &str, next: Option<&str>| match next {
        Some(n) => json!({"identifier": id, "blueprint": "node", "relations": {"next": n}}),
        None => json!({"identifier": id, "blueprint": "node"}),
    };
    let entities = vec![
        e("a", Some("b")),
        e("b", Some("a")),
        e("c", Some("d")),
        e("d", Some("f")),
        e("hangs-on-cycle", Some("a")),
        e("f", None),
    ];
    let results = port
        .upsert_with_relation_retry(
            &Entity::from_values(&entities).unwrap(),
            UpsertOptions::default(),
        )
        .await
        .expect("upsert");
    let ok: Vec<&str> = results
        .iter()
        .filter(|r| r.is_ok())
        .map(|r| r.identifier.as_str())
        .collect();
    assert_eq!(ok, ["c", "d", "f"]);
    for r in results.iter().filter(|r| !r.is_ok()) {
        let err = r.outcome.as_ref().unwrap_err();
        assert_eq!(err.status, Some(404), "{r:?}");
    }
    // First pass, then `d`, then `c` (levels), then `a`, `b`, `hangs-on-cycle` one by one.
    let bulk = handle
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/blueprints/node/entities/bulk")
        .count();
    assert_eq!(bulk, 6);
    let snap = handle.snapshot();
    let stored_now: BTreeSet<&str> = snap.entities["node"].keys().map(String::as_str).collect();
    assert_eq!(stored_now, BTreeSet::from(["c", "d", "f"]));
}
