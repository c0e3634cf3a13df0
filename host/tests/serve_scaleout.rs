//! `berth serve` scale-out: three worker processes share six tenants through one Postgres.
//! One worker is killed (`kill -9`) in the middle of a sync: its lease expires, another worker
//! takes the tenant over, and every tenant's Port ends with exactly its expected entities. From
//! each fake Port's request log (every call carries its worker's name): no tenant was ever
//! served by two workers at once, and nothing was deleted.

mod e2e_support;
mod serve_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use e2e_support::world;
use serve_support::{Server, TenantFixture, fresh_postgres_database, serve_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_its_tenants_to_the_others_and_nothing_is_lost() {
    let w = world().await;
    let dir = w.dir.path();
    let mut tenants = Vec::new();
    for i in 0..6 {
        tenants.push(TenantFixture::new(&w, &format!("t{i}"), &w.member(i % 3), dir).await);
    }
    let state = fresh_postgres_database("berth_scaleout").await;
    let mut servers = Vec::new();
    for i in 0..3 {
        let config = serve_config(
            dir,
            &format!("serve-{i}.yaml"),
            &state,
            &[],
            &format!(
                "workerId: w{i}\nworker: {{pollMillis: 200, portPollSeconds: 0, heartbeatSeconds: 1, \
                 leaseSeconds: 4, maxConcurrentSyncs: 2}}\n"
            ),
        );
        servers.push(Some(
            Server::start(&config, &[], dir.join(format!("serve-{i}.log"))).await,
        ));
    }
    // Slow AWS down so syncs last long enough to be interrupted: a sync of the seed mapping
    // makes few calls (no lookup its mapping does not read), so each must be slow.
    w.emu
        .faults(&json!({"rules": [{"api": "cloudcontrol:*", "latency_ms": 1000}]}))
        .await
        .unwrap();
    let api = |servers: &Vec<Option<Server>>| -> usize {
        servers.iter().position(Option::is_some).unwrap()
    };
    for t in &tenants {
        let s = servers[0].as_ref().unwrap();
        let (st, body) = s.put_tenant(&t.id, &t.document(&w)).await;
        assert_eq!(st, 201, "{body}");
    }

    // Find a tenant mid-sync and kill its worker.
    let start = Instant::now();
    let (victim_tenant, victim_worker) = loop {
        let s = servers[0].as_ref().unwrap();
        let mut found = None;
        for t in &tenants {
            let v = s.status(&t.id).await;
            if v["running"] == true {
                found = Some((t.id.clone(), v["worker"].as_str().unwrap().to_string()));
                break;
            }
        }
        if let Some(f) = found {
            break f;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no tenant ever ran"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Let it get under way (some Port calls made), then kill the worker outright.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let idx: usize = victim_worker.trim_start_matches('w').parse().unwrap();
    let mut dead = servers[idx].take().unwrap();
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    w.emu.faults(&json!({"rules": []})).await.unwrap();

    let live = servers[api(&servers)].as_ref().unwrap();
    for t in &tenants {
        let syncs = live.wait_syncs(&t.id, 1, Duration::from_secs(300)).await;
        assert!(
            syncs.iter().any(|s| s["status"] == "completed"),
            "{}: {syncs:#?}",
            t.id
        );
    }
    for t in &tenants {
        t.assert_port_exact(dir).await;
    }

    // From each Port's request log: the workers that served it took turns, never overlapped
    // (each worker's calls form one unbroken run), and nothing was deleted.
    let mut served_by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &tenants {
        let log = t.port.requests();
        let mut runs: Vec<String> = Vec::new();
        for r in &log {
            let worker = r
                .worker
                .clone()
                .unwrap_or_else(|| panic!("{}: a call without a worker: {r:?}", t.id));
            if runs.last() != Some(&worker) {
                assert!(
                    !runs.contains(&worker),
                    "{}: worker {worker} came back after {runs:?}: two workers served it at once",
                    t.id
                );
                runs.push(worker);
            }
        }
        let deletes = log
            .iter()
            .filter(|r| r.method == "DELETE" || r.path.contains("/delete"))
            .count();
        assert_eq!(deletes, 0, "{}: something was deleted", t.id);
        served_by.insert(t.id.clone(), runs);
    }
    let victim_runs = &served_by[&victim_tenant];
    assert_eq!(
        victim_runs.first(),
        Some(&victim_worker),
        "{victim_tenant}: {victim_runs:?}"
    );
    assert!(
        victim_runs.len() == 2,
        "{victim_tenant} was taken over after {victim_worker} died: {served_by:?}"
    );
    for s in servers.iter_mut().flatten() {
        assert_eq!(s.terminate(), Some(0), "{}", s.log_text());
    }
}
