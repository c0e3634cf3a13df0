//! `bench-discover`: discovery against the emulator under a rate limit and latency, with the
//! figures that say how close it gets to what the limit allows.
//!
//! `cargo run --release -p berth-tests --bin bench-discover -- [--resources 20000]
//! [--accounts 3] [--regions us-east-1,eu-west-1,us-west-2] [--latency-ms 30]
//! [--rate-limit 50] [--endpoint URL [--no-seed]]`
//!
//! Seeds ~N resources over accounts × regions (the emulator's seed command),
//! injects latency and a per-API, per-account+region rate limit (its admin
//! API), runs discovery, and prints wall time, API calls, the lower bound
//! (for each account+region and API: accepted calls ÷ allowed rate; the
//! longest one), the ratio to it, and peak RSS. Must not assert anything:
//! figures only.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use berth::discovery::config::{AuthConfig, AuthMethod, Secret};
use berth::discovery::{AwsConfig, AwsLimits, AwsTenant, Event, KindPlan, discover};
use berth_test_kit::Emulator;

/// The ten kinds the emulator seeds.
const SEEDED_KINDS: [&str; 10] = [
    "AWS::S3::Bucket",
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::Instance",
    "AWS::ECS::Cluster",
    "AWS::ECS::TaskDefinition",
    "AWS::ECS::Service",
    "AWS::Lambda::Function",
    "AWS::RDS::DBInstance",
];

/// Kinds read with `GetResource` too, as in the default mapping.
const GET_KINDS: [&str; 4] = [
    "AWS::S3::Bucket",
    "AWS::ECS::Cluster",
    "AWS::Lambda::Function",
    "AWS::RDS::DBInstance",
];

/// How the bench is shaped.
#[derive(Debug, Clone)]
struct BenchOptions {
    /// An emulator already running (else one is started).
    endpoint: Option<String>,
    emulator_dir: Option<PathBuf>,
    /// Resources to seed, spread evenly over accounts × regions × kinds.
    resources: usize,
    accounts: usize,
    regions: Vec<String>,
    latency_ms: u64,
    /// Calls/s allowed per API per account+region.
    rate_limit: f64,
    /// Use what an earlier run seeded (with `endpoint`).
    no_seed: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            endpoint: None,
            emulator_dir: None,
            resources: 20_000,
            accounts: 3,
            regions: vec!["us-east-1".into(), "eu-west-1".into(), "us-west-2".into()],
            latency_ms: 30,
            rate_limit: 50.0,
            no_seed: false,
        }
    }
}

