//! Entity writes of the fake Port: bulk per-index results, property and relation checks,
//! create_missing_related_entities, caps, merge vs replace, ownership by User-Agent.
//! Owns these tests only; must not touch the server's internals (HTTP, the public handle
//! and `berth_fake_port::spec` only) or files outside a temporary directory.

use berth_fake_port::client::{Fake, UA, buckets};
use berth_fake_port::{Config, DatasourcePolicy};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn bulk_upsert_reports_each_index() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    let r = fake
        .bulk(
            "awsS3Bucket",
            "upsert=true&merge=true&create_missing_related_entities=false&validation_only=false&ocean_info_event_type=resync",
            json!([
                {"identifier": "ok-1", "title": "first", "properties": {"region": "eu-west-1", "sizeGb": 3.5}},
                {"identifier": "bad-type", "properties": {"region": "eu-west-1", "sizeGb": "big"}},
                {"identifier": "no-account", "properties": {"region": "eu-west-1"}, "relations": {"account": "111111111111"}},
                {"identifier": "ok-2", "blueprint": "awsS3Bucket", "properties": {"region": "us-east-1", "tags": {"env": "prod"}}}
            ]),
        )
        .await;
    assert_eq!(r.status, 207, "{}", r.body);
    assert_eq!(r.body["ok"], true);
    assert_eq!(
        r.body["entities"],
        json!([
            {"created": true, "identifier": "ok-1", "index": 0, "additionalData": {}},
            {"created": true, "identifier": "ok-2", "index": 3, "additionalData": {}}
        ])
    );
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["index"], 1);
    assert_eq!(errors[0]["identifier"], "bad-type");
    assert_eq!(errors[0]["statusCode"], 422);
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("properties/sizeGb"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[1]["index"], 2);
    assert_eq!(errors[1]["statusCode"], 404);
    assert_eq!(errors[1]["error"], "not_found");
    assert!(
        errors[1]["message"]
            .as_str()
            .unwrap()
            .contains("111111111111")
    );

    // All good: 200 and `created: false` for updates.
    let r = fake
        .bulk(
            "awsS3Bucket",
            "upsert=true",
            json!([{"identifier": "ok-1", "properties": {"region": "x"}}]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["entities"][0]["created"], false);
    assert_eq!(r.body["errors"], json!([]));

    // Only the successes were written.
    let list = fake.get("/v1/blueprints/awsS3Bucket/entities").await;
    let ids: Vec<&str> = list.body["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ok-1", "ok-2"]);
}

