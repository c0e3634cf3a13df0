//! Tries every way out of the sandbox a Rust std plugin has without sockets
//! and reports what it found as its `default_mapping` (read by
//! `tests/tests/plugin_imports.rs`): each probe is `ok: …` when it got
//! something, `denied: …` when it did not.

use std::io::{Read, Write};

use berth_plugin_sdk::{Info, Plugin};

struct Probe;

fn report<T: std::fmt::Debug, E: std::fmt::Display>(r: Result<T, E>) -> String {
    match r {
        Ok(v) => format!("ok: {v:?}"),
        Err(e) => format!("denied: {e}"),
    }
}

fn probes() -> String {
    let mut stdin = Vec::new();
    let lines = [
        ("env", format!("{:?}", std::env::vars().collect::<Vec<_>>())),
        (
            "args",
            format!("{:?}", std::env::args().collect::<Vec<_>>()),
        ),
        ("cwd", report(std::env::current_dir())),
        (
            "read_dir_root",
            report(std::fs::read_dir("/").map(|d| d.count())),
        ),
        (
            "read_dir_dot",
            report(std::fs::read_dir(".").map(|d| d.count())),
        ),
        (
            "read_passwd",
            report(std::fs::read("/etc/passwd").map(|b| b.len())),
        ),
        (
            "write_tmp",
            report(std::fs::write("/tmp/berth-probe", b"x")),
        ),
        ("stdin", report(std::io::stdin().read_to_end(&mut stdin))),
        (
            "stdout",
            report(
                std::io::stdout()
                    .write_all(b"probe\n")
                    .and_then(|_| std::io::stdout().flush()),
            ),
        ),
    ];
    lines.iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
}

impl Plugin for Probe {
    fn info() -> Info {
        Info::new("sandbox-probe", env!("CARGO_PKG_VERSION"))
            .kind("Test::Sandbox::Probe")
            .default_mapping(&probes())
    }
}

berth_plugin_sdk::export_plugin!(Probe);
