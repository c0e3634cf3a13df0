//! EC2 instances, enriched with their security groups (and rules) and their
//! networking (subnet and VPC), read through the host's Cloud Control lookup
//! in the instance's own account and region.
//!
//! Adds to each raw item: `__SecurityGroups` (the groups' properties, in the
//! instance's order), `__Subnet` and `__Vpc` (properties, or null when the
//! instance has none or it no longer exists).
//!
//! Each field is added only when some expression of the batch's mapping can
//! read it ([`Cloud::wants`]); otherwise the field is left out and its
//! lookups are not made. Left out rather than null: null already means
//! "looked up, and there is none (or the read failed)", and no expression
//! that could tell the difference runs on the item. `__Vpc` reads the subnet
//! when the instance has no `VpcId`, even if `__Subnet` is not wanted.
//!
//! Enrichment is extra data: when the cloud cannot answer (access denied,
//! offline, no account or region on the item, a failure after the host's
//! retries) the item still maps, the fields it could not read are null, and
//! `__EnrichmentErrors` lists why, so a mapping can surface it. A lookup the
//! plugin was not permitted to make is a bug and fails the item.

use berth_plugin_sdk::enrich::{attach_errors, failed};
use berth_plugin_sdk::serde_json::{Map, Value};
use berth_plugin_sdk::{Cloud, Enricher, Info, Plugin};

const SECURITY_GROUP: &str = "AWS::EC2::SecurityGroup";
const SUBNET: &str = "AWS::EC2::Subnet";
const VPC: &str = "AWS::EC2::VPC";

const SECURITY_GROUPS: &str = "__SecurityGroups";
const SUBNET_FIELD: &str = "__Subnet";
const VPC_FIELD: &str = "__Vpc";

struct Ec2Instance;

/// One resource's properties by identifier, null when it does not exist or
/// the read failed (recorded as [`failed`] does). Unlike
/// [`berth_plugin_sdk::enrich::get`], passes on properties that are not a
/// JSON object as they are.
fn lookup(
    cloud: &Cloud,
    type_name: &str,
    id: &str,
    errors: &mut Vec<Value>,
) -> Result<Value, String> {
    match cloud.get(type_name, id) {
        Ok(found) => Ok(found.map(|r| r.properties).unwrap_or(Value::Null)),
        Err(e) => failed(format_args!("{type_name} {id}"), e, errors).map(|()| Value::Null),
    }
}

impl Plugin for Ec2Instance {
    fn info() -> Info {
        Info::new("ec2-instance", env!("CARGO_PKG_VERSION"))
            .kind("AWS::EC2::Instance")
            .lookup(SECURITY_GROUP)
            .lookup(SUBNET)
            .lookup(VPC)
            .field(SECURITY_GROUPS, &[SECURITY_GROUP])
            .field(SUBNET_FIELD, &[SUBNET])
            .field(VPC_FIELD, &[SUBNET, VPC])
    }
}

impl Enricher for Ec2Instance {
    fn enrich(item: &mut Value, cloud: &Cloud) -> Result<(), String> {
        let props = item.get("Properties").cloned().unwrap_or(Value::Null);
        let str_at = |k: &str| props.get(k).and_then(Value::as_str).map(str::to_owned);
        let (want_subnet, want_vpc) = (cloud.wants(SUBNET_FIELD), cloud.wants(VPC_FIELD));

        let mut errors = Vec::new();
        let mut groups = None;
        if cloud.wants(SECURITY_GROUPS) {
            let ids = props
                .get("SecurityGroupIds")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut read = Vec::new();
            for id in ids.iter().filter_map(Value::as_str) {
                read.push(lookup(cloud, SECURITY_GROUP, id, &mut errors)?);
            }
            groups = Some(Value::Array(read));
        }

        let subnet = match str_at("SubnetId") {
            Some(id) if want_subnet || (want_vpc && str_at("VpcId").is_none()) => {
                lookup(cloud, SUBNET, &id, &mut errors)?
            }
            _ => Value::Null,
        };
        let vpc_id = str_at("VpcId").or_else(|| {
            subnet
                .get("VpcId")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let vpc = match vpc_id {
            Some(id) if want_vpc => lookup(cloud, VPC, &id, &mut errors)?,
            _ => Value::Null,
        };

        let obj: &mut Map<String, Value> = item
            .as_object_mut()
            .ok_or_else(|| "raw item is not an object".to_string())?;
        if let Some(groups) = groups {
            obj.insert(SECURITY_GROUPS.into(), groups);
        }
        if want_subnet {
            obj.insert(SUBNET_FIELD.into(), subnet);
        }
        if want_vpc {
            obj.insert(VPC_FIELD.into(), vpc);
        }
        attach_errors(obj, errors);
        Ok(())
    }
}

berth_plugin_sdk::export_plugin!(Ec2Instance);
