//! `berth sync` end to end: the local AWS emulator (an Organization of 3 member accounts × 2
//! regions, every seed kind) → the shipped plugins → the fake Port. The catalog must equal
//! what `berth discover | berth map` computes; a second sync must be a no-op; resources
//! deleted in AWS must disappear from Port, and only they.

mod e2e_support;

use std::collections::BTreeSet;

use e2e_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_fills_port_with_what_map_computes_then_converges() {
    let w = world().await;

    let out = w.sync().await;
    let err = text(&out.stderr);
    assert!(out.status.success(), "first sync: {err}");
    assert!(err.contains("report: "), "{err}");
    // The HTML report: header, accounts × kinds, per resource entry, timings.
    let html = std::fs::read_to_string(w.dir.path().join("state/berth-report.html")).unwrap();
    for needle in [
        "<b class=\"o-complete\">complete</b>",
        "Accounts × kinds",
        "Per resource entry",
        "resources[2] AWS::EC2::Instance",
        "Timings",
        "berth.yaml",
    ] {
        assert!(html.contains(needle), "report lacks {needle:?}");
    }

    let expected = w.expected().await;
    let catalog = w.catalog();
    assert!(
        expected.len() >= 40,
        "only {} entities expected",
        expected.len()
    );
    w.assert_matches_aws().await;
    // Every seed kind made it, in every account and region where it was seeded.
    let kinds: BTreeSet<String> = expected
        .values()
        .flatten()
        .filter_map(|e| e["properties"]["kind"].as_str().map(str::to_string))
        .collect();
    for k in [
        "AWS::S3::Bucket",
        "AWS::EC2::Instance",
        "AWS::ECS::Cluster",
        "AWS::Lambda::Function",
        "AWS::RDS::DBInstance",
    ] {
        assert!(kinds.contains(k), "no {k} entity: {kinds:?}");
    }
    let accounts = expected.keys().filter(|(bp, _)| bp == "awsAccount").count();
    assert_eq!(accounts, 4, "management + 3 members");

    // Port's sync status shows a completed resync with per-kind metrics.
    let snap = w.port.snapshot();
    assert_eq!(
        snap.integrations["berth-e2e"]["resyncState"]["status"],
        "completed"
    );
    assert!(snap.sync_metrics["berth-e2e"].len() >= 6);

    // A second sync changes nothing: no upsert, no delete.
    w.port.clear_requests();
    let out = w.sync().await;
    assert!(out.status.success(), "second sync: {}", text(&out.stderr));
    assert_eq!(w.writes(), Vec::<String>::new(), "the second sync wrote");
    assert_eq!(w.catalog(), catalog);

    // Two EC2 instances of one member account and region are terminated. (Instance ids are
    // unique; the seed reuses function and database names across accounts, and the default
    // mapping's identifiers for those are names, so such an entity lives on while any
    // account still has it.)
    let member = w.seed["accounts"][0]["id"]
        .as_str()
        .expect("a member account id")
        .to_string();
    let gone_ids: Vec<String> = w.seed["identifiers"][&member]["eu-west-1"]["AWS::EC2::Instance"]
        .as_array()
        .expect("seeded instances")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(gone_ids.len(), 2);
    let ids: Vec<&str> = gone_ids.iter().map(String::as_str).collect();
    w.emu
        .remove(&member, "eu-west-1", "AWS::EC2::Instance", &ids)
        .await
        .expect("terminate instances");
    w.port.clear_requests();
    let out = w.sync().await;
    let err = text(&out.stderr);
    assert!(out.status.success(), "third sync: {err}");
    let after = w.catalog();
    let gone: BTreeSet<_> = catalog.keys().filter(|k| !after.contains_key(*k)).collect();
    assert_eq!(gone.len(), 2, "deleted: {gone:?}\n{err}");
    let gone_ids: BTreeSet<&str> = gone_ids.iter().map(String::as_str).collect();
    for (_, id) in &gone {
        assert!(
            gone_ids.contains(id.as_str()),
            "{id} should not have been deleted"
        );
    }
    assert_eq!(after.len(), catalog.len() - 2);
}

