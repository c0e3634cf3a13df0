//! Fault injection of the fake Port: injected 429 (with `x-ratelimit-*` and `Retry-After`), a
//! real token-bucket rate limit, 5xx, forced 413, an early 401, latency, scoping, the admin API.
//! Owns these tests only; must not touch the server's internals (HTTP, the public handle
//! and `berth_fake_port::spec` only) or files outside a temporary directory.

use std::time::{Duration, Instant};

use berth_fake_port::client::{Fake, buckets};
use berth_fake_port::{Config, Faults, RateLimit};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn injected_429_carries_rate_limit_headers() {
    let fake = Fake::start().await;
    fake.set_faults(json!({"rate_429": 1.0, "retry_after_secs": 2}))
        .await;
    let r = fake.get("/v1/blueprints").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["ok"], false);
    assert!(r.body["error"].is_string());
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(r.header("x-ratelimit-reset"), Some("2"));
    assert!(r.header("x-ratelimit-limit").is_some());
    assert!(r.header("x-ratelimit-period").is_some());
    let log = fake.handle.requests();
    assert_eq!(log.last().unwrap().fault.as_deref(), Some("injected_429"));

    // Epoch-style reset.
    fake.set_faults(json!({"rate_429": 1.0, "retry_after_secs": 2, "reset_style": "epoch"}))
        .await;
    let r = fake.get("/v1/blueprints").await;
    let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset > 1_000_000_000, "{reset}");
}

async fn pattern(fake: &Fake, seed: u64, n: usize) -> Vec<u16> {
    fake.set_faults(json!({"rate_429": 0.3, "seed": seed, "retry_after_secs": 0}))
        .await;
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(fake.get("/v1/blueprints").await.status);
    }
    out
}

#[tokio::test]
async fn a_seeded_fraction_of_calls_gets_429() {
    let fake = Fake::start().await;
    let a = pattern(&fake, 42, 300).await;
    let limited = a.iter().filter(|s| **s == 429).count();
    assert!((60..=120).contains(&limited), "{limited} of 300");
    assert!(a.iter().all(|s| *s == 200 || *s == 429));
    let b = pattern(&fake, 42, 300).await;
    assert_eq!(a, b, "same seed, same sequence");
    let c = pattern(&fake, 7, 300).await;
    assert_ne!(a, c);
}

#[tokio::test]
async fn real_rate_limit_is_a_token_bucket() {
    let fake = Fake::with(Config {
        faults: Faults {
            rate_limit: Some(RateLimit {
                per_second: 4.0,
                burst: Some(4),
            }),
            ..Faults::default()
        },
        ..Config::default()
    })
    .await;
    // The token call above used one token.
    let mut remaining = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = fake.get("/v1/blueprints").await;
        statuses.push(r.status);
        remaining.push(r.header("x-ratelimit-remaining").unwrap().to_string());
        assert_eq!(r.header("x-ratelimit-limit"), Some("4"));
        assert_eq!(r.header("x-ratelimit-period"), Some("1"));
        assert!(r.header("x-ratelimit-reset").is_some());
    }
    assert_eq!(statuses[..3], [200, 200, 200]);
    assert_eq!(statuses[3], 429, "{statuses:?}");
    assert_eq!(remaining[..3], ["2", "1", "0"]);
    let limited = fake.get("/v1/blueprints").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert!(
        fake.handle
            .requests()
            .iter()
            .any(|r| r.fault.as_deref() == Some("rate_limited"))
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(fake.get("/v1/blueprints").await.status, 200);

    // Over a longer run, successes stay within burst + rate × time.
    fake.set_faults(json!({"rate_limit": {"per_second": 20.0, "burst": 5}}))
        .await;
    let started = Instant::now();
    let mut ok = 0;
    while started.elapsed() < Duration::from_millis(1000) {
        if fake.get("/v1/blueprints").await.status == 200 {
            ok += 1;
        }
    }
    let bound = 5.0 + 20.0 * started.elapsed().as_secs_f64();
    assert!(f64::from(ok) <= bound + 1.0, "{ok} > {bound}");
    assert!(ok >= 15, "{ok}");
}

#[tokio::test]
async fn server_errors_before_and_after_the_write() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    fake.set_faults(json!({"rate_5xx": 1.0})).await;
    let r = fake.bulk("awsS3Bucket", "upsert=true", buckets(1)).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["ok"], false);
    fake.set_faults(json!({})).await;
    assert_eq!(
        fake.get("/v1/blueprints/awsS3Bucket/entities/b0")
            .await
            .status,
        404
    );

    fake.set_faults(json!({"rate_5xx": 1.0, "status_5xx": 502, "fail_after_write": true}))
        .await;
    let r = fake.bulk("awsS3Bucket", "upsert=true", buckets(1)).await;
    assert_eq!(r.status, 502);
    fake.set_faults(json!({})).await;
    assert_eq!(
        fake.get("/v1/blueprints/awsS3Bucket/entities/b0")
            .await
            .status,
        200,
        "the write stayed"
    );

    fake.set_faults(json!({"rate_5xx": 0.5, "seed": 3})).await;
    let mut errors = 0;
    for _ in 0..100 {
        if fake.get("/v1/blueprints").await.status == 503 {
            errors += 1;
        }
    }
    assert!((30..=70).contains(&errors), "{errors}");
}

