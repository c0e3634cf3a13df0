//! The generic plugin: maps items of any Cloud Control type with the tenant's
//! mapping, without enrichment. Serves every kind no other plugin claims, and
//! ships the seed's default mapping and the blueprints it needs, so a tenant
//! without a mapping of its own gets the product's defaults.

use berth_plugin_sdk::{Info, Plugin};

struct Generic;

impl Plugin for Generic {
    fn info() -> Info {
        Info::new("generic", env!("CARGO_PKG_VERSION"))
            .kind("*")
            .default_mapping(include_str!("../../../mappings/default.yaml"))
            .blueprint(include_str!("../../../mappings/blueprints/awsAccount.json"))
            .blueprint(include_str!(
                "../../../mappings/blueprints/cloudResource.json"
            ))
            .blueprint(include_str!("../../../mappings/blueprints/ecsService.json"))
    }
}

berth_plugin_sdk::export_plugin!(Generic);
