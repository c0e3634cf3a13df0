//! `cargo run --release -p berth-tests --bin bench-push [-- ENTITIES LATENCY_MS RATE]`
//!
//! Pushes ENTITIES (default 50,000) entities with `berth::catalog` to an in-process fake Port that
//! answers after LATENCY_MS (default 20) and allows RATE requests per second (default 20, a
//! token bucket with one second of burst), then pushes the same entities again. Prints the wall
//! times, the lower bound of the first push (ENTITIES ÷ 20 per call ÷ RATE per second) and the
//! ratio, the request counts, and peak RSS. Figures only; nothing is asserted.

use std::time::Instant;

use berth::catalog::port::{ClientConfig, Credentials, Entity, PortClient, UserAgent};
use berth::catalog::push::EntityIn;
use berth::catalog::{PushOptions, PushReport, Pusher};
use berth::mapping::Settings;
use berth::scope::ScopeKey;
use berth::store::Store;
use berth_fake_port::{Config, Faults, RateLimit};
use serde_json::json;

fn arg(i: usize, default: f64) -> f64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Entity `i` as the plugin host hands it to a sync: a record whose body lacks `blueprint`.
fn entity(i: usize) -> EntityIn {
    let region = ["eu-west-1", "us-east-1", "ap-south-1"][i % 3];
    let identifier = format!("arn:aws:lambda:{region}:123456789012:function:fn-{i:06}");
    let body = json!({
        "identifier": identifier,
        "title": format!("fn-{i:06}"),
        "properties": {
            "kind": "AWS::Lambda::Function",
            "region": region,
            "runtime": "python3.12",
            "memory": 128 + (i % 8) * 64,
            "tags": {"team": format!("team-{}", i % 17), "env": "prod"}
        },
        "relations": {"account": "123456789012"}
    });
    EntityIn {
        entity: Entity {
            blueprint: "cloudResource".into(),
            identifier,
            relation_targets: vec!["123456789012".into()],
            body: body.to_string(),
        },
        scope: ScopeKey::new("123456789012", region, "AWS::Lambda::Function"),
        kind: "AWS::Lambda::Function".into(),
        kind_index: 0,
    }
}

async fn push(client: &PortClient, store: &Store, n: usize) -> anyhow::Result<PushReport> {
    // The relation target `account` is not part of the workload.
    let settings = Settings {
        create_missing_related_entities: true,
        ..Settings::default()
    };
    let opts = PushOptions::new("bench@fake", settings);
    let mut p = Pusher::begin(client.clone(), Some(store.clone()), opts).await?;
    for i in 0..n {
        p.add(entity(i)).await?;
    }
    Ok(p.finish().await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = arg(1, 50_000.0) as usize;
    let latency_ms = arg(2, 20.0) as u64;
    let rate = arg(3, 20.0);
    let (_addr, port) = berth_fake_port::spawn(Config::default()).await?;
    let mut cfg = ClientConfig::new(
        port.base_url(),
        Credentials::new("fake-client-id", "fake-client-secret"),
        UserAgent::exporter("aws", "0.1.0", "bench"),
    );
    cfg.concurrency = 8;
    let client = PortClient::new(cfg)?;
    client
        .ensure_blueprints(&[json!({
            "identifier": "cloudResource",
            "title": "Cloud resource",
            "schema": {"properties": {
                "kind": {"type": "string"}, "region": {"type": "string"},
                "runtime": {"type": "string"}, "memory": {"type": "number"},
                "tags": {"type": "object"}
            }},
            "relations": {"account": {"target": "cloudResource", "required": false, "many": false}}
        })])
        .await?;
    port.set_faults(Faults {
        latency_ms,
        rate_limit: Some(RateLimit {
            per_second: rate,
            burst: None,
        }),
        ..Faults::default()
    });
    port.clear_requests();
    let dir = tempfile::tempdir()?;
    let store = Store::open_sqlite(&dir.path().join("state.db")).await?;

    let t = Instant::now();
    let first = push(&client, &store, n).await?;
    let first_s = t.elapsed().as_secs_f64();
    let log = port.requests();
    let bulk = log
        .iter()
        .filter(|r| r.path.ends_with("/entities/bulk"))
        .count();
    let limited = log.iter().filter(|r| r.status == 429).count();
    let bound = n as f64 / 20.0 / rate;
    println!("push of {n} entities to a fake Port ({latency_ms} ms latency, {rate} requests/s):");
    println!(
        "  first push:  {first_s:.1} s (loaded {}, failed {}); lower bound {bound:.1} s; ratio {:.3}",
        first.loaded,
        first.load_failed,
        first_s / bound
    );
    println!(
        "               {} requests ({bulk} bulk upserts), {limited} answered 429",
        log.len()
    );
    port.clear_requests();
    let t = Instant::now();
    let second = push(&client, &store, n).await?;
    let second_s = t.elapsed().as_secs_f64();
    let log = port.requests();
    let bulk = log
        .iter()
        .filter(|r| r.path.ends_with("/entities/bulk"))
        .count();
    println!(
        "  second push (unchanged): {second_s:.2} s; {} unchanged, {bulk} bulk upserts, {} requests in all",
        second.plan.total().unchanged,
        log.len()
    );
    println!(
        "  peak RSS: {}",
        berth_test_kit::peak_rss().map_or("unknown".into(), |kb| format!("{} MiB", kb / 1024))
    );
    Ok(())
}
