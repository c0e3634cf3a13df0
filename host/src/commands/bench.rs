//! `berth bench`: workloads that print figures (never asserted in tests). The benchmarks
//! that need the AWS emulator or the fake Port are `tests/src/bin/bench-*`.
//!
//! `berth bench map` generates raw items of the seed's kinds (about 1.2 KB
//! each), maps them with a mapping in the sandbox, and prints entities/s on
//! one core and on all cores, the full pipeline's rate, and what a fresh
//! plugin instance per batch costs. Owns only workload generation and
//! timing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use berth::limits::Limits;
use berth::mapping::MappingFile;
use berth::pipeline::map::{self, MapOptions};
use berth::plugin::lookup::Offline;
use berth::plugin::{BatchRequest, Entry, LoadedPlugin, Registry, Tenant};

use super::{Global, open_registry};

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Entities/s for the default mapping over generated items, in the
    /// sandbox, on one core and on all cores; and the cost of a fresh
    /// instance per batch.
    Map {
        #[arg(long, default_value_t = 100_000)]
        items: usize,
        #[arg(long, default_value = "mappings/default.yaml")]
        mapping: PathBuf,
    },
    /// Print COUNT generated raw items (the bench workload) as JSON lines,
    /// e.g. to measure `berth map`'s memory on a large input.
    Items {
        #[arg(long, default_value_t = 100_000)]
        count: usize,
    },
}

