//! `berth::catalog::port` against the in-process fake Port (`berth-fake-port`): bulk upsert batching and
//! per-index results, the 413 split, retries under injected faults, token refresh, ownership by
//! User-Agent, and that the secret never shows.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use berth::catalog::port::{
    ClientConfig, Credentials, Entity, PortClient, PortError, RetryPolicy, UpsertOptions, UserAgent,
};
use berth_fake_port::client::Fake;
use berth_fake_port::{Config, FakePortHandle, Faults, LoggedRequest, RateLimit};
use serde_json::{Value, json};

const BP: &str = "service";
const UA: &str = "port-ocean/aws/0.1.0/my-aws/exporter";

/// A fake Port with the blueprint `service` (`size`: number, `name`: string).
async fn fake(config: Config) -> FakePortHandle {
    let fake = Fake::with(config).await;
    fake.create_blueprint(json!({
        "identifier": BP,
        "title": "Service",
        "schema": {"properties": {
            "size": {"type": "number"},
            "name": {"type": "string"}
        }}
    }))
    .await;
    fake.handle.clear_requests();
    fake.handle
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(20),
        jitter: 0.25,
    }
}

fn client(handle: &FakePortHandle) -> PortClient {
    client_with(handle, |_| {})
}

fn client_with(handle: &FakePortHandle, tweak: impl FnOnce(&mut ClientConfig)) -> PortClient {
    let mut cfg = ClientConfig::new(
        handle.base_url(),
        Credentials::new("fake-client-id", "fake-client-secret"),
        UserAgent::exporter("aws", "0.1.0", "my-aws"),
    );
    cfg.retry = fast_retry();
    tweak(&mut cfg);
    PortClient::new(cfg).expect("client")
}

/// `berth map`-style entities `svc-0..n`, as JSON to edit before [`records`].
fn values(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "identifier": format!("svc-{i}"),
                "title": format!("Service {i}"),
                "blueprint": BP,
                "properties": {"size": i, "name": format!("n{i}")},
                "relations": {}
            })
        })
        .collect()
}

fn records(vs: &[Value]) -> Vec<Entity> {
    Entity::from_values(vs).expect("test entities")
}

/// [`values`] as records.
fn entities(n: usize) -> Vec<Entity> {
    records(&values(n))
}

fn bulk_calls(handle: &FakePortHandle) -> Vec<LoggedRequest> {
    handle
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/entities/bulk"))
        .collect()
}

