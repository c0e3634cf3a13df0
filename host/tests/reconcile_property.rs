//! The fail-closed rule as a property, in process, over the pure reconciliation core: random
//! estates, random changes in AWS between two syncs, random state stores (full, partial,
//! none: a user moving from Ocean, a lost `state.db`), and random fault schedules (an account
//! whose role is refused, whose regions cannot be listed or whose task panicked; scopes denied
//! or failed part-way; entities that fail to load; resource entries whose mapping fails; a
//! Port that cannot list what it owns). After each decision:
//!
//! - no entity that exists in AWS now is deleted (nothing lost);
//! - every deleted entity came from a scope that completed in this sync, of a kind whose
//!   mapping worked, with no entity of its scope failing to load (no wrong deletion);
//! - with no fault at all, exactly the entities gone from AWS are deleted (convergence).
//!
//! Some identifiers exist in several accounts at once (as the same database name might): Port
//! holds one entity for them, and it exists while any account has it. The ground truth (which
//! scopes each entity really came from) is the model's; reconciliation sees only what a sync
//! would show it, and a state store that names every scope an entity came from. `PROPTEST_CASES` sets the number of cases (default
//! below); failures are shrunk and kept in `reconcile_property.proptest-regressions`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use berth::catalog::port::entities::OwnedEntity;
use berth::catalog::reconcile::{Inputs, decide};
use berth::scope::{ScopeBook, ScopeKey, ScopeStatus};
use berth::store::EntityKey;
use proptest::prelude::*;

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-south-1"];
/// The kinds' blueprints: two kinds share one, as the default mapping's `cloudResource` does.
const KINDS: [(&str, &str); 3] = [
    ("AWS::EC2::Instance", "instance"),
    ("AWS::Lambda::Function", "cloudResource"),
    ("AWS::RDS::DBInstance", "cloudResource"),
];

/// How one account's discovery ended.
#[derive(Debug, Clone)]
enum AccountFault {
    None,
    /// The role could not be assumed: only `account/*/*`, denied.
    RoleDenied,
    /// `ListRegions` failed: `account/*/*` failed, and only the first region was read.
    RegionsUnknown,
    /// The account's task panicked after some of its scopes ended (`done` of them).
    Panicked {
        done: usize,
    },
    /// Gone from the Organization: not listed any more, its scopes retired as complete.
    LeftOrganization,
}

#[derive(Debug, Clone, Copy)]
enum ScopeFault {
    None,
    Denied,
    /// Failed part-way: only some of its items were emitted.
    Failed,
    /// Read completely, but one of its entities failed to map or load.
    EntityFailed,
}

#[derive(Debug, Clone, Copy)]
enum StateMode {
    Full,
    None,
    Partial,
}

#[derive(Debug, Clone)]
struct Case {
    accounts: usize,
    /// Entities per (account, region, kind) before, as counts.
    before: Vec<u8>,
    /// Per scope: how many of its entities went away, and how many are new.
    removed: Vec<u8>,
    added: Vec<u8>,
    /// Per (region, kind): identifiers every account had before.
    shared: Vec<u8>,
    /// Per scope: which shared identifiers it no longer has (bit per identifier).
    shared_removed: Vec<u32>,
    account_faults: Vec<AccountFault>,
    scope_faults: Vec<ScopeFault>,
    /// Which of a failed scope's current entities were still emitted (bit per entity).
    partial_bits: Vec<u32>,
    /// Per kind: its resource entry fails (its identifier does not compile).
    mapping_fails: Vec<bool>,
    state: StateMode,
    state_bits: Vec<u32>,
    owned_unreadable: bool,
}

fn account_fault() -> impl Strategy<Value = AccountFault> {
    prop_oneof![
        6 => Just(AccountFault::None),
        1 => Just(AccountFault::RoleDenied),
        1 => Just(AccountFault::RegionsUnknown),
        1 => (0usize..9).prop_map(|done| AccountFault::Panicked { done }),
        1 => Just(AccountFault::LeftOrganization),
    ]
}

fn scope_fault() -> impl Strategy<Value = ScopeFault> {
    prop_oneof![
        8 => Just(ScopeFault::None),
        1 => Just(ScopeFault::Denied),
        1 => Just(ScopeFault::Failed),
        1 => Just(ScopeFault::EntityFailed),
    ]
}

