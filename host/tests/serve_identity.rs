//! `berth serve` as its tenants' OIDC provider, end to end: two customers, each with its own
//! Organization in the emulator, set up only from the templates `GET /v1/tenants/{id}/aws-setup`
//! returns (deployed through the emulator's CloudFormation API), sync with no AWS secret given
//! to Berth. The emulator verifies every token as STS does (signature against the JWKS it
//! fetches from the issuer, `iss`, `aud`, expiry, the role's trust policy on `sub`).
//!
//! Attacks: one tenant's token on the other's role, a tenant naming another customer's role, a
//! token signed by a key not in the JWKS (with a real `kid`), an expired token. Keys rotate
//! every 12 s and STS sessions last 8 s, so tokens are minted again in the middle of syncs,
//! across rotations. Two workers share one Postgres behind one issuer URL (a balancer): they
//! publish the same JWKS, and either one's tokens are accepted.

mod e2e_support;
mod serve_support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use berth::serve::identity::{IdentityConfig, Issuer, subject};
use berth::serve::secrets::SecretKey;
use berth::store::Store;
use berth_fake_port::FakePortHandle;
use e2e_support::{World, catalog_of, repo, world};
use reqwest::Method;
use serde_json::{Value, json};
use serve_support::{ADMIN_TOKEN, SECRET_KEY, Server, fresh_postgres_database};

const CUSTOMER_B: &str = "444455556666";
const ROTATION: &str = "rotationSeconds: 12, publishLeadSeconds: 5, tokenSeconds: 60";

