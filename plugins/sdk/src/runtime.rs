//! Glue between the WIT exports and a [`Plugin`]: kind checks, the per-instance
//! cache of compiled mappings, enrichment, and conversion to WIT types.
//! Must not hold anything across tenants: the host gives each tenant its own
//! instances, and this cache lives in the instance.

use std::cell::RefCell;

use crate::bindings::berth::plugin::cloud as wit_cloud;
use crate::bindings::berth::plugin::types as wit;
use crate::jq::{self, Program};
use crate::json_out;
use crate::mapping::{ItemError, Mapping, MappingError};
use crate::rewrite::ocean_format_filter;
use crate::{Cloud, LookupError, Plugin, Resource};

/// Compiled mappings kept per instance; a tenant's mapping rarely changes,
/// and compiling jaq filters costs milliseconds.
const MAPPING_CACHE: usize = 16;

/// Most outputs `run-jq` returns for one input, so that an endless
/// generator ends instead of filling memory.
const MAX_JQ_OUTPUTS: usize = 100_000;

thread_local! {
    static MAPPINGS: RefCell<Vec<(String, std::rc::Rc<Mapping>)>> = const { RefCell::new(Vec::new()) };
}

fn compiled(resource: &str) -> Result<std::rc::Rc<Mapping>, MappingError> {
    if let Some(m) = MAPPINGS.with(|c| {
        c.borrow()
            .iter()
            .find(|(k, _)| k == resource)
            .map(|(_, m)| m.clone())
    }) {
        return Ok(m);
    }
    let m = std::rc::Rc::new(Mapping::compile(resource)?);
    MAPPINGS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= MAPPING_CACHE {
            c.remove(0);
        }
        c.push((resource.to_string(), m.clone()));
    });
    Ok(m)
}

/// How the panic line the SDK logs begins. The host looks for it to say why a call trapped
/// (a Rust panic in wasm is an `unreachable` trap, which carries no message).
pub const PANIC_PREFIX: &str = "panicked at ";

/// Sends every panic's message and location through the `log` import, once per instance.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = info
                .payload_as_str()
                .unwrap_or("(a panic without a text message)");
            let at = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_else(|| "an unknown location".into());
            crate::log::error(&format!("{PANIC_PREFIX}{at}: {message}"));
        }));
    });
}

pub fn describe<P: Plugin>() -> wit::PluginInfo {
    install_panic_hook();
    let info = P::info();
    let mut capabilities = vec![wit::Capability::Log];
    capabilities.extend(info.lookups.into_iter().map(wit::Capability::CloudLookup));
    wit::PluginInfo {
        name: info.name,
        version: info.version,
        kinds: info.kinds,
        capabilities,
        default_mapping: info.default_mapping,
        blueprints: info.blueprints,
    }
}

fn handles<P: Plugin>(kind: &str) -> bool {
    P::info().kinds.iter().any(|k| k == kind || k == "*")
}

pub fn map_batch<P: Plugin>(
    req: wit::BatchRequest,
    enrich: Option<crate::EnrichFn>,
) -> Result<Vec<Result<wit::ItemOutput, wit::ItemError>>, wit::BatchError> {
    install_panic_hook();
    if !handles::<P>(&req.kind) {
        return Err(wit::BatchError::UnsupportedKind(req.kind));
    }
    let mapping = compiled(&req.mapping).map_err(|e| match e {
        MappingError::Invalid(m) => wit::BatchError::InvalidMapping(m),
        MappingError::Jq {
            field,
            expression,
            message,
            position,
        } => wit::BatchError::InvalidJq(wit::JqError {
            field,
            expression,
            message,
            position,
        }),
    })?;
    if mapping.kind() != req.kind {
        return Err(wit::BatchError::InvalidMapping(format!(
            "the resource entry is for kind {}, the batch is {}",
            mapping.kind(),
            req.kind
        )));
    }
    let cloud = Cloud::new();
    Ok(req
        .items
        .iter()
        .map(|text| {
            let enriched;
            let text = if let Some(enrich) = enrich {
                let mut v: serde_json::Value = serde_json::from_str(text)
                    .map_err(|e| wit::ItemError::InvalidItem(e.to_string()))?;
                enrich(&mut v, &cloud).map_err(wit::ItemError::Enrichment)?;
                enriched = v.to_string();
                &enriched[..]
            } else {
                &text[..]
            };
            mapping
                .map_item(text)
                .map(|o| wit::ItemOutput {
                    entities: o.entities,
                    filtered_out: o.filtered_out,
                    skipped: o.skipped,
                    misconfigured: o
                        .misconfigured
                        .into_iter()
                        .map(|m| wit::Misconfiguration {
                            field: m.field,
                            expression: m.expression,
                            message: m.message,
                        })
                        .collect(),
                })
                .map_err(|e| match e {
                    ItemError::InvalidItem(m) => wit::ItemError::InvalidItem(m),
                    ItemError::Selector(m) => wit::ItemError::Selector(m),
                    ItemError::ItemsToParse(m) => wit::ItemError::ItemsToParse(m),
                    ItemError::Entity(m) => {
                        wit::ItemError::InvalidItem(format!("invalid entity: {m}"))
                    }
                })
        })
        .collect())
}

pub fn run_jq(req: wit::JqRequest) -> Result<Vec<wit::JqOutput>, wit::JqError> {
    install_panic_hook();
    let names: Vec<String> = req.vars.iter().map(|(k, _)| k.clone()).collect();
    let jq_err = |message: String, position| wit::JqError {
        field: String::new(),
        expression: req.filter.clone(),
        message,
        position,
    };
    let mut values = Vec::with_capacity(req.vars.len());
    for (name, json) in &req.vars {
        values.push(
            jq::parse_json(json).map_err(|e| jq_err(format!("variable ${name}: {e}"), None))?,
        );
    }
    let code = ocean_format_filter(&req.filter);
    let program =
        Program::compile_with_vars(&code, &names).map_err(|e| jq_err(e.message, e.position))?;
    let run = |input, out: &mut Vec<wit::JqOutput>| {
        for r in program.all(input, &values, MAX_JQ_OUTPUTS) {
            out.push(match r {
                Ok(v) => wit::JqOutput::Value(json_out::to_json(&v)),
                Err(e) => wit::JqOutput::Error(e),
            });
        }
    };
    let mut out = Vec::new();
    if req.null_input {
        run(jaq_json::Val::Null, &mut out);
    } else {
        for text in &req.inputs {
            match jq::parse_json(text) {
                Ok(v) => run(v, &mut out),
                Err(e) => out.push(wit::JqOutput::Error(format!("invalid JSON input: {e}"))),
            }
        }
    }
    Ok(out)
}

pub(crate) fn lookup_error(e: wit_cloud::LookupError) -> LookupError {
    match e {
        wit_cloud::LookupError::NotPermitted(m) => LookupError::NotPermitted(m),
        wit_cloud::LookupError::AccessDenied(m) => LookupError::AccessDenied(m),
        wit_cloud::LookupError::Throttled(m) => LookupError::Throttled(m),
        wit_cloud::LookupError::InvalidRequest(m) => LookupError::InvalidRequest(m),
        wit_cloud::LookupError::TooLarge(m) => LookupError::TooLarge(m),
        wit_cloud::LookupError::Failed(m) => LookupError::Failed(m),
    }
}

pub(crate) fn resource(r: wit_cloud::CloudResource) -> Result<Resource, LookupError> {
    Ok(Resource {
        identifier: r.identifier,
        properties: serde_json::from_str(&r.properties)
            .map_err(|e| LookupError::Failed(format!("host sent invalid JSON: {e}")))?,
    })
}
