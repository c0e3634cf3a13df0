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
//! Each field is added only when some expression of the batch's mapping can
//! read it ([`Cloud::wants`]); otherwise it is left out (null would say
//! "read, and not there") and the lookups only it needs are not made (the
//! model is read for any of them, since `__SecurityGroups` needs its
//! `VPCSecurityGroups`).
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

use berth_plugin_sdk::enrich::{ListOnly, attach_errors, default_entry, get, model_tags};
use berth_plugin_sdk::serde_json::Value;
use berth_plugin_sdk::{Cloud, Enricher, Info, Input, Plugin};

const DB_INSTANCE: &str = "AWS::RDS::DBInstance";
const SECURITY_GROUP: &str = "AWS::EC2::SecurityGroup";

/// What an identifiers-only list handler returns: the primary identifier.
const LIST_ONLY: ListOnly = ListOnly {
    type_name: DB_INSTANCE,
    keys: &["DBInstanceIdentifier"],
    noun: "instance",
    not_found_note: None,
};

/// The product's default mapping; this plugin ships its kind's entry
/// ([`default_entry`]), cut from the same file the generic plugin ships so
/// the two cannot drift apart.
const DEFAULT_MAPPING: &str = include_str!("../../../mappings/default.yaml");

struct RdsInstance;

impl Plugin for RdsInstance {
    fn info() -> Info {
        Info::new("rds-instance", env!("CARGO_PKG_VERSION"))
            .kind(DB_INSTANCE)
            .lookup(DB_INSTANCE)
            .lookup(SECURITY_GROUP)
            .field("Properties", &[DB_INSTANCE])
            .field("__SecurityGroups", &[DB_INSTANCE, SECURITY_GROUP])
            .field("__Tags", &[DB_INSTANCE])
            .default_mapping(
                &default_entry(DEFAULT_MAPPING, DB_INSTANCE)
                    .unwrap_or_else(|e| panic!("mappings/default.yaml: {e}")),
            )
            .blueprint(include_str!(
                "../../../mappings/blueprints/cloudResource.json"
            ))
            .blueprint(include_str!("../../../mappings/blueprints/awsAccount.json"))
    }
}

impl Enricher for RdsInstance {
    fn needs(item: &Input<'_>, cloud: &Cloud) -> bool {
        cloud.wants("__SecurityGroups")
            || cloud.wants("__Tags")
            || (cloud.wants("Properties") && LIST_ONLY.needs_model(item))
    }

    fn enrich(item: &mut Value, cloud: &Cloud) -> Result<(), String> {
        let obj = item
            .as_object_mut()
            .ok_or_else(|| "raw item is not an object".to_string())?;
        let mut errors = Vec::new();
        let [want_groups, want_tags] = ["__SecurityGroups", "__Tags"].map(|f| cloud.wants(f));
        if !(want_groups || want_tags || cloud.wants("Properties")) {
            return Ok(());
        }
        let full = LIST_ONLY.complete(obj, cloud, &mut errors)?;
        let props = obj.get("Properties").cloned().unwrap_or(Value::Null);

        let tags = if full && want_tags {
            model_tags(&props, &mut errors)
        } else {
            Value::Null
        };
        // VPCSecurityGroups is a list of group ids in the CloudFormation schema.
        let groups = match props.get("VPCSecurityGroups") {
            _ if !want_groups => Value::Null,
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

        if want_groups {
            obj.insert("__SecurityGroups".into(), groups);
        }
        if want_tags {
            obj.insert("__Tags".into(), tags);
        }
        attach_errors(obj, errors);
        Ok(())
    }
}

berth_plugin_sdk::export_plugin!(RdsInstance);
