//! Shared helpers of the `aws_*` integration tests: start the emulator
//! (`tests/aws-emulator/run --port 0`), seed it, build configurations, run
//! discovery and compare what it found with what was seeded.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use berth::discovery::config::{AuthConfig, AuthMethod, Secret};
use berth::discovery::{
    AwsConfig, AwsLimits, AwsSync, AwsTenant, DiscoveryReport, Event, KindPlan, RawItem, discover,
};
use berth_test_kit::emulator::Emulator;
use serde_json::{Value, json};

pub const MGMT: &str = "123456789012";
pub const EXTERNAL_ID: &str = "berth-test-external-id";
pub const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
/// Kinds seeded by the tests: quick to create, with a global kind (S3), a
/// kind listed per parent (ECS services) and kinds read with GetResource.
pub const KINDS: [(&str, bool); 5] = [
    ("AWS::S3::Bucket", true),
    ("AWS::Lambda::Function", false),
    ("AWS::ECS::Cluster", true),
    ("AWS::ECS::TaskDefinition", false),
    ("AWS::ECS::Service", false),
];

pub async fn emulator() -> Emulator {
    let dir = berth_test_kit::repo_root().join("tests/aws-emulator");
    let emu = Emulator::start(&dir).await.expect("start the emulator");
    emu.regions(&json!({ "enabled": REGIONS })).await.unwrap();
    emu
}

/// Seed `accounts` members × [`REGIONS`] × `per_kind` of each of [`KINDS`].
pub async fn seed(emu: &Emulator, accounts: usize, per_kind: usize, ous: bool) -> Value {
    let kinds: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
    let accounts = accounts.to_string();
    let per_kind = per_kind.to_string();
    let regions = REGIONS.join(",");
    let kinds = kinds.join(",");
    let mut args = vec![
        "--accounts",
        &accounts,
        "--regions",
        &regions,
        "--per-kind",
        &per_kind,
        "--kinds",
        &kinds,
        "--workers",
        "4",
    ];
    if ous {
        args.push("--ous");
    }
    emu.seed(&args).await.expect("seed")
}

pub fn kinds() -> Vec<KindPlan> {
    KINDS
        .iter()
        .map(|(k, get)| KindPlan {
            kind: k.to_string(),
            use_get_resource_api: *get,
            region_policies: vec![],
        })
        .collect()
}

/// Limits that keep tests quick: short backoffs, small pages (so paging
/// is exercised), a floor under the rate.
pub fn limits() -> AwsLimits {
    AwsLimits {
        initial_rate: 100.0,
        min_rate: 20.0,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(100),
        page_size: 2,
        ..AwsLimits::default()
    }
}

pub fn static_auth() -> AuthConfig {
    AuthConfig {
        method: AuthMethod::Static,
        access_key_id: Some("testing".into()),
        secret_access_key: Some(Secret::new("testing")),
        ..AuthConfig::default()
    }
}

/// Organizations mode: static keys → BerthOrgReader → BerthReadOnly.
pub fn org_config(emu: &Emulator) -> AwsConfig {
    AwsConfig {
        auth: static_auth(),
        org_role_arn: Some(format!("arn:aws:iam::{MGMT}:role/BerthOrgReader")),
        account_role_name: Some("BerthReadOnly".into()),
        external_id: Some(EXTERNAL_ID.into()),
        endpoint_url: Some(emu.endpoint.clone()),
        ..AwsConfig::default()
    }
}

pub fn member_ids(seed: &Value) -> Vec<String> {
    seed["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

pub type Key = (String, String, String, String);

/// (account, region, kind, identifier) of everything seeded.
pub fn seeded(seed: &Value) -> BTreeSet<Key> {
    let mut out = BTreeSet::new();
    for (acct, regions) in seed["identifiers"].as_object().unwrap() {
        for (region, kinds) in regions.as_object().unwrap() {
            for (kind, ids) in kinds.as_object().unwrap() {
                if !KINDS.iter().any(|(k, _)| k == kind) {
                    continue;
                }
                for id in ids.as_array().unwrap() {
                    out.insert((
                        acct.clone(),
                        region.clone(),
                        kind.clone(),
                        id.as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    out
}

pub fn keys(items: &[RawItem]) -> BTreeSet<Key> {
    items
        .iter()
        .map(|i| {
            (
                i.account_id.clone(),
                i.region.clone(),
                i.kind.clone(),
                i.value()["Identifier"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Run discovery to the end, collecting items and checking the stream's
/// own invariants: every item comes before its scope's end, once.
pub async fn run(sync: Arc<AwsSync>, kinds: Vec<KindPlan>) -> (Vec<RawItem>, DiscoveryReport) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let task = tokio::spawn(discover(sync, kinds, tx));
    let mut items = Vec::new();
    let mut ended = BTreeSet::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Item(i) => {
                let k = (i.account_id.clone(), i.region.clone(), i.kind.clone());
                assert!(!ended.contains(&k), "item after its scope ended: {k:?}");
                items.push(i);
            }
            Event::Scope(s) => {
                assert!(
                    ended.insert((s.key.account_id, s.key.region, s.key.kind)),
                    "scope ended twice"
                );
            }
            Event::Account(_) => {}
        }
    }
    let report = task.await.unwrap();
    assert_eq!(report.scopes.len(), ended.len());
    let unique = keys(&items);
    assert_eq!(unique.len(), items.len(), "no item twice");
    (items, report)
}

pub async fn tenant_sync(cfg: AwsConfig, limits: AwsLimits) -> (Arc<AwsTenant>, Arc<AwsSync>) {
    let tenant = AwsTenant::new("test", cfg, limits).unwrap();
    let sync = tenant.start_sync().await.unwrap();
    (tenant, sync)
}
