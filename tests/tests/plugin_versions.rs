//! Plugins built against an older `berth:plugin` keep loading and make exactly the same
//! entities: a `generic` plugin built with the 0.1.0 SDK (kept as a fixture) and today's
//! `generic` (0.2.0) map the same items with the default mapping, and everything a run
//! reports must be equal.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use berth::limits::Limits;
use berth::lookup::Offline;
use berth::map::{MapOptions, Summary};
use berth::plugin::Tenant;
use berth_tests::{fixture, map_file, plugin, plugin_dir, registry, repo};

async fn run(plugin_file: PathBuf, items: &std::path::Path) -> (String, Summary, Vec<String>) {
    let dir = plugin_dir(&[plugin_file]);
    let reg = registry(dir.path()).await;
    let snap = reg.snapshot();
    assert!(snap.errors.is_empty(), "{:?}", snap.errors);
    let api = snap.any().expect("one plugin").info.api_version.clone();
    let tenant = Tenant::new("versions", Limits::default(), Arc::new(Offline));
    let (summary, mut lines) = map_file(
        reg,
        &repo().join("mappings/default.yaml"),
        tenant,
        items,
        MapOptions {
            jobs: 2,
            ..MapOptions::default()
        },
    )
    .await;
    lines.sort();
    (api, summary, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_0_plugin_maps_exactly_like_today() {
    let mut items = tempfile::NamedTempFile::new().unwrap();
    for i in 0..3_000 {
        writeln!(items, "{}", berth::bench::raw_item(i)).unwrap();
    }
    // A bad line and an item of a kind no entry maps travel the error paths too.
    writeln!(items, "not json").unwrap();
    writeln!(
        items,
        r#"{{"Identifier":"x","Properties":{{}},"__Kind":"AWS::SQS::Queue","__Region":"us-east-1","__AccountId":"123456789012"}}"#
    )
    .unwrap();
    let (old_api, old, old_lines) = run(fixture("plugins/v0.1.0/generic.wasm"), items.path()).await;
    let (new_api, new, new_lines) = run(plugin("generic"), items.path()).await;
    assert_eq!(old_api, "0.1.0");
    assert_eq!(new_api, "0.2.0");
    assert!(
        new_lines.len() > 2_000,
        "the default mapping maps most items: {}",
        new_lines.len()
    );
    assert_eq!(old_lines.len(), new_lines.len());
    // Equal as JSON values: the adapter re-serialises an old plugin's entity to take its
    // blueprint out, so number spelling may differ where the value does not.
    for (o, n) in old_lines.iter().zip(&new_lines) {
        let (o, n): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(o).unwrap(),
            serde_json::from_str(n).unwrap(),
        );
        assert_eq!(o, n);
    }
    assert_eq!(old.kinds, new.kinds);
    assert_eq!(old.entries, new.entries);
    assert_eq!(old.misconfigured, new.misconfigured);
    assert_eq!(old.errors, new.errors);
}
