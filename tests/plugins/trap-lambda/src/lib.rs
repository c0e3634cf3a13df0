//! Serves `AWS::Lambda::Function` like the shipped plugin would map it, but traps (panics) on
//! the functions named `*-001` in `eu-west-1`, so the end-to-end tests can show that a plugin
//! crashing on some items fails only those items' scopes and never deletes their entities.

use berth_plugin_sdk::serde_json::Value;
use berth_plugin_sdk::{Cloud, Enricher, Info, Plugin};

struct TrapLambda;

impl Plugin for TrapLambda {
    fn info() -> Info {
        Info::new("trap-lambda", env!("CARGO_PKG_VERSION")).kind("AWS::Lambda::Function")
    }
}

impl Enricher for TrapLambda {
    fn enrich(item: &mut Value, _cloud: &Cloud) -> Result<(), String> {
        let name = item["Properties"]["FunctionName"]
            .as_str()
            .unwrap_or_default();
        if name.ends_with("-001") && item["__Region"] == "eu-west-1" {
            panic!("this plugin traps on purpose on {name}");
        }
        Ok(())
    }
}

berth_plugin_sdk::export_plugin!(TrapLambda);
