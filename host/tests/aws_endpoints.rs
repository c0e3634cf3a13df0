//! Where a config can send Berth: a region is a region name (never a way to
//! name a host), static AWS keys come only by reference, and no HTTP client
//! Berth builds for AWS or Port follows a redirect.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth::discovery::AwsLimits;
use berth::discovery::arn::Partition;
use berth::discovery::clients::ClientFactory;
use berth::serve::tenants::{StoredTenant, TenantDoc, TenantPolicy};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn tenant(config: Value, secrets: &[(&str, &str)]) -> StoredTenant {
    StoredTenant::merged(
        None,
        TenantDoc {
            config,
            secrets: secrets
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                .collect(),
            weight: None,
            plugins: None,
        },
    )
}

fn tenant_config(aws: Value) -> Value {
    json!({
        "port": {"clientId": "id", "clientSecret": {"secret": "port"},
                 "integration": {"identifier": "acme-aws"}},
        "aws": aws,
        "mapping": {"resources": []}
    })
}

const SECRETS: &[(&str, &str)] = &[
    ("port", "port-s3cr3t"),
    ("awsKeyId", "AKIAEXAMPLE"),
    ("awsSecret", "aws-s3cr3t"),
];

fn by_secret() -> Value {
    json!({"method": "static", "accessKeyId": {"secret": "awsKeyId"},
           "secretAccessKey": {"secret": "awsSecret"}})
}

/// The tenants here give AWS keys (as sealed secrets), which the operator must allow.
fn static_keys_allowed() -> TenantPolicy {
    TenantPolicy {
        allow_static_keys: true,
        ..TenantPolicy::default()
    }
}

fn refused(config: Value, needle: &str) -> String {
    let e = tenant(config, SECRETS)
        .checked_config("acme", &static_keys_allowed())
        .expect_err("the tenant config must be refused")
        .to_string();
    assert!(e.contains(needle), "{needle}: {e}");
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

/// A region is spliced into S3 hostnames: `x@127.0.0.1:9/` would make the
/// URL's authority `127.0.0.1:9`, an endpoint the tenant policy forbids.
#[test]
fn a_tenant_region_that_names_a_host_is_refused_at_load() {
    // Regions are checked when the config is parsed, before how its keys are given: inline
    // keys keep this test about regions alone.
    let inline = json!({"method": "static", "accessKeyId": "AKIAEXAMPLE",
                        "secretAccessKey": "aws-s3cr3t"});
    for (aws, key) in [
        (
            json!({"auth": inline, "regions": ["us-east-1", "x@127.0.0.1:9/"]}),
            "aws.regions[1]",
        ),
        (
            json!({"auth": inline, "regionPolicy": {"allow": ["x@127.0.0.1:9/"]}}),
            "aws.regionPolicy.allow[0]",
        ),
        (
            json!({"auth": inline, "regionPolicy": {"deny": ["eu-west-1.attacker.example"]}}),
            "aws.regionPolicy.deny[0]",
        ),
    ] {
        refused(tenant_config(aws), key);
    }
    let ok = json!({"auth": by_secret(), "regions": ["us-east-1", "eu-central-2"]});
    tenant(tenant_config(ok), SECRETS)
        .checked_config("acme", &static_keys_allowed())
        .expect("region names are accepted");
}

#[test]
fn a_config_file_region_that_names_a_host_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("port-secret"), "x").unwrap();
    let path = dir.path().join("berth.yaml");
    std::fs::write(
        &path,
        "port:\n  clientId: {env: X}\n  clientSecret: {file: port-secret}\n  \
         integration: {identifier: a}\naws:\n  regions: ['x@127.0.0.1:9/']\n",
    )
    .unwrap();
    let e = berth::config::Config::from_path(&path)
        .expect_err("refused")
        .to_string();
    assert!(e.contains("aws.regions[0]"), "{e}");
    let e = berth::discovery::AwsConfig::from_path(&path)
        .expect_err("refused")
        .to_string();
    assert!(e.contains("aws.regions[0]"), "{e}");
}

