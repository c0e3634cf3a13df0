//! The plugin registry: which plugin serves which kind, loaded from a plugin
//! directory and kept current while Berth runs.
//!
//! Every `*.wasm` file in the directory is a plugin. A bad file is reported
//! in [`Snapshot::errors`] and never takes the others down; a file that fails
//! to reload keeps its previous good version. Readers take a [`Snapshot`]
//! (an `Arc`), so a reload swaps the whole mapping atomically and calls in
//! flight finish on the version they started with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::Watcher;

use super::{AotCache, LoadedPlugin, PluginEngine, PluginError};
use crate::plugin::cache::content_hash;

/// A plugin file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFailure {
    pub path: PathBuf,
    pub message: String,
}

/// The plugins in force at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub plugins: Vec<Arc<LoadedPlugin>>,
    pub errors: Vec<LoadFailure>,
    by_kind: HashMap<String, Arc<LoadedPlugin>>,
    fallback: Option<Arc<LoadedPlugin>>,
}

impl Snapshot {
    /// The plugin serving `kind`: the one that names it, else the one that
    /// declares `*`.
    pub fn for_kind(&self, kind: &str) -> Option<Arc<LoadedPlugin>> {
        self.by_kind.get(kind).or(self.fallback.as_ref()).cloned()
    }

    /// The plugin serving `kind` among those `allowed` (by name), for a tenant with an
    /// allow-list: the default one when allowed, else another that names the kind, else the
    /// `*` one when allowed.
    pub fn for_kind_where(
        &self,
        kind: &str,
        allowed: impl Fn(&str) -> bool,
    ) -> Option<Arc<LoadedPlugin>> {
        if let Some(p) = self.for_kind(kind).filter(|p| allowed(&p.info.name)) {
            return Some(p);
        }
        self.plugins
            .iter()
            .find(|p| p.info.kinds.iter().any(|k| k == kind) && allowed(&p.info.name))
            .or(self.fallback.as_ref().filter(|p| allowed(&p.info.name)))
            .cloned()
    }

    /// Any plugin that runs JQ (every plugin carries the same engine); the
    /// `*` plugin first.
    pub fn any(&self) -> Option<Arc<LoadedPlugin>> {
        self.fallback
            .clone()
            .or_else(|| self.plugins.first().cloned())
    }
}

/// Kinds to plugins, from one directory.
pub struct Registry {
    engine: PluginEngine,
    cache: AotCache,
    dir: PathBuf,
    state: ArcSwap<Snapshot>,
    reload: tokio::sync::Mutex<()>,
}

/// Keeps a directory watch alive; dropping it stops hot reload.
pub struct WatchGuard {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn wasm_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

impl Registry {
    /// Load every plugin in `dir`. Fails only if `dir` cannot be read.
    pub async fn open(
        engine: PluginEngine,
        cache: AotCache,
        dir: impl Into<PathBuf>,
    ) -> Result<Arc<Self>, PluginError> {
        let dir = dir.into();
        let reg = Arc::new(Self {
            engine,
            cache,
            dir,
            state: ArcSwap::from_pointee(Snapshot::default()),
            reload: tokio::sync::Mutex::new(()),
        });
        reg.rescan().await?;
        Ok(reg)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// The plugins in force now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.state.load_full()
    }

    /// Re-read the directory: load new and changed files, drop removed ones,
    /// keep unchanged ones (and the previous version of any that now fail).
    pub async fn rescan(&self) -> Result<Arc<Snapshot>, PluginError> {
        let _one_at_a_time = self.reload.lock().await;
        let old = self.snapshot();
        let files = wasm_files(&self.dir).map_err(|e| PluginError::Load {
            path: self.dir.clone(),
            message: format!("cannot read the plugin directory: {e}"),
        })?;
        let mut plugins = Vec::new();
        let mut errors = Vec::new();
        for path in files {
            let previous = old.plugins.iter().find(|p| p.path == path).cloned();
            let unchanged = match (&previous, std::fs::read(&path)) {
                (Some(p), Ok(bytes)) => content_hash(&bytes) == p.hash,
                _ => false,
            };
            if unchanged {
                plugins.push(previous.expect("checked"));
                continue;
            }
            match LoadedPlugin::load(&self.engine, &self.cache, &path).await {
                Ok(p) => {
                    tracing::info!(plugin = %p.info.name, version = %p.info.version, path = %path.display(), "plugin loaded");
                    plugins.push(Arc::new(p));
                }
                Err(e) => {
                    let mut message = e.to_string();
                    if let Some(prev) = previous {
                        message.push_str(" (keeping the previously loaded version)");
                        plugins.push(prev);
                    }
                    tracing::warn!(path = %path.display(), "{message}");
                    errors.push(LoadFailure { path, message });
                }
            }
        }
        let mut by_kind: HashMap<String, Arc<LoadedPlugin>> = HashMap::new();
        let mut fallback: Option<Arc<LoadedPlugin>> = None;
        for p in &plugins {
            for kind in &p.info.kinds {
                let taken_by = if kind == "*" {
                    fallback.as_ref()
                } else {
                    by_kind.get(kind)
                }
                .map(|o| o.path.clone());
                match taken_by {
                    Some(other) => errors.push(LoadFailure {
                        path: p.path.clone(),
                        message: format!(
                            "kind {kind} is already served by {}; ignored here",
                            other.display()
                        ),
                    }),
                    None if kind == "*" => fallback = Some(p.clone()),
                    None => {
                        by_kind.insert(kind.clone(), p.clone());
                    }
                }
            }
        }
        let snap = Arc::new(Snapshot {
            plugins,
            errors,
            by_kind,
            fallback,
        });
        self.state.store(snap.clone());
        Ok(snap)
    }

    /// Watch the directory and rescan (debounced) whenever it changes, so a
    /// `.wasm` dropped in is served without a restart.
    pub fn watch(self: &Arc<Self>) -> notify::Result<WatchGuard> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if res.is_ok() {
                    let _ = tx.send(());
                }
            })?;
        watcher.watch(&self.dir, notify::RecursiveMode::NonRecursive)?;
        let reg = Arc::clone(self);
        let task = tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Let a copy in progress finish, then take all its events.
                tokio::time::sleep(Duration::from_millis(200)).await;
                while rx.try_recv().is_ok() {}
                if let Err(e) = reg.rescan().await {
                    tracing::warn!("plugin directory reload failed: {e}");
                }
            }
        });
        Ok(WatchGuard {
            _watcher: watcher,
            task,
        })
    }
}
