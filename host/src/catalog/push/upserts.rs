//! Writing the sync's entities: one write per entity and resource entry (a write two scopes
//! share is deferred to the scope that wrote it last time), change detection against the
//! state store, buffering per blueprint, bulk upserts in flight, the retry in relation order
//! of entities refused for a missing related entity, and saving the entity states written,
//! with every scope that may produce each entity (see [`Pusher::save_sources`]).
//!
//! Owns [`Upserts`]. Adds to the tally (plan, counters, errors, failed scopes) and asks
//! `deletes.rs` for Port's owned list of a blueprint; must not touch the reconciliation
//! decision, deletes, or what Port hears about the sync.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokio::task::JoinSet;

use crate::catalog::port::blueprints::is_missing_related;
use crate::catalog::port::{Entity, EntityResult, PortError, UpsertOptions};
use crate::scope::ScopeStatus;
use crate::store::{EntityState, StateKey, now_ms};

use super::{EntityIn, PushError, Pusher};
use crate::catalog::changes::{Change, body_hash, classify};

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

/// The upserts of one sync, from acceptance to the state saved.
pub(super) struct Upserts {
    upsert: UpsertOptions,
    /// The scope each write of this sync came from: one write per entity and entry.
    accepted: HashMap<StateKey, String>,
    /// Writes held back because another scope wrote them last time (an identifier two
    /// accounts share): sent at the end only if that scope does not produce them again.
    deferred: BTreeMap<StateKey, EntityIn>,
    /// Scopes besides the accepted one that produced a write in this sync (an identifier two
    /// accounts or regions share). Empty unless identifiers collide.
    also: HashMap<StateKey, BTreeSet<String>>,
    duplicates: u64,
    buffers: BTreeMap<String, Vec<Pending>>,
    inflight: JoinSet<Flushed>,
    /// Refused for a missing related entity: sent again at the end, in relation order.
    retry_later: Vec<Pending>,
    /// Written (or found unchanged under another scope) and not yet saved to the store.
    state_updates: Vec<(StateKey, EntityState)>,
}

impl Upserts {
    pub(super) fn new(upsert: UpsertOptions) -> Self {
        Self {
            upsert,
            accepted: HashMap::new(),
            deferred: BTreeMap::new(),
            also: HashMap::new(),
            duplicates: 0,
            buffers: BTreeMap::new(),
            inflight: JoinSet::new(),
            retry_later: Vec::new(),
            state_updates: Vec::new(),
        }
    }

    /// Writes dropped because the entity was produced again through the same entry.
    pub(super) fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Drops the flushes in flight (a stopping error: their results would not be taken in).
    pub(super) fn abort_inflight(&mut self) {
        self.inflight.abort_all();
    }

    fn duplicate(&mut self, key: &StateKey) {
        self.duplicates += 1;
        tracing::debug!(
            blueprint = %key.entity.blueprint,
            identifier = %key.entity.identifier,
            "entity produced more than once in this sync; the first write is kept"
        );
    }
}

