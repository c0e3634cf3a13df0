//! ECS clusters, enriched with their services and those services' task
//! definitions, read through the host's Cloud Control lookup in the
//! cluster's own account and region.
//!
//! When an item's `Properties` is only what Cloud Control's list handler
//! returns (`ClusterName`), the plugin reads the full model and adds its
//! properties to `Properties`, keeping every raw key as it was, so the
//! product's default mapping (`.Properties.Arn`, `.Properties.Tags`) maps
//! unchanged. It adds:
//!
//! - `__Tags`: the cluster's tags as `{Key: Value}` (null when the model
//!   could not be read);
//! - `__ServiceCount`: how many services the cluster has;
//! - `__Services`: the services' full models, ordered by identifier, at most
//!   [`MAX_SERVICES`] of them (so one huge cluster cannot turn a sync into
//!   thousands of reads; compare with `__ServiceCount` to see truncation);
//!   a service that could not be read is null, one deleted since it was
//!   listed is left out;
//! - `__TaskDefinitions`: `{task definition ARN: model}` for the distinct
//!   task definitions those services run (null when it no longer exists).
//!
//! Owns only enriching and mapping cluster items. Must not read anything but
//! the declared ECS types, nor map services or task definitions as entities
//! of their own (that is the `AWS::ECS::Service` kind's plugin).
//!
//! Enrichment is extra data: when the cloud cannot answer (access denied,
//! offline, no account or region on the item, a failure after the host's
//! retries) the item still maps, the fields it could not read are null, and
//! `__EnrichmentErrors` lists why, so a mapping can surface it. A lookup the
//! plugin was not permitted to make is a bug and fails the item.

use berth_plugin_sdk::serde_json::{Map, Value, json};
use berth_plugin_sdk::{Cloud, Info, LookupError, Plugin, Resource, log};

const CLUSTER: &str = "AWS::ECS::Cluster";
const SERVICE: &str = "AWS::ECS::Service";
const TASK_DEFINITION: &str = "AWS::ECS::TaskDefinition";

/// What Cloud Control's list handlers return: the primary identifiers.
const CLUSTER_LIST_ONLY: &[&str] = &["ClusterName"];
const SERVICE_LIST_ONLY: &[&str] = &["ServiceArn", "Cluster"];

/// Services read per cluster. Each costs one read (plus one per distinct
/// task definition); the host rate-limits them, so a bound keeps one large
/// cluster from starving the rest of the sync.
pub const MAX_SERVICES: usize = 50;

const DEFAULT_MAPPING: &str = include_str!("../../../mappings/default.yaml");

struct EcsCluster;

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

