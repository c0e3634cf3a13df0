//! AWS Organizations accounts: the organization's member (and management)
//! accounts, as the host discovers them with Organizations `ListAccounts` in
//! the management account.
//!
//! A raw item is Organizations' `Account` object at the top level (`Id`,
//! `Arn`, `Email`, `Name`, `Status`, `JoinedMethod`, `JoinedTimestamp`), plus
//! `Identifier` (the account id), `Properties` (the same object) and the
//! host's `__Kind`, `__Region` and `__AccountId` (the management account),
//! so the product's default mapping (`.Id`, `.Name`, `.Arn`, ...) maps
//! unchanged. The plugin adds:
//!
//! - `__IsManagementAccount`: whether this is the account the organization
//!   was read from (`Id` equals `__AccountId`), which a mapping cannot tell
//!   from Organizations' fields alone;
//! - `__Tags`: the account's tags as `{Key: Value}` when the item carries
//!   `Tags` (`ListAccounts` does not return them; null otherwise).
//!
//! Owns only enriching and mapping account items. Declares no cloud lookups
//! and must not read any: accounts are not a Cloud Control type, and
//! everything the plugin adds is derived from the item itself. So both
//! fields are declared with no lookups and always added, whatever the
//! mapping reads: computing them costs less than asking whether to.

use berth_plugin_sdk::enrich::{attach_errors, default_entry, tags_object};
use berth_plugin_sdk::serde_json::Value;
use berth_plugin_sdk::{Cloud, Enricher, Info, Plugin};

const ACCOUNT: &str = "AWS::Organizations::Account";

/// The product's default mapping; this plugin ships its kind's entry
/// ([`default_entry`]), cut from the same file the generic plugin ships so
/// the two cannot drift apart.
const DEFAULT_MAPPING: &str = include_str!("../../../mappings/default.yaml");

struct OrgAccount;

impl Plugin for OrgAccount {
    fn info() -> Info {
        Info::new("org-account", env!("CARGO_PKG_VERSION"))
            .kind(ACCOUNT)
            .field("__IsManagementAccount", &[])
            .field("__Tags", &[])
            .default_mapping(
                &default_entry(DEFAULT_MAPPING, ACCOUNT)
                    .unwrap_or_else(|e| panic!("mappings/default.yaml: {e}")),
            )
            .blueprint(include_str!("../../../mappings/blueprints/awsAccount.json"))
    }
}

impl Enricher for OrgAccount {
    fn enrich(item: &mut Value, _cloud: &Cloud) -> Result<(), String> {
        let obj = item
            .as_object_mut()
            .ok_or_else(|| "raw item is not an object".to_string())?;
        let mut errors = Vec::new();
        // Top-level fields are the contract; `Properties` is the same object
        // and is only read when the top level lacks one.
        let field = |k: &str| {
            obj.get(k)
                .or_else(|| obj.get("Properties").and_then(|p| p.get(k)))
                .filter(|v| !v.is_null())
        };
        let management = match (
            field("Id").and_then(Value::as_str),
            obj.get("__AccountId").and_then(Value::as_str),
        ) {
            (Some(id), Some(management)) => Value::Bool(id == management),
            _ => Value::Null,
        };
        let tags = match field("Tags") {
            // Organizations' `ListTagsForResource` shape, read at the top level.
            Some(t) => tags_object(t, "Tags", &mut errors),
            None => Value::Null,
        };
        obj.insert("__IsManagementAccount".into(), management);
        obj.insert("__Tags".into(), tags);
        attach_errors(obj, errors);
        Ok(())
    }
}

berth_plugin_sdk::export_plugin!(OrgAccount);
