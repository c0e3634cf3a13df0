//! The plugins' Cloud Control lookups served from AWS: in the item's own
//! account and region, cached for the sync.

mod aws_support;

use aws_support::*;
use berth::discovery::AwsConfig;
use berth::plugin::lookup::AwsLookup;
use berth::plugin::lookup::{CloudLookup, LookupError};
use berth::scope::Place;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_get_and_list_in_the_right_account_and_region() {
    let emu = emulator().await;
    let seed = seed(&emu, 2, 2, false).await;
    let members = member_ids(&seed);
    let roles: Vec<String> = seed["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["read_role_arn"].as_str().unwrap().to_string())
        .collect();
    let cfg = AwsConfig {
        auth: static_auth(),
        account_role_arns: roles,
        external_id: Some(EXTERNAL_ID.into()),
        endpoint_url: Some(emu.endpoint.clone()),
        ..AwsConfig::default()
    };
    let (_t, sync) = tenant_sync(cfg, limits()).await;
    let lookup = AwsLookup::new(sync.clone());
    let (a, b) = (&members[0], &members[1]);

    // The same function name exists in every account and region; the answer
    // must be the one of the place asked.
    for (acct, region) in [(a, "eu-west-1"), (b, "us-east-1"), (b, "eu-west-1")] {
        let place = Place {
            account_id: acct.clone(),
            region: region.into(),
        };
        let f = lookup
            .get(&place, "AWS::Lambda::Function", "fn-001")
            .await
            .unwrap()
            .expect("fn-001");
        let p: serde_json::Value = serde_json::from_str(&f.properties).unwrap();
        let arn = p["Arn"].as_str().unwrap();
        assert_eq!(
            arn,
            format!("arn:aws:lambda:{region}:{acct}:function:fn-001")
        );
    }
    let place_b = Place {
        account_id: b.clone(),
        region: "us-east-1".into(),
    };
    assert_eq!(
        lookup
            .get(&place_b, "AWS::Lambda::Function", "no-such-fn")
            .await
            .unwrap(),
        None
    );

    // List with a resource model: services of one cluster, in b/us-east-1 only.
    let services = lookup
        .list(
            &place_b,
            "AWS::ECS::Service",
            Some(r#"{"Cluster":"cluster-000"}"#),
        )
        .await
        .unwrap();
    assert!(!services.is_empty());
    for s in &services {
        assert!(
            s.identifier
                .starts_with(&format!("arn:aws:ecs:us-east-1:{b}:service/")),
            "{}",
            s.identifier
        );
        assert!(s.identifier.ends_with("|cluster-000"), "{}", s.identifier);
    }
    let want: Vec<String> = seed["identifiers"][b]["us-east-1"]["AWS::ECS::Service"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .filter(|id| id.ends_with("|cluster-000"))
        .collect();
    let mut got: Vec<String> = services.iter().map(|s| s.identifier.clone()).collect();
    got.sort();
    assert_eq!(got, want);

    // Cached for the sync: asking again makes no call.
    let before = emu.stats().await.unwrap()["total"].as_u64().unwrap();
    let again = lookup
        .get(
            &Place {
                account_id: a.clone(),
                region: "eu-west-1".into(),
            },
            "AWS::Lambda::Function",
            "fn-001",
        )
        .await;
    assert!(again.unwrap().is_some());
    let listed = lookup
        .list(
            &place_b,
            "AWS::ECS::Service",
            Some(r#"{"Cluster":"cluster-000"}"#),
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), services.len());
    let after = emu.stats().await.unwrap()["total"].as_u64().unwrap();
    // The stats call itself is not counted by the emulator.
    assert_eq!(after, before, "cached lookups made calls");

    // Accounts outside the sync and bad requests are refused, not guessed.
    let other = Place {
        account_id: "999999999999".into(),
        region: "us-east-1".into(),
    };
    assert!(matches!(
        lookup.get(&other, "AWS::Lambda::Function", "fn-001").await,
        Err(LookupError::NotPermitted(_))
    ));
    let bad = lookup.get(&place_b, "AWS::No::Such", "x").await;
    assert!(
        matches!(bad, Err(LookupError::InvalidRequest(_))),
        "{bad:?}"
    );
    // Lookups are counted per API and type for the sync's figures; cache hits are not calls.
    let calls = lookup.calls();
    assert!(
        calls["GetResource AWS::Lambda::Function"].calls >= 1,
        "{calls:?}"
    );
    assert!(
        calls["ListResources AWS::ECS::Service"].calls >= 1,
        "{calls:?}"
    );
}
