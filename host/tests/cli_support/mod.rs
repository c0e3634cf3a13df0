//! Shared by the tests that run the `berth` binary as a user does: where the repository is,
//! `berth` itself with the tests' AOT cache and no inherited plugin directory or log filter,
//! and the built files it needs.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub use berth_test_kit::repo_root as repo;

/// `berth` run from the repository root, with the tests' shared AOT cache.
pub fn berth() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.current_dir(repo())
        .env("BERTH_CACHE_DIR", repo().join("target/test-aot-cache"))
        .env_remove("BERTH_PLUGIN_DIR")
        .env_remove("RUST_LOG");
    c
}

/// A file `scripts/build-plugins` made (`target/plugins/x.wasm`, `target/test-plugins/...`).
pub fn built(path: &str) -> PathBuf {
    let p = repo().join(path);
    assert!(
        p.exists(),
        "{} missing: run scripts/build-plugins first",
        p.display()
    );
    p
}

/// A shipped plugin's `.wasm`.
pub fn built_plugin(name: &str) -> PathBuf {
    built(&format!("target/plugins/{name}.wasm"))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
