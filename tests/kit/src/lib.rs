//! The kit Berth's tests and benchmarks share: the repository root, the driver of the local
//! AWS emulator, the runner of the property tests, and the process's peak RSS for the
//! benchmarks' figures. The fake Port and
//! its client are their own crate (`tests/fake-port`).
//!
//! Must not depend on `berth` (the host's own integration tests use it) and must not be a
//! dependency of anything that ships.

pub mod emulator;

use std::path::{Path, PathBuf};

pub use emulator::Emulator;

/// The repository root (this crate lives in `tests/kit`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/kit is two levels below the repository root")
        .to_path_buf()
}

/// The runner of one property test: `cases` cases unless the environment variable `cases_var`
/// says how many, failures shrunk at most `max_shrink_iters` times (proptest's default when
/// `None`) and kept in `<source_file>.proptest-regressions` beside the test, whose cases run
/// first every time. Pass `file!()` as `source_file`.
pub fn property_runner(
    source_file: &'static str,
    cases_var: &str,
    cases: u32,
    max_shrink_iters: Option<u32>,
) -> proptest::test_runner::TestRunner {
    use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
    let defaults = Config::default();
    TestRunner::new(Config {
        cases: std::env::var(cases_var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        max_shrink_iters: max_shrink_iters.unwrap_or(defaults.max_shrink_iters),
        source_file: Some(source_file),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..defaults
    })
}

/// Peak resident set size of this process in KiB (Linux `VmHWM`), when /proc says.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_root_holds_the_workspace_manifest_and_the_emulator() {
        let root = super::repo_root();
        assert!(root.join("Cargo.toml").is_file(), "{}", root.display());
        assert!(
            root.join("tests/aws-emulator/run").is_file(),
            "{}",
            root.display()
        );
    }
}
