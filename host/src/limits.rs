//! Every limit and timeout of the plugin sandbox, in one place, so that
//! operators and reviewers find them all here and nowhere else.
//!
//! A [`Limits`] value is per tenant: the hosted runtime gives each tenant its
//! own, so nothing here is process-wide. Defaults suit a laptop and CI;
//! `BERTH_*` environment variables override them for the local CLI.

use std::time::Duration;

/// Limits applied to every plugin call of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most linear memory one plugin instance may grow to.
    pub max_memory_bytes: usize,
    /// Time budget of the guest's own work in one call into a plugin (a batch,
    /// `describe`, a `berth jq` run): wall-clock time minus the time spent
    /// waiting on host lookups, which AWS rate limits stretch and the guest
    /// cannot help.
    pub call_timeout: Duration,
    /// Wall-clock cap of one call, lookups included.
    pub call_wall_timeout: Duration,
    /// Most bytes of raw items handed to a plugin in one call.
    pub max_input_bytes: usize,
    /// Most bytes of output (entities, errors) accepted from one call.
    pub max_output_bytes: usize,
    /// Most bytes of one Cloud Control answer handed to a plugin.
    pub max_lookup_bytes: usize,
    /// Log lines a plugin may write per call before the rest are dropped.
    pub max_log_lines_per_call: u32,
    /// Most items in one batch.
    pub max_batch_items: usize,
    /// Idle, initialised instances kept per tenant and plugin for reuse.
    pub max_idle_instances: usize,
    /// An instance is retired after this many calls (bounds fragmentation).
    pub max_calls_per_instance: u32,
    /// Batches mapped at once during a sync. More than the cores: enriching plugins spend
    /// most of a call waiting on AWS lookups, which other batches can overlap.
    pub sync_concurrent_batches: usize,
    /// Items per batch during a sync: smaller than `berth map`'s, so that one batch's
    /// lookups do not serialise a whole page of items.
    pub sync_batch_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 256 << 20,
            call_timeout: Duration::from_secs(30),
            call_wall_timeout: Duration::from_secs(600),
            max_input_bytes: 16 << 20,
            max_output_bytes: 64 << 20,
            max_lookup_bytes: 4 << 20,
            max_log_lines_per_call: 100,
            max_batch_items: 500,
            max_idle_instances: 16,
            max_calls_per_instance: 10_000,
            sync_concurrent_batches: 32,
            sync_batch_items: 50,
        }
    }
}

impl Limits {
    /// Defaults, overridden by `BERTH_PLUGIN_MEMORY_MB`,
    /// `BERTH_PLUGIN_TIMEOUT_MS` and `BERTH_BATCH_ITEMS` when set. A value
    /// that does not parse is an error naming the variable.
    pub fn from_env() -> Result<Self, String> {
        let mut l = Self::default();
        if let Some(mb) = env_u64("BERTH_PLUGIN_MEMORY_MB")? {
            l.max_memory_bytes = (mb as usize) << 20;
        }
        if let Some(ms) = env_u64("BERTH_PLUGIN_TIMEOUT_MS")? {
            l.call_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = env_u64("BERTH_BATCH_ITEMS")? {
            l.max_batch_items = n.max(1) as usize;
        }
        Ok(l)
    }
}

fn env_u64(name: &str) -> Result<Option<u64>, String> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{name}={v:?} is not a whole number")),
    }
}

/// Engine-wide settings: shared by all tenants because one wasmtime engine
/// serves them all. Only capacities live here, never per-tenant budgets.
#[derive(Debug, Clone)]
pub struct EngineLimits {
    /// How often the epoch advances; the granularity of call deadlines.
    pub epoch_tick: Duration,
    /// Concurrent instances the pooling allocator reserves room for.
    pub pooled_instances: u32,
    /// Idle instances kept for reuse across every plugin and tenant of the process. Each
    /// holds a pool slot, so with many tenants (`berth serve`) a per-tenant cap alone would
    /// fill the pool with idle instances and leave none for calls.
    pub max_idle_instances_total: usize,
    /// Largest memory any tenant may be given (the pool's slot size).
    pub max_memory_bytes: usize,
    /// Wasm stack for guest code; deep jq recursion needs more than the
    /// default, and an endless one must still end in a clean trap.
    pub max_wasm_stack: usize,
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self {
            epoch_tick: Duration::from_millis(10),
            pooled_instances: 128,
            max_idle_instances_total: 64,
            max_memory_bytes: 1 << 30,
            max_wasm_stack: 4 << 20,
        }
    }
}
