//! Search (operators, `$datasource`, projections, cursor paging), Ocean's datasource-entities
//! query with `before`, and deletes (single, bulk, dependents) of the fake Port.
//! Owns these tests only; must not touch the server's internals (HTTP, the public handle
//! and `berth_fake_port::spec` only) or files outside a temporary directory.

use std::time::Duration;

use berth_fake_port::client::{Fake, UA, buckets};
use reqwest::Method;
use serde_json::{Value, json};

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["identifier"].as_str().unwrap().to_string())
        .collect()
}

async fn seeded() -> Fake {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    fake.bulk(
        "awsAccount",
        "upsert=true",
        json!([{"identifier": "111", "properties": {"name": "prod"}}]),
    )
    .await;
    let r = fake
        .bulk(
            "awsS3Bucket",
            "upsert=true",
            json!([
                {"identifier": "logs", "title": "Logs", "properties": {"region": "eu-west-1", "sizeGb": 5, "versioned": true,
                 "tags": {"env": "prod"}, "aliases": ["l", "log"], "createdAt": "2025-01-01T00:00:00Z"},
                 "relations": {"account": "111"}},
                {"identifier": "media", "title": "Media", "properties": {"region": "us-east-1", "sizeGb": 50, "aliases": [],
                 "createdAt": "2026-06-01T00:00:00Z"}},
                {"identifier": "tmp", "properties": {"region": "eu-central-1", "sizeGb": 0.5}}
            ]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    fake
}

async fn search(fake: &Fake, rules: Value) -> Vec<String> {
    let r = fake
        .post(
            "/v1/entities/search",
            json!({"combinator": "and", "rules": rules}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    ids(&r.body["entities"])
}

#[tokio::test]
async fn search_operators() {
    let fake = seeded().await;
    let bp = json!({"property": "$blueprint", "operator": "=", "value": "awsS3Bucket"});
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"property": "region", "operator": "=", "value": "eu-west-1"}),
            vec!["logs"],
        ),
        (
            json!({"property": "region", "operator": "!=", "value": "eu-west-1"}),
            vec!["media", "tmp"],
        ),
        (
            json!({"property": "region", "operator": "in", "value": ["us-east-1", "eu-central-1"]}),
            vec!["media", "tmp"],
        ),
        (
            json!({"property": "region", "operator": "notIn", "value": ["us-east-1"]}),
            vec!["logs", "tmp"],
        ),
        (
            json!({"property": "region", "operator": "contains", "value": "eu-"}),
            vec!["logs", "tmp"],
        ),
        (
            json!({"property": "region", "operator": "doesNotContains", "value": "eu-"}),
            vec!["media"],
        ),
        (
            json!({"property": "region", "operator": "beginsWith", "value": "us"}),
            vec!["media"],
        ),
        (
            json!({"property": "region", "operator": "doesNotBeginsWith", "value": "us"}),
            vec!["logs", "tmp"],
        ),
        (
            json!({"property": "region", "operator": "endsWith", "value": "-1"}),
            vec!["logs", "media", "tmp"],
        ),
        (
            json!({"property": "region", "operator": "doesNotEndsWith", "value": "west-1"}),
            vec!["media", "tmp"],
        ),
        (
            json!({"property": "aliases", "operator": "isEmpty"}),
            vec!["media", "tmp"],
        ),
        (
            json!({"property": "aliases", "operator": "isNotEmpty"}),
            vec!["logs"],
        ),
        (
            json!({"property": "aliases", "operator": "containsAny", "value": ["log", "zzz"]}),
            vec!["logs"],
        ),
        (
            json!({"property": "sizeGb", "operator": ">", "value": 1}),
            vec!["logs", "media"],
        ),
        (
            json!({"property": "sizeGb", "operator": "<", "value": 5}),
            vec!["tmp"],
        ),
        (
            json!({"property": "sizeGb", "operator": "<=", "value": 5}),
            vec!["logs", "tmp"],
        ),
        (
            json!({"property": "sizeGb", "operator": ">=", "value": 50}),
            vec!["media"],
        ),
        (
            json!({"property": "createdAt", "operator": ">", "value": "2025-06-01T00:00:00.000Z"}),
            vec!["media"],
        ),
        (
            json!({"property": "createdAt", "operator": "between", "value": {"from": "2024-01-01T00:00:00Z", "to": "2025-12-31T00:00:00Z"}}),
            vec!["logs"],
        ),
        (
            json!({"property": "$identifier", "operator": "=", "value": "tmp"}),
            vec!["tmp"],
        ),
        (
            json!({"property": "$title", "operator": "isEmpty"}),
            vec!["tmp"],
        ),
        (
            json!({"property": "account", "operator": "=", "value": "111"}),
            vec!["logs"],
        ),
        (
            json!({"operator": "relatedTo", "blueprint": "awsAccount", "value": "111"}),
            vec!["logs"],
        ),
        (
            json!({"combinator": "or", "rules": [
            {"property": "region", "operator": "=", "value": "us-east-1"},
            {"property": "$identifier", "operator": "=", "value": "tmp"}]}),
            vec!["media", "tmp"],
        ),
    ];
    for (rule, want) in cases {
        let got = search(&fake, json!([bp, rule])).await;
        assert_eq!(got, want, "{rule}");
    }
    // Across blueprints, with `$updatedAt` and meta properties.
    let all = search(
        &fake,
        json!([{"property": "$updatedAt", "operator": "<=", "value": "2999-01-01T00:00:00Z"}]),
    )
    .await;
    assert_eq!(all.len(), 4);
    let r = fake
        .post(
            "/v1/entities/search?include=identifier&include=blueprint",
            json!({"combinator": "and", "rules": [{"property": "$datasource", "operator": "=", "value": UA}]}),
        )
        .await;
    assert_eq!(
        r.body["matchingBlueprints"],
        json!(["awsAccount", "awsS3Bucket"])
    );
    assert_eq!(
        r.body["entities"][0],
        json!({"identifier": "111", "blueprint": "awsAccount"})
    );
    // Unsupported and drifted queries.
    let r = fake.post("/v1/entities/search", json!({"rules": []})).await;
    assert_eq!(r.status, 422, "combinator is required");
    let r = fake
        .post(
            "/v1/entities/search",
            json!({"combinator": "and", "rules": [{"property": "x", "operator": "likes", "value": 1}]}),
        )
        .await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn datasource_rules_tell_writers_apart() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    fake.bulk("awsS3Bucket", "upsert=true", buckets(2)).await;
    fake.raw(
        Method::POST,
        "/v1/blueprints/awsS3Bucket/entities/bulk?upsert=true",
        Some(json!({"entities": [{"identifier": "other", "properties": {"region": "r"}}]})),
        Some("port-ocean/aws/0.1/other-aws/exporter"),
        Some(&fake.token),
    )
    .await;
    let ours = search(
        &fake,
        json!([
            {"property": "$blueprint", "operator": "=", "value": "awsS3Bucket"},
            {"property": "$datasource", "operator": "beginsWith", "value": "port-ocean/berth/"},
            {"property": "$datasource", "operator": "contains", "value": "/test-aws/exporter"}
        ]),
    )
    .await;
    assert_eq!(ours, ["b0", "b1"]);
    let theirs = search(
        &fake,
        json!([{"property": "$datasource", "operator": "endsWith", "value": "/other-aws/exporter"}]),
    )
    .await;
    assert_eq!(theirs, ["other"]);
}

