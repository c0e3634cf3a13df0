//! `berth plugin new`: writes a ready-to-build plugin crate for one kind — `Cargo.toml` (the
//! SDK as a path dependency, a workspace of its own, the shipped plugins' release profile),
//! `src/lib.rs`, a default mapping and blueprint, a golden case and a README — from the
//! templates in `host/templates/plugin/`.
//!
//! Owns only checking the name, kind and target directory and writing those files. Must not
//! build, load or install plugins, and never writes into a directory that already exists.

use std::path::{Path, PathBuf};

use serde_json::json;

/// What `berth plugin new` was asked for.
#[derive(Debug, Clone)]
pub struct NewPlugin {
    /// The plugin's name (`Info::new`), also the crate's suffix: `berth-plugin-NAME`.
    pub name: String,
    /// The Cloud Control type it serves, e.g. `AWS::EC2::Subnet`.
    pub kind: String,
    /// The crate is written to `parent/NAME`.
    pub parent: PathBuf,
    /// The guest SDK crate; default: the one in the Berth checkout this binary was built from.
    pub sdk: Option<PathBuf>,
    /// The plugin directory and the plugins loaded from it (name, kinds): their names are
    /// taken, and a kind one of them serves gets a note.
    pub plugin_dir: PathBuf,
    pub loaded: Vec<(String, Vec<String>)>,
}

/// Why nothing was written. Each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error(
        "invalid plugin name {0:?}: use lowercase ASCII letters, digits and single hyphens, starting with a letter (e.g. ec2-subnet)"
    )]
    InvalidName(String),
    #[error(
        "plugin name {name:?} is taken by a plugin in {}; pick another name (a plugin is known by its name)",
        dir.display()
    )]
    Taken { name: String, dir: PathBuf },
    #[error("invalid kind {0:?}: give a Cloud Control type name such as AWS::EC2::Subnet")]
    InvalidKind(String),
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    #[error(
        "no plugin SDK found at {0}; pass --sdk PATH (the plugins/sdk directory of a Berth checkout)"
    )]
    NoSdk(PathBuf),
    #[error("--sdk {0}: not a directory with a Cargo.toml")]
    BadSdk(PathBuf),
    #[error("{0}: the path must be valid UTF-8 to be written into Cargo.toml")]
    NotUtf8(PathBuf),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

const CARGO_TOML: &str = include_str!("../../templates/plugin/Cargo.toml.in");
const LIB_RS: &str = include_str!("../../templates/plugin/lib.rs.in");
const README: &str = include_str!("../../templates/plugin/README.md.in");
const MAPPING: &str = include_str!("../../templates/plugin/mapping.yaml.in");
const BLUEPRINT: &str = include_str!("../../templates/plugin/blueprint.json.in");

/// The account and region of the golden case's item.
const CASE_ACCOUNT: &str = "123456789012";
const CASE_REGION: &str = "eu-west-1";

/// What was written.
#[derive(Debug)]
pub struct Created {
    pub root: PathBuf,
    pub files: Vec<PathBuf>,
    /// Things the author should know (e.g. a shipped plugin serving the same kind).
    pub notes: Vec<String>,
}

impl Created {
    /// What `berth plugin new` prints: the files, notes and the next three commands.
    pub fn summary(&self, name: &str) -> String {
        let mut s = format!("created {}\n", self.root.display());
        for f in &self.files {
            let rel = f.strip_prefix(&self.root).unwrap_or(f);
            s.push_str(&format!("  {}\n", rel.display()));
        }
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        s.push_str(&format!(
            "next:\n  cd {}\n  cargo build --release --target wasm32-wasip2\n  \
             mkdir -p plugins && cp target/wasm32-wasip2/release/{}.wasm plugins/{name}.wasm\n  \
             berth --plugins plugins plugin test tests/cases\n",
            self.root.display(),
            lib_name(name),
        ));
        s
    }
}

/// A plugin name is a crate-name suffix and a file name: `[a-z][a-z0-9]*(-[a-z0-9]+)*`, at
/// most 64 characters.
pub fn check_name(name: &str) -> Result<(), NewError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if !ok {
        return Err(NewError::InvalidName(name.to_string()));
    }
    Ok(())
}

