//! Discovery against the emulator: accounts from Organizations and from OU
//! ids, regions and regionPolicy, paging, throttling, AccessDenied.

mod aws_support;

use std::collections::BTreeSet;

use aws_support::*;
use berth::discovery::config::RegionPolicy;
use berth::discovery::{AwsConfig, KindPlan};
use berth::scope::ScopeStatus;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_accounts_and_regions_give_exactly_the_seeded_set() {
    let emu = emulator().await;
    let seed = seed(&emu, 3, 3, false).await;
    emu.reset_stats().await.unwrap();
    let (_t, sync) = tenant_sync(org_config(&emu), limits()).await;
    let mut ids: Vec<String> = sync.accounts().iter().map(|a| a.id.clone()).collect();
    ids.sort();
    let mut want = member_ids(&seed);
    want.push(MGMT.to_string());
    want.sort();
    assert_eq!(ids, want, "ListAccounts: management + 3 members");
    let member_role = sync
        .accounts()
        .iter()
        .find(|a| a.id == want[0])
        .unwrap()
        .role_arn
        .clone()
        .unwrap();
    assert_eq!(
        member_role.to_string(),
        format!("arn:aws:iam::{}:role/BerthReadOnly", want[0])
    );

    let mut k = kinds();
    k.push(KindPlan {
        kind: "AWS::Organizations::Account".into(),
        use_get_resource_api: false,
        region_policies: vec![],
    });
    let (items, report) = run(sync, k).await;
    assert!(report.is_complete(), "{}", report.render());

    let cloud: Vec<_> = items
        .iter()
        .filter(|i| i.kind != "AWS::Organizations::Account")
        .cloned()
        .collect();
    assert_eq!(keys(&cloud), seeded(&seed));
    for a in &report.accounts {
        assert_eq!(
            a.regions,
            vec!["us-east-1", "eu-west-1"],
            "enabled regions of {}",
            a.account_id
        );
    }
    // One scope per account × region × kind (S3 included: read once, reported per home region).
    assert_eq!(report.scopes.len(), 4 * 2 * KINDS.len() + 1);

    let accounts: Vec<_> = items
        .iter()
        .filter(|i| i.kind == "AWS::Organizations::Account")
        .collect();
    assert_eq!(accounts.len(), 4);
    let m0 = accounts
        .iter()
        .find(|i| i.value()["Id"] == want[0].as_str() || i.value()["Name"] == "Member 0")
        .unwrap();
    assert_eq!(m0.value()["Identifier"], m0.value()["Id"]);
    assert_eq!(m0.value()["Status"], "ACTIVE");
    assert_eq!(m0.value()["__AccountId"], MGMT);
    assert!(
        m0.value()["JoinedTimestamp"]
            .as_str()
            .unwrap()
            .contains(' '),
        "{}",
        m0.value()
    );

    // Items carry Ocean's fields; S3 items are in their home region and were
    // read with GetResource there (Arn, Tags come only from GetResource).
    let b = items
        .iter()
        .find(|i| i.kind == "AWS::S3::Bucket" && i.region == "eu-west-1")
        .unwrap();
    assert_eq!(b.value()["__Region"], "eu-west-1");
    assert!(
        b.value()["Properties"]["Arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:s3:::")
    );
    assert!(b.value()["Properties"]["Tags"].is_array());
    let f = items
        .iter()
        .find(|i| i.kind == "AWS::Lambda::Function")
        .unwrap();
    assert_eq!(f.value()["__Kind"], "AWS::Lambda::Function");
    assert!(f.value()["Properties"].is_object());

    // Paging: pages of 2, so listing took more calls than there are scopes.
    let stats = emu.stats().await.unwrap();
    let lists = stats["apis"]["cloudcontrol:ListResources"]["calls"]
        .as_u64()
        .unwrap();
    assert!(
        lists as usize > report.scopes.len(),
        "{lists} ListResources calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ou_ids_are_walked_recursively_and_region_policy_applies() {
    let emu = emulator().await;
    let seed = seed(&emu, 3, 2, true).await;
    let ous = seed["organization"]["ous"].as_array().unwrap();
    let ou = |path: &str| {
        ous.iter().find(|o| o["path"] == path).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let accounts = seed["accounts"].as_array().unwrap();
    let under = |prefix: &str| -> BTreeSet<String> {
        accounts
            .iter()
            .filter(|a| a["ou_path"].as_str().unwrap().starts_with(prefix))
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };

    // /Workloads holds Prod and Dev: two of the three members, found through the nested OUs.
    let cfg = AwsConfig {
        organizational_unit_ids: vec![ou("/Workloads")],
        region_policy: RegionPolicy {
            allow: vec![],
            deny: vec!["eu-west-1".into()],
        },
        ..org_config(&emu)
    };
    let (_t, sync) = tenant_sync(cfg, limits()).await;
    let got: BTreeSet<String> = sync.accounts().iter().map(|a| a.id.clone()).collect();
    assert_eq!(got, under("/Workloads"));
    assert_eq!(got.len(), 2);
    let (items, report) = run(sync, kinds()).await;
    assert!(report.is_complete(), "{}", report.render());
    assert!(
        report.scopes.iter().all(|s| s.key.region == "us-east-1"),
        "eu-west-1 is denied by policy"
    );
    let want: BTreeSet<_> = seeded(&seed)
        .into_iter()
        .filter(|(a, r, _, _)| got.contains(a) && r == "us-east-1")
        .collect();
    assert_eq!(keys(&items), want);
    // Buckets homed in eu-west-1 are listed (S3 is global) but not read:
    // their home was asked with GetBucketLocation and found outside.
    for a in &got {
        let s3 = report.scope(a, "us-east-1", "AWS::S3::Bucket").unwrap();
        let elsewhere = seed["identifiers"][a]["eu-west-1"]["AWS::S3::Bucket"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(s3.outside_regions as usize, elsewhere, "{a}");
    }

    // Both top-level OUs: every member, and an allow-list policy.
    let cfg = AwsConfig {
        organizational_unit_ids: vec![ou("/Workloads"), ou("/Sandbox")],
        region_policy: RegionPolicy {
            allow: vec!["eu-west-1".into()],
            deny: vec![],
        },
        ..org_config(&emu)
    };
    let (_t, sync) = tenant_sync(cfg, limits()).await;
    let got: BTreeSet<String> = sync.accounts().iter().map(|a| a.id.clone()).collect();
    assert_eq!(got, member_ids(&seed).into_iter().collect());
    let (items, report) = run(sync, kinds()).await;
    assert!(report.is_complete(), "{}", report.render());
    let want: BTreeSet<_> = seeded(&seed)
        .into_iter()
        .filter(|(_, r, _, _)| r == "eu-west-1")
        .collect();
    assert_eq!(keys(&items), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_the_calls_throttled_still_gives_exactly_the_seeded_set() {
    let emu = emulator().await;
    let seed = seed(&emu, 3, 3, false).await;
    let cfg = AwsConfig {
        account_role_arns: role_arns(&seed),
        ..member_only_config(&emu)
    };
    emu.faults(&json!({"seed": 7, "rules": [{"api": "*", "throttle": 0.5}]}))
        .await
        .unwrap();
    emu.reset_stats().await.unwrap();
    let (_t, sync) = tenant_sync(cfg, limits()).await;
    let (items, report) = run(sync, kinds()).await;
    assert!(report.is_complete(), "{}", report.render());
    assert_eq!(keys(&items), seeded(&seed));

    // Every throttle reached Berth's limiter (none hidden by SDK retries),
    // and every call the emulator saw was counted.
    let stats = emu.stats().await.unwrap();
    let c = report.calls();
    assert!(c.throttles > 50, "{c:?}");
    assert_eq!(
        c.throttles,
        stats["totals"]["throttled"].as_u64().unwrap(),
        "{stats}"
    );
    assert_eq!(c.calls, stats["total"].as_u64().unwrap());
    assert_eq!(c.retries, c.throttles);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_in_one_region_marks_only_that_scope() {
    let emu = emulator().await;
    let seed = seed(&emu, 2, 2, false).await;
    let members = member_ids(&seed);
    let denied = members[0].clone();
    emu.faults(&json!({"rules": [
        {"api": "cloudcontrol:*", "account": denied, "region": "eu-west-1", "access_denied": true}
    ]}))
    .await
    .unwrap();
    let cfg = AwsConfig {
        account_role_arns: role_arns(&seed),
        ..member_only_config(&emu)
    };
    let (_t, sync) = tenant_sync(cfg, limits()).await;
    let (items, report) = run(sync, kinds()).await;
    for s in &report.scopes {
        let here = s.key.account_id == denied && s.key.region == "eu-west-1";
        match (&s.status, here) {
            (ScopeStatus::Denied(m), true) => assert!(m.contains("AccessDenied"), "{m}"),
            (ScopeStatus::Complete, false) => {}
            other => panic!("{}: {other:?}\n{}", s.key.to_text(), report.render()),
        }
    }
    assert_eq!(report.scopes.len(), 2 * 2 * KINDS.len());
    assert!(!report.is_complete());
    let want: BTreeSet<_> = seeded(&seed)
        .into_iter()
        .filter(|(a, r, _, _)| !(a == &denied && r == "eu-west-1"))
        .collect();
    assert_eq!(keys(&items), want);
}

fn role_arns(seed: &serde_json::Value) -> Vec<String> {
    seed["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["read_role_arn"].as_str().unwrap().to_string())
        .collect()
}

fn member_only_config(emu: &berth_test_kit::emulator::Emulator) -> AwsConfig {
    AwsConfig {
        auth: static_auth(),
        external_id: Some(EXTERNAL_ID.into()),
        endpoint_url: Some(emu.endpoint.clone()),
        ..AwsConfig::default()
    }
}