fn case(faults: bool) -> impl Strategy<Value = Case> {
    (1usize..=3).prop_flat_map(move |accounts| {
        let n = accounts * REGIONS.len() * KINDS.len();
        let fault_weight = if faults { 1.0 } else { 0.0 };
        (
            prop::collection::vec(0u8..4, n),
            prop::collection::vec(0u8..3, n),
            prop::collection::vec(0u8..2, n),
            (
                prop::collection::vec(0u8..3, REGIONS.len() * KINDS.len()),
                prop::collection::vec(any::<u32>(), n),
            ),
            prop::collection::vec(account_fault(), accounts),
            prop::collection::vec(scope_fault(), n),
            prop::collection::vec(any::<u32>(), n),
            prop::collection::vec(prop::bool::weighted(0.15 * fault_weight), KINDS.len()),
            prop_oneof![
                Just(StateMode::Full),
                Just(StateMode::None),
                Just(StateMode::Partial)
            ],
            prop::collection::vec(any::<u32>(), n),
            prop::bool::weighted(0.05 * fault_weight),
        )
            .prop_map(
                move |(
                    before,
                    removed,
                    added,
                    (shared, shared_removed),
                    account_faults,
                    scope_faults,
                    partial_bits,
                    mapping_fails,
                    state,
                    state_bits,
                    owned_unreadable,
                )| {
                    let (account_faults, scope_faults) = if faults {
                        (account_faults, scope_faults)
                    } else {
                        (
                            vec![AccountFault::None; accounts],
                            vec![ScopeFault::None; n],
                        )
                    };
                    Case {
                        accounts,
                        before,
                        removed,
                        added,
                        shared,
                        shared_removed,
                        account_faults,
                        scope_faults,
                        partial_bits,
                        mapping_fails,
                        state,
                        state_bits,
                        owned_unreadable,
                    }
                },
            )
    })
}

fn account_id(a: usize) -> String {
    format!("{:012}", 111_111_111_111u64 * (a as u64 + 1))
}

/// One entity of the model in one scope it really comes from (a shared identifier has one per
/// scope).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Truth {
    key: EntityKey,
    scope: ScopeKey,
    kind: usize,
}

fn scope_index(a: usize, r: usize, k: usize) -> usize {
    (a * REGIONS.len() + r) * KINDS.len() + k
}

fn entities(a: usize, r: usize, k: usize, count: u8, start: u8) -> Vec<Truth> {
    (start..start + count)
        .map(|i| Truth {
            key: EntityKey {
                blueprint: KINDS[k].1.to_string(),
                identifier: format!("{}-{}-{}-{i}", account_id(a), REGIONS[r], KINDS[k].0),
            },
            scope: ScopeKey::new(account_id(a), REGIONS[r], KINDS[k].0),
            kind: k,
        })
        .collect()
}

/// The shared identifiers of (region, kind) that scope `i` of account `a` has.
fn shared(c: &Case, a: usize, r: usize, k: usize, now: bool) -> Vec<Truth> {
    let i = scope_index(a, r, k);
    let count = c.shared[r * KINDS.len() + k];
    (0..count)
        .filter(|n| !now || (c.shared_removed[i] >> n) & 1 == 0)
        .map(|n| Truth {
            key: EntityKey {
                blueprint: KINDS[k].1.to_string(),
                identifier: format!("shared-{}-{}-{n}", REGIONS[r], KINDS[k].0),
            },
            scope: ScopeKey::new(account_id(a), REGIONS[r], KINDS[k].0),
            kind: k,
        })
        .collect()
}

struct Outcome {
    deleted: BTreeSet<EntityKey>,
    before: Vec<Truth>,
    now: BTreeSet<EntityKey>,
    /// Scope texts that completed, with no entity of theirs failing, in this sync.
    proven: HashSet<String>,
    failed_kinds: Vec<bool>,
}

