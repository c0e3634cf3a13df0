//! One worker of `berth serve`: finds due tenants, leases them, syncs them, and hands them
//! back.
//!
//! Every worker (one process, or several on one Postgres) runs the same loop: every
//! `pollMillis`, ask the store for tenants that are due and not leased, take each lease with
//! the store's compare-and-set (so two workers never sync one tenant at once), and sync it
//! while a heartbeat renews the lease. A worker that dies stops renewing; when the lease
//! expires another worker takes the tenant. A worker that finds its lease lost (it stalled
//! past the expiry) abandons the sync before reconciliation, so a tenant is never reconciled
//! by two workers. Releasing the lease sets the next due time in the same statement: a
//! request that came in during the sync makes the tenant due again at once (queued, never
//! dropped); an overrun interval does the same.
//!
//! Within a worker, tenants share the plugin work slots fairly (`crate::fair`), each keeps its
//! own setup (AWS sessions and rate limiters, Port client, mapping, sandbox limits, plugin
//! instances keyed by tenant id), and a tenant's failure is recorded against it alone.
//!
//! Owns: [`Worker`] (the loop, leases and heartbeats, the tenant setup cache, per-tenant run
//! states for `/metrics`). Must not touch: HTTP (`serve::api`) or what a resync does
//! (`crate::resync`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::config::{ServeConfig, WorkerLimits};
use super::secrets::SecretKey;
use super::tenants::{StoredTenant, TenantPolicy};
use crate::fair::WorkBudget;
use crate::limits::Limits;
use crate::plugin::Registry;
use crate::resync::Progress;
use crate::runner::{RunState, Setup, lock, render_metrics};
use crate::store::{Lease, Store, now_ms};

/// The store key of a tenant's change-detection state and sync history.
pub use crate::store::tenant_integration_key as integration_key;

/// A tenant's setup, kept between syncs while its document's version is unchanged.
struct Cached {
    version: i64,
    setup: Arc<Setup>,
    last_used: Instant,
    /// Port's resync-request watermark and when it was last read.
    watermark: Option<String>,
    polled: Option<Instant>,
}

/// One worker process's scheduling state.
pub struct Worker {
    pub id: String,
    store: Store,
    key: Arc<SecretKey>,
    registry: Arc<Registry>,
    budget: Arc<WorkBudget>,
    policy: TenantPolicy,
    limits: WorkerLimits,
    blueprints: Option<std::path::PathBuf>,
    cache: tokio::sync::Mutex<HashMap<String, Cached>>,
    states: Mutex<BTreeMap<String, RunState>>,
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
}

impl Worker {
    pub fn new(
        config: &ServeConfig,
        store: Store,
        key: Arc<SecretKey>,
        registry: Arc<Registry>,
    ) -> Arc<Self> {
        Arc::new(Self {
            id: config.worker_id(),
            store,
            key,
            registry,
            budget: WorkBudget::new(config.worker.work_slots),
            policy: config.tenant_policy.clone(),
            limits: config.worker.clone(),
            blueprints: config.blueprints.as_ref().map(|b| config.base_dir.join(b)),
            cache: tokio::sync::Mutex::new(HashMap::new()),
            states: Mutex::new(BTreeMap::new()),
            running: Mutex::new(HashMap::new()),
        })
    }

