//! The HTML report at the size of a real AWS Organization: built from synthetic resync reports
//! (no AWS, no Port), checked for what an operator must find in it, and written to
//! `target/tmp/report-demo.html` and `target/tmp/report-100x10x10.html` to look at.
//!
//! Owns only these checks; the report's numbers come from the stages' own reports and are not
//! recomputed here.

use std::collections::BTreeMap;
use std::time::Duration;

use berth::catalog::metrics::KindCounters;
use berth::catalog::push::{Outcome, PlanCounts};
use berth::catalog::{Plan, PushReport};
use berth::discovery::call::CallCounts;
use berth::discovery::{AccountReport, DiscoveryReport, ScopeReport};
use berth::mapping::MappingFile;
use berth::pipeline::map::Summary;
use berth::pipeline::report::{ReportHeader, failed_html, html};
use berth::pipeline::resync::ResyncReport;
use berth::scope::{ScopeKey, ScopeStatus};

const KINDS: [&str; 10] = [
    "AWS::Organizations::Account",
    "AWS::S3::Bucket",
    "AWS::EC2::Instance",
    "AWS::ECS::Cluster",
    "AWS::ECS::Service",
    "AWS::Lambda::Function",
    "AWS::RDS::DBInstance",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
];

const REGIONS: [&str; 10] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-central-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
];

/// Parsed from YAML, as users write it: the report reads only each entry's index and kind.
fn mapping(kinds: &[&str]) -> MappingFile {
    let mut yaml = String::from("resources:\n");
    for k in kinds {
        yaml.push_str(&format!(
            "- kind: {k}\n  selector: {{query: 'true'}}\n  port:\n    entity:\n      mappings:\n        \
             identifier: .Identifier\n        blueprint: '\"x\"'\n"
        ));
    }
    MappingFile::parse(&yaml, "test mapping").unwrap()
}

fn account(id: &str, error: Option<&str>) -> AccountReport {
    AccountReport {
        account_id: id.into(),
        name: Some(format!("team-{}", &id[id.len() - 3..])),
        role_arn: None,
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        error: error.map(str::to_string),
        notes: vec![],
    }
}

fn scope(account: &str, region: &str, kind: &str, status: ScopeStatus, items: u64) -> ScopeReport {
    ScopeReport {
        key: ScopeKey {
            account_id: account.into(),
            region: region.into(),
            kind: kind.into(),
        },
        status,
        items,
        vanished: 0,
        outside_regions: 0,
        calls: CallCounts {
            calls: 1 + items / 20,
            retries: 0,
            throttles: 0,
        },
        elapsed: Duration::from_millis(50 + items * 3),
    }
}

fn counters(index: usize, kind: &str, deleted: u64) -> KindCounters {
    KindCounters {
        kind: kind.into(),
        index,
        blueprint: Some(format!("aws{}", kind.rsplit("::").next().unwrap())),
        raw_extracted: 40,
        transformed: 40,
        loaded: 12,
        skipped: 28,
        deleted,
        ..KindCounters::default()
    }
}

fn push(kinds: Vec<KindCounters>, incomplete: Vec<(ScopeKey, ScopeStatus)>) -> PushReport {
    let deleted = kinds.iter().map(|k| k.deleted).sum();
    let mut plan = Plan::default();
    plan.blueprints.insert(
        "awsFunction".into(),
        PlanCounts {
            create: 2,
            update: 10,
            unchanged: 28,
            delete: 3,
        },
    );
    PushReport {
        sync_id: "sync-0001".into(),
        dry_run: false,
        plan,
        loaded: 12,
        load_failed: 0,
        deleted,
        delete_failed: 0,
        refused: None,
        kept: BTreeMap::new(),
        blocked_blueprints: BTreeMap::new(),
        errors: BTreeMap::new(),
        duplicates: 0,
        kinds,
        incomplete_scopes: incomplete,
        outcome: Outcome::Partial,
        seconds: 1.0,
    }
}

fn header(dry_run: bool) -> ReportHeader {
    ReportHeader {
        config: "/etc/berth/berth.yaml".into(),
        started: "2025-01-02T03:04:05.678Z".parse().unwrap(),
        duration: Duration::from_secs(754),
        dry_run,
    }
}

/// The part of `html` between `start` and the next `</table>`.
fn section<'a>(html: &'a str, start: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in the report"));
    let rest = &html[from..];
    &rest[..rest.find("</table>").unwrap()]
}

fn incomplete_row(
    account: &str,
    region: &str,
    kind: &str,
    class: &str,
    label: &str,
    cause: &str,
) -> String {
    format!(
        "<tr><td>{account}</td><td>{region}</td><td>{kind}</td><td class=\"{class}\">{label}</td>\
         <td>{cause}</td></tr>"
    )
}

