//! The `berth` command line.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use berth::limits::{EngineLimits, Limits, TenantLimits};
use berth::lookup::{CloudLookup, Fixture, Offline};
use berth::map::MapOptions;
use berth::mapping::MappingFile;
use berth::plugin::{AotCache, JqOutput, JqRequest, PluginEngine, Registry, Tenant};

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
struct Global {
    /// Directory of plugin `.wasm` files.
    #[arg(
        long,
        global = true,
        env = "BERTH_PLUGIN_DIR",
        default_value = "target/plugins"
    )]
    plugins: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    /// Berth's debug logging, plugins' logs included (RUST_LOG=debug adds every library's).
    #[arg(long, global = true)]
    debug: bool,
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

#[derive(Args)]
struct PushArgs {
    /// Entities, one JSON object a line (`berth map` output); `-` for stdin.
    #[arg(long, default_value = "-")]
    input: String,
    /// Config file (Port, state store, mapping); see the README.
    #[arg(long)]
    config: PathBuf,
    /// How discovery ended per scope (JSON lines `{"account","region","kind","status"}`);
    /// entities of scopes not `complete` are never deleted.
    #[arg(long)]
    scopes: Option<PathBuf>,
    /// Print what would be created, updated, left unchanged and deleted; write nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
struct MapArgs {
    /// Port mapping YAML (`resources:`).
    #[arg(long)]
    mapping: PathBuf,
    /// Raw items, one JSON object a line; `-` for stdin.
    #[arg(long, default_value = "-")]
    input: String,
    /// Resources plugins may look up, as JSON lines
    /// `{"TypeName","Identifier","AccountId","Region","Properties"}`.
    #[arg(long)]
    lookups: Option<PathBuf>,
    /// Batches mapped at once (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
    /// Watch the plugin directory and serve new plugins without a restart.
    #[arg(long)]
    watch: bool,
    /// Read no input: print, for every expression of the mapping, which evaluator runs it
    /// (the native accelerator or jaq) and why.
    #[arg(long)]
    explain: bool,
}

#[derive(Args)]
struct JqArgs {
    /// Compact output.
    #[arg(short = 'c')]
    compact: bool,
    /// Print strings without quotes.
    #[arg(short = 'r')]
    raw: bool,
    /// Run once with `null` as input.
    #[arg(short = 'n')]
    null_input: bool,
    /// `--arg NAME VALUE`: `$NAME` is the string VALUE.
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "VALUE"], action = clap::ArgAction::Append)]
    args: Vec<String>,
    /// `--argjson NAME JSON`: `$NAME` is the JSON value.
    #[arg(long = "argjson", num_args = 2, value_names = ["NAME", "JSON"], action = clap::ArgAction::Append)]
    argjson: Vec<String>,
    filter: String,
    /// Input file (default: stdin).
    file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Loaded plugins, their versions, kinds and capabilities, and load errors.
    List,
    /// Run golden test cases: each directory holds mapping.yaml, input.jsonl,
    /// and expected.jsonl or error.txt (optionally lookups.jsonl).
    Test {
        dir: PathBuf,
        /// Rewrite expected.jsonl from the actual output.
        #[arg(long)]
        bless: bool,
    },
    /// Write a new plugin crate at DIR/NAME: Cargo.toml, src/lib.rs, a default mapping and
    /// blueprint, a golden case (tests/cases/basic) and a README with the build, install and
    /// test commands.
    New {
        /// The plugin's name (lowercase letters, digits, hyphens), e.g. ec2-subnet.
        name: String,
        /// The Cloud Control type it serves, e.g. AWS::EC2::Subnet.
        #[arg(long)]
        kind: String,
        /// Where to create the crate's directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The guest SDK crate (default: plugins/sdk of the Berth checkout this was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
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
    /// Discovery against the local AWS emulator under latency and a rate
    /// limit: wall time, API calls, the lower bound the limit allows, the
    /// ratio, and peak RSS.
    Discover {
        /// Use a running emulator instead of starting one.
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long, default_value_t = 20_000)]
        resources: usize,
        #[arg(long, default_value_t = 3)]
        accounts: usize,
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "us-east-1,eu-west-1,us-west-2"
        )]
        regions: Vec<String>,
        #[arg(long, default_value_t = 30)]
        latency_ms: u64,
        /// Calls/s allowed per API per account+region.
        #[arg(long, default_value_t = 50.0)]
        rate_limit: f64,
        /// Reuse what the last run seeded (with --endpoint).
        #[arg(long)]
        no_seed: bool,
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
        .with_writer(berth::display::LogWriter);
    if g.log_format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

