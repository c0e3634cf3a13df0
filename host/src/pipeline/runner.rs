//! `berth sync` and `berth run`: building a resync from the config file, and the long-running
//! loop around it.
//!
//! Owns: [`Setup`] (what lives across resyncs: the AWS tenant, the plugin registry, the Port
//! client, the state store, the mapping), the triggers of `berth run` (on start, every
//! interval, when Port's resync-request watermark moves, as Ocean's POLLING listener does),
//! single flight (a resync due while one runs is queued once, never run twice at once, never
//! dropped), the graceful stop (SIGTERM/SIGINT abandon the running resync before its
//! reconciliation, so no deletion is half applied), waiting for Port at start (retried with
//! backoff while `/healthz` says why it is not ready) and the `/metrics` (Prometheus, through
//! `prometheus-client`) and `/healthz` endpoints. Must not touch: what a resync does; that is
//! [`crate::pipeline::resync`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::watch;

use crate::catalog::PushOptions;
use crate::catalog::port::{PortClient, PortError, RetryPolicy};
use crate::config::Config;
use crate::discovery::AwsTenant;
use crate::limits::{EngineLimits, Limits, TenantLimits};
use crate::mapping::MappingFile;
use crate::pipeline::map::MapOptions;
use crate::pipeline::resync::{Progress, ResyncInputs, ResyncReport, resync};
use crate::plugin::{AotCache, PluginEngine, Registry};
use crate::store::Store;

/// What lives across resyncs.
pub struct Setup {
    pub config: Config,
    pub aws: Arc<AwsTenant>,
    pub registry: Arc<Registry>,
    pub mapping: Arc<MappingFile>,
    pub limits: Limits,
    pub client: PortClient,
    pub store: Store,
    /// Whose resync this is: `local` for a config file, the tenant id under `berth serve`.
    pub tenant_id: String,
    /// The key of this integration's change-detection state in the store.
    pub integration_key: String,
    /// The plugins this tenant may use (`None`: all).
    pub plugins: Option<Arc<std::collections::BTreeSet<String>>>,
    /// This tenant's share of the process's work budget (`berth serve`).
    pub share: Option<(Arc<crate::plugin::fair::WorkBudget>, u32)>,
    /// The config a report names: the file for `berth sync` and `berth run`.
    pub config_source: String,
}

/// What a setup from a config file is built from that needs no network: the config, the
/// plugins, the state store. Opened once; `berth run` builds the [`Setup`] from it again until
/// Port answers.
struct LocalParts {
    config: Config,
    registry: Arc<Registry>,
    store: Store,
    limits: Limits,
    key: String,
    path: std::path::PathBuf,
}

impl LocalParts {
    async fn open(config_path: &Path, plugins: &Path) -> anyhow::Result<Self> {
        let mut config = Config::from_path(config_path)?;
        if config.aws.is_none() {
            bail!(
                "{}: no `aws:` section; a sync needs to know how to reach AWS",
                config_path.display()
            );
        }
        let dir = config
            .plugins_dir()
            .unwrap_or_else(|| plugins.to_path_buf());
        // The environment overrides the file: the one tree is what every part below reads.
        config
            .limits
            .apply_env(crate::limits::process_env)
            .map_err(anyhow::Error::msg)?;
        // This process's engine is now the tree's: the plugin memory is held against it.
        config.limits.check().map_err(anyhow::Error::msg)?;
        let registry = open_registry(&dir, config.limits.engine.clone()).await?;
        let limits = config.limits.plugin.clone();
        let store = config.open_store().await?;
        let key = config.integration_key();
        Ok(Self {
            config,
            registry,
            store,
            limits,
            key,
            path: config_path.to_path_buf(),
        })
    }

    /// `client`: one that already reached Port (its token is reused), or `None` for a new one.
    async fn build(&self, dry_run: bool, client: Option<PortClient>) -> anyhow::Result<Setup> {
        let client = match client {
            Some(c) => c,
            None => self.config.port_client()?,
        };
        let mut setup = Setup::with_client(
            self.config.clone(),
            client,
            self.registry.clone(),
            self.store.clone(),
            self.limits.clone(),
            "local",
            self.key.clone(),
            dry_run,
        )
        .await?;
        setup.config_source = self.path.display().to_string();
        // Kinds no plugin serves, or that look misspelt: said once, when the mapping is read.
        for w in self.registry.snapshot().kind_warnings(&setup.mapping) {
            tracing::warn!("{w}");
        }
        Ok(setup)
    }
}

