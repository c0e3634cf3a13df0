//! `berth plugin test`: golden cases for plugin authors.
//!
//! A case is a directory with `mapping.yaml`, `input.jsonl`, and
//! `expected.jsonl` (the entities, one a line) and/or `error.txt` (lines
//! that must each appear in the run's errors), plus an optional
//! `lookups.jsonl` served to the plugin's cloud lookups. Entities are
//! compared as a sorted set of JSON values, so batching order does not
//! matter. Owns only running and comparing cases.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::limits::Limits;
use crate::mapping::MappingFile;
use crate::pipeline::map::{self, MapOptions};
use crate::plugin::lookup::{CloudLookup, Fixture, Offline};
use crate::plugin::{Registry, Tenant};

/// The outcome of one case.
#[derive(Debug)]
pub struct CaseOutcome {
    pub name: String,
    pub passed: bool,
    /// What differed, for a failed case.
    pub report: String,
}

/// `v` as compact JSON with every object's keys sorted, so that two
/// entities compare equal whatever their key order.
pub fn canonical_json(v: serde_json::Value) -> String {
    sort_keys(v).to_string()
}

fn canonical_lines(text: &str) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(l).with_context(|| format!("line {}: invalid JSON", i + 1))?;
        lines.push(canonical_json(v));
    }
    lines.sort();
    Ok(lines)
}

fn sort_keys(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut kv: Vec<_> = m.into_iter().collect();
            kv.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(kv.into_iter().map(|(k, v)| (k, sort_keys(v))).collect())
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(sort_keys).collect())
        }
        other => other,
    }
}

/// Run one case directory.
pub async fn run_case(
    registry: Arc<Registry>,
    dir: &Path,
    bless: bool,
) -> anyhow::Result<CaseOutcome> {
    let name = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let expected_path = dir.join("expected.jsonl");
    let error_path = dir.join("error.txt");
    let mut errors = Vec::new();
    let mut actual = Vec::new();
    match MappingFile::from_path(&dir.join("mapping.yaml")) {
        Err(e) => errors.push(e.to_string()),
        Ok(mapping) => {
            let lookup: Arc<dyn CloudLookup> = match dir.join("lookups.jsonl") {
                p if p.exists() => Arc::new(Fixture::from_file(&p).map_err(anyhow::Error::msg)?),
                _ => Arc::new(Offline),
            };
            let tenant = Tenant::new(&format!("test:{name}"), Limits::default(), lookup);
            let input = std::fs::File::open(dir.join("input.jsonl"))
                .with_context(|| format!("{name}: input.jsonl"))?;
            let opts = MapOptions {
                jobs: 1,
                ..MapOptions::default()
            };
            let input = std::io::BufReader::new(input);
            let (summary, lines) =
                map::run_collect(registry, Arc::new(mapping), tenant, input, opts).await?;
            errors.extend(summary.errors.keys().cloned());
            actual = canonical_lines(&lines.join("\n"))?;
        }
    }
    let mut report = String::new();
    let error_text = errors.join("\n");
    if error_path.exists() {
        let want = std::fs::read_to_string(&error_path)?;
        for line in want.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if !error_text.contains(line) {
                report.push_str(&format!(
                    "expected an error containing: {line}\nactual errors:\n{error_text}\n"
                ));
            }
        }
    } else if !errors.is_empty() {
        report.push_str(&format!("unexpected errors:\n{error_text}\n"));
    }
    if bless && (expected_path.exists() || !error_path.exists()) {
        let mut body = actual.join("\n");
        if !body.is_empty() {
            body.push('\n');
        }
        std::fs::write(&expected_path, body)?;
    } else if expected_path.exists() {
        let want = canonical_lines(&std::fs::read_to_string(&expected_path)?)
            .with_context(|| format!("{name}: expected.jsonl"))?;
        if want != actual {
            let (w, a) = (want.join("\n") + "\n", actual.join("\n") + "\n");
            let diff = similar::TextDiff::from_lines(&w, &a);
            report.push_str("entities differ (- expected, + actual):\n");
            for change in diff.iter_all_changes() {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => "-",
                    similar::ChangeTag::Insert => "+",
                    similar::ChangeTag::Equal => continue,
                };
                report.push_str(&format!("{sign}{change}"));
            }
        }
    } else if !error_path.exists() {
        report.push_str(
            "neither expected.jsonl nor error.txt (run with --bless to create expected.jsonl)\n",
        );
    }
    Ok(CaseOutcome {
        name,
        passed: report.is_empty(),
        report,
    })
}

/// The case directories under `dir` (or `dir` itself if it is a case).
pub fn cases(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if dir.join("mapping.yaml").exists() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("mapping.yaml").exists())
        .collect();
    out.sort();
    Ok(out)
}

/// Run every case under `dir`, printing each result; true if all passed.
pub async fn run_dir(registry: Arc<Registry>, dir: &Path, bless: bool) -> anyhow::Result<bool> {
    let cases = cases(dir)?;
    if cases.is_empty() {
        anyhow::bail!(
            "no test cases (directories with mapping.yaml) under {}",
            dir.display()
        );
    }
    let (mut passed, mut failed) = (0, 0);
    for case in cases {
        let o = run_case(registry.clone(), &case, bless).await?;
        if o.passed {
            passed += 1;
            println!("case {} ... ok", o.name);
        } else {
            failed += 1;
            println!("case {} ... FAILED\n{}", o.name, o.report);
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}
