//! What a user reads when a config, a mapping or a plugin file is wrong: one line per problem
//! (naming the file, and the key and line where they apply), said once, never a Debug dump.
//!
//! Runs the `berth` binary against files made in temp directories and the plugins in
//! `target/plugins` (and `target/test-plugins` for a plugin of another API version).

use std::path::{Path, PathBuf};
use std::process::Output;

mod cli_support;
use cli_support::{berth, built, text};

fn plugin_dir(extra: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        built("target/plugins/generic.wasm"),
        dir.path().join("generic.wasm"),
    )
    .unwrap();
    for (name, bytes) in extra {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

fn future_api() -> Vec<u8> {
    std::fs::read(built("target/test-plugins/future-api.wasm")).unwrap()
}

fn plugin_list(dir: &Path) -> Output {
    berth()
        .arg("--plugins")
        .arg(dir)
        .args(["plugin", "list"])
        .output()
        .unwrap()
}

fn map(plugins: Option<&Path>, mapping: &Path) -> Output {
    let mut c = berth();
    if let Some(p) = plugins {
        c.arg("--plugins").arg(p);
    }
    c.arg("map")
        .arg("--mapping")
        .arg(mapping)
        .args(["--input", "tests/fixtures/seed/items.jsonl"])
        .output()
        .unwrap()
}

/// `berth map` of the file `input`, with the plugins in `target/plugins`.
fn map_input(mapping: &Path, input: &Path) -> Output {
    berth()
        .arg("map")
        .arg("--mapping")
        .arg(mapping)
        .arg("--input")
        .arg(input)
        .output()
        .unwrap()
}

/// Writes `yaml` as a mapping file in a temp dir.
fn mapping(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.yaml");
    std::fs::write(&p, yaml).unwrap();
    (dir, p)
}

/// Lines of `s` that start with `prefix`.
fn lines_with<'a>(s: &'a str, prefix: &str) -> Vec<&'a str> {
    s.lines().filter(|l| l.starts_with(prefix)).collect()
}

#[test]
fn a_missing_config_file_is_one_line_with_the_os_reason_once() {
    let out = berth()
        .args(["sync", "--config", "nope.yaml"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "error: nope.yaml: cannot read: No such file or directory (os error 2)\n"
    );
}

#[test]
fn a_corrupt_wasm_file_is_one_line_without_a_byte_dump() {
    let dir = plugin_dir(&[
        ("x.wasm", b"this is not wasm at all".to_vec()),
        ("y.wasm", b"\0asm\x0d\0\x01\0garbage".to_vec()),
    ]);
    let out = plugin_list(dir.path());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let x = dir.path().join("x.wasm");
    let y = dir.path().join("y.wasm");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            format!(
                "warning: plugin file {}: not a valid WebAssembly component (no WebAssembly \
                 magic number at the start)",
                x.display()
            ),
            format!(
                "warning: plugin file {}: not a valid WebAssembly component (failed to parse \
                 WebAssembly module: unexpected end-of-file (at offset 0xa))",
                y.display()
            ),
        ],
        "{stderr}"
    );
    assert!(
        !stdout.contains("x.wasm") && !stdout.contains("y.wasm"),
        "{stdout}"
    );
    assert!(stdout.contains("generic 0.1.0"), "{stdout}");
}

#[test]
fn a_core_module_and_an_empty_file_say_so() {
    let dir = plugin_dir(&[
        ("core.wasm", b"\0asm\x01\0\0\0".to_vec()),
        ("empty.wasm", Vec::new()),
    ]);
    let out = plugin_list(dir.path());
    let stderr = text(&out.stderr);
    let warnings = lines_with(&stderr, "warning: ");
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(
        warnings[0].ends_with(
            "core.wasm: not a valid WebAssembly component (a core module, not a component: \
             build for wasm32-wasip2)"
        ),
        "{stderr}"
    );
    assert!(
        warnings[1].ends_with("empty.wasm: not a valid WebAssembly component (the file is empty)"),
        "{stderr}"
    );
}

#[test]
fn a_plugin_of_another_wit_version_is_reported_once() {
    let dir = plugin_dir(&[("future-api.wasm", future_api())]);
    let out = plugin_list(dir.path());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        stderr,
        format!(
            "warning: plugin file {}: built for berth:plugin@9.0.0; this host runs \
             berth:plugin@0.1.0, 0.2.0\n",
            dir.path().join("future-api.wasm").display()
        )
    );
    assert_eq!(
        format!("{stdout}{stderr}").matches("future-api").count(),
        1,
        "{stdout}{stderr}"
    );
}