#[tokio::test]
async fn blueprint_search_pages_with_a_cursor() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    for chunk in 0..3 {
        let ents: Vec<Value> = (0..20)
            .map(|i| json!({"identifier": format!("e{:03}", chunk * 20 + i), "properties": {"region": if i % 2 == 0 {"even"} else {"odd"}}}))
            .collect();
        assert_eq!(
            fake.bulk("awsS3Bucket", "upsert=true", json!(ents))
                .await
                .status,
            200
        );
    }
    let mut seen = Vec::new();
    let mut from: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"limit": 7, "include": ["$identifier", "region"],
                              "query": {"combinator": "and", "rules": [{"property": "region", "operator": "=", "value": "even"}]}});
        if let Some(f) = &from {
            body["from"] = json!(f);
        }
        let r = fake
            .post("/v1/blueprints/awsS3Bucket/entities/search", body)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        pages += 1;
        for e in r.body["entities"].as_array().unwrap() {
            assert_eq!(e["properties"], json!({"region": "even"}));
            assert!(e.get("title").is_none());
        }
        seen.extend(ids(&r.body["entities"]));
        match r.body.get("next").and_then(Value::as_str) {
            Some(n) => from = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 30);
    let want: Vec<String> = (0..60).step_by(2).map(|i| format!("e{i:03}")).collect();
    assert_eq!(seen, want);
    // Default page (no body) and a limit outside 1..=1000.
    let r = fake
        .post("/v1/blueprints/awsS3Bucket/entities/search", json!({}))
        .await;
    assert_eq!(r.body["entities"].as_array().unwrap().len(), 60);
    assert!(r.body.get("next").is_none());
    let r = fake
        .post(
            "/v1/blueprints/awsS3Bucket/entities/search",
            json!({"limit": 1001}),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = fake
        .post(
            "/v1/blueprints/awsS3Bucket/entities/search",
            json!({"query": {"rules": []}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("body/query"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn datasource_entities_with_before_and_paging() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    fake.bulk("awsS3Bucket", "upsert=true", buckets(5)).await;
    fake.bulk(
        "awsAccount",
        "upsert=true",
        json!([{"identifier": "acct", "properties": {}}]),
    )
    .await;
    fake.raw(
        Method::POST,
        "/v1/blueprints/awsS3Bucket/entities/bulk?upsert=true",
        Some(json!({"entities": [{"identifier": "foreign", "properties": {"region": "r"}}]})),
        Some("port-ocean/berth/0.1.0/another-install/exporter"),
        Some(&fake.token),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let resync_start = jiff_now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Touched during the resync: must not show up with before=start.
    fake.bulk(
        "awsS3Bucket",
        "upsert=true",
        json!([{"identifier": "b1", "properties": {"region": "r"}}]),
    )
    .await;

    let body = |from: Option<&str>| {
        let mut b = json!({
            "datasource_prefix": "port-ocean/berth/",
            "datasource_suffix": "/test-aws/exporter",
            "limit": 2,
            "before": resync_start
        });
        if let Some(f) = from {
            b["from"] = json!(f);
        }
        b
    };
    let mut got = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let r = fake
            .post(
                "/v1/blueprints/entities/datasource-entities",
                body(from.as_deref()),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        for e in r.body["entities"].as_array().unwrap() {
            got.push(format!(
                "{}/{}",
                e["blueprint"].as_str().unwrap(),
                e["identifier"].as_str().unwrap()
            ));
        }
        match r.body["next"].as_str() {
            Some(n) => from = Some(n.to_string()),
            None => {
                assert_eq!(r.body["next"], Value::Null);
                break;
            }
        }
    }
    assert_eq!(
        got,
        [
            "awsAccount/acct",
            "awsS3Bucket/b0",
            "awsS3Bucket/b2",
            "awsS3Bucket/b3",
            "awsS3Bucket/b4"
        ]
    );
    // Without `before`, b1 is there too.
    let r = fake
        .post(
            "/v1/blueprints/entities/datasource-entities",
            json!({"datasource_prefix": "port-ocean/berth/", "datasource_suffix": "/test-aws/exporter", "limit": 100}),
        )
        .await;
    assert_eq!(r.body["entities"].as_array().unwrap().len(), 6);
    // Drift: a camelCase key Ocean never sends.
    let r = fake
        .post(
            "/v1/blueprints/entities/datasource-entities",
            json!({"datasourcePrefix": "port-ocean/berth/"}),
        )
        .await;
    assert_eq!(r.status, 422);
}

fn jiff_now() -> String {
    // RFC 3339 with microseconds, as Ocean's Python isoformat() writes it.
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Howard Hinnant's days-to-civil.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[tokio::test]
async fn deletes_single_bulk_and_dependents() {
    let fake = Fake::start().await;
    fake.aws_blueprints().await;
    fake.create_blueprint(json!({
        "identifier": "awsEc2", "title": "EC2", "schema": {"properties": {}},
        "relations": {"account": {"target": "awsAccount", "required": true, "many": false}}
    }))
    .await;
    fake.bulk(
        "awsAccount",
        "upsert=true",
        json!([{"identifier": "a1", "properties": {}}, {"identifier": "a2", "properties": {}}]),
    )
    .await;
    fake.bulk(
        "awsEc2",
        "upsert=true",
        json!([{"identifier": "i-1", "relations": {"account": "a1"}}]),
    )
    .await;
    fake.bulk(
        "awsS3Bucket",
        "upsert=true",
        json!([{"identifier": "s", "properties": {"region": "r"}, "relations": {"account": "a1"}}]),
    )
    .await;
    assert_eq!(
        fake.bulk("awsS3Bucket", "upsert=true", buckets(20))
            .await
            .status,
        200
    );

    // Single delete: `delete_dependents` is required by the spec.
    let r = fake.delete("/v1/blueprints/awsAccount/entities/a2").await;
    assert_eq!(r.status, 422);
    let r = fake
        .delete("/v1/blueprints/awsAccount/entities/a2?delete_dependents=false")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"ok": true}));
    let r = fake
        .delete("/v1/blueprints/awsAccount/entities/a2?delete_dependents=false")
        .await;
    assert_eq!(r.status, 404);

    // a1 has a dependent (i-1, required relation): refused as a whole.
    let r = fake
        .post(
            "/v1/blueprints/awsAccount/bulk/entities/delete?delete_dependents=false",
            json!({"entities": ["a1"]}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        fake.get("/v1/blueprints/awsAccount/entities/a1")
            .await
            .status,
        200
    );
    // With delete_dependents the dependent goes too; the optional relation is cleared.
    let r = fake
        .post(
            "/v1/blueprints/awsAccount/bulk/entities/delete?delete_dependents=true",
            json!({"entities": ["a1", "never-existed"]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"ok": true, "deletedEntities": ["a1"]}));
    assert_eq!(
        fake.get("/v1/blueprints/awsEc2/entities/i-1").await.status,
        404
    );
    let s = fake.get("/v1/blueprints/awsS3Bucket/entities/s").await;
    assert_eq!(s.body["entity"]["relations"]["account"], Value::Null);

    // Bulk delete: 1..=100 ids.
    let some: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
    let r = fake
        .post(
            "/v1/blueprints/awsS3Bucket/bulk/entities/delete?delete_dependents=true",
            json!({"entities": some}),
        )
        .await;
    assert_eq!(r.body["deletedEntities"].as_array().unwrap().len(), 20);
    let too_many: Vec<String> = (0..101).map(|i| format!("b{i}")).collect();
    let r = fake
        .post(
            "/v1/blueprints/awsS3Bucket/bulk/entities/delete?delete_dependents=true",
            json!({"entities": too_many}),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = fake
        .post(
            "/v1/blueprints/awsS3Bucket/bulk/entities/delete?delete_dependents=true",
            json!({"entities": []}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        fake.get("/v1/blueprints/awsS3Bucket/entities-count")
            .await
            .body["count"],
        1
    );

    // all-entities.
    let r = fake
        .call(
            Method::DELETE,
            "/v1/blueprints/awsS3Bucket/all-entities",
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        fake.get("/v1/blueprints/awsS3Bucket/entities-count")
            .await
            .body["count"],
        0
    );
}