#[test]
fn a_tenant_gives_static_keys_only_as_its_secrets() {
    let inline = json!({"method": "static", "accessKeyId": "AKIAEXAMPLE",
                        "secretAccessKey": "aws-s3cr3t"});
    let e = refused(
        tenant_config(json!({"auth": inline})),
        "config.aws.auth.accessKeyId",
    );
    assert!(
        e.contains("{secret: NAME}") && !e.contains("aws-s3cr3t"),
        "{e}"
    );
    for (key, reference) in [
        ("secretAccessKey", json!("aws-s3cr3t")),
        ("secretAccessKey", json!({"env": "AWS_SECRET_ACCESS_KEY"})),
        ("secretAccessKey", json!({"file": "/root/.aws/credentials"})),
        ("accessKeyId", json!({"env": "AWS_ACCESS_KEY_ID"})),
        ("sessionToken", json!("t0k3n")),
    ] {
        let mut auth = by_secret();
        auth[key] = reference;
        let e = refused(
            tenant_config(json!({"auth": auth})),
            &format!("config.aws.auth.{key}"),
        );
        assert!(!e.contains("aws-s3cr3t") && !e.contains("t0k3n"), "{e}");
    }
    let mut auth = by_secret();
    auth["secretAccessKey"] = json!({"secret": "nope"});
    refused(
        tenant_config(json!({"auth": auth})),
        "no secret named \"nope\"",
    );

    let c = tenant(tenant_config(json!({"auth": by_secret()})), SECRETS)
        .checked_config("acme", &static_keys_allowed())
        .expect("keys by {secret} are accepted");
    let aws = c.aws.expect("aws section");
    aws.check().expect("the keys were read");
    assert_eq!(aws.auth.access_key_id.as_deref(), Some("AKIAEXAMPLE"));
    let shown = format!("{aws:?}");
    assert!(
        !shown.contains("aws-s3cr3t") && !shown.contains("AKIAEXAMPLE"),
        "{shown}"
    );
}

#[test]
fn a_config_file_gives_static_keys_only_by_reference() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("port-secret"), "x").unwrap();
    std::fs::write(dir.path().join("aws-secret"), "aws-s3cr3t\n").unwrap();
    let path = dir.path().join("berth.yaml");
    let write = |auth: &str| {
        std::fs::write(
            &path,
            format!(
                "port:\n  clientId: {{file: port-secret}}\n  clientSecret: {{file: port-secret}}\n  \
                 integration: {{identifier: a}}\naws:\n  auth: {auth}\n"
            ),
        )
        .unwrap();
    };
    write("{method: static, accessKeyId: AKIAEXAMPLE, secretAccessKey: aws-s3cr3t}");
    let e = berth::config::Config::from_path(&path)
        .expect_err("inline keys are refused")
        .to_string();
    assert!(
        e.contains("aws.auth.accessKeyId") && e.contains("{env: VARIABLE} or {file: PATH}"),
        "{e}"
    );
    assert!(!e.contains("aws-s3cr3t"), "{e}");
    write("{method: static, accessKeyId: {file: aws-secret}, secretAccessKey: {file: aws-secret}}");
    let c = berth::config::Config::from_path(&path).expect("keys by {file}");
    let aws = c.aws.expect("aws");
    aws.check().expect("keys read");
    assert_eq!(aws.auth.secret_access_key.unwrap().expose(), "aws-s3cr3t");
}

/// A server answering every request with `status` and `Location: location`,
/// counting the requests it got.
async fn answering(status: &str, location: String) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let (h, status) = (hits.clone(), status.to_string());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            h.fetch_add(1, Ordering::SeqCst);
            let (status, location) = (status.clone(), location.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 << 10];
                let _ = sock.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {status}\r\nLocation: {location}\r\nContent-Length: 0\r\n\
                     Connection: close\r\n\r\n"
                );
                let _ = sock.write_all(answer.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (addr, hits)
}

/// `first` redirects (with `status`) to `second`, which records whether it was reached.
async fn redirect_pair(status: &str) -> (SocketAddr, Arc<AtomicUsize>) {
    let (second, reached) = answering("200 OK", String::new()).await;
    let (first, _) = answering(status, format!("http://{second}/stolen")).await;
    (first, reached)
}

#[tokio::test]
async fn the_s3_client_follows_no_redirect() {
    let factory = ClientFactory::new(None, Arc::new(AwsLimits::default()));
    let http = factory.reqwest();
    for status in ["301 Moved Permanently", "307 Temporary Redirect"] {
        let (first, reached) = redirect_pair(status).await;
        let creds = aws_credential_types::Credentials::new("AKIAEXAMPLE", "s", None, None, "t");
        let endpoint = format!("http://{first}");
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            berth::discovery::s3::bucket_region(
                &http,
                Some(&endpoint),
                Partition::Aws,
                &creds,
                "b",
            ),
        )
        .await
        .expect("answered");
        assert!(r.is_err(), "a bare redirect is no answer: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(reached.load(Ordering::SeqCst), 0, "{status} was followed");
    }
}

#[tokio::test]
async fn the_port_client_follows_no_redirect() {
    use berth::catalog::port::client::{ClientConfig, PortClient};
    use berth::catalog::port::{Credentials, UserAgent};
    let (first, reached) = redirect_pair("307 Temporary Redirect").await;
    let mut config = ClientConfig::new(
        format!("http://{first}"),
        Credentials::new("id", "port-s3cr3t"),
        UserAgent::exporter("aws", "0", "t"),
    );
    config.request_timeout = Duration::from_secs(5);
    let client = PortClient::new(config).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(60), client.get_integration("x"))
        .await
        .expect("answered");
    assert!(r.is_err(), "{r:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the client secret was sent where a redirect pointed"
    );
}
