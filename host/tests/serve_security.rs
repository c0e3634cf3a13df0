//! `berth serve` as an attacker sees it, no AWS or Port needed (tenants point at a closed
//! local port, so their syncs fail at once and harmlessly):
//!
//! - the listener answers an unauthenticated request before reading its body, cuts off
//!   clients that never finish a request head (or idle on a kept-alive connection), and ends a
//!   body that dribbles in past its deadline;
//! - bursts are answered 429 with `Retry-After`, per token and per client address;
//! - the operator's `tenantPolicy` bounds every tenant knob whether the tenant set it or not,
//!   `weight` included, and a tenant's own token cannot raise its weight or plugins;
//! - under host credentials Berth, not the tenant, chooses the external id.

mod e2e_support;
mod serve_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use e2e_support::repo;
use serve_support::{ADMIN_TOKEN, SECRET_KEY, Server};

const SCOPED: &str = "tenant-acme-token-0123456789";
const OTHER: &str = "tenant-other-token-012345678";

/// A serve config in `dir` with the admin token, `SCOPED` for tenant acme and `OTHER` for
/// tenant other, and `extra` YAML (`listener:`, `tenantPolicy:`). The tenants here give AWS
/// keys (sealed secrets), so a policy that `extra` does not set allows them.
fn config(dir: &Path, extra: &str) -> PathBuf {
    let policy = if extra.contains("tenantPolicy:") {
        String::new()
    } else {
        "tenantPolicy: {allowStaticKeys: true}\n".to_string()
    };
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let path = dir.join("serve.yaml");
    std::fs::write(
        &path,
        format!(
            "listen: {listen}\nstate: serve.db\nplugins: {}\nblueprints: {}\n\
             tokens:\n  - token: {{env: BERTH_TEST_ADMIN_TOKEN}}\n\
             \x20 - {{token: {{env: BERTH_TEST_SCOPED_0}}, tenant: acme}}\n\
             \x20 - {{token: {{env: BERTH_TEST_SCOPED_1}}, tenant: other}}\n\
             worker: {{portPollSeconds: 0}}\n{policy}{extra}",
            repo().join("target/plugins").display(),
            repo().join("mappings/blueprints").display(),
        ),
    )
    .unwrap();
    path
}

/// Starts `berth serve` on `config`. The worker's own AWS identity comes from the
/// environment here, so a host-credentials tenant's sync never looks for instance metadata.
async fn start(dir: &Path, config: &Path) -> Server {
    let listen = std::fs::read_to_string(config)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("listen: ").map(str::to_string))
        .unwrap();
    let log = dir.join("serve.log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--config"])
        .arg(config)
        .env("BERTH_SECRET_KEY", SECRET_KEY)
        .env("BERTH_TEST_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("BERTH_TEST_SCOPED_0", SCOPED)
        .env("BERTH_TEST_SCOPED_1", OTHER)
        .env("BERTH_CACHE_DIR", repo().join("target/test-aot-cache"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let s = Server {
        child,
        base: format!("http://{listen}"),
        log,
        http: reqwest::Client::new(),
    };
    // Until the listener is bound, probes are refused without reaching any rate limit. A cold
    // plugin cache (compiling every plugin) takes a while on a loaded machine.
    for _ in 0..1_800 {
        if let Ok(r) = s.http.get(format!("{}/healthz", s.base)).send().await
            && r.status().is_success()
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("berth serve did not come up: {}", s.log_text());
}

fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// Reads a response head (through the blank line); `None` when nothing complete arrived
/// within `within` (the connection may still be open).
async fn response_head(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&got).into_owned())
}

/// Waits until the server closes `stream` (EOF or reset); how long that took, or `None` if
/// it was still open after `within`. Whatever the server sends first is read and dropped.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.checked_sub(start.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

fn head_of(method: &str, path: &str, token: Option<&str>, length: usize) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "{method} {path} HTTP/1.1\r\nHost: berth\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

/// The server answers from the headers alone: the client sends a head announcing 2 MiB and
/// not one byte of the body, and still gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_refused_from_their_headers_before_any_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &config(dir.path(), "")).await;
    let two_mib = 2 << 20;
    for (token, path, want) in [
        (None, "/v1/tenants/acme", "401"),
        (Some("not-a-token-at-all-0000"), "/v1/tenants/acme", "401"),
        // A tenant's token on another tenant: "not found", still without reading the body.
        (Some(SCOPED), "/v1/tenants/other", "404"),
        // A valid token and a body over the limit: refused from Content-Length.
        (Some(ADMIN_TOKEN), "/v1/tenants/acme", "413"),
    ] {
        let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
        stream
            .write_all(head_of("PUT", path, token, two_mib).as_bytes())
            .await
            .unwrap();
        let head = response_head(&mut stream, Duration::from_secs(20)).await;
        let head = head.unwrap_or_else(|| {
            panic!(
                "{path} with {token:?}: no answer while the body was unsent\n{}",
                server.log_text()
            )
        });
        assert!(
            head.starts_with(&format!("HTTP/1.1 {want}")),
            "{path} with {token:?}: {head}"
        );
    }
}

