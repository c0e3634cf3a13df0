//! `berth serve` end to end: three tenants, each with its own AWS account (in the local
//! emulator's Organization) and its own Port (a fake Port each), in one worker: each catalog
//! ends with exactly its own entities; a token scoped to one tenant can neither read nor
//! change another; secrets are never returned and never stored in the clear; a resync asked
//! for through the API runs.

mod e2e_support;
mod serve_support;

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use e2e_support::world;
use serve_support::{ADMIN_TOKEN, Server, TenantFixture, serve_config};

const SCOPED: &str = "tenant-zero-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_tenants_each_get_exactly_their_own_catalog() {
    let w = world().await;
    let dir = w.dir.path();
    let mut tenants = Vec::new();
    for i in 0..3 {
        tenants.push(TenantFixture::new(&w, &format!("t{i}"), &w.member(i), dir).await);
    }
    let scoped = [(SCOPED, "t0")];
    let config = serve_config(
        dir,
        "serve.yaml",
        "serve.db",
        &scoped,
        "worker: {pollMillis: 200, portPollSeconds: 0, heartbeatSeconds: 1, leaseSeconds: 5}\n",
    );
    let mut server = Server::start(&config, &scoped, dir.join("serve.log")).await;

    // A document that reaches for the worker's environment is refused, naming the key.
    let mut bad = tenants[0].document(&w);
    bad["config"]["port"]["clientSecret"] = json!({"env": "BERTH_SECRET_KEY"});
    let (st, body) = server.put_tenant("t0", &bad).await;
    assert_eq!(st, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("config.port.clientSecret"),
        "{body}"
    );

    for t in &tenants {
        let (st, body) = server.put_tenant(&t.id, &t.document(&w)).await;
        assert_eq!(st, 201, "{body}");
        assert_eq!(body["tenant"]["version"], 1);
        assert_eq!(
            body["tenant"]["secrets"],
            json!(["awsKeyId", "awsSecret", "portSecret"])
        );
        assert!(!body.to_string().contains("fake-client-secret"), "{body}");
    }
    for t in &tenants {
        let syncs = server.wait_syncs(&t.id, 1, Duration::from_secs(240)).await;
        assert_eq!(
            syncs[0]["status"],
            "completed",
            "{syncs:#?}\n{}",
            server.log_text()
        );
    }
    for t in &tenants {
        t.assert_port_exact(dir).await;
    }
    // Each Port heard only its own tenant's integration.
    for t in &tenants {
        let others: Vec<String> = t
            .port
            .requests()
            .into_iter()
            .filter(|r| {
                r.path.starts_with("/v1/integration/")
                    && !r.path.contains(&format!("berth-{}", t.id))
            })
            .map(|r| r.path)
            .collect();
        assert!(others.is_empty(), "{}: {others:?}", t.id);
    }

    // The scoped token sees and changes only its own tenant.
    let (st, body) = server
        .call(Method::GET, "/v1/tenants", Some(SCOPED), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(body["tenants"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["tenants"][0]["id"], "t0");
    let (st, body) = server
        .call(Method::GET, "/v1/tenants", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!((st, body["tenants"].as_array().unwrap().len()), (200, 3));
    let (st, _) = server
        .call(Method::GET, "/v1/tenants/t0", Some(SCOPED), None)
        .await;
    assert_eq!(st, 200);
    for (method, path, body) in [
        (Method::GET, "/v1/tenants/t1", None),
        (Method::GET, "/v1/tenants/t1/status", None),
        (Method::GET, "/v1/tenants/t1/syncs", None),
        (Method::POST, "/v1/tenants/t1/resync", None),
        (Method::DELETE, "/v1/tenants/t1", None),
        (Method::PUT, "/v1/tenants/t1", Some(tenants[0].document(&w))),
        (Method::PUT, "/v1/tenants/t9", Some(tenants[0].document(&w))),
    ] {
        let (st, b) = server
            .call(method.clone(), path, Some(SCOPED), body.as_ref())
            .await;
        assert_eq!(st, 404, "{method} {path}: {b}");
    }
    let (st, _) = server
        .call(Method::GET, "/v1/tenants/t1", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(
        st, 200,
        "the scoped token's DELETE must not have removed t1"
    );
    let (st, metrics) = server
        .call(Method::GET, "/metrics", Some(SCOPED), None)
        .await;
    assert_eq!(st, 200);
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(metrics.contains("tenant=\"t0\""), "{metrics}");
    assert!(
        !metrics.contains("tenant=\"t1\"") && !metrics.contains("tenant=\"t2\""),
        "{metrics}"
    );
    let (st, metrics) = server
        .call(Method::GET, "/metrics", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(st, 200);
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("berth_resyncs_total{tenant=\"t2\",outcome=\"completed\"} 1"),
        "{metrics}"
    );
    for token in [None, Some("not-a-token-at-all-0000")] {
        let (st, _) = server.call(Method::GET, "/v1/tenants", token, None).await;
        assert_eq!(st, 401);
    }
    let (st, doc) = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(st, 200);
    assert!(doc["paths"]["/v1/tenants/{id}"]["put"].is_object());

    // Secrets: never in a response, never in the database file in the clear.
    let (_, t0) = server
        .call(Method::GET, "/v1/tenants/t0", Some(ADMIN_TOKEN), None)
        .await;
    assert!(!t0.to_string().contains("fake-client-secret"), "{t0}");
    assert_eq!(
        t0["tenant"]["config"]["aws"]["auth"]["secretAccessKey"],
        "***"
    );
    let db = std::fs::read(dir.join("serve.db")).unwrap();
    assert!(
        !db.windows(b"fake-client-secret".len())
            .any(|win| win == b"fake-client-secret"),
        "a tenant secret is stored in the clear"
    );
    assert!(!server.log_text().contains("fake-client-secret"));

    // A resync asked for through the API runs, and (nothing changed) writes nothing.
    tenants[1].port.clear_requests();
    let (st, _) = server
        .call(
            Method::POST,
            "/v1/tenants/t1/resync",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(st, 202);
    let syncs = server.wait_syncs("t1", 2, Duration::from_secs(120)).await;
    assert_eq!(syncs[0]["status"], "completed", "{syncs:#?}");
    let writes = tenants[1]
        .port
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/entities/bulk") || r.path.contains("/delete"))
        .count();
    assert_eq!(writes, 0, "an unchanged tenant's resync wrote to Port");

    assert_eq!(server.terminate(), Some(0), "{}", server.log_text());
}
