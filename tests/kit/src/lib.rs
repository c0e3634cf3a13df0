//! The kit Berth's tests and benchmarks share: the repository root, the driver of the local
//! AWS emulator, and the process's peak RSS for the benchmarks' figures. The fake Port and
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
