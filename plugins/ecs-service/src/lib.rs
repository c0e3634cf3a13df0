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
//! Each field is added only when some expression of the batch's mapping can
//! read it ([`Cloud::wants`]); otherwise it is left out (null would say
//! "read, and not there") and the lookups only it needs are not made. The
//! model is read for `Properties`, `__Tags` and `__TaskDefinition`, and for
//! `__ClusterArn` only when `Properties` lacks `Cluster`.
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

use berth_plugin_sdk::enrich::{ListOnly, attach_errors, get, model_tags};
use berth_plugin_sdk::serde_json::Value;
use berth_plugin_sdk::{Cloud, Enricher, Info, Input, Plugin};

const SERVICE: &str = "AWS::ECS::Service";
const TASK_DEFINITION: &str = "AWS::ECS::TaskDefinition";

const TASK_DEFINITION_FIELD: &str = "__TaskDefinition";
const CLUSTER_ARN: &str = "__ClusterArn";
const TAGS: &str = "__Tags";

/// What Cloud Control's list handler returns: the primary identifiers.
const LIST_ONLY: ListOnly = ListOnly {
    type_name: SERVICE,
    keys: &["ServiceArn", "Cluster"],
    noun: "service",
    not_found_note: None,
};

struct EcsService;

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
    fn info() -> Info {
        Info::new("ecs-service", env!("CARGO_PKG_VERSION"))
            .kind(SERVICE)
            .lookup(SERVICE)
            .lookup(TASK_DEFINITION)
            .field("Properties", &[SERVICE])
            .field(TASK_DEFINITION_FIELD, &[SERVICE, TASK_DEFINITION])
            .field(CLUSTER_ARN, &[SERVICE])
            .field(TAGS, &[SERVICE])
    }
}

impl Enricher for EcsService {
    fn needs(item: &Input<'_>, cloud: &Cloud) -> bool {
        // __ClusterArn comes from Properties.Cluster, so it needs enrichment even for a
        // complete model.
        [TASK_DEFINITION_FIELD, CLUSTER_ARN, TAGS]
            .iter()
            .any(|f| cloud.wants(f))
            || (cloud.wants("Properties") && LIST_ONLY.needs_model(item))
    }

    fn enrich(item: &mut Value, cloud: &Cloud) -> Result<(), String> {
        let obj = item
            .as_object_mut()
            .ok_or_else(|| "raw item is not an object".to_string())?;
        let mut errors = Vec::new();
        let [want_task_definition, want_cluster, want_tags] =
            [TASK_DEFINITION_FIELD, CLUSTER_ARN, TAGS].map(|f| cloud.wants(f));
        let has_cluster = obj
            .get("Properties")
            .and_then(|p| p.get("Cluster"))
            .is_some_and(Value::is_string);
        let full = if cloud.wants("Properties")
            || want_tags
            || want_task_definition
            || (want_cluster && !has_cluster)
        {
            LIST_ONLY.complete(obj, cloud, &mut errors)?
        } else {
            false
        };
        let props = obj.get("Properties").cloned().unwrap_or(Value::Null);
        let str_at = |k: &str| props.get(k).and_then(Value::as_str);

        let tags = match (want_tags, full) {
            (false, _) => None,
            (true, true) => Some(model_tags(&props, &mut errors)),
            (true, false) => Some(Value::Null),
        };
        let task_definition = match str_at("TaskDefinition").filter(|_| want_task_definition) {
            Some(arn) => get(cloud, TASK_DEFINITION, arn, &mut errors)?.unwrap_or(Value::Null),
            None => Value::Null,
        };
        let cluster = str_at("Cluster").and_then(|c| cluster_arn(c, str_at("ServiceArn")));

        if want_task_definition {
            obj.insert(TASK_DEFINITION_FIELD.into(), task_definition);
        }
        if want_cluster {
            obj.insert(
                CLUSTER_ARN.into(),
                cluster.map_or(Value::Null, Value::String),
            );
        }
        if let Some(tags) = tags {
            obj.insert(TAGS.into(), tags);
        }
        attach_errors(obj, errors);
        Ok(())
    }
}

berth_plugin_sdk::export_plugin!(EcsService);
