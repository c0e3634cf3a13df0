//! `berth serve`: a sync whose lease passed to another worker while it ran (its worker
//! stalled past the lease, say) must not reconcile. Heartbeats are set far apart here, so only
//! the lease check right before reconciliation can notice; without it the sync would delete
//! the entities of two terminated instances on behalf of a tenant it no longer holds.

mod e2e_support;
mod serve_support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use e2e_support::{catalog_of, world};
use serve_support::{ADMIN_TOKEN, Server, TenantFixture, fresh_postgres_database, serve_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_lost_its_lease_reconciles_nothing() {
    let w = world().await;
    let dir = w.dir.path();
    let t = TenantFixture::new(&w, "t0", &w.member(0), dir).await;
    let state = fresh_postgres_database("berth_fence").await;
    let config = serve_config(
        dir,
        "serve.yaml",
        &state,
        &[],
        "workerId: w0\nworker: {pollMillis: 200, portPollSeconds: 0, heartbeatSeconds: 300, \
         leaseSeconds: 600}\n",
    );
    let server = Server::start(&config, &[], dir.join("serve.log")).await;
    let (st, body) = server.put_tenant(&t.id, &t.document(&w)).await;
    assert_eq!(st, 201, "{body}");
    let first = server.wait_syncs(&t.id, 1, Duration::from_secs(300)).await;
    assert_eq!(first[0]["status"], "completed", "{first:#?}");
    let before = catalog_of(&t.port);

    // Two instances go: a sync that reconciled would delete their entities.
    let ids: Vec<String> = w.seed["identifiers"][&t.account]["eu-west-1"]["AWS::EC2::Instance"]
        .as_array()
        .expect("seeded instances")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    for id in &ids {
        assert!(
            before.contains_key(&("cloudResource".to_string(), id.clone())),
            "{id} not in Port: {:?}",
            before.keys()
        );
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    w.emu
        .remove(&t.account, "eu-west-1", "AWS::EC2::Instance", &refs)
        .await
        .unwrap();
    w.emu
        .faults(&json!({"rules": [{"api": "cloudcontrol:*", "latency_ms": 250}]}))
        .await
        .unwrap();
    t.port.clear_requests();
    let (st, body) = server
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/resync", t.id),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert!(st < 300, "{st} {body}");

    // While it runs, another worker takes the tenant (as if this one's lease had run out).
    let start = Instant::now();
    loop {
        let v = server.status(&t.id).await;
        if v["running"] == true {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never ran: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let store = berth::store::Store::open(&state).await.unwrap();
    let later = berth::store::now_ms() + 3 * 3_600_000;
    let thief = store
        .try_lease(&t.id, "thief", later, 600_000)
        .await
        .unwrap();
    assert!(thief.is_some(), "the lease could not be taken over");
    w.emu.faults(&json!({"rules": []})).await.unwrap();

    // The sync ends without reconciling: nothing deleted, Port told it was not completed.
    let ended = server.wait_syncs(&t.id, 2, Duration::from_secs(120)).await;
    let completed = ended.iter().filter(|s| s["status"] == "completed").count();
    assert_eq!(completed, 1, "only the first sync completed: {ended:#?}");
    let start = Instant::now();
    while !server.log_text().contains("lost its right to reconcile") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deletes: Vec<_> = t
        .port
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE" || r.path.contains("/delete"))
        .collect();
    assert!(deletes.is_empty(), "{deletes:#?}");
    let after = catalog_of(&t.port);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
}
