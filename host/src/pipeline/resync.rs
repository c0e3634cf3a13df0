//! One resync, end to end: AWS discovery → plugins (enrich + map) → Port (upsert, reconcile,
//! status), as one streaming pipeline.
//!
//! Owns the wiring between the three stages and nothing of their insides: pages flow from
//! discovery into the map pipeline as they arrive, mapped batches flow into the
//! [`Pusher`](crate::catalog::Pusher) as they finish, every channel is bounded (memory does not
//! grow with the estate), and the completeness of each (account, region, kind) scope, from
//! discovery and from mapping, reaches reconciliation. Must not touch: AWS calls, plugin
//! calls or Port calls directly; those belong to [`discovery`](crate::discovery), [`map`](crate::pipeline::map) and
//! [`catalog`](crate::catalog).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::catalog::port::PortClient;
use crate::catalog::push::{EntityIn, PushError, PushReport};
use crate::catalog::{PushOptions, Pusher};
use crate::discovery::{AwsTenant, DiscoveryReport, Event};
use crate::limits::Limits;
use crate::mapping::MappingFile;
use crate::pipeline::map::{MapOptions, Mapped, RawInput, Summary};
use crate::plugin::lookup::AwsLookup;
use crate::plugin::{Registry, Tenant};
use crate::scope::{ENTITIES_FAILED, ScopeKey};
use crate::store::Store;

/// Why a resync could not run at all (per-item and per-scope failures are in the report).
///
/// The AWS variants print their cause themselves and do not also expose it as `source()`:
/// `{:#}` would print it twice.
#[derive(Debug, thiserror::Error)]
pub enum ResyncError {
    #[error("AWS: {0}")]
    Aws(crate::discovery::AwsError),
    #[error("AWS configuration: {0}")]
    AwsConfig(crate::discovery::config::AwsConfigError),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error("a resync stage stopped unexpectedly: {0}")]
    Stage(String),
    #[error("the resync was abandoned before reconciliation (stop requested); nothing was deleted")]
    Cancelled,
    #[error(
        "the resync lost its right to reconcile (its lease passed to another worker); nothing was deleted"
    )]
    Fenced,
}

impl From<crate::discovery::AwsError> for ResyncError {
    fn from(e: crate::discovery::AwsError) -> Self {
        Self::Aws(e)
    }
}

impl From<crate::discovery::config::AwsConfigError> for ResyncError {
    fn from(e: crate::discovery::config::AwsConfigError) -> Self {
        Self::AwsConfig(e)
    }
}

/// Asked once, right before reconciliation: may this resync still delete? `berth serve`
/// renews the tenant's lease here, so a worker that stalled past its lease (and whose tenant
/// another worker may now be syncing) never reconciles; a heartbeat alone would notice only
/// at its next beat.
pub type Fence = Arc<dyn Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

/// Live counts per kind, for a progress display.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KindProgress {
    pub discovered: u64,
    pub mapped: u64,
    pub scopes_done: u64,
    pub scopes_incomplete: u64,
}

/// The stages of a resync, in the order they finish (they overlap while items stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Discover,
    Map,
    Upsert,
    Reconcile,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Discover, Stage::Map, Stage::Upsert, Stage::Reconcile];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Discover => "discover",
            Stage::Map => "map",
            Stage::Upsert => "upsert",
            Stage::Reconcile => "reconcile",
        }
    }
}

/// What a running resync has done so far, counted where the final report counts it (so a
/// display that reads it at the end shows the report's numbers): items per kind as discovery
/// hands them over, entities per resource entry as they reach the Port side, scopes as they end.
#[derive(Debug, Default)]
pub struct Progress {
    inner: Mutex<ProgressSnapshot>,
}

/// A copy of [`Progress`] at one instant.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub kinds: BTreeMap<String, KindProgress>,
    /// Entities mapped per resource entry (by index).
    pub entries: BTreeMap<usize, u64>,
    /// Stages that have finished.
    pub done: Vec<Stage>,
}

impl ProgressSnapshot {
    /// The first stage not finished yet (`None`: all are).
    pub fn current(&self) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| !self.done.contains(s))
    }
}

