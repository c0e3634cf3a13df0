//! `cargo run --release -p berth-tests --bin bench-serve [-- fair [SMALL [BIG]] | noisy [N]]`
//!
//! `berth serve` (the release binary, one worker, as a child process) against the local AWS
//! emulator (30 ms of latency on every call) and one in-process fake Port per tenant (20 ms,
//! 20 requests/s each). Tenants are written to the worker's store before it starts, so all are
//! due at once when it starts. Prints figures; asserts nothing. Needs `scripts/build-plugins`
//! and `cargo build --release -p berth` first.
//!
//! - `fair` (default 500 small tenants of 100 resources and one of 50,000): p50/p99/max of
//!   the small tenants' delay from due (the worker's start) to their sync's start, the big
//!   tenant's sync time, and resources synced per second overall. Target: p99 < 30 s.
//! - `noisy` (default 20 tenants): the tenants' sync times alone; beside one more tenant of
//!   the same size that behaves (what an extra tenant costs by itself); beside one whose
//!   mapping never finishes on every EC2 instance and whose Lambda plugin traps on some
//!   functions; and alone again (the two runs alone show the noise).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use berth::serve::secrets::SecretKey;
use berth::serve::tenants::{StoredTenant, TenantDoc};
use berth::store::{Store, now_ms, tenant_integration_key};
use berth_fake_port::{Config, FakePortHandle, Faults, RateLimit};
use berth_test_kit::emulator::Emulator;
use serde_json::{Value, json};

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const SHIPPED: [&str; 8] = [
    "ec2-instance",
    "s3-bucket",
    "ecs-cluster",
    "ecs-service",
    "lambda-function",
    "rds-instance",
    "org-account",
    "generic",
];

use berth_test_kit::repo_root as repo;

fn tenant_mapping() -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(repo().join("mappings/default.yaml"))?;
    let mut m: Value = serde_norway::from_str(&text)?;
    // A tenant reads its own accounts, not an Organization's list.
    if let Some(r) = m["resources"].as_array_mut() {
        r.retain(|r| r["kind"] != "AWS::Organizations::Account");
    }
    Ok(m)
}

struct Tenant {
    id: String,
    resources: usize,
    due: i64,
    _port: FakePortHandle,
}

async fn port() -> anyhow::Result<FakePortHandle> {
    let (_a, port) = berth_fake_port::spawn(Config::default()).await?;
    port.set_faults(Faults {
        latency_ms: 20,
        rate_limit: Some(RateLimit {
            per_second: 20.0,
            burst: None,
        }),
        ..Faults::default()
    });
    Ok(port)
}

#[allow(clippy::too_many_arguments)]
fn document(
    port: &FakePortHandle,
    id: &str,
    accounts: &[String],
    regions: &[&str],
    endpoint: &str,
    mapping: &Value,
    plugins: Option<Vec<String>>,
) -> TenantDoc {
    let arns: Vec<String> = accounts
        .iter()
        .map(|a| format!("arn:aws:iam::{a}:role/BerthReadOnly"))
        .collect();
    TenantDoc {
        config: json!({
            "port": {"clientId": "fake-client-id", "clientSecret": {"secret": "port"},
                     "baseUrl": port.base_url(), "integration": {"identifier": format!("berth-{id}")}},
            "aws": {"auth": {"method": "static", "accessKeyId": {"secret": "awsKeyId"},
                             "secretAccessKey": {"secret": "awsSecret"}},
                    "accountRoleArns": arns, "externalId": "berth-test-external-id",
                    "regions": regions, "endpointUrl": endpoint},
            "mapping": mapping,
            "schedule": {"intervalMinutes": 600},
            "limits": {"pluginTimeoutMs": 1500},
        }),
        secrets: [
            ("port", "fake-client-secret"),
            ("awsKeyId", "testing"),
            ("awsSecret", "testing"),
        ]
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .into(),
        weight: None,
        plugins,
    }
}

