//! Every way Berth gets AWS credentials, against the emulator: static keys,
//! the SDK default chain (through the `berth discover` CLI), OIDC web
//! identity from a token file (refreshed before expiry) chained to the org
//! role and member roles, and AssumeRole with an external id. The emulator
//! verifies web identity tokens as STS does, so the token file holds real
//! tokens of an issuer the role trusts (Berth's own issuer, run in process,
//! with the role made by `deploy/aws/berth-management.yaml`).

mod aws_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aws_support::*;
use berth::discovery::config::{AuthConfig, AuthMethod};
use berth::discovery::{AwsConfig, KindPlan};
use berth::plugin::lookup::AwsLookup;
use berth::plugin::lookup::CloudLookup;
use berth::scope::Place;
use berth::serve::identity::{IdentityConfig, Issuer};
use serde_json::json;

/// Berth's issuer in this process, published on 127.0.0.1 (its URL is the issuer), and the
/// management template deployed in [`MGMT`] so that `BerthIntegration` trusts it for `sub`.
async fn trusted_issuer(
    emu: &berth_test_kit::emulator::Emulator,
    seed: &serde_json::Value,
    dir: &std::path::Path,
    sub: &str,
) -> Arc<Issuer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut config: IdentityConfig = serde_json::from_value(
        json!({"issuer": url, "rotationSeconds": 3600, "publishLeadSeconds": 60}),
    )
    .unwrap();
    config.check().unwrap();
    let store = berth::store::Store::open(&format!(
        "sqlite://{}?mode=rwc",
        dir.join("keys.db").display()
    ))
    .await
    .unwrap();
    let seal = Arc::new(berth::serve::secrets::SecretKey::from_bytes(&[5; 32]).unwrap());
    let issuer = Issuer::open(config, store, seal).await.unwrap();
    let (d, j) = (issuer.clone(), issuer.clone());
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let d = d.clone();
                async move { axum::Json(d.discovery()) }
            }),
        )
        .route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let j = j.clone();
                async move { axum::Json(j.jwks().await.unwrap()) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let repo = berth_test_kit::repo_root();
    let root = seed["organization"]["root_id"].as_str().unwrap();
    let out = emu
        .deploy(&[
            "--account",
            MGMT,
            "--template",
            &repo
                .join("deploy/aws/berth-management.yaml")
                .display()
                .to_string(),
            "--member-template",
            &repo
                .join("deploy/aws/berth-member-role.yaml")
                .display()
                .to_string(),
            "--stack-name",
            "berth",
            "--param",
            &format!("IssuerUrl={url}"),
            "--param",
            &format!("TenantSubject={sub}"),
            "--param",
            &format!("ExternalId={EXTERNAL_ID}"),
            "--param",
            &format!("OrganizationalUnitIds={root}"),
        ])
        .await
        .unwrap();
    assert_eq!(
        out["outputs"]["IntegrationRoleArn"],
        format!("arn:aws:iam::{MGMT}:role/BerthIntegration"),
        "{out}"
    );
    issuer
}

