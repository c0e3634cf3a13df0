//! The plugin registry: replacing, breaking and removing plugin files while
//! Berth runs.

use std::sync::Arc;

use berth::limits::Limits;
use berth::plugin::lookup::Offline;
use berth::plugin::{JqOutput, JqRequest, Tenant};
use berth_tests::{plugin, plugin_dir, registry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_plugin_swaps_atomically_and_a_broken_one_keeps_the_last_good() {
    let dir = plugin_dir(&[plugin("generic")]);
    let reg = registry(dir.path()).await;
    let before = reg.snapshot();
    let old = before
        .for_kind("AWS::EC2::Instance")
        .expect("generic serves EC2");
    assert_eq!(old.info.name, "generic");

    // Replace generic.wasm by another plugin, atomically (write + rename).
    let target = dir.path().join("generic.wasm");
    let tmp = dir.path().join(".incoming");
    std::fs::copy(plugin("ec2-instance"), &tmp).unwrap();
    std::fs::rename(&tmp, &target).unwrap();
    let after = reg.rescan().await.unwrap();
    let new = after.for_kind("AWS::EC2::Instance").unwrap();
    assert_eq!(new.info.name, "ec2-instance");
    assert_ne!(new.hash, old.hash);
    // A reader holding the old snapshot keeps a working plugin.
    assert_eq!(
        before.for_kind("AWS::EC2::Instance").unwrap().info.name,
        "generic"
    );
    let tenant = Tenant::new("t", Limits::default(), Arc::new(Offline));
    let out = old
        .run_jq(
            &tenant,
            &JqRequest {
                filter: "1 + 1".into(),
                inputs: vec![],
                null_input: true,
                vars: vec![],
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(&out[..], [JqOutput::Value(v)] if v == "2"));

    // A broken write keeps the last good version and says so.
    std::fs::write(&target, b"not wasm").unwrap();
    let broken = reg.rescan().await.unwrap();
    assert_eq!(
        broken.for_kind("AWS::EC2::Instance").unwrap().hash,
        new.hash
    );
    assert!(
        broken.errors[0]
            .message
            .contains("keeping the previously loaded version"),
        "{:?}",
        broken.errors
    );

    // Removing the file removes its kinds.
    std::fs::remove_file(&target).unwrap();
    let gone = reg.rescan().await.unwrap();
    assert!(gone.for_kind("AWS::EC2::Instance").is_none());
    assert!(gone.errors.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_plugin_claiming_a_kind_wins_and_the_conflict_is_reported() {
    let dir = plugin_dir(&[plugin("ec2-instance")]);
    std::fs::copy(plugin("ec2-instance"), dir.path().join("zz-copy.wasm")).unwrap();
    let reg = registry(dir.path()).await;
    let snap = reg.snapshot();
    assert_eq!(
        snap.for_kind("AWS::EC2::Instance")
            .unwrap()
            .path
            .file_name()
            .unwrap(),
        "ec2-instance.wasm"
    );
    assert!(
        snap.errors.iter().any(|e| e
            .message
            .contains("kind AWS::EC2::Instance is already served by")),
        "{:?}",
        snap.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_plugins_are_cached_and_a_corrupt_artifact_is_recompiled() {
    use berth::limits::EngineLimits;
    use berth::plugin::{AotCache, PluginEngine, Registry};

    let dir = plugin_dir(&[plugin("generic")]);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = AotCache::at(cache_dir.path().join("aot")).unwrap();
    let engine = PluginEngine::new(EngineLimits::default()).unwrap();
    Registry::open(engine.clone(), cache.clone(), dir.path())
        .await
        .unwrap();
    let artifacts: Vec<_> = std::fs::read_dir(cache_dir.path().join("aot"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let name = artifacts[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let hash = berth::plugin::cache::content_hash(&std::fs::read(plugin("generic")).unwrap());
    assert!(
        name.starts_with(&hash) && name.ends_with(".cwasm"),
        "{name}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cache_dir.path().join("aot"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    // A damaged artifact is not trusted: the plugin is recompiled and works.
    std::fs::write(&artifacts[0], b"damaged").unwrap();
    let reg = Registry::open(engine, cache, dir.path()).await.unwrap();
    assert!(
        reg.snapshot().errors.is_empty(),
        "{:?}",
        reg.snapshot().errors
    );
    assert!(std::fs::metadata(&artifacts[0]).unwrap().len() > 1000);
}

/// A tenant's allow-list picks among the plugins that serve a kind: the default one when
/// allowed, else another that names the kind, else the `*` one; nothing when none is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_lists_choose_among_plugins_serving_a_kind() {
    let dir = plugin_dir(&[
        plugin("generic"),
        plugin("lambda-function"),
        berth_tests::test_plugin("trap-lambda"),
    ]);
    let reg = registry(dir.path()).await;
    let snap = reg.snapshot();
    let lambda = "AWS::Lambda::Function";
    let pick = |allowed: &[&str]| {
        snap.serve(lambda, |n| allowed.contains(&n))
            .ok()
            .map(|p| p.info.name.clone())
    };
    assert_eq!(
        pick(&["lambda-function"]).as_deref(),
        Some("lambda-function")
    );
    assert_eq!(pick(&["trap-lambda"]).as_deref(), Some("trap-lambda"));
    assert_eq!(pick(&["generic"]).as_deref(), Some("generic"));
    assert_eq!(pick(&["ec2-instance"]), None);
}
