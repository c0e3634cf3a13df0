//! Glue between the WIT exports and a [`Plugin`]: kind checks, the per-instance
//! cache of compiled mappings, enrichment, and conversion to WIT types.
//! Must not hold anything across tenants: the host gives each tenant its own
//! instances, and this cache lives in the instance.

use std::cell::RefCell;
use std::rc::Rc;

use crate::bindings::berth::plugin::cloud as wit_cloud;
use crate::bindings::berth::plugin::types as wit;
use crate::jq;
use crate::mapping::{self, ItemError, Mapping, MappingError};
use crate::reads::{self, Reads};
use crate::rewrite::ocean_format_filter;
use crate::{Cloud, Info, LookupError, Plugin, Resource};

/// Compiled mappings kept per instance; a tenant's mapping rarely changes,
/// and compiling jaq filters costs milliseconds.
const MAPPING_CACHE: usize = 16;

/// Most outputs `run-jq` returns for one input, so that an endless
/// generator ends instead of filling memory.
const MAX_JQ_OUTPUTS: usize = 100_000;

/// A resource entry compiled, with the top-level item fields its expressions may read.
pub(crate) struct Compiled {
    pub mapping: Mapping,
    pub reads: Reads,
}

thread_local! {
    static MAPPINGS: RefCell<Vec<(String, Rc<Compiled>)>> = const { RefCell::new(Vec::new()) };
    static INFO: std::cell::OnceCell<Info> = const { std::cell::OnceCell::new() };
}

fn compiled(resource: &str) -> Result<Rc<Compiled>, MappingError> {
    if let Some(m) = MAPPINGS.with(|c| {
        c.borrow()
            .iter()
            .find(|(k, _)| k == resource)
            .map(|(_, m)| m.clone())
    }) {
        return Ok(m);
    }
    let mapping = Mapping::compile(resource)?;
    let reads = mapping
        .explain()
        .iter()
        .map(|e| reads::reads(&ocean_format_filter(&e.expression)))
        .fold(Reads::Keys(Default::default()), Reads::union);
    let m = Rc::new(Compiled { mapping, reads });
    MAPPINGS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= MAPPING_CACHE {
            c.remove(0);
        }
        c.push((resource.to_string(), m.clone()));
    });
    Ok(m)
}

/// The plugin's [`Info`], built once per instance (it carries the default mapping's text).
fn info<P: Plugin>() -> Info {
    INFO.with(|i| i.get_or_init(P::info).clone())
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
    let info = info::<P>();
    let mut capabilities = vec![wit::Capability::Log];
    capabilities.extend(info.lookups.into_iter().map(wit::Capability::CloudLookup));
    wit::PluginInfo {
        name: info.name,
        version: info.version,
        kinds: info.kinds,
        capabilities,
        default_mapping: info.default_mapping,
        blueprints: info.blueprints,
        enrichments: info
            .fields
            .into_iter()
            .map(|(field, lookups)| wit::Enrichment { field, lookups })
            .collect(),
    }
}

fn entry_error(e: MappingError) -> wit::EntryError {
    match e {
        MappingError::Invalid(m) => wit::EntryError::InvalidMapping(m),
        MappingError::Jq {
            field,
            expression,
            message,
            position,
        } => wit::EntryError::InvalidJq(wit::JqError {
            field,
            expression,
            message,
            position,
        }),
    }
}

fn item_error(e: ItemError) -> wit::ItemError {
    match e {
        ItemError::InvalidItem(m) => wit::ItemError::InvalidItem(m),
        ItemError::Selector(m) => wit::ItemError::Selector(m),
        ItemError::ItemsToParse(m) => wit::ItemError::ItemsToParse(m),
        ItemError::Entity(m) => wit::ItemError::InvalidItem(format!("invalid entity: {m}")),
    }
}

fn entry_output(o: mapping::ItemOutput) -> wit::EntryOutput {
    wit::EntryOutput {
        entities: o
            .entities
            .into_iter()
            .map(|e| wit::Entity {
                blueprint: e.blueprint,
                identifier: e.identifier,
                relation_targets: e.relation_targets,
                body: e.body,
            })
            .collect(),
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
    }
}

