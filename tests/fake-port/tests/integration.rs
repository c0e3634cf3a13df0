//! The integration resource of the fake Port: create/get/patch, resyncState, resync requests,
//! raw examples, sync metrics posted to the ingest URL and read back through the spec's routes.
//! Owns these tests only; must not touch the server's internals (HTTP, the public handle
//! and `berth_fake_port::spec` only) or files outside a temporary directory.

use berth_fake_port::client::Fake;
use berth_fake_port::spec::spec;
use serde_json::{Value, json};

fn kind_metrics(event: &str, kind_index: u64, state: &str) -> Value {
    json!({
        "integrationType": "aws",
        "integrationIdentifier": "my-aws",
        "integrationVersion": "0.1.0",
        "oceanVersion": "berth-0.1.0",
        "installationType": "OnPrem",
        "executionMode": "berth",
        "kindIdentifier": format!("s3-bucket-{kind_index}"),
        "kind": "s3-bucket",
        "kindIndex": kind_index,
        "eventId": event,
        "syncState": state,
        "blueprint": "awsS3Bucket",
        "metrics": {"phase": {
            "resync": {"duration_seconds": 1.5, "success": 1},
            "extract": {"object_count_type": {"raw_extracted": {"object_count": 10}, "failed": {"object_count": 0}}},
            "transform": {"object_count_type": {"transformed": {"object_count": 9}, "filtered_out": {"object_count": 1}}},
            "load": {"object_count_type": {"loaded": {"object_count": 8}, "failed": {"object_count": 1}, "skipped": {"object_count": 0}}},
            "delete": {"object_count_type": {"deleted": {"object_count": 2}}}
        }}
    })
}

