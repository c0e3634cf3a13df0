//! `berth map`: raw items (JSON lines) to Port entities with a mapping file, through the
//! plugins; the summary on stderr, `--explain` for each expression's evaluator.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use berth::limits::{Limits, TenantLimits};
use berth::mapping::MappingFile;
use berth::pipeline::map::MapOptions;
use berth::plugin::Tenant;
use berth::plugin::lookup::{CloudLookup, Fixture, Offline};

use super::{Global, open_input, open_registry};

#[derive(Args)]
pub(crate) struct MapArgs {
    /// Port mapping YAML (`resources:`).
    #[arg(long)]
    pub(crate) mapping: PathBuf,
    /// Raw items, one JSON object a line; `-` for stdin.
    #[arg(long, default_value = "-")]
    pub(crate) input: String,
    /// Resources plugins may look up, as JSON lines
    /// `{"TypeName","Identifier","AccountId","Region","Properties"}`.
    #[arg(long)]
    pub(crate) lookups: Option<PathBuf>,
    /// Batches mapped at once (default: one per core).
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Watch the plugin directory and serve new plugins without a restart.
    #[arg(long)]
    pub(crate) watch: bool,
    /// Read no input: print, for every expression of the mapping, which evaluator runs it
    /// (the native accelerator or jaq) and why.
    #[arg(long)]
    pub(crate) explain: bool,
}

pub(crate) async fn run(g: &Global, a: MapArgs) -> anyhow::Result<ExitCode> {
    let mapping = Arc::new(MappingFile::from_path(&a.mapping)?);
    let registry = open_registry(&g.plugins).await?;
    let kind_warnings = registry.snapshot().kind_warnings(&mapping);
    for w in mapping.warnings.iter().chain(&kind_warnings) {
        eprintln!("warning: {w}");
    }
    if a.explain {
        let tenant = Tenant::new(
            "local",
            Limits::from_env().map_err(anyhow::Error::msg)?,
            Arc::new(Offline),
        );
        print!(
            "{}",
            berth::pipeline::map::explain(&registry, &mapping, &tenant).await
        );
        return Ok(ExitCode::SUCCESS);
    }
    let _watch = if a.watch {
        Some(registry.watch()?)
    } else {
        None
    };
    let lookup: Arc<dyn CloudLookup> = match &a.lookups {
        Some(p) => Arc::new(Fixture::from_file(p).map_err(anyhow::Error::msg)?),
        None => {
            let enriching: Vec<String> = registry
                .snapshot()
                .plugins
                .iter()
                .filter(|p| !p.info.lookups.is_empty())
                .map(|p| p.info.name.clone())
                .collect();
            if !enriching.is_empty() {
                eprintln!(
                    "note: no --lookups given, so the cloud lookups of {} fail and their enrichment fields are null",
                    enriching.join(", ")
                );
            }
            Arc::new(Offline)
        }
    };
    let limits = TenantLimits::from_env().map_err(anyhow::Error::msg)?;
    let tenant = Tenant::new("local", limits.plugin.clone(), lookup);
    let mut opts = MapOptions::default();
    if let Some(j) = a.jobs {
        opts.jobs = j.max(1);
    }
    opts.batch_items = limits.batch_items;
    if a.watch {
        // A watched run serves a live stream: flush every item.
        opts.batch_items = 1;
    }
    let input = open_input(&a.input)?;
    let stdout = std::io::BufWriter::new(std::io::stdout());
    let summary =
        berth::pipeline::map::run(registry, mapping.clone(), tenant, input, stdout, opts).await?;
    eprint!("{}", summary.render(&mapping));
    Ok(if summary.error_count() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