fn vpc_kind() -> Vec<KindPlan> {
    vec![KindPlan {
        kind: "AWS::EC2::VPC".into(),
        use_get_resource_api: false,
        region_policies: vec![],
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_keys_read_the_callers_own_account() {
    let emu = emulator().await;
    let cfg = AwsConfig {
        auth: static_auth(),
        endpoint_url: Some(emu.endpoint.clone()),
        ..AwsConfig::default()
    };
    let (_t, sync) = tenant_sync(cfg, limits()).await;
    assert_eq!(sync.accounts().len(), 1);
    assert_eq!(sync.accounts()[0].id, MGMT);
    assert!(sync.accounts()[0].role_arn.is_none());
    let (items, report) = run(sync, vpc_kind()).await;
    assert!(report.is_complete(), "{}", report.render());
    // Each region's default VPC, and nothing else.
    let regions: BTreeSet<_> = items
        .iter()
        .map(|i| (i.account_id.as_str(), i.region.as_str()))
        .collect();
    assert_eq!(
        regions,
        BTreeSet::from([(MGMT, "eu-west-1"), (MGMT, "us-east-1")])
    );
    assert_eq!(items.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_chains_to_org_and_member_roles_and_refreshes() {
    let emu = emulator().await;
    let seed = seed(&emu, 2, 2, false).await;
    // Sessions of 5 s, so the second phase below needs fresh credentials at
    // every link; roles must exist, so the management account (which has no
    // BerthReadOnly role) cannot be read.
    emu.config(&json!({"sts": {"session_seconds": 5}, "trust": {"require_existing_role": true}}))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let issuer = trusted_issuer(&emu, &seed, dir.path(), "tenant:token-file").await;
    let token = dir.path().join("token");
    std::fs::write(&token, issuer.mint("tenant:token-file").await.unwrap()).unwrap();
    let cfg = AwsConfig {
        auth: AuthConfig {
            method: AuthMethod::WebIdentity,
            role_arn: Some(format!("arn:aws:iam::{MGMT}:role/BerthIntegration")),
            token_file: Some(token.clone()),
            ..AuthConfig::default()
        },
        ..org_config(&emu)
    };
    let (_t, sync) = tenant_sync(cfg, limits()).await;
    let (items, report) = run(sync.clone(), kinds()).await;

    let mgmt = report
        .accounts
        .iter()
        .find(|a| a.account_id == MGMT)
        .unwrap();
    let err = mgmt
        .error
        .as_deref()
        .expect("the management account has no member role");
    assert!(err.contains("AccessDenied"), "{err}");
    let members = member_ids(&seed);
    for a in report.accounts.iter().filter(|a| a.account_id != MGMT) {
        assert!(a.error.is_none(), "{a:?}");
    }
    // The management account is one account-wide scope, denied; every member scope completed.
    for s in &report.scopes {
        if s.key.account_id == MGMT {
            assert_eq!((s.key.region.as_str(), s.key.kind.as_str()), ("*", "*"));
            assert_eq!(s.status.label(), "denied", "{}", report.render());
        } else {
            assert_eq!(
                s.status,
                berth::scope::ScopeStatus::Complete,
                "{}",
                report.render()
            );
        }
    }
    assert!(!report.is_complete(), "an account is incomplete");
    assert_eq!(keys(&items), seeded(&seed));

    // After every session has expired, a lookup in a member account works:
    // each link was refreshed (the token file read again).
    std::fs::write(&token, issuer.mint("tenant:token-file").await.unwrap()).unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let lookup = AwsLookup::new(sync);
    let place = Place {
        account_id: members[1].clone(),
        region: "eu-west-1".into(),
    };
    let f = lookup
        .get(&place, "AWS::Lambda::Function", "fn-000")
        .await
        .unwrap()
        .expect("fn-000");
    assert!(f.properties.contains(&members[1]), "{}", f.properties);
    let stats = emu.stats().await.unwrap();
    let web = stats["apis"]["sts:AssumeRoleWithWebIdentity"]["ok"]
        .as_u64()
        .unwrap();
    assert!(web >= 2, "web identity refreshed: {web}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_needs_the_right_external_id() {
    let emu = emulator().await;
    let seed = seed(&emu, 1, 1, false).await;
    let role = seed["accounts"][0]["read_role_arn"]
        .as_str()
        .unwrap()
        .to_string();
    let member = member_ids(&seed)[0].clone();
    let cfg = |ext: Option<&str>| AwsConfig {
        auth: static_auth(),
        account_role_arns: vec![role.clone()],
        external_id: ext.map(str::to_string),
        session_name: "berth-test-session".into(),
        endpoint_url: Some(emu.endpoint.clone()),
        ..AwsConfig::default()
    };
    for wrong in [Some("not-the-external-id"), None] {
        let (_t, sync) = tenant_sync(cfg(wrong), limits()).await;
        let (items, report) = run(sync, kinds()).await;
        let a = &report.accounts[0];
        assert_eq!(a.account_id, member);
        let e = a
            .error
            .as_deref()
            .unwrap_or_else(|| panic!("{wrong:?} must be refused"));
        assert!(e.contains("AccessDenied") && e.contains(&role), "{e}");
        // The refused account is one account-wide scope, denied: nothing of it may go.
        assert!(items.is_empty());
        let scopes: Vec<(String, String, String, &str)> = report
            .scopes
            .iter()
            .map(|s| {
                let k = &s.key;
                (
                    k.account_id.clone(),
                    k.region.clone(),
                    k.kind.clone(),
                    s.status.label(),
                )
            })
            .collect();
        assert_eq!(
            scopes,
            vec![(member.clone(), "*".into(), "*".into(), "denied")]
        );
        assert!(!report.is_complete());
    }
    let (_t, sync) = tenant_sync(cfg(Some(EXTERNAL_ID)), limits()).await;
    let (items, report) = run(sync, kinds()).await;
    assert!(report.is_complete(), "{}", report.render());
    assert_eq!(keys(&items), seeded(&seed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_chain_through_the_discover_command() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("berth.yaml");
    std::fs::write(
        &config,
        format!(
            "aws:\n  auth: {{method: default}}\n  regions: [us-east-1]\n  endpointUrl: {}\n",
            emu.endpoint
        ),
    )
    .unwrap();
    let mapping = dir.path().join("mapping.yaml");
    std::fs::write(
        &mapping,
        "resources:\n- kind: AWS::EC2::VPC\n  selector: {query: 'true'}\n  port: {entity: {mappings: {identifier: .Identifier, blueprint: '\"v\"'}}}\n\
         - kind: AWS::Organizations::Account\n  selector: {query: 'true'}\n  port: {entity: {mappings: {identifier: .Id, blueprint: '\"a\"'}}}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["discover", "--config"])
        .arg(&config)
        .arg("--mapping")
        .arg(&mapping)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "the default VPC of us-east-1: {lines:?}");
    assert_eq!(lines[0]["__Kind"], "AWS::EC2::VPC");
    assert_eq!(lines[0]["__AccountId"], MGMT);
    assert_eq!(lines[0]["__Region"], "us-east-1");
    // Not in an organization: the account kind is complete and empty, not failed.
    assert!(
        stderr.contains("AWS::Organizations::Account") && stderr.contains("2 scopes: 2 complete"),
        "{stderr}"
    );
}