pub(crate) async fn run(g: &Global, command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Items { count } => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for i in 0..count {
                writeln!(out, "{}", raw_item(i))?;
            }
            out.flush()?;
        }
        BenchCommand::Map { items, mapping } => {
            let registry = open_registry(&g.plugins).await?;
            map(registry, &mapping, items).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

const KINDS: [&str; 6] = [
    "AWS::S3::Bucket",
    "AWS::EC2::Instance",
    "AWS::ECS::Cluster",
    "AWS::Lambda::Function",
    "AWS::RDS::DBInstance",
    "AWS::Organizations::Account",
];

fn pick(options: &[&'static str], i: usize) -> &'static str {
    options[i % options.len()]
}

/// A deterministic raw item of the seed's kinds, about 1.2 KB.
fn raw_item(i: usize) -> serde_json::Value {
    let kind = KINDS[i % KINDS.len()];
    let account = format!("{:012}", 100_000_000_000u64 + (i % 3) as u64);
    let region = ["us-east-1", "eu-west-1", "ap-northeast-1"][i % 3];
    let tags = json!([
        {"Key": "team", "Value": format!("team-{}", i % 17)},
        {"Key": "env", "Value": pick(&["prod", "staging", "dev"], i)},
        {"Key": "cost-center", "Value": format!("cc-{:05}", i % 9973)},
        {"Key": "owner", "Value": format!("owner{}@example.com", i % 101)},
    ]);
    let (id, props) = match kind {
        "AWS::S3::Bucket" => {
            let name = format!("bucket-{i:08}-data");
            (
                name.clone(),
                json!({
                    "BucketName": name,
                    "Arn": format!("arn:aws:s3:::{name}"),
                    "RegionalDomainName": format!("{name}.s3.{region}.amazonaws.com"),
                    "DomainName": format!("{name}.s3.amazonaws.com"),
                    "WebsiteURL": format!("http://{name}.s3-website-{region}.amazonaws.com"),
                    "BucketEncryption": {"ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": true}]},
                    "PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true},
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                    "Tags": tags,
                }),
            )
        }
        "AWS::EC2::Instance" => {
            let iid = format!("i-{i:017x}");
            (
                iid.clone(),
                json!({
                    "InstanceId": iid,
                    "InstanceType": pick(&["t3.micro", "m5.large", "c6g.xlarge"], i),
                    "ImageId": format!("ami-{:017x}", i * 7),
                    "SubnetId": format!("subnet-{:017x}", i % 40),
                    "VpcId": format!("vpc-{:017x}", i % 5),
                    "SecurityGroupIds": [format!("sg-{:017x}", i % 30), format!("sg-{:017x}", i % 31)],
                    "PrivateIpAddress": format!("10.{}.{}.{}", i % 256, (i / 256) % 256, i % 250 + 1),
                    "PrivateDnsName": format!("ip-10-0-{}-{}.ec2.internal", i % 256, i % 250),
                    "AvailabilityZone": format!("{region}a"),
                    "Monitoring": false,
                    "EbsOptimized": true,
                    "KeyName": "ops",
                    "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 30, "VolumeType": "gp3", "DeleteOnTermination": true}}],
                    "Tags": tags,
                }),
            )
        }
        "AWS::ECS::Cluster" => {
            let name = format!("cluster-{i}");
            (
                name.clone(),
                json!({
                    "ClusterName": name,
                    "Arn": format!("arn:aws:ecs:{region}:{account}:cluster/{name}"),
                    "CapacityProviders": ["FARGATE", "FARGATE_SPOT"],
                    "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
                    "Configuration": {"ExecuteCommandConfiguration": {"Logging": "DEFAULT"}},
                    "DefaultCapacityProviderStrategy": [{"CapacityProvider": "FARGATE", "Weight": 1, "Base": 0}],
                    "ServiceConnectDefaults": {"Namespace": format!("arn:aws:servicediscovery:{region}:{account}:namespace/ns-{i:016x}")},
                    "Tags": tags,
                }),
            )
        }
        "AWS::Lambda::Function" => {
            let name = format!("function-{i}");
            (
                name.clone(),
                json!({
                    "FunctionName": name,
                    "Arn": format!("arn:aws:lambda:{region}:{account}:function:{name}"),
                    "Runtime": pick(&["python3.12", "nodejs20.x", "provided.al2023"], i),
                    "MemorySize": 128 << (i % 4),
                    "Timeout": 30 + i % 60,
                    "Handler": "app.handler",
                    "Role": format!("arn:aws:iam::{account}:role/lambda-{}", i % 11),
                    "Architectures": ["arm64"],
                    "PackageType": "Zip",
                    "Environment": {"Variables": {"LOG_LEVEL": "info", "STAGE": "prod"}},
                    "TracingConfig": {"Mode": "PassThrough"},
                    "EphemeralStorage": {"Size": 512},
                    "Tags": tags,
                }),
            )
        }
        "AWS::RDS::DBInstance" => {
            let name = format!("db-{i}");
            (
                name.clone(),
                json!({
                    "DBInstanceIdentifier": name,
                    "Arn": format!("arn:aws:rds:{region}:{account}:db:{name}"),
                    "Engine": pick(&["postgres", "mysql", "aurora-postgresql"], i),
                    "EngineVersion": "16.3",
                    "DBInstanceClass": "db.r6g.large",
                    "AllocatedStorage": "100",
                    "MultiAZ": i.is_multiple_of(2),
                    "StorageEncrypted": true,
                    "Endpoint": {"Address": format!("{name}.abcdefghijkl.{region}.rds.amazonaws.com"), "Port": "5432"},
                    "VPCSecurityGroups": [format!("sg-{:017x}", i % 30)],
                    "Tags": tags,
                }),
            )
        }
        _ => {
            let id = format!("{:012}", 200_000_000_000u64 + i as u64);
            return json!({
                "Id": id,
                "Arn": format!("arn:aws:organizations::{account}:account/o-abcdefghij/{id}"),
                "Email": format!("aws+{i}@example.com"),
                "Name": format!("account {i} — ünïcode"),
                "Status": "ACTIVE",
                "JoinedMethod": "CREATED",
                "JoinedTimestamp": "2023-04-05 06:07:08.123000+00:00",
                "Tags": tags,
                "Notes": "x".repeat(960),
                "__Kind": kind,
                "__Region": region,
                "__AccountId": account,
            });
        }
    };
    let mut props = props;
    // Padding to the ~1.2 KB of a typical Cloud Control item: the free-form
    // parts (descriptions, policies) that mappings rarely read.
    props["Metadata"] = json!({
        "CreatedBy": format!("arn:aws:iam::{account}:role/provisioner"),
        "Description": format!("{kind} {i} managed by the platform team; see the runbook for rotation and ownership details. {}", "·".repeat(180)),
    });
    json!({
        "Identifier": id,
        "Properties": props,
        "__Kind": kind,
        "__Region": region,
        "__AccountId": account,
    })
}

/// Map `batches` (kind, items) with `plugin`, sequentially; entities made.
async fn map_all(
    plugin: &LoadedPlugin,
    tenant: &Tenant,
    mapping: &MappingFile,
    batches: &[(String, Vec<String>)],
) -> anyhow::Result<u64> {
    let mut entities = 0u64;
    for (kind, items) in batches {
        let req = BatchRequest {
            kind: kind.clone(),
            entries: mapping
                .for_kind(kind)
                .map(|e| Entry {
                    index: e.index as u32,
                    mapping: e.json.clone(),
                })
                .collect(),
            items: items.clone(),
        };
        let out = plugin.map_batch(tenant, None, &req).await?;
        for entry in out {
            let items = entry.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            entities += items
                .iter()
                .map(|r| r.as_ref().map_or(0, |o| o.entities.len() as u64))
                .sum::<u64>();
        }
    }
    Ok(entities)
}

/// Back-to-back (one core, all cores) runs of the pipeline: enough for a median that one slow
/// moment of a shared machine does not move.
const PIPELINE_PAIRS: usize = 5;

fn rate(n: u64, secs: f64) -> String {
    format!("{:>10.0} entities/s", n as f64 / secs)
}

/// `berth bench map`.
async fn map(registry: Arc<Registry>, mapping_path: &Path, n: usize) -> anyhow::Result<()> {
    let mapping = Arc::new(MappingFile::from_path(mapping_path)?);
    let snap = registry.snapshot();
    // Mapping throughput only: enrichment plugins would need cloud lookups,
    // so every kind goes through the generic plugin here.
    let plugin = snap.any().context("no plugin loaded")?;
    let batch = 200;
    let items: Vec<String> = (0..n).map(|i| raw_item(i).to_string()).collect();
    let bytes: usize = items.iter().map(String::len).sum();
    println!(
        "workload: {n} items, {:.1} MB, {:.0} bytes/item on average, mapping {}, plugin {} {}, batches of {batch}",
        bytes as f64 / 1e6,
        bytes as f64 / n as f64,
        mapping_path.display(),
        plugin.info.name,
        plugin.info.version
    );
    let mut by_kind: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (i, it) in items.iter().enumerate() {
        by_kind
            .entry(KINDS[i % KINDS.len()].to_string())
            .or_default()
            .push(it.clone());
    }
    let batches: Vec<(String, Vec<String>)> = by_kind
        .into_iter()
        .flat_map(|(k, v)| {
            v.chunks(batch)
                .map(|c| (k.clone(), c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect();
    // The pipeline reads the items in the order they were made, kinds interleaved, as
    // `berth map` reads a file of discovery's output.
    let text: Vec<u8> = items
        .iter()
        .flat_map(|s| s.bytes().chain(std::iter::once(b'\n')))
        .collect();
    drop(items);

    let tenant = Tenant::new("bench", Limits::default(), Arc::new(Offline));
    // Warm up: instantiate and compile the mapping once.
    map_all(&plugin, &tenant, &mapping, &batches[..1]).await?;

    let t = Instant::now();
    let ents = map_all(&plugin, &tenant, &mapping, &batches).await?;
    let one = t.elapsed().as_secs_f64();
    println!(
        "sandbox, 1 core:          {} ({ents} entities in {one:.2} s)",
        rate(ents, one)
    );

    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let shards: Vec<Vec<(String, Vec<String>)>> = (0..cores)
        .map(|c| batches.iter().skip(c).step_by(cores).cloned().collect())
        .collect();
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for shard in shards {
        let (plugin, tenant, mapping) = (plugin.clone(), tenant.clone(), mapping.clone());
        set.spawn(async move { map_all(&plugin, &tenant, &mapping, &shard).await });
    }
    let mut ents_all = 0;
    while let Some(r) = set.join_next().await {
        ents_all += r??;
    }
    let all = t.elapsed().as_secs_f64();
    println!(
        "sandbox, {cores} cores:         {} ({ents_all} entities in {all:.2} s)",
        rate(ents_all, all)
    );

    // The whole `berth map` pipeline (reading, routing, batching, output) to a sink, on one
    // core (every thread of this process pinned to it, as `taskset -c 0` would) and on all, in
    // back-to-back pairs: the median of each, and the median of the pairs' ratios with their
    // range, so a machine whose speed drifts affects both sides of a ratio alike.
    let all_cpus = affinity::current()?;
    let mut runs: [Vec<f64>; 2] = Default::default();
    let mut pipe_ents = 0;
    for _ in 0..PIPELINE_PAIRS {
        for (i, cpus) in [&all_cpus[..1], &all_cpus[..]].into_iter().enumerate() {
            // The copy of the workload is made before the clock starts.
            let input = std::io::Cursor::new(text.clone());
            affinity::pin_process(cpus)?;
            let t = Instant::now();
            let summary = map::run(
                registry.clone(),
                mapping.clone(),
                tenant.clone(),
                input,
                std::io::sink(),
                MapOptions {
                    jobs: cpus.len(),
                    ..MapOptions::default()
                },
            )
            .await;
            runs[i].push(t.elapsed().as_secs_f64());
            affinity::pin_process(&all_cpus)?;
            pipe_ents = summary?.kinds.values().map(|k| k.entities).sum();
        }
    }
    // Pair k is run k of each side.
    let ratios: Vec<f64> = runs[0].iter().zip(&runs[1]).map(|(o, a)| o / a).collect();
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (one, all) = (median(&runs[0]), median(&runs[1]));
    let spread = |v: &[f64]| {
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        format!("{lo:.2}–{hi:.2}")
    };
    println!(
        "berth map pipeline, 1 core:  {} ({pipe_ents} entities in {one:.2} s, median of \
         {PIPELINE_PAIRS}; runs {} s)",
        rate(pipe_ents, one),
        spread(&runs[0])
    );
    println!(
        "berth map pipeline, {} cores: {} ({pipe_ents} entities in {all:.2} s, median of \
         {PIPELINE_PAIRS}; runs {} s)",
        all_cpus.len(),
        rate(pipe_ents, all),
        spread(&runs[1])
    );
    println!(
        "berth map pipeline, {} cores ÷ 1 core: {:.2}× (median of {PIPELINE_PAIRS} back-to-back \
         pairs; range {}×)",
        all_cpus.len(),
        median(&ratios),
        spread(&ratios)
    );

    // A fresh instance (and in-guest mapping compile) for every batch.
    let fresh_limits = Limits {
        max_idle_instances: 0,
        ..Limits::default()
    };
    let fresh = Tenant::new("bench-fresh", fresh_limits, Arc::new(Offline));
    let sample = &batches[..batches.len().min(100)];
    let t = Instant::now();
    map_all(&plugin, &tenant, &mapping, sample).await?;
    let reuse_t = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let fe = map_all(&plugin, &fresh, &mapping, sample).await?;
    let fresh_t = t.elapsed().as_secs_f64();
    println!(
        "fresh instance per batch: {} over {} batches; {:.2} ms more per batch than a reused instance",
        rate(fe, fresh_t),
        sample.len(),
        (fresh_t - reuse_t) * 1e3 / sample.len() as f64
    );
    println!(
        "pooling allocator: {}; peak RSS of this process: {}",
        if registry_pooling(&registry) {
            "on"
        } else {
            "off"
        },
        peak_rss().map_or("unknown".into(), |kb| format!(
            "{} MiB (includes the {:.0} MB workload held in memory)",
            kb / 1024,
            bytes as f64 / 1e6
        ))
    );
    Ok(())
}

/// Peak resident set size in KiB (Linux), from /proc.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn registry_pooling(registry: &Registry) -> bool {
    registry.engine().pooling()
}

/// Which CPUs this process's threads may run on (Linux `sched_setaffinity`), so one process can
/// time the same work on one core and on all.
mod affinity {
    use anyhow::Context;

    /// The CPUs this thread may run on now, in order.
    pub fn current() -> anyhow::Result<Vec<usize>> {
        // SAFETY: a zeroed cpu_set_t is an empty set, filled in by the call.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid cpu_set_t of the size passed.
        let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
        if r != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_getaffinity");
        }
        // SAFETY: CPU_ISSET reads within the set for every index below CPU_SETSIZE.
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect())
    }

    /// Lets every thread of this process (and the threads they start) run only on `cpus`.
    pub fn pin_process(cpus: &[usize]) -> anyhow::Result<()> {
        // SAFETY: as in `current`.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &c in cpus {
            // SAFETY: `c` came from `current`, so it is below CPU_SETSIZE.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
        for task in
            std::fs::read_dir("/proc/self/task").context("listing this process's threads")?
        {
            let Some(tid) = task?
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<i32>().ok())
            else {
                continue;
            };
            // SAFETY: `set` is a valid cpu_set_t; a thread that has just exited makes the
            // call fail with ESRCH, which is ignored.
            let r = unsafe { libc::sched_setaffinity(tid, std::mem::size_of_val(&set), &set) };
            if r != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH) {
                return Err(std::io::Error::last_os_error()).context("sched_setaffinity");
            }
        }
        Ok(())
    }
}
