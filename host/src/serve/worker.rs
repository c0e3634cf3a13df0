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
//! dropped); an overrun interval does the same. The loop itself only talks to the store: it
//! never waits on a tenant's Port or AWS, so no tenant can hold back another's start.
//!
//! Within a worker, tenants share the plugin work slots fairly (`crate::plugin::fair`), and each keeps
//! its own setup (AWS sessions and rate limiters, Port client, mapping, sandbox limits, plugin
//! instances) and its own task reading its Port's resync request. All of it is keyed by the
//! tenant's *incarnation* ([`TenantRow::integration_key`]), never by id and version: a tenant
//! deleted and created again under the same id is a stranger to the first, and gets none of
//! what was kept for it. A tenant's failure is recorded against it alone.
//!
//! Owns: [`Worker`] (the loop, leases and heartbeats, the per-incarnation setup cache and
//! Port pollers, per-tenant run states for `/metrics`). Must not touch: HTTP (`serve::api`) or
//! what a resync does (`crate::pipeline::resync`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::config::{ServeConfig, WorkerLimits};
use super::secrets::SecretKey;
use super::tenants::{StoredTenant, TenantPolicy};
use crate::limits::Limits;
use crate::pipeline::resync::Progress;
use crate::pipeline::runner::{RunState, Setup, lock, render_metrics};
use crate::plugin::Registry;
use crate::plugin::fair::WorkBudget;
use crate::store::{Lease, Store, TenantRow, now_ms};

/// The store key the admin API reads a tenant's sync history by; the store resolves it to
/// the tenant's current incarnation.
pub use crate::store::tenant_integration_key as integration_key;

/// A tenant incarnation's setup, kept between syncs while its document's version is unchanged.
struct Cached {
    tenant: String,
    version: i64,
    setup: Arc<Setup>,
    last_used: Instant,
    /// Reads this incarnation's Port resync request for as long as it is cached.
    poller: Option<Poller>,
}

/// Stops its Port poller when dropped, with the cache entry that holds it.
struct Poller(tokio::task::AbortHandle);

impl Drop for Poller {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What `/metrics` shows of a tenant: the run state of its incarnation last synced here.
struct Runs {
    key: String,
    state: RunState,
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
    /// Mints `berthIdentity` tenants' tokens (`None`: no `identity:` section).
    issuer: Option<Arc<super::identity::Issuer>>,
    /// By incarnation key.
    cache: tokio::sync::Mutex<HashMap<String, Cached>>,
    /// By tenant id.
    states: Mutex<BTreeMap<String, Runs>>,
    /// By tenant id: at most one sync of an id runs here at a time (see [`Worker::run`]).
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
}

impl Worker {
    pub fn new(
        config: &ServeConfig,
        store: Store,
        key: Arc<SecretKey>,
        registry: Arc<Registry>,
        issuer: Option<Arc<super::identity::Issuer>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            id: config.worker_id(),
            issuer,
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
            .map(|(t, r)| (Some(t.as_str()), &r.state))
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
                            // Still syncing here: an incarnation since deleted (the new one's
                            // first lease would carry this worker and the same token as the
                            // old one's, which the old sync could then renew and release), or
                            // a lease that expired under a slow store. Its end frees the id.
                            if lock(&self.running).contains_key(&row.tenant) {
                                continue;
                            }
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
            tokio::select! {
                _ = tokio::time::sleep(self.limits.poll()) => {}
                _ = stop.changed() => {}
            }
        }
        for tx in lock(&self.running).values() {
            let _ = tx.send(true);
        }
        while tasks.join_next().await.is_some() {}
        // Stops every Port poller.
        self.cache.lock().await.clear();
    }

    /// Starts `key`'s Port poller, unless polling is off.
    fn spawnpoller(self: &Arc<Self>, tenant: &str, key: &str) -> Option<Poller> {
        if self.limits.port_poll_seconds == 0 {
            return None;
        }
        let task = tokio::spawn(self.clone().poll_port(tenant.to_string(), key.to_string()));
        Some(Poller(task.abort_handle()))
    }

