//! Sync metrics as Ocean posts them to the ingest URLs: every metric name its Prometheus
//! registry produces is taken, values that are not numbers are not, and reads answer in the
//! shape of the spec's response.
//! Owns these tests only; must not touch the server's internals (HTTP, the public handle and
//! `berth_fake_port::spec` only).

use berth_fake_port::client::Fake;
use berth_fake_port::spec::spec;
use serde_json::{Value, json};

/// One kind's metrics as Ocean's `generate_metrics` nests them (label by label, Prometheus
/// sample values as numbers), including the names the spec's response does not list.
fn ocean_kind_metrics(event: &str) -> Value {
    json!({
        "integrationType": "aws",
        "integrationIdentifier": "my-aws",
        "integrationVersion": "0.1.0",
        "oceanVersion": "0.28.0",
        "kindIdentifier": "AWS::S3::Bucket-0",
        "kind": "AWS::S3::Bucket",
        "kindIndex": 0,
        "eventId": event,
        "syncState": "completed",
        "metrics": {"phase": {
            "resync": {"duration_seconds": 12.25, "success": 1.0},
            "extract": {
                "duration_seconds": 3.5,
                "object_count_type": {"raw_extracted": {"object_count": 10.0}},
                "endpoint": {"https://api.example/x": {"rate_limit_wait_seconds": 0.0}}
            },
            "transform": {
                "duration_seconds": 0.75,
                "object_count_type": {"transformed": {"object_count": 9}, "filtered_out": {"object_count": 1}, "failed": {"object_count": 0}}
            },
            "load": {
                "duration_seconds": 2,
                "object_count_type": {"loaded": {"object_count": 9}, "failed": {"object_count": 0}, "skipped": {"object_count": 0}}
            },
            "delete": {
                "duration_seconds": 0.5,
                "object_count_type": {"deleted": {"object_count": 2}}
            },
            "top_sort": {"duration_seconds": 0.01}
        }}
    })
}

async fn ingest_path(fake: &Fake) -> String {
    let r = fake
        .post(
            "/v1/integration",
            json!({"installationId": "my-aws", "installationAppType": "aws", "config": {}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let url = r.body["integration"]["metricAttributes"]["ingestUrl"]
        .as_str()
        .unwrap();
    url.strip_prefix(&fake.base).unwrap().to_string()
}

#[tokio::test]
async fn ingest_accepts_every_metric_name_ocean_sends() {
    let fake = Fake::start().await;
    let path = ingest_path(&fake).await;
    let r = fake
        .post(
            &format!("{path}/syncMetrics"),
            json!({"syncKindsMetrics": [ocean_kind_metrics("ev-1")]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = fake
        .put(
            &format!("{path}/syncMetrics/resync/ev-1/kind/AWS::S3::Bucket-0"),
            json!({"syncKindMetrics": ocean_kind_metrics("ev-1")}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Stored as sent.
    let state = fake.state().await;
    let stored = &state["sync_metrics"]["my-aws"][0]["metrics"]["phase"];
    assert_eq!(stored["delete"]["duration_seconds"], 0.5);
    assert_eq!(stored["top_sort"]["duration_seconds"], 0.01);

    // Read back as Port answers: the spec's response schema, which lists no
    // `phase.delete.duration_seconds`, so those names are left out, the listed ones kept.
    let r = fake
        .get("/v1/integration/my-aws/syncMetrics?resyncId=ev-1")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec()
        .validate_response(
            "get",
            "/v1/integration/{integrationInternalId}/syncMetrics",
            200,
            &r.body,
        )
        .unwrap();
    let phase = &r.body["data"][0]["metrics"]["phase"];
    assert_eq!(phase["resync"]["duration_seconds"], 12.25);
    assert_eq!(
        phase["delete"]["object_count_type"]["deleted"]["object_count"],
        2
    );
    assert!(phase["delete"].get("duration_seconds").is_none(), "{phase}");
    assert!(phase.get("top_sort").is_none(), "{phase}");
}

#[tokio::test]
async fn ingest_refuses_metrics_that_are_not_numbers() {
    let fake = Fake::start().await;
    let path = ingest_path(&fake).await;
    // `{}` would be an empty group of names, which is fine.
    let garbage = [json!("1.5"), json!(true), Value::Null, json!([1])];
    // Listed in the spec, not listed, and nested under a name the spec does not list.
    let places: [&[&str]; 3] = [
        &["phase", "resync", "duration_seconds"],
        &["phase", "delete", "duration_seconds"],
        &[
            "phase",
            "extract",
            "endpoint",
            "e",
            "rate_limit_wait_seconds",
        ],
    ];
    for place in places {
        for bad in &garbage {
            let mut item = ocean_kind_metrics("ev-2");
            let mut at = &mut item["metrics"];
            for key in place {
                at = &mut at[*key];
            }
            *at = bad.clone();
            let r = fake
                .post(
                    &format!("{path}/syncMetrics"),
                    json!({"syncKindsMetrics": [item.clone()]}),
                )
                .await;
            assert_eq!(r.status, 422, "{place:?} = {bad}: {}", r.body);
            let msg = r.body["message"].as_str().unwrap();
            assert!(
                msg.contains(&place.join("/")),
                "{place:?} = {bad}: the message names the field: {msg}"
            );
            let r = fake
                .put(
                    &format!("{path}/syncMetrics/resync/ev-2/kind/AWS::S3::Bucket-0"),
                    json!({"syncKindMetrics": item}),
                )
                .await;
            assert_eq!(r.status, 422, "PUT {place:?} = {bad}: {}", r.body);
        }
    }
    // `metrics` itself must be an object with `phase`, as in the spec.
    for metrics in [json!(3), json!({}), json!({"phase": 1})] {
        let mut item = ocean_kind_metrics("ev-2");
        item["metrics"] = metrics.clone();
        let r = fake
            .post(
                &format!("{path}/syncMetrics"),
                json!({"syncKindsMetrics": [item]}),
            )
            .await;
        assert_eq!(r.status, 422, "metrics = {metrics}: {}", r.body);
    }
    assert!(
        fake.state().await["sync_metrics"]["my-aws"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "nothing refused was stored"
    );
}
