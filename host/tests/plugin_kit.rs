//! The plugin author's kit: `berth plugin new` writes a crate that builds for wasm32-wasip2
//! and passes its own golden case exactly as generated, following its README; it refuses bad
//! names, shipped names and existing directories; `berth discover` reads the config's
//! `mapping:` and `--lookups` writes the full models the plugins may look up (against the
//! local AWS emulator).

mod aws_support;
mod cli_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use aws_support::*;
use cli_support::{repo, text};
use serde_json::Value;

fn berth() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.env_remove("BERTH_PLUGIN_DIR").env_remove("RUST_LOG");
    c
}

/// `berth plugin new` from the repository root, so the default plugin directory holds the
/// shipped plugins (whose names are taken).
fn new_plugin(name: &str, kind: &str, dir: &Path) -> Output {
    berth()
        .current_dir(repo())
        .args(["plugin", "new", name, "--kind", kind, "--dir"])
        .arg(dir)
        .output()
        .unwrap()
}

/// Everything under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn a_new_plugin_builds_and_passes_its_golden_case_as_generated() {
    let tmp = tempfile::tempdir().unwrap();
    let out = new_plugin("demo-thing", "AWS::Demo::Thing", tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let krate = tmp.path().join("demo-thing");
    assert!(
        text(&out.stdout).starts_with(&format!("created {}\n", krate.display())),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        tree(&krate),
        [
            ".gitignore",
            "Cargo.lock",
            "Cargo.toml",
            "README.md",
            "blueprint.json",
            "mapping.yaml",
            "src",
            "src/lib.rs",
            "tests",
            "tests/cases",
            "tests/cases/basic",
            "tests/cases/basic/expected.jsonl",
            "tests/cases/basic/input.jsonl",
            "tests/cases/basic/mapping.yaml",
        ]
    );
    let item: Value = serde_json::from_str(
        std::fs::read_to_string(krate.join("tests/cases/basic/input.jsonl"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    assert_eq!(item["__Kind"], "AWS::Demo::Thing");
    for key in ["Identifier", "Properties", "__Region", "__AccountId"] {
        assert!(!item[key].is_null(), "{key} in {item}");
    }
    let readme = std::fs::read_to_string(krate.join("README.md")).unwrap();
    for cmd in [
        "cargo build --release --target wasm32-wasip2",
        "cp target/wasm32-wasip2/release/berth_plugin_demo_thing.wasm plugins/demo-thing.wasm",
        "berth --plugins plugins plugin test tests/cases",
    ] {
        assert!(readme.contains(cmd), "README lacks `{cmd}`:\n{readme}");
    }

    // The README's build, in Berth's own target directory (as scripts/build-plugins builds,
    // same profile), so the SDK's dependencies are already compiled; the copied lockfile
    // pins their versions, so nothing is fetched.
    let target = repo().join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--offline",
        ])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The README's install: the new plugin alone in a plugin directory.
    let plugins = krate.join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(
        target.join("wasm32-wasip2/release/berth_plugin_demo_thing.wasm"),
        plugins.join("demo-thing.wasm"),
    )
    .unwrap();
    let aot = tmp.path().join("aot");

    let out = berth()
        .args(["--plugins", "plugins", "plugin", "list"])
        .current_dir(&krate)
        .env("BERTH_CACHE_DIR", &aot)
        .output()
        .unwrap();
    let list = text(&out.stdout);
    assert!(out.status.success(), "{list}{}", text(&out.stderr));
    assert!(
        list.contains("demo-thing 0.1.0 (berth:plugin@0.2.0) demo-thing.wasm\n  kinds: AWS::Demo::Thing\n  capabilities: log\n  ships: a default mapping, 1 blueprint(s)\n"),
        "{list}"
    );

    // The README's test.
    let out = berth()
        .args(["--plugins", "plugins", "plugin", "test", "tests/cases"])
        .current_dir(&krate)
        .env("BERTH_CACHE_DIR", &aot)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "case basic ... ok\n1 passed, 0 failed\n");
}

