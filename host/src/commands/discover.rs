//! `berth discover`: raw items as JSON lines on stdout (what
//! `berth map --input` takes), the per-scope summary on stderr; with
//! `--lookups FILE`, also the resources the plugins may look up, as the
//! lines `berth map --lookups` and golden cases' `lookups.jsonl` take.
//!
//! Owns the command's I/O, which mapping it reads (`--mapping`, else the
//! config's `mapping:`), which types the lookups file holds, and the exit
//! code. Discovery runs under the config's `limits.aws`, as in a sync. Must
//! not hold discovery logic: both passes are [`discover`] runs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Deserialize;
use tokio::sync::mpsc;

use berth::config::MappingSource;
use berth::discovery::{
    AwsConfig, AwsLimits, AwsSync, AwsTenant, DiscoveryReport, Event, KindPlan, RawItem, discover,
    kinds_from_mapping,
};
use berth::limits::TenantLimits;
use berth::mapping::MappingFile;
use berth::plugin::Snapshot;

/// Exit codes: 0 every scope complete (of both passes with `--lookups`); 1
/// some scope denied or failed, or an account incomplete (the items printed
/// are still correct).
///
/// `lookups`: where to write the lookups file, and the plugins whose
/// declared lookup types it covers (those serving the mapping's kinds).
/// `berth discover`; the plugin directory only with `--lookups` (which plugins may look up).
pub(crate) async fn run(
    g: &super::Global,
    config: &Path,
    mapping_path: Option<&Path>,
    lookups: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let lookups = match lookups {
        Some(out) => Some((out, super::open_registry(&g.plugins).await?.snapshot())),
        None => None,
    };
    discover_to_stdout(config, mapping_path, lookups).await
}