impl Setup {
    /// Reads the config and builds everything; `plugins` is used when the config names no
    /// plugin directory. Blueprints are ensured unless `dry_run`.
    pub async fn prepare(
        config_path: &Path,
        plugins: &Path,
        dry_run: bool,
    ) -> anyhow::Result<Self> {
        LocalParts::open(config_path, plugins)
            .await?
            .build(dry_run, None)
            .await
    }

    /// Builds a setup from a parsed config and what the process shares (plugins, store).
    pub async fn build(
        config: Config,
        registry: Arc<Registry>,
        store: Store,
        limits: Limits,
        tenant_id: &str,
        integration_key: String,
        dry_run: bool,
    ) -> anyhow::Result<Self> {
        let client = config.port_client()?;
        Self::with_client(
            config,
            client,
            registry,
            store,
            limits,
            tenant_id,
            integration_key,
            dry_run,
        )
        .await
    }

    /// [`Setup::build`] with a Port client already made.
    #[allow(clippy::too_many_arguments)]
    async fn with_client(
        config: Config,
        client: PortClient,
        registry: Arc<Registry>,
        store: Store,
        limits: Limits,
        tenant_id: &str,
        integration_key: String,
        dry_run: bool,
    ) -> anyhow::Result<Self> {
        let Some(aws_config) = config.aws.clone() else {
            bail!("no `aws:` section; a sync needs to know how to reach AWS");
        };
        let mapping = Arc::new(config.load_mapping(&client).await?);
        let blueprints = config.blueprint_documents()?;
        if !blueprints.is_empty() && !dry_run {
            let r = client
                .ensure_blueprints(&blueprints)
                .await
                .context("ensuring blueprints")?;
            for c in &r.conflicts {
                tracing::warn!(
                    "blueprint {} {} is {:?} {} in Port (we define {}); Port's is kept",
                    c.blueprint,
                    c.key,
                    c.kind,
                    c.found,
                    c.wanted
                );
            }
        }
        let aws = AwsTenant::new(tenant_id, aws_config, config.limits.aws.clone())?;
        Ok(Self {
            config,
            aws,
            registry,
            mapping,
            limits,
            client,
            store,
            tenant_id: tenant_id.to_string(),
            integration_key,
            plugins: None,
            share: None,
            config_source: format!("tenant {tenant_id}"),
        })
    }

    /// One resync with this setup.
    pub async fn resync(
        &self,
        dry_run: bool,
        progress: Arc<Progress>,
        cancel: Option<watch::Receiver<bool>>,
        fence: Option<crate::pipeline::resync::Fence>,
    ) -> Result<ResyncReport, crate::pipeline::resync::ResyncError> {
        let mut push =
            PushOptions::new(self.integration_key.clone(), self.mapping.settings.clone());
        push.dry_run = dry_run;
        push.report_status = self.config.port.report_status.unwrap_or(true);
        push.interval_minutes = self.config.schedule.as_ref().map(|s| s.interval_minutes);
        let map = sync_map_options(&self.config.limits);
        resync(ResyncInputs {
            aws: self.aws.clone(),
            registry: self.registry.clone(),
            mapping: self.mapping.clone(),
            tenant_id: self.tenant_id.clone(),
            limits: self.limits.clone(),
            client: self.client.clone(),
            store: Some(self.store.clone()),
            push,
            map,
            progress,
            plugins: self.plugins.clone(),
            share: self.share.clone(),
            cancel,
            fence,
        })
        .await
    }

    /// Writes the HTML report where the config says; returns the path.
    pub fn write_report(&self, report: &ResyncReport) -> std::io::Result<std::path::PathBuf> {
        let path = self.config.report_path();
        let title = format!("Berth sync of {}", self.config.port.integration.identifier);
        let header =
            crate::pipeline::report::ReportHeader::for_report(self.config_source.clone(), report);
        std::fs::write(
            &path,
            crate::pipeline::report::html(report, &header, &self.mapping, &title),
        )?;
        Ok(path)
    }

