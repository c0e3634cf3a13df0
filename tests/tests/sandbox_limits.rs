//! Sandbox limits: every way a mapping or a plugin can misbehave ends in a
//! clear error within the tenant's limits, and the rest of the run maps.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use berth::limits::Limits;
use berth::pipeline::map::{MapOptions, Summary};
use berth::plugin::Tenant;
use berth::plugin::lookup::Offline;
use berth_tests::{fixture, map_file, plugin, plugin_dir, registry, test_plugin};

fn tight_limits() -> Limits {
    Limits {
        call_timeout: Duration::from_secs(2),
        max_memory_bytes: 96 << 20,
        ..Limits::default()
    }
}

async fn run_sandbox_fixture() -> (Summary, Vec<serde_json::Value>) {
    let dir = plugin_dir(&[plugin("generic"), test_plugin("misbehave")]);
    let reg = registry(dir.path()).await;
    assert!(
        reg.snapshot().errors.is_empty(),
        "{:?}",
        reg.snapshot().errors
    );
    let tenant = Tenant::new("sandbox", tight_limits(), Arc::new(Offline));
    let opts = MapOptions {
        jobs: 2,
        ..MapOptions::default()
    };
    let (mapping, items) = (
        fixture("sandbox/mapping.yaml"),
        fixture("sandbox/items.jsonl"),
    );
    let run = map_file(reg, &mapping, tenant, &items, opts);
    // Liveness guard only: every limit above is a few seconds.
    let (summary, lines) = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the run ended");
    let entities = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (summary, entities)
}

