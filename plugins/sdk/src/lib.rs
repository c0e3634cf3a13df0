//! # Berth plugin SDK
//!
//! Everything a Berth kind plugin needs, so that a plugin is one short file:
//!
//! ```ignore
//! use berth_plugin_sdk::{Cloud, Enricher, Info, Plugin};
//!
//! struct Buckets;
//!
//! impl Plugin for Buckets {
//!     fn info() -> Info {
//!         Info::new("s3-bucket", env!("CARGO_PKG_VERSION")).kind("AWS::S3::Bucket")
//!     }
//! }
//!
//! // Only for a plugin that adds to items; without it items go to the mapping untouched.
//! impl Enricher for Buckets {
//!     fn enrich(item: &mut serde_json::Value, cloud: &Cloud) -> Result<(), String> {
//!         // add what the mapping should see, reading other types through `cloud`
//!         Ok(())
//!     }
//! }
//!
//! berth_plugin_sdk::export_plugin!(Buckets);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and drop the
//! `.wasm` into Berth's plugin directory.
//!
//! The SDK hides the WIT bindings (`wit/since_v0.2.0`), and carries the
//! mapping engine: Port's mapping YAML evaluated with Ocean's semantics
//! ([`mapping`]) and one JQ engine ([`jq::Filter`]) for mappings and
//! `berth jq` alike: jaq with jq 1.7 compatibility, accelerated by a native
//! fast path for the common expressions ([`fast`]), which shadow mode (debug
//! builds, `scripts/build-plugins --shadow`) checks against jaq on every
//! evaluation. Plugins never see credentials or the network; they read
//! other resources only through [`Cloud`], which the host performs in the
//! batch's own account and region and only for types the plugin declared
//! with [`Info::lookup`]. The conventions enriching plugins share (recording
//! failed lookups, completing list-only models, tags as an object, cutting a
//! kind's default mapping) live in [`enrich`].

pub mod enrich;
pub mod fast;
pub mod jq;
pub mod json_out;
pub mod mapping;
pub mod reads;
pub mod rewrite;
mod runtime;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.2.0",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_berth_plugin",
        default_bindings_module: "berth_plugin_sdk::bindings",
    });
}

pub use jq::Input;
pub use serde_json;

#[doc(hidden)]
pub use runtime::{describe, explain, map_batch, run_jq};

/// What a plugin declares about itself.
#[derive(Debug, Clone, Default)]
pub struct Info {
    pub name: String,
    pub version: String,
    pub kinds: Vec<String>,
    pub lookups: Vec<String>,
    pub default_mapping: Option<String>,
    pub blueprints: Vec<String>,
    /// Top-level fields enrichment adds, each with the lookup types it reads.
    pub fields: Vec<(String, Vec<String>)>,
}

impl Info {
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            ..Self::default()
        }
    }

    /// A kind this plugin handles (`*`: any kind no other plugin claims).
    pub fn kind(mut self, kind: &str) -> Self {
        self.kinds.push(kind.into());
        self
    }

    /// A Cloud Control type this plugin reads through [`Cloud`]. The host
    /// refuses reads of types not declared here.
    pub fn lookup(mut self, type_name: &str) -> Self {
        self.lookups.push(type_name.into());
        self
    }

    /// A top-level field [`Enricher::enrich`] adds to items (or changes), and the lookup
    /// types (each also declared with [`Info::lookup`]) it reads to fill it. A plugin that
    /// declares fields must declare every one it adds or changes: a batch whose mapping can
    /// read none of them is not enriched at all, and a lookup only unwanted fields need is
    /// refused ([`Cloud::wants`] says which are read). A plugin that declares no field is
    /// always enriched and may make any lookup it declared.
    pub fn field(mut self, name: &str, lookups: &[&str]) -> Self {
        self.fields.push((
            name.into(),
            lookups.iter().map(|t| (*t).to_string()).collect(),
        ));
        self
    }

    /// The default `resources:` YAML for this plugin's kinds.
    pub fn default_mapping(mut self, yaml: &str) -> Self {
        self.default_mapping = Some(yaml.into());
        self
    }

    /// A Port blueprint (JSON) the default mapping needs.
    pub fn blueprint(mut self, json: &str) -> Self {
        self.blueprints.push(json.into());
        self
    }
}

