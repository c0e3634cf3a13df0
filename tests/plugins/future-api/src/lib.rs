//! Implements `berth:plugin@9.0.0`, a version no Berth supports, so the host
//! must refuse it with a message naming both versions.

wit_bindgen::generate!({ path: "wit", world: "plugin" });

use berth::plugin::types::*;
use exports::berth::plugin::mapper::Guest;

struct Future;

impl Guest for Future {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "future-api".into(),
            version: "9.0.0".into(),
            kinds: vec!["Test::Future".into()],
            capabilities: vec![],
            default_mapping: None,
            blueprints: vec![],
        }
    }
    fn map_batch(_: BatchRequest) -> Result<Vec<Result<ItemOutput, ItemError>>, BatchError> {
        Err(BatchError::InvalidMapping("never called".into()))
    }
    fn run_jq(_: JqRequest) -> Result<Vec<JqOutput>, JqError> {
        Ok(vec![])
    }
}

export!(Future);
