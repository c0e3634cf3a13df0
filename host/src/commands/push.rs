//! `berth push`: mapped entities (what `berth map` prints) sent to Port: change detection,
//! bulk upserts, safe reconciliation, sync status; `--dry-run` prints the plan.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use berth::mapping::MappingFile;

use super::open_input;

#[derive(Args)]
pub(crate) struct PushArgs {
    /// Entities, one JSON object a line (`berth map` output); `-` for stdin.
    #[arg(long, default_value = "-")]
    pub(crate) input: String,
    /// Config file (Port, state store, mapping); see the README.
    #[arg(long)]
    pub(crate) config: PathBuf,
    /// How discovery ended per scope (JSON lines `{"account","region","kind","status"}`);
    /// entities of scopes not `complete` are never deleted.
    #[arg(long)]
    pub(crate) scopes: Option<PathBuf>,
    /// Print what would be created, updated, left unchanged and deleted; write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

pub(crate) async fn run(a: PushArgs) -> anyhow::Result<ExitCode> {
    use berth::catalog::push::{EntityIn, Outcome};
    use berth::catalog::{PushOptions, Pusher, input};
    use berth::config::Config;

    let config = Config::from_path(&a.config)?;
    let settings = match config.mapping_path() {
        Some(p) => MappingFile::from_path(&p)?.settings,
        None => berth::mapping::Settings::default(),
    };
    let client = config.port_client()?;
    let blueprints = config.blueprint_documents()?;
    if !blueprints.is_empty() && !a.dry_run {
        let r = client.ensure_blueprints(&blueprints).await?;
        if !r.created.is_empty() {
            eprintln!("blueprints created: {}", r.created.join(", "));
        }
        for c in &r.conflicts {
            eprintln!(
                "warning: blueprint {} {} is {:?} {} in Port (we define {}); Port's is kept",
                c.blueprint, c.key, c.kind, c.found, c.wanted
            );
        }
    }
    let store = config.open_store().await?;
    let mut opts = PushOptions::new(config.integration_key(), settings);
    opts.dry_run = a.dry_run;
    opts.report_status = config.port.report_status.unwrap_or(true);
    let mut pusher = Pusher::begin(client, Some(store), opts).await?;
    if let Some(p) = &a.scopes {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        for (k, s) in input::scopes(&text, &p.display().to_string()).map_err(anyhow::Error::msg)? {
            pusher.scopes_mut().set(&k, s);
        }
    }
    // Lines are read on a blocking thread and handed over through a bounded channel, so a
    // large input streams through without being held in memory.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<EntityIn, String>>(1024);
    let reader = open_input(&a.input)?;
    let name = a.input.clone();
    let read = tokio::task::spawn_blocking(move || {
        for (i, line) in reader.lines().enumerate() {
            let item = match line {
                Ok(l) if l.trim().is_empty() => continue,
                Ok(l) => input::entity_line(&l, &format!("{name}:{}", i + 1)),
                Err(e) => Err(format!("{name}:{}: {e}", i + 1)),
            };
            let stop = item.is_err();
            if tx.blocking_send(item).is_err() || stop {
                break;
            }
        }
    });
    while let Some(item) = rx.recv().await {
        // A bad line stops the push before anything is reconciled: a truncated input must not
        // look like a catalog that shrank.
        let entity = item.map_err(anyhow::Error::msg)?;
        pusher.add(entity).await?;
    }
    read.await?;
    let report = pusher.finish().await?;
    eprint!("{}", report.render());
    Ok(match report.outcome {
        Outcome::Completed => ExitCode::SUCCESS,
        Outcome::Partial => ExitCode::from(1),
    })
}
