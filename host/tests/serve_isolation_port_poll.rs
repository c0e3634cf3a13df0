//! `berth serve`: one tenant's Port cannot hold back another tenant. Tenant a's Port answers
//! every read of its resync request with 429 and `Retry-After: 120`; while a's worker honours
//! that, tenant b's on-demand resync (`POST /v1/tenants/b/resync`) must still start and finish,
//! well before a's two minutes are up.

mod e2e_support;
mod serve_support;

use std::time::{Duration, Instant};

use berth_fake_port::Faults;
use reqwest::Method;

use e2e_support::world;
use serve_support::{ADMIN_TOKEN, Server, TenantFixture, serve_config};

/// What tenant a's Port asks for; b's resync must be done long before.
const RETRY_AFTER_SECS: u64 = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_says_wait_delays_only_its_own_tenant() {
    let w = world().await;
    let dir = w.dir.path();
    let a = TenantFixture::new(&w, "a", &w.member(0), dir).await;
    let b = TenantFixture::new(&w, "b", &w.member(1), dir).await;
    let config = serve_config(
        dir,
        "serve.yaml",
        "serve.db",
        &[],
        "worker: {pollMillis: 200, portPollSeconds: 1, heartbeatSeconds: 1, leaseSeconds: 5}\n",
    );
    let mut server = Server::start(&config, &[], dir.join("serve.log")).await;
    for t in [&a, &b] {
        let (st, body) = server.put_tenant(&t.id, &t.document(&w)).await;
        assert_eq!(st, 201, "{body}");
    }
    for t in [&a, &b] {
        let syncs = server.wait_syncs(&t.id, 1, Duration::from_secs(240)).await;
        assert_eq!(syncs[0]["status"], "completed", "{syncs:#?}");
    }

    a.port.set_faults(Faults {
        rate_429: 1.0,
        retry_after_secs: RETRY_AFTER_SECS,
        path_contains: Some("/resync-request".into()),
        method: Some("GET".into()),
        ..Faults::default()
    });
    // a's next poll is told to come back in two minutes, and its worker is now waiting.
    let start = Instant::now();
    let told_to_wait = loop {
        if a.port.requests().iter().any(|r| {
            r.path.ends_with("/resync-request") && r.fault.as_deref() == Some("injected_429")
        }) {
            break Instant::now();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "a's Port was never polled\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let (st, body) = server
        .call(
            Method::POST,
            "/v1/tenants/b/resync",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(st, 202, "{body}");
    // Generous on a loaded machine (b's sync takes seconds), yet short of a's two minutes:
    // a worker waiting on a's Port before starting b would not get here in time.
    let budget = Duration::from_secs(RETRY_AFTER_SECS - 20).saturating_sub(told_to_wait.elapsed());
    let syncs = server.wait_syncs("b", 2, budget).await;
    assert_eq!(syncs[0]["status"], "completed", "{syncs:#?}");
    assert!(
        told_to_wait.elapsed() < Duration::from_secs(RETRY_AFTER_SECS),
        "b's resync finished only after a's Retry-After"
    );
    assert_eq!(server.terminate(), Some(0), "{}", server.log_text());
}