/// `Provider::Service::Resource`, each part ASCII letters and digits starting with a letter.
fn kind_parts(kind: &str) -> Result<[&str; 3], NewError> {
    let parts: Vec<&str> = kind.split("::").collect();
    let word = |p: &&str| {
        p.starts_with(|c: char| c.is_ascii_alphabetic())
            && p.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    match parts.as_slice() {
        [a, b, c] if [a, b, c].into_iter().all(word) => Ok([*a, *b, *c]),
        _ => Err(NewError::InvalidKind(kind.to_string())),
    }
}

/// The SDK this binary was built beside: `<checkout>/plugins/sdk`.
pub fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk")
}

fn lib_name(name: &str) -> String {
    format!("berth_plugin_{}", name.replace('-', "_"))
}

/// `ec2-subnet` → `Ec2Subnet` (the plugin's type), `ec2Subnet` (its blueprint).
fn camel(name: &str, upper_first: bool) -> String {
    let mut out = String::new();
    for (i, part) in name.split('-').enumerate() {
        let mut cs = part.chars();
        if let Some(c) = cs.next() {
            if i == 0 && !upper_first {
                out.push(c);
            } else {
                out.push(c.to_ascii_uppercase());
            }
            out.extend(cs);
        }
    }
    out
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut s = template.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    s
}

/// The golden case's raw item: what Cloud Control's GetResource gives for one resource of
/// `kind`, as discovery emits it.
fn case_item(parts: [&str; 3], kind: &str) -> serde_json::Value {
    let [_, service, resource] = parts;
    let id = format!("example-{}", resource.to_ascii_lowercase());
    json!({
        "Identifier": id,
        "Properties": {
            format!("{resource}Name"): id,
            "Arn": format!(
                "arn:aws:{}:{CASE_REGION}:{CASE_ACCOUNT}:{}/{id}",
                service.to_ascii_lowercase(),
                resource.to_ascii_lowercase()
            ),
            "Tags": [{"Key": "team", "Value": "platform"}, {"Key": "env", "Value": "dev"}],
        },
        "__Kind": kind,
        "__Region": CASE_REGION,
        "__AccountId": CASE_ACCOUNT,
    })
}

/// The entity the template's mapping makes of [`case_item`] through the template plugin.
fn case_entity(item: &serde_json::Value, blueprint: &str) -> serde_json::Value {
    json!({
        "identifier": item["Identifier"],
        "title": item["Identifier"],
        "blueprint": blueprint,
        "properties": {
            "arn": item["Properties"]["Arn"],
            "region": CASE_REGION,
            "tags": {"team": "platform", "env": "dev"},
            "enrichment_errors": null,
        },
        "relations": {"account": CASE_ACCOUNT},
    })
}

/// The workspace lockfile above the SDK, if any: copied into the new crate so it builds with
/// the same dependency versions the SDK was tested with, offline.
fn sdk_lockfile(sdk: &Path) -> Option<PathBuf> {
    sdk.ancestors()
        .skip(1)
        .map(|d| d.join("Cargo.lock"))
        .find(|p| p.is_file())
}

