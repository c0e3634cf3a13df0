//! The data each plugin store carries: the WASI context (no files, sockets,
//! environment or inherited stdio), the memory limiter, and what the host
//! imports need for the current call (scope, grants, lookup backend, log
//! budget). Owns no plugin logic.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::lookup::{CloudLookup, Scope};

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

const MAX_TABLE_ELEMENTS: usize = 1 << 20;

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
    pub(crate) scope: Option<Scope>,
    pub(crate) max_lookup_bytes: usize,
    pub(crate) log_budget: u32,
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
        // no arguments, stdio goes nowhere, and no network at all.
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
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
            scope: None,
            max_lookup_bytes,
            log_budget: 0,
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
