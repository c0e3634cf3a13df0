//! The Port side of one sync, start to end: [`Pusher`].
//!
//! The order of things: resync state `running` → per blueprint, Port's list of what this
//! integration owns (read once, before the first write) → change detection against the state
//! store → bulk upserts, streamed (several calls in flight, entities buffered per blueprint) →
//! entities refused for a missing related entity retried in relation order → reconciliation
//! (`reconcile::decide`) and deletes → state store → per-kind metrics → resync state
//! `completed`/`failed`. A dry run reads Port and the store, and writes to neither.
//!
//! This file holds that order, the public types, and the state every part reads: the options,
//! the store's entity states, the scopes and the tally of what happened. The three parts own
//! the rest, each its own state:
//! - `status.rs`: what Port (and the store's sync record) hears about the sync: resync state
//!   at start and end, metrics, a failed or aborted ending.
//! - `upserts.rs`: change detection, one write per entity, buffered and in-flight bulk
//!   upserts, relation-ordered retry, saving entity states.
//! - `deletes.rs`: what the integration owns in Port, the reconciliation decision, deletes.
//!
//! `report.rs` turns the tally and the decision into a [`PushReport`].
//! Must not touch: AWS, plugins, the mapping; entities arrive mapped, each with its scope.

mod deletes;
mod report;
mod status;
mod upserts;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use crate::catalog::port::integration::ResyncStatus;
use crate::catalog::port::{Entity, PortClient, PortError, UpsertOptions};
use crate::mapping::Settings;
use crate::scope::{ScopeBook, ScopeKey};
use crate::store::{EntityKey, EntityState, StateKey, Store, StoreError};

use super::metrics::KindCounters;

pub use report::PushReport;

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

/// What the sync did so far: every part adds to it, the report and the metrics read it.
#[derive(Default)]
struct Tally {
    /// One per resource entry, in the order entries were first met.
    counters: Vec<KindCounters>,
    counter_index: HashMap<(String, usize), usize>,
    plan: Plan,
    /// Distinct failure messages with counts.
    errors: BTreeMap<String, u64>,
    /// Scopes some of whose entities did not land: reconciliation trusts them no more than
    /// scopes that were not read.
    failed_scopes: HashSet<String>,
}

impl Tally {
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
}

/// Pushes one sync's entities. Feed it with [`Pusher::add`], end with [`Pusher::finish`].
pub struct Pusher {
    client: PortClient,
    store: Option<Store>,
    opts: PushOptions,
    sync_id: String,
    started: jiff::Timestamp,
    clock: Instant,
    /// The store's record of each entity's last write, read at the start: change detection
    /// compares with it, reconciliation reads scopes from it, deletes drop from it.
    states: HashMap<StateKey, EntityState>,
    scopes: ScopeBook,
    tally: Tally,
    status: status::Status,
    upserts: upserts::Upserts,
    deletes: deletes::Deletes,
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
            sync_id,
            started,
            clock: Instant::now(),
            states,
            scopes: ScopeBook::default(),
            tally: Tally::default(),
            status: status::Status::default(),
            upserts: upserts::Upserts::new(upsert),
            deletes: deletes::Deletes::default(),
            opts,
        };
        if !pusher.opts.dry_run {
            pusher.report_start().await?;
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

    /// The counters of one resource entry, for the extract and transform phases.
    pub fn counters_mut(&mut self, kind: &str, index: usize) -> &mut KindCounters {
        let i = self.tally.counter(kind, index);
        &mut self.tally.counters[i]
    }

    /// Adds one mapped entity: classified, then buffered for a bulk upsert unless unchanged.
    ///
    /// One entity is written once per sync and resource entry. When two scopes produce the
    /// same entity through the same entry (an identifier two accounts share, which Port would
    /// let the last writer win, in no fixed order), the scope that wrote it last time keeps
    /// it, and otherwise the first to arrive: so a repeated sync writes nothing, where
    /// flip-flopping writers would rewrite it every time. Such duplicates are counted.
    pub async fn add(&mut self, input: EntityIn) -> Result<(), PushError> {
        let counter = self.tally.counter(&input.kind, input.kind_index);
        if self.opts.input_scopes_complete {
            self.scopes.note(&input.scope);
        }
        let scope = input.scope.to_text();
        if input.entity.blueprint.is_empty() {
            self.tally.counters[counter].load_failed += 1;
            self.tally.failed_scopes.insert(scope);
            self.tally
                .error("entity has no string \"blueprint\" field".into());
            return Ok(());
        }
        let blueprint = input.entity.blueprint.clone();
        if input.entity.identifier.is_empty() {
            // A search-query identifier names an existing entity; it cannot be tracked.
            self.tally.counters[counter].load_failed += 1;
            self.tally.failed_scopes.insert(scope);
            self.tally.error(format!(
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
        self.deletes.see(key.entity.clone());
        self.write_once(key, input, counter, scope).await
    }

    /// Sends every upsert still buffered or in flight, so a caller can tell the upserts' end
    /// from reconciliation's start; [`Self::finish`] does it too. On failure Port hears that
    /// the resync failed, as from `finish`.
    pub async fn drain(&mut self) -> Result<(), PushError> {
        let r = self.load_rest().await;
        if let Err(e) = &r {
            self.fail_with(e).await;
        }
        r
    }

    /// Ends the sync: sends what is buffered, retries entities that waited for related ones,
    /// reconciles, saves state and reports. On an error that stops the push, Port is told the
    /// resync failed and nothing is deleted.
    pub async fn finish(mut self) -> Result<PushReport, PushError> {
        if let Err(e) = self.load_rest().await {
            self.fail_with(&e).await;
            return Err(e);
        }
        let decision = self.decide().await;
        let (deleted, delete_failed) = if self.opts.dry_run {
            (0, 0)
        } else {
            match self.delete(&decision).await {
                Ok(n) => n,
                Err(e) => {
                    self.fail_with(&e).await;
                    return Err(e);
                }
            }
        };
        let report = self.report(&decision, deleted, delete_failed);
        if !self.opts.dry_run
            && let Err(e) = self.record_end(&decision, &report).await
        {
            // Deletes may have gone out; the history still says this sync failed, and why,
            // rather than staying `running`.
            self.fail_with(&e).await;
            return Err(e);
        }
        Ok(report)
    }

    /// After the deletes: the entity states and sources the next sync starts from, then the
    /// sync's end in the store and to Port.
    async fn record_end(
        &mut self,
        decision: &crate::catalog::reconcile::Decision,
        report: &PushReport,
    ) -> Result<(), PushError> {
        self.save_states().await?;
        self.save_sources().await?;
        self.forget_gone(decision).await?;
        let state = if report.outcome == Outcome::Completed {
            ResyncStatus::Completed
        } else {
            ResyncStatus::Failed
        };
        self.report_end(state, report).await
    }

    /// Abandons the sync (a stage before Port failed, or a stop was requested): keeps what
    /// landed, deletes nothing, tells Port the resync failed (`aborted` when `stopped`, a
    /// requested stop), and keeps `why` in the sync's history record.
    pub async fn abort_as(mut self, stopped: bool, why: Option<&str>) {
        self.status.set_aborted(stopped, why);
        self.fail().await;
    }
}
