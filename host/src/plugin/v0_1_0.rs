//! Bindings for the frozen plugin API `berth:plugin@0.1.0` (`wit/since_v0.1.0`), its
//! imports (through [`super::imports`]), and the adapter that serves today's calls with it.
//!
//! A 0.1.0 plugin maps one resource entry per call and returns entities as JSON texts, so
//! [`map_batch`] calls it once per entry and reads each entity's blueprint, identifier and
//! relation targets out of its JSON; the results have the shape of the current API
//! ([`super::v0_2_0`]), so nothing past the plugin host knows which version a plugin speaks.
//! This module stays as it is so that plugins built against 0.1.0 keep loading.

use super::imports::{impl_berth_imports, lookup_error};
use super::v0_2_0::types as cur;

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

impl_berth_imports!(self::berth::plugin);

/// The 0.1.0 request for one entry of `req`. Items are copied per entry: only old plugins
/// pay that.
pub fn request(req: &cur::BatchRequest, entry: &cur::Entry) -> types::BatchRequest {
    types::BatchRequest {
        kind: req.kind.clone(),
        resource_index: entry.index,
        mapping: entry.mapping.clone(),
        items: req.items.clone(),
    }
}

/// One entry's 0.1.0 answer in the current shape.
pub fn entry_result(
    r: Result<Vec<Result<types::ItemOutput, types::ItemError>>, types::BatchError>,
) -> Result<Vec<Result<cur::EntryOutput, cur::ItemError>>, cur::EntryError> {
    match r {
        Err(e) => Err(match e {
            types::BatchError::InvalidMapping(m) => cur::EntryError::InvalidMapping(m),
            types::BatchError::UnsupportedKind(k) => cur::EntryError::UnsupportedKind(k),
            types::BatchError::InvalidJq(j) => cur::EntryError::InvalidJq(cur::JqError {
                field: j.field,
                expression: j.expression,
                message: j.message,
                position: j.position,
            }),
        }),
        Ok(items) => Ok(items
            .into_iter()
            .map(|r| match r {
                Ok(o) => Ok(cur::EntryOutput {
                    entities: o.entities.into_iter().map(entity).collect(),
                    filtered_out: o.filtered_out,
                    skipped: o.skipped,
                    misconfigured: o
                        .misconfigured
                        .into_iter()
                        .map(|m| cur::Misconfiguration {
                            field: m.field,
                            expression: m.expression,
                            message: m.message,
                        })
                        .collect(),
                }),
                Err(e) => Err(match e {
                    types::ItemError::InvalidItem(m) => cur::ItemError::InvalidItem(m),
                    types::ItemError::Selector(m) => cur::ItemError::Selector(m),
                    types::ItemError::ItemsToParse(m) => cur::ItemError::ItemsToParse(m),
                    types::ItemError::Enrichment(m) => cur::ItemError::Enrichment(m),
                }),
            })
            .collect()),
    }
}

/// An entity record from a 0.1.0 entity's JSON text, read as `berth push` reads an entity
/// line ([`crate::catalog::port::Entity::from_value`]): the body loses its `blueprint` as 0.2.0 plugins
/// make it. Text that is not an object with a string blueprint keeps an empty blueprint,
/// which the catalog side refuses like any entity without one.
fn entity(text: String) -> cur::Entity {
    let record = serde_json::from_str(&text)
        .map_err(|e| e.to_string())
        .and_then(|v| crate::catalog::port::Entity::from_value(&v));
    match record {
        Ok(e) => cur::Entity {
            blueprint: e.blueprint,
            identifier: e.identifier,
            relation_targets: e.relation_targets,
            body: e.body,
        },
        Err(_) => cur::Entity {
            blueprint: String::new(),
            identifier: String::new(),
            relation_targets: Vec::new(),
            body: text,
        },
    }
}

/// What a 0.1.0 plugin says about itself, in the current shape (it declares no enrichment
/// fields, so every lookup it makes is allowed).
pub fn info(i: types::PluginInfo) -> cur::PluginInfo {
    cur::PluginInfo {
        name: i.name,
        version: i.version,
        kinds: i.kinds,
        capabilities: i
            .capabilities
            .into_iter()
            .map(|c| match c {
                types::Capability::Log => cur::Capability::Log,
                types::Capability::CloudLookup(t) => cur::Capability::CloudLookup(t),
            })
            .collect(),
        default_mapping: i.default_mapping,
        blueprints: i.blueprints,
        enrichments: Vec::new(),
    }
}

pub fn jq_request(r: &cur::JqRequest) -> types::JqRequest {
    types::JqRequest {
        filter: r.filter.clone(),
        inputs: r.inputs.clone(),
        null_input: r.null_input,
        vars: r.vars.clone(),
    }
}

pub fn jq_result(
    r: Result<Vec<types::JqOutput>, types::JqError>,
) -> Result<Vec<cur::JqOutput>, cur::JqError> {
    match r {
        Ok(out) => Ok(out
            .into_iter()
            .map(|o| match o {
                types::JqOutput::Value(v) => cur::JqOutput::Value(v),
                types::JqOutput::Error(e) => cur::JqOutput::Error(e),
            })
            .collect()),
        Err(j) => Err(cur::JqError {
            field: j.field,
            expression: j.expression,
            message: j.message,
            position: j.position,
        }),
    }
}
