//! Reconciliation and deletion: what this integration owns in Port (read once per
//! blueprint), what the sync saw, which resource entries failed (and so block deletes of
//! their blueprints), the `reconcile::decide` decision taken from all that, the deletes it
//! allows, and forgetting the stored states of entities gone from Port.
//!
//! Owns [`Deletes`]. Deleting is fail-closed: only what `reconcile::decide` returns is
//! deleted, and nothing when a stopping error came first (`mod.rs` decides that order).
//! Must not touch buffers or upserts, nor what Port hears about the sync.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::catalog::port::entities::OwnedEntity;
use crate::catalog::reconcile::{self, Decision, Inputs};
use crate::scope::{ScopeKey, ScopeStatus};
use crate::store::EntityKey;

use super::{PushError, Pusher};

/// What reconciliation decides from, gathered during the sync.
#[derive(Default)]
pub(super) struct Deletes {
    /// Per blueprint read, what Port says this integration owns.
    owned: BTreeMap<String, Vec<OwnedEntity>>,
    /// The identifiers of `owned`; an empty set with no `owned` entry marks a failed read.
    owned_sets: HashMap<String, HashSet<String>>,
    /// Why nothing at all may be deleted, when something made every blueprint suspect.
    blocked: Option<String>,
    /// Blueprints none of whose entities may be deleted, with why.
    blocked_blueprints: BTreeMap<String, String>,
    /// Every entity this sync produced, whichever write of it won.
    seen: HashSet<EntityKey>,
    /// Identifiers synced entities relate to (kept when Port creates missing related ones).
    relation_targets: HashSet<String>,
}

impl Deletes {
    pub(super) fn see(&mut self, entity: EntityKey) {
        self.seen.insert(entity);
    }

    pub(super) fn keep_relation_targets(&mut self, targets: Vec<String>) {
        self.relation_targets.extend(targets);
    }

    /// Whether Port holds the entity for this integration; None when its blueprint's list
    /// could not be read.
    pub(super) fn in_port(&self, blueprint: &str, identifier: &str) -> Option<bool> {
        if self.owned.contains_key(blueprint) {
            Some(self.owned_sets[blueprint].contains(identifier))
        } else {
            None
        }
    }

    pub(super) fn blocked(&self) -> Option<&str> {
        self.blocked.as_deref()
    }

    pub(super) fn blocked_blueprints(&self) -> &BTreeMap<String, String> {
        &self.blocked_blueprints
    }
}

impl Pusher {
    /// Accounts that are no longer part of the tenant (removed from the Organization, or from
    /// the configured roles): the scopes their entities came from count as complete and
    /// empty, so those entities are reconciled away (within the deletion threshold). `known`
    /// is the authoritative account list of this sync.
    pub fn retire_accounts_not_in(&mut self, known: &HashSet<String>) {
        let retired: BTreeSet<String> = self
            .states
            .values()
            .flat_map(|st| st.sources())
            .map(str::to_string)
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
                self.deletes.blocked.get_or_insert(format!(
                    "{why}, and its blueprint is not a constant, so any blueprint may be missing entities"
                ));
            }
        }
        for bp in bps {
            self.deletes
                .blocked_blueprints
                .entry(bp)
                .or_insert_with(|| why.to_string());
        }
    }

    /// Reads (once per blueprint) what this integration owns in Port.
    pub(super) async fn ensure_owned(&mut self, blueprint: &str) {
        if self.deletes.owned_sets.contains_key(blueprint) {
            return;
        }
        match self.client.owned_entities(blueprint).await {
            Ok(list) => {
                self.deletes.owned_sets.insert(
                    blueprint.to_string(),
                    list.iter().map(|e| e.identifier.clone()).collect(),
                );
                self.deletes.owned.insert(blueprint.to_string(), list);
            }
            Err(e) => {
                let why = format!(
                    "the entities this integration owns in {blueprint:?} could not be read: {e}"
                );
                tracing::warn!("{why}");
                self.deletes.blocked.get_or_insert(why);
                // An empty set marks "read attempted"; `in_port` is None for this blueprint.
                self.deletes
                    .owned_sets
                    .insert(blueprint.to_string(), HashSet::new());
            }
        }
    }

    /// Reads the owned lists still missing, then takes the reconciliation decision and
    /// counts its deletes in the plan. Deletes nothing itself.
    pub(super) async fn decide(&mut self) -> Decision {
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
        // Every scope any entry's write of an entity came from: two entries (two kinds writing
        // one blueprint) may have read it in different scopes.
        let mut sources: HashMap<EntityKey, Vec<String>> = HashMap::new();
        for (k, v) in &self.states {
            let all = sources.entry(k.entity.clone()).or_default();
            for s in v.sources() {
                if !all.iter().any(|a| a == s) {
                    all.push(s.to_string());
                }
            }
        }
        let decision = reconcile::decide(&Inputs {
            owned: &self.deletes.owned,
            seen: &self.deletes.seen,
            sources: &sources,
            scopes: &self.scopes,
            failed_scopes: &self.tally.failed_scopes,
            blocked_blueprints: &self.deletes.blocked_blueprints,
            blocked: self.deletes.blocked.clone(),
            started_at: self.started,
            threshold: self.opts.settings.entity_deletion_threshold,
            relation_targets: self
                .opts
                .settings
                .create_missing_related_entities
                .then_some(&self.deletes.relation_targets),
        });
        if let Some(r) = &decision.refused {
            tracing::warn!("{r}");
        }
        for (bp, ids) in &decision.delete {
            self.tally
                .plan
                .blueprints
                .entry(bp.clone())
                .or_default()
                .delete += ids.len() as u64;
        }
        decision
    }

    /// Carries out the deletions; returns (deleted, failed).
    pub(super) async fn delete(&mut self, d: &Decision) -> Result<(u64, u64), PushError> {
        let dependents = self.opts.settings.delete_dependent_entities;
        let mut deleted_keys = Vec::new();
        let mut failed = 0u64;
        for (bp, ids) in &d.delete {
            if dependents {
                let out = self.client.delete_bulk(bp, ids, true).await?;
                for (id, why) in &out.failed {
                    failed += 1;
                    self.tally.error(format!("delete of {bp:?} {id:?}: {why}"));
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
                            self.tally.error(format!("delete of {bp:?} {id:?}: {why}"));
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
                .filter(|kind| self.tally.counters.iter().any(|c| &c.kind == kind))
                .unwrap_or_else(|| "__reconciliation__".to_string());
            let i = self
                .tally
                .counters
                .iter()
                .position(|c| c.kind == kind)
                .unwrap_or_else(|| self.tally.counter(&kind, 0));
            self.tally.counters[i].deleted += 1;
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
    pub(super) async fn forget_gone(&mut self, d: &Decision) -> Result<(), PushError> {
        if self.deletes.blocked.is_some() || d.refused.is_some() {
            return Ok(());
        }
        let mut gone: Vec<EntityKey> = self
            .states
            .keys()
            .map(|k| &k.entity)
            .filter(|k| {
                !self.deletes.seen.contains(k)
                    && self
                        .deletes
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
}
