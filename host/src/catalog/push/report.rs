//! The end-of-sync report: [`PushReport`], its human-readable [`PushReport::render`], and
//! building it from the tally, the scopes and the reconciliation decision (which also sets
//! the sync's [`Outcome`]).
//!
//! Owns no state of the sync: reads it and writes nothing, neither to Port nor to the store.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use crate::catalog::metrics::KindCounters;
use crate::catalog::reconcile::{Decision, KeepReason};
use crate::scope::{ENTITIES_FAILED, ScopeKey, ScopeStatus};

use super::{Outcome, Plan, Pusher};

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

impl Pusher {
    /// The report of a sync whose reconciliation decided `d` and deleted what it says.
    pub(super) fn report(&self, d: &Decision, deleted: u64, delete_failed: u64) -> PushReport {
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
        let loaded = self.tally.counters.iter().map(|c| c.loaded).sum();
        let load_failed = self.tally.counters.iter().map(|c| c.load_failed).sum();
        let mut incomplete: Vec<(ScopeKey, ScopeStatus)> = self
            .scopes
            .incomplete()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        // A scope whose entities did not all land is as incomplete as one that was not read.
        let listed: HashSet<String> = incomplete.iter().map(|(k, _)| k.to_text()).collect();
        let mut failed: Vec<&String> = self
            .tally
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
            && self.tally.failed_scopes.is_empty()
            && self.deletes.blocked_blueprints().is_empty()
            && d.refused.is_none()
            && self.deletes.blocked().is_none();
        PushReport {
            sync_id: self.sync_id.clone(),
            dry_run: self.opts.dry_run,
            plan: self.tally.plan.clone(),
            loaded,
            load_failed,
            deleted,
            delete_failed,
            refused: d.refused.clone(),
            kept,
            blocked_blueprints: self.deletes.blocked_blueprints().clone(),
            errors: self.tally.errors.clone(),
            duplicates: self.upserts.duplicates(),
            kinds: self.tally.counters.clone(),
            incomplete_scopes: incomplete,
            outcome: if clean {
                Outcome::Completed
            } else {
                Outcome::Partial
            },
            seconds: self.clock.elapsed().as_secs_f64(),
        }
    }
}
