//! The one wasmtime [`Engine`] all plugins and tenants share: component
//! model, async calls, epoch interruption ticked from a dedicated OS thread,
//! the pooling allocator when the machine can reserve its address space (the
//! on-demand allocator otherwise).
//!
//! Owns engine configuration only: its capacities are [`EngineLimits`] (`limits.engine`,
//! declared in `crate::limits`); the pool's per-component shape in `pooling_config` is what a
//! Rust wasip2 component is made of, not a limit. Per-call budgets are
//! [`crate::limits::Limits`], applied by [`super::instance`].

use std::sync::Arc;
use std::thread;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::limits::EngineLimits;

/// The shared engine plus the settings it was built with.
#[derive(Clone)]
pub struct PluginEngine {
    pub(crate) engine: Engine,
    pub(crate) limits: Arc<EngineLimits>,
    pooling: bool,
    /// Idle instances kept across every plugin and tenant (see
    /// [`EngineLimits::max_idle_instances_total`]).
    idle: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("pooling", &self.pooling)
            .finish()
    }
}

fn base_config(limits: &EngineLimits) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.max_wasm_stack(limits.max_wasm_stack);
    // The fiber stack must hold the wasm stack plus host frames.
    c.async_stack_size(limits.max_wasm_stack + (2 << 20));
    c.cranelift_opt_level(wasmtime::OptLevel::Speed);
    c
}

fn pooling_config(limits: &EngineLimits) -> PoolingAllocationConfig {
    let n = limits.pooled_instances;
    let mut p = PoolingAllocationConfig::default();
    // A Rust wasip2 component is one main module plus a few small shim
    // modules (adapter fix-ups), each with its own tables.
    p.total_component_instances(n);
    p.total_core_instances(n * 8);
    p.total_memories(n * 2);
    p.total_tables(n * 8);
    p.total_stacks(n);
    p.max_memory_size(limits.max_memory_bytes);
    p.max_core_instances_per_component(16);
    p.max_memories_per_component(4);
    p.max_tables_per_component(16);
    p.max_component_instance_size(1 << 20);
    p.max_core_instance_size(1 << 20);
    p
}

impl PluginEngine {
    /// Build the engine and start its epoch ticker.
    pub fn new(limits: EngineLimits) -> anyhow::Result<Self> {
        let mut pooled = base_config(&limits);
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(&limits)));
        let (engine, pooling) = match Engine::new(&pooled) {
            Ok(e) => (e, true),
            Err(err) => {
                tracing::warn!(%err, "pooling allocator unavailable, using on-demand allocation");
                (Engine::new(&base_config(&limits))?, false)
            }
        };
        spawn_ticker(&engine, &limits);
        Ok(Self {
            engine,
            limits: Arc::new(limits),
            pooling,
            idle: Arc::default(),
        })
    }

    /// Takes a place for one more idle instance; false when the process keeps enough.
    pub(crate) fn take_idle_place(&self) -> bool {
        use std::sync::atomic::Ordering;
        let max = self.limits.max_idle_instances_total;
        self.idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back `n` idle places (instances checked out or dropped).
    pub(crate) fn give_idle_places(&self, n: usize) {
        use std::sync::atomic::Ordering;
        if n > 0 {
            let _ = self
                .idle
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                    Some(v.saturating_sub(n))
                });
        }
    }

    /// Idle instances kept now, across the process.
    pub fn idle_instances(&self) -> usize {
        self.idle.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The wasmtime engine, e.g. to compile a component and read its imports
    /// ([`super::instance::component_imports`]).
    pub fn wasmtime(&self) -> &Engine {
        &self.engine
    }

    /// Whether instances come from the pooling allocator.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Ticks of the epoch clock covering `d`, plus one for the partial tick
    /// already under way.
    pub(crate) fn ticks(&self, d: std::time::Duration) -> u64 {
        let tick = self.limits.epoch_tick.as_nanos().max(1);
        (d.as_nanos() / tick) as u64 + 1
    }
}

/// Advance the epoch from an OS thread (not a tokio task: a guest spinning
/// on a runtime worker must not be able to stop its own clock). The thread
/// ends when the engine is dropped.
fn spawn_ticker(engine: &Engine, limits: &EngineLimits) {
    let weak = engine.weak();
    let tick = limits.epoch_tick;
    thread::Builder::new()
        .name("berth-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(tick);
            }
        })
        .expect("spawn epoch thread");
}
