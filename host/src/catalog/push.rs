//! The Port side of one sync, start to end: [`Pusher`].
//!
//! Owns the order of things: resync state `running` → per blueprint, Port's list of what this
//! integration owns (read once, before the first write) → change detection against the state
//! store → bulk upserts, streamed (several calls in flight, entities buffered per blueprint) →
//! entities refused for a missing related entity retried in relation order → reconciliation
//! (`reconcile::decide`) and deletes → state store → per-kind metrics → resync state
//! `completed`/`failed`. A dry run reads Port and the store, and writes to neither.
//! Must not touch: AWS, plugins, the mapping; entities arrive mapped, each with its scope.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Instant;

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::catalog::port::blueprints::is_missing_related;
use crate::catalog::port::entities::OwnedEntity;
use crate::catalog::port::integration::{ResyncStatus, metrics_ingest_url};
use crate::catalog::port::{Entity, EntityResult, PortClient, PortError, UpsertOptions};
use crate::pipeline::mapping::Settings;
use crate::scope::{ENTITIES_FAILED, ScopeBook, ScopeKey, ScopeStatus};
use crate::store::{EntityKey, EntityState, StateKey, Store, StoreError, now_ms};

use super::changes::{Change, body_hash, classify};
use super::metrics::{KindCounters, Reporter, kind_metrics_body};
use super::reconcile::{self, Decision, Inputs, KeepReason};

/// Why a push stopped (per-entity failures do not stop it; they are in the report).
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a push runs.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// The state store's key for this integration (tenant and integration).
    pub integration_key: String,
    /// The mapping's top-level flags (merge, dependents, missing related, threshold).
    pub settings: Settings,
    /// Read Port and the store, write nothing, report the plan.
    pub dry_run: bool,
    /// Report `resyncState` and sync metrics to Port.
    pub report_status: bool,
    /// The schedule, reported in `resyncState.intervalInMinuets`.
    pub interval_minutes: Option<u64>,
    /// Entities buffered per blueprint before a flush (a flush is one or more bulk calls).
    pub flush_entities: usize,
    /// Flushes in flight at once (the client's own concurrency bounds requests).
    pub max_inflight_flushes: usize,
    /// The input is the whole truth for the scopes its entities name (a file pushed by hand):
    /// each is complete unless said otherwise. Off for a resync, where only discovery's
    /// reports make a scope complete, so a scope discovery never reported keeps its entities.
    pub input_scopes_complete: bool,
}

impl PushOptions {
    pub fn new(integration_key: impl Into<String>, settings: Settings) -> Self {
        Self {
            integration_key: integration_key.into(),
            settings,
            dry_run: false,
            report_status: true,
            interval_minutes: None,
            // One bulk call per flush, and as many flushes in flight as the client's default
            // concurrency (8): what the pusher holds stays a few hundred entities however
            // large the sync.
            flush_entities: 20,
            max_inflight_flushes: 8,
            input_scopes_complete: true,
        }
    }
}

/// One mapped entity with where it came from.
#[derive(Debug, Clone)]
pub struct EntityIn {
    pub entity: Entity,
    pub scope: ScopeKey,
    /// The resource entry it was mapped by (`kind`, index in `resources:`).
    pub kind: String,
    pub kind_index: usize,
}

/// Counts of what a push does (or, dry, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PlanCounts {
    pub create: u64,
    pub update: u64,
    pub unchanged: u64,
    pub delete: u64,
}

/// The plan, per blueprint.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    pub blueprints: BTreeMap<String, PlanCounts>,
}

impl Plan {
    pub fn total(&self) -> PlanCounts {
        let mut t = PlanCounts::default();
        for c in self.blueprints.values() {
            t.create += c.create;
            t.update += c.update;
            t.unchanged += c.unchanged;
            t.delete += c.delete;
        }
        t
    }
}

/// How a sync ended, for exit codes and Port's resync state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything landed and every scope completed.
    Completed,
    /// Some entities failed or some scopes did not complete; nothing wrongly deleted.
    Partial,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushReport {
    pub sync_id: String,
    pub dry_run: bool,
    pub plan: Plan,
    pub loaded: u64,
    pub load_failed: u64,
    pub deleted: u64,
    pub delete_failed: u64,
    /// Why reconciliation deleted nothing, when it refused.
    pub refused: Option<String>,
    /// Unseen owned entities kept, by reason.
    pub kept: BTreeMap<String, u64>,
    /// Blueprints none of whose entities could be deleted because a resource entry that
    /// writes them failed, with why.
    pub blocked_blueprints: BTreeMap<String, String>,
    /// Distinct failure messages with counts.
    pub errors: BTreeMap<String, u64>,
    /// Writes dropped because another scope (or item) produced the same entity through the
    /// same resource entry in this sync; the scope that wrote it before keeps it.
    pub duplicates: u64,
    pub kinds: Vec<KindCounters>,
    pub incomplete_scopes: Vec<(ScopeKey, ScopeStatus)>,
    pub outcome: Outcome,
    pub seconds: f64,
}

