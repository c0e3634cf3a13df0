//! `berth discover`: raw items as JSON lines on stdout (what
//! `berth map --input` takes), the per-scope summary on stderr.
//!
//! Owns the command's I/O and exit code. Must not hold discovery logic.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tokio::sync::mpsc;

use super::{AwsConfig, AwsLimits, AwsTenant, Event, discover, kinds_from_mapping};
use crate::mapping::MappingFile;

/// Exit codes: 0 every scope complete; 1 some scope denied or failed, or
/// an account incomplete (the items printed are still correct).
pub async fn run_discover(config: &Path, mapping_path: &Path) -> anyhow::Result<ExitCode> {
    let cfg = AwsConfig::from_path(config)?;
    let mapping = MappingFile::from_path(mapping_path)?;
    let kinds = kinds_from_mapping(&mapping)
        .with_context(|| format!("reading the kinds of {}", mapping_path.display()))?;
    let limits = AwsLimits::default();
    let channel = limits.channel_items;
    let tenant = AwsTenant::new("local", cfg, limits)?;
    let sync = tenant
        .start_sync()
        .await
        .context("cannot start discovery")?;
    let (tx, mut rx) = mpsc::channel(channel);
    let run = tokio::spawn(discover(sync, kinds, tx));
    let mut out = std::io::BufWriter::new(std::io::stdout());
    while let Some(ev) = rx.recv().await {
        if let Event::Item(item) = ev {
            writeln!(out, "{}", item.value)?;
        }
    }
    out.flush()?;
    let report = run.await.context("discovery stopped")?;
    eprint!("{}", report.render());
    Ok(if report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
