//! The fake's request log, reset, state persistence (file, periodic save, admin dump/load), the
//! command-line binary, and the fidelity of its answers to the spec's response schemas.
//! Owns these tests only; must not touch the server's internals (HTTP, the public handle
//! and `berth_fake_port::spec` only) or files outside a temporary directory.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_fake_port::client::{Client, Fake, UA, buckets, credentials};
use berth_fake_port::spec::{Route, Source, spec};
use berth_fake_port::{Config, Snapshot, spawn};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn request_log_counts_calls() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    fake.admin(Method::DELETE, "/_fake/requests", None).await;
    fake.bulk("awsS3Bucket", "upsert=true", buckets(3)).await;
    fake.bulk("awsS3Bucket", "upsert=true", buckets(2)).await;
    fake.get("/v1/blueprints/awsS3Bucket/entities").await;

    let r = fake
        .admin(
            Method::GET,
            "/_fake/requests?method=POST&path_contains=/entities/bulk",
            None,
        )
        .await;
    assert_eq!(r.body["count"], 2);
    let first = &r.body["requests"][0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/v1/blueprints/awsS3Bucket/entities/bulk");
    assert_eq!(first["query"], "upsert=true");
    assert_eq!(first["status"], 200);
    assert_eq!(first["user_agent"], UA);
    let size = serde_json::to_vec(&json!({"entities": buckets(3)}))
        .unwrap()
        .len();
    assert_eq!(first["body_bytes"], size);
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(first["seq"].as_u64().unwrap() < r.body["requests"][1]["seq"].as_u64().unwrap());

    // Admin calls are not logged; the handle sees the same log.
    let all = fake.handle.requests();
    assert_eq!(all.len(), 3);
    let since = all[1].seq;
    let r = fake
        .admin(
            Method::GET,
            &format!("/_fake/requests?since_seq={since}"),
            None,
        )
        .await;
    assert_eq!(r.body["count"], 1);
    let r = fake
        .admin(Method::GET, "/_fake/requests?status=404", None)
        .await;
    assert_eq!(r.body["count"], 0);

    // "No upserts on the second push" is a count over this log.
    fake.handle.clear_requests();
    fake.get("/v1/blueprints").await;
    assert!(
        !fake
            .handle
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/entities/bulk"))
    );
}

#[tokio::test]
async fn reset_clears_everything() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    fake.set_faults(json!({"latency_ms": 1})).await;
    let r = fake.admin(Method::POST, "/_fake/reset", None).await;
    assert_eq!(r.status, 200);
    assert!(fake.handle.requests().is_empty());
    assert_eq!(fake.handle.faults().latency_ms, 0);
    assert_eq!(
        fake.get("/v1/blueprints").await.status,
        401,
        "tokens are gone too"
    );
    let token = fake.new_token().await;
    let r = fake
        .raw(Method::GET, "/v1/blueprints", None, Some(UA), Some(&token))
        .await;
    assert_eq!(r.body["blueprints"], json!([]));
}

#[tokio::test]
async fn state_is_saved_on_shutdown_and_loaded_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("port.json");
    let config = Config {
        state_file: Some(file.clone()),
        ..Config::default()
    };
    let fake = Fake::with(config.clone()).await;
    fake.aws_blueprints().await;
    fake.bulk("awsS3Bucket", "upsert=true", buckets(3)).await;
    fake.post("/v1/integration", json!({"installationId": "my-aws"}))
        .await;
    let before = fake.handle.snapshot();
    let Fake { handle, .. } = fake;
    handle.shutdown().await.unwrap();
    assert!(file.exists());
    let on_disk = Snapshot::load(&file).unwrap();
    assert_eq!(on_disk, before);
    assert_eq!(
        on_disk.entities["awsS3Bucket"]["b1"].datasource.as_deref(),
        Some(UA)
    );

    let again = Fake::with(config).await;
    let r = again.get("/v1/blueprints/awsS3Bucket/entities/b2").await;
    assert_eq!(r.status, 200);
    assert_eq!(again.get("/v1/integration/my-aws").await.status, 200);
    // A restarted fake hands out ingest URLs on its own address.
    let integ = again.get("/v1/integration/my-aws").await.body["integration"].clone();
    assert!(
        integ["metricAttributes"]["ingestUrl"]
            .as_str()
            .unwrap()
            .starts_with(&again.base)
    );
    drop(again);

    // A broken file is refused at start.
    std::fs::write(&file, b"{not json").unwrap();
    let err = spawn(Config {
        state_file: Some(file),
        ..Config::default()
    })
    .await
    .err()
    .expect("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn state_is_saved_periodically_and_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("port.json");
    let fake = Fake::with(Config {
        state_file: Some(file.clone()),
        save_interval: Some(Duration::from_millis(100)),
        ..Config::default()
    })
    .await;
    fake.aws_blueprints().await;
    let mut saved = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if file.exists() && Snapshot::load(&file).unwrap().blueprints.len() == 2 {
            saved = true;
            break;
        }
    }
    assert!(saved, "saved while running");
    fake.bulk("awsS3Bucket", "upsert=true", buckets(1)).await;
    let r = fake.admin(Method::POST, "/_fake/save", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(Snapshot::load(&file).unwrap().entity_count(), 1);

    // Without a file, saving is refused.
    let memory = Fake::start().await;
    assert_eq!(
        memory.admin(Method::POST, "/_fake/save", None).await.status,
        400
    );
}

