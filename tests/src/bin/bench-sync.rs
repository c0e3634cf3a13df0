//! `cargo run --release -p berth-tests --bin bench-sync [-- SIZES] [--runs N]`
//!
//! The full `berth sync` (the release binary, as a child process) of an Organization of 3 accounts
//! (more above 45,000 resources: the seed makes at most 500 of a kind per account and region) × 3
//! regions × every seeded kind, against the local AWS emulator with 30 ms of latency and 50
//! calls/s per API per account+region, and an in-process fake Port with 20 ms of latency and 20
//! requests/s. SIZES (default `5000,20000`) are resource counts; each gets a freshly seeded
//! emulator and an empty Port; `--runs N` syncs it N times, each into an empty Port with a fresh
//! state file (wall times vary from run to run on a shared machine), after a warm-up sync that is
//! printed but not counted (the emulator's first sync costs it about a second more CPU). Prints,
//! per size: wall time; the lower bound, the slower of AWS's (the busiest account+region+API
//! bucket: accepted calls ÷ its rate) and Port's (entities ÷ 20 per bulk call ÷ its rate); the
//! ratio; the child's CPU seconds and peak RSS. Figures only; nothing is asserted. Needs
//! `scripts/build-plugins` and `cargo build --release -p berth` first.

use std::time::{Duration, Instant};

use anyhow::Context;

use berth_fake_port::{Config, Faults, RateLimit};
use berth_test_kit::emulator::Emulator;
use serde_json::json;

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "us-west-2"];
const ACCOUNTS: usize = 3;
/// The emulator's seed makes at most this many of each kind per account and region; larger
/// sizes add accounts.
const MAX_PER_KIND: usize = 500;
const KINDS: usize = 10;
const AWS_LATENCY_MS: u64 = 30;
const AWS_RATE: f64 = 50.0;
const PORT_LATENCY_MS: u64 = 20;
const PORT_RATE: f64 = 20.0;

use berth_test_kit::repo_root as repo;

/// (peak RSS in KiB, CPU seconds) of a live process, from /proc.
fn sample(pid: u32) -> Option<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    Some((hwm, ticks as f64 / 100.0))
}

