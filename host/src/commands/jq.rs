//! `berth jq`: a JQ filter run with the same in-sandbox engine mappings use.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use berth::limits::Limits;
use berth::plugin::lookup::Offline;
use berth::plugin::{JqOutput, JqRequest, Tenant};

use super::{Global, open_registry};

#[derive(Args)]
pub(crate) struct JqArgs {
    /// Compact output.
    #[arg(short = 'c')]
    pub(crate) compact: bool,
    /// Print strings without quotes.
    #[arg(short = 'r')]
    pub(crate) raw: bool,
    /// Run once with `null` as input.
    #[arg(short = 'n')]
    pub(crate) null_input: bool,
    /// `--arg NAME VALUE`: `$NAME` is the string VALUE.
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "VALUE"], action = clap::ArgAction::Append)]
    pub(crate) args: Vec<String>,
    /// `--argjson NAME JSON`: `$NAME` is the JSON value.
    #[arg(long = "argjson", num_args = 2, value_names = ["NAME", "JSON"], action = clap::ArgAction::Append)]
    pub(crate) argjson: Vec<String>,
    pub(crate) filter: String,
    /// Input file (default: stdin).
    pub(crate) file: Option<PathBuf>,
}

pub(crate) async fn run(g: &Global, a: JqArgs) -> anyhow::Result<ExitCode> {
    let mut vars = Vec::new();
    for kv in a.args.chunks(2) {
        vars.push((
            kv[0].clone(),
            serde_json::Value::String(kv[1].clone()).to_string(),
        ));
    }
    for kv in a.argjson.chunks(2) {
        let v: serde_json::Value = serde_json::from_str(&kv[1])
            .with_context(|| format!("--argjson {}: invalid JSON", kv[0]))?;
        vars.push((kv[0].clone(), v.to_string()));
    }
    let inputs = if a.null_input {
        Vec::new()
    } else {
        match &a.file {
            Some(p) => read_json_values(
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
            )?,
            None => read_json_values(std::io::stdin())?,
        }
    };
    let registry = open_registry(&g.plugins).await?;
    let plugin = registry
        .snapshot()
        .any()
        .context("no plugin loaded to run JQ in")?;
    let tenant = Tenant::new(
        "local",
        Limits::from_env().map_err(anyhow::Error::msg)?,
        Arc::new(Offline),
    );
    let req = JqRequest {
        filter: a.filter.clone(),
        inputs,
        null_input: a.null_input,
        vars,
    };
    let outputs = match plugin.run_jq(&tenant, &req).await? {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "jq: error: {}{}",
                e.message,
                e.position
                    .map(|p| format!(" (at character {p})"))
                    .unwrap_or_default()
            );
            return Ok(ExitCode::from(3));
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut failed = false;
    for o in outputs {
        match o {
            JqOutput::Value(j) => print_value(&j, a.compact, a.raw, &mut out)?,
            JqOutput::Error(e) => {
                out.flush()?;
                eprintln!("jq: error: {e}");
                failed = true;
            }
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(5)
    } else {
        ExitCode::SUCCESS
    })
}

fn read_json_values(mut r: impl Read) -> anyhow::Result<Vec<String>> {
    let mut text = String::new();
    r.read_to_string(&mut text)?;
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
        out.push(v.context("invalid JSON input")?.to_string());
    }
    Ok(out)
}

fn print_value(json: &str, compact: bool, raw: bool, out: &mut impl Write) -> anyhow::Result<()> {
    if raw && json.starts_with('"') {
        let s: String = serde_json::from_str(json)?;
        writeln!(out, "{s}")?;
    } else if compact {
        writeln!(out, "{json}")?;
    } else {
        writeln!(out, "{}", berth::json_text::pretty(json))?;
    }
    Ok(())
}