#[test]
fn plugin_new_refuses_bad_names_shipped_names_bad_kinds_and_existing_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let refused = |name: &str, kind: &str| -> String {
        let out = new_plugin(name, kind, tmp.path());
        assert_eq!(out.status.code(), Some(2), "{name} {kind}");
        assert_eq!(text(&out.stdout), "");
        text(&out.stderr)
    };
    assert_eq!(
        refused("Demo_Thing", "AWS::Demo::Thing"),
        "error: invalid plugin name \"Demo_Thing\": use lowercase ASCII letters, digits and single hyphens, starting with a letter (e.g. ec2-subnet)\n"
    );
    assert_eq!(
        refused("lambda-function", "AWS::Lambda::Function"),
        "error: plugin name \"lambda-function\" is taken by a plugin in target/plugins; pick another name (a plugin is known by its name)\n"
    );
    assert_eq!(
        refused("demo-thing", "AWS::Demo"),
        "error: invalid kind \"AWS::Demo\": give a Cloud Control type name such as AWS::EC2::Subnet\n"
    );
    let no_sdk = tmp.path().join("no-sdk");
    let out = berth()
        .args(["plugin", "new", "demo-thing", "--kind", "AWS::Demo::Thing"])
        .arg("--dir")
        .arg(tmp.path())
        .arg("--sdk")
        .arg(&no_sdk)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: --sdk {}: not a directory with a Cargo.toml\n",
            no_sdk.display()
        )
    );
    assert!(tree(tmp.path()).is_empty(), "{:?}", tree(tmp.path()));

    let taken = tmp.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();
    assert_eq!(
        refused("taken", "AWS::Demo::Thing"),
        format!(
            "error: {} already exists; refusing to overwrite it\n",
            taken.display()
        )
    );
    assert_eq!(tree(&taken), ["notes.txt"]);
    assert_eq!(
        std::fs::read_to_string(taken.join("notes.txt")).unwrap(),
        "mine"
    );

    // A shipped plugin's kind is allowed, with a note on which file serves it.
    let out = new_plugin("lambda-tags", "AWS::Lambda::Function", tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(
            "note: the plugin lambda-function in target/plugins also serves \
             AWS::Lambda::Function; in one plugin directory the file whose name sorts first \
             serves it and the other is refused for that kind\n"
        ),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn discover_refuses_a_config_without_a_usable_mapping() {
    let tmp = tempfile::tempdir().unwrap();
    let aws = "aws:\n  auth: {method: default}\n  regions: [us-east-1]\n  endpointUrl: http://127.0.0.1:9\n";
    for (tail, want) in [
        ("", "has no `mapping:`; set one or pass --mapping FILE"),
        (
            "mapping: {fromPort: true}\n",
            ": `mapping: {fromPort: true}` is read from Port, which `berth discover` does not contact; pass --mapping FILE",
        ),
    ] {
        let config = tmp.path().join("berth.yaml");
        std::fs::write(&config, format!("{aws}{tail}")).unwrap();
        let out = berth()
            .args(["discover", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text(&out.stderr),
            format!(
                "error: {}{}{want}\n",
                config.display(),
                if tail.is_empty() { " " } else { "" }
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_reads_the_config_mapping_and_writes_full_models_for_lookups() {
    let emu = emulator().await;
    let seed = seed(&emu, 1, 2, false).await;
    let member = member_ids(&seed).remove(0);
    let role = seed["accounts"][0]["read_role_arn"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("aws-key"), "testing").unwrap();
    // Functions listed, not read: the items keep the list answer's shape.
    std::fs::write(
        dir.path().join("mapping.yaml"),
        "resources:\n- kind: AWS::Lambda::Function\n  selector: {query: 'true'}\n  port:\n    \
         entity:\n      mappings:\n        identifier: .Identifier\n        blueprint: '\"lambdaFunction\"'\n        \
         properties: {runtime: .Properties.Runtime, arn: .Properties.Arn}\n",
    )
    .unwrap();
    let config = dir.path().join("berth.yaml");
    std::fs::write(
        &config,
        format!(
            "aws:\n  auth: {{method: static, accessKeyId: {{file: aws-key}}, secretAccessKey: {{file: aws-key}}}}\n  \
             accountRoleArns: [{role}]\n  externalId: {EXTERNAL_ID}\n  endpointUrl: {}\n\
             mapping: mapping.yaml\n",
            emu.endpoint
        ),
    )
    .unwrap();
    let lookups = dir.path().join("lookups.jsonl");
    let plugins = repo().join("target/plugins");
    let out = berth()
        .arg("--plugins")
        .arg(&plugins)
        .args(["discover", "--config"])
        .arg(&config)
        .arg("--lookups")
        .arg(&lookups)
        .env("BERTH_CACHE_DIR", dir.path().join("aot"))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("lookups for lambda-function: AWS::Lambda::Function\n"),
        "{stderr}"
    );

    let items: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut listed = BTreeSet::new();
    for i in &items {
        assert_eq!(i["__Kind"], "AWS::Lambda::Function");
        assert_eq!(
            i["Properties"],
            serde_json::json!({"FunctionName": i["Identifier"]}),
            "the list shape"
        );
        listed.insert((
            i["__AccountId"].as_str().unwrap().to_string(),
            i["__Region"].as_str().unwrap().to_string(),
            i["Identifier"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(listed.len(), 2 * REGIONS.len(), "{listed:?}");

    let lines: Vec<Value> = std::fs::read_to_string(&lookups)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut looked_up = BTreeSet::new();
    for l in &lines {
        let keys: Vec<&String> = l.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "TypeName",
                "Identifier",
                "AccountId",
                "Region",
                "Properties"
            ]
        );
        assert_eq!(l["TypeName"], "AWS::Lambda::Function");
        let (acct, region, id) = (
            l["AccountId"].as_str().unwrap(),
            l["Region"].as_str().unwrap(),
            l["Identifier"].as_str().unwrap(),
        );
        assert_eq!(acct, member);
        let p = &l["Properties"];
        assert_eq!(p["FunctionName"], id);
        assert_eq!(
            p["Arn"],
            format!("arn:aws:lambda:{region}:{acct}:function:{id}")
        );
        for key in ["Runtime", "Handler", "Role", "MemorySize", "Timeout"] {
            assert!(!p[key].is_null(), "{key} missing in the full model {p}");
        }
        looked_up.insert((acct.to_string(), region.to_string(), id.to_string()));
    }
    assert_eq!(looked_up, listed);

    // The file serves the plugin's lookups: the list-only items map with the full model.
    let input = dir.path().join("items.jsonl");
    std::fs::write(&input, &out.stdout).unwrap();
    let out = berth()
        .arg("--plugins")
        .arg(&plugins)
        .args(["map", "--mapping"])
        .arg(dir.path().join("mapping.yaml"))
        .arg("--input")
        .arg(&input)
        .arg("--lookups")
        .arg(&lookups)
        .env("BERTH_CACHE_DIR", dir.path().join("aot"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let entities: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entities.len(), listed.len());
    for e in &entities {
        assert!(e["properties"]["runtime"].is_string(), "{e}");
        assert!(
            e["properties"]["arn"]
                .as_str()
                .unwrap()
                .starts_with("arn:aws:lambda:"),
            "{e}"
        );
    }
}