/// Writes the crate at `parent/NAME`. Checks everything before writing anything; on a write
/// error the partly written directory is removed.
pub fn create(req: &NewPlugin) -> Result<Created, NewError> {
    check_name(&req.name)?;
    if req.loaded.iter().any(|(n, _)| *n == req.name) {
        return Err(NewError::Taken {
            name: req.name.clone(),
            dir: req.plugin_dir.clone(),
        });
    }
    let parts = kind_parts(&req.kind)?;
    let root = req.parent.join(&req.name);
    if root.exists() {
        return Err(NewError::Exists(root));
    }
    let sdk = match &req.sdk {
        Some(p) if p.join("Cargo.toml").is_file() => p.clone(),
        Some(p) => return Err(NewError::BadSdk(p.clone())),
        None if default_sdk().join("Cargo.toml").is_file() => default_sdk(),
        None => return Err(NewError::NoSdk(default_sdk())),
    };
    // Absolute, so the crate builds wherever it is moved on this machine.
    let sdk = std::fs::canonicalize(&sdk).map_err(|source| NewError::Io {
        path: sdk.clone(),
        source,
    })?;
    let sdk_text = sdk.to_str().ok_or_else(|| NewError::NotUtf8(sdk.clone()))?;
    let sdk_toml = toml_string(sdk_text);

    let name = req.name.as_str();
    let kind = req.kind.as_str();
    let ty = camel(name, true);
    let blueprint = camel(name, false);
    let title = format!("{} {}", parts[1], parts[2]);
    let lib = lib_name(name);
    let vars = [
        ("name", name),
        ("kind", kind),
        ("type", ty.as_str()),
        ("blueprint", blueprint.as_str()),
        ("title", title.as_str()),
        ("lib", lib.as_str()),
    ];
    // The SDK path is already a TOML string literal; the template quotes it.
    let cargo = fill(CARGO_TOML, &vars).replace("\"{{sdk}}\"", &sdk_toml);
    let mapping = fill(MAPPING, &vars);
    let item = case_item(parts, kind);
    let entity = case_entity(&item, &blueprint);

    let mut files: Vec<(PathBuf, String)> = vec![
        (root.join("Cargo.toml"), cargo),
        (root.join("src/lib.rs"), fill(LIB_RS, &vars)),
        (root.join("README.md"), fill(README, &vars)),
        (root.join("mapping.yaml"), mapping.clone()),
        (root.join("blueprint.json"), fill(BLUEPRINT, &vars)),
        (root.join(".gitignore"), "/target\n/plugins\n".to_string()),
        (root.join("tests/cases/basic/mapping.yaml"), mapping),
        (
            root.join("tests/cases/basic/input.jsonl"),
            format!("{item}\n"),
        ),
        (
            root.join("tests/cases/basic/expected.jsonl"),
            format!("{entity}\n"),
        ),
    ];
    if let Some(lock) = sdk_lockfile(&sdk) {
        let text = std::fs::read_to_string(&lock).map_err(|source| NewError::Io {
            path: lock.clone(),
            source,
        })?;
        files.push((root.join("Cargo.lock"), text));
    }

    let write_all = || -> Result<(), NewError> {
        for (path, text) in &files {
            let io = |source| NewError::Io {
                path: path.clone(),
                source,
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            std::fs::write(path, text).map_err(io)?;
        }
        Ok(())
    };
    // `create_dir` (not `_all`) on the root: refuses a directory created meanwhile.
    if let Some(parent) = root.parent() {
        std::fs::create_dir_all(parent).map_err(|source| NewError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::create_dir(&root).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => NewError::Exists(root.clone()),
        _ => NewError::Io {
            path: root.clone(),
            source,
        },
    })?;
    if let Err(e) = write_all() {
        let _ = std::fs::remove_dir_all(&root);
        return Err(e);
    }

    let mut notes = Vec::new();
    if let Some((other, _)) = req
        .loaded
        .iter()
        .find(|(_, ks)| ks.iter().any(|k| *k == kind))
    {
        notes.push(format!(
            "the plugin {other} in {} also serves {kind}; in one plugin directory the file \
             whose name sorts first serves it and the other is refused for that kind",
            req.plugin_dir.display()
        ));
    }
    Ok(Created {
        root,
        files: files.into_iter().map(|(p, _)| p).collect(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["demo-thing", "ec2-subnet", "a", "x1-2y"] {
            check_name(ok).unwrap();
        }
        for bad in [
            "",
            "Demo",
            "demo_thing",
            "-a",
            "a-",
            "a--b",
            "1abc",
            "a b",
            "ä",
        ] {
            assert!(
                matches!(check_name(bad), Err(NewError::InvalidName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(
            kind_parts("AWS::EC2::Subnet").unwrap(),
            ["AWS", "EC2", "Subnet"]
        );
        for bad in [
            "AWS::EC2",
            "AWS::EC2::Subnet::X",
            "AWS:EC2:Subnet",
            "AWS::EC2::",
            "*",
        ] {
            assert!(kind_parts(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_names() {
        assert_eq!(camel("ec2-subnet", true), "Ec2Subnet");
        assert_eq!(camel("ec2-subnet", false), "ec2Subnet");
        assert_eq!(lib_name("ec2-subnet"), "berth_plugin_ec2_subnet");
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    /// The template's release profile must stay the workspace's, which the shipped plugins
    /// are built with.
    #[test]
    fn release_profile_matches_workspace() {
        let root =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
                .unwrap();
        let section = |text: &str| -> String {
            let start = text.find("[profile.release]\n").unwrap();
            text[start..]
                .lines()
                .skip(1)
                .take_while(|l| !l.trim().is_empty() && !l.starts_with('['))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(section(CARGO_TOML), section(&root));
    }
}