impl Progress {
    pub fn snapshot(&self) -> ProgressSnapshot {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressSnapshot> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called per discovered item: the kind's name is copied only the first time.
    fn update(&self, kind: &str, f: impl FnOnce(&mut KindProgress)) {
        let mut p = self.lock();
        if !p.kinds.contains_key(kind) {
            p.kinds.insert(kind.to_string(), KindProgress::default());
        }
        if let Some(k) = p.kinds.get_mut(kind) {
            f(k);
        }
    }

    #[cfg(test)]
    pub(crate) fn discovered_for_test(&self, kind: &str, n: u64) {
        self.update(kind, |k| k.discovered += n);
    }

    /// Entities of one batch of `kind` that reached the Port side, per resource entry.
    pub(crate) fn mapped(&self, kind: &str, per_entry: &BTreeMap<usize, u64>) {
        let total: u64 = per_entry.values().sum();
        self.update(kind, |k| k.mapped += total);
        let mut p = self.lock();
        for (entry, n) in per_entry {
            *p.entries.entry(*entry).or_default() += n;
        }
    }

    /// Marks `stage` finished (once; later marks are ignored).
    pub fn finished(&self, stage: Stage) {
        let mut p = self.lock();
        if !p.done.contains(&stage) {
            p.done.push(stage);
        }
    }
}

/// Everything one resync needs. The AWS tenant, registry and client are kept across resyncs.
pub struct ResyncInputs {
    pub aws: Arc<AwsTenant>,
    pub registry: Arc<Registry>,
    pub mapping: Arc<MappingFile>,
    /// The tenant's sandbox limits (the plugin tenant is built per resync, since its lookups
    /// belong to this resync's AWS session).
    pub tenant_id: String,
    pub limits: Limits,
    pub client: PortClient,
    pub store: Option<Store>,
    pub push: PushOptions,
    pub map: MapOptions,
    pub progress: Arc<Progress>,
    /// The plugins this tenant may use (`None`: all) and its share of a process-wide work
    /// budget (`berth serve`); see [`Tenant`].
    pub plugins: Option<Arc<std::collections::BTreeSet<String>>>,
    pub share: Option<(Arc<crate::plugin::fair::WorkBudget>, u32)>,
    /// Set to true to abandon the resync: it stops before reconciliation (never in the middle
    /// of it), deletes nothing and tells Port it was aborted.
    pub cancel: Option<tokio::sync::watch::Receiver<bool>>,
    /// See [`Fence`]; `None`: nothing else can own this integration.
    pub fence: Option<Fence>,
}

/// What a resync did, stage by stage.
#[derive(Debug)]
pub struct ResyncReport {
    pub discovery: DiscoveryReport,
    pub map: Summary,
    pub push: PushReport,
    /// AWS calls the plugins' lookups made, per API and type (`GetResource AWS::EC2::Subnet`).
    pub lookups: BTreeMap<String, crate::discovery::call::CallCounts>,
    pub elapsed: Duration,
}

impl ResyncReport {
    /// True when every account and scope was read, every item mapped and every entity landed.
    pub fn is_complete(&self) -> bool {
        self.discovery.is_complete()
            && self.map.error_count() == 0
            && self.push.outcome == crate::catalog::push::Outcome::Completed
    }
}

/// Runs one resync. Port is told it is running before any resource is read, and how it
/// ended after.
pub async fn resync(inp: ResyncInputs) -> Result<ResyncReport, ResyncError> {
    let started = Instant::now();
    let mut push_opts = inp.push.clone();
    push_opts.input_scopes_complete = false;
    // Port's side opens while AWS's credentials and account list are fetched: both are round
    // trips that do not depend on each other, and discovery waits for both.
    let (pusher, sync) = tokio::join!(
        Pusher::begin(inp.client.clone(), inp.store.clone(), push_opts),
        inp.aws.start_sync()
    );
    let mut pusher = pusher?;
    let sync = match sync {
        Ok(s) => s,
        Err(e) => {
            return Err(abandon(pusher, false, ResyncError::from(e)).await);
        }
    };
    let kinds = match crate::discovery::kinds_from_mapping(&inp.mapping) {
        Ok(k) => k,
        Err(e) => {
            return Err(abandon(pusher, false, ResyncError::from(e)).await);
        }
    };
    let lookup = Arc::new(AwsLookup::new(sync.clone()));
    let mut tenant = Tenant::new(&inp.tenant_id, inp.limits.clone(), lookup.clone());
    tenant.plugins = inp.plugins.clone();
    tenant.share = inp.share.clone();
    let channel = inp.aws.limits().channel_items.max(1);
    let (disc_tx, mut disc_rx) = mpsc::channel::<Event>(channel);
    let (raw_tx, raw_rx) =
        mpsc::channel::<Vec<RawInput>>(channel.div_ceil(crate::limits::MAP_INPUT_CHUNK).max(1));
    let (mapped_tx, mut mapped_rx) = mpsc::channel::<Mapped>(inp.map.jobs.max(1) * 4);

    let known_accounts: Option<std::collections::HashSet<String>> = sync
        .accounts_are_authoritative()
        .then(|| sync.accounts().iter().map(|a| a.id.clone()).collect());
    let discovery = tokio::spawn(crate::discovery::discover(sync, kinds, disc_tx));
    // Discovery events → raw items for mapping; scope ends are kept for reconciliation.
    let progress = inp.progress.clone();
    let forward = tokio::spawn(async move {
        let mut raw_per_kind: BTreeMap<String, u64> = BTreeMap::new();
        let mut chunk = Vec::new();
        while let Some(ev) = disc_rx.recv().await {
            match ev {
                Event::Item(item) => {
                    *raw_per_kind.entry(item.kind.clone()).or_default() += 1;
                    progress.update(&item.kind, |k| k.discovered += 1);
                    let (scope, line) = item.into_parts();
                    chunk.push(RawInput::Item {
                        place: Some(scope.place()),
                        kind: scope.kind,
                        line,
                    });
                    // Items that arrived together go on together: one wake-up of the map
                    // stage per chunk, and none held back once discovery pauses.
                    if (chunk.len() >= crate::limits::MAP_INPUT_CHUNK || disc_rx.is_empty())
                        && raw_tx.send(std::mem::take(&mut chunk)).await.is_err()
                    {
                        break;
                    }
                }
                Event::Scope(r) => progress.update(&r.key.kind, |k| {
                    if r.status.is_complete() {
                        k.scopes_done += 1;
                    } else {
                        k.scopes_incomplete += 1;
                    }
                }),
                Event::Account(_) => {}
            }
        }
        if !chunk.is_empty() {
            let _ = raw_tx.send(chunk).await;
        }
        progress.finished(Stage::Discover);
        raw_per_kind
    });
    let mapping = tokio::spawn(crate::pipeline::map::run_stream(
        inp.registry.clone(),
        inp.mapping.clone(),
        tenant,
        raw_rx,
        mapped_tx,
        inp.map.clone(),
    ));

    let mut transformed: BTreeMap<(String, usize), u64> = BTreeMap::new();
    let mut failure: Option<ResyncError> = None;
    let mut cancel = inp.cancel.clone();
    let cancelled =
        |c: &Option<tokio::sync::watch::Receiver<bool>>| c.as_ref().is_some_and(|c| *c.borrow());
    loop {
        let next = match cancel.as_mut() {
            Some(c) => tokio::select! {
                b = mapped_rx.recv() => b,
                _ = c.changed() => {
                    if *c.borrow() {
                        failure = Some(ResyncError::Cancelled);
                        break;
                    }
                    continue;
                }
            },
            None => mapped_rx.recv().await,
        };
        let Some(batch) = next else {
            inp.progress.finished(Stage::Map);
            break;
        };
        let scope = match &batch.place {
            Some(place) => ScopeKey::at(place, &batch.kind),
            // Not from discovery: every item it hands over has a place.
            None => ScopeKey::new("?", "?", &batch.kind),
        };
        if batch.failed_items > 0 {
            pusher.scopes_mut().fail(&scope, ENTITIES_FAILED);
        }
        // Counted once per batch and entry, not per entity: this loop is the sync's hot path.
        let mut per_entry: BTreeMap<usize, u64> = BTreeMap::new();
        for (index, _) in &batch.entities {
            *per_entry.entry(*index).or_default() += 1;
        }
        for (index, n) in &per_entry {
            *transformed.entry((batch.kind.clone(), *index)).or_default() += n;
        }
        inp.progress.mapped(&batch.kind, &per_entry);
        for (index, mapped) in batch.entities {
            // Field by field, never parsed: the body goes to Port as the plugin wrote it (the
            // plugin host has checked it).
            let entity = crate::catalog::port::Entity {
                blueprint: mapped.blueprint,
                identifier: mapped.identifier,
                relation_targets: mapped.relation_targets,
                body: mapped.body,
            };
            let item = EntityIn {
                entity,
                scope: scope.clone(),
                kind: batch.kind.clone(),
                kind_index: index,
            };
            if let Err(e) = pusher.add(item).await {
                failure = Some(e.into());
                break;
            }
        }
        if failure.is_some() {
            break;
        }
    }
    drop(mapped_rx);
    if failure.is_none() && cancelled(&cancel) {
        failure = Some(ResyncError::Cancelled);
    }
    if let Some(e) = failure {
        // Let the other stages wind down; nothing is reconciled.
        discovery.abort();
        let aborted = matches!(e, ResyncError::Cancelled);
        return Err(abandon(pusher, aborted, e).await);
    }
    // A stage that panicked ends the resync before reconciliation: what it would have
    // produced is unknown. Port hears that the resync failed.
    let stages = async {
        let raw_per_kind = forward
            .await
            .map_err(|e| ResyncError::Stage(format!("discovery forwarder: {e}")))?;
        let summary = mapping
            .await
            .map_err(|e| ResyncError::Stage(format!("mapping: {e}")))?;
        let report = discovery
            .await
            .map_err(|e| ResyncError::Stage(format!("discovery: {e}")))?;
        Ok::<_, ResyncError>((raw_per_kind, summary, report))
    };
    let (raw_per_kind, summary, report) = match stages.await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            return Err(abandon(pusher, false, e).await);
        }
    };

    for s in &report.scopes {
        pusher.scopes_mut().set(&s.key, s.status.clone());
    }
    if let Some(known) = &known_accounts {
        pusher.retire_accounts_not_in(known);
    }
    // A mapping that produced nothing from items it was given proves nothing gone.
    for (index, why) in summary.failed_entries(&inp.mapping) {
        let blueprint = inp
            .mapping
            .resources
            .get(index)
            .and_then(|r| r.constant_blueprint());
        pusher.block_entry(index, blueprint.as_deref(), &why);
    }
    for r in inp.mapping.resources.iter() {
        let c = pusher.counters_mut(&r.kind, r.index);
        c.raw_extracted = raw_per_kind.get(&r.kind).copied().unwrap_or(0);
        c.transformed = transformed
            .get(&(r.kind.clone(), r.index))
            .copied()
            .unwrap_or(0);
    }
    // Filtered and failed counts are kept per kind; Ocean reports them per entry, so they go
    // to the kind's first entry.
    for (kind, stats) in &summary.kinds {
        if let Some(first) = inp.mapping.for_kind(kind).next() {
            let c = pusher.counters_mut(kind, first.index);
            c.filtered_out = stats.filtered_out;
            c.transform_failed = stats.errors;
        }
    }
    // Last point at which a stop abandons the resync: reconciliation runs to its end.
    if cancelled(&cancel) {
        return Err(abandon(pusher, true, ResyncError::Cancelled).await);
    }
    if let Some(fence) = &inp.fence
        && !fence().await
    {
        return Err(abandon(pusher, true, ResyncError::Fenced).await);
    }
    pusher.drain().await?;
    inp.progress.finished(Stage::Upsert);
    let push = pusher.finish().await?;
    inp.progress.finished(Stage::Reconcile);
    Ok(ResyncReport {
        discovery: report,
        map: summary,
        push,
        lookups: lookup.calls(),
        elapsed: started.elapsed(),
    })
}

/// Ends an abandoned resync: Port hears it failed (or `aborted`, a requested stop), the sync's
/// history record keeps why, and the error goes back to the caller.
async fn abandon(pusher: Pusher, stopped: bool, e: ResyncError) -> ResyncError {
    pusher.abort_as(stopped, Some(&e.to_string())).await;
    e
}
