//! The sandboxed plugin host.
//!
//! Each resource kind's enrichment and mapping runs in a WebAssembly
//! component implementing `berth:plugin` (see `wit/`). This module owns
//! everything about running them: the shared [`engine`], compiled-artifact
//! [`cache`], per-store [`host`] state, Berth's [`imports`] (once for every API version),
//! the versioned bindings ([`v0_2_0`], the current one whose types the host uses, and
//! [`v0_1_0`] with its adapter), [`instance`] calls under a tenant's [`Limits`], and
//! the [`registry`] that maps kinds to plugins from a directory and reloads
//! it while Berth runs.
//!
//! It must not touch: AWS credentials or the network (plugins read the cloud
//! only through [`crate::plugin::lookup::CloudLookup`]), Port, or any tenant's
//! configuration beyond the limits and lookup it is handed.

pub mod cache;
pub mod engine;
pub mod fair;
pub mod host;
pub mod imports;
pub mod instance;
pub mod lookup;
pub mod registry;
pub mod v0_1_0;
pub mod v0_2_0;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use cache::AotCache;
pub use engine::PluginEngine;
pub use instance::{
    BatchOutput, BatchRequest, Entity, Entry, EntryError, EntryOutput, Explained, ItemError,
    JqError, JqOutput, JqRequest, LoadedPlugin, Misconfiguration,
};
pub use registry::{LoadFailure, NoPlugin, Registry, Snapshot};

use crate::limits::Limits;
use crate::plugin::lookup::CloudLookup;

/// Largest `.wasm` file accepted (declared with every other limit).
pub use crate::limits::MAX_PLUGIN_BYTES;

/// What a plugin declared about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    /// The `berth:plugin` API version it was built against.
    pub api_version: String,
    pub kinds: Vec<String>,
    /// Cloud Control types it may read.
    pub lookups: Vec<String>,
    pub default_mapping: Option<String>,
    pub blueprints: Vec<String>,
}

/// Who a call is made for: the tenant's own limits and cloud access.
/// Instances are never shared between different tenant ids.
#[derive(Clone)]
pub struct Tenant {
    pub id: Arc<str>,
    pub limits: Limits,
    pub lookup: Arc<dyn CloudLookup>,
    /// The plugins (by name) this tenant may use; `None`: every loaded plugin.
    pub plugins: Option<Arc<std::collections::BTreeSet<String>>>,
    /// The process's shared work budget and this tenant's weight in it (`berth serve`);
    /// `None`: unmetered (one tenant per process).
    pub share: Option<(Arc<crate::plugin::fair::WorkBudget>, u32)>,
}

impl Tenant {
    pub fn new(id: &str, limits: Limits, lookup: Arc<dyn CloudLookup>) -> Self {
        Self {
            id: id.into(),
            limits,
            lookup,
            plugins: None,
            share: None,
        }
    }

    /// Whether this tenant may call the plugin named `name`.
    pub fn allows(&self, name: &str) -> bool {
        self.plugins.as_ref().is_none_or(|p| p.contains(name))
    }
}

/// Why a plugin could not be loaded or a call into it failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// `message` is one line: the file is named once, here.
    #[error("plugin file {}: {message}", path.display())]
    Load { path: PathBuf, message: String },
    #[error("plugin directory {}: {message}", path.display())]
    Directory { path: PathBuf, message: String },
    #[error("plugin {plugin}: memory limit exceeded (wanted {requested} bytes, limit {limit})")]
    MemoryLimit {
        plugin: String,
        requested: usize,
        limit: usize,
    },
    #[error("plugin {plugin}: time limit of {limit:?} exceeded")]
    Timeout { plugin: String, limit: Duration },
    #[error("plugin {plugin} trapped: {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin {plugin}: {what} of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        plugin: String,
        what: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("plugin {plugin} broke the protocol: {message}")]
    Protocol { plugin: String, message: String },
}

/// An error and its sources on one line, each cause once: wasmtime's errors often repeat
/// their source's text in their own, and some (wasmparser's) embed a multi-line Debug dump.
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = first_line(&err.to_string());
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// The first line of `text`, without a trailing `[` or `{` that opened a Debug dump.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    // wasmparser: "bad magic number - expected=[" followed by the bytes, one per line.
    let line = line.split(" - expected=").next().unwrap_or(line);
    line.trim_end_matches(['[', '{', ' ', ':'])
        .trim()
        .to_string()
}