/// A kind plugin.
pub trait Plugin {
    fn info() -> Info;
}

/// A plugin that adds to raw items what their mapping should see. [`export_plugin!`] finds
/// the implementation by itself; a plugin without one hands items to the mapping as they
/// came, without parsing them.
pub trait Enricher: Plugin {
    /// Whether the raw item `item` needs [`Enricher::enrich`] in this batch, judged on the
    /// index the mapping reads too ([`Input::field`]). An item that does not goes to the
    /// mapping as the text it came as: neither parsed into a tree nor written again, which is
    /// most of what enrichment costs when it has nothing to add (an item whose model is
    /// already complete, say). Answer true when unsure; the default always does.
    fn needs(item: &Input<'_>, cloud: &Cloud) -> bool {
        let _ = (item, cloud);
        true
    }

    /// Runs before mapping, once per item (however many resource entries map it). An error
    /// fails only this item. Skip the lookups of fields `cloud` does not [`Cloud::wants`].
    fn enrich(item: &mut serde_json::Value, cloud: &Cloud) -> Result<(), String>;
}

/// [`Enricher::enrich`] of a plugin, as [`export_plugin!`] passes it on.
pub type EnrichFn = fn(&mut serde_json::Value, &Cloud) -> Result<(), String>;

/// A plugin's [`Enricher`], as [`export_plugin!`] passes it on.
#[derive(Clone, Copy)]
pub struct Enrich {
    pub needs: fn(&Input<'_>, &Cloud) -> bool,
    pub enrich: EnrichFn,
}

/// How [`export_plugin!`] tells, at compile time, whether a plugin implements [`Enricher`]:
/// method resolution prefers `ViaEnricher` (on `Probe<T>`, only where `T: Enricher`) over
/// `ViaPlugin` (on `&Probe<T>`, one autoref further), so no flag can disagree with the code.
#[doc(hidden)]
pub mod __private {
    use super::{Enrich, Enricher, Plugin};

    pub struct Probe<T>(pub core::marker::PhantomData<T>);

    pub trait ViaEnricher {
        fn enrich_fn(&self) -> Option<Enrich>;
    }

    impl<T: Enricher> ViaEnricher for Probe<T> {
        fn enrich_fn(&self) -> Option<Enrich> {
            Some(Enrich {
                needs: T::needs,
                enrich: T::enrich,
            })
        }
    }

    pub trait ViaPlugin {
        fn enrich_fn(&self) -> Option<Enrich>;
    }

    impl<T: Plugin> ViaPlugin for &Probe<T> {
        fn enrich_fn(&self) -> Option<Enrich> {
            None
        }
    }
}

/// A resource read through [`Cloud`].
#[derive(Debug, Clone)]
pub struct Resource {
    pub identifier: String,
    pub properties: serde_json::Value,
}

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    NotPermitted(String),
    AccessDenied(String),
    Throttled(String),
    InvalidRequest(String),
    TooLarge(String),
    Failed(String),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, m) = match self {
            LookupError::NotPermitted(m) => ("not permitted", m),
            LookupError::AccessDenied(m) => ("access denied", m),
            LookupError::Throttled(m) => ("throttled", m),
            LookupError::InvalidRequest(m) => ("invalid request", m),
            LookupError::TooLarge(m) => ("too large", m),
            LookupError::Failed(m) => ("failed", m),
        };
        write!(f, "lookup {what}: {m}")
    }
}

/// Read-only Cloud Control lookups in the account and region of the batch
/// being mapped, performed (and rate-limited, and cached) by the host.
pub struct Cloud {
    /// Fields some expression of the batch's mapping may read; `None`: every field (the
    /// plugin declares none, or an expression reads the item as a whole).
    wanted: Option<std::collections::BTreeSet<String>>,
    /// Lookup types the wanted fields need; `None`: any declared type.
    allowed: Option<std::collections::BTreeSet<String>>,
}

