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
//! Each field is added only when some expression of the batch's mapping can
//! read it ([`Cloud::wants`]); otherwise it is left out (null would say
//! "read, and not there") and the model is not read for it.
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

use berth_plugin_sdk::enrich::{ListOnly, attach_errors, default_entry, model_tags};
use berth_plugin_sdk::serde_json::Value;
use berth_plugin_sdk::{Cloud, Enricher, Info, Input, Plugin};

const FUNCTION: &str = "AWS::Lambda::Function";

/// What Cloud Control's list handler returns: the primary identifier.
const LIST_ONLY: ListOnly = ListOnly {
    type_name: FUNCTION,
    keys: &["FunctionName"],
    noun: "function",
    not_found_note: None,
};

/// The product's default mapping; this plugin ships its kind's entry
/// ([`default_entry`]), cut from the same file the generic plugin ships so
/// the two cannot drift apart.
const DEFAULT_MAPPING: &str = include_str!("../../../mappings/default.yaml");

struct LambdaFunction;

impl Plugin for LambdaFunction {
    fn info() -> Info {
        Info::new("lambda-function", env!("CARGO_PKG_VERSION"))
            .kind(FUNCTION)
            .lookup(FUNCTION)
            .field("Properties", &[FUNCTION])
            .field("__Tags", &[FUNCTION])
            .default_mapping(
                &default_entry(DEFAULT_MAPPING, FUNCTION)
                    .unwrap_or_else(|e| panic!("mappings/default.yaml: {e}")),
            )
            .blueprint(include_str!(
                "../../../mappings/blueprints/cloudResource.json"
            ))
            .blueprint(include_str!("../../../mappings/blueprints/awsAccount.json"))
    }
}

impl Enricher for LambdaFunction {
    fn needs(item: &Input<'_>, cloud: &Cloud) -> bool {
        cloud.wants("__Tags") || (cloud.wants("Properties") && LIST_ONLY.needs_model(item))
    }

    fn enrich(item: &mut Value, cloud: &Cloud) -> Result<(), String> {
        let obj = item
            .as_object_mut()
            .ok_or_else(|| "raw item is not an object".to_string())?;
        let mut errors = Vec::new();
        let want_tags = cloud.wants("__Tags");
        if want_tags || cloud.wants("Properties") {
            let full = LIST_ONLY.complete(obj, cloud, &mut errors)?;
            if want_tags {
                let tags = if full {
                    model_tags(obj.get("Properties").unwrap_or(&Value::Null), &mut errors)
                } else {
                    Value::Null
                };
                obj.insert("__Tags".into(), tags);
            }
        }
        attach_errors(obj, errors);
        Ok(())
    }
}

berth_plugin_sdk::export_plugin!(LambdaFunction);