/// Enriches each item once and maps it with every entry of the request, parsing it once
/// for all of them.
pub fn map_batch<P: Plugin>(
    req: wit::BatchRequest,
    enrich: Option<crate::Enrich>,
) -> wit::BatchOutput {
    install_panic_hook();
    let info = info::<P>();
    let handles = info.kinds.iter().any(|k| *k == req.kind || k == "*");
    let entries: Vec<Result<Rc<Compiled>, wit::EntryError>> = req
        .entries
        .iter()
        .map(|e| {
            if !handles {
                return Err(wit::EntryError::UnsupportedKind(req.kind.clone()));
            }
            let c = compiled(&e.mapping).map_err(entry_error)?;
            if c.mapping.kind() != req.kind {
                return Err(wit::EntryError::InvalidMapping(format!(
                    "the resource entry is for kind {}, the batch is {}",
                    c.mapping.kind(),
                    req.kind
                )));
            }
            Ok(c)
        })
        .collect();
    let reads = entries
        .iter()
        .flatten()
        .fold(Reads::Keys(Default::default()), |r, c| {
            r.union(c.reads.clone())
        });
    let cloud = Cloud::new(&info.fields, &reads);
    let mapped = entries.iter().any(Result::is_ok);
    let mut out: Vec<Result<Vec<_>, wit::EntryError>> = entries
        .iter()
        .map(|e| match e {
            Ok(_) => Ok(Vec::with_capacity(req.items.len())),
            Err(e) => Err(e.clone()),
        })
        .collect();
    let fail = |out: &mut Vec<Result<Vec<_>, wit::EntryError>>, e: wit::ItemError| {
        for o in out.iter_mut().flatten() {
            o.push(Err(e.clone()));
        }
    };
    for text in &req.items {
        if !mapped {
            break;
        }
        let input = match jq::Input::new(text) {
            Ok(i) => i,
            Err(e) => {
                fail(&mut out, wit::ItemError::InvalidItem(e));
                continue;
            }
        };
        let enriched;
        let input = match enrich.filter(|e| cloud.wants_any() && (e.needs)(&input, &cloud)) {
            None => input,
            Some(crate::Enrich { enrich, .. }) => {
                let mut v: serde_json::Value = match serde_json::from_str(text) {
                    Ok(v) => v,
                    Err(e) => {
                        fail(&mut out, wit::ItemError::InvalidItem(e.to_string()));
                        continue;
                    }
                };
                if let Err(e) = enrich(&mut v, &cloud) {
                    fail(&mut out, wit::ItemError::Enrichment(e));
                    continue;
                }
                enriched = v.to_string();
                match jq::Input::new(&enriched) {
                    Ok(i) => i,
                    Err(e) => {
                        fail(&mut out, wit::ItemError::InvalidItem(e));
                        continue;
                    }
                }
            }
        };
        for (entry, o) in entries.iter().zip(out.iter_mut()) {
            if let (Ok(c), Ok(o)) = (entry, o) {
                o.push(
                    c.mapping
                        .map_input(&input)
                        .map(entry_output)
                        .map_err(item_error),
                );
            }
        }
    }
    out
}

/// Which evaluator runs each expression of a resource entry (JSON).
pub fn explain(mapping: String) -> Result<Vec<wit::Explained>, wit::EntryError> {
    install_panic_hook();
    let m = Mapping::compile(&mapping).map_err(entry_error)?;
    Ok(m.explain()
        .into_iter()
        .map(|e| wit::Explained {
            field: e.field,
            expression: e.expression,
            engine: e.engine.to_string(),
            why: e.why,
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
    // The same engine as mappings: the fast path where the filter and the
    // input allow, jaq otherwise.
    let filter =
        jq::Filter::compile_with_vars(&code, &names).map_err(|e| jq_err(e.message, e.position))?;
    let run = |input: &jq::Input<'_>, out: &mut Vec<wit::JqOutput>| {
        for r in filter.all(input, &values, MAX_JQ_OUTPUTS) {
            out.push(match r {
                Ok(json) => wit::JqOutput::Value(json),
                Err(e) => wit::JqOutput::Error(e),
            });
        }
    };
    let mut out = Vec::new();
    if req.null_input {
        run(&jq::Input::null(), &mut out);
    } else {
        for text in &req.inputs {
            match jq::Input::any(text) {
                Ok(input) => run(&input, &mut out),
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