impl PushReport {
    /// A human-readable report for stderr.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let verb = if self.dry_run { "would" } else { "did" };
        if self.dry_run {
            let _ = writeln!(
                s,
                "plan (dry run: nothing was written to Port or the state store)"
            );
        }
        let _ = writeln!(
            s,
            "{:<28} {:>8} {:>8} {:>10} {:>8}",
            "blueprint", "create", "update", "unchanged", "delete"
        );
        for (bp, c) in &self.plan.blueprints {
            let _ = writeln!(
                s,
                "{bp:<28} {:>8} {:>8} {:>10} {:>8}",
                c.create, c.update, c.unchanged, c.delete
            );
        }
        let t = self.plan.total();
        let _ = writeln!(
            s,
            "{:<28} {:>8} {:>8} {:>10} {:>8}",
            "total", t.create, t.update, t.unchanged, t.delete
        );
        if !self.dry_run {
            let _ = writeln!(
                s,
                "\nloaded {} (failed {}), deleted {} (failed {}) in {:.2}s",
                self.loaded, self.load_failed, self.deleted, self.delete_failed, self.seconds
            );
        }
        if self.duplicates > 0 {
            let _ = writeln!(
                s,
                "\n{} entities were produced more than once (an identifier shared by several \
                 accounts, regions or items); one write each was kept",
                self.duplicates
            );
        }
        if let Some(r) = &self.refused {
            let _ = writeln!(s, "\nreconciliation: {r}");
        }
        if !self.blocked_blueprints.is_empty() {
            let _ = writeln!(
                s,
                "\nfailed mappings (nothing of their blueprint is deleted):"
            );
            for (bp, why) in &self.blocked_blueprints {
                let _ = writeln!(s, "  {bp}: {why}");
            }
        }
        if !self.kept.is_empty() {
            let _ = writeln!(s, "\nstale entities kept ({verb} not delete):");
            for (why, n) in &self.kept {
                let _ = writeln!(s, "  {n:>6}  {why}");
            }
        }
        if !self.incomplete_scopes.is_empty() {
            let _ = writeln!(s, "\nincomplete scopes (their entities are kept):");
            for (k, st) in &self.incomplete_scopes {
                // The status named as this report always has (`Denied: <scope>`), then why.
                let (status, why) = match st {
                    ScopeStatus::Complete => ("Complete", ""),
                    ScopeStatus::Denied(why) => ("Denied", why.as_str()),
                    ScopeStatus::Failed(why) => ("Failed", why.as_str()),
                };
                let _ = writeln!(s, "  {status}: {k}: {why}");
            }
        }
        if !self.errors.is_empty() {
            let _ = writeln!(s, "\nerrors:");
            for (m, n) in self.errors.iter().take(30) {
                let _ = writeln!(s, "  ({n}x) {m}");
            }
        }
        s
    }
}

/// An entity waiting to be written.
struct Pending {
    entity: Entity,
    key: StateKey,
    hash: String,
    scope: String,
    counter: usize,
    change: Change,
}

type Flushed = (Vec<Pending>, Result<Vec<EntityResult>, PortError>);

/// Pushes one sync's entities. Feed it with [`Pusher::add`], end with [`Pusher::finish`].
pub struct Pusher {
    client: PortClient,
    store: Option<Store>,
    opts: PushOptions,
    upsert: UpsertOptions,
    sync_id: String,
    started: jiff::Timestamp,
    clock: Instant,
    ingest_url: Option<String>,
    states: HashMap<StateKey, EntityState>,
    owned: BTreeMap<String, Vec<OwnedEntity>>,
    owned_sets: HashMap<String, HashSet<String>>,
    blocked: Option<String>,
    seen: HashSet<EntityKey>,
    /// The scope each write of this sync came from: one write per entity and entry.
    accepted: HashMap<StateKey, String>,
    /// Writes held back because another scope wrote them last time (an identifier two
    /// accounts share): sent at the end only if that scope does not produce them again.
    deferred: BTreeMap<StateKey, EntityIn>,
    duplicates: u64,
    /// Ended by a requested stop (Port hears `aborted`).
    aborted: bool,
    scopes: ScopeBook,
    failed_scopes: HashSet<String>,
    blocked_blueprints: BTreeMap<String, String>,
    relation_targets: HashSet<String>,
    buffers: BTreeMap<String, Vec<Pending>>,
    inflight: JoinSet<Flushed>,
    retry_later: Vec<Pending>,
    state_updates: Vec<(StateKey, EntityState)>,
    counters: Vec<KindCounters>,
    counter_index: HashMap<(String, usize), usize>,
    plan: Plan,
    errors: BTreeMap<String, u64>,
}