    /// Writes the report of a resync that failed, where the config says; returns the path.
    /// `progress` tells whether reconciliation had begun (then some deletions may have been
    /// applied before the failure).
    pub fn write_failed_report(
        &self,
        error: &str,
        elapsed: Duration,
        dry_run: bool,
        progress: &Progress,
    ) -> std::io::Result<std::path::PathBuf> {
        let path = self.config.report_path();
        let title = format!("Berth sync of {}", self.config.port.integration.identifier);
        let header = crate::pipeline::report::ReportHeader::ended_now(
            self.config_source.clone(),
            elapsed,
            dry_run,
        );
        let reconciling = progress
            .snapshot()
            .done
            .contains(&crate::pipeline::resync::Stage::Upsert);
        std::fs::write(
            &path,
            crate::pipeline::report::failed_html(&header, error, &title, reconciling && !dry_run),
        )?;
        Ok(path)
    }
}

/// How a sync maps: `batchItems` items per plugin call, exactly as `berth map` does (never a
/// smaller size of its own), `concurrentBatches` at once.
pub(crate) fn sync_map_options(limits: &TenantLimits) -> MapOptions {
    MapOptions {
        jobs: limits.concurrent_batches.max(1),
        batch_items: limits.batch_items.max(1),
        ..MapOptions::default()
    }
}

/// The plugin registry over `dir`, its engine built with `engine` (a config file's
/// `limits.engine`, or `berth serve`'s `engine:`), with the files that could not be loaded
/// logged.
pub(crate) async fn open_registry(
    dir: &Path,
    engine: EngineLimits,
) -> anyhow::Result<Arc<Registry>> {
    if !dir.is_dir() {
        bail!(
            "plugin directory {} does not exist; build the plugins with `scripts/build-plugins` or set `plugins:`",
            dir.display()
        );
    }
    let engine = PluginEngine::new(engine)?;
    // The error names the directory; a context would say it twice.
    let registry = Registry::open(engine, AotCache::default_location(), dir).await?;
    // The first scan leaves its refusals to be reported here, once.
    for e in &registry.snapshot().errors {
        tracing::warn!("{}", e.message);
    }
    Ok(registry)
}

/// What `/metrics` and `/healthz` show of one tenant's resyncs.
#[derive(Debug, Default)]
pub(crate) struct RunState {
    pub(crate) resyncs: BTreeMap<&'static str, u64>,
    pub(crate) running: bool,
    /// Why `/healthz` answers 503 (`berth run` before its first setup); `None`: ready.
    pub(crate) not_ready: Option<String>,
    last_seconds: f64,
    last_end_unix: f64,
    last_success_unix: f64,
    /// Per resource entry: (phase, count).
    kinds: BTreeMap<String, BTreeMap<&'static str, u64>>,
    scopes: BTreeMap<&'static str, u64>,
    aws_calls: u64,
    aws_throttles: u64,
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl RunState {
    pub(crate) fn record(&mut self, r: &ResyncReport) {
        let outcome = if r.is_complete() {
            "completed"
        } else {
            "partial"
        };
        *self.resyncs.entry(outcome).or_default() += 1;
        self.last_seconds = r.elapsed.as_secs_f64();
        self.last_end_unix = unix_now();
        if r.is_complete() {
            self.last_success_unix = self.last_end_unix;
        }
        self.kinds.clear();
        for k in &r.push.kinds {
            let m = self.kinds.entry(k.identifier()).or_default();
            m.insert("extracted", k.raw_extracted);
            m.insert("transformed", k.transformed);
            m.insert("filtered_out", k.filtered_out);
            m.insert("transform_failed", k.transform_failed);
            m.insert("loaded", k.loaded);
            m.insert("load_failed", k.load_failed);
            m.insert("unchanged", k.skipped);
            m.insert("deleted", k.deleted);
        }
        self.scopes.clear();
        for s in &r.discovery.scopes {
            *self.scopes.entry(s.status.label()).or_default() += 1;
        }
        let c = r.discovery.calls();
        self.aws_calls += c.calls;
        self.aws_throttles += c.throttles;
    }

    /// The `/metrics` text of `berth run`.
    fn render(&self) -> String {
        render_metrics(&[(None, self)])
    }
}

/// Registers the per-run metrics, whether each is a labelled family or a plain metric (their
/// types differ, their names and help do not).
macro_rules! register_run {
    ($registry:ident, $running:ident, $last_seconds:ident, $last_success:ident, $calls:ident, $throttles:ident) => {
        $registry.register("berth_resync_running", RUNNING, $running);
        $registry.register("berth_last_resync_seconds", LAST_SECONDS, $last_seconds);
        $registry.register(
            "berth_last_success_timestamp_seconds",
            LAST_SUCCESS,
            $last_success,
        );
        $registry.register("berth_aws_calls", AWS_CALLS, $calls);
        $registry.register("berth_aws_throttles", AWS_THROTTLES, $throttles);
    };
}

const RESYNCS: &str = "Resyncs finished, by outcome";
const RUNNING: &str = "1 while a resync runs";
const LAST_SECONDS: &str = "Duration of the last resync";
const LAST_SUCCESS: &str = "End of the last complete resync";
const ENTITIES: &str = "Entities of the last resync, by resource entry and phase";
const SCOPES: &str = "Scopes of the last resync, by status";
const AWS_CALLS: &str = "AWS API calls";
const AWS_THROTTLES: &str = "AWS calls answered ThrottlingException";

/// The content type of [`render_metrics`]' text.
pub(crate) const METRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `/metrics` text (OpenMetrics, which Prometheus reads) of several run states, one per
/// tenant under `berth serve` (each sample then carries a `tenant` label, first). The run
/// states are snapshots, so each scrape registers their values in a fresh registry.
pub(crate) fn render_metrics(states: &[(Option<&str>, &RunState)]) -> String {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;
    use std::sync::atomic::AtomicU64;

    type Labels = Vec<(String, String)>;
    // The encoder writes label values as given: escape them as the exposition format says.
    let escape = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let labels = |tenant: Option<&str>, rest: &[(&str, &str)]| -> Labels {
        tenant
            .map(|t| ("tenant".to_string(), escape(t)))
            .into_iter()
            .chain(rest.iter().map(|(k, v)| (k.to_string(), escape(v))))
            .collect()
    };
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);