    /// Tenants this worker is syncing now.
    pub fn running(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.running).keys().cloned().collect();
        v.sort();
        v
    }

    /// `/metrics` for every tenant this worker has synced, or only `tenant`.
    pub fn metrics(&self, tenant: Option<&str>) -> String {
        let states = lock(&self.states);
        let picked: Vec<(Option<&str>, &RunState)> = states
            .iter()
            .filter(|(t, _)| tenant.is_none_or(|only| only == t.as_str()))
            .map(|(t, s)| (Some(t.as_str()), s))
            .collect();
        render_metrics(&picked)
    }

    /// Runs until `stop` turns true; then abandons running syncs before their
    /// reconciliation and hands their tenants back, due at once.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            if *stop.borrow() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            let free = self
                .limits
                .max_concurrent_syncs
                .saturating_sub(lock(&self.running).len());
            if free > 0 {
                match self.store.due_tenants(now_ms(), free as i64).await {
                    Ok(due) => {
                        for row in due {
                            let lease = self
                                .store
                                .try_lease(&row.tenant, &self.id, now_ms(), self.lease_ttl_ms())
                                .await;
                            match lease {
                                Ok(Some(lease)) => {
                                    let me = self.clone();
                                    let (tx, rx) = watch::channel(false);
                                    lock(&self.running).insert(row.tenant.clone(), tx);
                                    let due_at = row.due_at;
                                    tasks.spawn(async move { me.sync(lease, due_at, rx).await });
                                }
                                Ok(None) => {} // another worker was quicker
                                Err(e) => tracing::warn!("lease of {}: {e}", row.tenant),
                            }
                        }
                    }
                    Err(e) => tracing::warn!("reading due tenants: {e}"),
                }
            }
            self.poll_port_requests().await;
            tokio::select! {
                _ = tokio::time::sleep(self.limits.poll()) => {}
                _ = stop.changed() => {}
            }
        }
        for tx in lock(&self.running).values() {
            let _ = tx.send(true);
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Reads each idle cached tenant's Port resync request (as Ocean's POLLING listener does)
    /// and marks the tenant due when it moved.
    async fn poll_port_requests(&self) {
        if self.limits.port_poll_seconds == 0 {
            return;
        }
        let every = Duration::from_secs(self.limits.port_poll_seconds);
        let running = self.running();
        let due: Vec<(String, Arc<Setup>)> = {
            let cache = self.cache.lock().await;
            cache
                .iter()
                .filter(|(t, c)| {
                    !running.contains(t) && c.polled.is_none_or(|p| p.elapsed() >= every)
                })
                .map(|(t, c)| (t.clone(), c.setup.clone()))
                .collect()
        };
        for (tenant, setup) in due {
            let seen = match setup.client.resync_request().await {
                Ok(r) => r.map(|r| r.updated_at),
                Err(e) => {
                    tracing::warn!(tenant, "cannot read Port's resync request: {e}");
                    continue;
                }
            };
            let mut cache = self.cache.lock().await;
            let Some(c) = cache.get_mut(&tenant) else {
                continue;
            };
            let moved = c.polled.is_some() && seen.is_some() && seen != c.watermark;
            c.polled = Some(Instant::now());
            c.watermark = seen;
            drop(cache);
            if moved {
                tracing::info!(tenant, "Port asked for a resync");
                if let Err(e) = self.store.request_sync(&tenant, now_ms()).await {
                    tracing::warn!(tenant, "recording Port's resync request: {e}");
                }
            }
        }
    }

    /// The tenant's setup, rebuilt when its document changed.
    async fn setup(&self, tenant: &str) -> anyhow::Result<Arc<Setup>> {
        let row = self
            .store
            .tenant(tenant)
            .await?
            .ok_or_else(|| anyhow::anyhow!("tenant {tenant} was deleted"))?;
        {
            let mut cache = self.cache.lock().await;
            if let Some(c) = cache.get_mut(tenant)
                && c.version == row.version
            {
                c.last_used = Instant::now();
                return Ok(c.setup.clone());
            }
        }
        let doc = StoredTenant::open(tenant, &row.spec, &self.key)?;
        let mut config = doc.checked_config(tenant, &self.policy)?;
        config.blueprints = self.blueprints.clone();
        config.worker = Some(self.id.clone());
        let mut limits = Limits::default();
        config.limits.apply(&mut limits);
        let mut setup = Setup::build(
            config,
            self.registry.clone(),
            self.store.clone(),
            limits,
            tenant,
            integration_key(tenant),
            false,
        )
        .await?;
        setup.plugins = doc.allowed_plugins(&self.policy).map(Arc::new);
        setup.share = Some((self.budget.clone(), doc.weight));
        let setup = Arc::new(setup);
        let mut cache = self.cache.lock().await;
        let watermark = cache.get(tenant).and_then(|c| c.watermark.clone());
        cache.insert(
            tenant.to_string(),
            Cached {
                version: row.version,
                setup: setup.clone(),
                last_used: Instant::now(),
                watermark,
                polled: None,
            },
        );
        if cache.len() > self.limits.max_cached_tenants {
            // Forget the least recently used setups; they are rebuilt on their next sync.
            let mut by_age: Vec<(Instant, String)> = cache
                .iter()
                .map(|(t, c)| (c.last_used, t.clone()))
                .collect();
            by_age.sort();
            let excess = cache.len() - self.limits.max_cached_tenants;
            for (_, t) in by_age.into_iter().take(excess) {
                cache.remove(&t);
            }
        }
        Ok(setup)
    }

    /// One leased sync: heartbeat, resync, record, release.
    async fn sync(self: Arc<Self>, lease: Lease, due_at: i64, cancel: watch::Receiver<bool>) {
        let tenant = lease.tenant.clone();
        let delay_ms = (now_ms() - due_at).max(0);
        tracing::info!(tenant, worker = %self.id, delay_ms, "sync starting");
        let (lost_tx, lost_rx) = watch::channel(false);
        let heartbeat = {
            let me = self.clone();
            let lease = lease.clone();
            let mut cancel = cancel.clone();
            tokio::spawn(async move {
                let mut held_until = lease.expires_at;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(me.limits.heartbeat()) => {}
                        _ = cancel.changed() => {
                            let _ = lost_tx.send(true);
                            return;
                        }
                    }
                    let now = now_ms();
                    match me.renew(&lease, now).await {
                        Ok(true) => held_until = now + me.lease_ttl_ms(),
                        Ok(false) => {
                            tracing::error!(
                                tenant = lease.tenant,
                                "lease lost; abandoning the sync before reconciliation"
                            );
                            let _ = lost_tx.send(true);
                            return;
                        }
                        Err(e) if now_ms() >= held_until => {
                            tracing::error!(
                                tenant = lease.tenant,
                                "cannot renew the lease ({e}); abandoning the sync"
                            );
                            let _ = lost_tx.send(true);
                            return;
                        }
                        Err(e) => tracing::warn!(tenant = lease.tenant, "renewing the lease: {e}"),
                    }
                }
            })
        };
        lock(&self.states)
            .entry(tenant.clone())
            .or_default()
            .running = true;
        // Reconciliation only while the lease is still ours, renewed at that moment.
        let fence: crate::resync::Fence = {
            let me = self.clone();
            let lease = lease.clone();
            Arc::new(move || {
                let (me, lease) = (me.clone(), lease.clone());
                Box::pin(async move {
                    match me.renew(&lease, now_ms()).await {
                        Ok(held) => held,
                        Err(e) => {
                            tracing::error!(tenant = lease.tenant, "renewing the lease: {e}");
                            false
                        }
                    }
                })
            })
        };
        let outcome = match self.setup(&tenant).await {
            Ok(setup) => setup
                .resync(
                    false,
                    Arc::new(Progress::default()),
                    Some(lost_rx),
                    Some(fence),
                )
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        heartbeat.abort();
        {
            let mut states = lock(&self.states);
            let st = states.entry(tenant.clone()).or_default();
            st.running = false;
            match &outcome {
                Ok(report) => st.record(report),
                Err(_) => *st.resyncs.entry("failed").or_default() += 1,
            }
        }
        match &outcome {
            Ok(report) => {
                tracing::info!(
                    tenant,
                    complete = report.is_complete(),
                    seconds = report.elapsed.as_secs_f64(),
                    loaded = report.push.loaded,
                    deleted = report.push.deleted,
                    "sync finished"
                );
                if !report.is_complete() {
                    log_incomplete(&tenant, report);
                }
            }
            Err(e) => {
                tracing::error!(tenant, "sync failed: {e:#}");
                self.record_failure(&tenant, &format!("{e:#}")).await;
            }
        }
        let stopping = *cancel.borrow();
        if stopping {
            // Shutting down: the tenant is due again at once, for whichever worker is next.
            let _ = self.store.request_sync(&tenant, now_ms()).await;
        }
        match self.store.release_lease(&lease, now_ms()).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(tenant, "the lease had already passed to another worker"),
            Err(e) => tracing::warn!(tenant, "releasing the lease: {e}"),
        }
        lock(&self.running).remove(&tenant);
    }

    fn lease_ttl_ms(&self) -> i64 {
        self.limits.lease().as_millis() as i64
    }

    /// Extends `lease` from `now`; false when it is no longer this worker's.
    async fn renew(&self, lease: &Lease, now: i64) -> Result<bool, crate::store::StoreError> {
        self.store
            .renew_lease(lease, now, self.lease_ttl_ms())
            .await
    }

    /// A sync that could not even start still goes into the tenant's history, with why.
    async fn record_failure(&self, tenant: &str, message: &str) {
        let key = integration_key(tenant);
        let id = format!("failed-{}", now_ms());
        let summary = serde_json::json!({ "error": message }).to_string();
        if self.store.begin_sync(&key, &id, now_ms()).await.is_ok() {
            let _ = self
                .store
                .finish_sync(&key, &id, now_ms(), "failed", &summary)
                .await;
        }
    }
}

/// Why a sync ended partial, in a few lines an operator can act on.
fn log_incomplete(tenant: &str, report: &crate::resync::ResyncReport) {
    use crate::aws::ScopeStatus;
    for a in &report.discovery.accounts {
        if let Some(e) = &a.error {
            tracing::warn!(tenant, account = a.account_id, "account not read: {e}");
        }
    }
    let incomplete = report
        .discovery
        .scopes
        .iter()
        .filter_map(|s| match &s.status {
            ScopeStatus::Complete => None,
            ScopeStatus::Denied(m) | ScopeStatus::Failed(m) => Some((&s.key, m)),
        });
    for (key, m) in incomplete.take(5) {
        tracing::warn!(tenant, scope = %key, "scope incomplete: {m}");
    }
    for (m, n) in report.map.errors.iter().take(5) {
        tracing::warn!(tenant, items = n, "mapping: {m}");
    }
    if report.push.load_failed > 0 {
        tracing::warn!(
            tenant,
            failed = report.push.load_failed,
            "entities Port did not accept"
        );
    }
}
