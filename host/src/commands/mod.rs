//! The command line's commands, one file each, at the edge of the binary: each parses its
//! arguments, calls into the library, and turns the outcome into output and an exit code.
//! They are the binary's only; nothing in the library depends on them.

pub(crate) mod bench;
pub(crate) mod discover;
pub(crate) mod jq;
pub(crate) mod map;
pub(crate) mod plugin;
pub(crate) mod plugin_new;
pub(crate) mod push;
pub(crate) mod sync;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use berth::limits::EngineLimits;
use berth::plugin::{AotCache, PluginEngine, Registry};

pub(crate) use crate::Global;

pub(crate) async fn open_registry(dir: &Path) -> anyhow::Result<Arc<Registry>> {
    if !dir.is_dir() {
        bail!(
            "plugin directory {} does not exist; build the plugins with `scripts/build-plugins` or pass --plugins DIR",
            dir.display()
        );
    }
    let engine = PluginEngine::new(EngineLimits::default())?;
    // The error names the directory; a context would say it twice.
    let reg = Registry::open(engine, AotCache::default_location(), dir).await?;
    // Printed once here; `plugin list` shows them through this too.
    for e in &reg.snapshot().errors {
        eprintln!("warning: {}", e.message);
    }
    Ok(reg)
}

pub(crate) fn open_input(path: &str) -> anyhow::Result<Box<dyn BufRead + Send>> {
    Ok(if path == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?,
        ))
    })
}