impl Cloud {
    /// Lookups for a batch whose mapping reads `reads` of the item, by a plugin declaring
    /// `fields`.
    pub(crate) fn new(fields: &[(String, Vec<String>)], reads: &reads::Reads) -> Self {
        let keys = match reads {
            reads::Reads::Keys(k) if !fields.is_empty() => k,
            _ => {
                return Self {
                    wanted: None,
                    allowed: None,
                };
            }
        };
        let wanted: std::collections::BTreeSet<String> = fields
            .iter()
            .filter(|(f, _)| keys.contains(f))
            .map(|(f, _)| f.clone())
            .chain(keys.iter().filter(|k| *k == enrich::ERRORS_KEY).cloned())
            .collect();
        let allowed = fields
            .iter()
            .filter(|(f, _)| wanted.contains(f) || wanted.contains(enrich::ERRORS_KEY))
            .flat_map(|(_, types)| types.iter().cloned())
            .collect();
        Self {
            wanted: Some(wanted),
            allowed: Some(allowed),
        }
    }

    /// Whether some expression of the batch's mapping may read the top-level item field
    /// `field` (always, for a plugin that declares no fields). `__EnrichmentErrors` is
    /// wanted when read, and then every declared field's lookups may run, so that the
    /// errors it lists are the same whatever else the mapping reads.
    pub fn wants(&self, field: &str) -> bool {
        match &self.wanted {
            None => true,
            Some(w) => w.contains(field) || w.contains(enrich::ERRORS_KEY),
        }
    }

    /// Whether the mapping may read any field enrichment adds: when not, enrichment cannot
    /// change what the mapping makes, and items go to it untouched and unparsed.
    pub(crate) fn wants_any(&self) -> bool {
        self.wanted.as_ref().is_none_or(|w| !w.is_empty())
    }

    fn check(&self, type_name: &str) -> Result<(), LookupError> {
        match &self.allowed {
            Some(a) if !a.contains(type_name) => Err(LookupError::NotPermitted(format!(
                "no field the mapping reads needs {type_name} (check Cloud::wants before a lookup)"
            ))),
            _ => Ok(()),
        }
    }

    /// One resource of `type_name` by identifier; `None` if it does not exist.
    pub fn get(&self, type_name: &str, identifier: &str) -> Result<Option<Resource>, LookupError> {
        self.check(type_name)?;
        bindings::berth::plugin::cloud::get_resource(type_name, identifier)
            .map_err(runtime::lookup_error)?
            .map(runtime::resource)
            .transpose()
    }

    /// Every resource of `type_name`; `model` narrows types that need one.
    pub fn list(
        &self,
        type_name: &str,
        model: Option<&serde_json::Value>,
    ) -> Result<Vec<Resource>, LookupError> {
        self.check(type_name)?;
        let model = model.map(|m| m.to_string());
        bindings::berth::plugin::cloud::list_resources(type_name, model.as_deref())
            .map_err(runtime::lookup_error)?
            .into_iter()
            .map(runtime::resource)
            .collect()
    }
}

/// Log lines into the host's log.
pub mod log {
    use crate::bindings::berth::plugin::log::{Level, log};

    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// Export `$plugin` (a type implementing [`Plugin`], and [`Enricher`] if it enriches) as this
/// component's `berth:plugin/mapper` implementation.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        struct __BerthGuest;

        impl $crate::bindings::exports::berth::plugin::mapper::Guest for __BerthGuest {
            fn describe() -> $crate::bindings::berth::plugin::types::PluginInfo {
                $crate::describe::<$plugin>()
            }

            fn map_batch(
                request: $crate::bindings::berth::plugin::types::BatchRequest,
            ) -> $crate::bindings::berth::plugin::types::BatchOutput {
                #[allow(unused_imports)]
                use $crate::__private::{ViaEnricher as _, ViaPlugin as _};
                let enrich =
                    (&$crate::__private::Probe::<$plugin>(::core::marker::PhantomData)).enrich_fn();
                $crate::map_batch::<$plugin>(request, enrich)
            }

            fn explain(
                mapping: ::std::string::String,
            ) -> ::core::result::Result<
                ::std::vec::Vec<$crate::bindings::berth::plugin::types::Explained>,
                $crate::bindings::berth::plugin::types::EntryError,
            > {
                $crate::explain(mapping)
            }

            fn run_jq(
                request: $crate::bindings::berth::plugin::types::JqRequest,
            ) -> ::core::result::Result<
                ::std::vec::Vec<$crate::bindings::berth::plugin::types::JqOutput>,
                $crate::bindings::berth::plugin::types::JqError,
            > {
                $crate::run_jq(request)
            }
        }

        $crate::bindings::__export_berth_plugin!(__BerthGuest with_types_in $crate::bindings);
    };
}
