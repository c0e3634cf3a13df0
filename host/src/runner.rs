//! `berth sync` and `berth run`: building a resync from the config file, and the long-running
//! loop around it.
//!
//! Owns: [`Setup`] (what lives across resyncs: the AWS tenant, the plugin registry, the Port
//! client, the state store, the mapping), the triggers of `berth run` (on start, every
//! interval, when Port's resync-request watermark moves, as Ocean's POLLING listener does),
//! single flight (a resync due while one runs is queued once, never run twice at once, never
//! dropped), the graceful stop (SIGTERM/SIGINT abandon the running resync before its
//! reconciliation, so no deletion is half applied) and the `/metrics` and `/healthz`
//! endpoints. Must not touch: what a resync does; that is [`crate::resync`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::watch;

use crate::aws::{AwsLimits, AwsTenant};
use crate::config::Config;
use crate::limits::{EngineLimits, Limits};
use crate::map::MapOptions;
use crate::mapping::MappingFile;
use crate::plugin::{AotCache, PluginEngine, Registry};
use crate::port::PortClient;
use crate::resync::{Progress, ResyncInputs, ResyncReport, resync};
use crate::store::Store;
use crate::sync::PushOptions;

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
    pub share: Option<(Arc<crate::fair::WorkBudget>, u32)>,
}

impl Setup {
    /// Reads the config and builds everything; `plugins` is used when the config names no
    /// plugin directory. Blueprints are ensured unless `dry_run`.
    pub async fn prepare(
        config_path: &Path,
        plugins: &Path,
        dry_run: bool,
    ) -> anyhow::Result<Self> {
        let config = Config::from_path(config_path)?;
        if config.aws.is_none() {
            bail!(
                "{}: no `aws:` section; a sync needs to know how to reach AWS",
                config_path.display()
            );
        }
        let dir = config
            .plugins_dir()
            .unwrap_or_else(|| plugins.to_path_buf());
        let registry = open_registry(&dir).await?;
        let mut limits = Limits::from_env().map_err(anyhow::Error::msg)?;
        config.limits.apply(&mut limits);
        let store = config.open_store().await?;
        let key = config.integration_key();
        Self::build(config, registry, store, limits, "local", key, dry_run).await
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
        let Some(aws_config) = config.aws.clone() else {
            bail!("no `aws:` section; a sync needs to know how to reach AWS");
        };
        let client = config.port_client()?;
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
        let aws = AwsTenant::new(tenant_id, aws_config, AwsLimits::default())?;
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
        })
    }

    /// One resync with this setup.
    pub async fn resync(
        &self,
        dry_run: bool,
        progress: Arc<Progress>,
        cancel: Option<watch::Receiver<bool>>,
        fence: Option<crate::resync::Fence>,
    ) -> Result<ResyncReport, crate::resync::ResyncError> {
        let mut push =
            PushOptions::new(self.integration_key.clone(), self.mapping.settings.clone());
        push.dry_run = dry_run;
        push.report_status = self.config.port.report_status.unwrap_or(true);
        push.interval_minutes = self.config.schedule.as_ref().map(|s| s.interval_minutes);
        let map = MapOptions {
            jobs: self.limits.sync_concurrent_batches.max(1),
            batch_items: self
                .limits
                .max_batch_items
                .min(self.limits.sync_batch_items)
                .max(1),
            ..MapOptions::default()
        };
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
        std::fs::write(&path, crate::report::html(report, &self.mapping, &title))?;
        Ok(path)
    }
}

/// The plugin registry over `dir`, with the files that could not be loaded logged.
pub(crate) async fn open_registry(dir: &Path) -> anyhow::Result<Arc<Registry>> {
    if !dir.is_dir() {
        bail!(
            "plugin directory {} does not exist; build the plugins with `scripts/build-plugins` or set `plugins:`",
            dir.display()
        );
    }
    let engine = PluginEngine::new(EngineLimits::default())?;
    let registry = Registry::open(engine, AotCache::default_location(), dir)
        .await
        .with_context(|| format!("loading plugins from {}", dir.display()))?;
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

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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

    /// The Prometheus text exposition format (version 0.0.4).
    fn render(&self) -> String {
        render_metrics(&[(None, self)])
    }
}