    /// Reads one tenant incarnation's Port resync request every `portPollSeconds` (as Ocean's
    /// POLLING listener does) while it is idle here, and marks the tenant due when the request
    /// moved. Each read has its own time budget and this task is the incarnation's alone: a
    /// Port that is slow or says to come back in minutes delays only its own tenant's polls.
    /// Ends, forgetting the incarnation, once the tenant is deleted or created anew.
    async fn poll_port(self: Arc<Self>, tenant: String, key: String) {
        let every = Duration::from_secs(self.limits.port_poll_seconds);
        let budget = self.limits.port_poll_budget();
        // The last answer and the setup version it came through: the first answer through a
        // new version (perhaps another Port) only sets the watermark.
        let mut watermark: Option<(i64, Option<String>)> = None;
        loop {
            if lock(&self.running).contains_key(&tenant) {
                // Its sync reads Port anyway; poll once it is done.
                tokio::time::sleep(self.limits.poll()).await;
                continue;
            }
            match self.store.tenant(&tenant).await {
                Ok(Some(row)) if row.integration_key() == key => {}
                Ok(_) => {
                    tracing::info!(tenant, "tenant deleted; forgetting what was kept for it");
                    self.forget_incarnation(&tenant, &key).await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(tenant, "cannot read the tenant: {e}");
                    tokio::time::sleep(every).await;
                    continue;
                }
            }
            let Some((version, setup)) = self
                .cache
                .lock()
                .await
                .get(&key)
                .map(|c| (c.version, c.setup.clone()))
            else {
                return;
            };
            match tokio::time::timeout(budget, setup.client.resync_request()).await {
                Ok(Ok(request)) => {
                    let seen = request.map(|r| r.updated_at);
                    let moved = matches!(&watermark, Some((v, w))
                        if *v == version && seen.is_some() && seen != *w);
                    watermark = Some((version, seen));
                    if moved {
                        tracing::info!(tenant, "Port asked for a resync");
                        if let Err(e) = self.store.request_sync(&tenant, now_ms()).await {
                            tracing::warn!(tenant, "recording Port's resync request: {e}");
                        }
                    }
                }
                Ok(Err(e)) => tracing::warn!(tenant, "cannot read Port's resync request: {e}"),
                Err(_) => tracing::warn!(
                    tenant,
                    "Port did not answer its resync request within {budget:?}"
                ),
            }
            drop(setup);
            tokio::time::sleep(every).await;
        }
    }

    /// Drops what this worker keeps for an incarnation that is no longer the tenant: its
    /// setup, Port poller, idle plugin instances and run state.
    async fn forget_incarnation(&self, tenant: &str, key: &str) {
        let gone = self.cache.lock().await.remove(key);
        self.release_plugins(key);
        {
            let mut states = lock(&self.states);
            if states.get(tenant).is_some_and(|r| r.key == key) {
                states.remove(tenant);
            }
        }
        // Last: when called from the incarnation's own poller, this aborts it (at its next
        // await, after this returns).
        drop(gone);
    }

    /// Frees the idle plugin instances kept for an incarnation.
    fn release_plugins(&self, key: &str) {
        for plugin in &self.registry.snapshot().plugins {
            plugin.release(key);
        }
    }