fn write_out(name: &str, text: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn organization_of_100_accounts_10_regions_10_kinds() {
    let accounts: Vec<String> = (0..100)
        .map(|i| format!("{:012}", 100_000_000_000u64 + i))
        .collect();
    // One account could not be read at all: it has no scopes.
    let unreadable = accounts[50].clone();
    let mut discovery = DiscoveryReport::default();
    let mut denied = Vec::new();
    let mut failed = Vec::new();
    for (a, acct) in accounts.iter().enumerate() {
        if *acct == unreadable {
            discovery.accounts.push(account(
                acct,
                Some("AccessDenied: sts:AssumeRole on BerthReadOnly"),
            ));
            continue;
        }
        discovery.accounts.push(account(acct, None));
        for (r, region) in REGIONS.iter().enumerate() {
            for (k, kind) in KINDS.iter().enumerate() {
                let n = a * 100 + r * 10 + k;
                let status = if n % 53 == 7 {
                    let why = format!("AccessDenied: not authorized to list {kind} in {region}");
                    denied.push((
                        acct.clone(),
                        region.to_string(),
                        kind.to_string(),
                        why.clone(),
                    ));
                    ScopeStatus::Denied(why)
                } else if n % 211 == 3 {
                    let why = "Throttling: rate exceeded after 8 retries".to_string();
                    failed.push((
                        acct.clone(),
                        region.to_string(),
                        kind.to_string(),
                        why.clone(),
                    ));
                    ScopeStatus::Failed(why)
                } else {
                    ScopeStatus::Complete
                };
                discovery
                    .scopes
                    .push(scope(acct, region, kind, status, (n % 17) as u64));
            }
        }
    }
    assert_eq!(discovery.scopes.len(), 99 * 10 * 10);
    // A scope read in full whose entities failed to load: the push alone knows.
    let partial = (accounts[5].clone(), "eu-west-1", "AWS::Lambda::Function");
    assert!(
        discovery
            .scope(&partial.0, partial.1, partial.2)
            .is_some_and(|s| s.status == ScopeStatus::Complete)
    );
    let kinds = KINDS
        .iter()
        .enumerate()
        .map(|(i, k)| counters(i, k, if i == 5 { 3 } else { 0 }))
        .collect();
    let report = ResyncReport {
        discovery,
        map: Summary::default(),
        lookups: BTreeMap::new(),
        push: push(
            kinds,
            vec![(
                ScopeKey::new(&partial.0, partial.1, partial.2),
                ScopeStatus::Failed(berth::scope::ENTITIES_FAILED.into()),
            )],
        ),
        elapsed: Duration::from_secs(754),
    };
    let out = html(
        &report,
        &header(false),
        &mapping(&KINDS),
        "Berth sync of org",
    );
    write_out("report-100x10x10.html", &out);

    assert!(out.len() < 2_000_000, "the report is {} bytes", out.len());
    assert!(!out.contains("<script"), "the report must not run scripts");
    assert!(!out.contains("http://") && !out.contains("https://"));

    let matrix = section(&out, "<table class=\"mx\">");
    // One row per account (plus the totals row), one column per kind: not one row per scope.
    assert_eq!(matrix.matches("<tr><td title=").count(), 100);
    assert_eq!(matrix.matches("<tr class=\"tot\">").count(), 1);
    assert_eq!(matrix.matches("<th title=").count(), 10);
    assert_eq!(matrix.matches("<td class=").count(), 100 * 10);

    // The unreadable account's whole row is failed, with its cause on hover.
    let row_start = matrix.find(&format!("{unreadable} <span")).unwrap();
    let row = &matrix[row_start..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert_eq!(row.matches("<td class=\"f\"").count(), 10, "{row}");
    assert_eq!(
        row.matches("\">–<small>failed</small></td>").count(),
        10,
        "{row}"
    );
    assert!(row.contains("account not read: AccessDenied: sts:AssumeRole on BerthReadOnly"));

    // The partial scope's cell (no region of it denied or failed) is partial.
    assert!(out.contains(&format!(
        "<td class=\"p\" title=\"{} × AWS::Lambda::Function\n10 regions: 9 complete, 1 partial\n",
        partial.0
    )));
    let list = section(&out, "<h2 id=\"incomplete\">");
    assert!(list.contains(&incomplete_row(
        &partial.0,
        partial.1,
        partial.2,
        "p",
        "partial",
        "some of its entities failed to map or load"
    )));
    assert!(list.contains(&incomplete_row(
        &unreadable,
        "*",
        "*",
        "f",
        "failed",
        "account not read: AccessDenied: sts:AssumeRole on BerthReadOnly"
    )));
    assert!(!denied.is_empty() && !failed.is_empty());
    for (a, r, k, why) in &denied {
        assert!(
            list.contains(&incomplete_row(a, r, k, "d", "denied", why)),
            "{a}/{r}/{k} not listed"
        );
    }
    for (a, r, k, why) in &failed {
        assert!(
            list.contains(&incomplete_row(a, r, k, "f", "failed", why)),
            "{a}/{r}/{k} not listed"
        );
    }
    // Only incomplete scopes are listed: complete ones are folded into the matrix.
    assert_eq!(
        list.matches("<tr><td>").count(),
        denied.len() + failed.len() + 2
    );
    assert!(!out.contains(&format!(
        "<tr><td>{}</td><td>us-east-1</td><td>AWS::S3::Bucket</td>",
        accounts[0]
    )));

    // A cell with one denied region says so and carries the cause on hover.
    let (a, r, k, why) = &denied[0];
    assert!(out.contains(&format!("{a} × {k}\n10 regions: 9 complete, 1 denied")));
    assert!(out.contains(&format!("denied {r}: {why}")));

    assert!(out.contains("<td>resources[5] AWS::Lambda::Function</td>"));
    assert!(out.contains("<li>resources[5] AWS::Lambda::Function: 3 deleted</li>"));
    assert!(!out.contains("AWS::Lambda::Function-5"));
}

#[test]
fn demo_sized_report_calls_out_deletions_and_kept_entities() {
    let kinds = [
        "AWS::Organizations::Account",
        "AWS::S3::Bucket",
        "AWS::EC2::Instance",
        "AWS::ECS::Cluster",
        "AWS::ECS::Service",
        "AWS::Lambda::Function",
        "AWS::RDS::DBInstance",
    ];
    let accounts = ["000000000001", "000000000002", "000000000003"];
    let regions = ["us-east-1", "eu-west-1"];
    let mut discovery = DiscoveryReport::default();
    for a in accounts {
        discovery.accounts.push(account(a, None));
        for r in regions {
            for (k, kind) in kinds.iter().enumerate() {
                // The Organization's accounts are read once, in the management account.
                if k == 0 && (a != accounts[0] || r != regions[0]) {
                    continue;
                }
                let status =
                    if a == accounts[2] && *kind == "AWS::RDS::DBInstance" && r == regions[1] {
                        ScopeStatus::Denied(
                            "AccessDeniedException: rds:DescribeDBInstances <denied> & logged"
                                .into(),
                        )
                    } else {
                        ScopeStatus::Complete
                    };
                discovery
                    .scopes
                    .push(scope(a, r, kind, status, 2 + k as u64));
            }
        }
    }
    let counters = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| counters(i, k, if i == 5 { 3 } else { 0 }))
        .collect();
    let mut p = push(counters, vec![]);
    p.duplicates = 2;
    p.kept
        .insert("their scope did not complete (denied)".into(), 4);
    p.blocked_blueprints.insert(
        "awsRdsInstance".into(),
        "resources[6] AWS::RDS::DBInstance produced no entity from 6 items".into(),
    );
    p.refused = Some(
        "would delete 12 of 20 entities of blueprint awsBucket (60%), over the threshold of 50%"
            .into(),
    );
    let report = ResyncReport {
        discovery,
        map: Summary::default(),
        lookups: BTreeMap::new(),
        push: p,
        elapsed: Duration::from_millis(3400),
    };
    let out = html(
        &report,
        &header(false),
        &mapping(&kinds),
        "Berth sync of demo",
    );
    write_out("report-demo.html", &out);

    let head = section(&out, "<table class=\"hdr\">");
    assert!(head.contains("<tr><th>outcome</th><td><b class=\"o-partial\">partial</b></td></tr>"));
    assert!(head.contains("<tr><th>started</th><td>2025-01-02T03:04:05Z</td></tr>"));
    assert!(head.contains("<tr><th>duration</th><td>12m 34s</td></tr>"));
    assert!(head.contains("<tr><th>dry run</th><td>no</td></tr>"));
    assert!(head.contains("<tr><th>config</th><td><code>/etc/berth/berth.yaml</code></td></tr>"));
    assert!(head.contains(&format!(
        "<tr><th>Berth</th><td>{}</td></tr>",
        env!("CARGO_PKG_VERSION")
    )));

    let matrix = section(&out, "<table class=\"mx\">");
    assert_eq!(matrix.matches("<tr><td title=").count(), 3);
    assert_eq!(matrix.matches("<th title=").count(), 7);
    // The Organization's accounts were read only in the management account.
    assert_eq!(matrix.matches("<td class=\"n\"").count(), 2);
    assert_eq!(matrix.matches("<td class=\"d\"").count(), 1);
    assert!(matrix.contains("<small>1/2 regions</small>"));

    let list = section(&out, "<h2 id=\"incomplete\">");
    assert_eq!(list.matches("<tr><td>").count(), 1);
    assert!(list.contains(&incomplete_row(
        "000000000003",
        "eu-west-1",
        "AWS::RDS::DBInstance",
        "d",
        "denied",
        "AccessDeniedException: rds:DescribeDBInstances &lt;denied&gt; &amp; logged"
    )));

    assert!(out.contains(
        "<div class=\"note del\"><p><b>3 entities were deleted from Port</b>.</p><ul>\
         <li>resources[5] AWS::Lambda::Function: 3 deleted</li></ul>"
    ));
    assert!(out.contains(
        "<p><b>Reconciliation refused to delete:</b> would delete 12 of 20 entities of \
         blueprint awsBucket (60%), over the threshold of 50%</p>"
    ));
    assert!(out.contains(
        "<li>nothing of blueprint <code>awsRdsInstance</code> was deleted: resources[6] \
         AWS::RDS::DBInstance produced no entity from 6 items</li>"
    ));
    assert!(out.contains("<li>4 stale entities kept: their scope did not complete (denied)</li>"));
    assert!(out.contains(
        "<b>Shared identifiers:</b> 2 entities were produced more than once (an identifier \
         shared by several accounts, regions or items); one write each was kept."
    ));
    for (i, k) in kinds.iter().enumerate() {
        assert!(out.contains(&format!("<td>resources[{i}] {k}</td>")));
        assert!(!out.contains(&format!("{k}-{i}")));
    }
}

#[test]
fn deletions_are_stated_when_there_are_none() {
    let mut report = ResyncReport {
        discovery: DiscoveryReport::default(),
        map: Summary::default(),
        lookups: BTreeMap::new(),
        push: push(vec![counters(0, "AWS::S3::Bucket", 0)], vec![]),
        elapsed: Duration::from_secs(2),
    };
    let bucket = mapping(&["AWS::S3::Bucket"]);
    let out = html(&report, &header(false), &bucket, "t");
    assert!(out.contains("<div class=\"note okay\"><p><b>Nothing was deleted.</b></p>"));

    report.push.dry_run = true;
    let out = html(&report, &header(true), &bucket, "t");
    assert!(out.contains(
        "<tr><th>dry run</th><td>yes: nothing was written to Port or the state store</td></tr>"
    ));
    assert!(out.contains(
        "<div class=\"note warn\"><p><b>Dry run: nothing was deleted.</b> A real sync would \
         delete 3.</p>"
    ));
}

#[test]
fn a_failed_sync_still_gets_a_report() {
    let out = failed_html(
        &header(false),
        "Port: POST /v1/auth/access_token: 401 <Unauthorized>",
        "Berth sync of demo",
        false,
    );
    write_out("report-failed.html", &out);
    assert!(out.contains("<tr><th>outcome</th><td><b class=\"o-failed\">failed</b></td></tr>"));
    assert!(out.contains("<tr><th>config</th><td><code>/etc/berth/berth.yaml</code></td></tr>"));
    assert!(out.contains(
        "<h2>Cause</h2><pre>Port: POST /v1/auth/access_token: 401 &lt;Unauthorized&gt;</pre>"
    ));
    assert!(out.contains("<b>Nothing was deleted.</b>"));
    assert!(out.ends_with("</body></html>"));
    // Failing once reconciliation began, it must not claim nothing was deleted.
    let late = failed_html(&header(false), "Port: 503", "Berth sync of demo", true);
    assert!(!late.contains("Nothing was deleted"), "{late}");
    assert!(late.contains("<b>It failed during reconciliation.</b>"));
}

#[test]
fn header_for_a_finished_resync_starts_its_duration_ago() {
    let report = ResyncReport {
        discovery: DiscoveryReport::default(),
        map: Summary::default(),
        lookups: BTreeMap::new(),
        push: push(vec![], vec![]),
        elapsed: Duration::from_secs(3600),
    };
    let before = jiff::Timestamp::now();
    let h = ReportHeader::for_report("berth.yaml", &report);
    let after = jiff::Timestamp::now();
    let hour = jiff::SignedDuration::from_secs(3600);
    assert!(h.started >= before - hour && h.started <= after - hour);
    assert_eq!(h.duration, Duration::from_secs(3600));
    assert!(!h.dry_run);
}