/// A tenant reading one account in us-east-1 into a Port of its own.
async fn one_account_tenant(
    id: &str,
    account: &str,
    endpoint: &str,
    mapping: &Value,
    plugins: Option<Vec<String>>,
) -> anyhow::Result<(FakePortHandle, TenantDoc)> {
    let p = port().await?;
    let acct = [account.to_string()];
    let doc = document(&p, id, &acct, &["us-east-1"], endpoint, mapping, plugins);
    Ok((p, doc))
}

fn accounts_of(seed: &Value) -> Vec<String> {
    seed["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["id"].as_str().map(str::to_string))
        .collect()
}

/// Writes the tenants into a fresh store, starts `berth serve` on it, waits until each has
/// finished one sync; returns (worker start in Unix ms, per tenant (start, end, status)).
async fn run(
    dir: &Path,
    plugins: &Path,
    docs: &[(String, TenantDoc)],
    syncs: usize,
    slots: usize,
) -> anyhow::Result<(i64, BTreeMap<String, (i64, i64, String)>, f64)> {
    let key = SecretKey::from_base64(KEY)?;
    let db = dir.join("serve.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let store = Store::open(&url).await?;
    for (id, doc) in docs {
        let stored = StoredTenant::merged(None, doc.clone());
        store
            .put_tenant(id, &stored.seal(id, &key), 600 * 60_000, Some(0))
            .await?;
    }
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let config = dir.join("serve.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: {listen}\nstate: serve.db\nplugins: {}\nblueprints: {}\n\
             worker: {{maxConcurrentSyncs: {syncs}, workSlots: {slots}, pollMillis: 100, portPollSeconds: 0}}\n\
             tenantPolicy: {{allowCustomEndpoints: true, allowStaticKeys: true, defaultPlugins: [{}]}}\n",
            plugins.display(),
            repo().join("mappings/blueprints").display(),
            SHIPPED.join(", "),
        ),
    )?;
    let t0 = now_ms();
    let mut child = std::process::Command::new(repo().join("target/release/berth"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("BERTH_SECRET_KEY", KEY)
        .stderr(std::fs::File::create(dir.join("serve.log"))?)
        .spawn()?;
    let pid = child.id();
    let mut done: BTreeMap<String, (i64, i64, String)> = BTreeMap::new();
    let mut rss_kib = 0u64;
    let started = Instant::now();
    while done.len() < docs.len() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(v) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        {
            rss_kib = v;
        }
        for (id, _) in docs {
            if done.contains_key(id) {
                continue;
            }
            if let Some(s) = store
                .sync_history(&tenant_integration_key(id), 1)
                .await?
                .into_iter()
                .next()
                && let Some(end) = s.ended_at
            {
                done.insert(id.clone(), (s.started_at, end, s.status));
            }
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "not finished after an hour: {} of {}",
            done.len(),
            docs.len()
        );
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    // Keep the worker's log for a look at what went wrong, if anything did.
    let kept = std::env::temp_dir().join(format!("bench-serve-{t0}.log"));
    if std::fs::copy(dir.join("serve.log"), &kept).is_ok() {
        eprintln!("worker log: {}", kept.display());
    }
    Ok((t0, done, rss_kib as f64 / 1024.0))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn fair(small: usize, big: usize) -> anyhow::Result<()> {
    let emu = Emulator::start(&repo().join("tests/aws-emulator")).await?;
    emu.regions(&json!({"enabled": ["us-east-1", "eu-west-1"]}))
        .await?;
    eprintln!("seeding 5 accounts × 100 resources for the small tenants…");
    let small_seed = emu
        .seed(&[
            "--accounts",
            "5",
            "--regions",
            "us-east-1",
            "--per-kind",
            "10",
            "--run-id",
            "small",
            "--no-identifiers",
            "--workers",
            "4",
        ])
        .await?;
    let per_kind = big.div_ceil(10 * 2 * 10).clamp(1, 250);
    eprintln!("seeding 10 accounts × 2 regions × {per_kind} of each kind for the big tenant…");
    let t = Instant::now();
    let big_seed = emu
        .seed(&[
            "--accounts",
            "10",
            "--regions",
            "us-east-1,eu-west-1",
            "--per-kind",
            &per_kind.to_string(),
            "--run-id",
            "big",
            "--no-identifiers",
            "--workers",
            "4",
        ])
        .await?;
    eprintln!("seeded in {:.0} s", t.elapsed().as_secs_f64());
    emu.faults(&json!({"rules": [{"api": "*", "latency_ms": 30}]}))
        .await?;
    let mapping = tenant_mapping()?;
    let small_accounts = accounts_of(&small_seed);
    let big_accounts = accounts_of(&big_seed);
    let dir = tempfile::tempdir()?;
    let mut docs = Vec::new();
    let mut tenants = Vec::new();
    let p = port().await?;
    docs.push((
        "big".to_string(),
        document(
            &p,
            "big",
            &big_accounts,
            &["us-east-1", "eu-west-1"],
            &emu.endpoint,
            &mapping,
            None,
        ),
    ));
    tenants.push(Tenant {
        id: "big".into(),
        resources: per_kind * 10 * 2 * 10,
        due: 0,
        _port: p,
    });
    for i in 0..small {
        let id = format!("s{i:04}");
        let account = &small_accounts[i % small_accounts.len()];
        let (p, doc) = one_account_tenant(&id, account, &emu.endpoint, &mapping, None).await?;
        docs.push((id.clone(), doc));
        tenants.push(Tenant {
            id,
            resources: 100,
            due: 0,
            _port: p,
        });
    }
    let slots = std::thread::available_parallelism().map_or(2, |n| n.get() * 4);
    // The default: every due tenant starts at once and `workSlots` shares the work.
    let syncs = 1024;
    let (t0, done, rss) = run(
        dir.path(),
        &repo().join("target/plugins"),
        &docs,
        syncs,
        slots,
    )
    .await?;
    let mut delays: Vec<f64> = tenants
        .iter()
        .filter(|t| t.id != "big")
        .map(|t| (done[&t.id].0 - t0.max(t.due)) as f64 / 1000.0)
        .collect();
    delays.sort_by(f64::total_cmp);
    let end = done.values().map(|d| d.1).max().unwrap_or(t0);
    let total: usize = tenants.iter().map(|t| t.resources).sum();
    let big_t = &done["big"];
    let failed = done.values().filter(|d| d.2 != "completed").count();
    println!(
        "fair share: {small} tenants × 100 resources + 1 × {} resources, all due when the worker starts \
         (1 worker, {syncs} syncs at once, {slots} work slots, AWS 30 ms, each Port 20 ms / 20 req/s):",
        per_kind * 200
    );
    println!(
        "  small tenants' delay from due to sync start: p50 {:.1} s, p99 {:.1} s, max {:.1} s (target p99 < 30 s)",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or(0.0)
    );
    println!(
        "  big tenant: started after {:.1} s, synced in {:.1} s ({})",
        (big_t.0 - t0) as f64 / 1000.0,
        (big_t.1 - big_t.0) as f64 / 1000.0,
        big_t.2
    );
    println!(
        "  all {} syncs done in {:.1} s: {:.0} resources/s; {failed} not completed; worker peak RSS {rss:.0} MiB",
        done.len(),
        (end - t0) as f64 / 1000.0,
        total as f64 / ((end - t0) as f64 / 1000.0)
    );
    Ok(())
}

async fn noisy(n: usize) -> anyhow::Result<()> {
    let emu = Emulator::start(&repo().join("tests/aws-emulator")).await?;
    emu.regions(&json!({"enabled": ["us-east-1", "eu-west-1"]}))
        .await?;
    eprintln!("seeding 5 accounts × 2 regions × 100 resources…");
    let seed = emu
        .seed(&[
            "--accounts",
            "5",
            "--regions",
            "us-east-1,eu-west-1",
            "--per-kind",
            "10",
            "--no-identifiers",
            "--workers",
            "4",
        ])
        .await?;
    emu.faults(&json!({"rules": [{"api": "*", "latency_ms": 30}]}))
        .await?;
    let accounts = accounts_of(&seed);
    let mapping = tenant_mapping()?;
    // Plugins: the shipped ones and one that traps on some Lambda functions.
    let plugin_dir = tempfile::tempdir()?;
    for e in std::fs::read_dir(repo().join("target/plugins"))? {
        let e = e?;
        std::fs::copy(e.path(), plugin_dir.path().join(e.file_name()))?;
    }
    std::fs::copy(
        repo().join("target/test-plugins/trap-lambda.wasm"),
        plugin_dir.path().join("trap-lambda.wasm"),
    )?;
    let mut endless = mapping.clone();
    for r in endless["resources"].as_array_mut().into_iter().flatten() {
        if r["kind"] == "AWS::EC2::Instance" {
            r["port"]["entity"]["mappings"]["properties"]["spin"] = json!("def f: f; f");
        }
    }
    let mut results = Vec::new();
    // Alone; beside one more tenant of the same size that behaves (what one more tenant costs
    // by itself); beside the noisy one; alone again (the two runs alone show the noise).
    let runs = [None, Some(false), Some(true), None];
    for extra in runs {
        let dir = tempfile::tempdir()?;
        let mut docs = Vec::new();
        let mut ports = Vec::new();
        for i in 0..n {
            let id = format!("q{i:03}");
            let account = &accounts[i % accounts.len()];
            let (p, doc) = one_account_tenant(&id, account, &emu.endpoint, &mapping, None).await?;
            docs.push((id, doc));
            ports.push(p);
        }
        if let Some(broken) = extra {
            let mut allowed: Vec<String> = SHIPPED
                .iter()
                .filter(|p| !broken || **p != "lambda-function")
                .map(|p| p.to_string())
                .collect();
            if broken {
                allowed.push("trap-lambda".into());
            }
            let (p, doc) = one_account_tenant(
                "noisy",
                &accounts[n % accounts.len()],
                &emu.endpoint,
                if broken { &endless } else { &mapping },
                Some(allowed),
            )
            .await?;
            docs.push(("noisy".into(), doc));
            ports.push(p);
        }
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get() * 4);
        let (t0, done, _) = run(dir.path(), plugin_dir.path(), &docs, 64, slots).await?;
        let mut times: Vec<f64> = done
            .iter()
            .filter(|(id, _)| id.as_str() != "noisy")
            .map(|(_, d)| (d.1 - d.0) as f64 / 1000.0)
            .collect();
        times.sort_by(f64::total_cmp);
        let last = done
            .iter()
            .filter(|(id, _)| id.as_str() != "noisy")
            .map(|(_, d)| d.1)
            .max()
            .unwrap_or(t0);
        let noisy = done
            .get("noisy")
            .map(|d| ((d.1 - d.0) as f64 / 1000.0, d.2.clone()));
        let ok = done
            .iter()
            .filter(|(id, d)| id.as_str() != "noisy" && d.2 == "completed")
            .count();
        results.push((extra, times, (last - t0) as f64 / 1000.0, noisy, ok));
    }
    println!(
        "noisy neighbour: {n} tenants × 100 resources (1 worker, AWS 30 ms, each Port 20 ms / 20 req/s):"
    );
    for (extra, times, all, noisy, ok) in results {
        println!(
            "  {}: sync time p50 {:.2} s, max {:.2} s; all {n} done {all:.1} s after the start; {ok}/{n} completed{}",
            match extra {
                None => "alone                        ",
                Some(false) => "beside one more, well-behaved",
                Some(true) => "beside the noisy tenant      ",
            },
            percentile(&times, 0.5),
            times.last().copied().unwrap_or(0.0),
            noisy
                .map(|(s, st)| format!(" (the extra tenant: {st} after {s:.1} s)"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    match args.first().map(String::as_str).unwrap_or("fair") {
        "fair" => fair(num(1, 500), num(2, 50_000)).await,
        "noisy" => noisy(num(1, 20)).await,
        other => anyhow::bail!("unknown mode {other:?}: fair [SMALL [BIG]] | noisy [N]"),
    }
}
