//! Shared helpers for Berth's end-to-end tests: where the built plugins and
//! fixtures are, and a registry over a directory with a shared AOT cache so
//! each plugin compiles once per test run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth::limits::EngineLimits;
use berth::mapping::MappingFile;
use berth::pipeline::map::{MapOptions, Summary};
use berth::plugin::{AotCache, PluginEngine, Registry, Tenant};

pub use berth_test_kit::repo_root as repo;

fn built(dir: &str, name: &str) -> PathBuf {
    let p = repo().join("target").join(dir).join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/build-plugins first (the README's test command does)",
        p.display()
    );
    p
}

/// A shipped plugin, e.g. `generic`.
pub fn plugin(name: &str) -> PathBuf {
    built("plugins", name)
}

/// A test-only plugin, e.g. `misbehave`.
pub fn test_plugin(name: &str) -> PathBuf {
    built("test-plugins", name)
}

/// A fixture file under `tests/fixtures`.
pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// The AOT cache shared by all tests of a run.
pub fn aot_cache() -> AotCache {
    AotCache::at(repo().join("target/test-aot-cache")).expect("AOT cache dir")
}

/// A temporary plugin directory holding copies of `plugins`.
pub fn plugin_dir(plugins: &[PathBuf]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for p in plugins {
        std::fs::copy(p, dir.path().join(p.file_name().expect("file name"))).expect("copy plugin");
    }
    dir
}

/// A registry over `dir`.
pub async fn registry(dir: &Path) -> Arc<Registry> {
    let engine = PluginEngine::new(EngineLimits::default()).expect("engine");
    Registry::open(engine, aot_cache(), dir)
        .await
        .expect("open registry")
}

/// Run `berth map`'s pipeline over the JSON-lines file `items`; the summary
/// and the entity lines it printed.
pub async fn map_file(
    registry: Arc<Registry>,
    mapping: &Path,
    tenant: Tenant,
    items: &Path,
    opts: MapOptions,
) -> (Summary, Vec<String>) {
    let mapping = Arc::new(MappingFile::from_path(mapping).expect("mapping file"));
    let input = std::io::BufReader::new(std::fs::File::open(items).expect("items file"));
    berth::pipeline::map::run_collect(registry, mapping, tenant, input, opts)
        .await
        .expect("map run")
}