async fn discover_to_stdout(
    config: &Path,
    mapping_path: Option<&Path>,
    lookups: Option<(PathBuf, Arc<Snapshot>)>,
) -> anyhow::Result<ExitCode> {
    let cfg = AwsConfig::from_path(config)?;
    let (mapping, source) = match mapping_path {
        Some(p) => (MappingFile::from_path(p)?, p.display().to_string()),
        None => config_mapping(config)?,
    };
    let kinds =
        kinds_from_mapping(&mapping).with_context(|| format!("reading the kinds of {source}"))?;
    let lookups = lookups.map(|(out, snap)| (out, lookup_plans(&kinds, &snap)));
    let tenant = AwsTenant::new("local", cfg, config_aws_limits(config)?)?;
    let sync = tenant
        .start_sync()
        .await
        .context("cannot start discovery")?;

    let mut out = std::io::BufWriter::new(std::io::stdout());
    let report = run_pass(&sync, kinds, |item| {
        writeln!(out, "{}", item.line).map_err(anyhow::Error::from)
    })
    .await?;
    out.flush()?;
    eprint!("{}", report.render());
    let mut complete = report.is_complete();

    if let Some((path, (plans, plugins))) = lookups {
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut file = std::io::BufWriter::new(file);
        if plans.is_empty() {
            eprintln!(
                "lookups: no plugin serving the mapping's kinds declares lookups; {} is empty",
                path.display()
            );
        } else {
            let types: Vec<&str> = plans.iter().map(|p| p.kind.as_str()).collect();
            eprintln!("lookups for {}: {}", plugins.join(", "), types.join(", "));
            let report = run_pass(&sync, plans, |item| {
                writeln!(file, "{}", lookup_line(item)).map_err(anyhow::Error::from)
            })
            .await?;
            eprint!("{}", report.render());
            complete &= report.is_complete();
        }
        file.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One discovery run, each item handed to `sink` as it arrives.
async fn run_pass(
    sync: &Arc<AwsSync>,
    kinds: Vec<KindPlan>,
    mut sink: impl FnMut(&RawItem) -> anyhow::Result<()>,
) -> anyhow::Result<DiscoveryReport> {
    let (tx, mut rx) = mpsc::channel(sync.limits().channel_items);
    let run = tokio::spawn(discover(sync.clone(), kinds, tx));
    while let Some(ev) = rx.recv().await {
        if let Event::Item(item) = ev {
            sink(&item)?;
        }
    }
    run.await.context("discovery stopped")
}

/// The config file's `limits.aws` (the defaults where it has no `limits:`), as
/// a sync of the same file discovers with.
fn config_aws_limits(config: &Path) -> anyhow::Result<AwsLimits> {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        limits: TenantLimits,
    }
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    // Only `limits:` is read here, whole, so that an error in it is reported as a
    // sync would report it.
    let doc: Doc = serde_norway::from_str(&text)
        .with_context(|| format!("{}: reading `limits:`", config.display()))?;
    Ok(doc.limits.aws)
}

/// The mapping the config file names: a file (relative to the config's
/// directory) or inline resources. `{fromPort: true}` is refused: discover
/// never talks to Port.
fn config_mapping(config: &Path) -> anyhow::Result<(MappingFile, String)> {
    #[derive(Deserialize)]
    struct Doc {
        mapping: Option<MappingSource>,
    }
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    // Only `mapping:` is read here; the `aws:` section was checked already, and the rest
    // belongs to other commands.
    let doc: Doc = serde_norway::from_str(&text)
        .with_context(|| format!("{}: reading `mapping:`", config.display()))?;
    match doc.mapping {
        Some(MappingSource::File(f)) => {
            let p = config.parent().unwrap_or(Path::new("")).join(f);
            Ok((MappingFile::from_path(&p)?, p.display().to_string()))
        }
        Some(MappingSource::Inline(v)) => {
            let text = serde_norway::to_string(&v)?;
            let source = format!("{} mapping", config.display());
            Ok((MappingFile::parse(&text, &source)?, source))
        }
        Some(MappingSource::FromPort { .. }) => bail!(
            "{}: `mapping: {{fromPort: true}}` is read from Port, which `berth discover` does not \
             contact; pass --mapping FILE",
            config.display()
        ),
        None => bail!(
            "{} has no `mapping:`; set one or pass --mapping FILE",
            config.display()
        ),
    }
}

/// What the lookups pass reads: every type declared by the plugins serving
/// the mapping's kinds, with GetResource (lookups answer full models), in
/// the regions any of those kinds is read in. Also the plugins' names.
fn lookup_plans(kinds: &[KindPlan], snap: &Snapshot) -> (Vec<KindPlan>, Vec<String>) {
    let mut plans: Vec<KindPlan> = Vec::new();
    let mut unrestricted: BTreeMap<String, bool> = BTreeMap::new();
    let mut plugins: Vec<String> = Vec::new();
    for k in kinds {
        let Some(plugin) = snap.for_kind(&k.kind) else {
            continue;
        };
        if plugin.info.lookups.is_empty() {
            continue;
        }
        if !plugins.contains(&plugin.info.name) {
            plugins.push(plugin.info.name.clone());
        }
        for t in &plugin.info.lookups {
            let i = match plans.iter().position(|p| &p.kind == t) {
                Some(i) => i,
                None => {
                    plans.push(KindPlan {
                        kind: t.clone(),
                        use_get_resource_api: true,
                        region_policies: Vec::new(),
                    });
                    plans.len() - 1
                }
            };
            if k.region_policies.is_empty() {
                unrestricted.insert(t.clone(), true);
            } else {
                plans[i]
                    .region_policies
                    .extend(k.region_policies.iter().cloned());
            }
        }
    }
    for p in &mut plans {
        // A kind read in every region makes its lookups needed in every region.
        if unrestricted.contains_key(&p.kind) {
            p.region_policies.clear();
        }
    }
    (plans, plugins)
}

/// One line of a lookups file (`berth::plugin::lookup::Fixture`'s format).
fn lookup_line(item: &RawItem) -> serde_json::Value {
    let value = item.value();
    serde_json::json!({
        "TypeName": item.kind,
        "Identifier": value.get("Identifier").cloned().unwrap_or_default(),
        "AccountId": item.account_id,
        "Region": item.region,
        "Properties": value.get("Properties").cloned().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits_of(text: &str) -> anyhow::Result<AwsLimits> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("berth.yaml");
        std::fs::write(&p, text).unwrap();
        config_aws_limits(&p)
    }

    /// `berth discover` runs under the file's `limits.aws`, as a sync of it does; the rest of
    /// the file is other commands'.
    #[test]
    fn discovery_takes_the_config_files_aws_limits() {
        let l = limits_of(
            "aws: {regions: [eu-west-1]}\nport: {clientId: x}\n\
             limits: {batchItems: 7, aws: {maxInFlight: 3, pageSize: 10}}\n",
        )
        .unwrap();
        assert_eq!((l.max_in_flight, l.page_size), (3, 10));
        assert_eq!(l.max_attempts, AwsLimits::default().max_attempts);
        assert_eq!(limits_of("aws: {}\n").unwrap(), AwsLimits::default());
        let e = format!(
            "{:#}",
            limits_of("limits:\n  aws: {maxInFlite: 3}\n").unwrap_err()
        );
        assert!(e.contains("maxInFlite") && e.contains("limits"), "{e}");
        let e = format!(
            "{:#}",
            limits_of("limits: {aws: {pageSize: 101}}\n").unwrap_err()
        );
        assert!(e.contains("limits.aws.pageSize"), "{e}");
    }
}
