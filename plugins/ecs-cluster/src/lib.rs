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
//! Each field is added only when some expression of the batch's mapping can
//! read it ([`Cloud::wants`]); otherwise it is left out (null would say
//! "read, and not there") and the lookups only it needs are not made: the
//! model is read only for `Properties` or `__Tags`, services are listed only
//! for the `__Service*` and `__TaskDefinitions` fields, and read one by one
//! only for `__Services` or `__TaskDefinitions`.
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

use berth_plugin_sdk::enrich::{
    ListOnly, attach_errors, default_entry, failed, get, is_list_only, model_tags,
};
use berth_plugin_sdk::serde_json::{Map, Value, json};
use berth_plugin_sdk::{Cloud, Enricher, Info, Input, Plugin, Resource, log};

const CLUSTER: &str = "AWS::ECS::Cluster";
const SERVICE: &str = "AWS::ECS::Service";
const TASK_DEFINITION: &str = "AWS::ECS::TaskDefinition";

/// What Cloud Control's list handlers return: the primary identifiers.
const CLUSTER_LIST_ONLY: ListOnly = ListOnly {
    type_name: CLUSTER,
    keys: &["ClusterName"],
    noun: "cluster",
    not_found_note: None,
};
const SERVICE_LIST_ONLY: &[&str] = &["ServiceArn", "Cluster"];

const TAGS: &str = "__Tags";
const SERVICE_COUNT: &str = "__ServiceCount";
const SERVICES: &str = "__Services";
const TASK_DEFINITIONS: &str = "__TaskDefinitions";

/// Services read per cluster. Each costs one read (plus one per distinct
/// task definition); the host rate-limits them, so a bound keeps one large
/// cluster from starving the rest of the sync.
pub const MAX_SERVICES: usize = 50;

/// The product's default mapping; this plugin ships its kind's entry
/// ([`default_entry`]), cut from the same file the generic plugin ships so
/// the two cannot drift apart.
const DEFAULT_MAPPING: &str = include_str!("../../../mappings/default.yaml");

struct EcsCluster;

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
/// `(__ServiceCount, __Services, __TaskDefinitions)`, each read only as far
/// as a wanted field needs it (null when not read).
fn services(
    cloud: &Cloud,
    cluster: &str,
    errors: &mut Vec<Value>,
) -> Result<(Value, Value, Value), String> {
    let want_task_definitions = cloud.wants(TASK_DEFINITIONS);
    let want_models = want_task_definitions || cloud.wants(SERVICES);
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
    if !want_models {
        return Ok((Value::from(count), Value::Null, Value::Null));
    }
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

    if !want_task_definitions {
        return Ok((Value::from(count), Value::Array(models), Value::Null));
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
    fn info() -> Info {
        Info::new("ecs-cluster", env!("CARGO_PKG_VERSION"))
            .kind(CLUSTER)
            .lookup(CLUSTER)
            .lookup(SERVICE)
            .lookup(TASK_DEFINITION)
            .field("Properties", &[CLUSTER])
            .field(TAGS, &[CLUSTER])
            .field(SERVICE_COUNT, &[SERVICE])
            .field(SERVICES, &[SERVICE])
            .field(TASK_DEFINITIONS, &[SERVICE, TASK_DEFINITION])
            .default_mapping(
                &default_entry(DEFAULT_MAPPING, CLUSTER)
                    .unwrap_or_else(|e| panic!("mappings/default.yaml: {e}")),
            )
            .blueprint(include_str!(
                "../../../mappings/blueprints/cloudResource.json"
            ))
            .blueprint(include_str!("../../../mappings/blueprints/awsAccount.json"))
    }
}

impl Enricher for EcsCluster {
    fn needs(item: &Input<'_>, cloud: &Cloud) -> bool {
        [TAGS, SERVICE_COUNT, SERVICES, TASK_DEFINITIONS]
            .iter()
            .any(|f| cloud.wants(f))
            || (cloud.wants("Properties") && CLUSTER_LIST_ONLY.needs_model(item))
    }

    fn enrich(item: &mut Value, cloud: &Cloud) -> Result<(), String> {
        let obj = item
            .as_object_mut()
            .ok_or_else(|| "raw item is not an object".to_string())?;
        let mut errors = Vec::new();
        let want_tags = cloud.wants(TAGS);
        if want_tags || cloud.wants("Properties") {
            let full = CLUSTER_LIST_ONLY.complete(obj, cloud, &mut errors)?;
            if want_tags {
                let tags = if full {
                    model_tags(obj.get("Properties").unwrap_or(&Value::Null), &mut errors)
                } else {
                    Value::Null
                };
                obj.insert(TAGS.into(), tags);
            }
        }
        let wanted = [SERVICE_COUNT, SERVICES, TASK_DEFINITIONS].map(|f| cloud.wants(f));
        if wanted.contains(&true) {
            let name = obj
                .get("Properties")
                .and_then(|p| p.get("ClusterName"))
                .or_else(|| obj.get("Identifier"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let read = match name {
                Some(name) => services(cloud, &name, &mut errors)?,
                None => {
                    errors
                        .push("the item has neither Properties.ClusterName nor Identifier".into());
                    (Value::Null, Value::Null, Value::Null)
                }
            };
            let (count, services, task_definitions) = read;
            for ((field, value), want) in [
                (SERVICE_COUNT, count),
                (SERVICES, services),
                (TASK_DEFINITIONS, task_definitions),
            ]
            .into_iter()
            .zip(wanted)
            {
                if want {
                    obj.insert(field.into(), value);
                }
            }
        }
        attach_errors(obj, errors);
        Ok(())
    }
}

berth_plugin_sdk::export_plugin!(EcsCluster);
