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
//! Each field is added only when some expression of the batch's mapping can
//! read it ([`Cloud::wants`]); otherwise it is left out (null would say
//! "read, and not there") and the model is not read for it.
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

use berth_plugin_sdk::enrich::{ListOnly, attach_errors, default_entry, model_tags};
use berth_plugin_sdk::serde_json::Value;
use berth_plugin_sdk::{Cloud, Enricher, Info, Input, Plugin};

const BUCKET: &str = "AWS::S3::Bucket";
/// What Cloud Control's bucket list handler returns: the primary identifier.
/// A bucket listed from a region that is not its home is "not found" (it
/// may also have been deleted since it was listed).
const LIST_ONLY: ListOnly = ListOnly {
    type_name: BUCKET,
    keys: &["BucketName"],
    noun: "bucket",
    not_found_note: Some("Cloud Control reads a bucket only in its home region"),
};

/// The product's default mapping; this plugin ships its kind's entry
/// ([`default_entry`]), cut from the same file the generic plugin ships so
/// the two cannot drift apart.
const DEFAULT_MAPPING: &str = include_str!("../../../mappings/default.yaml");

struct S3Bucket;

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
    fn info() -> Info {
        Info::new("s3-bucket", env!("CARGO_PKG_VERSION"))
            .kind(BUCKET)
            .lookup(BUCKET)
            .field("Properties", &[BUCKET])
            .field("__Tags", &[BUCKET])
            .field("__HomeRegion", &[BUCKET])
            .default_mapping(
                &default_entry(DEFAULT_MAPPING, BUCKET)
                    .unwrap_or_else(|e| panic!("mappings/default.yaml: {e}")),
            )
            .blueprint(include_str!(
                "../../../mappings/blueprints/cloudResource.json"
            ))
            .blueprint(include_str!("../../../mappings/blueprints/awsAccount.json"))
    }
}

impl Enricher for S3Bucket {
    fn needs(item: &Input<'_>, cloud: &Cloud) -> bool {
        cloud.wants("__Tags")
            || cloud.wants("__HomeRegion")
            || (cloud.wants("Properties") && LIST_ONLY.needs_model(item))
    }

    fn enrich(item: &mut Value, cloud: &Cloud) -> Result<(), String> {
        let obj = item
            .as_object_mut()
            .ok_or_else(|| "raw item is not an object".to_string())?;
        let mut errors = Vec::new();
        let [want_tags, want_region] = ["__Tags", "__HomeRegion"].map(|f| cloud.wants(f));
        if !(want_tags || want_region || cloud.wants("Properties")) {
            return Ok(());
        }
        let full = LIST_ONLY.complete(obj, cloud, &mut errors)?;
        let props = obj.get("Properties").cloned().unwrap_or(Value::Null);
        if want_tags {
            let tags = if full {
                model_tags(&props, &mut errors)
            } else {
                Value::Null
            };
            obj.insert("__Tags".into(), tags);
        }
        if want_region {
            let region = home_region(&props).filter(|_| full);
            obj.insert(
                "__HomeRegion".into(),
                region.map_or(Value::Null, Value::String),
            );
        }
        attach_errors(obj, errors);
        Ok(())
    }
}

berth_plugin_sdk::export_plugin!(S3Bucket);