    let resyncs = Family::<Labels, Counter>::default();
    let entities = Family::<Labels, Gauge>::default();
    let scopes = Family::<Labels, Gauge>::default();
    let running = Family::<Labels, Gauge>::default();
    let last_seconds = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let last_success = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let aws_calls = Family::<Labels, Counter>::default();
    let aws_throttles = Family::<Labels, Counter>::default();
    for (t, st) in states {
        let t = *t;
        for (outcome, n) in &st.resyncs {
            resyncs
                .get_or_create(&labels(t, &[("outcome", outcome)]))
                .inc_by(*n);
        }
        for (kind, phases) in &st.kinds {
            for (phase, n) in phases {
                entities
                    .get_or_create(&labels(t, &[("kind", kind), ("phase", phase)]))
                    .set(count(*n));
            }
        }
        for (status, n) in &st.scopes {
            scopes
                .get_or_create(&labels(t, &[("status", status)]))
                .set(count(*n));
        }
        let me = labels(t, &[]);
        running.get_or_create(&me).set(i64::from(st.running));
        last_seconds.get_or_create(&me).set(st.last_seconds);
        last_success.get_or_create(&me).set(st.last_success_unix);
        aws_calls.get_or_create(&me).inc_by(st.aws_calls);
        aws_throttles.get_or_create(&me).inc_by(st.aws_throttles);
    }
    let mut registry = Registry::default();
    // Counters are registered without `_total`: the encoder appends it to each sample.
    registry.register("berth_resyncs", RESYNCS, resyncs);
    registry.register("berth_entities", ENTITIES, entities);
    registry.register("berth_scopes", SCOPES, scopes);
    if let [(None, st)] = states {
        // `berth run`'s one untenanted state: no labels at all (a family would print `{}`).
        let running = Gauge::<i64>::default();
        running.set(i64::from(st.running));
        let last_seconds = Gauge::<f64, AtomicU64>::default();
        last_seconds.set(st.last_seconds);
        let last_success = Gauge::<f64, AtomicU64>::default();
        last_success.set(st.last_success_unix);
        let aws_calls = Counter::<u64>::default();
        aws_calls.inc_by(st.aws_calls);
        let aws_throttles = Counter::<u64>::default();
        aws_throttles.inc_by(st.aws_throttles);
        register_run!(
            registry,
            running,
            last_seconds,
            last_success,
            aws_calls,
            aws_throttles
        );
    } else {
        register_run!(
            registry,
            running,
            last_seconds,
            last_success,
            aws_calls,
            aws_throttles
        );
    }
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut text, &registry);
    text
}