/// Slowloris: connections that never finish their request head are closed by the header
/// timeout (10 s by default), and so is a kept-alive connection that goes quiet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_and_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &config(dir.path(), "")).await;
    let mut half = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr(&server)).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: berth\r\nX-Slow: ")
            .await
            .unwrap();
        half.push(s);
    }
    let mut idle = TcpStream::connect(addr(&server)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: berth\r\n\r\n")
        .await
        .unwrap();
    let head = response_head(&mut idle, Duration::from_secs(20)).await;
    assert!(head.is_some_and(|h| h.starts_with("HTTP/1.1 200")));

    // Generous against a loaded machine, yet well short of never (before: all 20 were still
    // open after 35 s).
    let bound = Duration::from_secs(30);
    let closes = futures::future::join_all(half.iter_mut().map(|s| closed_within(s, bound))).await;
    let open = closes.iter().filter(|c| c.is_none()).count();
    assert_eq!(
        open, 0,
        "{open} of 20 half-sent requests still open after {bound:?}"
    );
    assert!(
        closed_within(&mut idle, bound).await.is_some(),
        "an idle kept-alive connection was still open after {bound:?}"
    );
    // The server itself is fine.
    let (st, _) = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(st, 200);
}

/// A body must arrive whole within `bodyTimeoutSeconds`, however steadily it drips.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbled_body_is_cut_off_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &config(dir.path(), "listener: {bodyTimeoutSeconds: 2}\n"),
    )
    .await;
    let stream = TcpStream::connect(addr(&server)).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(head_of("PUT", "/v1/tenants/acme", Some(ADMIN_TOKEN), 1_000).as_bytes())
        .await
        .unwrap();
    // One byte every 200 ms: a per-read timeout of 2 s would never fire.
    let drip = tokio::spawn(async move {
        for _ in 0..1_000 {
            if write.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") && start.elapsed() < Duration::from_secs(30) {
        match tokio::time::timeout(Duration::from_secs(30), read.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    drip.abort();
    let head = String::from_utf8_lossy(&got);
    assert!(head.starts_with("HTTP/1.1 408"), "{head:?}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}

/// `n` GETs of `path` with `token`, 16 at a time; (status, Retry-After, body) of each.
async fn burst(
    server: &Server,
    path: &str,
    token: Option<&str>,
    n: usize,
) -> Vec<(u16, Option<u64>, String)> {
    futures::stream::iter(0..n)
        .map(|_| async {
            let mut req = server.http.get(format!("{}{path}", server.base));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse().ok());
            (r.status().as_u16(), retry, r.text().await.unwrap())
        })
        .buffer_unordered(16)
        .collect()
        .await
}

fn limited<'a>(
    answers: &'a [(u16, Option<u64>, String)],
    whose: &'a str,
) -> impl Iterator<Item = &'a (u16, Option<u64>, String)> {
    answers
        .iter()
        .filter(move |(st, _, body)| *st == 429 && body.contains(whose))
}

/// The default limits (a token: 50/s, burst 100; an address: 100/s, burst 200) answer a
/// burst 429 with `Retry-After`, on authenticated and public routes alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_are_answered_429_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &config(dir.path(), "")).await;
    let answers = burst(&server, "/v1/tenants", Some(ADMIN_TOKEN), 800).await;
    let ok = answers.iter().filter(|a| a.0 == 200).count();
    assert!(ok >= 100, "the burst allowance was refused: {ok} of 800");
    let by_token: Vec<_> = limited(&answers, "this token").collect();
    assert!(!by_token.is_empty(), "800 calls at once, none refused");
    assert!(
        by_token.iter().all(|a| a.1.is_some_and(|s| s >= 1)),
        "{by_token:?}"
    );
    assert!(answers.iter().all(|a| a.0 == 200 || a.0 == 429));

    let answers = burst(&server, "/healthz", None, 1_500).await;
    let by_address: Vec<_> = limited(&answers, "this address").collect();
    assert!(
        !by_address.is_empty(),
        "1500 health checks at once, none refused"
    );
    assert!(by_address.iter().all(|a| a.1.is_some_and(|s| s >= 1)));
}

/// Each token has its own bucket: one tenant's burst does not refuse another's calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_token_has_its_own_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &config(
            dir.path(),
            "listener: {tokenRate: {perSecond: 1, burst: 3}, addressRate: {perSecond: 100, burst: 200}}\n",
        ),
    )
    .await;
    let started = Instant::now();
    let answers = burst(&server, "/v1/tenants", Some(SCOPED), 12).await;
    let ok = answers.iter().filter(|a| a.0 == 200).count();
    // At most the burst plus one a second since; the 12 calls take well under 9 s.
    let allowed = 3 + started.elapsed().as_secs() as usize + 1;
    if allowed < 12 {
        assert!(ok <= allowed, "{ok} of 12 accepted: {answers:?}");
        let refused: Vec<_> = limited(&answers, "this token").collect();
        assert!(!refused.is_empty(), "{answers:?}");
        assert!(refused.iter().all(|a| a.1.is_some_and(|s| s >= 1)));
    }
    for token in [OTHER, ADMIN_TOKEN] {
        let (st, body) = server
            .call(Method::GET, "/v1/tenants", Some(token), None)
            .await;
        assert_eq!(st, 200, "{body}");
    }
}

