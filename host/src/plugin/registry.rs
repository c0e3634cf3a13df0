//! The plugin registry: which plugin serves which kind, loaded from a plugin
//! directory and kept current while Berth runs.
//!
//! Every `*.wasm` file in the directory is a plugin. A bad file is reported
//! in [`Snapshot::errors`] and never takes the others down; a file that fails
//! to reload keeps its previous good version. Readers take a [`Snapshot`]
//! (an `Arc`), so a reload swaps the whole mapping atomically and calls in
//! flight finish on the version they started with.
//!
//! A file that failed to load is never silently replaced by the `*` plugin
//! ([`Snapshot::serve`]). The kinds such a file would serve are known only
//! when a previous version of it is loaded (it keeps serving them); a
//! component that does not load cannot be asked, and its name says nothing
//! reliable. So the rule is: while any file whose kinds are unknown has
//! failed, every kind no loaded plugin names is an error naming that file,
//! not a fallback to `*`. Kinds a loaded plugin names are unaffected.
//!
//! Events are logged once each: a load and a replacement at info, a refusal
//! at warn. The first scan ([`Registry::open`]) leaves refusals to its
//! caller, which has them in [`Snapshot::errors`] and prints them once; a
//! file that fails again unchanged is not reported again.
//!
//! Must not touch: what a plugin does with a batch (see [`super::instance`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// A file that did not load, remembered so that its kinds are not served by `*` instead.
#[derive(Debug, Clone)]
struct FailedFile {
    path: PathBuf,
    /// SHA-256 of the contents that failed, so an unchanged file is not retried.
    hash: String,
    /// Its one-line reason, without the path.
    reason: String,
    /// The kinds of the previous version still served in its place; `None`: unknown.
    kinds: Option<Vec<String>>,
}

/// The plugins in force at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub plugins: Vec<Arc<LoadedPlugin>>,
    pub errors: Vec<LoadFailure>,
    by_kind: HashMap<String, Arc<LoadedPlugin>>,
    fallback: Option<Arc<LoadedPlugin>>,
    failed: Vec<FailedFile>,
}

/// Why no plugin serves a kind (for a tenant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoPlugin {
    #[error("plugin {plugin} (kind {kind}) is not in this tenant's allowed plugins")]
    NotAllowed { kind: String, plugin: String },
    /// Files that failed to load might serve `kind`; `fallback` names the `*` plugin not used.
    #[error("no plugin for {kind}: {} failed to load ({}){}",
        .files.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>().join(", "),
        .files.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>().join("; "),
        .fallback.as_ref().map(|f| format!("; not using {f}")).unwrap_or_default())]
    Failed {
        kind: String,
        /// (file name, reason).
        files: Vec<(String, String)>,
        fallback: Option<String>,
    },
    #[error("no plugin serves kind {kind}")]
    None { kind: String },
}

impl Snapshot {
    /// The plugin serving `kind`: the one that names it, else the one that
    /// declares `*`.
    pub fn for_kind(&self, kind: &str) -> Option<Arc<LoadedPlugin>> {
        self.by_kind.get(kind).or(self.fallback.as_ref()).cloned()
    }

    /// The plugin to map `kind` with, among those `allowed` (by name, for a tenant with an
    /// allow-list): the default one that names the kind when allowed, else another that names
    /// it, else the `*` one when allowed. A kind which would fall back to `*` while a file
    /// that might serve it failed to load is an error (see the module doc).
    pub fn serve(
        &self,
        kind: &str,
        allowed: impl Fn(&str) -> bool,
    ) -> Result<Arc<LoadedPlugin>, NoPlugin> {
        let named = self
            .by_kind
            .get(kind)
            .into_iter()
            .chain(self.plugins.iter())
            .find(|p| p.info.kinds.iter().any(|k| k == kind) && allowed(&p.info.name));
        if let Some(p) = named {
            return Ok(p.clone());
        }
        let blocking: Vec<(String, String)> = self
            .failed
            .iter()
            .filter(|f| {
                f.kinds
                    .as_ref()
                    .is_none_or(|ks| ks.iter().any(|k| k == kind || k == "*"))
            })
            .map(|f| (file_name(&f.path), f.reason.clone()))
            .collect();
        if !blocking.is_empty() {
            return Err(NoPlugin::Failed {
                kind: kind.to_string(),
                files: blocking,
                fallback: self.fallback.as_ref().map(|f| f.info.name.clone()),
            });
        }
        if let Some(f) = self.fallback.as_ref().filter(|p| allowed(&p.info.name)) {
            return Ok(f.clone());
        }
        match self.for_kind(kind) {
            Some(p) => Err(NoPlugin::NotAllowed {
                kind: kind.to_string(),
                plugin: p.info.name.clone(),
            }),
            None => Err(NoPlugin::None {
                kind: kind.to_string(),
            }),
        }
    }

