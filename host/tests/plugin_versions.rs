//! Plugins built against an older `berth:plugin` keep loading and make exactly the same
//! entities: a `generic` plugin built with the 0.1.0 SDK (kept as a fixture) and today's
//! `generic` (0.2.0) map the same items with the default mapping through `berth map`, and
//! everything the run prints must be equal.

mod cli_support;

use std::io::Write as _;
use std::path::Path;

use cli_support::{berth, built_plugin, repo, text};

/// `berth plugin list` and `berth map` over a directory holding only `plugin`: the list,
/// the entity lines (sorted), the summary on stderr, and the exit code.
fn run(plugin: &Path, items: &Path) -> (String, Vec<String>, String, Option<i32>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(plugin, dir.path().join("generic.wasm")).unwrap();
    let list = berth()
        .arg("--plugins")
        .arg(dir.path())
        .args(["plugin", "list"])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", text(&list.stderr));
    let out = berth()
        .arg("--plugins")
        .arg(dir.path())
        .args(["map", "--mapping", "mappings/default.yaml", "--input"])
        .arg(items)
        .output()
        .unwrap();
    let mut lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    lines.sort();
    (
        text(&list.stdout),
        lines,
        text(&out.stderr),
        out.status.code(),
    )
}

#[test]
fn a_0_1_0_plugin_maps_exactly_like_today() {
    let items = tempfile::NamedTempFile::new().unwrap();
    let generated = berth()
        .args(["bench", "items", "--count", "3000"])
        .stdout(items.reopen().unwrap())
        .status()
        .unwrap();
    assert!(generated.success());
    // A bad line and an item of a kind no entry maps travel the error paths too.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(items.path())
        .unwrap();
    writeln!(f, "not json").unwrap();
    writeln!(
        f,
        r#"{{"Identifier":"x","Properties":{{}},"__Kind":"AWS::SQS::Queue","__Region":"us-east-1","__AccountId":"123456789012"}}"#
    )
    .unwrap();
    drop(f);

    let old_plugin = repo().join("tests/fixtures/plugins/v0.1.0/generic.wasm");
    let (old_list, old_lines, old_summary, old_code) = run(&old_plugin, items.path());
    let (new_list, new_lines, new_summary, new_code) = run(&built_plugin("generic"), items.path());
    assert!(old_list.contains("(berth:plugin@0.1.0)"), "{old_list}");
    assert!(new_list.contains("(berth:plugin@0.2.0)"), "{new_list}");
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
    assert!(new_summary.contains("AWS::S3::Bucket"), "{new_summary}");
    assert_eq!(old_summary, new_summary);
    // The bad line is an error in both.
    assert_eq!(old_code, Some(1));
    assert_eq!(new_code, old_code);
}