#[tokio::test]
async fn property_checks_follow_the_blueprint_schema() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    let cases = [
        (json!({"region": 1}), "properties/region"),
        (json!({}), "region"),
        (
            json!({"region": "r", "versioned": "yes"}),
            "properties/versioned",
        ),
        (json!({"region": "r", "tags": []}), "properties/tags"),
        (json!({"region": "r", "aliases": "a"}), "properties/aliases"),
        (
            json!({"region": "r", "aliases": [1]}),
            "properties/aliases/0",
        ),
        (
            json!({"region": "r", "createdAt": "yesterday"}),
            "properties/createdAt",
        ),
        (
            json!({"region": "r", "console": "not a url"}),
            "properties/console",
        ),
        (json!({"region": "r", "tier": "warm"}), "properties/tier"),
        (json!({"region": "r", "unknown": 1}), "unknown"),
    ];
    for (i, (props, needle)) in cases.iter().enumerate() {
        let r = fake
            .bulk(
                "awsS3Bucket",
                "upsert=true",
                json!([{"identifier": format!("e{i}"), "properties": props}]),
            )
            .await;
        assert_eq!(r.status, 207, "case {i}: {}", r.body);
        let msg = r.body["errors"][0]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "case {i}: {msg}");
    }
    // Valid values, and null for optional properties.
    let r = fake
        .bulk(
            "awsS3Bucket",
            "upsert=true",
            json!([{"identifier": "fine", "properties": {
                "region": "r", "versioned": true, "tags": {"a": "b"}, "aliases": ["x"],
                "createdAt": "2026-01-02T03:04:05Z", "console": "https://console.aws.amazon.com/s3",
                "tier": "hot", "sizeGb": 10, "arn": null
            }}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn relation_checks_and_placeholders() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    // Unknown relation and wrong cardinality.
    let r = fake
        .bulk(
            "awsS3Bucket",
            "upsert=true",
            json!([
                {"identifier": "a", "properties": {"region": "r"}, "relations": {"owner": "x"}},
                {"identifier": "b", "properties": {"region": "r"}, "relations": {"account": ["1", "2"]}}
            ]),
        )
        .await;
    assert_eq!(r.status, 207);
    assert_eq!(r.body["errors"][0]["statusCode"], 422);
    assert_eq!(r.body["errors"][1]["statusCode"], 422);

    // create_missing_related_entities creates a bare target entity.
    let r = fake
        .bulk(
            "awsS3Bucket",
            "upsert=true&create_missing_related_entities=true",
            json!([{"identifier": "c", "properties": {"region": "r"}, "relations": {"account": "123456789012"}}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let acct = fake
        .get("/v1/blueprints/awsAccount/entities/123456789012")
        .await;
    assert_eq!(acct.status, 200);
    assert_eq!(acct.body["entity"]["properties"], json!({}));
    assert_eq!(acct.body["entity"]["title"], Value::Null);
    let c = fake.get("/v1/blueprints/awsS3Bucket/entities/c").await;
    assert_eq!(c.body["entity"]["relations"]["account"], "123456789012");

    // Now the target exists, so the default (false) succeeds too.
    let r = fake
        .bulk(
            "awsS3Bucket",
            "upsert=true",
            json!([{"identifier": "d", "properties": {"region": "r"}, "relations": {"account": "123456789012"}}]),
        )
        .await;
    assert_eq!(r.status, 200);

    // A relation given as a search query resolves to the matching identifier.
    fake.bulk(
        "awsAccount",
        "upsert=true",
        json!([{"identifier": "999", "properties": {"name": "prod"}}]),
    )
    .await;
    let r = fake
        .post(
            "/v1/blueprints/awsS3Bucket/entities?upsert=true",
            json!({"identifier": "e", "properties": {"region": "r"},
                   "relations": {"account": {"combinator": "and", "rules": [{"property": "name", "operator": "=", "value": "prod"}]}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["entity"]["relations"]["account"], "999");

    // Required relations.
    fake.create_blueprint(json!({
        "identifier": "awsEc2", "title": "EC2", "schema": {"properties": {}},
        "relations": {"account": {"target": "awsAccount", "required": true, "many": false},
                      "buckets": {"target": "awsS3Bucket", "required": false, "many": true}}
    }))
    .await;
    let r = fake
        .bulk("awsEc2", "upsert=true", json!([{"identifier": "i-1"}]))
        .await;
    assert_eq!(r.body["errors"][0]["statusCode"], 422);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("account")
    );
    let r = fake
        .bulk(
            "awsEc2",
            "upsert=true",
            json!([{"identifier": "i-1", "relations": {"account": "999", "buckets": ["c", "d"]}}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn caps_on_count_and_size() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    // 20 entities pass, 21 are rejected as a whole by the spec's maxItems.
    let r = fake.bulk("awsS3Bucket", "upsert=true", buckets(20)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["entities"].as_array().unwrap().len(), 20);
    let r = fake.bulk("awsS3Bucket", "upsert=true", buckets(21)).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("body/entities"),
        "{}",
        r.body
    );
    let r = fake.bulk("awsS3Bucket", "upsert=true", json!([])).await;
    assert_eq!(r.status, 422);

    // 1 MiB: just under passes, just over is 413.
    let body_of = |pad: usize| {
        serde_json::to_vec(&json!({"entities": [
            {"identifier": "big", "properties": {"region": "r", "arn": "x".repeat(pad)}}
        ]}))
        .unwrap()
    };
    let overhead = body_of(0).len();
    let exact = body_of(1024 * 1024 - overhead);
    assert_eq!(exact.len(), 1024 * 1024);
    let r = fake
        .raw_bytes(
            Method::POST,
            "/v1/blueprints/awsS3Bucket/entities/bulk?upsert=true",
            exact,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let over = body_of(1024 * 1024 - overhead + 1);
    let r = fake
        .raw_bytes(
            Method::POST,
            "/v1/blueprints/awsS3Bucket/entities/bulk?upsert=true",
            over,
        )
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.body["ok"], false);
    // The cap applies to every route.
    let r = fake
        .raw_bytes(
            Method::POST,
            "/v1/entities/search",
            vec![b' '; 1024 * 1024 + 1],
        )
        .await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn merge_versus_replace() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    fake.bulk(
        "awsAccount",
        "upsert=true",
        json!([{"identifier": "1", "properties": {}}]),
    )
    .await;
    let first = json!([{"identifier": "m", "title": "T", "icon": "AWS",
        "properties": {"region": "r", "versioned": true, "tags": {"a": "1"}},
        "relations": {"account": "1"}}]);
    assert_eq!(
        fake.bulk("awsS3Bucket", "upsert=true", first.clone())
            .await
            .status,
        200
    );
    let created = fake.get("/v1/blueprints/awsS3Bucket/entities/m").await.body["entity"].clone();

    // merge=true: only the sent fields change.
    let r = fake
        .bulk(
            "awsS3Bucket",
            "upsert=true&merge=true",
            json!([{"identifier": "m", "properties": {"region": "r2"}}]),
        )
        .await;
    assert_eq!(r.status, 200);
    let e = fake.get("/v1/blueprints/awsS3Bucket/entities/m").await.body["entity"].clone();
    assert_eq!(
        e["properties"],
        json!({"region": "r2", "versioned": true, "tags": {"a": "1"}})
    );
    assert_eq!(e["relations"], json!({"account": "1"}));
    assert_eq!(e["title"], "T");
    assert_eq!(e["createdAt"], created["createdAt"]);
    assert!(e["updatedAt"].as_str() >= created["updatedAt"].as_str());

    // merge=false: the entity is replaced.
    fake.bulk(
        "awsS3Bucket",
        "upsert=true&merge=false",
        json!([{"identifier": "m", "properties": {"region": "r3"}}]),
    )
    .await;
    let e = fake.get("/v1/blueprints/awsS3Bucket/entities/m").await.body["entity"].clone();
    assert_eq!(e["properties"], json!({"region": "r3"}));
    assert_eq!(e["relations"], json!({}));
    assert_eq!(e["title"], Value::Null);
    assert_eq!(e["createdAt"], created["createdAt"]);

    // upsert=false: create only.
    let r = fake
        .post(
            "/v1/blueprints/awsS3Bucket/entities?upsert=false",
            json!({"identifier": "m", "properties": {"region": "r"}}),
        )
        .await;
    assert_eq!(r.status, 409);
    let r = fake
        .bulk(
            "awsS3Bucket",
            "upsert=false",
            json!([{"identifier": "m", "properties": {"region": "r"}}]),
        )
        .await;
    assert_eq!(r.body["errors"][0]["statusCode"], 409);

    // PATCH merges, PUT replaces, both need the entity.
    let r = fake
        .patch(
            "/v1/blueprints/awsS3Bucket/entities/m",
            json!({"properties": {"versioned": false}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["entity"]["properties"],
        json!({"region": "r3", "versioned": false})
    );
    let r = fake
        .put(
            "/v1/blueprints/awsS3Bucket/entities/m",
            json!({"properties": {"region": "r4"}}),
        )
        .await;
    assert_eq!(r.body["entity"]["properties"], json!({"region": "r4"}));
    let r = fake
        .patch(
            "/v1/blueprints/awsS3Bucket/entities/ghost",
            json!({"properties": {}}),
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn single_upsert_and_reads() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    let id = "arn:aws:s3:::my/bucket+1=é";
    let r = fake
        .post(
            "/v1/blueprints/awsS3Bucket/entities?upsert=true&merge=true&create_missing_related_entities=true&validation_only=false",
            json!({"identifier": id, "title": "my bucket", "team": "platform", "properties": {"region": "eu-west-1"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["entity"]["identifier"], id);
    assert_eq!(r.body["entity"]["team"], json!(["platform"]));
    assert_eq!(r.body["entity"]["blueprint"], "awsS3Bucket");
    assert!(r.body["entity"].get("datasource").is_none());

    // Identifiers with `/` are percent-encoded in paths.
    let encoded: String = id
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let r = fake
        .get(&format!(
            "/v1/blueprints/awsS3Bucket/entities/{encoded}?include=identifier&include=properties.region"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["entity"],
        json!({"identifier": id, "properties": {"region": "eu-west-1"}})
    );
    assert_eq!(
        fake.get("/v1/blueprints/awsS3Bucket/entities-count")
            .await
            .body["count"],
        1
    );
    assert_eq!(
        fake.get("/v1/blueprints/awsS3Bucket/entities/none")
            .await
            .status,
        404
    );

    // An entity literally named `bulk` is still reachable by GET/DELETE.
    fake.post(
        "/v1/blueprints/awsS3Bucket/entities?upsert=true",
        json!({"identifier": "bulk", "properties": {"region": "r"}}),
    )
    .await;
    let r = fake.get("/v1/blueprints/awsS3Bucket/entities/bulk").await;
    assert_eq!(r.body["entity"]["identifier"], "bulk");
    let r = fake
        .delete("/v1/blueprints/awsS3Bucket/entities/bulk?delete_dependents=false")
        .await;
    assert_eq!(r.status, 200);

    // Missing blueprint.
    let r = fake
        .post(
            "/v1/blueprints/ghost/entities?upsert=true",
            json!({"identifier": "x"}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"], "not_found");
    let r = fake.bulk("ghost", "upsert=true", buckets(1)).await;
    assert_eq!(r.status, 404);

    // Missing related entity on the single route: 404 not_found.
    let r = fake
        .post(
            "/v1/blueprints/awsS3Bucket/entities?upsert=true",
            json!({"identifier": "y", "properties": {"region": "r"}, "relations": {"account": "404"}}),
        )
        .await;
    assert_eq!(r.status, 404);

    // validation_only writes nothing.
    let r = fake
        .post(
            "/v1/blueprints/awsS3Bucket/entities?upsert=true&validation_only=true",
            json!({"identifier": "dry", "properties": {"region": "r"}}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        fake.get("/v1/blueprints/awsS3Bucket/entities/dry")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn query_flags_are_checked_against_the_spec() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    // `upsert` is required by the spec.
    let r = fake
        .post(
            "/v1/blueprints/awsS3Bucket/entities/bulk",
            json!({"entities": buckets(1)}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body["message"].as_str().unwrap().contains("upsert"));
    let r = fake.bulk("awsS3Bucket", "upsert=yes", buckets(1)).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("querystring/upsert")
    );
    // Unknown parameters are ignored.
    let r = fake
        .bulk(
            "awsS3Bucket",
            "upsert=true&ocean_info_resync_id=abc",
            buckets(1),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn drifted_entity_bodies_are_rejected_with_the_path() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    let cases = [
        (json!({"entity": []}), "body"),
        (
            json!({"entities": [{"identifier": "a b"}]}),
            "body/entities/0/identifier",
        ),
        (
            json!({"entities": [{"identifier": "ok", "relations": {"account": 5}}]}),
            "body/entities/0/relations/account",
        ),
        (
            json!({"entities": [{"identifier": "ok", "properties": []}]}),
            "body/entities/0/properties",
        ),
        (
            json!({"entities": [{"identifier": "ok", "team": 3}]}),
            "body/entities/0/team",
        ),
        (
            json!({"entities": [{"identifier": ".."}]}),
            "body/entities/0/identifier",
        ),
    ];
    for (body, path) in cases {
        let r = fake
            .post(
                "/v1/blueprints/awsS3Bucket/entities/bulk?upsert=true",
                body.clone(),
            )
            .await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.body["ok"], false);
        assert_eq!(r.body["error"], "invalid_request");
        let msg = r.body["message"].as_str().unwrap();
        assert!(msg.starts_with(path), "{body}: {msg}");
        assert_eq!(
            r.body.as_object().unwrap().len(),
            3,
            "exactly ok/error/message"
        );
    }
    let r = fake
        .raw_bytes(
            Method::POST,
            "/v1/blueprints/awsS3Bucket/entities/bulk?upsert=true",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn datasource_is_the_writers_user_agent() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    fake.bulk("awsS3Bucket", "upsert=true", buckets(1)).await;
    let other = "port-ocean/aws/0.9/someone-else/exporter";
    fake.raw(
        Method::POST,
        "/v1/blueprints/awsS3Bucket/entities/bulk?upsert=true",
        Some(json!({"entities": [{"identifier": "theirs", "properties": {"region": "r"}}]})),
        Some(other),
        Some(&fake.token),
    )
    .await;
    let state = fake.state().await;
    assert_eq!(state["entities"]["awsS3Bucket"]["b0"]["datasource"], UA);
    assert_eq!(
        state["entities"]["awsS3Bucket"]["theirs"]["datasource"],
        other
    );
    // Last writer wins by default: adopting an entity.
    fake.bulk(
        "awsS3Bucket",
        "upsert=true",
        json!([{"identifier": "theirs", "properties": {"region": "r"}}]),
    )
    .await;
    assert_eq!(
        fake.state().await["entities"]["awsS3Bucket"]["theirs"]["datasource"],
        UA
    );

    // First writer keeps it when configured so.
    let fixed = Fake::with(Config {
        datasource_policy: DatasourcePolicy::FirstWriter,
        ..Config::default()
    })
    .await;
    fixed.aws_blueprints().await;
    fixed
        .raw(
            Method::POST,
            "/v1/blueprints/awsS3Bucket/entities/bulk?upsert=true",
            Some(json!({"entities": [{"identifier": "x", "properties": {"region": "r"}}]})),
            Some(other),
            Some(&fixed.token),
        )
        .await;
    fixed
        .bulk(
            "awsS3Bucket",
            "upsert=true",
            json!([{"identifier": "x", "properties": {"region": "r"}}]),
        )
        .await;
    assert_eq!(
        fixed.state().await["entities"]["awsS3Bucket"]["x"]["datasource"],
        other
    );
}

#[tokio::test]
async fn identifier_given_as_a_search_query() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    fake.bulk(
        "awsS3Bucket",
        "upsert=true",
        json!([{"identifier": "real-id", "properties": {"region": "r", "arn": "arn:1"}}]),
    )
    .await;
    let q = json!({"combinator": "and", "rules": [{"property": "arn", "operator": "=", "value": "arn:1"}]});
    let r = fake
        .bulk(
            "awsS3Bucket",
            "upsert=true&merge=true",
            json!([{"identifier": q, "properties": {"versioned": true}},
                   {"identifier": {"combinator": "and", "rules": [{"property": "arn", "operator": "=", "value": "nope"}]}}]),
        )
        .await;
    assert_eq!(r.status, 207, "{}", r.body);
    assert_eq!(r.body["entities"][0]["identifier"], "real-id");
    assert_eq!(r.body["errors"][0]["identifier"], "unknown");
    assert_eq!(r.body["errors"][0]["statusCode"], 404);
}
