//! Fail closed, end to end (`berth sync` against the emulator and the fake Port): a failure
//! anywhere (an account, its regions, a task that panicked, a mapping that does not work)
//! ends in "kept, and reported why", never in a deletion, also when the state store has never
//! seen the estate (a user moving from Ocean, a re-created tenant, a lost `state.db`).
//!
//! The scenarios first, then the same rule as a property over random estates, AWS changes,
//! state stores and fault schedules (AWS, Port and injected panics). `BERTH_E2E_CASES` sets the
//! property's number of cases; failures are shrunk and kept in
//! `e2e_fail_closed.proptest-regressions`.

mod e2e_support;

use std::collections::BTreeSet;
use std::process::Output;

use e2e_support::*;
use proptest::prelude::*;
use serde_json::{Value, json};

const ORG_ACCOUNT: &str = "AWS::Organizations::Account";
const MANAGEMENT: &str = "123456789012";

/// A world after a clean sync, with the state store then forgotten and one EC2 instance of
/// `member` removed from AWS (so there is something a wrong reconciliation would delete).
async fn synced_then_forgotten(w: &World, member: &str) -> (BTreeSet<(String, String)>, String) {
    let out = w.sync().await;
    assert!(out.status.success(), "baseline sync: {}", text(&out.stderr));
    let instance = w.seeded(member, "us-east-1", "AWS::EC2::Instance")[0].clone();
    w.emu
        .remove(member, "us-east-1", "AWS::EC2::Instance", &[&instance])
        .await
        .unwrap();
    w.forget_state();
    (w.keys(), instance)
}

