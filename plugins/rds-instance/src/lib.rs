//! RDS DB instances, enriched with their VPC security groups (and rules),
//! read through the host's Cloud Control lookup in the instance's own
//! account and region.
//!
//! Cloud Control lists DB instances with their full model; when an item's
//! `Properties` is only `DBInstanceIdentifier` (a list handler that returns
//! identifiers only), the plugin reads the full model and adds its
//! properties to `Properties`, keeping every raw key as it was, so the
//! product's default mapping (`.Properties.Engine`, `.Properties.EngineVersion`,
//! `.Properties.DBInstanceClass`, `.Properties.Tags`) maps unchanged. It adds:
//!
//! - `__SecurityGroups`: the models of the groups in `VPCSecurityGroups`, in
//!   the instance's order (null for a group that no longer exists or could
//!   not be read);
//! - `__Tags`: the instance's tags as `{Key: Value}` (null when the model
//!   could not be read).
//!
//! Owns only enriching and mapping DB instance items. Must not read anything
//! but the declared types (never the database itself, its snapshots or
//! secrets).
//!
//! Enrichment is extra data: when the cloud cannot answer (access denied,
//! offline, no account or region on the item, a failure after the host's
//! retries) the item still maps, the fields it could not read are null, and
//! `__EnrichmentErrors` lists why, so a mapping can surface it. A lookup the
//! plugin was not permitted to make is a bug and fails the item.

use berth_plugin_sdk::serde_json::{Map, Value};
use berth_plugin_sdk::{Cloud, Info, LookupError, Plugin, Resource, log};

const DB_INSTANCE: &str = "AWS::RDS::DBInstance";
const SECURITY_GROUP: &str = "AWS::EC2::SecurityGroup";

/// What an identifiers-only list handler returns: the primary identifier.
const LIST_ONLY: &[&str] = &["DBInstanceIdentifier"];

const DEFAULT_MAPPING: &str = include_str!("../../../mappings/default.yaml");

struct RdsInstance;

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

/// Reads the instance's full model when `Properties` is only what the list
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
                .push("Properties is not a JSON object; the instance's model was not read".into());
            return Ok(false);
        }
    }
    let Some(id) = item
        .get("Identifier")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        errors.push(format!("the item has no Identifier to read {DB_INSTANCE} by").into());
        return Ok(false);
    };
    let full = match get(cloud, DB_INSTANCE, &id, errors)? {
        Some(Value::Object(full)) => full,
        Some(_) => return Ok(false),
        None => {
            let region = item
                .get("__Region")
                .and_then(Value::as_str)
                .unwrap_or("this region");
            errors.push(format!("{DB_INSTANCE} {id}: not found in {region}").into());
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

impl Plugin for RdsInstance {
    const ENRICHES: bool = true;

    fn info() -> Info {
        Info::new("rds-instance", env!("CARGO_PKG_VERSION"))
            .kind(DB_INSTANCE)
            .lookup(DB_INSTANCE)
            .lookup(SECURITY_GROUP)
            .default_mapping(&default_entry(DB_INSTANCE))
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
        let full = complete(obj, cloud, &mut errors)?;
        let props = obj.get("Properties").cloned().unwrap_or(Value::Null);

        let tags = if full {
            tags_object(&props, &mut errors)
        } else {
            Value::Null
        };
        // VPCSecurityGroups is a list of group ids in the CloudFormation schema.
        let groups = match props.get("VPCSecurityGroups") {
            None | Some(Value::Null) if !full => Value::Null,
            None | Some(Value::Null) => Value::Array(Vec::new()),
            Some(Value::Array(ids)) => {
                let mut groups = Vec::new();
                for id in ids {
                    match id.as_str() {
                        Some(id) => groups.push(
                            get(cloud, SECURITY_GROUP, id, &mut errors)?.unwrap_or(Value::Null),
                        ),
                        None => {
                            errors.push(
                                format!("VPCSecurityGroups holds {id}, not a group id").into(),
                            );
                            groups.push(Value::Null);
                        }
                    }
                }
                Value::Array(groups)
            }
            Some(_) => {
                errors.push("Properties.VPCSecurityGroups is not a list of group ids".into());
                Value::Null
            }
        };

        obj.insert("__SecurityGroups".into(), groups);
        obj.insert("__Tags".into(), tags);
        if !errors.is_empty() {
            obj.insert("__EnrichmentErrors".into(), Value::Array(errors));
        }
        Ok(())
    }
}

berth_plugin_sdk::export_plugin!(RdsInstance);
