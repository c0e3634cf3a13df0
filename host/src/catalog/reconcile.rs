//! Reconciliation: which entities this integration owns in Port but did not produce in this
//! sync may be deleted.
//!
//! Owns: the decision, as a pure function of what Port held before the sync, what the sync saw,
//! the scopes each entity may come from (state store), how each scope ended and which
//! blueprints a failed mapping could have produced. The rule: **delete only what a completed
//! scope and a working mapping prove gone**; everything else is kept with the reason. Stricter
//! than Ocean, which deletes whatever a sync did not see (see `docs/fail-closed.md`):
//! - nothing is deleted when the sync as a whole cannot be trusted (Port's owned list could not
//!   be read, a Port call failed outright, a mapping entry failed and its blueprint is unknown);
//! - nothing of a blueprint is deleted when a resource entry that writes it failed (its JQ
//!   does not compile, or it produced no entity while its kind had items);
//! - an unseen entity is deleted only if every scope it may come from completed in this sync,
//!   with no entity of those scopes failing to map or load (an identifier two accounts share
//!   is one entity in Port: while either account was not read, it may still exist); an
//!   entity whose scope is unknown (written by
//!   Ocean, or before Berth kept state, or the state store is new) only when every scope of
//!   the sync completed, account-wide failures included, and no mapping entry failed;
//! - entities updated in Port after the sync started are kept (a live write, Ocean's `before`);
//! - with `createMissingRelatedEntities`, relation targets of entities the sync kept are kept;
//! - Ocean's threshold: when deletions ÷ owned entities exceeds `entityDeletionThreshold`,
//!   nothing is deleted and the refusal says so.
//!
//! Entities of other datasources never reach this module: the owned list only has this
//! integration's. Must not touch: Port or the store; `push` carries the plan out.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::catalog::port::entities::OwnedEntity;
use crate::scope::{ScopeBook, ScopeStatus};
use crate::store::EntityKey;

/// Everything the decision needs.
pub struct Inputs<'a> {
    /// Per blueprint, the entities Port listed as this integration's before the sync wrote.
    pub owned: &'a BTreeMap<String, Vec<OwnedEntity>>,
    /// Entities produced by this sync.
    pub seen: &'a HashSet<EntityKey>,
    /// Per entity, every scope the state store says it may come from (its entries' scopes
    /// and their [`crate::store::EntityState::sources`]).
    pub sources: &'a HashMap<EntityKey, Vec<String>>,
    pub scopes: &'a ScopeBook,
    /// Scope texts in which an entity failed to map or load during this sync.
    pub failed_scopes: &'a HashSet<String>,
    /// Blueprints a failed resource entry writes, with why: none of their entities go.
    pub blocked_blueprints: &'a BTreeMap<String, String>,
    /// Why the whole sync cannot be trusted for deletion, if it cannot.
    pub blocked: Option<String>,
    /// The sync's start (RFC 3339); owned entities updated at or after it are kept.
    pub started_at: jiff::Timestamp,
    pub threshold: f64,
    /// Relation targets (identifiers) of the entities this sync produced, when
    /// `createMissingRelatedEntities` is on.
    pub relation_targets: Option<&'a HashSet<String>>,
}

/// Why an unseen owned entity is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepReason {
    /// Its scope did not complete (denied, failed, or an entity of it failed).
    ScopeIncomplete {
        scope: String,
        status: String,
    },
    /// Its scope was not part of this sync.
    ScopeNotSynced {
        scope: String,
    },
    /// No scope is known for it and some scope of the sync did not complete.
    UnknownScope,
    /// A resource entry that writes its blueprint failed; says why.
    MappingFailed(String),
    UpdatedDuringSync,
    RelationTarget,
}

/// The decision.
#[derive(Debug, Default, Clone)]
pub struct Decision {
    /// Per blueprint, identifiers to delete.
    pub delete: BTreeMap<String, Vec<String>>,
    /// Unseen owned entities kept, with why.
    pub kept: Vec<(EntityKey, KeepReason)>,
    /// Set when nothing may be deleted; says why.
    pub refused: Option<String>,
    /// Owned entities Port listed before the sync.
    pub owned_total: usize,
    /// Would-be deletions (also counted when refused).
    pub candidates: usize,
}

impl Decision {
    pub fn delete_count(&self) -> usize {
        self.delete.values().map(Vec::len).sum()
    }
}

