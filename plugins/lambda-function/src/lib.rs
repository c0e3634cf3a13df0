//! Lambda functions: completes each function's model and adds its tags as
//! an object, read through the host's Cloud Control lookup in the function's
//! own account and region.
//!
//! Cloud Control lists functions with only `FunctionName`; when an item's
//! `Properties` is that list shape, the plugin reads the full model and adds
//! its properties to `Properties`, keeping every raw key as it was, so the
//! product's default mapping (`.Properties.Runtime`, `.Properties.MemorySize`,
//! `.Properties.Timeout`, `.Properties.Arn`, `.Properties.Tags`) maps
//! unchanged. It adds `__Tags`, the function's tags as `{Key: Value}` (null
//! when the model could not be read).
//!
//! Owns only enriching and mapping function items. Must not read anything
//! but `AWS::Lambda::Function` (not the function's code, role or
//! environment's secrets beyond what the model already carries).
//!
//! Enrichment is extra data: when the cloud cannot answer (access denied,
//! offline, no account or region on the item, a failure after the host's
//! retries) the item still maps, the fields it could not read are null, and
//! `__EnrichmentErrors` lists why, so a mapping can surface it. A lookup the
//! plugin was not permitted to make is a bug and fails the item.

use berth_plugin_sdk::serde_json::{Map, Value};
use berth_plugin_sdk::{Cloud, Info, LookupError, Plugin, Resource, log};

const FUNCTION: &str = "AWS::Lambda::Function";

/// What Cloud Control's list handler returns: the primary identifier.
const LIST_ONLY: &[&str] = &["FunctionName"];

const DEFAULT_MAPPING: &str = include_str!("../../../mappings/default.yaml");

struct LambdaFunction;

/// `kind`'s entry of the product's default mapping, cut from the same file
/// the generic plugin ships so the two cannot drift apart.
fn default_entry(kind: &str) -> String {
    let head = format!("- kind: {kind}");
    let mut lines = DEFAULT_MAPPING.lines().skip_while(|l| l.trim_end() != head);
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("mappings/default.yaml has no entry for {kind}"));
    let mut out = format!("resources:\n{first}\n");
    for l in lines.take_while(|l| !l.starts_with('-')) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// Records a failed lookup on the item, or fails the item when the plugin
/// was not permitted to make it (a bug in the plugin, not in the cloud).
fn failed(what: String, e: LookupError, errors: &mut Vec<Value>) -> Result<(), String> {
    if let LookupError::NotPermitted(_) = e {
        return Err(format!("{what}: {e}"));
    }
    let m = format!("{what}: {e}");
    log::debug(&m);
    errors.push(Value::String(m));
    Ok(())
}

/// One resource's properties by identifier: `Some(model)` when read, `None`
/// when it does not exist, `Some(null)` when the read failed (recorded).
fn get(
    cloud: &Cloud,
    type_name: &str,
    id: &str,
    errors: &mut Vec<Value>,
) -> Result<Option<Value>, String> {
    match cloud.get(type_name, id) {
        Ok(Some(Resource {
            properties: p @ Value::Object(_),
            ..
        })) => Ok(Some(p)),
        Ok(Some(_)) => {
            errors.push(
                format!(
                    "{type_name} {id}: the lookup answered properties that are not a JSON object"
                )
                .into(),
            );
            Ok(Some(Value::Null))
        }
        Ok(None) => Ok(None),
        Err(e) => failed(format!("{type_name} {id}"), e, errors).map(|()| Some(Value::Null)),
    }
}

/// Reads the function's full model when `Properties` is only what the list
/// handler returns and adds it to `Properties` (raw keys win). True when the
/// item now carries the full model.
fn complete(
    item: &mut Map<String, Value>,
    cloud: &Cloud,
    errors: &mut Vec<Value>,
) -> Result<bool, String> {
    match item.get("Properties") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) if p.keys().all(|k| LIST_ONLY.contains(&k.as_str())) => {}
        Some(Value::Object(_)) => return Ok(true),
        Some(_) => {
            errors
                .push("Properties is not a JSON object; the function's model was not read".into());
            return Ok(false);
        }
    }
    let Some(id) = item
        .get("Identifier")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        errors.push(format!("the item has no Identifier to read {FUNCTION} by").into());
        return Ok(false);
    };
    let full = match get(cloud, FUNCTION, &id, errors)? {
        Some(Value::Object(full)) => full,
        Some(_) => return Ok(false),
        None => {
            let region = item
                .get("__Region")
                .and_then(Value::as_str)
                .unwrap_or("this region");
            errors.push(format!("{FUNCTION} {id}: not found in {region}").into());
            return Ok(false);
        }
    };
    let props = item
        .entry("Properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if props.is_null() {
        *props = Value::Object(Map::new());
    }
    if let Value::Object(props) = props {
        for (k, v) in full {
            props.entry(k).or_insert(v);
        }
    }
    Ok(true)
}

/// CloudFormation's `[{Key, Value}]` as `{Key: Value}`, so a mapping can say
/// `.__Tags.team`. No `Tags` in a full model means no tags.
fn tags_object(props: &Value, errors: &mut Vec<Value>) -> Value {
    let Some(tags) = props.get("Tags") else {
        return Value::Object(Map::new());
    };
    let Some(tags) = tags.as_array() else {
        errors.push("Properties.Tags is not a list of {Key, Value}".into());
        return Value::Null;
    };
    let mut out = Map::new();
    for (i, t) in tags.iter().enumerate() {
        match t.get("Key").and_then(Value::as_str) {
            Some(k) => {
                out.insert(k.into(), t.get("Value").cloned().unwrap_or(Value::Null));
            }
            None => errors.push(format!("Properties.Tags[{i}] has no string Key").into()),
        }
    }
    Value::Object(out)
}

impl Plugin for LambdaFunction {
    const ENRICHES: bool = true;

    fn info() -> Info {
        Info::new("lambda-function", env!("CARGO_PKG_VERSION"))
            .kind(FUNCTION)
            .lookup(FUNCTION)
            .default_mapping(&default_entry(FUNCTION))
            .blueprint(include_str!(
                "../../../mappings/blueprints/cloudResource.json"
            ))
            .blueprint(include_str!("../../../mappings/blueprints/awsAccount.json"))
    }

    fn enrich(item: &mut Value, cloud: &Cloud) -> Result<(), String> {
        let obj = item
            .as_object_mut()
            .ok_or_else(|| "raw item is not an object".to_string())?;
        let mut errors = Vec::new();
        let tags = if complete(obj, cloud, &mut errors)? {
            tags_object(obj.get("Properties").unwrap_or(&Value::Null), &mut errors)
        } else {
            Value::Null
        };
        obj.insert("__Tags".into(), tags);
        if !errors.is_empty() {
            obj.insert("__EnrichmentErrors".into(), Value::Array(errors));
        }
        Ok(())
    }
}

berth_plugin_sdk::export_plugin!(LambdaFunction);