async fn open_registry(dir: &Path) -> anyhow::Result<Arc<Registry>> {
    if !dir.is_dir() {
        bail!(
            "plugin directory {} does not exist; build the plugins with `scripts/build-plugins` or pass --plugins DIR",
            dir.display()
        );
    }
    let engine = PluginEngine::new(EngineLimits::default())?;
    // The error names the directory; a context would say it twice.
    let reg = Registry::open(engine, AotCache::default_location(), dir).await?;
    // Printed once here; `plugin list` shows them through this too.
    for e in &reg.snapshot().errors {
        eprintln!("warning: {}", e.message);
    }
    Ok(reg)
}

fn open_input(path: &str) -> anyhow::Result<Box<dyn BufRead + Send>> {
    Ok(if path == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?,
        ))
    })
}

async fn cmd_map(g: &Global, a: MapArgs) -> anyhow::Result<ExitCode> {
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
            berth::map::explain(&registry, &mapping, &tenant).await
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
    let summary = berth::map::run(registry, mapping.clone(), tenant, input, stdout, opts).await?;
    eprint!("{}", summary.render(&mapping));
    Ok(if summary.error_count() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn read_json_values(mut r: impl Read) -> anyhow::Result<Vec<String>> {
    let mut text = String::new();
    r.read_to_string(&mut text)?;
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
        out.push(v.context("invalid JSON input")?.to_string());
    }
    Ok(out)
}

fn print_value(json: &str, compact: bool, raw: bool, out: &mut impl Write) -> anyhow::Result<()> {
    if raw && json.starts_with('"') {
        let s: String = serde_json::from_str(json)?;
        writeln!(out, "{s}")?;
    } else if compact {
        writeln!(out, "{json}")?;
    } else {
        writeln!(out, "{}", berth::json_text::pretty(json))?;
    }
    Ok(())
}

async fn cmd_jq(g: &Global, a: JqArgs) -> anyhow::Result<ExitCode> {
    let mut vars = Vec::new();
    for kv in a.args.chunks(2) {
        vars.push((
            kv[0].clone(),
            serde_json::Value::String(kv[1].clone()).to_string(),
        ));
    }
    for kv in a.argjson.chunks(2) {
        let v: serde_json::Value = serde_json::from_str(&kv[1])
            .with_context(|| format!("--argjson {}: invalid JSON", kv[0]))?;
        vars.push((kv[0].clone(), v.to_string()));
    }
    let inputs = if a.null_input {
        Vec::new()
    } else {
        match &a.file {
            Some(p) => read_json_values(
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
            )?,
            None => read_json_values(std::io::stdin())?,
        }
    };
    let registry = open_registry(&g.plugins).await?;
    let plugin = registry
        .snapshot()
        .any()
        .context("no plugin loaded to run JQ in")?;
    let tenant = Tenant::new(
        "local",
        Limits::from_env().map_err(anyhow::Error::msg)?,
        Arc::new(Offline),
    );
    let req = JqRequest {
        filter: a.filter.clone(),
        inputs,
        null_input: a.null_input,
        vars,
    };
    let outputs = match plugin.run_jq(&tenant, &req).await? {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "jq: error: {}{}",
                e.message,
                e.position
                    .map(|p| format!(" (at character {p})"))
                    .unwrap_or_default()
            );
            return Ok(ExitCode::from(3));
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut failed = false;
    for o in outputs {
        match o {
            JqOutput::Value(j) => print_value(&j, a.compact, a.raw, &mut out)?,
            JqOutput::Error(e) => {
                out.flush()?;
                eprintln!("jq: error: {e}");
                failed = true;
            }
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(5)
    } else {
        ExitCode::SUCCESS
    })
}

async fn cmd_plugin_list(g: &Global) -> anyhow::Result<ExitCode> {
    let registry = open_registry(&g.plugins).await?;
    let snap = registry.snapshot();
    println!("plugin directory: {}", registry.dir().display());
    for p in &snap.plugins {
        let i = &p.info;
        println!(
            "{} {} (berth:plugin@{}) {}",
            i.name,
            i.version,
            i.api_version,
            p.path.file_name().unwrap_or_default().to_string_lossy()
        );
        println!("  kinds: {}", i.kinds.join(", "));
        let caps: Vec<String> = std::iter::once("log".to_string())
            .chain(i.lookups.iter().map(|t| format!("cloud-lookup({t})")))
            .collect();
        println!("  capabilities: {}", caps.join(", "));
        if i.default_mapping.is_some() || !i.blueprints.is_empty() {
            println!(
                "  ships: {}{} blueprint(s)",
                if i.default_mapping.is_some() {
                    "a default mapping, "
                } else {
                    ""
                },
                i.blueprints.len()
            );
        }
    }
    Ok(if snap.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn cmd_push(a: PushArgs) -> anyhow::Result<ExitCode> {
    use berth::config::Config;
    use berth::sync::push::{EntityIn, Outcome};
    use berth::sync::{PushOptions, Pusher, input};

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

async fn cmd_sync(g: &Global, config_path: &Path, dry_run: bool) -> anyhow::Result<ExitCode> {
    use berth::display::{Live, Target};
    use berth::resync::Progress;
    use berth::runner::Setup;

    let setup = Setup::prepare(config_path, &g.plugins, dry_run).await?;
    let progress = Arc::new(Progress::default());
    let target = Target::stderr();
    let width = match &target {
        Target::Term(t) => usize::from(t.width()),
        Target::Plain(_) => berth::display::MIN_WIDTH,
    };
    let live = Live::start(progress.clone(), setup.mapping.clone(), target);
    let started = std::time::Instant::now();
    let outcome = setup.resync(dry_run, progress.clone(), None, None).await;
    let report = match outcome {
        Ok(r) => r,
        Err(e) => {
            // The error is printed once, by `main`, in the frame's place.
            live.finish("").await;
            match setup.write_failed_report(&e.to_string(), started.elapsed(), dry_run, &progress) {
                Ok(path) => eprintln!("report: {}", path.display()),
                Err(w) => eprintln!("warning: cannot write the report: {w}"),
            }
            return Err(e.into());
        }
    };
    let mut summary = berth::display::summary(&report, &setup.mapping, width);
    if dry_run {
        summary.push('\n');
        summary.push_str(&report.push.render());
    }
    live.finish(&summary).await;
    match setup.write_report(&report) {
        Ok(path) => eprintln!("report: {}", path.display()),
        Err(e) => eprintln!("warning: cannot write the report: {e}"),
    }
    Ok(if report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = cli.global;
    match cli.command {
        Command::Map(a) => cmd_map(&g, a).await,
        Command::Jq(a) => cmd_jq(&g, a).await,
        Command::Plugin(PluginCommand::List) => cmd_plugin_list(&g).await,
        Command::Plugin(PluginCommand::New {
            name,
            kind,
            dir,
            sdk,
        }) => {
            // Names and kinds already taken come from the plugin directory itself, not a list.
            let loaded = if g.plugins.is_dir() {
                open_registry(&g.plugins)
                    .await?
                    .snapshot()
                    .plugins
                    .iter()
                    .map(|p| (p.info.name.clone(), p.info.kinds.clone()))
                    .collect()
            } else {
                Vec::new()
            };
            let req = berth::plugin_new::NewPlugin {
                name,
                kind,
                parent: dir,
                sdk,
                plugin_dir: g.plugins.clone(),
                loaded,
            };
            let created = berth::plugin_new::create(&req)?;
            print!("{}", created.summary(&req.name));
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(PluginCommand::Test { dir, bless }) => {
            let registry = open_registry(&g.plugins).await?;
            let ok = berth::plugin_test::run_dir(registry, &dir, bless).await?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Bench(BenchCommand::Items { count }) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for i in 0..count {
                writeln!(out, "{}", berth::bench::raw_item(i))?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Map { items, mapping }) => {
            let registry = open_registry(&g.plugins).await?;
            berth::bench::map(registry, &mapping, items).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Push(a) => cmd_push(a).await,
        Command::Sync { config, dry_run } => cmd_sync(&g, &config, dry_run).await,
        Command::Run {
            config,
            once,
            listen,
        } => {
            let opts = berth::runner::RunOptions { once, listen };
            berth::runner::run_config(&config, &g.plugins, opts).await
        }
        Command::Serve { config } => {
            berth::serve::serve(&config, &g.plugins).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Discover {
            config,
            mapping,
            lookups,
        } => {
            let lookups = match lookups {
                Some(out) => Some((out, open_registry(&g.plugins).await?.snapshot())),
                None => None,
            };
            berth::aws::cli::run_discover(&config, mapping.as_deref(), lookups).await
        }
        Command::Bench(BenchCommand::Discover {
            endpoint,
            resources,
            accounts,
            regions,
            latency_ms,
            rate_limit,
            no_seed,
        }) => {
            berth::aws::bench::run(berth::aws::bench::BenchOptions {
                endpoint,
                emulator_dir: None,
                resources,
                accounts,
                regions,
                latency_ms,
                rate_limit,
                no_seed,
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

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
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
