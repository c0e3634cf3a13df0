//! The generic plugin: maps items of any Cloud Control type with the tenant's
//! mapping, without enrichment. Serves every kind no other plugin claims.

use berth_plugin_sdk::{Info, Plugin};

struct Generic;

impl Plugin for Generic {
    fn info() -> Info {
        Info::new("generic", env!("CARGO_PKG_VERSION")).kind("*")
    }
}

berth_plugin_sdk::export_plugin!(Generic);