    /// The setup of `row`'s incarnation, rebuilt when its document changed.
    async fn setup(self: &Arc<Self>, row: &TenantRow) -> anyhow::Result<Arc<Setup>> {
        let tenant = row.id.as_str();
        let key = row.integration_key();
        {
            let mut cache = self.cache.lock().await;
            if let Some(c) = cache.get_mut(&key)
                && c.version == row.version
            {
                c.last_used = Instant::now();
                return Ok(c.setup.clone());
            }
        }
        let doc = StoredTenant::open(tenant, &row.spec, &self.key)?;
        let mut config = doc.checked_config(tenant, &self.policy)?;
        if let Some(aws) = config.aws.as_mut()
            && aws.auth.method == crate::discovery::config::AuthMethod::BerthIdentity
        {
            let issuer = self.issuer.as_ref().ok_or_else(|| {
                anyhow::anyhow!("tenant {tenant}: {}", super::identity::NEEDS_ISSUER)
            })?;
            let sub = super::identity::subject(tenant, &row.incarnation);
            aws.auth.tokens = Some(issuer.minter(sub));
        }
        config.blueprints = self.blueprints.clone();
        config.worker = Some(self.id.clone());
        let mut limits = Limits::default();
        config.limits.apply(&mut limits);
        // The incarnation key names the tenant to the plugin host (instances, fair share) and
        // to the store (entity states, sync history).
        let mut setup = Setup::build(
            config,
            self.registry.clone(),
            self.store.clone(),
            limits,
            &key,
            key.clone(),
            false,
        )
        .await?;
        setup.plugins = doc.allowed_plugins(&self.policy).map(Arc::new);
        setup.share = Some((self.budget.clone(), doc.weight));
        let setup = Arc::new(setup);
        let mut cache = self.cache.lock().await;
        // An update keeps the incarnation's poller (and its watermark).
        let poller = match cache.remove(&key) {
            Some(mut old) => old.poller.take(),
            None => self.spawnpoller(tenant, &key),
        };
        // `row` is the tenant now: any other incarnation of its id was deleted.
        let dead: Vec<String> = cache
            .iter()
            .filter(|(k, c)| c.tenant == tenant && **k != key)
            .map(|(k, _)| k.clone())
            .collect();
        let mut released = dead;
        for k in &released {
            cache.remove(k);
        }
        cache.insert(
            key.clone(),
            Cached {
                tenant: tenant.to_string(),
                version: row.version,
                setup: setup.clone(),
                last_used: Instant::now(),
                poller,
            },
        );
        if cache.len() > self.limits.max_cached_tenants {
            // Forget the least recently used setups; they are rebuilt on their next sync.
            let mut by_age: Vec<(Instant, String)> = cache
                .iter()
                .map(|(k, c)| (c.last_used, k.clone()))
                .collect();
            by_age.sort();
            let excess = cache.len() - self.limits.max_cached_tenants;
            for (_, k) in by_age.into_iter().take(excess) {
                cache.remove(&k);
                released.push(k);
            }
        }
        drop(cache);
        for k in &released {
            self.release_plugins(k);
        }
        Ok(setup)
    }

