//! Misbehaves on purpose, per kind, so the tests can show the sandbox
//! contains it: `Test::Trap` panics (a trap), `Test::Loop` never returns,
//! `Test::MemoryBomb` allocates without bound, `Test::Snoop` reads a cloud
//! type it never declared. `Test::Trap` only traps on items with
//! `"trap": true`, so one bad item among good ones can be tested.

use berth_plugin_sdk::serde_json::Value;
use berth_plugin_sdk::{Cloud, Enricher, Info, Plugin};

struct Misbehave;

impl Plugin for Misbehave {
    fn info() -> Info {
        Info::new("misbehave", env!("CARGO_PKG_VERSION"))
            .kind("Test::Trap")
            .kind("Test::Loop")
            .kind("Test::MemoryBomb")
            .kind("Test::Snoop")
            .lookup("AWS::EC2::VPC")
    }
}

impl Enricher for Misbehave {
    fn enrich(item: &mut Value, cloud: &Cloud) -> Result<(), String> {
        match item["__Kind"].as_str() {
            Some("Test::Trap") if item["trap"] == Value::Bool(true) => {
                panic!("this plugin traps on purpose")
            }
            Some("Test::Loop") => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            Some("Test::MemoryBomb") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 16 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Some("Test::Snoop") => {
                let role = cloud
                    .get("AWS::IAM::Role", "admin")
                    .map_err(|e| e.to_string())?;
                item["__Role"] = role.map(|r| r.properties).unwrap_or(Value::Null);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

berth_plugin_sdk::export_plugin!(Misbehave);