/// The faulty sync kept everything and said why; a clean one then converges and the removed
/// resource leaves Port.
async fn assert_kept_then_converges(
    w: &World,
    out: &Output,
    before: &BTreeSet<(String, String)>,
    gone: &str,
    why: &str,
) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a partial sync: {err}");
    assert!(err.contains(why), "the reason ({why:?}) is reported: {err}");
    assert!(err.contains(", 0 deleted ("), "{err}");
    assert_eq!(&w.keys(), before, "nothing may be deleted: {err}");
    assert_eq!(w.resync_status(), "failed");
    w.assert_converges().await;
    assert!(!w.keys().iter().any(|(_, id)| id == gone));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_role_is_refused_keeps_its_entities_on_a_new_state_store() {
    let w = world().await;
    let member = w.member(0);
    let (before, gone) = synced_then_forgotten(&w, &member).await;
    w.emu
        .faults(&json!({"rules": [{
            "api": "sts:AssumeRole",
            "role_arn": format!("arn:aws:iam::{member}:role/BerthReadOnly"),
            "access_denied": true,
        }]}))
        .await
        .unwrap();
    let out = w.sync().await;
    assert_kept_then_converges(&w, &out, &before, &gone, "role could not be assumed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_regions_cannot_be_listed_keeps_its_entities() {
    let w = world().await;
    let member = w.member(1);
    let (before, gone) = synced_then_forgotten(&w, &member).await;
    w.emu
        .faults(&json!({"rules": [{
            "api": "account:ListRegions", "account": member, "access_denied": true,
        }]}))
        .await
        .unwrap();
    let out = w.sync().await;
    assert_kept_then_converges(&w, &out, &before, &gone, "regions could not be listed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_discovery_keeps_what_it_could_have_read() {
    let w = world().await;
    let member = w.member(2);
    let (before, gone) = synced_then_forgotten(&w, &member).await;
    let out = w
        .sync_env(&[("BERTH_FAILPOINTS", &format!("discover.account={member}"))])
        .await;
    assert_kept_then_converges(&w, &out, &before, &gone, "discovery panicked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jq_syntax_error_in_an_identifier_deletes_nothing() {
    let w = world().await;
    let member = w.member(0);
    let out = w.sync().await;
    assert!(out.status.success(), "baseline sync: {}", text(&out.stderr));
    // A function goes away (the seed names functions alike in every account and region:
    // all of that name go), and the Lambda entry's identifier no longer compiles.
    let function = w.seeded(&member, "eu-west-1", "AWS::Lambda::Function")[0].clone();
    for a in 0..3 {
        for region in REGIONS {
            let account = w.member(a);
            if w.seeded(&account, region, "AWS::Lambda::Function")
                .contains(&function)
            {
                w.emu
                    .remove(&account, region, "AWS::Lambda::Function", &[&function])
                    .await
                    .unwrap();
            }
        }
    }
    let default = repo().join("mappings/default.yaml");
    let text_of = std::fs::read_to_string(&default).unwrap();
    let broken = text_of.replace(
        "identifier: .Properties.FunctionName",
        "identifier: .Properties.FunctionName |||",
    );
    assert_ne!(broken, text_of);
    let broken_path = w.dir.path().join("broken.yaml");
    std::fs::write(&broken_path, broken).unwrap();
    w.use_mapping(&broken_path);
    let before = w.keys();
    // Once with the state store that wrote the catalog, once with a new one.
    for forget in [false, true] {
        if forget {
            w.forget_state();
        }
        let out = w.sync().await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("resources[4] AWS::Lambda::Function"), "{err}");
        assert!(
            err.contains("invalid JQ"),
            "the compile error is shown: {err}"
        );
        assert!(err.contains(", 0 deleted ("), "{err}");
        assert_eq!(w.keys(), before, "nothing may be deleted: {err}");
    }
    w.use_mapping(&default);
    w.assert_converges().await;
    assert!(!w.keys().iter().any(|(_, id)| id == &function));
}

// ---- the property ----------------------------------------------------------------------------

/// One fault in AWS for one sync.
#[derive(Debug, Clone)]
enum AwsFault {
    Throttle,
    CloudControl5xx,
    /// Every call of one member account is refused.
    DeniedAccount(usize),
    /// Cloud Control in one account and region is refused.
    DeniedRegion(usize, usize),
    /// The member's read role cannot be assumed.
    RoleDenied(usize),
    /// The member's enabled regions cannot be listed.
    RegionsDenied(usize),
    /// Organizations fails outright: the sync cannot know its accounts.
    Organizations5xx,
}

#[derive(Debug, Clone)]
enum PortFault {
    None,
    Refused429,
    Lost5xx,
    Refused5xx,
    TooLarge413,
}

#[derive(Debug, Clone)]
enum Panic {
    None,
    Account(usize),
    Scope(usize, usize, usize),
    MapBatch(usize),
}

#[derive(Debug, Clone)]
struct Step {
    /// (account, region, kind, how many) resources removed from AWS before this sync.
    removals: Vec<(usize, usize, usize, usize)>,
    /// A member account leaves the Organization.
    leaves: Option<usize>,
    forget_state: bool,
    aws: Vec<AwsFault>,
    port: PortFault,
    panic: Panic,
    /// The Lambda entry's identifier does not compile.
    broken_mapping: bool,
}

#[derive(Debug, Clone)]
struct E2eCase {
    seed: u64,
    steps: Vec<Step>,
}

/// Kinds the property changes in AWS (the seed's identifiers are listed for these).
const KINDS: [&str; 4] = [
    "AWS::EC2::Instance",
    "AWS::Lambda::Function",
    "AWS::S3::Bucket",
    "AWS::ECS::Cluster",
];

fn aws_fault() -> impl Strategy<Value = AwsFault> {
    prop_oneof![
        2 => Just(AwsFault::Throttle),
        2 => Just(AwsFault::CloudControl5xx),
        2 => (0usize..3).prop_map(AwsFault::DeniedAccount),
        2 => (0usize..3, 0usize..2).prop_map(|(a, r)| AwsFault::DeniedRegion(a, r)),
        2 => (0usize..3).prop_map(AwsFault::RoleDenied),
        2 => (0usize..3).prop_map(AwsFault::RegionsDenied),
        1 => Just(AwsFault::Organizations5xx),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop::collection::vec((0usize..3, 0usize..2, 0usize..KINDS.len(), 1usize..3), 0..4),
        prop::option::weighted(0.15, 0usize..3),
        any::<bool>(),
        prop::collection::vec(aws_fault(), 0..3),
        prop_oneof![
            3 => Just(PortFault::None),
            1 => Just(PortFault::Refused429),
            1 => Just(PortFault::Lost5xx),
            1 => Just(PortFault::Refused5xx),
            1 => Just(PortFault::TooLarge413),
        ],
        prop_oneof![
            4 => Just(Panic::None),
            1 => (0usize..3).prop_map(Panic::Account),
            1 => (0usize..3, 0usize..2, 0usize..2).prop_map(|(a, r, k)| Panic::Scope(a, r, k)),
            1 => (0usize..KINDS.len()).prop_map(Panic::MapBatch),
        ],
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(removals, leaves, forget_state, aws, port, panic, broken_mapping)| Step {
                removals,
                leaves,
                forget_state,
                aws,
                port,
                panic,
                broken_mapping,
            },
        )
}

fn e2e_case() -> impl Strategy<Value = E2eCase> {
    (any::<u64>(), prop::collection::vec(step(), 1..=2))
        .prop_map(|(seed, steps)| E2eCase { seed, steps })
}

/// The scope an entity Port holds came from, read from the default mapping's fields:
/// (account, region, kind); the region is `None` when the entity does not say.
fn scope_of(key: &(String, String), e: &Value) -> (String, Option<String>, String) {
    if key.0 == "awsAccount" {
        return (
            MANAGEMENT.into(),
            Some("us-east-1".into()),
            ORG_ACCOUNT.into(),
        );
    }
    let account = e["relations"]["account"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    let region = e["properties"]["region"].as_str().map(str::to_string);
    let kind = e["properties"]["kind"].as_str().unwrap_or("?").to_string();
    (account, region, kind)
}

/// The scopes a sync reported incomplete (`berth sync`'s summary lines
/// `  failed ACCOUNT/REGION/KIND: why`, likewise `denied`), as (account, region, kind), `*` a
/// wildcard.
fn incomplete_scopes(stderr: &str) -> Vec<(String, String, String)> {
    stderr
        .lines()
        .filter_map(|l| {
            l.strip_prefix("  failed ")
                .or_else(|| l.strip_prefix("  denied "))
        })
        .filter_map(|rest| {
            let (scope, _) = rest.split_once(": ")?;
            let mut p = scope.splitn(3, '/');
            Some((p.next()?.into(), p.next()?.into(), p.next()?.into()))
        })
        .collect()
}

fn covered(incomplete: &[(String, String, String)], s: &(String, Option<String>, String)) -> bool {
    incomplete.iter().any(|(a, r, k)| {
        (a == "*" || *a == s.0)
            && (k == "*" || *k == s.2)
            && (r == "*" || s.1.as_ref().is_none_or(|sr| sr == r))
    })
}

fn rules(w: &World, faults: &[AwsFault], seed: u64) -> Value {
    let member = |a: usize| w.member(a);
    let rules: Vec<Value> = faults
        .iter()
        .map(|f| match f {
            AwsFault::Throttle => json!({"api": "cloudcontrol:*", "throttle": 0.3}),
            AwsFault::CloudControl5xx => {
                json!({"api": "cloudcontrol:*", "error_5xx": 0.3, "status": 503})
            }
            AwsFault::DeniedAccount(a) => json!({"account": member(*a), "access_denied": true}),
            AwsFault::DeniedRegion(a, r) => json!({
                "api": "cloudcontrol:*", "account": member(*a), "region": REGIONS[*r],
                "access_denied": true,
            }),
            AwsFault::RoleDenied(a) => json!({
                "api": "sts:AssumeRole",
                "role_arn": format!("arn:aws:iam::{}:role/BerthReadOnly", member(*a)),
                "access_denied": true,
            }),
            AwsFault::RegionsDenied(a) => json!({
                "api": "account:ListRegions", "account": member(*a), "access_denied": true,
            }),
            AwsFault::Organizations5xx => {
                json!({"api": "organizations:*", "error_5xx": true, "status": 500})
            }
        })
        .collect();
    json!({"seed": seed, "rules": rules})
}

fn port_faults(f: &PortFault, seed: u64) -> berth_fake_port::Faults {
    let base = berth_fake_port::Faults {
        seed,
        retry_after_secs: 1,
        path_contains: Some("/entities".into()),
        ..berth_fake_port::Faults::default()
    };
    match f {
        PortFault::None => berth_fake_port::Faults::default(),
        PortFault::Refused429 => berth_fake_port::Faults {
            rate_429: 0.2,
            ..base
        },
        PortFault::Lost5xx => berth_fake_port::Faults {
            rate_5xx: 0.3,
            fail_after_write: true,
            ..base
        },
        PortFault::Refused5xx => berth_fake_port::Faults {
            rate_5xx: 0.3,
            ..base
        },
        PortFault::TooLarge413 => berth_fake_port::Faults {
            force_413_next: 2,
            ..base
        },
    }
}

/// One step of a case: change AWS, maybe forget the state, sync under the faults, check.
/// Returns how many entities the sync deleted (each checked).
async fn run_step(w: &World, step: &Step, seed: u64, n: usize) -> Result<usize, TestCaseError> {
    for (a, r, k, count) in &step.removals {
        let (account, region) = (w.member(*a), REGIONS[*r]);
        let ids = w.seeded(&account, region, KINDS[*k]);
        let ids: Vec<&str> = ids.iter().take(*count).map(String::as_str).collect();
        if !ids.is_empty() {
            // Removing what an earlier step removed already is fine.
            let _ = w.emu.remove(&account, region, KINDS[*k], &ids).await;
        }
    }
    if let Some(a) = step.leaves {
        let _ = w
            .emu
            .remove(MANAGEMENT, "us-east-1", ORG_ACCOUNT, &[&w.member(a)])
            .await;
    }
    if step.forget_state {
        w.forget_state();
    }
    // The truth after the change, with no fault in force.
    w.emu.faults(&json!({"rules": []})).await.unwrap();
    w.port.set_faults(berth_fake_port::Faults::default());
    let expected = w.expected().await;
    let before = w.catalog();
    let default = repo().join("mappings/default.yaml");
    if step.broken_mapping {
        let broken = w.dir.path().join("broken.yaml");
        let text_of = std::fs::read_to_string(&default).unwrap();
        std::fs::write(
            &broken,
            text_of.replace(
                "identifier: .Properties.FunctionName",
                "identifier: .Properties.FunctionName |||",
            ),
        )
        .unwrap();
        w.use_mapping(&broken);
    }
    w.emu
        .faults(&rules(w, &step.aws, seed ^ n as u64))
        .await
        .unwrap();
    w.port.set_faults(port_faults(&step.port, seed ^ n as u64));
    let failpoint = match step.panic {
        Panic::None => String::new(),
        Panic::Account(a) => format!("discover.account={}", w.member(a)),
        Panic::Scope(a, r, k) => {
            format!("discover.scope={}/{}/{}", w.member(a), REGIONS[r], KINDS[k])
        }
        Panic::MapBatch(k) => format!("map.batch={}", KINDS[k]),
    };
    let out = w.sync_env(&[("BERTH_FAILPOINTS", &failpoint)]).await;
    w.emu.faults(&json!({"rules": []})).await.unwrap();
    w.port.set_faults(berth_fake_port::Faults::default());
    w.use_mapping(&default);
    let err = text(&out.stderr);
    let after = w.catalog();
    let code = out.status.code();
    prop_assert!(matches!(code, Some(0..=2)), "exit {code:?}: {err}");
    let deleted: Vec<&(String, String)> =
        before.keys().filter(|k| !after.contains_key(*k)).collect();
    // Nothing that exists in AWS is lost.
    for k in &deleted {
        prop_assert!(
            !expected.contains_key(*k),
            "{k:?} exists in AWS but was deleted: {err}"
        );
    }
    if code == Some(2) {
        prop_assert!(
            deleted.is_empty(),
            "a failed sync deleted {deleted:?}: {err}"
        );
        return Ok(0);
    }
    let incomplete = incomplete_scopes(&err);
    if code == Some(0) {
        prop_assert!(
            incomplete.is_empty(),
            "exit 0 with incomplete scopes: {err}"
        );
    }
    // Nothing is deleted that an incomplete scope or a failed mapping could have produced.
    for k in &deleted {
        let scope = scope_of(k, &before[*k]);
        prop_assert!(
            !covered(&incomplete, &scope),
            "deleted {k:?} of incomplete scope {scope:?}: {err}"
        );
        prop_assert!(
            !(step.broken_mapping && k.0 == "cloudResource"),
            "deleted {k:?} while the Lambda mapping (cloudResource) failed: {err}"
        );
    }
    // Every entity of every completed scope is in Port.
    for (k, candidates) in &expected {
        let produced_by_complete = candidates.iter().any(|e| {
            let s = scope_of(
                k,
                &json!({"relations": e["relations"], "properties": e["properties"]}),
            );
            !covered(&incomplete, &s)
        });
        let broken = step.broken_mapping && k.0 == "cloudResource";
        if produced_by_complete && !broken {
            prop_assert!(
                after.contains_key(k),
                "{k:?} of a completed scope is missing: {err}"
            );
        }
    }
    Ok(deleted.len())
}

/// Faults in one step.
fn faults_in(step: &Step) -> usize {
    step.aws.len()
        + usize::from(!matches!(step.port, PortFault::None))
        + usize::from(!matches!(step.panic, Panic::None))
        + usize::from(step.broken_mapping)
        + usize::from(step.forget_state)
}

#[test]
fn no_failure_deletes_and_a_clean_sync_converges() {
    // Each case starts an emulator and runs several syncs: shrink a little, not forever.
    let mut runner = berth_test_kit::property_runner(file!(), "BERTH_E2E_CASES", 6, Some(24));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // (cases, syncs under faults, faults, deletions checked)
    let figures = std::sync::Mutex::new((0u64, 0u64, 0u64, 0u64));
    let result = runner.run(&e2e_case(), |c| {
        let deleted = rt.block_on(async {
            let w = world().await;
            let out = w.sync().await;
            prop_assert!(out.status.success(), "baseline: {}", text(&out.stderr));
            let mut deleted = 0;
            for (n, step) in c.steps.iter().enumerate() {
                deleted += run_step(&w, step, c.seed, n).await?;
            }
            w.assert_converges().await;
            Ok(deleted)
        })?;
        let mut f = figures.lock().unwrap();
        f.0 += 1;
        f.1 += c.steps.len() as u64;
        f.2 += c.steps.iter().map(faults_in).sum::<usize>() as u64;
        f.3 += deleted as u64;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (cases, syncs, faults, deleted) = figures.into_inner().unwrap();
    eprintln!(
        "fail closed, end to end: {cases} cases (shrinking runs included), {syncs} syncs under \
         faults, {:.2} faults per sync, {deleted} deletions all proven, 0 wrong deletions, 0 lost \
         entities; every case converged after a clean sync",
        faults as f64 / syncs.max(1) as f64
    );
}

#[test]
fn incomplete_scope_lines_are_read() {
    let err = "x\n  failed 1/*/*: discovery panicked\n  denied 2/eu-west-1/AWS::EC2::Instance: no\n  \
               failed mapping: resources[4] failed; nothing of blueprint b is deleted\n";
    let s = incomplete_scopes(err);
    assert_eq!(s.len(), 2);
    let any =
        |a: &str, r: Option<&str>, k: &str| (a.to_string(), r.map(str::to_string), k.to_string());
    assert!(covered(&s, &any("1", Some("us-east-1"), "AWS::S3::Bucket")));
    assert!(covered(
        &s,
        &any("2", Some("eu-west-1"), "AWS::EC2::Instance")
    ));
    assert!(covered(&s, &any("2", None, "AWS::EC2::Instance")));
    assert!(!covered(
        &s,
        &any("2", Some("us-east-1"), "AWS::EC2::Instance")
    ));
}
