//! The `berth` command line, run as a user runs it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod cli_support;
use cli_support::{berth, built_plugin, repo, text};

fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn map_works_from_the_repo_root_with_the_default_plugin_directory() {
    built_plugin("generic");
    let out = berth()
        .args([
            "map",
            "--mapping",
            "mappings/default.yaml",
            "--input",
            "tests/fixtures/seed/items.jsonl",
        ])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The Ocean oracle maps 51 entities from this sample.
    assert_eq!(lines.len(), 51, "{stderr}");
    assert!(
        lines
            .iter()
            .all(|e| e["identifier"].is_string() && e["blueprint"].is_string())
    );
    assert!(
        stderr.contains("AWS::S3::Bucket"),
        "summary table on stderr: {stderr}"
    );
    assert!(stderr.contains("misconfigured fields"), "{stderr}");
}

#[test]
fn a_bad_mapping_file_exits_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "resources:\n- kind: A\n  port: {entity: {mappings: {identifier: .x\n",
    )
    .unwrap();
    let out = berth()
        .args([
            "map",
            "--mapping",
            bad.to_str().unwrap(),
            "--input",
            "/dev/null",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("bad.yaml: line 4"), "{err}");
}

#[test]
fn jq_prints_like_jq() {
    let out = run_with_stdin(
        {
            let mut c = berth();
            c.args([
                "jq",
                "-c",
                ".a[] | {x: ., n: $n, j: $j}",
                "--arg",
                "n",
                "v",
                "--argjson",
                "j",
                "[1]",
            ]);
            c
        },
        r#"{"a": [1, "two"]} {"a": []}"#,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"x\":1,\"n\":\"v\",\"j\":[1]}\n{\"x\":\"two\",\"n\":\"v\",\"j\":[1]}\n"
    );

    let out = run_with_stdin(
        {
            let mut c = berth();
            c.args(["jq", "-r", ".Tags | from_entries | .team"]);
            c
        },
        r#"{"Tags":[{"Key":"team","Value":"platform"}]}"#,
    );
    assert_eq!(text(&out.stdout), "platform\n");

    let out = berth()
        .args(["jq", "-n", "[1,2] | {a: .}"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "{\n  \"a\": [\n    1,\n    2\n  ]\n}\n");
}

#[test]
fn jq_errors_exit_non_zero_on_stderr() {
    let out = berth().args(["jq", "-n", ".a | foo("]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("jq: error"),
        "{}",
        text(&out.stderr)
    );

    let out = run_with_stdin(
        {
            let mut c = berth();
            c.args(["jq", "-c", ".[] | 1 / ."]);
            c
        },
        "[1, \"x\"]",
    );
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(text(&out.stdout), "1\n");
    assert!(text(&out.stderr).contains("jq: error"));
}

#[test]
fn plugin_list_shows_plugins_kinds_and_capabilities() {
    built_plugin("ec2-instance");
    let out = berth().args(["plugin", "list"]).output().unwrap();
    let s = text(&out.stdout);
    assert!(out.status.success(), "{s}{}", text(&out.stderr));
    assert!(s.contains("generic 0.1.0 (berth:plugin@0.2.0)"), "{s}");
    assert!(s.contains("kinds: AWS::EC2::Instance"), "{s}");
    assert!(s.contains("cloud-lookup(AWS::EC2::SecurityGroup)"), "{s}");
}

#[test]
fn plugin_test_runs_the_shipped_cases() {
    for dir in [
        "plugins/generic/tests/cases",
        "plugins/ec2-instance/tests/cases",
        "plugins/s3-bucket/tests/cases",
        "plugins/ecs-cluster/tests/cases",
        "plugins/ecs-service/tests/cases",
        "plugins/lambda-function/tests/cases",
        "plugins/rds-instance/tests/cases",
        "plugins/org-account/tests/cases",
    ] {
        let out = berth().args(["plugin", "test", dir]).output().unwrap();
        let s = text(&out.stdout);
        assert!(out.status.success(), "{dir}:\n{s}{}", text(&out.stderr));
        assert!(s.contains(" passed, 0 failed"), "{s}");
    }
}

#[test]
fn plugin_test_shows_a_diff_and_bless_rewrites() {
    let case = tempfile::tempdir().unwrap();
    let src = repo().join("plugins/generic/tests/cases/items-to-parse");
    for f in ["mapping.yaml", "input.jsonl"] {
        std::fs::copy(src.join(f), case.path().join(f)).unwrap();
    }
    std::fs::write(
        case.path().join("expected.jsonl"),
        r#"{"identifier":"prod/FARGATE","blueprint":"capacityProvider","title":"WRONG"}"#,
    )
    .unwrap();
    let out = berth()
        .args(["plugin", "test"])
        .arg(case.path())
        .output()
        .unwrap();
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{s}");
    assert!(
        s.contains("FAILED") && s.contains("-{") && s.contains("+{"),
        "{s}"
    );
    assert!(s.contains("\"WRONG\""), "{s}");

    let out = berth()
        .args(["plugin", "test", "--bless"])
        .arg(case.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = berth()
        .args(["plugin", "test"])
        .arg(case.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    let blessed = std::fs::read_to_string(case.path().join("expected.jsonl")).unwrap();
    assert_eq!(blessed.lines().count(), 2);
}

/// A plugin copied into the plugin directory of a running `berth map
/// --watch` serves its kind without a restart.
#[test]
fn a_plugin_dropped_into_a_running_berth_is_served() {
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(
        built_plugin("ec2-instance"),
        plugins.path().join("ec2-instance.wasm"),
    )
    .unwrap();
    let mut child = berth()
        .args([
            "map",
            "--watch",
            "--mapping",
            "mappings/default.yaml",
            "--input",
            "-",
            "--plugins",
        ])
        .arg(plugins.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let ec2 = r#"{"Identifier":"i-1","Properties":{"Tags":[]},"__Kind":"AWS::EC2::Instance","__Region":"eu-west-1","__AccountId":"111111111111"}"#;
    let s3 = r#"{"Identifier":"bucket-1","Properties":{"Arn":"arn:aws:s3:::bucket-1"},"__Kind":"AWS::S3::Bucket","__Region":"eu-west-1","__AccountId":"111111111111"}"#;

    writeln!(stdin, "{ec2}").unwrap();
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("berth maps while running");
    assert!(first.contains("\"i-1\""), "{first}");

    // Nothing serves S3 yet: the item fails and nothing is printed.
    writeln!(stdin, "{s3}").unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());

    std::fs::copy(built_plugin("generic"), plugins.path().join("generic.wasm")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut served = None;
    while Instant::now() < deadline && served.is_none() {
        writeln!(stdin, "{s3}").unwrap();
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            served = Some(line);
        }
    }
    drop(stdin);
    let status = child.wait().unwrap();
    let line = served.expect("the new plugin served its kind without a restart");
    let e: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(e["identifier"], "bucket-1");
    assert_eq!(e["properties"]["kind"], "AWS::S3::Bucket");
    // The S3 items sent before the plugin arrived were reported as errors.
    assert_eq!(status.code(), Some(1));
}