#[tokio::test]
async fn forced_413_by_size_and_for_the_next_request() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    fake.set_faults(json!({"force_413_over_bytes": 1000})).await;
    let r = fake.bulk("awsS3Bucket", "upsert=true", buckets(2)).await;
    assert_eq!(r.status, 200);
    let r = fake.bulk("awsS3Bucket", "upsert=true", buckets(20)).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.body["ok"], false);
    assert_eq!(
        fake.handle.requests().last().unwrap().fault.as_deref(),
        Some("forced_413")
    );

    fake.set_faults(json!({"force_413_next": 1})).await;
    assert_eq!(
        fake.get("/v1/blueprints").await.status,
        200,
        "no body, no 413"
    );
    assert_eq!(
        fake.bulk("awsS3Bucket", "upsert=true", buckets(1))
            .await
            .status,
        413
    );
    assert_eq!(
        fake.bulk("awsS3Bucket", "upsert=true", buckets(1))
            .await
            .status,
        200
    );
    assert_eq!(
        fake.admin(Method::GET, "/_fake/faults", None).await.body["faults"]["force_413_next"],
        0
    );
}

#[tokio::test]
async fn early_401_with_a_valid_token() {
    let fake = Fake::start().await;
    fake.set_faults(json!({"early_401": 1})).await;
    // The token route itself is not affected.
    let token = fake.new_token().await;
    assert_eq!(token, fake.token);
    let r = fake.get("/v1/blueprints").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "unauthorized");
    assert_eq!(
        fake.handle.requests().last().unwrap().fault.as_deref(),
        Some("early_401")
    );
    assert_eq!(fake.get("/v1/blueprints").await.status, 200, "only once");
}

#[tokio::test]
async fn latency_is_added_to_every_port_call() {
    let fake = Fake::start().await;
    fake.set_faults(json!({"latency_ms": 150})).await;
    let t = Instant::now();
    assert_eq!(fake.get("/v1/blueprints").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert!(fake.handle.requests().last().unwrap().duration_ms >= 150.0);
    // Requests wait in parallel, not in a queue.
    let t = Instant::now();
    let calls: Vec<_> = (0..8).map(|_| fake.get("/v1/blueprints")).collect();
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.status, 200);
    }
    assert!(
        t.elapsed() < Duration::from_millis(8 * 150),
        "{:?}",
        t.elapsed()
    );
    // The admin API is never delayed.
    let t = Instant::now();
    fake.admin(Method::GET, "/_fake/faults", None).await;
    assert!(t.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn faults_can_be_scoped_to_a_path_and_method() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    fake.set_faults(json!({"rate_5xx": 1.0, "path_contains": "/entities/bulk", "method": "POST"}))
        .await;
    assert_eq!(fake.get("/v1/blueprints").await.status, 200);
    assert_eq!(
        fake.get("/v1/blueprints/awsS3Bucket/entities/bulk")
            .await
            .status,
        404
    );
    assert_eq!(
        fake.bulk("awsS3Bucket", "upsert=true", buckets(1))
            .await
            .status,
        503
    );
}

#[tokio::test]
async fn admin_faults_api() {
    let fake = Fake::start().await;
    let r = fake
        .admin(
            Method::PATCH,
            "/_fake/faults",
            Some(json!({"latency_ms": 5})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = fake
        .admin(
            Method::PATCH,
            "/_fake/faults",
            Some(json!({"rate_429": 0.1})),
        )
        .await;
    assert_eq!(r.body["faults"]["latency_ms"], 5);
    assert_eq!(r.body["faults"]["rate_429"], 0.1);
    let r = fake
        .admin(Method::PUT, "/_fake/faults", Some(json!({"rate_429": 2.0})))
        .await;
    assert_eq!(r.status, 400);
    let r = fake
        .admin(Method::PUT, "/_fake/faults", Some(json!({"rate_492": 0.1})))
        .await;
    assert_eq!(r.status, 400, "unknown fields are refused: {}", r.body);
    let r = fake.admin(Method::DELETE, "/_fake/faults", None).await;
    assert_eq!(r.body["faults"]["latency_ms"], 0);
    let f: Faults = serde_json::from_value(r.body["faults"].clone()).unwrap();
    assert_eq!(f, Faults::default());
    assert_eq!(fake.handle.faults(), Faults::default());
    let _: Value = fake.admin(Method::GET, "/_fake/faults", None).await.body;
}