/// Runs one sync of the model through the reconciliation core.
fn run(c: &Case) -> Outcome {
    let mut before = Vec::new();
    let mut now: Vec<Truth> = Vec::new();
    for a in 0..c.accounts {
        for r in 0..REGIONS.len() {
            for k in 0..KINDS.len() {
                let i = scope_index(a, r, k);
                let b = entities(a, r, k, c.before[i], 0);
                before.extend(b.iter().cloned());
                before.extend(shared(c, a, r, k, false));
                if matches!(c.account_faults[a], AccountFault::LeftOrganization) {
                    continue;
                }
                let gone = c.removed[i].min(c.before[i]) as usize;
                now.extend(b.into_iter().skip(gone));
                now.extend(entities(a, r, k, c.added[i], 10));
                now.extend(shared(c, a, r, k, true));
            }
        }
    }
    // What Port listed as the integration's before the sync, and the state store: every
    // scope an entity came from (what the push's state keeps), for some entities or none.
    let mut owned: BTreeMap<String, Vec<OwnedEntity>> = BTreeMap::new();
    let mut sources: HashMap<EntityKey, Vec<String>> = HashMap::new();
    let mut listed = HashSet::new();
    for (n, t) in before.iter().enumerate() {
        if listed.insert(t.key.clone()) {
            owned
                .entry(t.key.blueprint.clone())
                .or_default()
                .push(OwnedEntity {
                    identifier: t.key.identifier.clone(),
                    updated_at: Some("2026-01-01T00:00:00Z".into()),
                });
        }
        let first = before.iter().position(|b| b.key == t.key).unwrap_or(n);
        let bits = c.state_bits[first % c.state_bits.len()];
        let keep = match c.state {
            StateMode::Full => true,
            StateMode::None => false,
            StateMode::Partial => (bits >> (first % 32)) & 1 == 1,
        };
        if keep {
            sources
                .entry(t.key.clone())
                .or_default()
                .push(t.scope.to_text());
        }
    }
    // What discovery, mapping and push report: the scope book, what was seen, what failed.
    let mut book = ScopeBook::default();
    let mut seen: HashSet<EntityKey> = HashSet::new();
    let mut failed_scopes: HashSet<String> = HashSet::new();
    let mut proven: HashSet<String> = HashSet::new();
    let mut known_accounts = HashSet::new();
    for a in 0..c.accounts {
        let id = account_id(a);
        // Which (region, kind) scopes this account's discovery got to at all.
        let reached: Box<dyn Fn(usize, usize) -> bool> = match &c.account_faults[a] {
            AccountFault::LeftOrganization => {
                // The Organization's listing proves everything of the account gone.
                for r in REGIONS {
                    for (kind, _) in KINDS {
                        proven.insert(ScopeKey::new(&id, r, kind).to_text());
                    }
                }
                continue;
            }
            AccountFault::None => Box::new(|_, _| true),
            AccountFault::RoleDenied => {
                book.set(
                    &ScopeKey::account_wide(&id),
                    ScopeStatus::Denied("the account's role could not be assumed".into()),
                );
                Box::new(|_, _| false)
            }
            AccountFault::RegionsUnknown => {
                book.set(
                    &ScopeKey::account_wide(&id),
                    ScopeStatus::Failed("regions unknown".into()),
                );
                Box::new(|r, _| r == 0)
            }
            AccountFault::Panicked { done } => {
                book.set(
                    &ScopeKey::account_wide(&id),
                    ScopeStatus::Failed("discovery panicked".into()),
                );
                let done = *done;
                Box::new(move |r, k| r * KINDS.len() + k < done)
            }
        };
        known_accounts.insert(id.clone());
        for (r, region) in REGIONS.iter().enumerate() {
            for (k, (kind, _)) in KINDS.iter().enumerate() {
                if !reached(r, k) {
                    continue;
                }
                let i = scope_index(a, r, k);
                let key = ScopeKey::new(&id, *region, *kind);
                let current: Vec<&Truth> = now.iter().filter(|t| t.scope == key).collect();
                let emitted: Vec<&Truth> = match c.scope_faults[i] {
                    ScopeFault::None | ScopeFault::EntityFailed => current.clone(),
                    ScopeFault::Denied | ScopeFault::Failed => current
                        .iter()
                        .enumerate()
                        .filter(|(n, _)| (c.partial_bits[i] >> (n % 32)) & 1 == 1)
                        .map(|(_, t)| *t)
                        .collect(),
                };
                let status = match c.scope_faults[i] {
                    ScopeFault::Denied => ScopeStatus::Denied("AccessDenied".into()),
                    ScopeFault::Failed => ScopeStatus::Failed("throttled".into()),
                    _ => ScopeStatus::Complete,
                };
                let complete = status.is_complete();
                book.set(&key, status);
                // An account that could not be enumerated proves nothing gone, not even in
                // the scopes it did read.
                let account_whole = matches!(c.account_faults[a], AccountFault::None);
                if matches!(c.scope_faults[i], ScopeFault::EntityFailed) {
                    failed_scopes.insert(key.to_text());
                } else if complete && account_whole {
                    proven.insert(key.to_text());
                }
                // A resource entry that fails produces no entity at all.
                if !c.mapping_fails[k] {
                    seen.extend(emitted.iter().map(|t| t.key.clone()));
                }
            }
        }
    }
    // `retire_accounts_not_in`: an account gone from the Organization completes, empty, the
    // scopes the state store says its entities came from.
    for scope in sources.values().flatten() {
        let account = scope.split('/').next().unwrap_or_default();
        if !known_accounts.contains(account) {
            let key = ScopeKey::from_text(scope).expect("a scope's text form");
            book.set(&key, ScopeStatus::Complete);
            proven.insert(key.to_text());
        }
    }
    let mut blocked_blueprints = BTreeMap::new();
    for (k, fails) in c.mapping_fails.iter().enumerate() {
        let items = now.iter().any(|t| t.kind == k);
        if *fails && items {
            blocked_blueprints.insert(KINDS[k].1.to_string(), format!("resources[{k}] failed"));
        }
    }
    let decision = decide(&Inputs {
        owned: &owned,
        seen: &seen,
        sources: &sources,
        scopes: &book,
        failed_scopes: &failed_scopes,
        blocked_blueprints: &blocked_blueprints,
        blocked: c
            .owned_unreadable
            .then(|| "Port's owned list could not be read".to_string()),
        started_at: "2026-06-01T00:00:00Z".parse().unwrap(),
        threshold: 1.0,
        relation_targets: None,
    });
    let deleted = decision
        .delete
        .iter()
        .flat_map(|(bp, ids)| {
            ids.iter().map(|id| EntityKey {
                blueprint: bp.clone(),
                identifier: id.clone(),
            })
        })
        .collect();
    let failed_kinds = (0..KINDS.len())
        .map(|k| c.mapping_fails[k] && now.iter().any(|t| t.kind == k))
        .collect();
    Outcome {
        deleted,
        before,
        now: now.into_iter().map(|t| t.key).collect(),
        proven,
        failed_kinds,
    }
}