fn host_credentials_tenant(extra_aws: Value) -> Value {
    let mut aws = json!({
        "auth": {"method": "default"},
        "accountRoleArns": ["arn:aws:iam::111111111111:role/BerthReadOnly"],
        "endpointUrl": "http://127.0.0.1:9",
    });
    for (k, v) in extra_aws.as_object().unwrap() {
        aws[k] = v.clone();
    }
    json!({
        "config": {
            "port": {"clientId": "id", "clientSecret": {"secret": "portSecret"},
                     "baseUrl": "http://127.0.0.1:9", "integration": {"identifier": "berth-acme"}},
            "aws": aws,
            "mapping": {"resources": []},
        },
        "secrets": {"portSecret": "not-a-real-secret"},
    })
}

/// A server whose policy allows host credentials and custom endpoints (the tenants' closed
/// port), with ceilings below the built-in defaults.
async fn policed(dir: &Path) -> Server {
    let policy = "tenantPolicy: {allowCustomEndpoints: true, allowHostCredentials: true, \
                  allowStaticKeys: true, maxPluginTimeoutMs: 5000, maxPluginMemoryMb: 128, minIntervalMinutes: 120, \
                  maxWeight: 10}\n";
    start(dir, &config(dir, policy)).await
}

async fn put(server: &Server, token: &str, id: &str, doc: &Value) -> (u16, Value) {
    server
        .call(
            Method::PUT,
            &format!("/v1/tenants/{id}"),
            Some(token),
            Some(doc),
        )
        .await
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

/// Limits the tenant left out get the built-in default lowered to the ceiling (the default
/// plugin timeout is 30 s, the policy's 5 s; the default interval 60 minutes, the policy's
/// floor 120); one set above it is refused, naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_bounds_the_limits_a_tenant_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = policed(dir.path()).await;
    let (st, body) = put(
        &server,
        ADMIN_TOKEN,
        "acme",
        &host_credentials_tenant(json!({})),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let (st, status) = server
        .call(Method::GET, "/v1/tenants/acme/status", Some(SCOPED), None)
        .await;
    assert_eq!(st, 200, "{status}");
    assert_eq!(status["status"]["intervalMs"], 120 * 60_000, "{status}");
    let effective = &body["tenant"]["effective"];
    assert_eq!(effective["pluginTimeoutMs"], 5000, "{body}");
    assert_eq!(effective["pluginMemoryMb"], 128, "{body}");
    assert_eq!(effective["intervalMinutes"], 120, "{body}");

    let mut over = host_credentials_tenant(json!({}));
    over["config"]["limits"] = json!({"pluginTimeoutMs": 5001});
    let (st, body) = put(&server, ADMIN_TOKEN, "acme", &over).await;
    assert_eq!(st, 400, "{body}");
    assert!(
        message(&body).contains("config.limits.pluginTimeoutMs"),
        "{body}"
    );
}

/// `weight` is bounded by `maxWeight` for everyone, kept when an update leaves it out, and
/// only an admin token may change it (or `plugins`); a tenant token may repeat it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_admin_sets_weight_and_plugins_within_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let server = policed(dir.path()).await;
    let mut heavy = host_credentials_tenant(json!({}));
    heavy["weight"] = json!(11);
    let (st, body) = put(&server, ADMIN_TOKEN, "acme", &heavy).await;
    assert_eq!(st, 400, "{body}");
    assert!(message(&body).contains("weight"), "{body}");
    heavy["weight"] = json!(5);
    let (st, body) = put(&server, ADMIN_TOKEN, "acme", &heavy).await;
    assert_eq!((st, &body["tenant"]["weight"]), (201, &json!(5)), "{body}");

    let mut greedy = host_credentials_tenant(json!({}));
    greedy["weight"] = json!(u32::MAX);
    let (st, body) = put(&server, SCOPED, "acme", &greedy).await;
    assert_eq!(st, 403, "{body}");
    assert!(message(&body).starts_with("weight"), "{body}");
    let mut plugins = host_credentials_tenant(json!({}));
    plugins["plugins"] = json!(["generic"]);
    let (st, body) = put(&server, SCOPED, "acme", &plugins).await;
    assert_eq!(st, 403, "{body}");
    assert!(message(&body).starts_with("plugins"), "{body}");
    let (_, shown) = server
        .call(Method::GET, "/v1/tenants/acme", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(shown["tenant"]["weight"], 5, "{shown}");
    assert_eq!(shown["tenant"]["plugins"], Value::Null, "{shown}");

    // The tenant's own update leaves the weight as the admin set it.
    let (st, body) = put(&server, SCOPED, "acme", &host_credentials_tenant(json!({}))).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["tenant"]["weight"], 5, "{body}");
    let mut same = host_credentials_tenant(json!({}));
    same["weight"] = json!(5);
    let (st, body) = put(&server, SCOPED, "acme", &same).await;
    assert_eq!(st, 200, "repeating the stored weight is allowed: {body}");
    // A tenant token creating its own tenant gets the default weight.
    let (st, body) = put(&server, OTHER, "other", &host_credentials_tenant(json!({}))).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["tenant"]["weight"], 1, "{body}");
}

