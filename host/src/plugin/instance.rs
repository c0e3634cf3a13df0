//! A loaded plugin: its compiled component, pre-linked once
//! (`InstancePre`), and the calls into it under the tenant's limits.
//!
//! Instances are reused per tenant (never across tenants: a tenant's
//! compiled mapping lives in its instance's memory), because compiling jaq
//! filters inside the guest costs milliseconds per mapping while a call
//! costs microseconds. An instance that trapped, ran out of time or memory,
//! or served `max_calls_per_instance` calls is dropped, never reused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Store, Trap, UpdateDeadline};

use super::cache::{AotCache, content_hash};
use super::engine::PluginEngine;
use super::host::{HostState, MemoryLimitExceeded, WASI_IMPORTS, add_wasi_to_linker};
use super::{PluginError, PluginInfo, Tenant, one_line};
use super::{v0_1_0 as v1, v0_2_0 as v2};
use crate::plugin::lookup::Offline;
use crate::scope::Place;

/// `BatchOutput`: what a plugin made of a batch: per entry of the request, in its order, the
/// entry's error or one result per item.
pub use v2::types::{
    BatchOutput, BatchRequest, Capability, Enrichment, Entity, Entry, EntryError, EntryOutput,
    Explained, ItemError, JqError, JqOutput, JqRequest, Misconfiguration,
};

/// A `berth:plugin` version: (major, minor, patch).
type Version = (u64, u64, u64);

/// The `berth:plugin` versions this host serves, oldest first.
const VERSIONS: [(Version, Version); 2] = [
    (v1::MIN_VERSION, v1::MAX_VERSION),
    (v2::MIN_VERSION, v2::MAX_VERSION),
];

/// An instance's exports, per API version.
enum Bindings {
    V1(v1::Plugin),
    V2(v2::Plugin),
}

/// A linked component ready to instantiate, per API version.
enum Pre {
    V1(v1::PluginPre<HostState>),
    V2(v2::PluginPre<HostState>),
}

/// An instance's `mapper` export, per API version: what a call's side for that version gets.
type V1Mapper = v1::exports::berth::plugin::mapper::Guest;
type V2Mapper = v2::exports::berth::plugin::mapper::Guest;

/// One version's generated `Plugin::add_to_linker`, over the store's own data.
type AddImports =
    fn(&mut Linker<HostState>, fn(&mut HostState) -> &mut HostState) -> wasmtime::Result<()>;

/// Links `component` with WASI and one version's Berth imports (`add_berth`, the version's
/// generated `Plugin::add_to_linker`) and types its exports (`new`, its `PluginPre::new`).
/// Generic over the version so that a new one brings only its bindings.
fn link<P>(
    engine: &wasmtime::Engine,
    component: &Component,
    add_berth: AddImports,
    new: fn(InstancePre<HostState>) -> wasmtime::Result<P>,
) -> Result<P, String> {
    let mut linker = Linker::<HostState>::new(engine);
    add_wasi_to_linker(&mut linker).map_err(|e| one_line(&*e))?;
    add_berth(&mut linker, |s| s).map_err(|e| one_line(&*e))?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| format!("needs imports Berth does not provide: {}", one_line(&*e)))?;
    new(pre).map_err(|e| one_line(&*e))
}

struct Instance {
    store: Store<HostState>,
    bindings: Bindings,
    calls: u32,
}

/// One plugin file, compiled and linked, ready to instantiate.
pub struct LoadedPlugin {
    pub path: PathBuf,
    /// SHA-256 of the `.wasm`.
    pub hash: String,
    pub info: PluginInfo,
    engine: PluginEngine,
    pre: Pre,
    name: Arc<str>,
    grants: Arc<[String]>,
    idle: Mutex<HashMap<Arc<str>, Vec<Instance>>>,
}

impl Drop for LoadedPlugin {
    /// A replaced or removed plugin's idle instances leave the process's idle budget.
    fn drop(&mut self) {
        let n: usize = self
            .idle
            .get_mut()
            .map_or(0, |m| m.values().map(Vec::len).sum());
        self.engine.give_idle_places(n);
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish()
    }
}

