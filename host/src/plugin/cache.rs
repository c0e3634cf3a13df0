//! The AOT cache of compiled plugins: Cranelift takes seconds per plugin,
//! deserialising a cached artifact takes milliseconds.
//!
//! Artifacts live in a host-owned directory (mode 0700), never in the plugin
//! directory, keyed by the SHA-256 of the `.wasm` and the engine's
//! compatibility hash (wasmtime version, CPU features, configuration). Only
//! files this host wrote are ever deserialised; operators only drop `.wasm`
//! files. A stale or corrupt artifact is recompiled, never trusted.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled artifacts go.
#[derive(Debug, Clone)]
pub struct AotCache {
    dir: Option<PathBuf>,
}

/// SHA-256 of a plugin file, hex.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A stable digest of the engine's compatibility hash.
fn engine_key(engine: &Engine) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..12])
}

impl AotCache {
    /// No caching: every load compiles.
    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// Cache in `dir`, created with mode 0700 if missing.
    pub fn at(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self { dir: Some(dir) })
    }

    /// `$BERTH_CACHE_DIR`, else `$XDG_CACHE_HOME/berth/aot`, else
    /// `~/.cache/berth/aot`; disabled if none can be created.
    pub fn default_location() -> Self {
        let dir = std::env::var_os("BERTH_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| Path::new(&d).join("berth/aot")))
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/berth/aot")));
        match dir.map(Self::at) {
            Some(Ok(c)) => c,
            Some(Err(err)) => {
                tracing::warn!(%err, "AOT cache unavailable; plugins compile on every load");
                Self::disabled()
            }
            None => Self::disabled(),
        }
    }

    /// The compiled component for `bytes`, from the cache or freshly
    /// compiled (and then cached). `hash` is [`content_hash`] of `bytes`.
    pub fn load(&self, engine: &Engine, bytes: &[u8], hash: &str) -> wasmtime::Result<Component> {
        let Some(dir) = &self.dir else {
            return Component::new(engine, bytes);
        };
        let path = dir.join(format!("{hash}-{}.cwasm", engine_key(engine)));
        if path.exists() {
            // SAFETY: the file is in a directory only this host writes
            // (0700), named by the content hash of the `.wasm` it was
            // compiled from and by this engine's compatibility hash;
            // wasmtime further checks version and configuration and fails
            // cleanly on a mismatch, in which case we recompile.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok(c),
                Err(err) => {
                    tracing::warn!(%err, path = %path.display(), "stale AOT artifact; recompiling")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        match component.serialize() {
            Ok(art) => {
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                if std::fs::write(&tmp, art)
                    .and_then(|_| std::fs::rename(&tmp, &path))
                    .is_err()
                {
                    let _ = std::fs::remove_file(&tmp);
                }
            }
            Err(err) => tracing::warn!(%err, "cannot serialise compiled plugin"),
        }
        Ok(component)
    }
}