async fn run(o: BenchOptions) -> anyhow::Result<()> {
    let dir = o.emulator_dir.clone().unwrap_or_else(Emulator::default_dir);
    let emu = match &o.endpoint {
        Some(e) => Emulator::connect(e, &dir).await?,
        None => {
            eprintln!("starting the emulator ({})…", dir.display());
            Emulator::start(&dir).await?
        }
    };
    let regions = o.regions.join(",");
    let seed_summary_path = std::env::temp_dir().join("berth-bench-discover-seed.json");
    let summary: Value = if o.no_seed {
        let text = std::fs::read_to_string(&seed_summary_path).with_context(|| {
            format!(
                "--no-seed needs the summary of an earlier run in {}",
                seed_summary_path.display()
            )
        })?;
        serde_json::from_str(&text)?
    } else {
        let per_kind = o
            .resources
            .div_ceil(o.accounts.max(1) * o.regions.len().max(1) * SEEDED_KINDS.len())
            .clamp(1, 250);
        emu.post("/_berth/reset", &json!({})).await?;
        emu.regions(&json!({ "enabled": o.regions })).await?;
        eprintln!(
            "seeding {} accounts × {} regions × {} kinds × {per_kind} (takes minutes)…",
            o.accounts,
            o.regions.len(),
            SEEDED_KINDS.len()
        );
        let t = Instant::now();
        let s = emu
            .seed(&[
                "--accounts",
                &o.accounts.to_string(),
                "--regions",
                &regions,
                "--per-kind",
                &per_kind.to_string(),
                "--no-identifiers",
                "--workers",
                "4",
                "--output",
                &seed_summary_path.display().to_string(),
            ])
            .await?;
        eprintln!(
            "seeded {} resources ({} discoverable) in {:.1} s",
            s["totals"]["created_all"],
            s["totals"]["present_all"],
            t.elapsed().as_secs_f64()
        );
        s
    };
    let role_arns: Vec<String> = summary["accounts"]
        .as_array()
        .context("seed summary without accounts")?
        .iter()
        .filter_map(|a| a["read_role_arn"].as_str().map(str::to_string))
        .collect();
    let external_id = summary["accounts"][0]["external_id"]
        .as_str()
        .map(str::to_string);

    emu.faults(&json!({ "rules": [
        { "api": "*", "latency_ms": o.latency_ms },
        { "api": "*", "rate_limit": o.rate_limit },
    ]}))
    .await?;
    emu.reset_stats().await?;

    let cfg = AwsConfig {
        auth: AuthConfig {
            method: AuthMethod::Static,
            access_key_id: Some("testing".into()),
            secret_access_key: Some(Secret::new("testing")),
            ..AuthConfig::default()
        },
        account_role_arns: role_arns,
        external_id,
        endpoint_url: Some(emu.endpoint.clone()),
        ..AwsConfig::default()
    };
    let kinds: Vec<KindPlan> = SEEDED_KINDS
        .iter()
        .map(|k| KindPlan {
            kind: k.to_string(),
            use_get_resource_api: GET_KINDS.contains(k),
            region_policies: Vec::new(),
        })
        .collect();
    let limits = AwsLimits::default();
    let channel = limits.channel_items;
    let tenant = AwsTenant::new("bench", cfg, limits)?;

    let t0 = Instant::now();
    let sync = tenant.start_sync().await?;
    let (tx, mut rx) = mpsc::channel(channel);
    let run = tokio::spawn(discover(sync, kinds, tx));
    let mut items = 0u64;
    while let Some(ev) = rx.recv().await {
        if matches!(ev, Event::Item(_)) {
            items += 1;
        }
    }
    let report = run.await?;
    let wall = t0.elapsed().as_secs_f64();
    let stats = emu.stats().await?;
    emu.faults(&json!({ "rules": [] })).await?;

    // Lower bound: each account+region+API bucket admits `rate` calls/s, so
    // the accepted calls of the busiest one need at least ok / rate seconds.
    let mut bound = (0.0f64, String::new(), 0u64, 0.0f64);
    let mut total_ok = 0u64;
    if let Some(scopes) = stats["scopes"].as_object() {
        for (scope, apis) in scopes {
            for (api, s) in apis.as_object().into_iter().flatten() {
                let ok = s["ok"].as_u64().unwrap_or(0);
                total_ok += ok;
                let secs = ok as f64 / o.rate_limit;
                if secs > bound.0 {
                    // How long the emulator saw this bucket busy, first call to last.
                    let span =
                        s["last"].as_f64().unwrap_or(0.0) - s["first"].as_f64().unwrap_or(0.0);
                    bound = (secs, format!("{scope} {api}"), ok, span);
                }
            }
        }
    }
    let c = report.calls();
    let seeded = summary["totals"]["present_all"].as_u64().unwrap_or(0);
    println!(
        "discover bench: {} accounts × {} regions × {} kinds, {} ms latency, {} calls/s per API per account+region",
        o.accounts,
        o.regions.len(),
        SEEDED_KINDS.len(),
        o.latency_ms,
        o.rate_limit
    );
    println!("  items discovered      {items} (seeded, discoverable: {seeded})");
    println!(
        "  scopes                {} ({} complete)",
        report.scopes.len(),
        report
            .scopes
            .iter()
            .filter(|s| s.status.is_complete())
            .count()
    );
    println!(
        "  wall time             {wall:.2} s ({:.0} items/s)",
        items as f64 / wall.max(1e-9)
    );
    println!(
        "  API calls             {} by Berth ({} retries, {} throttled); {} seen by the emulator, {} accepted",
        c.calls, c.retries, c.throttles, stats["total"], total_ok
    );
    println!(
        "  lower bound           {:.2} s ({} accepted calls in {}, which was busy for {:.2} s)",
        bound.0, bound.2, bound.1, bound.3
    );
    println!(
        "  ratio                 {:.2}× (target ≤ 1.2×)",
        wall / bound.0.max(1e-9)
    );
    println!(
        "  peak RSS              {}",
        berth_test_kit::peak_rss().map_or_else(
            || "n/a".to_string(),
            |b| format!("{:.1} MiB", b as f64 / 1024.0)
        )
    );
    if !report.is_complete() {
        eprint!("{}", report.render());
    }
    let mut slow: Vec<_> = report.scopes.iter().collect();
    slow.sort_by_key(|s| std::cmp::Reverse(s.elapsed));
    for s in slow.iter().take(3) {
        println!(
            "  slow scope            {} {:.2} s, {} items, {} calls, {} throttles",
            s.key,
            s.elapsed.as_secs_f64(),
            s.items,
            s.calls.calls,
            s.calls.throttles
        );
    }
    let snapshot = tenant.limiter().snapshot();
    let busiest = snapshot.iter().max_by_key(|b| b.accepted);
    if let Some(b) = busiest {
        println!(
            "  busiest bucket        {} {} {}: {} calls, {} throttled, {} rate cuts, rate now {:.1}/s",
            b.key.account_id, b.key.region, b.key.api, b.calls, b.throttled, b.decreases, b.rate
        );
    }
    Ok(())
}

/// The options from `--name value` pairs (and the flag `--no-seed`).
fn options() -> anyhow::Result<BenchOptions> {
    let mut o = BenchOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--no-seed" {
            o.no_seed = true;
            continue;
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| anyhow::anyhow!("{flag} {value}: {e}");
        match flag.as_str() {
            "--endpoint" => o.endpoint = Some(value.clone()),
            "--emulator-dir" => o.emulator_dir = Some(PathBuf::from(&value)),
            "--resources" => o.resources = value.parse().map_err(|e| bad(&e))?,
            "--accounts" => o.accounts = value.parse().map_err(|e| bad(&e))?,
            "--regions" => o.regions = value.split(',').map(str::to_owned).collect(),
            "--latency-ms" => o.latency_ms = value.parse().map_err(|e| bad(&e))?,
            "--rate-limit" => o.rate_limit = value.parse().map_err(|e| bad(&e))?,
            _ => anyhow::bail!(
                "unknown argument {flag} (see the doc at the top of bench-discover.rs)"
            ),
        }
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run(options()?).await
}
