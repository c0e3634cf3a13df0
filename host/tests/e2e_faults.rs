//! The fault suite, end to end (`berth sync` / `berth run` against the emulator and the fake
//! Port): each fault ends the sync with the right status, deletes no entity wrongly, loses
//! none, and a following clean sync converges to exactly what AWS has.

mod e2e_support;

use std::time::Duration;

use e2e_support::*;
use serde_json::json;

/// A world with one clean sync done; returns the keys Port holds after it.
async fn synced(w: &World) -> std::collections::BTreeSet<(String, String)> {
    let out = w.sync().await;
    assert!(out.status.success(), "baseline sync: {}", text(&out.stderr));
    w.keys()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_throttling_storm() {
    let w = world().await;
    let before = synced(&w).await;
    w.emu
        .faults(&json!({"seed": 3, "rules": [
            {"api": "cloudcontrol:*", "throttle": 0.5},
            {"api": "organizations:*", "throttle": 0.3},
            {"api": "sts:*", "throttle": 0.3}
        ]}))
        .await
        .unwrap();
    let out = w.sync().await;
    let err = text(&out.stderr);
    // Throttling is retried, never taken for an empty result.
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains(", 0 throttles"),
        "no throttle was seen: {err}"
    );
    assert_eq!(w.keys(), before);
    w.assert_converges().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_5xx() {
    let w = world().await;
    let before = synced(&w).await;
    w.emu
        .faults(&json!({"seed": 5, "rules": [
            {"api": "cloudcontrol:*", "error_5xx": 0.2, "status": 503}
        ]}))
        .await
        .unwrap();
    let out = w.sync().await;
    let code = out.status.code();
    assert!(matches!(code, Some(0 | 1)), "{}", text(&out.stderr));
    assert_eq!(w.keys(), before, "{}", text(&out.stderr));
    w.assert_converges().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_in_one_region_keeps_its_entities() {
    let w = world().await;
    let before = synced(&w).await;
    let member = w.member(0);
    // An instance goes away in the region that is about to be denied: while the region is
    // unreadable, its entity must stay.
    let instances = w.seeded(&member, "eu-west-1", "AWS::EC2::Instance");
    w.emu
        .remove(&member, "eu-west-1", "AWS::EC2::Instance", &[&instances[0]])
        .await
        .unwrap();
    w.emu
        .faults(&json!({"rules": [
            {"api": "cloudcontrol:*", "account": member, "region": "eu-west-1", "access_denied": true}
        ]}))
        .await
        .unwrap();
    let out = w.sync().await;
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a denied region is a partial sync: {err}"
    );
    assert!(err.contains("denied"), "{err}");
    assert_eq!(w.keys(), before, "nothing may be deleted: {err}");
    assert_eq!(w.resync_status(), "failed");
    w.assert_converges().await;
    assert!(!w.keys().iter().any(|(_, id)| id == &instances[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_for_one_account_keeps_its_entities() {
    let w = world().await;
    let before = synced(&w).await;
    let member = w.member(1);
    w.emu
        .faults(&json!({"rules": [{"account": member, "access_denied": true}]}))
        .await
        .unwrap();
    let out = w.sync().await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(w.keys(), before, "nothing may be deleted: {err}");
    w.assert_converges().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_removed_from_the_organization_leaves_the_catalog() {
    let w = world().await;
    let before = synced(&w).await;
    let member = w.member(2);
    w.emu
        .remove(
            "123456789012",
            "us-east-1",
            "AWS::Organizations::Account",
            &[&member],
        )
        .await
        .expect("remove the account from the organization");
    let out = w.sync().await;
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let after = w.keys();
    assert!(after.len() < before.len(), "{err}");
    assert!(
        !after.contains(&("awsAccount".to_string(), member.clone())),
        "the account entity is gone"
    );
    for id in w.seeded(&member, "us-east-1", "AWS::EC2::Instance") {
        assert!(!after.iter().any(|(_, i)| i == &id), "{id} should be gone");
    }
    w.assert_matches_aws().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_429_5xx_413_and_an_early_401() {
    let w = world().await;
    w.port.set_faults(berth_fake_port::Faults {
        seed: 2,
        rate_429: 0.3,
        // This sync makes only ~15 matching Port calls: a high 5xx rate makes sure some land.
        rate_5xx: 0.3,
        early_401: 1,
        retry_after_secs: 1,
        force_413_over_bytes: Some(8_000),
        path_contains: Some("/v1/blueprints/".into()),
        ..berth_fake_port::Faults::default()
    });
    let out = w.sync().await;
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let faults: std::collections::BTreeSet<String> = w
        .port
        .requests()
        .into_iter()
        .filter_map(|r| r.fault)
        .collect();
    for f in ["injected_429", "injected_5xx", "early_401", "forced_413"] {
        assert!(faults.contains(f), "fault {f} never fired: {faults:?}");
    }
    w.assert_matches_aws().await;
    w.assert_converges().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_traps_on_some_items() {
    let plugins = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(repo().join("target/plugins")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, plugins.path().join(f.file_name().unwrap())).unwrap();
    }
    let w = world_with(&format!(
        "mapping: {{mapping}}\nplugins: {}\n",
        plugins.path().display()
    ))
    .await;
    let before = synced(&w).await;
    // The Lambda plugin is replaced by one that traps on `*-001` functions in eu-west-1.
    std::fs::remove_file(plugins.path().join("lambda-function.wasm")).unwrap();
    std::fs::copy(
        repo().join("target/test-plugins/trap-lambda.wasm"),
        plugins.path().join("trap-lambda.wasm"),
    )
    .unwrap();
    let out = w.sync().await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("trap"), "{err}");
    assert_eq!(w.keys(), before, "{err}");
    std::fs::remove_file(plugins.path().join("trap-lambda.wasm")).unwrap();
    std::fs::copy(
        repo().join("target/plugins/lambda-function.wasm"),
        plugins.path().join("lambda-function.wasm"),
    )
    .unwrap();
    w.assert_converges().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_with_an_endless_expression() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mapping.yaml");
    let default = std::fs::read_to_string(repo().join("mappings/default.yaml")).unwrap();
    std::fs::write(&mapping, &default).unwrap();
    let w = world_with(&format!(
        "mapping: {}\nplugins: {{plugins}}\nlimits: {{pluginTimeoutMs: 1500}}\n",
        mapping.display()
    ))
    .await;
    let before = synced(&w).await;
    // The Lambda entry's runtime never finishes computing.
    let endless = default.replace("runtime: .Properties.Runtime", "runtime: 'def f: f; f'");
    assert_ne!(endless, default);
    std::fs::write(&mapping, endless).unwrap();
    let out = w.sync().await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("time limit"), "{err}");
    assert_eq!(w.keys(), before, "{err}");
    std::fs::write(&mapping, &default).unwrap();
    w.assert_converges().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_sync_abandons_before_reconciliation() {
    let w = world().await;
    let before = synced(&w).await;
    let member = w.member(0);
    let instances = w.seeded(&member, "us-east-1", "AWS::EC2::Instance");
    w.emu
        .remove(&member, "us-east-1", "AWS::EC2::Instance", &[&instances[0]])
        .await
        .unwrap();
    // Slow AWS down so the stop lands mid-sync.
    w.emu
        .faults(&json!({"rules": [{"api": "cloudcontrol:*", "latency_ms": 400}]}))
        .await
        .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["run", "--once", "--config"])
        .arg(&w.config)
        .env("BERTH_TEST_PORT_ID", "fake-client-id")
        .env("BERTH_CACHE_DIR", repo().join("target/test-aot-cache"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the resync is under way (Port hears `running`), then stop it.
    let mut waited = Duration::ZERO;
    while w.resync_status() != "running" && waited < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("abandoned"), "{err}");
    assert_eq!(w.resync_status(), "aborted");
    assert_eq!(w.keys(), before, "an abandoned sync deletes nothing: {err}");
    w.assert_converges().await;
    assert!(!w.keys().iter().any(|(_, id)| id == &instances[0]));
}
