//! The plugin linker gives exactly what README "The sandbox" states: every
//! shipped plugin imports only interfaces of that list, a plugin importing
//! sockets is refused when it loads, and one that reaches for files, the
//! environment or stdio finds nothing there.

use std::collections::{BTreeMap, BTreeSet};

use berth::limits::EngineLimits;
use berth::plugin::instance::{allowed_imports, component_imports};
use berth::plugin::{LoadedPlugin, PluginEngine, PluginError};
use berth_tests::{aot_cache, repo, test_plugin};

fn imports_of(engine: &PluginEngine, path: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(path).expect("read plugin");
    let hash = berth::plugin::cache::content_hash(&bytes);
    let component = aot_cache()
        .load(engine.wasmtime(), &bytes, &hash)
        .expect("compile plugin");
    component_imports(engine.wasmtime(), &component)
}

#[test]
fn shipped_plugins_import_only_the_allowed_interfaces() {
    let engine = PluginEngine::new(EngineLimits::default()).expect("engine");
    let dir = repo().join("target/plugins");
    let mut plugins: Vec<_> = std::fs::read_dir(&dir)
        .expect("target/plugins: run scripts/build-plugins first")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    plugins.sort();
    assert!(plugins.len() >= 8, "shipped plugins: {plugins:?}");
    let allowed: BTreeSet<&str> = allowed_imports().collect();
    let mut used = BTreeSet::new();
    for p in &plugins {
        let imports = imports_of(&engine, p);
        assert!(!imports.is_empty(), "{}", p.display());
        for name in &imports {
            let interface = name.split('@').next().unwrap();
            assert!(
                allowed.contains(interface),
                "{} imports {name}, which is not in the allowed list {allowed:?}",
                p.display()
            );
            used.insert(interface.to_string());
        }
    }
    // And the list is no longer than what they need.
    let unused: Vec<_> = allowed.iter().filter(|a| !used.contains(**a)).collect();
    assert!(
        unused.is_empty(),
        "allowed but imported by no shipped plugin: {unused:?}"
    );
    // The list itself: no sockets, HTTP or anything beyond WASI's CLI basics.
    for a in &allowed {
        assert!(
            a.starts_with("berth:plugin/")
                || [
                    "wasi:cli/",
                    "wasi:clocks/",
                    "wasi:filesystem/",
                    "wasi:io/",
                    "wasi:random/"
                ]
                .iter()
                .any(|p| a.starts_with(p)),
            "{a}"
        );
    }
}

#[tokio::test]
async fn a_plugin_importing_sockets_is_refused_at_load() {
    let engine = PluginEngine::new(EngineLimits::default()).expect("engine");
    let path = test_plugin("net-probe");
    let imports = imports_of(&engine, &path);
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:sockets/")),
        "the probe should import sockets: {imports:?}"
    );
    let err = LoadedPlugin::load(&engine, &aot_cache(), &path)
        .await
        .expect_err("a plugin importing wasi:sockets must not load");
    let PluginError::Load { message, .. } = &err else {
        panic!("{err}");
    };
    assert!(
        message.contains("wasi:sockets/") && message.contains("plugins do not get"),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}

#[tokio::test]
async fn a_plugin_finds_no_files_environment_or_stdio() {
    let engine = PluginEngine::new(EngineLimits::default()).expect("engine");
    let path = test_plugin("sandbox-probe");
    let imports = imports_of(&engine, &path);
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:filesystem/preopens")),
        "the probe should import preopens: {imports:?}"
    );
    let plugin = LoadedPlugin::load(&engine, &aot_cache(), &path)
        .await
        .expect("the probe loads");
    let report = plugin.info.default_mapping.clone().expect("probe report");
    let found: BTreeMap<&str, &str> = report.lines().filter_map(|l| l.split_once(" = ")).collect();
    assert_eq!(found.get("env"), Some(&"[]"), "{report}");
    assert_eq!(found.get("args"), Some(&"[]"), "{report}");
    // (`cwd` is libc's own "/" when the host names none: no directory behind it.)
    for probe in ["read_dir_root", "read_dir_dot", "read_passwd", "write_tmp"] {
        let v = found.get(probe).unwrap_or(&"missing");
        assert!(v.starts_with("denied"), "{probe}: {v}\n{report}");
    }
    // stdin is closed (end of input at once); stdout accepts and drops.
    assert_eq!(found.get("stdin"), Some(&"ok: 0"), "{report}");
    assert!(
        found.get("stdout").is_some_and(|v| v.starts_with("ok")),
        "{report}"
    );
    assert!(!std::path::Path::new("/tmp/berth-probe").exists());
}