#[test]
fn a_plugin_that_fails_to_load_is_an_error_for_the_kinds_not_a_generic_fallback() {
    let dir = plugin_dir(&[("lambda.wasm", future_api())]);
    let (_m, m) = mapping(
        "resources:\n- kind: AWS::Lambda::Function\n  selector:\n    query: 'true'\n  port:\n    \
         entity:\n      mappings:\n        identifier: .Identifier\n        blueprint: '\"fn\"'\n",
    );
    let out = map(Some(dir.path()), &m);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stdout, "",
        "generic must not map what lambda.wasm would have"
    );
    let refusal = format!(
        "warning: plugin file {}: built for berth:plugin@9.0.0; this host runs berth:plugin@0.1.0, 0.2.0",
        dir.path().join("lambda.wasm").display()
    );
    assert_eq!(
        lines_with(&stderr, "warning: "),
        [refusal.as_str()],
        "{stderr}"
    );
    let error = "  (10x) no plugin for AWS::Lambda::Function: lambda.wasm failed to load (built \
                 for berth:plugin@9.0.0; this host runs berth:plugin@0.1.0, 0.2.0); not using generic";
    assert_eq!(lines_with(&stderr, "  (10x)"), [error], "{stderr}");
    assert!(
        stderr.contains(
            "\nAWS::Lambda::Function                  10         0         0        0      10\n"
        ),
        "{stderr}"
    );
}

#[test]
fn a_mis_indented_key_names_the_line_it_is_on() {
    let (_d, m) = mapping(
        "resources:\n- kind: AWS::S3::Bucket\n  selector:\n    query: 'true'\n  port:\n    \
         entity:\n      mappings:\n        identifier: .Identifier\n        title: .Identifier\n      \
         blueprint: '\"cloudResource\"'\n",
    );
    let out = map(None, &m);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {}: line 10: `blueprint` is a key of resources[0].port.entity, so \
             resources[0].port.entity.mappings has no `blueprint` (check the indentation)\n",
            m.display()
        )
    );
}

#[test]
fn a_mis_indented_block_names_the_line_it_is_on() {
    let (_d, m) = mapping(
        "resources:\n- kind: AWS::S3::Bucket\n  port:\n    entity:\n    mappings:\n      \
         identifier: .Identifier\n      blueprint: '\"cloudResource\"'\n",
    );
    let out = map(None, &m);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {}: line 5: `mappings` is a key of resources[0].port, so \
             resources[0].port.entity has no `mappings` (check the indentation)\n",
            m.display()
        )
    );
}

#[test]
fn a_yaml_syntax_error_names_its_line_once() {
    let (_d, m) = mapping(
        "resources:\n- kind: AWS::S3::Bucket\n  port:\n    entity:\n      mappings:\n        \
         identifier: .Identifier\n          blueprint: x\n",
    );
    let out = map(None, &m);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: {}: line 7, column 20: ", m.display())),
        "{stderr}"
    );
    assert_eq!(stderr.matches("line 7").count(), 1, "{stderr}");
}

#[test]
fn unknown_keys_in_a_resource_entry_are_warned_once_each_with_their_line() {
    let (_d, m) = mapping(
        "resources:\n- kind: AWS::S3::Bucket\n  selectr:\n    query: 'false'\n  port:\n    \
         entity:\n      mappings:\n        identifier: .Identifier\n        blueprint: \
         '\"cloudResource\"'\n        titel: .Identifier\n- kind: AWS::EC2::Instance\n  \
         selector: {query: 'true', querry: x}\n  port:\n    itemsToParse: .x\n    entity:\n      \
         mappings: {identifier: .Identifier, blueprint: '\"x\"'}\n      title: .x\n",
    );
    let out = map(None, &m);
    let stderr = text(&out.stderr);
    let name = m.display();
    assert_eq!(
        lines_with(&stderr, "warning: "),
        [
            format!(
                "warning: {name}: line 3: resources[0] (AWS::S3::Bucket): unknown key `selectr` \
                 (did you mean `selector`?)"
            ),
            format!(
                "warning: {name}: line 10: resources[0] (AWS::S3::Bucket): unknown key \
                 `port.entity.mappings.titel` (did you mean `port.entity.mappings.title`?)"
            ),
            format!(
                "warning: {name}: line 12: resources[1] (AWS::EC2::Instance): unknown key \
                 `selector.querry` (did you mean `selector.query`?)"
            ),
            format!(
                "warning: {name}: line 17: resources[1] (AWS::EC2::Instance): unknown key \
                 `port.entity.title` (`title` belongs in `port.entity.mappings`; check the \
                 indentation)"
            ),
        ],
        "{stderr}"
    );
    // Still accepted: `selectr` is ignored as before, so the entry maps every bucket.
    assert_eq!(text(&out.stdout).lines().count(), 12, "{stderr}");
}

