//! `berth plugin`: what is loaded (`list`), golden cases (`test`), and a new plugin crate to
//! start from (`new`, in [`super::plugin_new`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{Global, open_registry, plugin_new};

#[derive(Subcommand)]
pub(crate) enum PluginCommand {
    /// Loaded plugins, their versions, kinds and capabilities, and load errors.
    List,
    /// Run golden test cases: each directory holds mapping.yaml, input.jsonl,
    /// and expected.jsonl or error.txt (optionally lookups.jsonl).
    Test {
        dir: PathBuf,
        /// Rewrite expected.jsonl from the actual output.
        #[arg(long)]
        bless: bool,
    },
    /// Write a new plugin crate at DIR/NAME: Cargo.toml, src/lib.rs, a default mapping and
    /// blueprint, a golden case (tests/cases/basic) and a README with the build, install and
    /// test commands.
    New {
        /// The plugin's name (lowercase letters, digits, hyphens), e.g. ec2-subnet.
        name: String,
        /// The Cloud Control type it serves, e.g. AWS::EC2::Subnet.
        #[arg(long)]
        kind: String,
        /// Where to create the crate's directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The guest SDK crate (default: plugins/sdk of the Berth checkout this was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

async fn list(g: &Global) -> anyhow::Result<ExitCode> {
    let registry = open_registry(&g.plugins).await?;
    let snap = registry.snapshot();
    println!("plugin directory: {}", registry.dir().display());
    for p in &snap.plugins {
        let i = &p.info;
        println!(
            "{} {} (berth:plugin@{}) {}",
            i.name,
            i.version,
            i.api_version,
            p.path.file_name().unwrap_or_default().to_string_lossy()
        );
        println!("  kinds: {}", i.kinds.join(", "));
        let caps: Vec<String> = std::iter::once("log".to_string())
            .chain(i.lookups.iter().map(|t| format!("cloud-lookup({t})")))
            .collect();
        println!("  capabilities: {}", caps.join(", "));
        if i.default_mapping.is_some() || !i.blueprints.is_empty() {
            println!(
                "  ships: {}{} blueprint(s)",
                if i.default_mapping.is_some() {
                    "a default mapping, "
                } else {
                    ""
                },
                i.blueprints.len()
            );
        }
    }
    Ok(if snap.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(crate) async fn run(g: &Global, command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::List => list(g).await,
        PluginCommand::Test { dir, bless } => {
            let registry = open_registry(&g.plugins).await?;
            let ok = berth::pipeline::golden::run_dir(registry, &dir, bless).await?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        PluginCommand::New {
            name,
            kind,
            dir,
            sdk,
        } => {
            // Names and kinds already taken come from the plugin directory itself, not a list.
            let loaded = if g.plugins.is_dir() {
                open_registry(&g.plugins)
                    .await?
                    .snapshot()
                    .plugins
                    .iter()
                    .map(|p| (p.info.name.clone(), p.info.kinds.clone()))
                    .collect()
            } else {
                Vec::new()
            };
            let req = plugin_new::NewPlugin {
                name,
                kind,
                parent: dir,
                sdk,
                plugin_dir: g.plugins.clone(),
                loaded,
            };
            let created = plugin_new::create(&req)?;
            print!("{}", created.summary(&req.name));
            Ok(ExitCode::SUCCESS)
        }
    }
}