impl Pusher {
    /// Accepts a valid entity unless this sync already wrote it through the same entry, or
    /// holds it back when another scope wrote it last time (see [`Pusher::add`]).
    pub(super) async fn write_once(
        &mut self,
        key: StateKey,
        input: EntityIn,
        counter: usize,
        scope: String,
    ) -> Result<(), PushError> {
        if let Some(first) = self.upserts.accepted.get(&key) {
            if *first != scope {
                self.upserts
                    .also
                    .entry(key.clone())
                    .or_default()
                    .insert(scope);
            }
            self.upserts.duplicate(&key);
            return Ok(());
        }
        if self.states.get(&key).is_some_and(|st| st.scope != scope) {
            self.upserts
                .also
                .entry(key.clone())
                .or_default()
                .insert(scope);
            match self.upserts.deferred.entry(key) {
                std::collections::btree_map::Entry::Occupied(o) => {
                    let key = o.key().clone();
                    self.upserts.duplicate(&key);
                }
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(input);
                }
            }
            return Ok(());
        }
        self.accept(key, input, counter, scope).await
    }

    async fn accept(
        &mut self,
        key: StateKey,
        mut input: EntityIn,
        counter: usize,
        scope: String,
    ) -> Result<(), PushError> {
        let blueprint = key.entity.blueprint.clone();
        self.upserts.accepted.insert(key.clone(), scope.clone());
        self.tally.counters[counter]
            .blueprint
            .get_or_insert_with(|| blueprint.clone());
        self.ensure_owned(&blueprint).await;
        if self.opts.settings.create_missing_related_entities {
            // Moved, not copied: from here on the record only feeds the bulk body.
            self.deletes
                .keep_relation_targets(std::mem::take(&mut input.entity.relation_targets));
        }
        let hash = body_hash(&input.entity, self.upserts.upsert);
        let in_port = self.deletes.in_port(&blueprint, &key.entity.identifier);
        let last = self.states.get(&key);
        let change = classify(&hash, last.map(|s| s.body_hash.as_str()), in_port);
        let counts = self
            .tally
            .plan
            .blueprints
            .entry(blueprint.clone())
            .or_default();
        match change {
            Change::Create => counts.create += 1,
            Change::Update => counts.update += 1,
            Change::Unchanged => counts.unchanged += 1,
        }
        if change == Change::Unchanged {
            self.tally.counters[counter].skipped += 1;
            if last.is_some_and(|s| s.scope != scope) && !self.opts.dry_run {
                let also = self.also_so_far(&key, &scope);
                self.upserts.state_updates.push((
                    key,
                    EntityState {
                        body_hash: hash,
                        scope,
                        also,
                        written_at: now_ms(),
                    },
                ));
            }
            return Ok(());
        }
        if self.opts.dry_run {
            return Ok(());
        }
        let buf = self.upserts.buffers.entry(blueprint.clone()).or_default();
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
        for (key, input) in std::mem::take(&mut self.upserts.deferred) {
            if self.upserts.accepted.contains_key(&key) {
                self.upserts.duplicate(&key);
                continue;
            }
            let counter = self.tally.counter(&input.kind, input.kind_index);
            let scope = input.scope.to_text();
            self.accept(key, input, counter, scope).await?;
        }
        Ok(())
    }

    /// Sends a blueprint's buffer (waiting for a slot when enough flushes are in flight).
    async fn flush(&mut self, blueprint: &str) -> Result<(), PushError> {
        let Some(pending) = self
            .upserts
            .buffers
            .remove(blueprint)
            .filter(|b| !b.is_empty())
        else {
            return Ok(());
        };
        while self.upserts.inflight.len() >= self.opts.max_inflight_flushes.max(1) {
            self.settle_one().await?;
        }
        let client = self.client.clone();
        let bp = blueprint.to_string();
        let opts = self.upserts.upsert;
        self.upserts.inflight.spawn(async move {
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
        let Some(joined) = self.upserts.inflight.join_next().await else {
            return Ok(());
        };
        let (pending, result) =
            joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let results = match result {
            Ok(r) => r,
            Err(e) => {
                // Port unreachable or credentials refused: nothing more can land.
                for p in &pending {
                    self.tally.counters[p.counter].load_failed += 1;
                    self.tally.failed_scopes.insert(p.scope.clone());
                }
                return Err(e.into());
            }
        };
        self.take_results(pending, results, true);
        if self.upserts.state_updates.len() >= 5000 {
            self.save_states().await?;
        }
        Ok(())
    }

    fn take_results(&mut self, pending: Vec<Pending>, results: Vec<EntityResult>, may_retry: bool) {
        for (p, r) in pending.into_iter().zip(results) {
            match r.outcome {
                Ok(()) => {
                    self.tally.counters[p.counter].loaded += 1;
                    let also = self.also_so_far(&p.key, &p.scope);
                    self.upserts.state_updates.push((
                        p.key,
                        EntityState {
                            body_hash: p.hash,
                            scope: p.scope,
                            also,
                            written_at: now_ms(),
                        },
                    ));
                }
                Err(e) if may_retry && is_missing_related(&e) => self.upserts.retry_later.push(p),
                Err(e) => {
                    self.tally.counters[p.counter].load_failed += 1;
                    self.tally.failed_scopes.insert(p.scope.clone());
                    let what = match p.change {
                        Change::Create => "create",
                        _ => "update",
                    };
                    self.tally
                        .error(format!("{what} of {:?}: {e}", p.key.entity.blueprint));
                }
            }
        }
    }

    /// The other scopes to save with a write from `scope` before the sync's scopes have ended:
    /// those that produced it so far in this sync and every scope the store named for it, so
    /// that a sync that stops before [`Pusher::save_sources`] forgets none.
    fn also_so_far(&self, key: &StateKey, scope: &str) -> Vec<String> {
        let mut also: BTreeSet<&str> = self
            .upserts
            .also
            .get(key)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        also.extend(self.states.get(key).into_iter().flat_map(|st| st.sources()));
        also.remove(scope);
        also.into_iter().map(str::to_string).collect()
    }

    /// Once every scope of the sync has ended, records for each entity every scope that may
    /// produce it: those that produced it in this sync, and those the store named before that
    /// have not proven it gone since (completed without it, with its blueprint's mapping
    /// working). Only entities some other scope may produce are written: for all others the
    /// saved state already says it.
    pub(super) async fn save_sources(&mut self) -> Result<(), PushError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let mut rows = Vec::new();
        for (key, owner) in &self.upserts.accepted {
            let produced = self.upserts.also.get(key);
            let before = self.states.get(key);
            let other_before = before.is_some_and(|st| !st.also.is_empty() || st.scope != *owner);
            if produced.is_none() && !other_before {
                continue;
            }
            let blueprint_works = !self
                .deletes
                .blocked_blueprints()
                .contains_key(&key.entity.blueprint);
            let proven = |scope: &str| {
                blueprint_works
                    && self.scopes.status_of(scope) == Some(&ScopeStatus::Complete)
                    && !self.tally.failed_scopes.contains(scope)
            };
            // The owner stays named: when its write did not land, the row keeps the body (and
            // the scope) of an earlier sync, and this sync's producer must not be lost.
            let mut all: BTreeSet<&str> = BTreeSet::from([owner.as_str()]);
            all.extend(produced.into_iter().flatten().map(String::as_str));
            all.extend(
                before
                    .into_iter()
                    .flat_map(|st| st.sources())
                    .filter(|s| !proven(s)),
            );
            rows.push((key.clone(), all.into_iter().map(str::to_string).collect()));
        }
        if !rows.is_empty() {
            store
                .put_entity_also(&self.opts.integration_key, &rows)
                .await?;
        }
        Ok(())
    }

    /// Saves the entity states written since the last save.
    pub(super) async fn save_states(&mut self) -> Result<(), PushError> {
        if let Some(store) = &self.store
            && !self.upserts.state_updates.is_empty()
        {
            store
                .put_entity_states(&self.opts.integration_key, &self.upserts.state_updates)
                .await?;
        }
        self.upserts.state_updates.clear();
        Ok(())
    }

    /// Sends the deferred writes, every buffer and every flush in flight, then the entities
    /// that waited for related ones, in relation order.
    pub(super) async fn load_rest(&mut self) -> Result<(), PushError> {
        self.accept_deferred().await?;
        let bps: Vec<String> = self.upserts.buffers.keys().cloned().collect();
        for bp in bps {
            self.flush(&bp).await?;
        }
        while !self.upserts.inflight.is_empty() {
            self.settle_one().await?;
        }
        if !self.upserts.retry_later.is_empty() {
            let mut pending = std::mem::take(&mut self.upserts.retry_later);
            let entities: Vec<Entity> = pending
                .iter_mut()
                .map(|p| std::mem::take(&mut p.entity))
                .collect();
            let results = self
                .client
                .upsert_with_relation_retry(&entities, self.upserts.upsert)
                .await?;
            self.take_results(pending, results, false);
        }
        Ok(())
    }
}
