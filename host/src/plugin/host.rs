//! The data each plugin store carries: the WASI context (no files, sockets,
//! environment or inherited stdio), the memory limiter, and what the host
//! imports need for the current call (place, grants, lookup backend, log
//! budget); and the WASI a plugin is linked with ([`add_wasi_to_linker`],
//! exactly [`WASI_IMPORTS`]). Owns no plugin logic.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::{HasData, HasSelf, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, io, random};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The WASI interfaces a plugin may import, all of them at any 0.2.x version:
/// what a Rust `wasm32-wasip2` component's std imports to instantiate, and
/// nothing it could use to reach outside its sandbox.
///
/// | interface | what the plugin gets |
/// |---|---|
/// | `wasi:cli/environment` | no variables, no arguments, no working directory (a stub) |
/// | `wasi:cli/exit` | exiting traps the call |
/// | `wasi:cli/stdin` | a closed stream |
/// | `wasi:cli/stdout`, `wasi:cli/stderr` | a sink: what is written goes nowhere |
/// | `wasi:cli/terminal-*` | no terminal |
/// | `wasi:clocks/wall-clock`, `wasi:clocks/monotonic-clock` | the time |
/// | `wasi:filesystem/preopens` | no directories (a stub) |
/// | `wasi:filesystem/types` | the types only: without a preopened directory there is no descriptor to call them on |
/// | `wasi:io/error`, `wasi:io/poll`, `wasi:io/streams` | the streams above |
/// | `wasi:random/insecure-seed` | a seed (std's `HashMap` keys) |
///
/// Not linked at all, so a plugin importing them is refused when it loads:
/// `wasi:sockets/*` (TCP, UDP, name lookup), `wasi:http/*`, the other
/// `wasi:random` interfaces (std does not import them), and anything else.
/// `tests/tests/plugin_imports.rs` checks that the shipped plugins import
/// exactly this list, Berth's included. Berth's own imports are in [`super::imports`] (`log`, `cloud` and
/// their `types`).
pub const WASI_IMPORTS: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:filesystem/preopens",
    "wasi:filesystem/types",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/insecure-seed",
];

/// The streams' resources live in the store's table.
struct Io;

impl HasData for Io {
    type Data<'a> = &'a mut ResourceTable;
}

/// Links exactly [`WASI_IMPORTS`] (not `wasmtime_wasi::p2::add_to_linker_async`,
/// which adds sockets and a working filesystem too). Environment and preopens
/// are stubs that answer nothing whatever the [`WasiCtx`] holds; the rest is
/// wasmtime-wasi's, over the empty context [`HostState::new`] builds.
pub fn add_wasi_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
    use wasmtime_wasi::random::WasiRandom;
    type T = HostState;

    cli::environment::add_to_linker::<T, HasSelf<T>>(l, |s| s)?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    filesystem::preopens::add_to_linker::<T, HasSelf<T>>(l, |s| s)?;
    filesystem::types::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    io::error::add_to_linker::<T, Io>(l, |s| s.ctx().table)?;
    io::poll::add_to_linker::<T, Io>(l, |s| s.ctx().table)?;
    io::streams::add_to_linker::<T, Io>(l, |s| s.ctx().table)?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    Ok(())
}

impl cli::environment::Host for HostState {
    fn get_environment(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }
    fn get_arguments(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(Vec::new())
    }
    fn initial_cwd(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(None)
    }
}

impl filesystem::preopens::Host for HostState {
    fn get_directories(
        &mut self,
    ) -> wasmtime::Result<Vec<(Resource<filesystem::types::Descriptor>, String)>> {
        Ok(Vec::new())
    }
}

use crate::limits::MAX_TABLE_ELEMENTS;
use crate::plugin::lookup::CloudLookup;
use crate::scope::Place;

/// A plugin asked for more memory than its tenant allows.
#[derive(Debug, Clone, thiserror::Error)]
#[error("memory limit exceeded: wanted {requested} bytes, the limit is {limit}")]
pub struct MemoryLimitExceeded {
    pub requested: usize,
    pub limit: usize,
}

/// Caps linear memory and tables; refusing with a typed error (not a bare
/// `false`) so that the trap says what happened.
pub struct Limiter {
    pub max_memory: usize,
    pub peak_memory: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            return Err(MemoryLimitExceeded {
                requested: desired,
                limit: self.max_memory,
            }
            .into());
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) plugin: Arc<str>,
    pub(crate) grants: Arc<[String]>,
    pub(crate) lookup: Arc<dyn CloudLookup>,
    pub(crate) place: Option<Place>,
    pub(crate) max_lookup_bytes: usize,
    pub(crate) log_budget: u32,
    /// The panic the guest logged during the current call (the SDK's panic hook): what a trap
    /// is reported with, since the trap itself says only `unreachable`.
    pub(crate) last_panic: Option<String>,
    /// Time the current call spent waiting on host lookups (AWS, rate limits): it does not
    /// count against the guest's time budget, only against the call's wall-clock cap.
    pub(crate) lookup_wait: std::time::Duration,
}

impl HostState {
    pub(crate) fn new(
        plugin: Arc<str>,
        grants: Arc<[String]>,
        lookup: Arc<dyn CloudLookup>,
        max_memory: usize,
        max_lookup_bytes: usize,
    ) -> Self {
        // Nothing is inherited: no preopened directories, no environment,
        // no arguments, stdin closed, stdout and stderr go nowhere, and no
        // network at all (sockets are not even linked: `add_wasi_to_linker`).
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stdin(tokio::io::empty())
            .stdout(tokio::io::empty())
            .stderr(tokio::io::empty())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                max_memory,
                peak_memory: 0,
            },
            plugin,
            grants,
            lookup,
            place: None,
            max_lookup_bytes,
            log_budget: 0,
            last_panic: None,
            lookup_wait: std::time::Duration::ZERO,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