/// Faults in one case: failed accounts, incomplete scopes, failed mappings, a blocked Port.
fn faults_in(c: &Case) -> usize {
    c.account_faults
        .iter()
        .filter(|f| !matches!(f, AccountFault::None))
        .count()
        + c.scope_faults
            .iter()
            .filter(|f| !matches!(f, ScopeFault::None))
            .count()
        + c.mapping_fails.iter().filter(|f| **f).count()
        + usize::from(c.owned_unreadable)
}

#[derive(Default)]
struct Figures {
    cases: u64,
    faults: u64,
    deleted: u64,
    kept: u64,
}

/// Runs `check` over `cases` random cases (shrinking a failure and keeping it in
/// `reconcile_property.proptest-regressions`), then prints the figures.
fn property(
    name: &str,
    faults: bool,
    check: impl Fn(&Case, &Outcome) -> Result<(), TestCaseError>,
) {
    let mut runner = berth_test_kit::property_runner(file!(), "PROPTEST_CASES", 4000, None);
    let figures = std::sync::Mutex::new(Figures::default());
    let result = runner.run(&case(faults), |c| {
        let o = run(&c);
        check(&c, &o)?;
        let mut f = figures.lock().unwrap();
        f.cases += 1;
        f.faults += faults_in(&c) as u64;
        f.deleted += o.deleted.len() as u64;
        f.kept += o
            .before
            .iter()
            .map(|t| &t.key)
            .filter(|k| !o.now.contains(*k) && !o.deleted.contains(*k))
            .collect::<BTreeSet<_>>()
            .len() as u64;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    let f = figures.into_inner().unwrap();
    eprintln!(
        "{name}: {} cases (shrinking runs included), {:.2} faults per case, {} deletions all \
         proven, {} gone entities kept for lack of proof, 0 wrong deletions, 0 lost entities",
        f.cases,
        f.faults as f64 / f.cases.max(1) as f64,
        f.deleted,
        f.kept
    );
}

#[test]
fn no_fault_deletes_what_it_cannot_prove_gone() {
    property("fail closed", true, |_, o| {
        for key in &o.deleted {
            prop_assert!(!o.now.contains(key), "deleted {key:?}, which exists in AWS");
            for truth in o.before.iter().filter(|t| &t.key == key) {
                prop_assert!(
                    o.proven.contains(&truth.scope.to_text()),
                    "deleted {key:?}, whose scope {} did not complete",
                    truth.scope
                );
            }
            // No kind writing the blueprint may have a failed mapping.
            for (k, failed) in o.failed_kinds.iter().enumerate() {
                prop_assert!(
                    !(*failed && KINDS[k].1 == key.blueprint),
                    "deleted {key:?} while resources[{k}] (same blueprint) failed"
                );
            }
        }
        Ok(())
    });
}

#[test]
fn a_clean_sync_converges_exactly() {
    property("convergence", false, |_, o| {
        let gone: BTreeSet<EntityKey> = o
            .before
            .iter()
            .map(|t| t.key.clone())
            .filter(|k| !o.now.contains(k))
            .collect();
        prop_assert_eq!(&o.deleted, &gone);
        Ok(())
    });
}