/// Options of `berth run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// One resync, then exit (for hosted schedulers).
    pub once: bool,
    /// Where `/metrics` and `/healthz` listen (none: no endpoint).
    pub listen: Option<std::net::SocketAddr>,
}

/// Why the loop wakes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Start,
    Interval,
    PortRequest,
}

/// `berth run` from a config file: serves `/metrics` and `/healthz` first, then builds the
/// setup, waiting for Port with backoff while it cannot be reached (`/healthz` answers 503
/// with the reason meanwhile; SIGTERM stops the wait), then resyncs until SIGTERM/SIGINT.
/// With `--once` an unreachable Port is an error at once, as for `berth sync`. Returns the
/// exit code of the last resync.
pub async fn run_config(
    config_path: &Path,
    plugins: &Path,
    opts: RunOptions,
) -> anyhow::Result<std::process::ExitCode> {
    let state = Arc::new(Mutex::new(RunState {
        not_ready: Some("not ready: starting".into()),
        ..RunState::default()
    }));
    let stop_rx = stop_on_signal();
    let _server = match opts.listen {
        Some(addr) => Some(serve_metrics(addr, state.clone()).await?),
        None => None,
    };
    let local = LocalParts::open(config_path, plugins).await?;
    let Some(setup) = setup_when_port_answers(&local, &opts, &state, stop_rx.clone()).await? else {
        return Ok(std::process::ExitCode::SUCCESS);
    };
    lock(&state).not_ready = None;
    run_loop(Arc::new(setup), opts, state, stop_rx).await
}

/// `berth run` with a setup already built: resyncs until SIGTERM/SIGINT. Returns the exit
/// code of the last resync.
pub async fn run(setup: Setup, opts: RunOptions) -> anyhow::Result<std::process::ExitCode> {
    let state = Arc::new(Mutex::new(RunState::default()));
    let stop_rx = stop_on_signal();
    let _server = match opts.listen {
        Some(addr) => Some(serve_metrics(addr, state.clone()).await?),
        None => None,
    };
    run_loop(Arc::new(setup), opts, state, stop_rx).await
}

/// A receiver that turns true on SIGTERM/SIGINT.
fn stop_on_signal() -> watch::Receiver<bool> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::warn!("stop requested: abandoning the running resync before reconciliation");
        let _ = stop_tx.send(true);
    });
    stop_rx
}

/// Builds the setup, again and again while Port cannot be reached (connection failures,
/// 429/5xx after the client's own retries), each wait (`limits.port.startupBaseDelayMs`,
/// doubling up to `startupMaxDelayMs`) logged and shown by `/healthz`. Any
/// other failure (config, credentials refused, a bad mapping) is returned at once. `None`:
/// stopped while waiting.
async fn setup_when_port_answers(
    local: &LocalParts,
    opts: &RunOptions,
    state: &Mutex<RunState>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<Setup>> {
    let port = &local.config.limits.port;
    let backoff = RetryPolicy {
        max_attempts: u32::MAX,
        base_delay: port.startup_base_delay,
        max_delay: port.startup_max_delay,
        jitter: port.retry.jitter,
    };
    let mut attempt = 0u32;
    loop {
        // Port is reached first on its own, so that a failure to reach it is told apart from
        // a setup error that merely mentions Port (e.g. a mapping `fromPort` that is invalid).
        let client = local.config.port_client()?;
        // The setup reuses this client, so Port is asked for a token once.
        let built = match client.check_access().await {
            Ok(()) => local.build(false, Some(client)).await,
            Err(e) => Err(anyhow::Error::new(e)),
        };
        let e = match built {
            Ok(setup) => return Ok(Some(setup)),
            Err(e) if opts.once || !port_unavailable(&e) => return Err(e),
            Err(e) => e,
        };
        let wait = backoff.delay(attempt, None, crate::catalog::port::retry::jitter_unit());
        let reason = format!("not ready: {e:#}");
        tracing::warn!(
            "{reason}; setup attempt {} failed, next in {:.1}s",
            attempt + 1,
            wait.as_secs_f64()
        );
        lock(state).not_ready = Some(reason);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return Ok(None),
        }
        attempt = attempt.saturating_add(1);
    }
}