impl Pusher {
    /// Starts a sync: reads the state store, reports `running` to Port (unless dry or told
    /// not to) and records the sync in the store.
    pub async fn begin(
        client: PortClient,
        store: Option<Store>,
        opts: PushOptions,
    ) -> Result<Self, PushError> {
        let started = jiff::Timestamp::now();
        let sync_id = format!(
            "berth-{}-{:04x}",
            started.as_millisecond(),
            (crate::catalog::port::retry::jitter_unit() * 65536.0) as u32
        );
        let states = match &store {
            Some(s) => s.entity_states(&opts.integration_key).await?,
            None => HashMap::new(),
        };
        let upsert = UpsertOptions {
            merge: opts.settings.enable_merge_entity,
            create_missing_related_entities: opts.settings.create_missing_related_entities,
        };
        let mut pusher = Self {
            client,
            store,
            upsert,
            sync_id,
            started,
            clock: Instant::now(),
            ingest_url: None,
            states,
            owned: BTreeMap::new(),
            owned_sets: HashMap::new(),
            blocked: None,
            seen: HashSet::new(),
            accepted: HashMap::new(),
            deferred: BTreeMap::new(),
            duplicates: 0,
            aborted: false,
            scopes: ScopeBook::default(),
            failed_scopes: HashSet::new(),
            blocked_blueprints: BTreeMap::new(),
            relation_targets: HashSet::new(),
            buffers: BTreeMap::new(),
            inflight: JoinSet::new(),
            retry_later: Vec::new(),
            state_updates: Vec::new(),
            counters: Vec::new(),
            counter_index: HashMap::new(),
            plan: Plan::default(),
            errors: BTreeMap::new(),
            opts,
        };
        if !pusher.opts.dry_run {
            if pusher.opts.report_status {
                match pusher.client.ensure_integration().await {
                    Ok(i) => pusher.ingest_url = metrics_ingest_url(&i).map(str::to_string),
                    Err(e @ PortError::Rejected { .. }) => pusher.note_status_error(&e),
                    Err(e) => return Err(e.into()),
                }
                let start = pusher.started.to_string();
                let r = pusher
                    .client
                    .patch_resync_state(
                        ResyncStatus::Running,
                        Some(&start),
                        None,
                        None,
                        pusher.opts.interval_minutes,
                    )
                    .await;
                pusher.status_result(r)?;
            }
            if let Some(s) = &pusher.store {
                s.begin_sync(
                    &pusher.opts.integration_key,
                    &pusher.sync_id,
                    pusher.started.as_millisecond(),
                )
                .await?;
            }
        }
        Ok(pusher)
    }

    pub fn sync_id(&self) -> &str {
        &self.sync_id
    }

    /// The scopes of this sync; discovery sets their statuses.
    pub fn scopes_mut(&mut self) -> &mut ScopeBook {
        &mut self.scopes
    }

    /// Accounts that are no longer part of the tenant (removed from the Organization, or from
    /// the configured roles): the scopes their entities came from count as complete and
    /// empty, so those entities are reconciled away (within the deletion threshold). `known`
    /// is the authoritative account list of this sync.
    pub fn retire_accounts_not_in(&mut self, known: &HashSet<String>) {
        let retired: BTreeSet<String> = self
            .states
            .values()
            .map(|st| st.scope.clone())
            .filter(|scope| {
                let account = scope.split('/').next().unwrap_or_default();
                account != "*" && !known.contains(account)
            })
            .collect();
        for key in retired.iter().filter_map(|s| ScopeKey::from_text(s)) {
            tracing::info!(
                "account {} is no longer part of the sync: its {} entities in {} go",
                key.account_id,
                key.kind,
                key.region
            );
            self.scopes.set(&key, ScopeStatus::Complete);
        }
    }

    /// A resource entry failed (its JQ does not compile, or it produced no entity while its
    /// kind had items): nothing of the blueprints it writes may be deleted. Those are its
    /// `blueprint` when that is a constant, and whatever the state store says the entry wrote
    /// before; when the blueprint is not a constant, nothing at all is deleted.
    pub fn block_entry(&mut self, index: usize, blueprint: Option<&str>, why: &str) {
        tracing::warn!("{why}: nothing of what it writes is deleted");
        let mut bps: BTreeSet<String> = self
            .states
            .keys()
            .filter(|k| k.entry as usize == index)
            .map(|k| k.entity.blueprint.clone())
            .collect();
        match blueprint {
            Some(bp) => {
                bps.insert(bp.to_string());
            }
            None => {
                self.blocked.get_or_insert(format!(
                    "{why}, and its blueprint is not a constant, so any blueprint may be missing entities"
                ));
            }
        }
        for bp in bps {
            self.blocked_blueprints
                .entry(bp)
                .or_insert_with(|| why.to_string());
        }
    }

