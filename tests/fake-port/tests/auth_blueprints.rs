//! Auth (tokens, expiry, reuse, drift) and blueprint routes of the fake Port.
//! Owns these tests only; must not touch the server's internals (HTTP, the public handle
//! and `berth_fake_port::spec` only) or files outside a temporary directory.

use std::time::Duration;

use berth_fake_port::client::{Fake, UA, buckets, credentials};
use berth_fake_port::{Config, ExpiresInOnReuse};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn token_is_issued_reused_and_checked() {
    let fake = Fake::start().await;
    let r = fake.token_request(credentials()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["tokenType"], "Bearer");
    assert_eq!(r.body["ok"], true);
    let expires = r.body["expiresIn"].as_u64().expect("integer seconds");
    assert!((10_790..=10_800).contains(&expires), "{expires}");
    // One active token per credential set: asking again returns the same token.
    assert_eq!(r.body["accessToken"], fake.token);

    // A JWT whose claims a client can read without a signature check.
    let claims = fake.token.split('.').nth(1).expect("jwt");
    assert!(!claims.is_empty());

    let bad = fake
        .token_request(json!({"clientId": "fake-client-id", "clientSecret": "wrong"}))
        .await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.body["ok"], false);
    assert_eq!(bad.body["error"], "unauthorized");

    let none = fake
        .raw(Method::GET, "/v1/blueprints", None, Some(UA), None)
        .await;
    assert_eq!(none.status, 401);
    let forged = fake
        .raw(
            Method::GET,
            "/v1/blueprints",
            None,
            Some(UA),
            Some("forged"),
        )
        .await;
    assert_eq!(forged.status, 401);
    assert_eq!(fake.get("/v1/blueprints").await.status, 200);
}