/// Whether `e` says Port is down or overloaded (worth waiting for), not that Berth is wrong.
fn port_unavailable(e: &anyhow::Error) -> bool {
    let busy = |status: u16| status == 429 || status >= 500;
    e.chain().any(|c| match c.downcast_ref::<PortError>() {
        Some(PortError::Transport { .. }) => true,
        Some(PortError::Auth { status, .. } | PortError::Rejected { status, .. }) => busy(*status),
        _ => false,
    })
}

async fn run_loop(
    setup: Arc<Setup>,
    opts: RunOptions,
    state: Arc<Mutex<RunState>>,
    stop_rx: watch::Receiver<bool>,
) -> anyhow::Result<std::process::ExitCode> {
    let schedule = setup.config.schedule.clone().unwrap_or_default();
    let interval = Duration::from_secs(schedule.interval_minutes * 60);
    let poll = (schedule.poll_seconds > 0).then(|| Duration::from_secs(schedule.poll_seconds));
    let mut watermark = match setup.client.resync_request().await {
        Ok(r) => r.map(|r| r.updated_at),
        Err(e) => {
            tracing::warn!("cannot read Port's resync request: {e}");
            None
        }
    };
    let mut next_interval = Instant::now() + interval;
    let mut pending = if schedule.resync_on_start || opts.once {
        Some(Trigger::Start)
    } else {
        None
    };
    let mut code = std::process::ExitCode::SUCCESS;
    loop {
        if *stop_rx.borrow() {
            break;
        }
        if let Some(trigger) = pending.take() {
            tracing::info!(?trigger, "resync starting");
            lock(&state).running = true;
            let started = Instant::now();
            let progress = Arc::new(Progress::default());
            let outcome = setup
                .resync(false, progress.clone(), Some(stop_rx.clone()), None)
                .await;
            lock(&state).running = false;
            next_interval = Instant::now() + interval;
            match outcome {
                Ok(report) => {
                    lock(&state).record(&report);
                    tracing::info!(
                        complete = report.is_complete(),
                        seconds = report.elapsed.as_secs_f64(),
                        loaded = report.push.loaded,
                        deleted = report.push.deleted,
                        "resync finished"
                    );
                    if let Err(e) = setup.write_report(&report) {
                        tracing::warn!("cannot write the report: {e}");
                    }
                    code = if report.is_complete() {
                        std::process::ExitCode::SUCCESS
                    } else {
                        std::process::ExitCode::from(1)
                    };
                }
                Err(e) => {
                    *lock(&state).resyncs.entry("failed").or_default() += 1;
                    tracing::error!("resync failed: {e}");
                    if let Err(w) = setup.write_failed_report(
                        &e.to_string(),
                        started.elapsed(),
                        false,
                        &progress,
                    ) {
                        tracing::warn!("cannot write the report: {w}");
                    }
                    code = std::process::ExitCode::from(2);
                }
            }
            if opts.once {
                break;
            }
            // A trigger that came in while it ran: one more resync, right away.
            if let Some(t) = poll_request(&setup, &mut watermark).await {
                pending = Some(t);
                continue;
            }
        }
        let wake = match poll {
            Some(p) => (Instant::now() + p).min(next_interval),
            None => next_interval,
        };
        let mut stop = stop_rx.clone();
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = stop.changed() => break,
        }
        if Instant::now() >= next_interval {
            pending = Some(Trigger::Interval);
        } else if poll.is_some()
            && let Some(t) = poll_request(&setup, &mut watermark).await
        {
            pending = Some(t);
        }
    }
    Ok(code)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A resync request newer than the watermark (and moves the watermark).
