//! ECS services, enriched with their task definition and their cluster's
//! ARN, read through the host's Cloud Control lookup in the service's own
//! account and region.
//!
//! When an item's `Properties` is only what Cloud Control's list handler
//! returns (`ServiceArn` and `Cluster`), the plugin reads the full model by
//! the item's `ServiceArn|Cluster` identifier and adds its properties to
//! `Properties`, keeping every raw key as it was. It adds:
//!
//! - `__TaskDefinition`: the model of the task definition the service runs
//!   (null when it has none, it no longer exists, or it could not be read);
//! - `__ClusterArn`: the cluster's ARN even when `Cluster` holds only its
//!   name, so a mapping can relate the service to the cluster entity (whose
//!   default identifier is the cluster ARN);
//! - `__Tags`: the service's tags as `{Key: Value}` (null when the model
//!   could not be read).
//!
//! Owns only enriching and mapping service items. Must not list services
//! (discovery does, cluster by cluster) nor read anything but the declared
//! ECS types.
//!
//! Enrichment is extra data: when the cloud cannot answer (access denied,
//! offline, no account or region on the item, a failure after the host's
//! retries) the item still maps, the fields it could not read are null, and
//! `__EnrichmentErrors` lists why, so a mapping can surface it. A lookup the
//! plugin was not permitted to make is a bug and fails the item.

use berth_plugin_sdk::serde_json::{Map, Value};
use berth_plugin_sdk::{Cloud, Info, LookupError, Plugin, Resource, log};

const SERVICE: &str = "AWS::ECS::Service";
const TASK_DEFINITION: &str = "AWS::ECS::TaskDefinition";

/// What Cloud Control's list handler returns: the primary identifiers.
const LIST_ONLY: &[&str] = &["ServiceArn", "Cluster"];

struct EcsService;

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

/// Reads the service's full model when `Properties` is only what the list
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
            errors.push("Properties is not a JSON object; the service's model was not read".into());
            return Ok(false);
        }
    }
    let Some(id) = item
        .get("Identifier")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        errors.push(format!("the item has no Identifier to read {SERVICE} by").into());
        return Ok(false);
    };
    let full = match get(cloud, SERVICE, &id, errors)? {
        Some(Value::Object(full)) => full,
        Some(_) => return Ok(false),
        None => {
            let region = item
                .get("__Region")
                .and_then(Value::as_str)
                .unwrap_or("this region");
            errors.push(format!("{SERVICE} {id}: not found in {region}").into());
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

/// The cluster's ARN: `Cluster` itself when it is one, else built from the
/// service ARN's partition, region and account
/// (`arn:aws:ecs:REGION:ACCOUNT:service/...` → `...:cluster/NAME`), which
/// are the cluster's too.
fn cluster_arn(cluster: &str, service_arn: Option<&str>) -> Option<String> {
    if cluster.starts_with("arn:") {
        return Some(cluster.to_string());
    }
    let (prefix, _) = service_arn?.split_once(":service/")?;
    Some(format!("{prefix}:cluster/{cluster}"))
}

impl Plugin for EcsService {
    const ENRICHES: bool = true;

    fn info() -> Info {
        Info::new("ecs-service", env!("CARGO_PKG_VERSION"))
            .kind(SERVICE)
            .lookup(SERVICE)
            .lookup(TASK_DEFINITION)
    }

    fn enrich(item: &mut Value, cloud: &Cloud) -> Result<(), String> {
        let obj = item
            .as_object_mut()
            .ok_or_else(|| "raw item is not an object".to_string())?;
        let mut errors = Vec::new();
        let full = complete(obj, cloud, &mut errors)?;
        let props = obj.get("Properties").cloned().unwrap_or(Value::Null);
        let str_at = |k: &str| props.get(k).and_then(Value::as_str);

        let tags = if full {
            tags_object(&props, &mut errors)
        } else {
            Value::Null
        };
        let task_definition = match str_at("TaskDefinition") {
            Some(arn) => get(cloud, TASK_DEFINITION, arn, &mut errors)?.unwrap_or(Value::Null),
            None => Value::Null,
        };
        let cluster = str_at("Cluster").and_then(|c| cluster_arn(c, str_at("ServiceArn")));

        obj.insert("__TaskDefinition".into(), task_definition);
        obj.insert(
            "__ClusterArn".into(),
            cluster.map_or(Value::Null, Value::String),
        );
        obj.insert("__Tags".into(), tags);
        if !errors.is_empty() {
            obj.insert("__EnrichmentErrors".into(), Value::Array(errors));
        }
        Ok(())
    }
}

berth_plugin_sdk::export_plugin!(EcsService);