async fn one(size: usize, runs: usize) -> anyhow::Result<()> {
    let emu = Emulator::start(&repo().join("tests/aws-emulator")).await?;
    emu.regions(&json!({ "enabled": REGIONS })).await?;
    let accounts = ACCOUNTS.max(size.div_ceil(MAX_PER_KIND * REGIONS.len() * KINDS));
    let per_kind = size.div_ceil(accounts * REGIONS.len() * KINDS).max(1);
    eprintln!("seeding {size} resources ({per_kind} of each kind per account and region)…");
    let t = Instant::now();
    emu.seed(&[
        "--accounts",
        &accounts.to_string(),
        "--regions",
        &REGIONS.join(","),
        "--per-kind",
        &per_kind.to_string(),
        "--no-identifiers",
        "--workers",
        "4",
    ])
    .await?;
    eprintln!("seeded in {:.0} s", t.elapsed().as_secs_f64());
    // Run 0 is a warm-up: the emulator's first sync costs it about a second more CPU than any
    // later one (berth's own CPU is the same), a cost of the Python stand-in that real AWS does
    // not have. It is printed, labelled, and not one of the N runs.
    for run in 0..=runs {
        if run > 0 {
            // Let the emulator's rate-limit buckets refill, as for a sync that starts fresh.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        sync(&emu, size, accounts, run).await?;
    }
    Ok(())
}

/// One `berth sync` of the seeded Organization into an empty Port, and its figures.
async fn sync(emu: &Emulator, size: usize, accounts: usize, run: usize) -> anyhow::Result<()> {
    let (_addr, port) = berth_fake_port::spawn(Config::default()).await?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("secret"), "fake-client-secret")?;
    std::fs::write(dir.path().join("aws-key"), "testing")?;
    let config = dir.path().join("berth.yaml");
    std::fs::write(
        &config,
        format!(
            "port:\n  clientId: {{env: BENCH_PORT_ID}}\n  clientSecret: {{file: secret}}\n  \
             baseUrl: {}\n  integration: {{identifier: bench}}\n\
             aws:\n  auth: {{method: static, accessKeyId: {{file: aws-key}}, secretAccessKey: {{file: aws-key}}}}\n  \
             orgRoleArn: arn:aws:iam::123456789012:role/BerthOrgReader\n  \
             accountRoleName: BerthReadOnly\n  externalId: berth-test-external-id\n  \
             endpointUrl: {}\n\
             mapping: {}\nblueprints: {}\nplugins: {}\nstate: state.db\n{}",
            port.base_url(),
            emu.endpoint,
            repo().join("mappings/default.yaml").display(),
            repo().join("mappings/blueprints").display(),
            repo().join("target/plugins").display(),
            // `BENCH_SYNC_LIMITS='{aws: {initialRate: 40}}'` tries other limits.
            std::env::var("BENCH_SYNC_LIMITS")
                .map(|l| format!("limits: {l}\n"))
                .unwrap_or_default(),
        ),
    )?;
    emu.faults(&json!({ "rules": [
        { "api": "*", "latency_ms": AWS_LATENCY_MS },
        { "api": "*", "rate_limit": AWS_RATE },
    ]}))
    .await?;
    port.set_faults(Faults {
        latency_ms: PORT_LATENCY_MS,
        rate_limit: Some(RateLimit {
            per_second: PORT_RATE,
            burst: None,
        }),
        ..Faults::default()
    });
    emu.reset_stats().await?;
    port.clear_requests();

    let t = Instant::now();
    // `BENCH_WRAP="heaptrack -o /tmp/ht"` runs the child under a profiler (its figures are then
    // the wrapper's).
    let berth = repo().join("target/release/berth");
    let wrap: Vec<String> = std::env::var("BENCH_WRAP")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut child = match wrap.split_first() {
        Some((program, args)) => {
            let mut c = std::process::Command::new(program);
            c.args(args).arg(&berth);
            c
        }
        None => std::process::Command::new(&berth),
    };
    let mut child = child
        .args(["sync", "--config"])
        .arg(&config)
        .env("BENCH_PORT_ID", "fake-client-id")
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // Read while it runs: a child whose stderr pipe fills (a large sync logs every retried
    // 429) would block on it and never finish.
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            use std::io::Read;
            let mut text = String::new();
            let _ = e.read_to_string(&mut text);
            text
        })
    });
    let pid = child.id();
    // The emulator is Python behind one lock: when its CPU time nears the sync's wall time,
    // the stand-in, not berth, sets the pace.
    let emu_cpu = || emu.pid.and_then(sample).map(|(_, cpu)| cpu);
    let emu_cpu_before = emu_cpu();
    let mut last = (0u64, 0.0f64);
    let status = loop {
        if let Some(s) = sample(pid) {
            last = s;
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let wall = t.elapsed().as_secs_f64();
    let emu_cpu_used = emu_cpu()
        .zip(emu_cpu_before)
        .map(|(after, before)| after - before);
    let err = stderr
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();

    let stats = emu.stats().await?;
    let mut aws_bound = (0.0f64, String::new());
    for (scope, apis) in stats["scopes"].as_object().into_iter().flatten() {
        for (api, s) in apis.as_object().into_iter().flatten() {
            let secs = s["ok"].as_u64().unwrap_or(0) as f64 / AWS_RATE;
            if secs > aws_bound.0 {
                aws_bound = (secs, format!("{scope} {api}"));
            }
        }
    }
    let entities: usize = port.snapshot().entities.values().map(|m| m.len()).sum();
    let port_bound = entities.div_ceil(20) as f64 / PORT_RATE;
    let bound = aws_bound.0.max(port_bound);
    let log = port.requests();
    let label = if run == 0 {
        "warm-up sync (not counted: the emulator's first)".to_string()
    } else {
        format!("sync {run}")
    };
    println!(
        "{label} of {size} resources ({accounts} accounts × {} regions × {KINDS} kinds seeded; AWS {AWS_LATENCY_MS} ms, \
         {AWS_RATE}/s per API per account+region; Port {PORT_LATENCY_MS} ms, {PORT_RATE} req/s):",
        REGIONS.len()
    );
    println!(
        "  exit {:?}; {entities} entities in Port; {} Port requests ({} answered 429)",
        status.code(),
        log.len(),
        log.iter().filter(|r| r.status == 429).count()
    );
    // Every request counts against Port's rate, not only the upserts: which kinds were sent.
    let mut by_kind: std::collections::BTreeMap<String, usize> = Default::default();
    for r in &log {
        // Ids and blueprint names in the path are not the kind of request: the fourth
        // segment, and the run and kind after `resync/` and `kind/` in sync-metrics paths.
        let parts: Vec<&str> = r.path.split('/').collect();
        let shape: Vec<&str> = parts
            .iter()
            .enumerate()
            .map(|(i, s)| match i.checked_sub(1).map(|p| parts[p]) {
                _ if i == 3 => "{name}",
                Some("resync" | "kind") => "{id}",
                _ => s,
            })
            .collect();
        *by_kind
            .entry(format!("{} {}", r.method, shape.join("/")))
            .or_default() += 1;
    }
    let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    println!("  Port calls   {}", kinds.join(", "));
    println!("  wall time    {wall:.1} s");
    println!(
        "  lower bound  {bound:.1} s (AWS {:.1} s: {}; Port {port_bound:.1} s)",
        aws_bound.0, aws_bound.1
    );
    println!(
        "  ratio        {:.3} (target ≤ 1.2)",
        wall / bound.max(1e-9)
    );
    println!("  CPU          {:.1} s", last.1);
    if let Some(cpu) = emu_cpu_used {
        println!("  emulator CPU {cpu:.1} s (one Python process)");
    }
    println!(
        "  peak RSS     {:.1} MiB (target ≤ 200)",
        last.0 as f64 / 1024.0
    );
    // The sync's own summary (stage times, calls, retries) says where the time went.
    let summary = std::env::temp_dir().join(format!("bench-sync-{size}.txt"));
    std::fs::write(&summary, &err)?;
    let requests: Vec<String> = log
        .iter()
        .map(|r| serde_json::to_string(r).unwrap_or_default())
        .collect();
    std::fs::write(
        std::env::temp_dir().join(format!("bench-sync-{size}-port.jsonl")),
        requests.join("\n"),
    )?;
    println!("  berth's own summary: {}", summary.display());
    if !status.success() {
        eprintln!("{err}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 1;
    let mut sizes = "5000,20000".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => {
                runs = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .context("--runs takes a number")?
            }
            other => sizes = other.to_string(),
        }
    }
    for size in sizes.split(',').filter_map(|s| s.trim().parse().ok()) {
        one(size, runs).await?;
    }
    Ok(())
}