fn stored_ids(handle: &FakePortHandle) -> BTreeSet<String> {
    handle
        .snapshot()
        .entities
        .get(BP)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn ids(es: &[Value]) -> BTreeSet<String> {
    es.iter()
        .map(|e| e["identifier"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_entity_lands_exactly_once_under_faults() {
    let port = fake(Config::default()).await;
    port.set_faults(Faults {
        seed: 42,
        rate_429: 0.3,
        rate_5xx: 0.05,
        early_401: 1,
        force_413_next: 1,
        retry_after_secs: 1,
        path_contains: Some("/entities/bulk".into()),
        ..Faults::default()
    });
    let c = client(&port);
    let input = values(400);
    let results = c
        .upsert_bulk(BP, &records(&input), UpsertOptions::default())
        .await
        .unwrap();
    assert_eq!(results.len(), 400);
    for (r, e) in results.iter().zip(&input) {
        assert_eq!(r.identifier, e["identifier"].as_str().unwrap());
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(stored_ids(&port), ids(&input));

    let calls = bulk_calls(&port);
    let faults: BTreeSet<&str> = calls.iter().filter_map(|r| r.fault.as_deref()).collect();
    for f in ["injected_429", "injected_5xx", "early_401", "forced_413"] {
        assert!(faults.contains(f), "fault {f} never fired: {faults:?}");
    }
    // 20 batches, one of them split in two by the 413: 21 accepted calls, so no entity was
    // written by two calls.
    let accepted = calls.iter().filter(|r| r.status == 200).count();
    assert_eq!(accepted, 21, "{calls:#?}");
    // A 3 h token was fetched once up front and once after the early 401 (which hands back
    // the same, still valid token).
    let auth = port
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/auth/access_token")
        .count();
    assert_eq!(auth, 2);
}

#[tokio::test]
async fn per_index_errors_map_to_the_right_entities_across_batches() {
    let port = fake(Config::default()).await;
    let mut input = values(50);
    let bad = [3usize, 22, 39, 49];
    for &i in &bad {
        input[i]["properties"]["size"] = json!("big");
    }
    let results = client(&port)
        .upsert_bulk(BP, &records(&input), UpsertOptions::default())
        .await
        .unwrap();
    assert_eq!(bulk_calls(&port).len(), 3);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.identifier, format!("svc-{i}"));
        if bad.contains(&i) {
            let e = r.outcome.clone().unwrap_err();
            assert_eq!(e.status, Some(422), "{e:?}");
            assert!(e.message.contains("size"), "{e:?}");
        } else {
            assert!(r.is_ok(), "{r:?}");
        }
    }
    let stored = stored_ids(&port);
    assert_eq!(stored.len(), 46);
    for &i in &bad {
        assert!(!stored.contains(&format!("svc-{i}")));
    }
}

#[tokio::test]
async fn bodies_go_out_as_the_mapper_wrote_them() {
    let port = fake(Config::default()).await;
    // `1.50` and the key order are what a re-serialisation would change (to `1.5`, and to
    // whatever order a map keeps): the request must carry these bytes exactly.
    let body = r#"{"properties":{"size":1.50,"name":"n"},"identifier":"raw-1"}"#;
    let raw = Entity {
        blueprint: BP.into(),
        identifier: "raw-1".into(),
        relation_targets: Vec::new(),
        body: body.into(),
    };
    let other = Entity {
        blueprint: "elsewhere".into(),
        identifier: "lost".into(),
        ..raw.clone()
    };
    let results = client(&port)
        .upsert_bulk(BP, &[raw, other], UpsertOptions::default())
        .await
        .unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    let e = results[1].outcome.clone().unwrap_err();
    assert_eq!(
        (e.status, e.message.as_str()),
        (
            None,
            r#"entity belongs to blueprint "elsewhere", not "service""#
        )
    );
    let calls = bulk_calls(&port);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body_bytes, r#"{"entities":[]}"#.len() + body.len());
    assert_eq!(stored_ids(&port), BTreeSet::from(["raw-1".to_string()]));
}

#[tokio::test]
async fn twenty_one_entities_take_two_calls() {
    let port = fake(Config::default()).await;
    let results = client(&port)
        .upsert_bulk(BP, &entities(21), UpsertOptions::default())
        .await
        .unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    let calls = bulk_calls(&port);
    assert_eq!(calls.len(), 2);
    let q = calls[0].query.as_deref().unwrap_or("");
    assert!(q.contains("upsert=true"), "{q}");
    assert!(q.contains("merge=false"), "{q}");
    assert!(q.contains("create_missing_related_entities=false"), "{q}");
}

#[tokio::test]
async fn bodies_over_one_mib_are_split_and_a_lone_giant_is_refused() {
    let port = fake(Config::default()).await;
    let mut input = values(20);
    let filler = "x".repeat(150_000);
    for e in &mut input {
        e["properties"]["name"] = json!(filler);
    }
    let mut giant = values(21).pop().unwrap();
    giant["properties"]["name"] = json!("y".repeat(1024 * 1024));
    input.push(giant);
    let results = client(&port)
        .upsert_bulk(BP, &records(&input), UpsertOptions::default())
        .await
        .unwrap();
    for r in &results[..20] {
        assert!(r.is_ok(), "{r:?}");
    }
    let e = results[20].outcome.clone().unwrap_err();
    assert_eq!(e.status, None);
    assert!(e.message.contains("bytes"), "{e:?}");
    let calls = bulk_calls(&port);
    // 20 × ~150 KB = ~3 MB: at least 3 calls, none over 1 MiB, none answered 413.
    assert!(calls.len() >= 3, "{}", calls.len());
    for c in &calls {
        assert!(c.body_bytes <= 1024 * 1024, "{}", c.body_bytes);
        assert_eq!(c.status, 200);
    }
    assert_eq!(stored_ids(&port), ids(&input[..20]));
}

#[tokio::test]
async fn forced_413_halves_down_to_the_entity_that_is_too_big() {
    let port = fake(Config::default()).await;
    let mut input = values(8);
    input[5]["properties"]["name"] = json!("z".repeat(5_000));
    // Any body over 4 KB is refused: the batch splits until entity 5 stands alone and fails.
    port.set_faults(Faults {
        force_413_over_bytes: Some(4_000),
        ..Faults::default()
    });
    let results = client(&port)
        .upsert_bulk(BP, &records(&input), UpsertOptions::default())
        .await
        .unwrap();
    for (i, r) in results.iter().enumerate() {
        if i == 5 {
            assert_eq!(r.outcome.clone().unwrap_err().status, Some(413));
        } else {
            assert!(r.is_ok(), "{r:?}");
        }
    }
    let mut expected = ids(&input);
    expected.remove("svc-5");
    assert_eq!(stored_ids(&port), expected);
    // 8 → 4+4 → (2+2) → (1+1): calls for [8], [4a], [4b], [2], [2], [1], [1].
    let calls = bulk_calls(&port);
    assert_eq!(calls.iter().filter(|c| c.status == 413).count(), 4);
    assert_eq!(calls.iter().filter(|c| c.status == 200).count(), 3);
}

#[tokio::test]
async fn token_is_refreshed_after_revocation_and_before_expiry() {
    let port = fake(Config::default()).await;
    let c = client(&port);
    let opts = UpsertOptions::default();
    c.upsert_bulk(BP, &entities(2), opts).await.unwrap();
    port.expire_tokens();
    let r = c.upsert_bulk(BP, &entities(3), opts).await.unwrap();
    assert!(r.iter().all(|r| r.is_ok()));
    let log = port.requests();
    let auth = log
        .iter()
        .filter(|r| r.path == "/v1/auth/access_token")
        .count();
    assert_eq!(auth, 2, "{log:#?}");
    assert_eq!(log.iter().filter(|r| r.status == 401).count(), 1);

    // A short-lived token is renewed before it runs out: no 401 at all.
    let short = fake(Config {
        token_ttl: Duration::from_millis(1000),
        ..Config::default()
    })
    .await;
    let c = client(&short);
    c.upsert_bulk(BP, &entities(1), opts).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1050)).await;
    c.upsert_bulk(BP, &entities(1), opts).await.unwrap();
    let log = short.requests();
    assert_eq!(
        log.iter().filter(|r| r.status == 401).count(),
        0,
        "{log:#?}"
    );
    assert_eq!(
        log.iter()
            .filter(|r| r.path == "/v1/auth/access_token")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_second_401_is_an_error_and_bad_credentials_are_refused() {
    let port = fake(Config::default()).await;
    port.set_faults(Faults {
        early_401: 2,
        path_contains: Some("/entities/bulk".into()),
        ..Faults::default()
    });
    let err = client(&port)
        .upsert_bulk(BP, &entities(1), UpsertOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Unauthorized { .. }), "{err}");

    let wrong = client_with(&port, |c| {
        c.credentials = Credentials::new("fake-client-id", "wrong")
    });
    let err = wrong
        .upsert_bulk(BP, &entities(1), UpsertOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Auth { status: 401, .. }), "{err}");
}

#[tokio::test]
async fn user_agent_becomes_the_datasource() {
    let port = fake(Config::default()).await;
    client(&port)
        .upsert_bulk(BP, &entities(2), UpsertOptions::default())
        .await
        .unwrap();
    let snap = port.snapshot();
    let e = snap.entity(BP, "svc-1").expect("stored");
    assert_eq!(e.datasource.as_deref(), Some(UA));
    assert!(e.properties.get("blueprint").is_none());
    for r in port.requests() {
        assert_eq!(r.user_agent.as_deref(), Some(UA), "{r:?}");
    }
}

#[tokio::test]
async fn server_retry_after_is_honoured() {
    let port = fake(Config::default()).await;
    // Every first try of a bulk call is refused with `Retry-After: 1`; the seed makes the
    // following draw pass.
    port.set_faults(Faults {
        seed: 7,
        rate_429: 0.5,
        retry_after_secs: 1,
        path_contains: Some("/entities/bulk".into()),
        ..Faults::default()
    });
    let c = client_with(&port, |c| c.retry.max_delay = Duration::from_secs(5));
    let start = Instant::now();
    c.upsert_bulk(BP, &entities(1), UpsertOptions::default())
        .await
        .unwrap();
    let took = start.elapsed();
    let refused = bulk_calls(&port).iter().filter(|r| r.status == 429).count() as u32;
    assert!(refused >= 1, "the seed must refuse the first try");
    assert!(
        took >= Duration::from_millis(950) * refused,
        "{refused} 429s in {took:?}"
    );
}

/// Upserts `n` entities with `callers` at once (waiting up to 2 s on a 429); all must land.
async fn upsert_all_through(port: &FakePortHandle, callers: usize, n: usize) {
    let c = client_with(port, |c| {
        c.concurrency = callers;
        c.retry.max_delay = Duration::from_secs(2);
    });
    let input = values(n);
    let results = c
        .upsert_bulk(BP, &records(&input), UpsertOptions::default())
        .await
        .unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(stored_ids(port), ids(&input));
}

/// Upserts `n` entities with `callers` at once through a real token bucket (`burst` calls, then
/// `per_second`) on every route, set after `fake` made its own calls; none may be refused.
async fn upsert_unrefused_through_bucket(callers: usize, n: usize, per_second: f64, burst: u32) {
    let port = fake(Config::default()).await;
    port.set_faults(Faults {
        rate_limit: Some(RateLimit {
            per_second,
            burst: Some(burst),
        }),
        ..Faults::default()
    });
    upsert_all_through(&port, callers, n).await;
    assert_eq!(bulk_calls(&port).len(), n.div_ceil(20));
    let refused: Vec<LoggedRequest> = port
        .requests()
        .into_iter()
        .filter(|r| r.fault.is_some())
        .collect();
    assert!(refused.is_empty(), "refused: {refused:?}");
}

#[tokio::test]
async fn one_caller_paces_by_the_ratelimit_headers_and_is_never_refused() {
    // With one caller nothing races: every answer says how many calls are left, and when none
    // are the client waits for the reset before sending again. 11 calls (token + 10 batches)
    // through a 4-burst, 10/s bucket with no pacing would be refused several times (the fake
    // answers at once, far faster than 10/s).
    upsert_unrefused_through_bucket(1, 200, 10.0, 4).await;
}

#[tokio::test]
async fn callers_slow_down_as_the_window_runs_low_instead_of_being_refused() {
    // Four callers share an 8-burst, 20/s bucket. Pausing only once the window is used up is
    // too late for them: up to four calls are already on their way when an answer says
    // `remaining: 0`, so some are refused and wait out a whole `Retry-After` second. Spaced
    // once no more than four calls are left, they never empty it.
    upsert_unrefused_through_bucket(4, 800, 20.0, 8).await;
}

#[tokio::test]
async fn a_429_holds_every_caller_not_just_the_one_refused() {
    // Four callers share one budget; a seeded quarter of the bulk calls is refused with
    // `Retry-After: 1` regardless of load. Once any caller is refused the others send nothing
    // new until that second is over: only requests already on their way (at most one from each
    // of the other three callers) may arrive within it. Without the shared pause the others
    // would keep sending at full speed (with both the 429 pause and the `remaining: 0` pause
    // switched off, 4-6 arrived within the second).
    let port = fake(Config::default()).await;
    port.set_faults(Faults {
        seed: 11,
        rate_429: 0.25,
        retry_after_secs: 1,
        path_contains: Some("/entities/bulk".into()),
        ..Faults::default()
    });
    upsert_all_through(&port, 4, 400).await;
    let all = port.requests();
    let refused: Vec<&LoggedRequest> = all
        .iter()
        .filter(|r| r.fault.as_deref() == Some("injected_429"))
        .collect();
    assert!(!refused.is_empty(), "the seed must refuse some calls");
    for r in refused {
        let t = r.arrived_millis().expect("timestamp");
        let within: Vec<&LoggedRequest> = all
            .iter()
            .filter(|o| o.seq != r.seq)
            .filter(|o| (t + 1..t + 950).contains(&o.arrived_millis().expect("timestamp")))
            .collect();
        assert!(
            within.len() <= 3,
            "after the 429 of request {}, {} more arrived within 950 ms: {within:?}",
            r.seq,
            within.len()
        );
    }
}

#[tokio::test]
async fn secret_never_shows_in_debug() {
    let port = fake(Config::default()).await;
    let c = client(&port);
    c.upsert_bulk(BP, &entities(1), UpsertOptions::default())
        .await
        .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("fake-client-secret"), "{shown}");
    assert!(shown.contains("fake-client-id"), "{shown}");
    assert!(shown.contains(UA), "{shown}");
    let creds = Credentials::new("id", "fake-client-secret");
    assert!(!format!("{creds:?}").contains("fake-client-secret"));
}

/// A loopback address that refuses connections gets a few quick attempts (not the whole
/// policy), and the error names the URL and says the cause once, in one line.
#[tokio::test]
async fn a_refusing_loopback_port_gives_up_after_three_attempts_with_one_line() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cfg = ClientConfig::new(
        format!("http://{closed}"),
        Credentials::new("fake-client-id", "fake-client-secret"),
        UserAgent::exporter("aws", "0.1.0", "my-aws"),
    );
    cfg.retry = fast_retry();
    let client = PortClient::new(cfg).unwrap();
    let err = client.check_access().await.unwrap_err();
    assert!(
        matches!(err, PortError::Transport { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "Port at http://{closed}/v1/auth/access_token unreachable after 3 attempts: connection refused"
        )
    );
    assert!(
        std::error::Error::source(&err).is_none(),
        "the cause is said once"
    );
}
