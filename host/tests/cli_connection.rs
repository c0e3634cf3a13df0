//! What a user sees when Port or AWS cannot be reached, running `berth` as a user does: one
//! line naming the endpoint and the cause once, never SDK `Debug` structures; a refused local
//! Port is given up on after a few logged attempts; `berth run` answers `/healthz` 503 with
//! the reason while it keeps waiting for Port. Every endpoint is a closed port on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod cli_support;
use cli_support::{berth, repo, text};

/// A local address nothing listens on (bound, then released).
fn closed_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A config for Port at `port_url` and AWS at `aws_url` (static keys, the default mapping,
/// the shipped blueprints, so setting up reaches Port first).
fn config(dir: &Path, port_url: &str, aws_url: &str) -> PathBuf {
    std::fs::write(dir.join("port-secret"), "fake-client-secret").unwrap();
    std::fs::write(dir.join("aws-key"), "testing").unwrap();
    let path = dir.join("berth.yaml");
    let yaml = format!(
        r#"port:
  clientId: fake-client-id
  clientSecret: {{file: port-secret}}
  baseUrl: {port_url}
  integration: {{identifier: berth-connection}}
aws:
  auth: {{method: static, accessKeyId: {{file: aws-key}}, secretAccessKey: {{file: aws-key}}}}
  orgRoleArn: arn:aws:iam::123456789012:role/BerthOrgReader
  accountRoleName: BerthReadOnly
  externalId: berth-test-external-id
  endpointUrl: {aws_url}
mapping: {mapping}
blueprints: {blueprints}
plugins: {plugins}
state: state/berth.db
report: report.html
"#,
        mapping = repo().join("mappings/default.yaml").display(),
        blueprints = repo().join("mappings/blueprints").display(),
        plugins = repo().join("target/plugins").display(),
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The `message` of every JSON log line on stderr.
fn log_messages(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["fields"]["message"].as_str().map(str::to_string))
        .collect()
}

fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("error:")).collect()
}

#[test]
fn a_port_refusing_connections_fails_after_three_logged_attempts_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let cfg = config(
        dir.path(),
        &format!("http://{port}"),
        &format!("http://{}", closed_port()),
    );
    let out: Output = berth()
        .args(["--log-format", "json", "sync", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let url = format!("http://{port}/v1/auth/access_token");
    assert_eq!(
        error_lines(&stderr),
        [format!(
            "error: ensuring blueprints: Port at {url} unreachable after 3 attempts: connection refused"
        )],
        "{stderr}"
    );
    // Each retry is logged with its attempt number and the wait before the next one.
    let retries: Vec<String> = log_messages(&stderr)
        .into_iter()
        .filter(|m| m.starts_with("Port: "))
        .collect();
    assert_eq!(retries.len(), 2, "{stderr}");
    for (n, m) in retries.iter().enumerate() {
        let head = format!(
            "Port: POST {url}: connection refused (attempt {} of 3); next attempt in ",
            n + 1
        );
        assert!(m.starts_with(&head), "{m:?} does not start with {head:?}");
        assert!(m.ends_with('s'), "{m}");
    }
    assert!(!stderr.contains("error sending request"), "{stderr}");
}

/// Runs `berth ARGS` against a fake Port that answers and an AWS endpoint that is down.
async fn with_aws_down(args: &[&str]) -> (Output, std::net::SocketAddr) {
    let (_addr, fake) = berth_fake_port::spawn(berth_fake_port::Config::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let aws = closed_port();
    let cfg = config(dir.path(), fake.base_url(), &format!("http://{aws}"));
    let mut cmd = berth();
    cmd.args(args).arg("--config").arg(&cfg);
    if args.contains(&"discover") {
        cmd.args(["--mapping", "mappings/default.yaml"]);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    drop(dir);
    (out, aws)
}

fn assert_aws_down_said_once(out: &Output, aws: std::net::SocketAddr, context: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for debug in [
        "DispatchFailure",
        "ConnectorError",
        "{ source:",
        "hyper_util",
    ] {
        assert!(!stderr.contains(debug), "{debug} in:\n{stderr}");
    }
    assert_eq!(
        error_lines(&stderr),
        [format!(
            "error: {context}cannot assume the organization role: sts:AssumeRole: cannot assume \
             arn:aws:iam::123456789012:role/BerthOrgReader: AWS STS at http://{aws}: connection \
             refused (5 attempts)"
        )],
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("connection refused").count(),
        1,
        "the failure is printed once:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_endpoint_down_is_one_line_naming_it_in_discover() {
    let (out, aws) = with_aws_down(&["discover"]).await;
    assert_aws_down_said_once(&out, aws, "cannot start discovery: ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_endpoint_down_is_one_line_naming_it_in_sync() {
    let (out, aws) = with_aws_down(&["sync"]).await;
    assert_aws_down_said_once(&out, aws, "AWS: ");
}

/// `berth run --listen` serves `/healthz` before it reaches Port: 503 with the reason while
/// Port refuses connections, and it keeps trying (each wait logged) instead of exiting, until
/// SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_run_answers_healthz_503_while_port_is_unreachable_and_keeps_trying() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let cfg = config(
        dir.path(),
        &format!("http://{port}"),
        &format!("http://{}", closed_port()),
    );
    let listen = closed_port();
    let log = dir.path().join("run.log");
    let mut child = berth()
        .args(["--log-format", "json", "run", "--config"])
        .arg(&cfg)
        .args(["--listen", &listen.to_string()])
        .stdout(Stdio::null())
        // A file, not a pipe: a pipe nobody reads until the end could fill and stall the child.
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let healthz = format!("http://{listen}/healthz");
    let expected = format!(
        "not ready: Port at http://{port}/v1/auth/access_token unreachable after 3 attempts: \
         connection refused\n"
    );
    let mut last = None;
    for _ in 0..600 {
        if let Ok(r) = reqwest::get(&healthz).await {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            let done = body == expected;
            last = Some((status, body));
            if done {
                break;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "berth run exited:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, Some((503, expected.clone())));
    // It keeps trying: a second and a third setup attempt are logged with their waits, and
    // it still answers 503.
    let mut waits = Vec::new();
    for _ in 0..600 {
        waits = log_messages(&std::fs::read_to_string(&log).unwrap_or_default())
            .into_iter()
            .filter(|m| m.contains("setup attempt"))
            .collect();
        if waits.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(waits.len() >= 3, "{waits:?}");
    for (n, m) in waits.iter().take(3).enumerate() {
        let head = format!(
            "{}; setup attempt {} failed, next in ",
            expected.trim_end(),
            n + 1
        );
        assert!(m.starts_with(&head), "{m:?} does not start with {head:?}");
    }
    assert!(child.try_wait().unwrap().is_none(), "berth run exited");
    let r = reqwest::get(&healthz).await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let metrics = reqwest::get(format!("http://{listen}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l == "berth_resync_running 0"),
        "{metrics}"
    );

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "stopped while waiting is a clean stop"
    );
}