/// The kind plugins enrich through the host's AWS lookups, in each item's own account and
/// region: an EC2 instance carries its security groups, subnet and VPC; an ECS cluster its
/// services and their task definitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_enrich_through_aws_lookups() {
    let w = world_with(
        r#"plugins: {plugins}
mapping:
  resources:
  - kind: AWS::EC2::Instance
    selector: {query: 'true'}
    port:
      entity:
        mappings:
          identifier: .Identifier
          blueprint: '"enriched"'
          properties:
            account: .__AccountId
            region: .__Region
            securityGroups: '.__SecurityGroups | map(select(.GroupId != null)) | length'
            subnet: .__Subnet.SubnetId
            vpc: .__Vpc.VpcId
            subnetVpc: .__Subnet.VpcId
  - kind: AWS::ECS::Cluster
    selector: {query: 'true', useGetResourceAPI: 'true'}
    port:
      entity:
        mappings:
          identifier: .Properties.Arn
          blueprint: '"enriched"'
          properties:
            account: .__AccountId
            region: .__Region
            services: '.__Services | length'
            taskDefinitions: '[.__TaskDefinitions[] | select(. != null)] | length'
"#,
    )
    .await;
    let client = berth::catalog::port::PortClient::new(berth::catalog::port::ClientConfig::new(
        w.port.base_url(),
        berth::catalog::port::Credentials::new("fake-client-id", "fake-client-secret"),
        berth::catalog::port::UserAgent::exporter("aws", "0.1.0", "setup"),
    ))
    .unwrap();
    client
        .ensure_blueprints(&[json!({
            "identifier": "enriched", "title": "Enriched",
            "schema": {"properties": {
                "account": {"type": "string"}, "region": {"type": "string"},
                "securityGroups": {"type": "number"}, "subnet": {"type": "string"},
                "vpc": {"type": "string"}, "subnetVpc": {"type": "string"},
                "services": {"type": "number"}, "taskDefinitions": {"type": "number"}
            }}
        })])
        .await
        .unwrap();
    let out = w.sync().await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let snap = w.port.snapshot();
    let enriched = &snap.entities["enriched"];
    let (mut instances, mut clusters) = (0, 0);
    let mut services_per_scope: std::collections::BTreeMap<(String, String), u64> =
        Default::default();
    for (id, e) in enriched {
        let p = &e.properties;
        if id.starts_with("i-") {
            instances += 1;
            assert!(p["securityGroups"].as_u64().unwrap() >= 1, "{id}: {p:?}");
            assert!(
                p["subnet"].as_str().unwrap().starts_with("subnet-"),
                "{id}: {p:?}"
            );
            assert!(
                p["vpc"].as_str().unwrap().starts_with("vpc-"),
                "{id}: {p:?}"
            );
            assert_eq!(p["vpc"], p["subnetVpc"], "{id}: the subnet is in the VPC");
        } else {
            clusters += 1;
            let key = (
                p["account"].as_str().unwrap().to_string(),
                p["region"].as_str().unwrap().to_string(),
            );
            let services = p["services"].as_u64().unwrap();
            *services_per_scope.entry(key).or_default() += services;
            if services > 0 {
                assert!(p["taskDefinitions"].as_u64().unwrap() >= 1, "{id}: {p:?}");
            }
        }
    }
    assert_eq!(instances, 12, "3 members x 2 regions x 2 instances");
    assert_eq!(clusters, 12);
    // Every seeded service shows up under a cluster of its own account and region.
    for ((account, region), n) in &services_per_scope {
        let seeded = w.seeded(account, region, "AWS::ECS::Service").len() as u64;
        assert_eq!(*n, seeded, "services of {account}/{region}");
        assert!(seeded > 0);
    }
}

async fn http_get(url: &str) -> Option<String> {
    reqwest::get(url).await.ok()?.text().await.ok()
}