/// Decides what to delete.
pub fn decide(inp: &Inputs<'_>) -> Decision {
    let mut d = Decision {
        owned_total: inp.owned.values().map(Vec::len).sum(),
        ..Decision::default()
    };
    let everything_complete = inp.scopes.all_complete()
        && inp.failed_scopes.is_empty()
        && inp.blocked_blueprints.is_empty();
    for (bp, entities) in inp.owned {
        for e in entities {
            let key = EntityKey {
                blueprint: bp.clone(),
                identifier: e.identifier.clone(),
            };
            if inp.seen.contains(&key) {
                continue;
            }
            let reason = keep_reason(inp, &key, e, everything_complete);
            match reason {
                Some(r) => d.kept.push((key, r)),
                None => d.delete.entry(bp.clone()).or_default().push(key.identifier),
            }
        }
    }
    d.candidates = d.delete_count();
    if let Some(why) = &inp.blocked {
        if d.candidates > 0 {
            d.refused = Some(format!(
                "not deleting {} stale entities: {why}",
                d.candidates
            ));
        }
        d.delete.clear();
        return d;
    }
    if d.owned_total > 0 {
        let rate = d.candidates as f64 / d.owned_total as f64;
        if rate > inp.threshold {
            d.refused = Some(format!(
                "not deleting {} of {} owned entities ({:.1}%): above entityDeletionThreshold {} \
                 ({:.1}%); check the mapping and the AWS access, or raise the threshold",
                d.candidates,
                d.owned_total,
                rate * 100.0,
                inp.threshold,
                inp.threshold * 100.0
            ));
            d.delete.clear();
        }
    }
    d
}

fn keep_reason(
    inp: &Inputs<'_>,
    key: &EntityKey,
    e: &OwnedEntity,
    everything_complete: bool,
) -> Option<KeepReason> {
    if let Some(updated) = e
        .updated_at
        .as_deref()
        .and_then(|u| u.parse::<jiff::Timestamp>().ok())
        && updated >= inp.started_at
    {
        return Some(KeepReason::UpdatedDuringSync);
    }
    if inp
        .relation_targets
        .is_some_and(|t| t.contains(&key.identifier))
    {
        return Some(KeepReason::RelationTarget);
    }
    if let Some(why) = inp.blocked_blueprints.get(&key.blueprint) {
        return Some(KeepReason::MappingFailed(why.clone()));
    }
    match inp.sources.get(key) {
        Some(sources) => sources.iter().find_map(|scope| keep_for_scope(inp, scope)),
        None if everything_complete => None,
        None => Some(KeepReason::UnknownScope),
    }
}