async fn poll_request(setup: &Setup, watermark: &mut Option<String>) -> Option<Trigger> {
    match setup.client.resync_request().await {
        Ok(Some(r)) if watermark.as_deref() != Some(r.updated_at.as_str()) => {
            tracing::info!(
                request = r.id.as_deref().unwrap_or("?"),
                at = r.updated_at,
                "Port asked for a resync"
            );
            *watermark = Some(r.updated_at);
            Some(Trigger::PortRequest)
        }
        Ok(_) => None,
        Err(e) => {
            tracing::warn!("cannot read Port's resync request: {e}");
            None
        }
    }
}

pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve_metrics(
    addr: std::net::SocketAddr,
    state: Arc<Mutex<RunState>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let metrics_state = state.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let body = lock(&metrics_state).render();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
                        body,
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let not_ready = lock(&state).not_ready.clone();
                async move {
                    match not_ready {
                        None => (StatusCode::OK, "ok\n".to_string()),
                        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> RunState {
        let mut st = RunState::default();
        st.resyncs.insert("completed", 2);
        st.running = true;
        st.kinds.insert(
            "AWS::EC2::Instance-2".into(),
            BTreeMap::from([("loaded", 12)]),
        );
        st.scopes.insert("complete", 6);
        st.aws_calls = 40;
        st
    }

    /// `batchItems` is the sync's batch size as it is `berth map`'s: 200 in the file is 200 per
    /// plugin call, not capped to a smaller sync size; the environment overrides the file.
    #[test]
    fn the_sync_batch_size_is_batch_items() {
        let text = "port:\n  clientId: x\n  clientSecret: {env: X}\n  integration: {identifier: i}\n\
                    limits: {batchItems: 200, concurrentBatches: 5}\n";
        let mut c = Config::parse(text, "c.yaml").unwrap();
        let m = sync_map_options(&c.limits);
        assert_eq!((m.batch_items, m.jobs), (200, 5));
        c.limits
            .apply_env(|v| (v == "BERTH_BATCH_ITEMS").then(|| "7".to_string()))
            .unwrap();
        assert_eq!(sync_map_options(&c.limits).batch_items, 7);
        let d = sync_map_options(&TenantLimits::default());
        assert_eq!(d.batch_items, crate::limits::DEFAULT_BATCH_ITEMS);
        assert_eq!(
            d.batch_items,
            MapOptions::default().batch_items,
            "one default"
        );
    }

    #[test]
    fn metrics_of_berth_run_have_no_empty_label_sets() {
        let st = state();
        let text = render_metrics(&[(None, &st)]);
        for line in [
            "# TYPE berth_resyncs counter",
            "berth_resyncs_total{outcome=\"completed\"} 2",
            "berth_resync_running 1",
            "berth_entities{kind=\"AWS::EC2::Instance-2\",phase=\"loaded\"} 12",
            "berth_scopes{status=\"complete\"} 6",
            "berth_aws_calls_total 40",
            "berth_aws_throttles_total 0",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
        assert!(!text.contains("{}"), "{text}");
    }

    #[test]
    fn metrics_of_tenants_carry_the_tenant_first_and_escape_values() {
        let a = state();
        let mut b = RunState::default();
        b.kinds
            .insert("odd\"kind\\".into(), BTreeMap::from([("loaded", 1)]));
        let text = render_metrics(&[(Some("x"), &a), (Some("y"), &b)]);
        for line in [
            "berth_resyncs_total{tenant=\"x\",outcome=\"completed\"} 2",
            "berth_resync_running{tenant=\"x\"} 1",
            "berth_resync_running{tenant=\"y\"} 0",
            "berth_entities{tenant=\"y\",kind=\"odd\\\"kind\\\\\",phase=\"loaded\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
    }

    #[test]
    fn only_an_unreachable_or_busy_port_is_waited_for() {
        let transport = anyhow::Error::new(PortError::Transport {
            url: "http://127.0.0.1:9/v1/auth/access_token".into(),
            attempts: 3,
            cause: "connection refused".into(),
        })
        .context("ensuring blueprints");
        assert!(port_unavailable(&transport));
        let busy = anyhow::Error::new(PortError::Auth {
            status: 503,
            message: "down".into(),
        });
        assert!(port_unavailable(&busy));
        let refused = anyhow::Error::new(PortError::Auth {
            status: 401,
            message: "bad credentials".into(),
        });
        assert!(!port_unavailable(&refused));
        assert!(!port_unavailable(&anyhow::anyhow!("mapping: bad YAML")));
    }
}