fn errors_of<'a>(summary: &'a Summary, prefix: &str) -> Vec<&'a String> {
    summary
        .errors
        .keys()
        .filter(|m| m.starts_with(prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_misbehaviour_is_contained_and_s3_still_maps() {
    let (summary, entities) = run_sandbox_fixture().await;
    let by_blueprint: BTreeMap<String, usize> =
        entities.iter().fold(BTreeMap::new(), |mut m, e| {
            *m.entry(e["blueprint"].as_str().unwrap().to_string())
                .or_default() += 1;
            m
        });
    let report = summary
        .errors
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");

    // The healthy kind maps completely.
    assert_eq!(by_blueprint.get("cloudResource"), Some(&25), "{report}");
    assert_eq!(summary.kinds["AWS::S3::Bucket"].errors, 0);

    let one = |prefix: &str, needle: &str| {
        let errs = errors_of(&summary, prefix);
        assert!(
            errs.iter().any(|e| e.contains(needle)),
            "expected an error for {prefix} containing {needle:?}; errors:\n{report}"
        );
    };
    // Endless and exploding JQ.
    one(
        "resources[1] Test::EndlessRecursion",
        "time limit of 2s exceeded",
    );
    let huge = errors_of(&summary, "resources[2] Test::EndlessArray");
    assert!(
        huge.iter()
            .any(|e| e.contains("memory limit exceeded") || e.contains("time limit")),
        "{report}"
    );
    one("resources[3] Test::HugeRange", "memory limit exceeded");
    // Plugins that trap, loop and hoard memory.
    one("resources[4] Test::Trap", "trapped");
    one("resources[5] Test::Loop", "time limit of 2s exceeded");
    one(
        "resources[6] Test::MemoryBomb",
        "memory limit exceeded (wanted",
    );
    // Bad mappings.
    one(
        "resources[7] Test::NotBoolean",
        "must yield a boolean, got \"Test::NotBoolean-1\"",
    );
    one(
        "resources[8] Test::BadSelector",
        "selector.query: invalid JQ `.a | foo(` at character",
    );

    // The trapping plugin's good neighbours in the same batch still map.
    let trap = &summary.kinds["Test::Trap"];
    assert_eq!(
        (trap.items, trap.entities, trap.errors),
        (3, 2, 1),
        "{report}"
    );

    // A field that does not compile is null, named with its path and
    // position, and the entity is kept (Ocean's behaviour).
    assert_eq!(summary.kinds["Test::BadField"].entities, 1);
    let (key, m) = summary
        .misconfigured
        .iter()
        .find(|((i, _, _), _)| *i == 9)
        .expect("misconfiguration for resources[9]");
    assert_eq!(key.1, "properties.broken");
    assert_eq!(key.2, ".a | nosuchfunction");
    assert!(
        m.message.contains("invalid JQ") && m.message.contains("at character 5"),
        "{}",
        m.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_of_another_api_version_or_a_corrupt_file_is_refused_and_others_load() {
    let dir = plugin_dir(&[plugin("generic"), test_plugin("future-api")]);
    std::fs::write(dir.path().join("corrupt.wasm"), b"\0asm\x0d\0\x01\0garbage").unwrap();
    std::fs::write(dir.path().join("empty.wasm"), b"").unwrap();
    let reg = registry(dir.path()).await;
    let snap = reg.snapshot();
    let msg = |file: &str| {
        snap.errors
            .iter()
            .find(|e| e.path.file_name().unwrap() == file)
            .map(|e| e.message.clone())
            .unwrap_or_else(|| panic!("no error for {file}: {:?}", snap.errors))
    };
    let future = msg("future-api.wasm");
    assert!(
        future.contains("berth:plugin@9.0.0") && future.contains("berth:plugin@0.1.0"),
        "{future}"
    );
    assert!(msg("corrupt.wasm").contains("not a valid WebAssembly component"));
    assert!(msg("empty.wasm").contains("not a valid WebAssembly component"));
    assert_eq!(snap.plugins.len(), 1);
    assert_eq!(
        snap.for_kind("AWS::S3::Bucket").unwrap().info.name,
        "generic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapped_instance_is_replaced() {
    let dir = plugin_dir(&[test_plugin("misbehave")]);
    let reg = registry(dir.path()).await;
    let p = reg.snapshot().for_kind("Test::Trap").unwrap();
    let tenant = Tenant::new("t", tight_limits(), Arc::new(Offline));
    let req = |item: &str| {
        berth::plugin::BatchRequest {
        kind: "Test::Trap".into(),
        entries: vec![berth::plugin::Entry {
            index: 0,
            mapping: r#"{"kind":"Test::Trap","port":{"entity":{"mappings":{"identifier":".id","blueprint":"\"t\""}}}}"#.into(),
        }],
        items: vec![item.to_string()],
    }
    };
    let bad = p
        .map_batch(
            &tenant,
            None,
            &req(r#"{"id":"x","trap":true,"__Kind":"Test::Trap"}"#),
        )
        .await;
    // The trap says why: the SDK's panic hook sent the message and where it was raised.
    match &bad {
        Err(berth::plugin::PluginError::Trap { message, .. }) => {
            assert!(
                message.contains("this plugin traps on purpose"),
                "{message}"
            );
            assert!(message.contains("src/lib.rs:"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let good = p
        .map_batch(&tenant, None, &req(r#"{"id":"y","__Kind":"Test::Trap"}"#))
        .await
        .expect("call");
    let entity = &good[0].as_ref().expect("entry")[0]
        .as_ref()
        .unwrap()
        .entities[0];
    assert_eq!(
        (entity.blueprint.as_str(), entity.body.as_str()),
        ("t", r#"{"identifier":"y"}"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_input_is_refused_before_the_call() {
    let dir = plugin_dir(&[plugin("generic")]);
    let reg = registry(dir.path()).await;
    let p = reg.snapshot().for_kind("Any::Kind").unwrap();
    let limits = Limits {
        max_input_bytes: 1000,
        ..Limits::default()
    };
    let tenant = Tenant::new("t", limits, Arc::new(Offline));
    let req = berth::plugin::BatchRequest {
        kind: "Any::Kind".into(),
        entries: vec![berth::plugin::Entry {
            index: 0,
            mapping: "{}".into(),
        }],
        items: vec!["x".repeat(2000)],
    };
    let e = p
        .map_batch(&tenant, None, &req)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("input of 2002 bytes exceeds the limit of 1000"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_cannot_read_what_it_did_not_declare() {
    let dir = plugin_dir(&[test_plugin("misbehave")]);
    let reg = registry(dir.path()).await;
    let p = reg.snapshot().for_kind("Test::Snoop").unwrap();
    // Even with data to serve, the undeclared type is refused by the host.
    let lookup = berth::plugin::lookup::Fixture::parse(
        r#"{"TypeName":"AWS::IAM::Role","Identifier":"admin","AccountId":"1","Region":"r","Properties":{"secret":"x"}}"#,
    )
    .unwrap();
    let tenant = Tenant::new("t", Limits::default(), Arc::new(lookup));
    let req = berth::plugin::BatchRequest {
        kind: "Test::Snoop".into(),
        entries: vec![berth::plugin::Entry {
            index: 0,
            mapping: r#"{"kind":"Test::Snoop","port":{"entity":{"mappings":{"identifier":".id","blueprint":"\"t\"","properties":{"role":".__Role"}}}}}"#.into(),
        }],
        items: vec![r#"{"id":"a","__Kind":"Test::Snoop"}"#.into()],
    };
    let place = Some(berth::scope::Place {
        account_id: "1".into(),
        region: "r".into(),
    });
    let out = p.map_batch(&tenant, place, &req).await.unwrap();
    match &out[0].as_ref().expect("entry")[0] {
        Err(berth::plugin::ItemError::Enrichment(m)) => assert!(
            m.contains("not permitted") && m.contains("AWS::IAM::Role"),
            "{m}"
        ),
        other => panic!("expected a refused lookup, got {other:?}"),
    }
}

/// Lookups answered slowly (as AWS under a rate limit would): their waiting does not count
/// against the guest's time budget, so enrichment completes although the call takes longer
/// than the budget; the wall-clock cap still bounds a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_on_lookups_does_not_spend_the_guest_budget() {
    use std::future::Future;
    use std::pin::Pin;

    use berth::discovery::CloudResource;
    use berth::plugin::lookup::{CloudLookup, Fixture, LookupError};
    use berth::scope::Place;

    type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
    struct Slow(Arc<Fixture>, Duration);
    impl CloudLookup for Slow {
        fn get<'a>(
            &'a self,
            place: &'a Place,
            type_name: &'a str,
            identifier: &'a str,
        ) -> BoxFuture<'a, Result<Option<CloudResource>, LookupError>> {
            Box::pin(async move {
                tokio::time::sleep(self.1).await;
                self.0.get(place, type_name, identifier).await
            })
        }
        fn list<'a>(
            &'a self,
            place: &'a Place,
            type_name: &'a str,
            resource_model: Option<&'a str>,
        ) -> BoxFuture<'a, Result<Vec<CloudResource>, LookupError>> {
            Box::pin(async move {
                tokio::time::sleep(self.1).await;
                self.0.list(place, type_name, resource_model).await
            })
        }
    }

    let dir = plugin_dir(&[plugin("ec2-instance")]);
    let reg = registry(dir.path()).await;
    let fixture_lookups = Arc::new(Fixture::from_file(&fixture("seed/lookups.jsonl")).unwrap());
    // A mapping that reads the enrichment, so that the plugin makes its lookups (it makes
    // none for a mapping that reads no field they fill).
    let mut mapping = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(
        &mut mapping,
        br#"resources:
  - kind: AWS::EC2::Instance
    selector: {query: 'true'}
    port:
      entity:
        mappings:
          identifier: .Identifier
          blueprint: '"ec2Instance"'
          properties:
            groups: .__SecurityGroups
            subnet: .__Subnet
            vpc: .__Vpc
"#,
    )
    .unwrap();
    let (mapping, items) = (mapping.path().to_path_buf(), fixture("seed/items.jsonl"));
    let map = |wall: Duration| {
        let tenant = Tenant::new(
            "slow",
            Limits {
                call_timeout: Duration::from_millis(500),
                call_wall_timeout: wall,
                ..Limits::default()
            },
            Arc::new(Slow(fixture_lookups.clone(), Duration::from_millis(150))),
        );
        map_file(
            reg.clone(),
            &mapping,
            tenant,
            &items,
            MapOptions {
                jobs: 1,
                ..MapOptions::default()
            },
        )
    };
    // Every EC2 item makes three lookups of 150 ms: far more than the 500 ms budget.
    let (summary, _) = map(Duration::from_secs(120)).await;
    let ec2 = &summary.kinds["AWS::EC2::Instance"];
    assert!(ec2.items >= 4, "{summary:?}");
    assert_eq!(ec2.errors, 0, "{:?}", summary.errors);
    // A wall-clock cap below what the lookups take stops the call.
    let (summary, _) = map(Duration::from_secs(1)).await;
    assert!(
        summary.kinds["AWS::EC2::Instance"].errors > 0,
        "{:?}",
        summary.errors
    );
}

/// Many tenants on a small instance pool: idle instances kept for reuse are capped across the
/// process, so tenants that each leave some behind never exhaust the pool for the next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_instances_of_many_tenants_never_fill_the_pool() {
    use berth::limits::EngineLimits;
    use berth::plugin::{AotCache, JqRequest, PluginEngine, Registry};
    let engine = PluginEngine::new(EngineLimits {
        pooled_instances: 6,
        max_idle_instances_total: 3,
        ..EngineLimits::default()
    })
    .unwrap();
    let dir = plugin_dir(&[plugin("generic")]);
    let reg = Registry::open(
        engine.clone(),
        AotCache::at(berth_tests::repo().join("target/test-aot-cache")).unwrap(),
        dir.path(),
    )
    .await
    .unwrap();
    let generic = reg.snapshot().any().unwrap();
    let req = JqRequest {
        filter: "1 + 1".into(),
        inputs: vec![],
        null_input: true,
        vars: vec![],
    };
    // 20 tenants, each keeping up to 16 idle instances of its own: without the process-wide
    // cap the sixth tenant would find the pool full of others' idle instances.
    for i in 0..20 {
        let tenant = Tenant::new(&format!("t{i}"), Limits::default(), Arc::new(Offline));
        let out = generic.run_jq(&tenant, &req).await.unwrap();
        assert!(out.is_ok(), "tenant t{i}: {out:?}");
        assert!(engine.idle_instances() <= 3, "{}", engine.idle_instances());
    }
    assert_eq!(engine.idle_instances(), 3);
}

/// A mapping that never ends spends its time budget twice in a run, not once per batch: the
/// entry's later batches fail at once, and another entry of the run still maps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_entry_stops_spending_time_after_two_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mapping.yaml");
    std::fs::write(
        &mapping,
        "resources:\n\
         - kind: Test::Spin\n  selector: {query: 'true'}\n  port:\n    entity:\n      mappings:\n        \
         identifier: .Identifier\n        blueprint: '\"t\"'\n        properties: {x: 'def f: f; f'}\n\
         - kind: AWS::S3::Bucket\n  selector: {query: 'true'}\n  port:\n    entity:\n      mappings:\n        \
         identifier: .Identifier\n        blueprint: '\"b\"'\n",
    )
    .unwrap();
    let items = dir.path().join("items.jsonl");
    let mut lines = String::new();
    for i in 0..8 {
        lines += &format!(
            "{{\"Identifier\": \"spin-{i}\", \"Properties\": {{}}, \"__Kind\": \"Test::Spin\", \"__Region\": \"us-east-1\", \"__AccountId\": \"111111111111\"}}\n"
        );
    }
    lines += "{\"Identifier\": \"bucket-0\", \"Properties\": {}, \"__Kind\": \"AWS::S3::Bucket\", \"__Region\": \"us-east-1\", \"__AccountId\": \"111111111111\"}\n";
    std::fs::write(&items, lines).unwrap();
    let plugins = plugin_dir(&[plugin("generic")]);
    let reg = registry(plugins.path()).await;
    let limits = Limits {
        call_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let tenant = Tenant::new("spin", limits, Arc::new(Offline));
    let opts = MapOptions {
        jobs: 1,
        batch_items: 1,
        ..MapOptions::default()
    };
    let (summary, lines) = map_file(reg, &mapping, tenant, &items, opts).await;
    let count = |prefix: &str| -> u64 {
        summary
            .errors
            .iter()
            .filter(|(m, _)| m.contains(prefix))
            .map(|(_, n)| *n)
            .sum()
    };
    assert_eq!(count("time limit"), 2, "{:?}", summary.errors);
    assert_eq!(count("ran out of time 2 times"), 6, "{:?}", summary.errors);
    assert_eq!(lines.len(), 1, "the bucket still maps: {lines:?}");
}
