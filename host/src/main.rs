//! The `berth` command line: the arguments every command shares, the list of commands, and
//! the dispatch to `commands/` (one file per command).

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use commands::bench::BenchCommand;
use commands::jq::JqArgs;
use commands::map::MapArgs;
use commands::plugin::PluginCommand;
use commands::push::PushArgs;

/// Keeps a Port software catalog in sync with AWS; per-kind logic runs in
/// sandboxed WebAssembly plugins.
#[derive(Parser)]
#[command(name = "berth", version)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
pub(crate) struct Global {
    /// Directory of plugin `.wasm` files.
    #[arg(
        long,
        global = true,
        env = "BERTH_PLUGIN_DIR",
        default_value = "target/plugins"
    )]
    pub(crate) plugins: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_parser = ["text", "json"], default_value = "text")]
    pub(crate) log_format: String,
    /// Berth's debug logging, plugins' logs included (RUST_LOG=debug adds every library's).
    #[arg(long, global = true)]
    pub(crate) debug: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Map raw items (JSON lines) to Port entities with a mapping file.
    Map(MapArgs),
    /// Run a JQ filter with the same in-sandbox engine mappings use.
    Jq(JqArgs),
    /// Plugin tools.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Read the mapping's kinds from AWS: raw items as JSON lines on stdout
    /// (what `map --input` takes), a per-scope summary on stderr. Exit 1 when
    /// a scope was denied or failed or an account could not be read.
    Discover {
        /// Config file with an `aws:` section.
        #[arg(long)]
        config: PathBuf,
        /// Port mapping YAML: its kinds and `useGetResourceAPI`/`regionPolicy` (default: the
        /// config's `mapping:`).
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Also write the resources the plugins serving the mapping's kinds may look up, as
        /// `{"TypeName","Identifier","AccountId","Region","Properties"}` lines (full models):
        /// a golden case's lookups.jsonl, or `berth map --lookups`.
        #[arg(long)]
        lookups: Option<PathBuf>,
    },
    /// Send mapped entities (what `berth map` prints) to Port: change detection, bulk upserts,
    /// safe reconciliation, sync status. `--dry-run` prints the plan and writes nothing.
    Push(PushArgs),
    /// One resync: discover in AWS, enrich and map in the plugins, upsert and reconcile in
    /// Port. Exit code 0: complete; 1: partial (some scope or entity did not complete; nothing
    /// of it was deleted); 2: failed.
    Sync {
        /// Config file (port, aws, mapping, ...); see the README.
        #[arg(long)]
        config: PathBuf,
        /// Discover and map, read Port, print the plan; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The long-running form: resync on start, every `schedule.intervalMinutes`, and when
    /// Port's resync request moves; SIGTERM abandons a running resync before reconciliation.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// One resync, then exit (for hosted schedulers).
        #[arg(long)]
        once: bool,
        /// Serve /metrics (Prometheus) and /healthz here, e.g. 127.0.0.1:9464.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// The hosted multi-tenant service: an admin API for tenants (each a sync config), their
    /// schedules and on-demand resyncs, fair share of one worker, several workers on Postgres.
    Serve {
        /// The serve config (listen, state, tokens, worker limits); see the README.
        #[arg(long)]
        config: PathBuf,
    },
}

/// `default` is the level without RUST_LOG or `--debug`: `info` for the long-running
/// `berth run` (its log is what an operator reads), `warn` for one-shot commands.
fn init_logging(g: &Global, default: &str) {
    use tracing_subscriber::EnvFilter;
    // `--debug` is Berth's own debug output (plugins' logs included); the AWS SDK's, hyper's
    // and wasmtime's come only when RUST_LOG asks for them.
    let filter = if g.debug {
        EnvFilter::new("warn,berth=debug")
    } else {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
    };
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(berth::pipeline::display::LogWriter);
    if g.log_format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = cli.global;
    match cli.command {
        Command::Map(a) => commands::map::run(&g, a).await,
        Command::Jq(a) => commands::jq::run(&g, a).await,
        Command::Plugin(c) => commands::plugin::run(&g, c).await,
        Command::Bench(c) => commands::bench::run(&g, c).await,
        Command::Push(a) => commands::push::run(a).await,
        Command::Sync { config, dry_run } => commands::sync::run(&g, &config, dry_run).await,
        Command::Run {
            config,
            once,
            listen,
        } => {
            let opts = berth::pipeline::runner::RunOptions { once, listen };
            berth::pipeline::runner::run_config(&config, &g.plugins, opts).await
        }
        Command::Serve { config } => {
            berth::serve::serve(&config, &g.plugins).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Discover {
            config,
            mapping,
            lookups,
        } => commands::discover::run(&g, &config, mapping.as_deref(), lookups).await,
    }
}

/// mimalloc rather than glibc's malloc: the pipeline allocates a line on one thread and frees
/// it on another (and an entity likewise), which in glibc takes the allocating arena's lock;
/// on two cores that contention, and malloc's own work, was a tenth of `berth map`'s time.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if matches!(cli.command, Command::Run { .. } | Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    init_logging(&cli.global, level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    // The command runs as a task, not on this thread: `block_on` would poll it here, and
    // every hand-off between it and the tasks it spawns (a pipeline's dispatcher and its
    // mappers) would wake a third thread competing with the runtime's workers for the cores.
    let outcome = rt.block_on(async {
        match tokio::spawn(run(cli)).await {
            Ok(outcome) => outcome,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(anyhow::anyhow!("the command's task ended early: {e}")),
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
