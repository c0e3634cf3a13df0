//! What Berth's own imports (`log`, `cloud`) do, once for every `berth:plugin` version:
//! the log budget and sanitising, the panic line, grant and place checks, the size cap on
//! lookup answers, and the time spent waiting on lookups (which a call's time budget does
//! not count). Each version module ([`super::v0_1_0`], [`super::v0_2_0`]) only converts its
//! generated types to these calls and back.
//!
//! Must not touch: instances, limits beyond the per-call fields of [`HostState`], or the
//! network (lookups go through the tenant's [`crate::plugin::lookup::CloudLookup`]).

use super::host::HostState;
use crate::discovery::CloudResource;
use crate::plugin::lookup::LookupError;
use crate::scope::Place;

/// How the SDK's panic hook begins its log line (`plugins/sdk/src/runtime.rs`).
const PANIC_PREFIX: &str = "panicked at ";

use crate::limits::PLUGIN_LOG_LINE_CHARS;

/// A log level, whatever version of `log` the plugin imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl HostState {
    /// One line from the plugin into the host's log, within the call's budget.
    pub(super) fn log_line(&mut self, level: Level, message: String) {
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
            .take(PLUGIN_LOG_LINE_CHARS)
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

    /// The place of the current call, after checking the plugin declared `type_name`.
    fn lookup_place(&self, type_name: &str) -> Result<Place, LookupError> {
        if !self.grants.iter().any(|g| g == type_name) {
            return Err(LookupError::NotPermitted(format!(
                "plugin {} did not declare a cloud-lookup capability for {type_name}",
                self.plugin
            )));
        }
        self.place.clone().ok_or_else(|| {
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

    /// `cloud.get-resource`.
    pub(super) async fn get_resource(
        &mut self,
        type_name: &str,
        identifier: &str,
    ) -> Result<Option<CloudResource>, LookupError> {
        let place = self.lookup_place(type_name)?;
        let started = std::time::Instant::now();
        let found = self.lookup.get(&place, type_name, identifier).await;
        self.lookup_wait += started.elapsed();
        let found = found?;
        if let Some(r) = &found {
            self.check_size(&format!("{type_name} {identifier}"), r.properties.len())?;
        }
        Ok(found)
    }

    /// `cloud.list-resources`.
    pub(super) async fn list_resources(
        &mut self,
        type_name: &str,
        resource_model: Option<&str>,
    ) -> Result<Vec<CloudResource>, LookupError> {
        let place = self.lookup_place(type_name)?;
        let started = std::time::Instant::now();
        let all = self.lookup.list(&place, type_name, resource_model).await;
        self.lookup_wait += started.elapsed();
        let all = all?;
        let total: usize = all
            .iter()
            .map(|r| r.properties.len() + r.identifier.len())
            .sum();
        self.check_size(&format!("the list of {type_name}"), total)?;
        Ok(all)
    }
}

/// Implements one version's generated `log` and `cloud` host traits on [`HostState`] by
/// calling the methods above. `$api` is the path of the version's generated
/// `berth::plugin` module. The generated traits are the same shape in every version, so one
/// body serves all of them and a new version cannot forget a check.
macro_rules! impl_berth_imports {
    ($($api:ident)::+) => {
        impl $($api)::+::types::Host for $crate::plugin::host::HostState {}

        impl $($api)::+::log::Host for $crate::plugin::host::HostState {
            async fn log(&mut self, level: $($api)::+::log::Level, message: String) {
                use $($api)::+::log::Level as L;
                use $crate::plugin::imports::Level;
                let level = match level {
                    L::Trace => Level::Trace,
                    L::Debug => Level::Debug,
                    L::Info => Level::Info,
                    L::Warn => Level::Warn,
                    L::Error => Level::Error,
                };
                self.log_line(level, message);
            }
        }

        impl $($api)::+::cloud::Host for $crate::plugin::host::HostState {
            async fn get_resource(
                &mut self,
                type_name: String,
                identifier: String,
            ) -> Result<Option<$($api)::+::cloud::CloudResource>, $($api)::+::cloud::LookupError> {
                let found = $crate::plugin::host::HostState::get_resource(self, &type_name, &identifier)
                    .await
                    .map_err(|e| lookup_error!(e, $($api)::+))?;
                Ok(found.map(|r| $($api)::+::cloud::CloudResource {
                    identifier: r.identifier,
                    properties: r.properties,
                }))
            }

            async fn list_resources(
                &mut self,
                type_name: String,
                resource_model: Option<String>,
            ) -> Result<Vec<$($api)::+::cloud::CloudResource>, $($api)::+::cloud::LookupError> {
                let all = $crate::plugin::host::HostState::list_resources(
                    self,
                    &type_name,
                    resource_model.as_deref(),
                )
                .await
                .map_err(|e| lookup_error!(e, $($api)::+))?;
                Ok(all
                    .into_iter()
                    .map(|r| $($api)::+::cloud::CloudResource {
                        identifier: r.identifier,
                        properties: r.properties,
                    })
                    .collect())
            }
        }
    };
}

/// A [`LookupError`] as one version's generated `lookup-error`.
macro_rules! lookup_error {
    ($e:expr, $($api:ident)::+) => {{
        use $crate::plugin::lookup::LookupError as E;
        use $($api)::+::cloud::LookupError as W;
        match $e {
            E::NotPermitted(m) => W::NotPermitted(m),
            E::AccessDenied(m) => W::AccessDenied(m),
            E::Throttled(m) => W::Throttled(m),
            E::InvalidRequest(m) => W::InvalidRequest(m),
            E::TooLarge(m) => W::TooLarge(m),
            E::Failed(m) => W::Failed(m),
        }
    }};
}

pub(super) use {impl_berth_imports, lookup_error};