    /// `tenant`'s run state, that of incarnation `key` (a new incarnation starts from nothing).
    fn run_state<R>(&self, tenant: &str, key: &str, f: impl FnOnce(&mut RunState) -> R) -> R {
        let mut states = lock(&self.states);
        let runs = states.entry(tenant.to_string()).or_insert_with(|| Runs {
            key: key.to_string(),
            state: RunState::default(),
        });
        if runs.key != key {
            *runs = Runs {
                key: key.to_string(),
                state: RunState::default(),
            };
        }
        f(&mut runs.state)
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
        if let Some(row) = self.leased_incarnation(&lease).await {
            self.sync_incarnation(&lease, &row, lost_rx).await;
        }
        heartbeat.abort();
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

    /// The incarnation `lease` was granted for, or `None` (logged) when there is none to sync.
    async fn leased_incarnation(&self, lease: &Lease) -> Option<TenantRow> {
        let tenant = lease.tenant.as_str();
        let row = match self.store.tenant(tenant).await {
            Ok(Some(row)) => row,
            Ok(None) => {
                tracing::info!(tenant, "deleted before its sync started");
                return None;
            }
            Err(e) => {
                tracing::error!(tenant, "sync not started: cannot read the tenant: {e}");
                return None;
            }
        };
        // The schedule row (and so the lease) is created and deleted with the tenant row, and
        // no other incarnation's lease carries this worker and token (`run` waits for this
        // sync before leasing the id again): still holding it after reading the row means the
        // row is of the leased incarnation, not of a tenant created since under the same id.
        match self.renew(lease, now_ms()).await {
            Ok(false) => {
                tracing::info!(tenant, "deleted before its sync started");
                None
            }
            // The heartbeat and the fence before reconciliation will tell.
            Ok(true) | Err(_) => Some(row),
        }
    }

    /// Syncs the incarnation `row` under `lease`, and records how it went.
    async fn sync_incarnation(
        self: &Arc<Self>,
        lease: &Lease,
        row: &TenantRow,
        lost: watch::Receiver<bool>,
    ) {
        let tenant = row.id.as_str();
        let key = row.integration_key();
        self.run_state(tenant, &key, |st| st.running = true);
        // Reconciliation only while the lease is still ours, renewed at that moment.
        let fence: crate::pipeline::resync::Fence = {
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
        let began = now_ms();
        let outcome = match self.setup(row).await {
            Ok(setup) => setup
                .resync(
                    false,
                    Arc::new(Progress::default()),
                    Some(lost),
                    Some(fence),
                )
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        self.run_state(tenant, &key, |st| {
            st.running = false;
            match &outcome {
                Ok(report) => st.record(report),
                Err(_) => *st.resyncs.entry("failed").or_default() += 1,
            }
        });
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
                    log_incomplete(tenant, report);
                }
            }
            Err(e) => {
                tracing::error!(tenant, "sync failed: {e:#}");
                record_failure(&self.store, &key, began, &format!("{e:#}")).await;
            }
        }
        // Deleted while it ran: what it wrote since sits under a key no tenant reads.
        if let Ok(now) = self.store.tenant(tenant).await
            && now.is_none_or(|r| r.integration_key() != key)
        {
            if let Err(e) = self.store.forget_integration(&key).await {
                tracing::warn!(tenant, "removing a deleted tenant's state: {e}");
            }
            self.forget_incarnation(tenant, &key).await;
        }
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
}

/// A failed sync leaves one history record that says why. The pusher keeps its own once
/// it has opened one (the newest, begun at or after `began`), with the reason; this closes
/// it if it was left running, and writes one for a sync that failed before it had a record
/// (its setup, or Port unreachable at the start).
async fn record_failure(store: &Store, key: &str, began: i64, message: &str) {
    let summary = serde_json::json!({ "error": message }).to_string();
    let own = match store.sync_history(key, 1).await {
        Ok(h) => h.into_iter().find(|r| r.started_at >= began),
        Err(e) => {
            tracing::warn!("reading the sync history to record a failure: {e}");
            None
        }
    };
    let r = match own {
        Some(r) if r.status != "running" => return,
        Some(r) => {
            store
                .finish_sync(key, &r.sync_id, now_ms(), "failed", &summary)
                .await
        }
        None => {
            let id = format!("failed-{}", now_ms());
            match store.begin_sync(key, &id, began).await {
                Ok(()) => {
                    store
                        .finish_sync(key, &id, now_ms(), "failed", &summary)
                        .await
                }
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = r {
        tracing::warn!("recording a failed sync in the history: {e}");
    }
}

/// Why a sync ended partial, in a few lines an operator can act on.
fn log_incomplete(tenant: &str, report: &crate::pipeline::resync::ResyncReport) {
    for a in &report.discovery.accounts {
        if let Some(e) = &a.error {
            tracing::warn!(tenant, account = a.account_id, "account not read: {e}");
        }
    }
    let incomplete = report
        .discovery
        .scopes
        .iter()
        .filter_map(|s| s.status.reason().map(|m| (&s.key, m)));
    for (key, m) in incomplete.take(5) {
        tracing::warn!(tenant, scope = %key.to_text(), "scope incomplete: {m}");
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn history(store: &Store) -> Vec<crate::store::SyncRecord> {
        store.sync_history("k", 10).await.unwrap()
    }

    fn why(r: &crate::store::SyncRecord) -> String {
        let v: serde_json::Value = serde_json::from_str(r.summary.as_deref().unwrap()).unwrap();
        v["error"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn a_failed_sync_has_exactly_one_record_that_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("s.db")).await.unwrap();

        // Failed before the pusher opened a record: one new record.
        record_failure(&store, "k", 1_000, "setup: no role").await;
        let h = history(&store).await;
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(
            (h[0].status.as_str(), why(&h[0])),
            ("failed", "setup: no role".into())
        );

        // The pusher's record of this run, already closed with its reason: left as it is.
        store.begin_sync("k", "s2", 2_000).await.unwrap();
        store
            .finish_sync("k", "s2", 2_100, "aborted", r#"{"error":"stop requested"}"#)
            .await
            .unwrap();
        record_failure(&store, "k", 2_000, "the resync was abandoned").await;
        let h = history(&store).await;
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!(
            (h[0].status.as_str(), why(&h[0])),
            ("aborted", "stop requested".into())
        );

        // The pusher's record left running: closed here, not doubled.
        store.begin_sync("k", "s3", 3_000).await.unwrap();
        record_failure(&store, "k", 2_900, "state not saved").await;
        let h = history(&store).await;
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(h[0].sync_id, "s3");
        assert_eq!(
            (h[0].status.as_str(), why(&h[0])),
            ("failed", "state not saved".into())
        );

        // A running record from before this run is not this run's: a record of its own.
        store.begin_sync("k", "s4", 4_000).await.unwrap();
        record_failure(&store, "k", 5_000, "Port unreachable").await;
        let h = history(&store).await;
        assert_eq!(h.len(), 5, "{h:?}");
        assert_eq!(
            (h[0].status.as_str(), why(&h[0])),
            ("failed", "Port unreachable".into())
        );
        assert_eq!(h[1].status, "running");
    }
}
