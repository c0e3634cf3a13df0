//! Bindings for the frozen plugin API `berth:plugin@0.1.0`
//! (`wit/since_v0.1.0`), and the host side of its imports.
//!
//! A later API version gets a sibling module with its own `bindgen!`; this
//! one stays as it is so that plugins built against 0.1.0 keep loading.

use wasmtime::component::HasSelf;

use super::host::HostState;
use crate::lookup::{LookupError, Scope};

wasmtime::component::bindgen!({
    path: "../wit/since_v0.1.0",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

pub use self::berth::plugin::types;

/// Lowest and highest `berth:plugin` versions this module serves.
pub const MIN_VERSION: (u64, u64, u64) = (0, 1, 0);
pub const MAX_VERSION: (u64, u64, u64) = (0, 1, 0);

/// The interfaces of this API a plugin may import (unversioned; the linker
/// matches the version): `log`, `cloud`, and `types` for their records.
pub const BERTH_IMPORTS: &[&str] = &[
    "berth:plugin/types",
    "berth:plugin/log",
    "berth:plugin/cloud",
];

pub fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    berth::plugin::log::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    berth::plugin::cloud::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

impl berth::plugin::types::Host for HostState {}

/// How the SDK's panic hook begins its log line (`plugins/sdk/src/runtime.rs`).
const PANIC_PREFIX: &str = "panicked at ";

impl berth::plugin::log::Host for HostState {
    async fn log(&mut self, level: berth::plugin::log::Level, message: String) {
        use self::berth::plugin::log::Level;
        // The panic line comes last, when a spammy plugin may have spent its budget.
        let panic = level == Level::Error && message.starts_with(PANIC_PREFIX);
        if self.log_budget == 0 && !panic {
            return;
        }
        self.log_budget = self.log_budget.saturating_sub(1);
        let plugin = &*self.plugin;
        // Plugin text is untrusted: bound it, and drop control characters so
        // it cannot forge log lines or send terminal escapes.
        let message: String = message
            .chars()
            .take(2000)
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect();
        if panic {
            // Reported with the trap that follows; logged there, once.
            self.last_panic = Some(message);
            return;
        }
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

fn to_wit(e: LookupError) -> berth::plugin::cloud::LookupError {
    use self::berth::plugin::cloud::LookupError as W;
    match e {
        LookupError::NotPermitted(m) => W::NotPermitted(m),
        LookupError::AccessDenied(m) => W::AccessDenied(m),
        LookupError::Throttled(m) => W::Throttled(m),
        LookupError::InvalidRequest(m) => W::InvalidRequest(m),
        LookupError::TooLarge(m) => W::TooLarge(m),
        LookupError::Failed(m) => W::Failed(m),
    }
}

impl HostState {
    /// The scope of the current call, after checking the plugin declared
    /// `type_name`.
    fn lookup_scope(&self, type_name: &str) -> Result<Scope, LookupError> {
        if !self.grants.iter().any(|g| g == type_name) {
            return Err(LookupError::NotPermitted(format!(
                "plugin {} did not declare a cloud-lookup capability for {type_name}",
                self.plugin
            )));
        }
        self.scope.clone().ok_or_else(|| {
            LookupError::InvalidRequest(
                "this call has no account and region (items lack __AccountId/__Region)".into(),
            )
        })
    }

    fn check_size(&self, what: &str, n: usize) -> Result<(), LookupError> {
        if n > self.max_lookup_bytes {
            return Err(LookupError::TooLarge(format!(
                "{what} is {n} bytes, more than the {} allowed",
                self.max_lookup_bytes
            )));
        }
        Ok(())
    }
}

impl berth::plugin::cloud::Host for HostState {
    async fn get_resource(
        &mut self,
        type_name: String,
        identifier: String,
    ) -> Result<Option<berth::plugin::cloud::CloudResource>, berth::plugin::cloud::LookupError>
    {
        let scope = self.lookup_scope(&type_name).map_err(to_wit)?;
        let started = std::time::Instant::now();
        let found = self.lookup.get(&scope, &type_name, &identifier).await;
        self.lookup_wait += started.elapsed();
        let found = found.map_err(to_wit)?;
        if let Some(r) = &found {
            self.check_size(&format!("{type_name} {identifier}"), r.properties.len())
                .map_err(to_wit)?;
        }
        Ok(found.map(|r| berth::plugin::cloud::CloudResource {
            identifier: r.identifier,
            properties: r.properties,
        }))
    }

    async fn list_resources(
        &mut self,
        type_name: String,
        resource_model: Option<String>,
    ) -> Result<Vec<berth::plugin::cloud::CloudResource>, berth::plugin::cloud::LookupError> {
        let scope = self.lookup_scope(&type_name).map_err(to_wit)?;
        let started = std::time::Instant::now();
        let all = self
            .lookup
            .list(&scope, &type_name, resource_model.as_deref())
            .await;
        self.lookup_wait += started.elapsed();
        let all = all.map_err(to_wit)?;
        let total: usize = all
            .iter()
            .map(|r| r.properties.len() + r.identifier.len())
            .sum();
        self.check_size(&format!("the list of {type_name}"), total)
            .map_err(to_wit)?;
        Ok(all
            .into_iter()
            .map(|r| berth::plugin::cloud::CloudResource {
                identifier: r.identifier,
                properties: r.properties,
            })
            .collect())
    }
}