/// The `berth:plugin` version a component implements, from the versioned
/// name of its exported `mapper` interface.
fn api_version(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Result<(u64, u64, u64), String> {
    let ty = component.component_type();
    let mut names = Vec::new();
    for (name, _) in ty.exports(engine) {
        if let Some(v) = name.strip_prefix("berth:plugin/mapper@") {
            let parts: Vec<u64> = v
                .split(['.', '-', '+'])
                .take(3)
                .map(|p| p.parse().unwrap_or(u64::MAX))
                .collect();
            if parts.len() == 3 && parts.iter().all(|p| *p != u64::MAX) {
                return Ok((parts[0], parts[1], parts[2]));
            }
            return Err(format!("unreadable plugin API version `{v}`"));
        }
        names.push(name.to_string());
    }
    Err(format!(
        "not a Berth plugin: it exports no `berth:plugin/mapper` interface (exports: {})",
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    ))
}

/// Every interface a plugin may import, unversioned: [`WASI_IMPORTS`] and
/// Berth's own.
pub fn allowed_imports() -> impl Iterator<Item = &'static str> {
    WASI_IMPORTS.iter().chain(v2::BERTH_IMPORTS).copied()
}

/// The component's imports, as named in it (`wasi:cli/stdout@0.2.6`).
pub fn component_imports(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Refuses, naming it, the first import outside [`allowed_imports`]: the
/// linker would refuse it too, but in terms of its own.
fn check_imports(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Result<(), String> {
    for name in component_imports(engine, component) {
        let interface = name.split('@').next().unwrap_or_default();
        if !allowed_imports().any(|a| a == interface) {
            return Err(format!(
                "it imports `{name}`, which plugins do not get: they have no filesystem, \
                 sockets, environment or stdio, and import only berth:plugin's log and cloud \
                 and the parts of WASI listed in README \"The sandbox\""
            ));
        }
    }
    Ok(())
}

/// Why `bytes` cannot be a component, when its 8-byte header already tells; `None` leaves
/// the reason to the compiler.
fn not_a_component(bytes: &[u8]) -> Option<&'static str> {
    const CORE_MODULE: [u8; 4] = [1, 0, 0, 0];
    if bytes.is_empty() {
        Some("the file is empty")
    } else if !bytes.starts_with(b"\0asm") {
        Some("no WebAssembly magic number at the start")
    } else if bytes.get(4..8) == Some(&CORE_MODULE[..]) {
        Some("a core module, not a component: build for wasm32-wasip2")
    } else {
        None
    }
}

fn show((a, b, c): (u64, u64, u64)) -> String {
    format!("{a}.{b}.{c}")
}

impl LoadedPlugin {
    /// Compile (or fetch from the AOT cache), check the API version, link,
    /// and read the plugin's `describe()`.
    pub async fn load(
        engine: &PluginEngine,
        cache: &AotCache,
        path: &Path,
    ) -> Result<Self, PluginError> {
        let load_err = |message: String| PluginError::Load {
            path: path.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| load_err(format!("cannot read: {e}")))?;
        let hash = content_hash(&bytes);
        Self::load_bytes(engine, cache, path, bytes, hash).await
    }

    /// [`Self::load`] of a file already read, `hash` being [`content_hash`] of `bytes` (a
    /// directory scan hashes every file to see what changed, and does not read it twice).
    pub async fn load_bytes(
        engine: &PluginEngine,
        cache: &AotCache,
        path: &Path,
        bytes: Vec<u8>,
        hash: String,
    ) -> Result<Self, PluginError> {
        let load_err = |message: String| PluginError::Load {
            path: path.to_path_buf(),
            message,
        };
        if bytes.len() > super::MAX_PLUGIN_BYTES {
            return Err(load_err(format!(
                "{} bytes is larger than the {} allowed",
                bytes.len(),
                super::MAX_PLUGIN_BYTES
            )));
        }
        let (eng, cache2, hash2) = (engine.engine.clone(), cache.clone(), hash.clone());
        let header = not_a_component(&bytes);
        let component = tokio::task::spawn_blocking(move || cache2.load(&eng, &bytes, &hash2))
            .await
            .map_err(|e| load_err(format!("compiler task failed: {e}")))?
            .map_err(|e| {
                let why = header.map_or_else(|| one_line(&*e), str::to_string);
                load_err(format!("not a valid WebAssembly component ({why})"))
            })?;

        let version = api_version(&engine.engine, &component).map_err(load_err)?;
        if !VERSIONS
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&version))
        {
            let runs: Vec<String> = VERSIONS
                .iter()
                .map(|(lo, hi)| {
                    if lo == hi {
                        show(*lo)
                    } else {
                        format!("{}..={}", show(*lo), show(*hi))
                    }
                })
                .collect();
            return Err(load_err(format!(
                "built for berth:plugin@{}; this host runs berth:plugin@{}",
                show(version),
                runs.join(", ")
            )));
        }

        check_imports(&engine.engine, &component).map_err(load_err)?;
        let eng = &engine.engine;
        let pre = if version <= v1::MAX_VERSION {
            let add = v1::Plugin::add_to_linker::<HostState, HasSelf<HostState>>;
            link(eng, &component, add, v1::PluginPre::new).map(Pre::V1)
        } else {
            let add = v2::Plugin::add_to_linker::<HostState, HasSelf<HostState>>;
            link(eng, &component, add, v2::PluginPre::new).map(Pre::V2)
        }
        .map_err(load_err)?;

        let file_name: Arc<str> = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .into();
        let mut plugin = Self {
            path: path.to_path_buf(),
            hash,
            info: PluginInfo::default(),
            engine: engine.clone(),
            pre,
            name: file_name,
            grants: Arc::from(Vec::new()),
            idle: Mutex::new(HashMap::new()),
        };
        let host = Tenant::new(
            "__berth_host",
            crate::limits::Limits::default(),
            Arc::new(Offline),
        );
        let info = plugin
            .describe(&host)
            .await
            .map_err(|e| load_err(format!("describe() failed: {e}")))?;
        let lookups = info
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::CloudLookup(t) => Some(t.clone()),
                Capability::Log => None,
            })
            .collect::<Vec<_>>();
        if info.kinds.is_empty() {
            return Err(load_err("describe() declares no kinds".into()));
        }
        plugin.name = format!("{}@{}", info.name, info.version).into();
        plugin.grants = Arc::from(lookups.clone());
        plugin.info = PluginInfo {
            name: info.name,
            version: info.version,
            api_version: show(version),
            kinds: info.kinds,
            lookups,
            default_mapping: info.default_mapping,
            blueprints: info.blueprints,
        };
        // The describe() instance belongs to the host pseudo-tenant.
        let n: usize = plugin
            .idle
            .lock()
            .expect("idle lock")
            .drain()
            .map(|(_, v)| v.len())
            .sum();
        plugin.engine.give_idle_places(n);
        Ok(plugin)
    }

    async fn checkout(&self, tenant: &Tenant) -> Result<Instance, PluginError> {
        let reused = self
            .idle
            .lock()
            .expect("idle lock")
            .get_mut(&tenant.id)
            .and_then(Vec::pop);
        if let Some(inst) = reused {
            self.engine.give_idle_places(1);
            return Ok(inst);
        }
        let state = HostState::new(
            self.name.clone(),
            self.grants.clone(),
            tenant.lookup.clone(),
            tenant.limits.max_memory_bytes,
            tenant.limits.max_lookup_bytes,
        );
        let mut store = Store::new(&self.engine.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Instantiation runs guest start code: bound it too.
        let ticks = self.engine.ticks(tenant.limits.call_timeout);
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let bindings = match &self.pre {
            Pre::V1(pre) => pre.instantiate_async(&mut store).await.map(Bindings::V1),
            Pre::V2(pre) => pre.instantiate_async(&mut store).await.map(Bindings::V2),
        }
        .map_err(|e| self.classify(tenant, e, None))?;
        Ok(Instance {
            store,
            bindings,
            calls: 0,
        })
    }

    fn prepare(&self, inst: &mut Instance, tenant: &Tenant, place: Option<Place>) {
        let data = inst.store.data_mut();
        data.place = place;
        data.lookup = tenant.lookup.clone();
        data.log_budget = tenant.limits.max_log_lines_per_call;
        data.last_panic = None;
        data.limiter.max_memory = tenant.limits.max_memory_bytes;
        data.lookup_wait = Duration::ZERO;
        let started = Instant::now();
        let budget = tenant.limits.call_timeout;
        let wall = tenant.limits.call_wall_timeout.max(budget);
        inst.store.set_epoch_deadline(1);
        // Yield to the runtime every tick so a CPU-bound guest cannot starve
        // other tasks; interrupt once the guest's own time (the call's time
        // minus what it spent waiting on host lookups, which AWS rate limits
        // can stretch) exceeds the budget, or the call its wall-clock cap.
        inst.store.epoch_deadline_callback(move |ctx| {
            let elapsed = started.elapsed();
            let own = elapsed.saturating_sub(ctx.data().lookup_wait);
            Ok(if own >= budget || elapsed >= wall {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        inst.calls += 1;
    }

    /// How long the host waits for a call at most: the wall-clock cap (guest time plus
    /// lookups), plus a grace for a host import to return (epochs only fire in guest code).
    fn wall_cap(tenant: &Tenant) -> Duration {
        tenant
            .limits
            .call_wall_timeout
            .max(tenant.limits.call_timeout)
            + tenant.limits.host_grace
    }

    fn classify(&self, tenant: &Tenant, e: wasmtime::Error, panic: Option<String>) -> PluginError {
        let plugin = self.name.to_string();
        if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
            return PluginError::MemoryLimit {
                plugin,
                requested: m.requested,
                limit: m.limit,
            };
        }
        if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
            return PluginError::Timeout {
                plugin,
                limit: tenant.limits.call_timeout,
            };
        }
        PluginError::Trap {
            plugin,
            // The panic says why; the trap's own first line only where it happened.
            message: panic.unwrap_or_else(|| {
                format!("{e:#}")
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string()
            }),
        }
    }

    fn finish<R>(
        &self,
        tenant: &Tenant,
        mut inst: Instance,
        r: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    ) -> Result<R, PluginError> {
        match r {
            Err(_) => Err(PluginError::Timeout {
                plugin: self.name.to_string(),
                limit: tenant.limits.call_timeout,
            }),
            Ok(Err(e)) => {
                let panic = inst.store.data_mut().last_panic.take();
                Err(self.classify(tenant, e, panic))
            }
            Ok(Ok(v)) => {
                if inst.calls < tenant.limits.max_calls_per_instance {
                    let mut idle = self.idle.lock().expect("idle lock");
                    let list = idle.entry(tenant.id.clone()).or_default();
                    if list.len() < tenant.limits.max_idle_instances
                        && self.engine.take_idle_place()
                    {
                        list.push(inst);
                    }
                }
                Ok(v)
            }
        }
    }

    fn too_large(&self, what: &'static str, size: usize, limit: usize) -> PluginError {
        PluginError::TooLarge {
            plugin: self.name.to_string(),
            what,
            size,
            limit,
        }
    }

    /// Every call into a plugin goes through here: check out the tenant's instance, set this
    /// call's limits and lookup `place`, run the call as the instance's API version makes it
    /// (`v1`, `v2`: each answers in the current API's types) under the wall-clock cap, then keep
    /// or drop the instance and turn a trap, timeout or memory fault into a [`PluginError`].
    async fn call<R>(
        &self,
        tenant: &Tenant,
        place: Option<Place>,
        v1: impl AsyncFnOnce(&V1Mapper, &mut Store<HostState>) -> wasmtime::Result<R>,
        v2: impl AsyncFnOnce(&V2Mapper, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let mut inst = self.checkout(tenant).await?;
        self.prepare(&mut inst, tenant, place);
        let cap = Self::wall_cap(tenant);
        let store = &mut inst.store;
        let r = match &inst.bindings {
            Bindings::V1(b) => tokio::time::timeout(cap, v1(b.berth_plugin_mapper(), store)).await,
            Bindings::V2(b) => tokio::time::timeout(cap, v2(b.berth_plugin_mapper(), store)).await,
        };
        self.finish(tenant, inst, r)
    }

    async fn describe(&self, tenant: &Tenant) -> Result<v2::types::PluginInfo, PluginError> {
        self.call(
            tenant,
            None,
            async |mapper, store| mapper.call_describe(store).await.map(v1::info),
            async |mapper, store| mapper.call_describe(store).await,
        )
        .await
    }

    /// Enrich and map a batch of items of one kind, account and region, under every entry
    /// of the request. A 0.2.0 plugin does it in one call, enriching each item once; a
    /// 0.1.0 plugin is called once per entry.
    pub async fn map_batch(
        &self,
        tenant: &Tenant,
        place: Option<Place>,
        req: &BatchRequest,
    ) -> Result<BatchOutput, PluginError> {
        let size = req.entries.iter().map(|e| e.mapping.len()).sum::<usize>()
            + req.items.iter().map(String::len).sum::<usize>();
        if size > tenant.limits.max_input_bytes {
            return Err(self.too_large("input", size, tenant.limits.max_input_bytes));
        }
        let out = self
            .call(
                tenant,
                place,
                async |mapper, store| {
                    let mut out = Vec::with_capacity(req.entries.len());
                    for entry in &req.entries {
                        let one = v1::request(req, entry);
                        let r = mapper.call_map_batch(&mut *store, &one).await?;
                        out.push(v1::entry_result(r));
                    }
                    Ok(out)
                },
                async |mapper, store| mapper.call_map_batch(store, req).await,
            )
            .await?;
        let size: usize = out
            .iter()
            .flat_map(|entry| entry.iter().flatten())
            .map(|r| match r {
                Ok(o) => {
                    o.entities
                        .iter()
                        .map(|e| {
                            e.body.len()
                                + e.identifier.len()
                                + e.blueprint.len()
                                + e.relation_targets.iter().map(String::len).sum::<usize>()
                        })
                        .sum::<usize>()
                        + o.misconfigured
                            .iter()
                            .map(|m| m.expression.len() + m.message.len() + m.field.len())
                            .sum::<usize>()
                }
                Err(_) => 64,
            })
            .sum();
        if size > tenant.limits.max_output_bytes {
            return Err(self.too_large("output", size, tenant.limits.max_output_bytes));
        }
        let protocol = |message: String| PluginError::Protocol {
            plugin: self.name.to_string(),
            message,
        };
        if out.len() != req.entries.len() {
            return Err(protocol(format!(
                "returned results for {} resource entries, the request had {}",
                out.len(),
                req.entries.len()
            )));
        }
        for items in out.iter().flatten() {
            if items.len() != req.items.len() {
                return Err(protocol(format!(
                    "returned {} results for {} items",
                    items.len(),
                    req.items.len()
                )));
            }
        }
        Ok(out)
    }

    /// Which evaluator runs each expression of a resource entry (JSON). A 0.1.0 plugin
    /// cannot say.
    pub async fn explain(
        &self,
        tenant: &Tenant,
        mapping: &str,
    ) -> Result<Option<Result<Vec<Explained>, EntryError>>, PluginError> {
        self.call(
            tenant,
            None,
            async |_, _| Ok(None),
            async |mapper, store| mapper.call_explain(store, mapping).await.map(Some),
        )
        .await
    }

    /// Run a JQ filter in the sandbox (`berth jq`).
    pub async fn run_jq(
        &self,
        tenant: &Tenant,
        req: &JqRequest,
    ) -> Result<Result<Vec<JqOutput>, JqError>, PluginError> {
        let size = req.filter.len() + req.inputs.iter().map(String::len).sum::<usize>();
        if size > tenant.limits.max_input_bytes {
            return Err(self.too_large("input", size, tenant.limits.max_input_bytes));
        }
        self.call(
            tenant,
            None,
            async |mapper, store| {
                let one = v1::jq_request(req);
                mapper.call_run_jq(store, &one).await.map(v1::jq_result)
            },
            async |mapper, store| mapper.call_run_jq(store, req).await,
        )
        .await
    }

    /// Drop the idle instances kept for `tenant`.
    pub fn release(&self, tenant: &str) {
        let n = self
            .idle
            .lock()
            .expect("idle lock")
            .remove(tenant)
            .map_or(0, |v| v.len());
        self.engine.give_idle_places(n);
    }
}
