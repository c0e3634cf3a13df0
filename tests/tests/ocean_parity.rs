//! The mapping engine gives the entities Ocean's engine gives.
//!
//! Goldens come from `tests/ocean-ref/ocean_map.py`, which runs Ocean's
//! JQ-mapping semantics on libjq (see its README). Here the same items go
//! through `berth map`'s pipeline and the sandboxed generic plugin; entities,
//! per-kind counts and misconfigured fields must match exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use berth::limits::Limits;
use berth::pipeline::golden::canonical_json;
use berth::pipeline::map::MapOptions;
use berth::plugin::Tenant;
use berth::plugin::lookup::Offline;
use berth_tests::{fixture, map_file, plugin, plugin_dir, registry};
use serde_json::Value;

fn canonical(v: Value) -> String {
    canonical_json(v)
}

async fn check(mapping_path: &Path, case: &str) {
    let dir = plugin_dir(&[plugin("generic")]);
    let reg = registry(dir.path()).await;
    let tenant = Tenant::new("parity", Limits::default(), Arc::new(Offline));
    let opts = MapOptions {
        jobs: 2,
        batch_items: 7,
        ..MapOptions::default()
    };
    let items = fixture(&format!("{case}/items.jsonl"));
    let (summary, lines) = map_file(reg, mapping_path, tenant, &items, opts).await;
    let mut actual: Vec<String> = lines
        .iter()
        .map(|l| canonical(serde_json::from_str(l).expect("entity JSON")))
        .collect();
    actual.sort();
    let expected_text =
        std::fs::read_to_string(fixture(&format!("{case}/expected.jsonl"))).unwrap();
    let mut expected: Vec<String> = expected_text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            canonical(v["entity"].clone())
        })
        .collect();
    expected.sort();
    let missing: Vec<_> = expected.iter().filter(|e| !actual.contains(e)).collect();
    let extra: Vec<_> = actual.iter().filter(|e| !expected.contains(e)).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && actual.len() == expected.len(),
        "{case}: entities differ\nmissing (Ocean has, Berth lacks):\n{}\nextra (Berth has, Ocean lacks):\n{}",
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        extra
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    );

    let want: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(&format!("{case}/expected-summary.json"))).unwrap(),
    )
    .unwrap();
    let mut want_kinds = BTreeMap::new();
    for (kind, k) in want["kinds"].as_object().unwrap() {
        want_kinds.insert(
            kind.clone(),
            [
                k["items"].as_u64().unwrap(),
                k["entities"].as_u64().unwrap(),
                k["filtered_out"].as_u64().unwrap(),
                k["skipped"].as_u64().unwrap(),
                k["errors"].as_u64().unwrap(),
            ],
        );
    }
    let got_kinds: BTreeMap<String, [u64; 5]> = summary
        .kinds
        .iter()
        .map(|(k, s)| {
            (
                k.clone(),
                [s.items, s.entities, s.filtered_out, s.skipped, s.errors],
            )
        })
        .collect();
    assert_eq!(
        got_kinds, want_kinds,
        "{case}: per-kind [items, entities, filtered_out, skipped, errors] differ"
    );

    let want_mis: BTreeSet<(usize, String, String)> = want["misconfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m[0].as_u64().unwrap() as usize,
                m[1].as_str().unwrap().to_string(),
                m[2].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let got_mis: BTreeSet<(usize, String, String)> =
        summary.misconfigured.keys().cloned().collect();
    assert_eq!(
        got_mis.difference(&want_mis).collect::<Vec<_>>(),
        Vec::<&(usize, String, String)>::new(),
        "{case}: misconfigurations Berth reports that Ocean does not"
    );
    assert_eq!(
        want_mis.difference(&got_mis).collect::<Vec<_>>(),
        Vec::<&(usize, String, String)>::new(),
        "{case}: misconfigurations Ocean reports that Berth does not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_default_mapping_matches_ocean() {
    check(&berth_tests::repo().join("mappings/default.yaml"), "seed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocean_semantics_match() {
    check(&fixture("ocean-semantics/mapping.yaml"), "ocean-semantics").await;
}