#[test]
fn kinds_no_plugin_names_that_are_not_type_names_or_near_misses_are_warned() {
    let (_d, m) = mapping(
        "resources:\n- kind: AWS::S3:Bucket\n  port:\n    entity:\n      mappings: {identifier: \
         .Identifier, blueprint: '\"x\"'}\n- kind: AWS::Lamda::Function\n  port:\n    entity:\n      \
         mappings: {identifier: .Identifier, blueprint: '\"x\"'}\n- kind: AWS::SQS::Queue\n  \
         port:\n    entity:\n      mappings: {identifier: .Identifier, blueprint: '\"x\"'}\n",
    );
    let out = map(None, &m);
    let stderr = text(&out.stderr);
    let name = m.display();
    assert_eq!(
        lines_with(&stderr, "warning: "),
        [
            format!(
                "warning: {name}: resources[0] (AWS::S3:Bucket): `AWS::S3:Bucket` is not a Cloud \
                 Control type name (like AWS::S3::Bucket) and no plugin names it (did you mean \
                 `AWS::S3::Bucket`, served by s3-bucket?)"
            ),
            format!(
                "warning: {name}: resources[1] (AWS::Lamda::Function): no plugin names this kind \
                 (did you mean `AWS::Lambda::Function`, served by lambda-function?)"
            ),
        ],
        "{stderr}"
    );
}

#[test]
fn entries_that_matched_no_item_are_noted_in_the_summary() {
    let (_d, m) = mapping(
        "resources:\n- kind: AWS::Nope::Thing\n  port:\n    entity:\n      mappings: {identifier: \
         .Identifier, blueprint: '\"x\"'}\n- kind: AWS::SQS::Queue\n  selector: {query: \
         'false'}\n  port:\n    entity:\n      mappings: {identifier: .Identifier, blueprint: \
         '\"x\"'}\n- kind: AWS::S3::Bucket\n  port:\n    entity:\n      mappings: {identifier: \
         .Identifier, blueprint: '\"x\"'}\n",
    );
    let out = map(None, &m);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let notes = stderr
        .split_once("\nnotes (entries that matched no item):\n")
        .map(|(_, n)| n)
        .unwrap_or_else(|| panic!("no notes: {stderr}"));
    assert_eq!(
        notes,
        "  resources[0] AWS::Nope::Thing: no item of kind AWS::Nope::Thing in the input\n  \
         resources[1] AWS::SQS::Queue: the selector matched none of its 1 items\n"
    );
}

#[test]
fn an_item_error_names_the_first_item_that_failed_so() {
    // A selector that is not a boolean fails every item it runs on.
    let (dir, m) = mapping(
        "resources:
  - kind: AWS::Lambda::Function
    selector:
      query: .Properties
    port:
      entity:
        mappings:
          identifier: .Identifier
          blueprint: '\"fn\"'
",
    );
    let input = dir.path().join("items.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"Identifier":"fn-a","Properties":{},"__Kind":"AWS::Lambda::Function","__AccountId":"111111111111","__Region":"eu-west-1"}"#,
            "\n",
            r#"{"Identifier":"fn-b","Properties":{},"__Kind":"AWS::Lambda::Function","__AccountId":"111111111111","__Region":"eu-west-1"}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = map_input(&m, &input);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let errors = lines_with(&err, "  (2x) resources[0] AWS::Lambda::Function: ");
    assert_eq!(errors.len(), 1, "{err}");
    assert_eq!(
        lines_with(&err, "        first item: "),
        vec!["        first item: fn-a (111111111111/eu-west-1)"],
        "{err}"
    );
}

#[test]
fn a_line_that_is_not_utf8_is_that_lines_error_and_the_lines_after_it_are_mapped() {
    let (dir, m) = mapping(
        "resources:\n- kind: AWS::Lambda::Function\n  port:\n    entity:\n      mappings: \
         {identifier: .Identifier, blueprint: '\"fn\"'}\n",
    );
    let item = |id: &str| {
        format!(
            r#"{{"Identifier":"{id}","Properties":{{}},"__Kind":"AWS::Lambda::Function","__AccountId":"111111111111","__Region":"eu-west-1"}}"#
        )
    };
    let mut bytes = item("fn-a").into_bytes();
    bytes.extend_from_slice(b"\n{\"Identifier\":\"\xff\xfe\"}\n");
    bytes.extend_from_slice(item("fn-c").as_bytes());
    bytes.push(b'\n');
    let input = dir.path().join("items.jsonl");
    std::fs::write(&input, bytes).unwrap();
    let out = map_input(&m, &input);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err.matches("input line 2: not UTF-8 text").count(),
        1,
        "{err}"
    );
    let ids: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["identifier"].to_string())
        .collect();
    assert_eq!(ids, ["\"fn-a\"", "\"fn-c\""], "{err}");
}