    /// The counters of one resource entry, for the extract and transform phases.
    pub fn counters_mut(&mut self, kind: &str, index: usize) -> &mut KindCounters {
        let i = self.counter(kind, index);
        &mut self.counters[i]
    }

    fn counter(&mut self, kind: &str, index: usize) -> usize {
        if let Some(&i) = self.counter_index.get(&(kind.to_string(), index)) {
            return i;
        }
        self.counters.push(KindCounters {
            kind: kind.to_string(),
            index,
            ..KindCounters::default()
        });
        let i = self.counters.len() - 1;
        self.counter_index.insert((kind.to_string(), index), i);
        i
    }

    fn error(&mut self, message: String) {
        *self.errors.entry(message).or_default() += 1;
    }

    /// A status report Port refused (e.g. no permission on the integration) does not stop the
    /// sync; being unable to reach Port does.
    fn status_result(&mut self, r: Result<(), PortError>) -> Result<(), PushError> {
        match r {
            Ok(()) => Ok(()),
            Err(e @ PortError::Rejected { .. }) => {
                self.note_status_error(&e);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn note_status_error(&mut self, e: &PortError) {
        tracing::warn!(error = %e, "sync status not reported to Port");
        self.error(format!("sync status not reported: {e}"));
    }

    /// Reads (once per blueprint) what this integration owns in Port.
    async fn ensure_owned(&mut self, blueprint: &str) {
        if self.owned_sets.contains_key(blueprint) {
            return;
        }
        match self.client.owned_entities(blueprint).await {
            Ok(list) => {
                self.owned_sets.insert(
                    blueprint.to_string(),
                    list.iter().map(|e| e.identifier.clone()).collect(),
                );
                self.owned.insert(blueprint.to_string(), list);
            }
            Err(e) => {
                let why = format!(
                    "the entities this integration owns in {blueprint:?} could not be read: {e}"
                );
                tracing::warn!("{why}");
                self.blocked.get_or_insert(why);
                // An empty set marks "read attempted"; `in_port` is None for this blueprint.
                self.owned_sets
                    .insert(blueprint.to_string(), HashSet::new());
            }
        }
    }

    /// Adds one mapped entity: classified, then buffered for a bulk upsert unless unchanged.
    ///
    /// One entity is written once per sync and resource entry. When two scopes produce the
    /// same entity through the same entry (an identifier two accounts share, which Port would
    /// let the last writer win, in no fixed order), the scope that wrote it last time keeps
    /// it, and otherwise the first to arrive: so a repeated sync writes nothing, where
    /// flip-flopping writers would rewrite it every time. Such duplicates are counted.
    pub async fn add(&mut self, input: EntityIn) -> Result<(), PushError> {
        let counter = self.counter(&input.kind, input.kind_index);
        if self.opts.input_scopes_complete {
            self.scopes.note(&input.scope);
        }
        let scope = input.scope.to_text();
        if input.entity.blueprint.is_empty() {
            self.counters[counter].load_failed += 1;
            self.failed_scopes.insert(scope);
            self.error("entity has no string \"blueprint\" field".into());
            return Ok(());
        }
        let blueprint = input.entity.blueprint.clone();
        if input.entity.identifier.is_empty() {
            // A search-query identifier names an existing entity; it cannot be tracked.
            self.counters[counter].load_failed += 1;
            self.failed_scopes.insert(scope);
            self.error(format!(
                "entity of {blueprint:?} has no string identifier (search-query identifiers are not supported by push)"
            ));
            return Ok(());
        }
        let key = StateKey {
            entity: EntityKey {
                blueprint,
                identifier: input.entity.identifier.clone(),
            },
            entry: input.kind_index as u32,
        };
        // Seen whichever write wins: the entity exists.
        self.seen.insert(key.entity.clone());
        if self.accepted.contains_key(&key) {
            self.duplicate(&key);
            return Ok(());
        }
        if self.states.get(&key).is_some_and(|st| st.scope != scope) {
            match self.deferred.entry(key) {
                std::collections::btree_map::Entry::Occupied(o) => {
                    let key = o.key().clone();
                    self.duplicate(&key);
                }
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(input);
                }
            }
            return Ok(());
        }
        self.accept(key, input, counter, scope).await
    }

    fn duplicate(&mut self, key: &StateKey) {
        self.duplicates += 1;
        tracing::debug!(
            blueprint = %key.entity.blueprint,
            identifier = %key.entity.identifier,
            "entity produced more than once in this sync; the first write is kept"
        );
    }

    async fn accept(
        &mut self,
        key: StateKey,
        mut input: EntityIn,
        counter: usize,
        scope: String,
    ) -> Result<(), PushError> {
        let blueprint = key.entity.blueprint.clone();
        self.accepted.insert(key.clone(), scope.clone());
        self.counters[counter]
            .blueprint
            .get_or_insert_with(|| blueprint.clone());
        self.ensure_owned(&blueprint).await;
        if self.opts.settings.create_missing_related_entities {
            // Moved, not copied: from here on the record only feeds the bulk body.
            self.relation_targets
                .extend(std::mem::take(&mut input.entity.relation_targets));
        }
        let hash = body_hash(&input.entity, self.upsert);
        let in_port = if self.owned.contains_key(&blueprint) {
            Some(self.owned_sets[&blueprint].contains(&key.entity.identifier))
        } else {
            None
        };
        let last = self.states.get(&key);
        let change = classify(&hash, last.map(|s| s.body_hash.as_str()), in_port);
        let counts = self.plan.blueprints.entry(blueprint.clone()).or_default();
        match change {
            Change::Create => counts.create += 1,
            Change::Update => counts.update += 1,
            Change::Unchanged => counts.unchanged += 1,
        }
        if change == Change::Unchanged {
            self.counters[counter].skipped += 1;
            if last.is_some_and(|s| s.scope != scope) && !self.opts.dry_run {
                self.state_updates.push((
                    key,
                    EntityState {
                        body_hash: hash,
                        scope,
                        written_at: now_ms(),
                    },
                ));
            }
            return Ok(());
        }
        if self.opts.dry_run {
            return Ok(());
        }
        let buf = self.buffers.entry(blueprint.clone()).or_default();
        buf.push(Pending {
            entity: input.entity,
            key,
            hash,
            scope,
            counter,
            change,
        });
        if buf.len() >= self.opts.flush_entities.max(1) {
            self.flush(&blueprint).await?;
        }
        Ok(())
    }

    /// Writes held back for another scope that did not produce them after all.
    async fn accept_deferred(&mut self) -> Result<(), PushError> {
        for (key, input) in std::mem::take(&mut self.deferred) {
            if self.accepted.contains_key(&key) {
                self.duplicate(&key);
                continue;
            }
            let counter = self.counter(&input.kind, input.kind_index);
            let scope = input.scope.to_text();
            self.accept(key, input, counter, scope).await?;
        }
        Ok(())
    }

    /// Sends a blueprint's buffer (waiting for a slot when enough flushes are in flight).
    async fn flush(&mut self, blueprint: &str) -> Result<(), PushError> {
        let Some(pending) = self.buffers.remove(blueprint).filter(|b| !b.is_empty()) else {
            return Ok(());
        };
        while self.inflight.len() >= self.opts.max_inflight_flushes.max(1) {
            self.settle_one().await?;
        }
        let client = self.client.clone();
        let bp = blueprint.to_string();
        let opts = self.upsert;
        self.inflight.spawn(async move {
            let mut pending = pending;
            // Lent to the call and given back (an entity may be retried later), not copied.
            let entities: Vec<Entity> = pending
                .iter_mut()
                .map(|p| std::mem::take(&mut p.entity))
                .collect();
            let r = client.upsert_bulk(&bp, &entities, opts).await;
            for (p, e) in pending.iter_mut().zip(entities) {
                p.entity = e;
            }
            (pending, r)
        });
        Ok(())
    }

    /// Waits for one flush and takes in its results.
    async fn settle_one(&mut self) -> Result<(), PushError> {
        let Some(joined) = self.inflight.join_next().await else {
            return Ok(());
        };
        let (pending, result) =
            joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let results = match result {
            Ok(r) => r,
            Err(e) => {
                // Port unreachable or credentials refused: nothing more can land.
                for p in &pending {
                    self.counters[p.counter].load_failed += 1;
                    self.failed_scopes.insert(p.scope.clone());
                }
                return Err(e.into());
            }
        };
        self.take_results(pending, results, true);
        if self.state_updates.len() >= 5000 {
            self.save_states().await?;
        }
        Ok(())
    }

    fn take_results(&mut self, pending: Vec<Pending>, results: Vec<EntityResult>, may_retry: bool) {
        for (p, r) in pending.into_iter().zip(results) {
            match r.outcome {
                Ok(()) => {
                    self.counters[p.counter].loaded += 1;
                    self.state_updates.push((
                        p.key,
                        EntityState {
                            body_hash: p.hash,
                            scope: p.scope,
                            written_at: now_ms(),
                        },
                    ));
                }
                Err(e) if may_retry && is_missing_related(&e) => self.retry_later.push(p),
                Err(e) => {
                    self.counters[p.counter].load_failed += 1;
                    self.failed_scopes.insert(p.scope.clone());
                    let what = match p.change {
                        Change::Create => "create",
                        _ => "update",
                    };
                    self.error(format!("{what} of {:?}: {e}", p.key.entity.blueprint));
                }
            }
        }
    }

    async fn save_states(&mut self) -> Result<(), PushError> {
        if let Some(store) = &self.store
            && !self.state_updates.is_empty()
        {
            store
                .put_entity_states(&self.opts.integration_key, &self.state_updates)
                .await?;
        }
        self.state_updates.clear();
        Ok(())
    }

    /// Ends the sync: sends what is buffered, retries entities that waited for related ones,
    /// reconciles, saves state and reports. On an error that stops the push, Port is told the
    /// resync failed and nothing is deleted.
    /// Sends every upsert still buffered or in flight, so a caller can tell the upserts' end
    /// from reconciliation's start; [`Self::finish`] does it too. On failure Port hears that
    /// the resync failed, as from `finish`.
    pub async fn drain(&mut self) -> Result<(), PushError> {
        let r = self.load_rest().await;
        if r.is_err() {
            self.fail().await;
        }
        r
    }

    pub async fn finish(mut self) -> Result<PushReport, PushError> {
        match self.load_rest().await {
            Ok(()) => {}
            Err(e) => {
                self.fail().await;
                return Err(e);
            }
        }
        // Blueprints Berth wrote before but saw nothing of now still need their owned list.
        let known: Vec<String> = {
            let mut b: Vec<String> = self
                .states
                .keys()
                .map(|k| k.entity.blueprint.clone())
                .collect();
            b.sort();
            b.dedup();
            b
        };
        for bp in known {
            self.ensure_owned(&bp).await;
        }
        // Reconciliation needs one scope per entity: any entry's will do (they share it, or
        // the entity is seen anyway).
        let entity_states: HashMap<EntityKey, EntityState> = self
            .states
            .iter()
            .map(|(k, v)| (k.entity.clone(), v.clone()))
            .collect();
        let decision = reconcile::decide(&Inputs {
            owned: &self.owned,
            seen: &self.seen,
            states: &entity_states,
            scopes: &self.scopes,
            failed_scopes: &self.failed_scopes,
            blocked_blueprints: &self.blocked_blueprints,
            blocked: self.blocked.clone(),
            started_at: self.started,
            threshold: self.opts.settings.entity_deletion_threshold,
            relation_targets: self
                .opts
                .settings
                .create_missing_related_entities
                .then_some(&self.relation_targets),
        });
        if let Some(r) = &decision.refused {
            tracing::warn!("{r}");
        }
        for (bp, ids) in &decision.delete {
            self.plan.blueprints.entry(bp.clone()).or_default().delete += ids.len() as u64;
        }
        let (deleted, delete_failed) = if self.opts.dry_run {
            (0, 0)
        } else {
            match self.delete(&decision).await {
                Ok(n) => n,
                Err(e) => {
                    self.fail().await;
                    return Err(e);
                }
            }
        };
        let report = self.report(&decision, deleted, delete_failed);
        if !self.opts.dry_run {
            self.save_states().await?;
            self.forget_gone(&decision).await?;
            let state = if report.outcome == Outcome::Completed {
                ResyncStatus::Completed
            } else {
                ResyncStatus::Failed
            };
            self.report_end(state, &report).await?;
        }
        Ok(report)
    }

    async fn load_rest(&mut self) -> Result<(), PushError> {
        self.accept_deferred().await?;
        let bps: Vec<String> = self.buffers.keys().cloned().collect();
        for bp in bps {
            self.flush(&bp).await?;
        }
        while !self.inflight.is_empty() {
            self.settle_one().await?;
        }
        if !self.retry_later.is_empty() {
            let mut pending = std::mem::take(&mut self.retry_later);
            let entities: Vec<Entity> = pending
                .iter_mut()
                .map(|p| std::mem::take(&mut p.entity))
                .collect();
            let results = self
                .client
                .upsert_with_relation_retry(&entities, self.upsert)
                .await?;
            self.take_results(pending, results, false);
        }
        Ok(())
    }

    /// Carries out the deletions; returns (deleted, failed).
    async fn delete(&mut self, d: &Decision) -> Result<(u64, u64), PushError> {
        let dependents = self.opts.settings.delete_dependent_entities;
        let mut deleted_keys = Vec::new();
        let mut failed = 0u64;
        for (bp, ids) in &d.delete {
            if dependents {
                let out = self.client.delete_bulk(bp, ids, true).await?;
                for (id, why) in &out.failed {
                    failed += 1;
                    self.error(format!("delete of {bp:?} {id:?}: {why}"));
                }
                deleted_keys.extend(out.deleted.into_iter().map(|identifier| EntityKey {
                    blueprint: bp.clone(),
                    identifier,
                }));
            } else {
                // Without cascading, an entity others require can only go after them: delete
                // one by one and retry refusals while that makes progress (Ocean deletes in
                // topological order).
                let mut left: Vec<String> = ids.clone();
                loop {
                    let mut refused = Vec::new();
                    for id in &left {
                        match self.client.delete_one(bp, id, false).await? {
                            Ok(()) => deleted_keys.push(EntityKey {
                                blueprint: bp.clone(),
                                identifier: id.clone(),
                            }),
                            Err(why) => refused.push((id.clone(), why)),
                        }
                    }
                    if refused.is_empty() || refused.len() == left.len() {
                        for (id, why) in refused {
                            failed += 1;
                            self.error(format!("delete of {bp:?} {id:?}: {why}"));
                        }
                        break;
                    }
                    left = refused.into_iter().map(|(id, _)| id).collect();
                }
            }
        }
        let scope_of: HashMap<&EntityKey, &str> = self
            .states
            .iter()
            .map(|(k, v)| (&k.entity, v.scope.as_str()))
            .collect();
        let kinds: Vec<Option<String>> = deleted_keys
            .iter()
            .map(|k| {
                scope_of
                    .get(k)
                    .and_then(|s| s.rsplit('/').next().map(str::to_string))
            })
            .collect();
        drop(scope_of);
        for kind in kinds {
            let kind = kind
                .filter(|kind| self.counters.iter().any(|c| &c.kind == kind))
                .unwrap_or_else(|| "__reconciliation__".to_string());
            let i = self
                .counters
                .iter()
                .position(|c| c.kind == kind)
                .unwrap_or_else(|| self.counter(&kind, 0));
            self.counters[i].deleted += 1;
        }
        let n = deleted_keys.len() as u64;
        if let Some(store) = &self.store {
            store
                .delete_entity_states(&self.opts.integration_key, &deleted_keys)
                .await?;
        }
        let deleted: HashSet<EntityKey> = deleted_keys.into_iter().collect();
        self.states.retain(|k, _| !deleted.contains(&k.entity));
        Ok((n, failed))
    }

    /// Forgets store entries of entities Port no longer holds for this integration (deleted by
    /// someone else) that this sync did not produce either.
    async fn forget_gone(&mut self, d: &Decision) -> Result<(), PushError> {
        if self.blocked.is_some() || d.refused.is_some() {
            return Ok(());
        }
        let mut gone: Vec<EntityKey> = self
            .states
            .keys()
            .map(|k| &k.entity)
            .filter(|k| {
                !self.seen.contains(k)
                    && self
                        .owned_sets
                        .get(&k.blueprint)
                        .is_some_and(|s| !s.contains(&k.identifier))
            })
            .cloned()
            .collect();
        gone.sort();
        gone.dedup();
        if let Some(store) = &self.store
            && !gone.is_empty()
        {
            store
                .delete_entity_states(&self.opts.integration_key, &gone)
                .await?;
        }
        Ok(())
    }

    fn report(&self, d: &Decision, deleted: u64, delete_failed: u64) -> PushReport {
        let mut kept: BTreeMap<String, u64> = BTreeMap::new();
        for (_, why) in &d.kept {
            let text = match why {
                KeepReason::ScopeIncomplete { scope, status } => {
                    format!("scope {scope} did not complete ({status})")
                }
                KeepReason::ScopeNotSynced { scope } => {
                    format!("scope {scope} was not part of this sync")
                }
                KeepReason::UnknownScope => {
                    "no known scope, and not every scope (or mapping) completed".to_string()
                }
                KeepReason::MappingFailed(why) => format!("its mapping failed: {why}"),
                KeepReason::UpdatedDuringSync => "updated in Port during the sync".to_string(),
                KeepReason::RelationTarget => {
                    "relation target of a synced entity (createMissingRelatedEntities)".to_string()
                }
            };
            *kept.entry(text).or_default() += 1;
        }
        let loaded = self.counters.iter().map(|c| c.loaded).sum();
        let load_failed = self.counters.iter().map(|c| c.load_failed).sum();
        let mut incomplete: Vec<(ScopeKey, ScopeStatus)> = self
            .scopes
            .incomplete()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        // A scope whose entities did not all land is as incomplete as one that was not read.
        let listed: HashSet<String> = incomplete.iter().map(|(k, _)| k.to_text()).collect();
        let mut failed: Vec<&String> = self
            .failed_scopes
            .iter()
            .filter(|s| !listed.contains(*s))
            .collect();
        failed.sort();
        incomplete.extend(
            failed
                .into_iter()
                .filter_map(|t| ScopeKey::from_text(t))
                .map(|k| (k, ScopeStatus::Failed(ENTITIES_FAILED.into()))),
        );
        let clean = load_failed == 0
            && delete_failed == 0
            && incomplete.is_empty()
            && self.failed_scopes.is_empty()
            && self.blocked_blueprints.is_empty()
            && d.refused.is_none()
            && self.blocked.is_none();
        PushReport {
            sync_id: self.sync_id.clone(),
            dry_run: self.opts.dry_run,
            plan: self.plan.clone(),
            loaded,
            load_failed,
            deleted,
            delete_failed,
            refused: d.refused.clone(),
            kept,
            blocked_blueprints: self.blocked_blueprints.clone(),
            errors: self.errors.clone(),
            duplicates: self.duplicates,
            kinds: self.counters.clone(),
            incomplete_scopes: incomplete,
            outcome: if clean {
                Outcome::Completed
            } else {
                Outcome::Partial
            },
            seconds: self.clock.elapsed().as_secs_f64(),
        }
    }

    async fn report_end(
        &mut self,
        state: ResyncStatus,
        report: &PushReport,
    ) -> Result<(), PushError> {
        let summary = json!({
            "outcome": format!("{:?}", report.outcome).to_lowercase(),
            "loaded": report.loaded, "loadFailed": report.load_failed,
            "deleted": report.deleted, "deleteFailed": report.delete_failed,
            "unchanged": report.plan.total().unchanged,
            "refused": report.refused,
        });
        if let Some(store) = &self.store {
            store
                .finish_sync(
                    &self.opts.integration_key,
                    &self.sync_id,
                    now_ms(),
                    match report.outcome {
                        Outcome::Completed => "completed",
                        Outcome::Partial => "partial",
                    },
                    &summary.to_string(),
                )
                .await?;
        }
        if !self.opts.report_status {
            return Ok(());
        }
        self.send_metrics(state.as_str()).await?;
        let end = jiff::Timestamp::now().to_string();
        let r = self
            .client
            .patch_resync_state(state, None, Some(&end), None, self.opts.interval_minutes)
            .await;
        self.status_result(r)
    }

    async fn send_metrics(&mut self, sync_state: &str) -> Result<(), PushError> {
        let Some(url) = self.ingest_url.clone() else {
            return Ok(());
        };
        let ua = self.client.user_agent();
        let who = Reporter {
            integration_type: ua.integration_type.clone(),
            integration_identifier: ua.integration_identifier.clone(),
            integration_version: ua.version.clone(),
        };
        let secs = self.clock.elapsed().as_secs_f64();
        let bodies: Vec<Value> = self
            .counters
            .iter()
            .map(|k| kind_metrics_body(&who, &self.sync_id, sync_state, secs, k))
            .collect();
        for (k, body) in self.counters.clone().iter().zip(&bodies) {
            let r = self
                .client
                .put_kind_metrics(&url, &self.sync_id, &k.identifier(), body)
                .await;
            self.status_result(r)?;
        }
        let r = self.client.post_sync_metrics(&url, &bodies).await;
        self.status_result(r)
    }

    /// Abandons the sync (a stage before Port failed, or a stop was requested): keeps what
    /// landed, deletes nothing, tells Port the resync failed.
    pub async fn abort(self) {
        self.abort_as(false).await;
    }

    /// [`Pusher::abort`], telling Port `aborted` (a requested stop) rather than `failed`.
    pub async fn abort_as(mut self, stopped: bool) {
        self.aborted = stopped;
        self.fail().await;
    }

    /// Best effort after a stopping error: keep what landed, tell Port the resync failed.
    async fn fail(&mut self) {
        self.inflight.abort_all();
        if let Err(e) = self.save_states().await {
            tracing::warn!(error = %e, "could not save entity states after a failed push");
        }
        if let Some(store) = &self.store {
            let _ = store
                .finish_sync(
                    &self.opts.integration_key,
                    &self.sync_id,
                    now_ms(),
                    if self.aborted { "aborted" } else { "failed" },
                    "{}",
                )
                .await;
        }
        if self.opts.report_status && !self.opts.dry_run {
            let end = jiff::Timestamp::now().to_string();
            let _ = self
                .client
                .patch_resync_state(
                    if self.aborted {
                        ResyncStatus::Aborted
                    } else {
                        ResyncStatus::Failed
                    },
                    None,
                    Some(&end),
                    None,
                    self.opts.interval_minutes,
                )
                .await;
        }
    }
}
