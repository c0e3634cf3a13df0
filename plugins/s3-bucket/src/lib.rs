//! S3 buckets: completes each bucket's model and adds its tags as an object
//! and its home region, read through the host's Cloud Control lookup in the
//! item's own account and region.
//!
//! Cloud Control lists buckets with only `BucketName`; when an item's
//! `Properties` is that list shape, the plugin reads the full model
//! (`GetResource`) and adds its properties to `Properties`, keeping every raw
//! key as it was, so the product's default mapping (`.Properties.Arn`,
//! `.Properties.RegionalDomainName`, `.Properties.Tags`) maps unchanged. It
//! also adds `__Tags` (`{Key: Value}`, null when the model could not be read)
//! and `__HomeRegion` (from the bucket's regional endpoint names; null when
//! unknown). S3 answers `GetResource` only in a bucket's home region, so a
//! bucket listed in another region is "not found" here; that is reported,
//! not guessed around.
//!
//! Owns only enriching and mapping bucket items. Must not decide which
//! region a bucket is discovered in or drop items (discovery and the
//! mapping's selector do that), and reads nothing but `AWS::S3::Bucket`.
//!
//! Enrichment is extra data: when the cloud cannot answer (access denied,
//! offline, not found in this region, a failure after the host's retries)
//! the item still maps, the fields it could not read are null, and
//! `__EnrichmentErrors` lists why, so a mapping can surface it. A lookup the
//! plugin was not permitted to make is a bug and fails the item.

use berth_plugin_sdk::serde_json::{Map, Value};
use berth_plugin_sdk::{Cloud, Info, LookupError, Plugin, Resource, log};

const BUCKET: &str = "AWS::S3::Bucket";
/// What Cloud Control's bucket list handler returns: the primary identifier.
const LIST_ONLY: &[&str] = &["BucketName"];

const DEFAULT_MAPPING: &str = include_str!("../../../mappings/default.yaml");

struct S3Bucket;

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

/// Reads the bucket's full model when `Properties` is only what the list
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
            errors.push("Properties is not a JSON object; the bucket's model was not read".into());
            return Ok(false);
        }
    }
    let Some(id) = item
        .get("Identifier")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        errors.push(format!("the item has no Identifier to read {BUCKET} by").into());
        return Ok(false);
    };
    let full = match get(cloud, BUCKET, &id, errors)? {
        Some(Value::Object(full)) => full,
        Some(_) => return Ok(false),
        None => {
            // Deleted since it was listed, or (far more often) listed from a
            // region that is not its home: S3 reads answer only there.
            let region = item
                .get("__Region")
                .and_then(Value::as_str)
                .unwrap_or("this region");
            errors.push(
                format!(
                    "{BUCKET} {id}: not found in {region} (Cloud Control reads a bucket only in its home region)"
                )
                .into(),
            );
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

/// The bucket's home region from its endpoint names
/// (`NAME.s3.REGION.amazonaws.com`, `NAME.s3-website-REGION.amazonaws.com`);
/// S3 ARNs carry no region.
fn home_region(props: &Value) -> Option<String> {
    ["RegionalDomainName", "DualStackDomainName", "WebsiteURL"]
        .iter()
        .filter_map(|k| props.get(*k).and_then(Value::as_str))
        .find_map(region_of_endpoint)
}

fn region_of_endpoint(endpoint: &str) -> Option<String> {
    let host = endpoint.rsplit("://").next()?.split('/').next()?;
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    // Bucket names may contain dots, so the region is read from the right.
    let label = rest.rsplit('.').next()?;
    let label = label.strip_prefix("s3-website-").unwrap_or(label);
    looks_like_region(label).then(|| label.to_string())
}

/// `eu-west-1`, `us-gov-west-1`, `ap-southeast-3`: letters, then a number.
fn looks_like_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

impl Plugin for S3Bucket {
    const ENRICHES: bool = true;

    fn info() -> Info {
        Info::new("s3-bucket", env!("CARGO_PKG_VERSION"))
            .kind(BUCKET)
            .lookup(BUCKET)
            .default_mapping(&default_entry(BUCKET))
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
        let (tags, region) = if complete(obj, cloud, &mut errors)? {
            let props = obj.get("Properties").cloned().unwrap_or(Value::Null);
            (
                tags_object(&props, &mut errors),
                home_region(&props).map_or(Value::Null, Value::String),
            )
        } else {
            (Value::Null, Value::Null)
        };
        obj.insert("__Tags".into(), tags);
        obj.insert("__HomeRegion".into(), region);
        if !errors.is_empty() {
            obj.insert("__EnrichmentErrors".into(), Value::Array(errors));
        }
        Ok(())
    }
}

berth_plugin_sdk::export_plugin!(S3Bucket);