#[tokio::test]
async fn state_can_be_dumped_and_replaced() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    fake.bulk("awsS3Bucket", "upsert=true", buckets(2)).await;
    let dump = fake.state().await;
    let other = Fake::start().await;
    let r = other.admin(Method::PUT, "/_fake/state", Some(dump)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        other
            .get("/v1/blueprints/awsS3Bucket/entities-count")
            .await
            .body["count"],
        2
    );
    let r = other
        .admin(Method::PUT, "/_fake/state", Some(json!({"format": 99})))
        .await;
    assert_eq!(r.status, 400);
}

#[test]
fn binary_starts_and_prints_its_base_url() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-port"))
        .args(["--port", "0", "--latency-ms", "1", "--state"])
        .arg(dir.path().join("s.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status =
        rt.block_on(async { Client::new(&base).token_request(credentials()).await.status });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, 200);
}

#[test]
fn every_route_compiles_against_the_vendored_spec() {
    let s = spec();
    for route in Route::ALL {
        if let Source::Spec { method, .. } = route.source() {
            let takes_body = matches!(method, "post" | "put" | "patch");
            assert_eq!(
                s.request_schema(route).is_some(),
                takes_body,
                "{route:?} request body"
            );
        }
    }
}

/// The fake's answers match the response schemas of Port's spec.
#[tokio::test]
async fn answers_match_the_spec_response_schemas() {
    let fake = Fake::start().await;
    let check = |method: &str, path: &str, status: u16, body: &Value| {
        // The spec's entity response schema omits the meta fields that the real API returns
        // and Terraform reads (CONTRACT.md §4), so they are left out of the comparison.
        let mut body = body.clone();
        let strip = |e: &mut Value| {
            if let Some(m) = e.as_object_mut() {
                for k in [
                    "blueprint",
                    "createdAt",
                    "createdBy",
                    "updatedAt",
                    "updatedBy",
                ] {
                    m.remove(k);
                }
            }
        };
        if let Some(list) = body.get_mut("entities").and_then(Value::as_array_mut)
            && path.ends_with("search")
        {
            list.iter_mut().for_each(strip);
        }
        if let Some(e) = body.get_mut("entity") {
            strip(e);
        }
        spec()
            .validate_response(method, path, status, &body)
            .unwrap_or_else(|e| panic!("{method} {path} {status}: {e}\n{body}"));
    };
    let r = fake.token_request(credentials()).await;
    check("post", "/v1/auth/access_token", 200, &r.body);
    let r = fake
        .token_request(json!({"clientId": "x", "clientSecret": "y"}))
        .await;
    check("post", "/v1/auth/access_token", 401, &r.body);
    let r = fake.token_request(json!({})).await;
    check("post", "/v1/auth/access_token", 422, &r.body);

    fake.aws_blueprints().await;
    let r = fake.bulk("awsS3Bucket", "upsert=true", buckets(2)).await;
    check(
        "post",
        "/v1/blueprints/{blueprint_identifier}/entities/bulk",
        200,
        &r.body,
    );
    let r = fake
        .bulk(
            "awsS3Bucket",
            "upsert=true",
            json!([{"identifier": "x", "properties": {"region": 1}}, {"identifier": "y", "properties": {"region": "r"}}]),
        )
        .await;
    check(
        "post",
        "/v1/blueprints/{blueprint_identifier}/entities/bulk",
        207,
        &r.body,
    );
    let r = fake.bulk("ghost", "upsert=true", buckets(1)).await;
    check(
        "post",
        "/v1/blueprints/{blueprint_identifier}/entities/bulk",
        404,
        &r.body,
    );
    let r = fake.bulk("awsS3Bucket", "upsert=true", buckets(21)).await;
    check(
        "post",
        "/v1/blueprints/{blueprint_identifier}/entities/bulk",
        422,
        &r.body,
    );
    let r = fake
        .post(
            "/v1/blueprints/awsS3Bucket/bulk/entities/delete?delete_dependents=false",
            json!({"entities": ["b0"]}),
        )
        .await;
    check(
        "post",
        "/v1/blueprints/{blueprint_identifier}/bulk/entities/delete",
        200,
        &r.body,
    );
    let r = fake
        .post(
            "/v1/blueprints/awsS3Bucket/entities/search",
            json!({"limit": 1, "query": {"combinator": "and", "rules": []}}),
        )
        .await;
    check(
        "post",
        "/v1/blueprints/{blueprint_identifier}/entities/search",
        200,
        &r.body,
    );
    let r = fake
        .post(
            "/v1/entities/search",
            json!({"combinator": "and", "rules": []}),
        )
        .await;
    check("post", "/v1/entities/search", 200, &r.body);
    let r = fake
        .post(
            "/v1/blueprints/awsS3Bucket/entities?upsert=true",
            json!({"identifier": "z", "title": "Z", "properties": {"region": "r"}}),
        )
        .await;
    check(
        "post",
        "/v1/blueprints/{blueprint_identifier}/entities",
        201,
        &r.body,
    );
    let r = fake.get("/v1/blueprints/awsS3Bucket").await;
    check("get", "/v1/blueprints/{identifier}", 200, &r.body);
    let r = fake.get("/v1/blueprints").await;
    check("get", "/v1/blueprints", 200, &r.body);
}