/// `berth run`: resyncs on start, serves /healthz and /metrics, resyncs again when Port's
/// resync request moves (as Ocean's POLLING listener does), queues requests that come while a
/// resync runs (one more resync after it, never two at once), and stops cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_run_resyncs_on_request_and_serves_metrics() {
    let w = world_with(
        "mapping: {mapping}\nplugins: {plugins}\nschedule: {intervalMinutes: 60, pollSeconds: 1}\n",
    )
    .await;
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["run", "--config"])
        .arg(&w.config)
        .args(["--listen", &listen.to_string()])
        .env("BERTH_TEST_PORT_ID", "fake-client-id")
        .env("BERTH_CACHE_DIR", repo().join("target/test-aot-cache"))
        // A file, not a pipe: a pipe nobody reads until the end could fill and stall the child.
        .stderr(std::fs::File::create(w.dir.path().join("run.log")).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://{listen}");
    let completed = |n: u32| format!("berth_resyncs_total{{outcome=\"completed\"}} {n}");
    let mut metrics = String::new();
    for _ in 0..600 {
        metrics = http_get(&format!("{base}/metrics"))
            .await
            .unwrap_or_default();
        if metrics.contains(&completed(1)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(metrics.contains(&completed(1)), "{metrics}");
    assert!(
        metrics.contains("berth_entities{kind=\"AWS::EC2::Instance-2\",phase=\"loaded\"} 12"),
        "{metrics}"
    );
    assert!(
        metrics.contains("berth_scopes{status=\"complete\"}"),
        "{metrics}"
    );
    assert_eq!(
        http_get(&format!("{base}/healthz")).await.as_deref(),
        Some("ok\n")
    );
    assert_eq!(w.resync_status(), "completed");

    // A resync request from Port's UI (an empty PATCH of the integration).
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/v1/auth/access_token", w.port.base_url()))
        .json(&json!({"clientId": "fake-client-id", "clientSecret": "fake-client-secret"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request = || async {
        let r = http
            .patch(format!("{}/v1/integration/berth-e2e", w.port.base_url()))
            .bearer_auth(token["accessToken"].as_str().unwrap())
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    };
    request().await;
    for _ in 0..600 {
        metrics = http_get(&format!("{base}/metrics"))
            .await
            .unwrap_or_default();
        if metrics.contains(&completed(2)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(metrics.contains(&completed(2)), "{metrics}");
    // Nothing changed in AWS: the second resync wrote nothing.
    assert!(
        metrics.contains("berth_entities{kind=\"AWS::EC2::Instance-2\",phase=\"unchanged\"} 12"),
        "{metrics}"
    );

    // Requests that come while a resync runs are queued: one more resync right after it, never
    // a second one beside it and never none. AWS is slowed down so the requests land mid-sync.
    w.emu
        .faults(&json!({"rules": [{"api": "cloudcontrol:*", "latency_ms": 300}]}))
        .await
        .unwrap();
    request().await;
    let mut saw_running = false;
    for _ in 0..600 {
        metrics = http_get(&format!("{base}/metrics"))
            .await
            .unwrap_or_default();
        if metrics.lines().any(|l| l == "berth_resync_running 1") {
            saw_running = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(saw_running, "the third resync never started: {metrics}");
    request().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    request().await;
    metrics = http_get(&format!("{base}/metrics"))
        .await
        .unwrap_or_default();
    assert!(
        metrics.lines().any(|l| l == "berth_resync_running 1") && metrics.contains(&completed(2)),
        "the requests should come while the third resync runs: {metrics}"
    );
    for _ in 0..1200 {
        metrics = http_get(&format!("{base}/metrics"))
            .await
            .unwrap_or_default();
        if metrics.contains(&completed(4)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        metrics.contains(&completed(4)),
        "the requests during the third resync were dropped: {metrics}\n{}",
        std::fs::read_to_string(w.dir.path().join("run.log")).unwrap_or_default()
    );
    // Two requests during one resync make one more resync, not two.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    metrics = http_get(&format!("{base}/metrics"))
        .await
        .unwrap_or_default();
    assert!(
        metrics.contains(&completed(4)) && metrics.lines().any(|l| l == "berth_resync_running 0"),
        "{metrics}"
    );

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let log = std::fs::read_to_string(w.dir.path().join("run.log")).unwrap();
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(log.matches("resync starting").count(), 4, "{log}");
    assert_eq!(log.matches("resync finished").count(), 4, "{log}");
}