async fn with_integration() -> (Fake, Value) {
    let fake = Fake::start().await;
    let r = fake.get("/v1/integration/my-aws").await;
    assert_eq!(r.status, 404, "absent until created");
    assert_eq!(r.body["error"], "not_found");
    let r = fake
        .post(
            "/v1/integration",
            json!({
                "installationId": "my-aws",
                "installationAppType": "aws",
                "version": "0.1.0",
                "changelogDestination": {},
                "config": {"deleteDependentEntities": true, "createMissingRelatedEntities": true,
                           "enableMergeEntity": true, "entityDeletionThreshold": 0.9, "resources": []},
                "actionsProcessingEnabled": false,
                "incrementalSyncEnabled": false,
                "createPortResourcesOrigin": "Empty"
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let integ = r.body["integration"].clone();
    (fake, integ)
}

#[tokio::test]
async fn integration_lifecycle_and_resync_state() {
    let (fake, integ) = with_integration().await;
    assert_eq!(integ["installationId"], "my-aws");
    assert_eq!(integ["identifier"], "my-aws");
    assert!(integ["_id"].as_str().unwrap().starts_with("integration_"));
    assert_eq!(integ["resyncState"], Value::Null);
    assert!(
        integ["metricAttributes"]["ingestUrl"]
            .as_str()
            .unwrap()
            .starts_with(&fake.base)
    );
    let dup = fake
        .post("/v1/integration", json!({"installationId": "my-aws"}))
        .await;
    assert_eq!(dup.status, 409);

    // resyncState at the start and the end of a resync, as Ocean sends it.
    let r = fake
        .patch(
            "/v1/integration/my-aws/resync-state",
            json!({"status": "running", "lastResyncStart": "2026-03-01T10:00:00.123456+00:00",
                   "lastResyncEnd": null, "nextResync": null, "intervalInMinuets": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let state = &r.body["integration"]["resyncState"];
    assert_eq!(state["status"], "running");
    assert!(state["updatedAt"].is_string());
    let r = fake
        .patch(
            "/v1/integration/my-aws/resync-state",
            json!({"status": "completed", "lastResyncEnd": "2026-03-01T10:05:00Z", "nextResync": null,
                   "intervalInMinuets": 60}),
        )
        .await;
    let state = &r.body["integration"]["resyncState"];
    assert_eq!(state["status"], "completed");
    assert_eq!(state["lastResyncStart"], "2026-03-01T10:00:00.123456+00:00");
    assert_eq!(state["intervalInMinuets"], 60);
    let got = fake
        .get(&format!(
            "/v1/integration/{}",
            integ["_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        got.body["integration"]["resyncState"]["status"],
        "completed"
    );

    // Drift: the key really is misspelt in Port; the "corrected" spelling is refused.
    let r = fake
        .patch(
            "/v1/integration/my-aws/resync-state",
            json!({"status": "completed", "intervalInMinutes": 60}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("intervalInMinutes")
    );
    let r = fake
        .patch(
            "/v1/integration/my-aws/resync-state",
            json!({"status": "done"}),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = fake
        .patch(
            "/v1/integration/ghost/resync-state",
            json!({"status": "running"}),
        )
        .await;
    assert_eq!(r.status, 404);

    // PATCH (spec-validated) and PATCH config.
    let r = fake
        .patch(
            "/v1/integration/my-aws",
            json!({"title": "My AWS", "version": "0.2.0"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["integration"]["title"], "My AWS");
    let r = fake
        .patch("/v1/integration/my-aws", json!({"title": 5}))
        .await;
    assert_eq!(r.status, 422);
    let r = fake
        .patch(
            "/v1/integration/my-aws/config",
            json!({"config": {"deleteDependentEntities": false, "resources": []}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["integration"]["config"]["deleteDependentEntities"],
        false
    );
    let r = fake
        .patch(
            "/v1/integration/my-aws/config",
            json!({"deleteDependentEntities": false}),
        )
        .await;
    assert_eq!(r.status, 422, "config must be wrapped");
}

#[tokio::test]
async fn resync_requests_from_the_ui() {
    let (fake, _) = with_integration().await;
    let r = fake.get("/v1/integration/my-aws/resync-request").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["request"], json!({}));
    let r = fake
        .admin(
            reqwest::Method::POST,
            "/_fake/integrations/my-aws/resync-request",
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = fake.get("/v1/integration/my-aws/resync-request").await;
    assert!(r.body["request"]["updatedAt"].is_string());
    // An empty PATCH also asks for a resync (Port's spec).
    let before = r.body["request"]["id"].clone();
    fake.patch("/v1/integration/my-aws", json!({})).await;
    let r = fake.get("/v1/integration/my-aws/resync-request").await;
    assert_ne!(r.body["request"]["id"], before);
}

#[tokio::test]
async fn sync_metrics_round_trip_through_the_ingest_url() {
    let (fake, integ) = with_integration().await;
    let ingest = integ["metricAttributes"]["ingestUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let path = ingest.strip_prefix(&fake.base).unwrap().to_string();

    let r = fake
        .post(
            &format!("{path}/syncMetrics"),
            json!({"syncKindsMetrics": [kind_metrics("ev-1", 0, "syncing")]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = fake
        .put(
            &format!("{path}/syncMetrics/resync/ev-1/kind/s3-bucket-0"),
            json!({"syncKindMetrics": kind_metrics("ev-1", 0, "completed")}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = fake
        .post(&format!("{path}/heartbeat"), json!({"eventId": "ev-1"}))
        .await;
    assert_eq!(r.status, 200);
    let logs = integ["logAttributes"]["ingestUrl"].as_str().unwrap();
    let r = fake
        .post(
            logs.strip_prefix(&fake.base).unwrap(),
            json!({"logs": [{"message": "hello", "level": "INFO"}]}),
        )
        .await;
    assert_eq!(r.status, 200);

    // Read back through the spec's routes; the answer matches the spec's response schema.
    let r = fake
        .get("/v1/integration/my-aws/syncMetrics?resyncId=ev-1")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["count"], 1);
    let item = &r.body["data"][0];
    assert_eq!(item["syncState"], "completed");
    assert_eq!(
        item["metrics"]["phase"]["load"]["object_count_type"]["loaded"]["object_count"],
        8
    );
    assert!(
        item.get("executionMode").is_none(),
        "only the spec's keys are returned"
    );
    spec()
        .validate_response(
            "get",
            "/v1/integration/{integrationInternalId}/syncMetrics",
            200,
            &r.body,
        )
        .unwrap();
    let meta = fake
        .get(&format!(
            "/v1/integration/{}/syncsMetadata",
            integ["_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(meta.body["data"][0]["eventId"], "ev-1");
    assert_eq!(meta.body["data"][0]["syncState"], "completed");
    spec()
        .validate_response(
            "get",
            "/v1/integration/{integrationInternalId}/syncsMetadata",
            200,
            &meta.body,
        )
        .unwrap();

    // Metric names the spec does not list are taken (Ocean sends more, see ocean_metrics.rs),
    // values that are not numbers are not.
    let mut bad = kind_metrics("ev-2", 0, "completed");
    bad["metrics"]["phase"]["load"]["object_count_type"]["upserted"] = json!({"object_count": "1"});
    let r = fake
        .post(
            &format!("{path}/syncMetrics"),
            json!({"syncKindsMetrics": [bad]}),
        )
        .await;
    assert_eq!(r.status, 422);
    let msg = r.body["message"].as_str().unwrap();
    assert!(msg.contains("upserted/object_count"), "{msg}");
    let mut missing = kind_metrics("ev-2", 0, "completed");
    missing.as_object_mut().unwrap().remove("kindIdentifier");
    let r = fake
        .post(
            &format!("{path}/syncMetrics"),
            json!({"syncKindsMetrics": [missing]}),
        )
        .await;
    assert_eq!(r.status, 422);

    // Examples for the mapping UI.
    let r = fake
        .post(
            "/v1/integration/my-aws/kinds/s3-bucket/examples",
            json!({"examples": [{"Name": "b"}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        fake.state().await["kind_examples"]["my-aws"]["s3-bucket"],
        json!([{"Name": "b"}])
    );
}
