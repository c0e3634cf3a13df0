//! `berth serve`: a tenant deleted and created again under the same id is another tenant. The
//! second one's sync must go to its own Port, with its own config: nothing kept for the first
//! (setup, Port client, plugin instances, change-detection state, Port poller, run state) may
//! serve it, although its version starts again at 1.

mod e2e_support;
mod serve_support;

use std::time::{Duration, Instant};

use reqwest::Method;

use e2e_support::world;
use serve_support::{ADMIN_TOKEN, Server, TenantFixture, serve_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_created_again_never_reaches_the_deleted_ones_port() {
    let w = world().await;
    let dir = w.dir.path();
    // One id, two tenants: each its own account, Port and working directory.
    let (dir_a, dir_b) = (dir.join("first"), dir.join("second"));
    for d in [&dir_a, &dir_b] {
        std::fs::create_dir_all(d).unwrap();
    }
    let first = TenantFixture::new(&w, "x", &w.member(0), &dir_a).await;
    let second = TenantFixture::new(&w, "x", &w.member(1), &dir_b).await;
    // Port is polled once after each sync and then not for an hour: every read of Port's
    // resync request in this test comes right after a sync, never in the middle of a step.
    let config = serve_config(
        dir,
        "serve.yaml",
        "serve.db",
        &[],
        "worker: {pollMillis: 200, portPollSeconds: 3600, heartbeatSeconds: 1, leaseSeconds: 5}\n",
    );
    let mut server = Server::start(&config, &[], dir.join("serve.log")).await;

    let (st, body) = server.put_tenant("x", &first.document(&w)).await;
    assert_eq!((st, &body["tenant"]["version"]), (201, &1.into()), "{body}");
    let syncs = server.wait_syncs("x", 1, Duration::from_secs(240)).await;
    assert_eq!(syncs[0]["status"], "completed", "{syncs:#?}");
    first.assert_port_exact(&dir_a).await;
    // The first tenant's poller has read its Port once, after the sync: from here on nothing
    // of the first tenant is under way.
    wait_for_resync_request_read(&first, &server).await;

    let (st, body) = server
        .call(Method::DELETE, "/v1/tenants/x", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(st, 200, "{body}");
    first.port.clear_requests();

    let (st, body) = server.put_tenant("x", &second.document(&w)).await;
    assert_eq!((st, &body["tenant"]["version"]), (201, &1.into()), "{body}");
    let syncs = server.wait_syncs("x", 1, Duration::from_secs(240)).await;
    assert_eq!(syncs.len(), 1, "only the new tenant's history: {syncs:#?}");
    assert_eq!(syncs[0]["status"], "completed", "{syncs:#?}");

    let after_delete = first.port.requests();
    assert!(
        after_delete.is_empty(),
        "the deleted tenant's Port was called after the delete: {:#?}",
        after_delete
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    second.assert_port_exact(&dir_b).await;
    // The new tenant has its own poller, reading its own Port.
    wait_for_resync_request_read(&second, &server).await;
    assert!(first.port.requests().is_empty());

    // Its run counters start from nothing.
    let (st, metrics) = server
        .call(Method::GET, "/metrics", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(st, 200);
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("berth_resyncs_total{tenant=\"x\",outcome=\"completed\"} 1\n"),
        "{metrics}"
    );

    assert_eq!(server.terminate(), Some(0), "{}", server.log_text());
}

/// Waits until `t`'s Port has answered a read of its resync request.
async fn wait_for_resync_request_read(t: &TenantFixture, server: &Server) {
    let start = Instant::now();
    while !t
        .port
        .requests()
        .iter()
        .any(|r| r.method == "GET" && r.path.ends_with("/resync-request"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}: Port's resync request was never read\n{}",
            t.id,
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
