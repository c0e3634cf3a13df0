//! What Port's own Ocean client calls when it starts, beyond the catalog routes:
//! `GET /v1/organization` (feature flags) and `GET /v1/integration/provision-enabled`.
//! Owns these tests only; must not touch the server's internals (HTTP, the public handle and
//! `berth_fake_port::spec` only).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_fake_port::Config;
use berth_fake_port::client::{Fake, UA};
use berth_fake_port::spec::spec;
use reqwest::Method;
use serde_json::{Value, json};

/// The `orgId` claim of a token the fake issued.
fn org_id_claim(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT payload");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["orgId"].clone()
}

#[tokio::test]
async fn organization_answers_what_ocean_reads() {
    let fake = Fake::start().await;
    let r = fake.get("/v1/organization").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["ok"], true);
    let org = &r.body["organization"];
    // Ocean: `response.json().get("organization", {}).get("featureFlags", [])`.
    assert_eq!(org["featureFlags"], json!([]));
    assert_eq!(org["id"], org_id_claim(&fake.token));
    assert!(org["name"].is_string(), "{org}");
    assert_eq!(org["settings"]["hiddenBlueprints"], json!([]));
}

#[tokio::test]
async fn provision_enabled_lists_no_integration_types() {
    let fake = Fake::start().await;
    let r = fake.get("/v1/integration/provision-enabled").await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Ocean: `response.json().get("integrations", [])`, then `type in integrations`.
    assert_eq!(r.body, json!({"ok": true, "integrations": []}));

    // The static path does not hide `/v1/integration/{id}`, nor the other way round.
    let r = fake
        .post(
            "/v1/integration",
            json!({"installationId": "my-aws", "installationAppType": "aws", "config": {}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = fake.get("/v1/integration/my-aws").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["integration"]["installationId"], "my-aws");
    let r = fake.get("/v1/integration/provision-enabled").await;
    assert_eq!(r.body["integrations"], json!([]));
}

#[tokio::test]
async fn startup_routes_need_a_token_like_the_others() {
    let fake = Fake::start().await;
    for path in ["/v1/organization", "/v1/integration/provision-enabled"] {
        let r = fake.raw(Method::GET, path, None, Some(UA), None).await;
        assert_eq!(r.status, 401, "{path} without a token: {}", r.body);
        assert_eq!(r.body["ok"], false);
        let r = fake
            .raw(Method::GET, path, None, Some(UA), Some("not-a-token"))
            .await;
        assert_eq!(r.status, 401, "{path} with a bad token");
    }
    // The spec's 401 shape for the organization route.
    let r = fake
        .raw(Method::GET, "/v1/organization", None, Some(UA), None)
        .await;
    spec()
        .validate_response("get", "/v1/organization", 401, &r.body)
        .unwrap();

    // Revoked tokens stop working here too.
    let r = fake.admin(Method::POST, "/_fake/tokens/expire", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = fake.get("/v1/organization").await;
    assert_eq!(r.status, 401);

    // `--public-reads` opens them to a browser, as it does every GET.
    let open = Fake::with(Config {
        public_reads: true,
        ..Config::default()
    })
    .await;
    for path in ["/v1/organization", "/v1/integration/provision-enabled"] {
        let r = open.raw(Method::GET, path, None, None, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
}