#[tokio::test]
async fn token_request_that_drifts_from_the_spec_gets_422() {
    let fake = Fake::start().await;
    let r = fake
        .token_request(json!({"client_id": "fake-client-id", "clientSecret": "fake-client-secret"}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["ok"], false);
    let msg = r.body["message"].as_str().unwrap();
    assert!(msg.contains("clientId"), "{msg}");
    assert!(msg.contains("client_id"), "{msg}");
}

#[tokio::test]
async fn tokens_expire_and_a_new_one_is_issued() {
    let fake = Fake::with(Config {
        token_ttl: Duration::from_millis(400),
        ..Config::default()
    })
    .await;
    assert_eq!(fake.get("/v1/blueprints").await.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = fake.get("/v1/blueprints").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "unauthorized");
    let fresh = fake.new_token().await;
    assert_ne!(
        fresh, fake.token,
        "an expired token is not handed out again"
    );
    let r = fake
        .raw(Method::GET, "/v1/blueprints", None, Some(UA), Some(&fresh))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn reused_token_can_report_the_full_lifetime() {
    let fake = Fake::with(Config {
        token_ttl: Duration::from_secs(3),
        expires_in_on_reuse: ExpiresInOnReuse::Full,
        ..Config::default()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = fake.token_request(credentials()).await;
    assert_eq!(r.body["accessToken"], fake.token);
    assert_eq!(r.body["expiresIn"], 3);
}

#[tokio::test]
async fn admin_can_revoke_tokens() {
    let fake = Fake::start().await;
    let r = fake.admin(Method::POST, "/_fake/tokens/expire", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(fake.get("/v1/blueprints").await.status, 401);
}

#[tokio::test]
async fn public_reads_let_a_browser_look_but_not_write() {
    let fake = Fake::with(Config {
        public_reads: true,
        ..Config::default()
    })
    .await;
    fake.aws_blueprints().await;
    let r = fake
        .raw(
            Method::GET,
            "/v1/blueprints/awsS3Bucket/entities",
            None,
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let w = fake
        .raw(
            Method::POST,
            "/v1/blueprints/awsS3Bucket/entities?upsert=true",
            Some(json!({"identifier": "x", "properties": {"region": "r"}})),
            None,
            None,
        )
        .await;
    assert_eq!(w.status, 401);
    let index = fake.admin(Method::GET, "/", None).await;
    assert_eq!(index.body["blueprints"][1]["identifier"], "awsS3Bucket");
}

#[tokio::test]
async fn blueprints_are_created_read_listed_and_updated() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;

    let r = fake.get("/v1/blueprints/awsS3Bucket").await;
    assert_eq!(r.status, 200);
    let bp = &r.body["blueprint"];
    assert_eq!(bp["identifier"], "awsS3Bucket");
    assert_eq!(bp["relations"]["account"]["target"], "awsAccount");
    assert!(bp["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(bp["createdBy"], "fake-client-id");

    let list = fake.get("/v1/blueprints").await;
    assert_eq!(list.body["blueprints"].as_array().unwrap().len(), 2);

    let missing = fake.get("/v1/blueprints/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"], "not_found");

    // Duplicate.
    let dup = fake
        .post(
            "/v1/blueprints",
            json!({"identifier": "awsAccount", "title": "Again", "schema": {"properties": {}}}),
        )
        .await;
    assert_eq!(dup.status, 409);

    // PATCH adds a property and a relation without dropping the others.
    let p = fake
        .patch(
            "/v1/blueprints/awsS3Bucket",
            json!({"schema": {"properties": {"owner": {"type": "string"}}},
                   "relations": {"peer": {"target": "awsS3Bucket", "required": false, "many": true}}}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let props = &p.body["blueprint"]["schema"]["properties"];
    assert!(props.get("owner").is_some() && props.get("region").is_some());
    assert!(p.body["blueprint"]["relations"].get("account").is_some());
    assert_eq!(p.body["blueprint"]["title"], "S3 Bucket");

    // PUT replaces.
    let put = fake
        .put(
            "/v1/blueprints/awsAccount",
            json!({"identifier": "awsAccount", "title": "Account", "schema": {"properties": {"alias": {"type": "string"}}}}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert!(
        put.body["blueprint"]["schema"]["properties"]
            .get("name")
            .is_none()
    );
    assert_eq!(
        put.body["blueprint"]["createdAt"],
        fake.get("/v1/blueprints/awsAccount").await.body["blueprint"]["createdAt"]
    );
}

#[tokio::test]
async fn blueprint_rules_are_enforced() {
    let fake = Fake::start().await;
    // Relation target must exist.
    let r = fake
        .post(
            "/v1/blueprints",
            json!({"identifier": "a", "title": "A", "schema": {"properties": {}},
                   "relations": {"b": {"target": "ghost", "required": false, "many": false}}}),
        )
        .await;
    assert_eq!(r.status, 404);
    // many && required.
    fake.create_blueprint(json!({"identifier": "b", "title": "B", "schema": {"properties": {}}}))
        .await;
    let r = fake
        .post(
            "/v1/blueprints",
            json!({"identifier": "a", "title": "A", "schema": {"properties": {}},
                   "relations": {"b": {"target": "b", "required": true, "many": true}}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("many and required")
    );
    // Identifier pattern (spec) and missing schema (spec).
    let r = fake
        .post(
            "/v1/blueprints",
            json!({"identifier": "has space", "title": "A", "schema": {"properties": {}}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("body/identifier"),
        "{}",
        r.body
    );
    let r = fake
        .post("/v1/blueprints", json!({"identifier": "ok", "title": "A"}))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body["message"].as_str().unwrap().contains("schema"));
    // Property type outside Port's list (spec enum).
    let r = fake
        .post(
            "/v1/blueprints",
            json!({"identifier": "ok", "title": "A", "schema": {"properties": {"x": {"type": "integer"}}}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("body/schema/properties/x/type"),
        "{}",
        r.body
    );
    // `required` naming an unknown property.
    let r = fake
        .post(
            "/v1/blueprints",
            json!({"identifier": "ok", "title": "A", "schema": {"properties": {}, "required": ["x"]}}),
        )
        .await;
    assert_eq!(r.status, 422);
    // A blueprint with entities cannot be deleted; an empty one can.
    fake.aws_blueprints().await;
    fake.bulk("awsS3Bucket", "upsert=true", buckets(1)).await;
    assert_eq!(fake.delete("/v1/blueprints/awsS3Bucket").await.status, 409);
    assert_eq!(
        fake.delete("/v1/blueprints/awsAccount").await.status,
        409,
        "a relation targets it"
    );
    assert_eq!(fake.delete("/v1/blueprints/b").await.status, 200);
    assert_eq!(fake.get("/v1/blueprints/b").await.status, 404);
}

#[tokio::test]
async fn unknown_routes_answer_404_with_the_envelope() {
    let fake = Fake::start().await;
    let r = fake.get("/v1/nothing-here").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["ok"], false);
    let r = fake
        .call(Method::DELETE, "/v1/auth/access_token", None)
        .await;
    assert_eq!(r.status, 404);
}