    /// Warnings about the kinds of `mapping`, one line each: kinds no plugin can serve, kinds
    /// that are not Cloud Control type names and that no plugin names (the `*` plugin would
    /// send them to Cloud Control, which refuses them), and near-misses of a kind a plugin
    /// names.
    pub fn kind_warnings(&self, mapping: &crate::mapping::MappingFile) -> Vec<String> {
        let named: Vec<(&str, &str)> = self
            .plugins
            .iter()
            .flat_map(|p| {
                p.info
                    .kinds
                    .iter()
                    .filter(|k| *k != "*")
                    .map(|k| (k.as_str(), p.info.name.as_str()))
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for r in &mapping.resources {
            if !seen.insert(r.kind.as_str()) {
                continue;
            }
            let at = format!(
                "{}: resources[{}] ({})",
                mapping.source_name, r.index, r.kind
            );
            if named.iter().any(|(k, _)| *k == r.kind) {
                continue;
            }
            match self.serve(&r.kind, |_| true) {
                Ok(_) => {}
                Err(NoPlugin::None { .. }) => {
                    out.push(format!("{at}: no loaded plugin serves this kind"));
                    continue;
                }
                // The failed file was reported once already, and each item says it again.
                Err(_) => continue,
            }
            let near = named
                .iter()
                .filter(|(k, _)| strsim::levenshtein(k, &r.kind) <= 2)
                .min_by_key(|(k, _)| strsim::levenshtein(k, &r.kind));
            let hint = near
                .map(|(k, p)| format!(" (did you mean `{k}`, served by {p}?)"))
                .unwrap_or_default();
            if !is_type_name(&r.kind) {
                out.push(format!(
                    "{at}: `{}` is not a Cloud Control type name (like AWS::S3::Bucket) and no \
                     plugin names it{hint}",
                    r.kind
                ));
            } else if !hint.is_empty() {
                out.push(format!("{at}: no plugin names this kind{hint}"));
            }
        }
        out
    }

    /// Any plugin that runs JQ (every plugin carries the same engine); the
    /// `*` plugin first.
    pub fn any(&self) -> Option<Arc<LoadedPlugin>> {
        self.fallback
            .clone()
            .or_else(|| self.plugins.first().cloned())
    }
}

/// The report of a file that did not load: one line, naming the file.
fn refusal(path: &Path, reason: &str, kept_previous: bool) -> LoadFailure {
    let mut message = PluginError::Load {
        path: path.to_path_buf(),
        message: reason.to_string(),
    }
    .to_string();
    if kept_previous {
        message.push_str("; keeping the previously loaded version");
    }
    LoadFailure {
        path: path.to_path_buf(),
        message,
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

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// A CloudFormation/Cloud Control type name: `Provider::Service::Resource`, optionally
/// `::MODULE`, each part 2 to 64 letters or digits.
fn is_type_name(kind: &str) -> bool {
    let parts: Vec<&str> = kind.split("::").collect();
    let word =
        |p: &str| (2..=64).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric());
    match parts[..] {
        [a, b, c] => word(a) && word(b) && word(c),
        [a, b, c, "MODULE"] => word(a) && word(b) && word(c),
        _ => false,
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

/// What a scan does with one file.
enum Outcome {
    /// The same bytes as the plugin in force: kept.
    Unchanged,
    /// The same bytes as a file that failed before: the same failure.
    FailedBefore(FailedFile),
    /// Loaded now (boxed: a plugin is large beside the other outcomes).
    Loaded(Box<Result<LoadedPlugin, PluginError>>),
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
        reg.scan(false).await?;
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
        self.scan(true).await
    }

    /// [`Self::rescan`]; `report_refusals`: log files that fail (the first scan's caller
    /// reports them itself).
    async fn scan(&self, report_refusals: bool) -> Result<Arc<Snapshot>, PluginError> {
        let _one_at_a_time = self.reload.lock().await;
        let old = self.snapshot();
        let files = wasm_files(&self.dir).map_err(|e| PluginError::Directory {
            path: self.dir.clone(),
            message: format!("cannot read it: {e}"),
        })?;
        // Read and hash every file, then load the new and changed ones, side by side: a start
        // with eight plugins waits for about the slowest, not for the sum.
        let read = futures::future::join_all(files.into_iter().map(|path| async move {
            let p = path.clone();
            let read = tokio::task::spawn_blocking(move || {
                std::fs::read(&p).map(|bytes| {
                    let hash = content_hash(&bytes);
                    (bytes, hash)
                })
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            (path, read)
        }))
        .await;
        let outcomes = futures::future::join_all(read.into_iter().map(|(path, read)| {
            let previous = old.plugins.iter().find(|p| p.path == path).cloned();
            let old = &old;
            async move {
                let hash = read.as_ref().ok().map(|(_, h)| h.clone());
                if let (Some(p), Some(h)) = (&previous, &hash)
                    && *h == p.hash
                {
                    return (path, previous, hash, Outcome::Unchanged);
                }
                // Failed before with these very bytes: the same failure, not retried or
                // re-logged.
                let failed_before = old
                    .failed
                    .iter()
                    .find(|f| f.path == path && Some(&f.hash) == hash.as_ref());
                if let Some(f) = failed_before {
                    return (path, previous, hash, Outcome::FailedBefore(f.clone()));
                }
                let loaded = match read {
                    Ok((bytes, hash)) => {
                        LoadedPlugin::load_bytes(&self.engine, &self.cache, &path, bytes, hash)
                            .await
                    }
                    Err(e) => Err(PluginError::Load {
                        path: path.clone(),
                        message: format!("cannot read: {e}"),
                    }),
                };
                (path, previous, hash, Outcome::Loaded(Box::new(loaded)))
            }
        }))
        .await;
        let mut plugins = Vec::new();
        let mut errors = Vec::new();
        let mut failed = Vec::new();
        for (path, previous, hash, outcome) in outcomes {
            match outcome {
                Outcome::Unchanged => plugins.extend(previous),
                Outcome::FailedBefore(f) => {
                    errors.push(refusal(&path, &f.reason, previous.is_some()));
                    plugins.extend(previous);
                    failed.push(f);
                }
                Outcome::Loaded(loaded) => match *loaded {
                    Ok(p) => {
                        match &previous {
                            Some(prev) => tracing::info!(
                                plugin = %p.info.name,
                                version = %p.info.version,
                                previous = %prev.info.version,
                                path = %path.display(),
                                "plugin replaced"
                            ),
                            None => tracing::info!(
                                plugin = %p.info.name,
                                version = %p.info.version,
                                path = %path.display(),
                                "plugin loaded"
                            ),
                        }
                        plugins.push(Arc::new(p));
                    }
                    Err(e) => {
                        let reason = match e {
                            PluginError::Load { message, .. } => message,
                            other => other.to_string(),
                        };
                        let failure = refusal(&path, &reason, previous.is_some());
                        if report_refusals {
                            tracing::warn!("{}", failure.message);
                        } else {
                            tracing::debug!("{}", failure.message);
                        }
                        errors.push(failure);
                        failed.push(FailedFile {
                            path: path.clone(),
                            hash: hash.unwrap_or_default(),
                            reason,
                            kinds: previous.as_ref().map(|p| p.info.kinds.clone()),
                        });
                        plugins.extend(previous);
                    }
                },
            }
        }
        for gone in old
            .plugins
            .iter()
            .filter(|o| !plugins.iter().any(|p| p.path == o.path))
        {
            tracing::info!(plugin = %gone.info.name, path = %gone.path.display(), "plugin removed");
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
                            "plugin file {}: kind {kind} is already served by {}; ignored here",
                            p.path.display(),
                            file_name(&other)
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
            failed,
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
                tokio::time::sleep(crate::limits::PLUGIN_RELOAD_DEBOUNCE).await;
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

#[cfg(test)]
mod tests {
    use super::is_type_name;

    #[test]
    fn type_names_are_three_parts_of_letters_and_digits() {
        assert!(is_type_name("AWS::S3::Bucket"));
        assert!(is_type_name("AWS::ElasticLoadBalancingV2::LoadBalancer"));
        assert!(is_type_name("MyOrg::Svc::Thing::MODULE"));
        for bad in [
            "AWS::S3:Bucket",
            "S3::Bucket",
            "AWS::S3::Bucket::X",
            "AWS::S-3::Bucket",
            "",
        ] {
            assert!(!is_type_name(bad), "{bad}");
        }
    }
}