/// The Prometheus text exposition format (version 0.0.4) of several run states, one per
/// tenant under `berth serve` (each sample then carries a `tenant` label). Written by hand: a
/// handful of families, no histogram, so a metrics library would add more than it saves.
pub(crate) fn render_metrics(states: &[(Option<&str>, &RunState)]) -> String {
    let mut s = String::new();
    // Every sample of a family follows its one HELP/TYPE header.
    let family = |s: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    let labels = |tenant: Option<&str>, rest: &[(&str, &str)]| -> String {
        let mut all: Vec<String> = tenant
            .map(|t| format!("tenant=\"{}\"", label(t)))
            .into_iter()
            .collect();
        all.extend(rest.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))));
        if all.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", all.join(","))
        }
    };
    family(
        &mut s,
        "berth_resyncs_total",
        "counter",
        "Resyncs finished, by outcome.",
    );
    for (t, st) in states {
        for (o, n) in &st.resyncs {
            let _ = writeln!(
                s,
                "berth_resyncs_total{} {n}",
                labels(*t, &[("outcome", o)])
            );
        }
    }
    family(
        &mut s,
        "berth_resync_running",
        "gauge",
        "1 while a resync runs.",
    );
    for (t, st) in states {
        let _ = writeln!(
            s,
            "berth_resync_running{} {}",
            labels(*t, &[]),
            u8::from(st.running)
        );
    }
    family(
        &mut s,
        "berth_last_resync_seconds",
        "gauge",
        "Duration of the last resync.",
    );
    for (t, st) in states {
        let _ = writeln!(
            s,
            "berth_last_resync_seconds{} {}",
            labels(*t, &[]),
            st.last_seconds
        );
    }
    family(
        &mut s,
        "berth_last_success_timestamp_seconds",
        "gauge",
        "End of the last complete resync.",
    );
    for (t, st) in states {
        let _ = writeln!(
            s,
            "berth_last_success_timestamp_seconds{} {}",
            labels(*t, &[]),
            st.last_success_unix
        );
    }
    family(
        &mut s,
        "berth_entities",
        "gauge",
        "Entities of the last resync, by resource entry and phase.",
    );
    for (t, st) in states {
        for (kind, phases) in &st.kinds {
            for (phase, n) in phases {
                let _ = writeln!(
                    s,
                    "berth_entities{} {n}",
                    labels(*t, &[("kind", kind), ("phase", phase)])
                );
            }
        }
    }
    family(
        &mut s,
        "berth_scopes",
        "gauge",
        "Scopes of the last resync, by status.",
    );
    for (t, st) in states {
        for (status, n) in &st.scopes {
            let _ = writeln!(s, "berth_scopes{} {n}", labels(*t, &[("status", status)]));
        }
    }
    family(&mut s, "berth_aws_calls_total", "counter", "AWS API calls.");
    for (t, st) in states {
        let _ = writeln!(
            s,
            "berth_aws_calls_total{} {}",
            labels(*t, &[]),
            st.aws_calls
        );
    }
    family(
        &mut s,
        "berth_aws_throttles_total",
        "counter",
        "AWS calls answered ThrottlingException.",
    );
    for (t, st) in states {
        let _ = writeln!(
            s,
            "berth_aws_throttles_total{} {}",
            labels(*t, &[]),
            st.aws_throttles
        );
    }
    s
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

/// `berth run`: resyncs until SIGTERM/SIGINT. Returns the exit code of the last resync.
pub async fn run(setup: Setup, opts: RunOptions) -> anyhow::Result<std::process::ExitCode> {
    let setup = Arc::new(setup);
    let state = Arc::new(Mutex::new(RunState::default()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let _server = match opts.listen {
        Some(addr) => Some(serve_metrics(addr, state.clone()).await?),
        None => None,
    };
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::warn!("stop requested: abandoning the running resync before reconciliation");
        let _ = stop_tx.send(true);
    });
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
            let outcome = setup
                .resync(
                    false,
                    Arc::new(Progress::default()),
                    Some(stop_rx.clone()),
                    None,
                )
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
    use axum::routing::get;
    let metrics_state = state.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let body = lock(&metrics_state).render();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        body,
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    }))
}