/// Under host credentials a tenant may not name the external id (it could name another
/// customer's); Berth generates one per tenant, shows it, and keeps it across updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_chooses_each_tenants_external_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = policed(dir.path()).await;
    let chosen = host_credentials_tenant(json!({"externalId": "another-customers-id"}));
    let (st, body) = put(&server, ADMIN_TOKEN, "acme", &chosen).await;
    assert_eq!(st, 400, "{body}");
    assert!(message(&body).contains("config.aws.externalId"), "{body}");
    assert_eq!(message(&body).lines().count(), 1, "{body}");

    let (st, body) = put(
        &server,
        ADMIN_TOKEN,
        "acme",
        &host_credentials_tenant(json!({})),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let external = body["tenant"]["externalId"].as_str().unwrap().to_string();
    assert!(
        external.starts_with("berth-") && external.len() >= 38,
        "{external}"
    );
    let (st, status) = server
        .call(Method::GET, "/v1/tenants/acme/status", Some(SCOPED), None)
        .await;
    assert_eq!(st, 200, "{status}");
    assert_eq!(status["status"]["externalId"], external.as_str());
    let (_, shown) = server
        .call(Method::GET, "/v1/tenants/acme", Some(SCOPED), None)
        .await;
    assert_eq!(shown["tenant"]["externalId"], external.as_str());
    for token in [ADMIN_TOKEN, SCOPED] {
        let (st, body) = put(&server, token, "acme", &host_credentials_tenant(json!({}))).await;
        assert_eq!(st, 200, "{body}");
        assert_eq!(body["tenant"]["externalId"], external.as_str(), "{body}");
    }
    let (st, body) = put(&server, OTHER, "other", &host_credentials_tenant(json!({}))).await;
    assert_eq!(st, 201, "{body}");
    let theirs = body["tenant"]["externalId"].as_str().unwrap();
    assert!(
        theirs.starts_with("berth-") && theirs != external,
        "{theirs}"
    );
}