/// A TCP balancer on 127.0.0.1 in front of `backends` (round robin, skipping one that refuses):
/// the issuer's one public URL in front of several workers.
async fn balancer(backends: Vec<String>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let (backends, next) = (backends.clone(), next.clone());
            tokio::spawn(async move {
                let start = next.fetch_add(1, Ordering::Relaxed);
                for i in 0..backends.len() {
                    let b = &backends[(start + i) % backends.len()];
                    if let Ok(mut out) = tokio::net::TcpStream::connect(b).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

/// The default mapping, whole (the Organization's accounts included), as a tenant sends it.
fn tenant_mapping_all() -> Value {
    let text = std::fs::read_to_string(repo().join("mappings/default.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

fn free_address() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

/// A worker's serve config: shared Postgres, the issuer behind the balancer, no static keys or
/// host credentials for tenants.
fn worker_config(
    dir: &Path,
    name: &str,
    listen: &str,
    db: &str,
    issuer: &str,
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "listen: {listen}\nstate: {db}\nworkerId: {name}\nplugins: {}\nblueprints: {}\n\
             tokens:\n  - token: {{env: BERTH_TEST_ADMIN_TOKEN}}\n\
             worker: {{pollMillis: 200, portPollSeconds: 0, heartbeatSeconds: 1, leaseSeconds: 5}}\n\
             tenantPolicy: {{allowCustomEndpoints: true}}\n\
             identity: {{issuer: '{issuer}', {ROTATION}, templatesUrl: 'https://berth-templates.s3.amazonaws.com/v1/'}}\n",
            repo().join("target/plugins").display(),
            repo().join("mappings/blueprints").display(),
        ),
    )
    .unwrap();
    path
}

struct Customer {
    tenant: &'static str,
    management: String,
    root: String,
    accounts: Vec<String>,
    port: FakePortHandle,
}

impl Customer {
    fn role(&self) -> String {
        format!("arn:aws:iam::{}:role/BerthIntegration", self.management)
    }

    /// The tenant document: `berthIdentity` with the role the setup stack creates, and no AWS
    /// secret at all.
    fn document(&self, w: &World, role: &str) -> Value {
        json!({
            "config": {
                "port": {
                    "clientId": "fake-client-id",
                    "clientSecret": {"secret": "portSecret"},
                    "baseUrl": self.port.base_url(),
                    "integration": {"identifier": format!("berth-{}", self.tenant)},
                },
                "aws": {"auth": {"method": "berthIdentity", "roleArn": role},
                        "endpointUrl": w.emu.endpoint},
                "mapping": tenant_mapping_all(),
                "schedule": {"intervalMinutes": 60},
            },
            "secrets": {"portSecret": "fake-client-secret"},
        })
    }

    /// Every account of this customer appears in its Port (the Organization listed through
    /// the integration role, each member read through its read role), and none of `other`'s.
    fn assert_port_reads_only_its_organization(&self, other: &Customer) {
        let catalog = catalog_of(&self.port);
        let text: Vec<(String, String)> = catalog
            .iter()
            .map(|((bp, id), e)| (bp.clone(), format!("{id} {e}")))
            .collect();
        for a in &self.accounts {
            assert!(
                catalog.contains_key(&("awsAccount".to_string(), a.clone())),
                "{}: account {a} not listed",
                self.tenant
            );
            if *a != self.management {
                assert!(
                    text.iter()
                        .any(|(bp, t)| bp != "awsAccount" && t.contains(a.as_str())),
                    "{}: nothing read in member {a}",
                    self.tenant
                );
            }
        }
        for a in &other.accounts {
            assert!(
                !text.iter().any(|(_, t)| t.contains(a.as_str())),
                "{}: holds something of the other customer's account {a}",
                self.tenant
            );
        }
    }
}

async fn call(server: &Server, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    server.call(method, path, Some(ADMIN_TOKEN), body).await
}

/// Waits for a finished sync newer than `after` (a sync id), returns it.
async fn next_sync(server: &Server, tenant: &str, after: Option<&str>) -> Value {
    let start = std::time::Instant::now();
    loop {
        let syncs = server.syncs(tenant).await;
        if let Some(s) = syncs.iter().find(|s| s["status"] != "running")
            && Some(s["syncId"].as_str().unwrap_or_default()) != after
        {
            return s.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{tenant}: no new sync: {syncs:#?}\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn resync(server: &Server, tenant: &str) -> Value {
    let last = server.syncs(tenant).await;
    let after = last
        .first()
        .and_then(|s| s["syncId"].as_str())
        .map(str::to_string);
    let (st, body) = call(
        server,
        Method::POST,
        &format!("/v1/tenants/{tenant}/resync"),
        None,
    )
    .await;
    assert!(st == 202 || st == 200, "{st} {body}");
    next_sync(server, tenant, after.as_deref()).await
}

/// AssumeRoleWithWebIdentity straight to the emulator's STS, as STS would be called with a
/// token that leaked or was forged: the error code, or "ok".
async fn exchange(endpoint: &str, role: &str, token: &str) -> String {
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .build();
    let sts = aws_sdk_sts::Client::from_conf(conf);
    match sts
        .assume_role_with_web_identity()
        .role_arn(role)
        .role_session_name("attack")
        .web_identity_token(token)
        .send()
        .await
    {
        Ok(_) => "ok".into(),
        Err(e) => aws_sdk_sts::error::ProvideErrorMetadata::code(&e)
            .unwrap_or("no code")
            .to_string(),
    }
}

/// A token for `sub` with a key Berth never published, under the `kid` of a real one.
fn forged(issuer: &str, kid: &str, sub: &str) -> String {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_der(pair.to_pkcs8v1().unwrap().as_ref());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.into());
    let now = berth::store::now_ms() / 1000;
    jsonwebtoken::encode(
        &header,
        &json!({"iss": issuer, "sub": sub, "aud": "sts.amazonaws.com", "iat": now, "nbf": now,
                "exp": now + 300, "jti": "forged"}),
        &key,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_customers_sync_with_berths_identity_and_no_aws_secret() {
    let w = world().await;
    let dir = w.dir.path();
    let second = w
        .emu
        .seed(&[
            "--management-account",
            CUSTOMER_B,
            "--run-id",
            "customer-b",
            "--accounts",
            "2",
            "--regions",
            "us-east-1",
            "--per-kind",
            "1",
            "--workers",
            "4",
        ])
        .await
        .unwrap();
    let accounts = |seed: &Value, mgmt: &str| -> Vec<String> {
        let mut v: Vec<String> = seed["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect();
        v.push(mgmt.to_string());
        v
    };
    let mut customers = Vec::new();
    for (tenant, seed, mgmt) in [("a", &w.seed, "123456789012"), ("b", &second, CUSTOMER_B)] {
        let (_a, port) = berth_fake_port::spawn(berth_fake_port::Config::default())
            .await
            .unwrap();
        customers.push(Customer {
            tenant,
            management: mgmt.into(),
            root: seed["organization"]["root_id"].as_str().unwrap().into(),
            accounts: accounts(seed, mgmt),
            port,
        });
    }
    // Short STS sessions: credentials, and so tokens, are renewed in the middle of a sync. A
    // short JWKS cache, below the publish lead: a correct issuer is never caught out by it.
    w.emu
        .config(&json!({"sts": {"session_seconds": 8, "jwks_cache_seconds": 3}}))
        .await
        .unwrap();

    let db = fresh_postgres_database("identity").await;
    let (listen1, listen2) = (free_address(), free_address());
    let issuer = balancer(vec![listen1.clone(), listen2.clone()]).await;
    let c1 = worker_config(dir, "w1", &listen1, &db, &issuer);
    let c2 = worker_config(dir, "w2", &listen2, &db, &issuer);
    let mut w1 = Server::start(&c1, &[], dir.join("w1.log")).await;

    // The issuer's documents, through its public URL, without a token.
    let http = reqwest::Client::new();
    let discovery: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], issuer.as_str());
    assert_eq!(
        discovery["jwks_uri"],
        format!("{issuer}/.well-known/jwks.json")
    );

    // Onboarding: the tenant first (its sync fails, and deletes nothing, until the stack
    // exists), then the setup it is given, deployed as the customer would.
    let mut setups = Vec::new();
    for c in &customers {
        let (st, body) = w1.put_tenant(c.tenant, &c.document(&w, &c.role())).await;
        assert_eq!(st, 201, "{body}");
        let first = next_sync(&w1, c.tenant, None).await;
        assert_eq!(first["status"], "failed", "{first}");
        let why = first["summary"]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(why.contains("AssumeRoleWithWebIdentity"), "{why}");
        assert_eq!(
            why.matches("base credentials").count(),
            1,
            "said once: {why}"
        );
        assert!(c.port.snapshot().entities.values().all(|e| e.is_empty()));

        let (st, body) = call(
            &w1,
            Method::GET,
            &format!("/v1/tenants/{}/aws-setup", c.tenant),
            None,
        )
        .await;
        assert_eq!(st, 200, "{body}");
        let setup = body["setup"].clone();
        assert!(
            setup["subject"]
                .as_str()
                .unwrap()
                .starts_with(&format!("tenant:{}:", c.tenant))
        );
        assert!(
            setup["quickCreateUrl"]
                .as_str()
                .unwrap()
                .contains("param_TenantSubject=")
        );
        let p = &setup["parameters"];
        let param = |k: &str| format!("{k}={}", p[k].as_str().unwrap());
        let out = w
            .emu
            .deploy(&[
                "--account",
                &c.management,
                "--template",
                &repo()
                    .join("deploy/aws/berth-management.yaml")
                    .display()
                    .to_string(),
                "--member-template",
                &repo()
                    .join("deploy/aws/berth-member-role.yaml")
                    .display()
                    .to_string(),
                "--stack-name",
                &format!("berth-{}", c.tenant),
                "--param",
                &param("IssuerUrl"),
                "--param",
                &param("TenantSubject"),
                "--param",
                &param("ExternalId"),
                "--param",
                &param("Audience"),
                "--param",
                &format!("OrganizationalUnitIds={}", c.root),
            ])
            .await
            .unwrap();
        assert_eq!(out["outputs"]["IntegrationRoleArn"], c.role(), "{out}");
        setups.push(setup);
    }
    for c in &customers {
        let sync = resync(&w1, c.tenant).await;
        assert_eq!(sync["status"], "completed", "{sync:#?}\n{}", w1.log_text());
    }
    customers[0].assert_port_reads_only_its_organization(&customers[1]);
    customers[1].assert_port_reads_only_its_organization(&customers[0]);

    // A third tenant naming customer b's role: b's trust policy pins b's `sub`.
    let (_m, mallory_port) = berth_fake_port::spawn(berth_fake_port::Config::default())
        .await
        .unwrap();
    let mallory = Customer {
        tenant: "mallory",
        management: CUSTOMER_B.into(),
        root: String::new(),
        accounts: vec![],
        port: mallory_port,
    };
    let before_b = catalog_of(&customers[1].port);
    let (st, body) = w1
        .put_tenant("mallory", &mallory.document(&w, &customers[1].role()))
        .await;
    assert_eq!(st, 201, "{body}");
    let s = next_sync(&w1, "mallory", None).await;
    assert_eq!(s["status"], "failed", "{s}");
    assert!(
        s["summary"]["error"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"),
        "{s}"
    );
    assert!(
        mallory
            .port
            .snapshot()
            .entities
            .values()
            .all(|e| e.is_empty())
    );
    assert_eq!(catalog_of(&customers[1].port), before_b);

    // Tokens straight to STS. A third issuer instance on the same database and secret key
    // signs with the same keys as the workers.
    let mut config: IdentityConfig =
        serde_json::from_value(json!({"issuer": issuer, "rotationSeconds": 12, "publishLeadSeconds": 5, "tokenSeconds": 60}))
            .unwrap();
    config.check().unwrap();
    let store = Store::open(&db).await.unwrap();
    let seal = Arc::new(SecretKey::from_base64(SECRET_KEY).unwrap());
    let own = Issuer::open(config, store.clone(), seal).await.unwrap();
    let sub = |i: usize| setups[i]["subject"].as_str().unwrap().to_string();
    let ep = &w.emu.endpoint;
    assert_eq!(
        exchange(ep, &customers[0].role(), &own.mint(&sub(0)).await.unwrap()).await,
        "ok"
    );
    assert_eq!(
        exchange(ep, &customers[1].role(), &own.mint(&sub(0)).await.unwrap()).await,
        "AccessDenied",
        "tenant a's token on tenant b's role"
    );
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    assert_eq!(
        exchange(
            ep,
            &customers[1].role(),
            &own.mint_at(&sub(1), an_hour_ago).await.unwrap()
        )
        .await,
        "ExpiredTokenException"
    );
    let kid = store
        .signing_keys()
        .await
        .unwrap()
        .last()
        .unwrap()
        .kid
        .clone();
    assert_eq!(
        exchange(ep, &customers[0].role(), &forged(&issuer, &kid, &sub(0))).await,
        "InvalidIdentityToken",
        "a token signed by a key not in the JWKS"
    );
    // A subject of another incarnation (the tenant deleted and created again) is refused too.
    assert_eq!(
        exchange(
            ep,
            &customers[0].role(),
            &own.mint(&subject("a", "0000")).await.unwrap()
        )
        .await,
        "AccessDenied"
    );

    // Syncs go on across rotations (a key every 12 s; sessions of 8 s mint tokens mid-sync).
    let first_generation = store
        .signing_keys()
        .await
        .unwrap()
        .last()
        .unwrap()
        .generation;
    let until = std::time::Instant::now() + Duration::from_secs(28);
    let mut rounds = 0;
    while std::time::Instant::now() < until || rounds < 2 {
        for c in &customers {
            let s = resync(&w1, c.tenant).await;
            assert_eq!(s["status"], "completed", "{s:#?}\n{}", w1.log_text());
        }
        rounds += 1;
    }
    let last_generation = store
        .signing_keys()
        .await
        .unwrap()
        .last()
        .unwrap()
        .generation;
    assert!(
        last_generation >= first_generation + 2,
        "keys rotated: {first_generation} -> {last_generation}"
    );

    // A second worker on the same database publishes the same keys.
    let w2 = Server::start(&c2, &[], dir.join("w2.log")).await;
    let jwks = |base: String| {
        let http = http.clone();
        async move {
            http.get(format!("{base}/.well-known/jwks.json"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let mut same = false;
    for _ in 0..20 {
        // Both re-read the keys at least every tick; compare away from a rotation instant.
        if jwks(w1.base.clone()).await == jwks(w2.base.clone()).await {
            same = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(same, "the two workers publish different JWKS");
    // With the first worker gone, the second one syncs both tenants, its tokens verified
    // against the JWKS the balancer now fetches from it.
    w1.terminate();
    for c in &customers {
        let s = resync(&w2, c.tenant).await;
        assert_eq!(s["status"], "completed", "{s:#?}\n{}", w2.log_text());
    }
    // The log is coloured: compare without the escape sequences.
    let log: String = w2
        .log_text()
        .split('\x1b')
        .map(|part| part.split_once('m').map_or(part, |(_, rest)| rest))
        .collect();
    for c in &customers {
        let started = format!("sync starting tenant=\"{}\" worker=w2", c.tenant);
        assert!(
            log.contains(&started),
            "w2 did not sync {}:\n{log}",
            c.tenant
        );
    }
    customers[0].assert_port_reads_only_its_organization(&customers[1]);
    customers[1].assert_port_reads_only_its_organization(&customers[0]);
    let stats = w.emu.stats().await.unwrap();
    let refused = &stats["web_identity"]["refused"];
    assert!(
        refused["trust_denied"].as_u64().unwrap_or(0) >= 3,
        "{refused}"
    );
    assert!(refused["expired"].as_u64().unwrap_or(0) >= 1, "{refused}");
    assert!(
        refused["bad_signature"].as_u64().unwrap_or(0) >= 1,
        "{refused}"
    );
    assert!(
        stats["web_identity"]["accepted"].as_u64().unwrap() > 10,
        "{stats}"
    );
    // No AWS secret was ever given: every tenant document has only its Port secret.
    for t in ["a", "b", "mallory"] {
        let (_, body) = call(&w2, Method::GET, &format!("/v1/tenants/{t}"), None).await;
        assert_eq!(body["tenant"]["secrets"], json!(["portSecret"]), "{body}");
    }
}