/// Whether `props` holds no more than the list handler's identifier keys.
fn is_list_only(props: &Value, keys: &[&str]) -> bool {
    props
        .as_object()
        .is_none_or(|p| p.keys().all(|k| keys.contains(&k.as_str())))
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

/// Reads the cluster's full model when `Properties` is only what the list
/// handler returns and adds it to `Properties` (raw keys win). True when the
/// item now carries the full model.
fn complete(
    item: &mut Map<String, Value>,
    cloud: &Cloud,
    errors: &mut Vec<Value>,
) -> Result<bool, String> {
    match item.get("Properties") {
        None | Some(Value::Null) => {}
        Some(p @ Value::Object(_)) if is_list_only(p, CLUSTER_LIST_ONLY) => {}
        Some(Value::Object(_)) => return Ok(true),
        Some(_) => {
            errors.push("Properties is not a JSON object; the cluster's model was not read".into());
            return Ok(false);
        }
    }
    let Some(id) = item
        .get("Identifier")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        errors.push(format!("the item has no Identifier to read {CLUSTER} by").into());
        return Ok(false);
    };
    let full = match get(cloud, CLUSTER, &id, errors)? {
        Some(Value::Object(full)) => full,
        Some(_) => return Ok(false),
        None => {
            let region = item
                .get("__Region")
                .and_then(Value::as_str)
                .unwrap_or("this region");
            errors.push(format!("{CLUSTER} {id}: not found in {region}").into());
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

/// Whether a service's `Cluster` (a name or an ARN `...:cluster/NAME`) is
/// the cluster called `name`.
fn names_cluster(reference: &str, name: &str) -> bool {
    reference.rsplit('/').next() == Some(name)
}

/// The cluster of a listed service: its `Cluster` property, else the part
/// of the `ServiceArn|Cluster` identifier after the bar.
fn cluster_of(r: &Resource) -> Option<&str> {
    r.properties
        .get("Cluster")
        .and_then(Value::as_str)
        .or_else(|| r.identifier.split_once('|').map(|(_, c)| c))
}

/// The cluster's services and their task definitions:
/// `(__ServiceCount, __Services, __TaskDefinitions)`.
fn services(
    cloud: &Cloud,
    cluster: &str,
    errors: &mut Vec<Value>,
) -> Result<(Value, Value, Value), String> {
    // Cloud Control lists services only within a cluster named by the
    // resource model.
    let listed = match cloud.list(SERVICE, Some(&json!({ "Cluster": cluster }))) {
        Ok(l) => l,
        Err(e) => {
            failed(format!("{SERVICE} in cluster {cluster}"), e, errors)?;
            return Ok((Value::Null, Value::Null, Value::Null));
        }
    };
    // The model already narrows the list in AWS; checking again keeps a
    // source that ignores it (a lookups file) from mixing clusters. A service
    // that does not say its cluster is trusted to be this one's.
    let mut listed: Vec<Resource> = listed
        .into_iter()
        .filter(|r| cluster_of(r).is_none_or(|c| names_cluster(c, cluster)))
        .collect();
    listed.sort_by(|a, b| a.identifier.cmp(&b.identifier));
    let count = listed.len();
    if count > MAX_SERVICES {
        log::info(&format!(
            "cluster {cluster} has {count} services; reading the first {MAX_SERVICES}"
        ));
    }

    let mut models = Vec::new();
    for r in listed.into_iter().take(MAX_SERVICES) {
        if !is_list_only(&r.properties, SERVICE_LIST_ONLY) {
            models.push(r.properties);
            continue;
        }
        match get(cloud, SERVICE, &r.identifier, errors)? {
            Some(model) => models.push(model),
            None => log::debug(&format!(
                "{SERVICE} {}: listed but gone when read",
                r.identifier
            )),
        }
    }

    let mut task_definitions = Map::new();
    for arn in models
        .iter()
        .filter_map(|m| m.get("TaskDefinition").and_then(Value::as_str))
    {
        if task_definitions.contains_key(arn) {
            continue;
        }
        let model = get(cloud, TASK_DEFINITION, arn, errors)?.unwrap_or(Value::Null);
        task_definitions.insert(arn.to_string(), model);
    }
    Ok((
        Value::from(count),
        Value::Array(models),
        Value::Object(task_definitions),
    ))
}

impl Plugin for EcsCluster {
    const ENRICHES: bool = true;

    fn info() -> Info {
        Info::new("ecs-cluster", env!("CARGO_PKG_VERSION"))
            .kind(CLUSTER)
            .lookup(CLUSTER)
            .lookup(SERVICE)
            .lookup(TASK_DEFINITION)
            .default_mapping(&default_entry(CLUSTER))
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
        let name = obj
            .get("Properties")
            .and_then(|p| p.get("ClusterName"))
            .or_else(|| obj.get("Identifier"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (count, services, task_definitions) = match name {
            Some(name) => services(cloud, &name, &mut errors)?,
            None => {
                errors.push("the item has neither Properties.ClusterName nor Identifier".into());
                (Value::Null, Value::Null, Value::Null)
            }
        };
        obj.insert("__Tags".into(), tags);
        obj.insert("__ServiceCount".into(), count);
        obj.insert("__Services".into(), services);
        obj.insert("__TaskDefinitions".into(), task_definitions);
        if !errors.is_empty() {
            obj.insert("__EnrichmentErrors".into(), Value::Array(errors));
        }
        Ok(())
    }
}

berth_plugin_sdk::export_plugin!(EcsCluster);