/// Why an unseen entity that `scope` may produce is kept, unless that scope proves it gone.
fn keep_for_scope(inp: &Inputs<'_>, scope: &str) -> Option<KeepReason> {
    match inp.scopes.status_of(scope) {
        None => Some(KeepReason::ScopeNotSynced {
            scope: scope.to_string(),
        }),
        Some(ScopeStatus::Complete) if !inp.failed_scopes.contains(scope) => None,
        // The label, not the reason: kept entities are counted per reason text, and one
        // line per scope's error message would bury the count.
        Some(s) => Some(KeepReason::ScopeIncomplete {
            scope: scope.to_string(),
            status: if s.is_complete() {
                "entities failed".into()
            } else {
                s.label().into()
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::ScopeKey;

    fn owned(ids: &[&str]) -> Vec<OwnedEntity> {
        ids.iter()
            .map(|i| OwnedEntity {
                identifier: i.to_string(),
                updated_at: Some("2026-01-01T00:00:00Z".into()),
            })
            .collect()
    }

    fn key(i: &str) -> EntityKey {
        EntityKey {
            blueprint: "bp".into(),
            identifier: i.into(),
        }
    }

    struct World {
        owned: BTreeMap<String, Vec<OwnedEntity>>,
        seen: HashSet<EntityKey>,
        sources: HashMap<EntityKey, Vec<String>>,
        scopes: ScopeBook,
        failed: HashSet<String>,
        blocked: BTreeMap<String, String>,
    }

    fn world() -> World {
        // a1, a2 from scope A; b1, b2 from scope B; x1 unknown scope; seen: a1, b1.
        let a = ScopeKey::new("1", "r1", "K");
        let b = ScopeKey::new("1", "r2", "K");
        let mut sources = HashMap::new();
        for (id, s) in [("a1", &a), ("a2", &a), ("b1", &b), ("b2", &b)] {
            sources.insert(key(id), vec![s.to_text()]);
        }
        let mut scopes = ScopeBook::default();
        scopes.note(&a);
        scopes.note(&b);
        World {
            owned: BTreeMap::from([("bp".to_string(), owned(&["a1", "a2", "b1", "b2", "x1"]))]),
            seen: HashSet::from([key("a1"), key("b1")]),
            sources,
            scopes,
            failed: HashSet::new(),
            blocked: BTreeMap::new(),
        }
    }

    fn run(w: &World, threshold: f64, blocked: Option<String>) -> Decision {
        decide(&Inputs {
            owned: &w.owned,
            seen: &w.seen,
            sources: &w.sources,
            scopes: &w.scopes,
            failed_scopes: &w.failed,
            blocked_blueprints: &w.blocked,
            blocked,
            started_at: "2026-06-01T00:00:00Z".parse().unwrap(),
            threshold,
            relation_targets: None,
        })
    }

    #[test]
    fn complete_scopes_delete_their_stale_entities() {
        let w = world();
        let d = run(&w, 0.9, None);
        assert_eq!(d.delete["bp"], vec!["a2", "b2", "x1"]);
        assert!(d.refused.is_none());
    }

    #[test]
    fn an_incomplete_scope_keeps_everything_it_had() {
        let mut w = world();
        w.scopes.set(
            &ScopeKey::new("1", "r2", "K"),
            ScopeStatus::Denied("AccessDenied".into()),
        );
        let d = run(&w, 0.9, None);
        assert_eq!(d.delete["bp"], vec!["a2"]);
        let kept: Vec<_> = d.kept.iter().map(|(k, _)| k.identifier.as_str()).collect();
        assert_eq!(kept, vec!["b2", "x1"]);
        assert!(
            matches!(d.kept[0].1, KeepReason::ScopeIncomplete { ref status, .. } if status == "denied")
        );
        assert_eq!(d.kept[1].1, KeepReason::UnknownScope);
    }

    #[test]
    fn an_entity_two_scopes_share_goes_only_when_both_completed() {
        let mut w = world();
        // a2 was also produced in region r2 (the same identifier there).
        let b = ScopeKey::new("1", "r2", "K").to_text();
        w.sources.get_mut(&key("a2")).unwrap().push(b.clone());
        w.scopes.set(
            &ScopeKey::new("1", "r2", "K"),
            ScopeStatus::Failed("throttled".into()),
        );
        let d = run(&w, 0.9, None);
        assert!(!d.delete.contains_key("bp"), "{:?}", d.delete);
        assert!(d.kept.iter().any(|(k, r)| k.identifier == "a2"
            && matches!(r, KeepReason::ScopeIncomplete { scope, .. } if *scope == b)));
        // When r2 completes too, a2 is proven gone.
        let mut w = world();
        w.sources.get_mut(&key("a2")).unwrap().push(b);
        let d = run(&w, 0.9, None);
        assert_eq!(d.delete["bp"], vec!["a2", "b2", "x1"]);
    }

    #[test]
    fn a_failed_entity_keeps_its_scope() {
        let mut w = world();
        w.failed.insert(ScopeKey::new("1", "r1", "K").to_text());
        let d = run(&w, 0.9, None);
        assert_eq!(d.delete["bp"], vec!["b2"]);
    }

    #[test]
    fn an_account_wide_failure_keeps_entities_of_no_known_scope() {
        let mut w = world();
        w.scopes.set(
            &ScopeKey::account_wide("2"),
            ScopeStatus::Failed("no regions".into()),
        );
        let d = run(&w, 0.9, None);
        // a2 and b2 came from scopes that completed; x1 could be account 2's.
        assert_eq!(d.delete["bp"], vec!["a2", "b2"]);
        assert_eq!(d.kept, vec![(key("x1"), KeepReason::UnknownScope)]);
    }

    #[test]
    fn a_failed_mapping_keeps_its_blueprint() {
        let mut w = world();
        w.blocked
            .insert("bp".into(), "resources[0] produced no entity".into());
        let d = run(&w, 0.9, None);
        assert!(d.delete.is_empty());
        assert_eq!(d.kept.len(), 3);
        assert!(
            d.kept
                .iter()
                .all(|(_, r)| matches!(r, KeepReason::MappingFailed(_)))
        );
        // Another blueprint's failure still keeps entities of no known scope.
        w.blocked.clear();
        w.blocked.insert("other".into(), "x".into());
        let d = run(&w, 0.9, None);
        assert_eq!(d.delete["bp"], vec!["a2", "b2"]);
    }

    #[test]
    fn threshold_refuses_with_a_reason() {
        let w = world();
        let d = run(&w, 0.5, None);
        assert!(d.delete.is_empty());
        let why = d.refused.unwrap();
        assert!(
            why.contains("3 of 5") && why.contains("entityDeletionThreshold 0.5"),
            "{why}"
        );
    }

    #[test]
    fn blocked_sync_deletes_nothing() {
        let w = world();
        let d = run(&w, 1.0, Some("Port's owned list could not be read".into()));
        assert!(d.delete.is_empty());
        assert!(d.refused.unwrap().contains("could not be read"));
    }

    #[test]
    fn live_updates_and_relation_targets_are_kept() {
        let mut w = world();
        w.owned.get_mut("bp").unwrap()[1].updated_at = Some("2026-06-01T00:00:01Z".into());
        let targets = HashSet::from(["b2".to_string()]);
        let d = decide(&Inputs {
            owned: &w.owned,
            seen: &w.seen,
            sources: &w.sources,
            scopes: &w.scopes,
            failed_scopes: &w.failed,
            blocked_blueprints: &w.blocked,
            blocked: None,
            started_at: "2026-06-01T00:00:00Z".parse().unwrap(),
            threshold: 0.9,
            relation_targets: Some(&targets),
        });
        assert_eq!(d.delete["bp"], vec!["x1"]);
        w.seen.clear();
    }
}
