//! Port's mapping YAML (the "port app config"), read and checked on the host.
//!
//! Owns: parsing the file, structural checks with errors that name the file,
//! line and key, Ocean's top-level settings with their defaults, and turning
//! each `resources[]` entry into the JSON a plugin receives. The JQ inside is
//! not evaluated here: it is untrusted and is compiled and run only inside
//! the sandbox.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

/// A mapping file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct MappingFileError {
    pub source_name: String,
    pub message: String,
}

/// Ocean's top-level settings, with Ocean's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub enable_merge_entity: bool,
    pub delete_dependent_entities: bool,
    pub create_missing_related_entities: bool,
    pub entity_deletion_threshold: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enable_merge_entity: true,
            delete_dependent_entities: true,
            create_missing_related_entities: true,
            entity_deletion_threshold: 0.9,
        }
    }
}

/// One `resources[]` entry.
#[derive(Debug, Clone)]
pub struct ResourceEntry {
    /// Position in `resources:`; Ocean identifies it as `{kind}-{index}`.
    pub index: usize,
    pub kind: String,
    /// The entry as JSON, exactly what the plugin's `map-batch` receives.
    pub json: String,
    /// `selector.useGetResourceAPI`.
    pub use_get_resource_api: bool,
}

/// A parsed mapping file.
#[derive(Debug, Clone)]
pub struct MappingFile {
    pub settings: Settings,
    pub resources: Vec<ResourceEntry>,
}

impl ResourceEntry {
    /// The entry's blueprint when its JQ is a constant string (`'"awsLambdaFunction"'`, or
    /// `"awsLambdaFunction"` in JSON quotes), as nearly every mapping writes it. The host never
    /// evaluates JQ; this is only read to know which blueprint a failed entry would have
    /// written, and `None` (anything else) makes that "any blueprint".
    pub fn constant_blueprint(&self) -> Option<String> {
        let v: Value = serde_json::from_str(&self.json).ok()?;
        let text = v
            .pointer("/port/entity/mappings/blueprint")?
            .as_str()?
            .trim();
        // Ocean turns single quotes into double quotes before compiling.
        let text = match text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
            Some(inner) if !inner.contains(['\'', '"', '\\']) => format!("\"{inner}\""),
            Some(_) => return None,
            None => text.to_string(),
        };
        serde_json::from_str::<String>(&text)
            .ok()
            .filter(|b| !b.is_empty())
    }
}

impl MappingFile {
    /// The entries for `kind`, in mapping order.
    pub fn for_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a ResourceEntry> + 'a {
        self.resources.iter().filter(move |r| r.kind == kind)
    }
}

// Typed view used only for checking, so that serde's errors carry the path
// and line of the offending key.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct FileShape {
    resources: Vec<ResourceShape>,
    #[serde(default)]
    enable_merge_entity: Option<BoolLike>,
    #[serde(default)]
    delete_dependent_entities: Option<BoolLike>,
    #[serde(default)]
    create_missing_related_entities: Option<BoolLike>,
    #[serde(default)]
    entity_deletion_threshold: Option<f64>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ResourceShape {
    kind: String,
    #[serde(default)]
    selector: Option<SelectorShape>,
    port: PortShape,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct SelectorShape {
    #[serde(default)]
    query: Option<Scalar>,
    #[serde(default, rename = "useGetResourceAPI")]
    use_get_resource_api: Option<BoolLike>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PortShape {
    entity: EntityShape,
    #[serde(default)]
    items_to_parse: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct EntityShape {
    mappings: MappingsShape,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct MappingsShape {
    identifier: FieldShape,
    blueprint: Scalar,
    #[serde(default)]
    title: Option<Scalar>,
    #[serde(default)]
    properties: Option<std::collections::BTreeMap<String, Scalar>>,
    #[serde(default)]
    relations: Option<std::collections::BTreeMap<String, FieldShape>>,
}

/// A JQ string, or a search-query object.
#[derive(Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
enum FieldShape {
    Jq(Scalar),
    Search(serde_json::Map<String, Value>),
}

#[derive(Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
enum Scalar {
    S(String),
    B(bool),
    N(f64),
}

/// Ocean accepts `true` and `'true'` alike for boolean settings.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum BoolLike {
    B(bool),
    S(BoolStr),
}

#[derive(Deserialize, Clone, Copy)]
enum BoolStr {
    #[serde(rename = "true")]
    True,
    #[serde(rename = "false")]
    False,
}

impl BoolLike {
    fn get(self) -> bool {
        matches!(self, BoolLike::B(true) | BoolLike::S(BoolStr::True))
    }
}

fn bool_at(v: &Value, key: &str) -> Option<bool> {
    match v.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(s == "true"),
        _ => None,
    }
}

impl MappingFile {
    pub fn from_path(path: &Path) -> Result<Self, MappingFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| MappingFileError {
            source_name: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse a mapping document; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, MappingFileError> {
        let err = |message: String| MappingFileError {
            source_name: source_name.to_string(),
            message,
        };
        let shape: FileShape = serde_norway::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("line {}, column {}: ", l.line(), l.column()))
                .unwrap_or_default();
            err(format!("{at}{e}"))
        })?;
        if let Some(t) = shape.entity_deletion_threshold
            && !(0.0..=1.0).contains(&t)
        {
            return Err(err(format!(
                "entityDeletionThreshold must be between 0 and 1, got {t}"
            )));
        }
        let doc: Value = serde_norway::from_str(text).map_err(|e| err(e.to_string()))?;
        let settings = Settings {
            enable_merge_entity: shape.enable_merge_entity.is_none_or(BoolLike::get),
            delete_dependent_entities: shape.delete_dependent_entities.is_none_or(BoolLike::get),
            create_missing_related_entities: shape
                .create_missing_related_entities
                .is_none_or(BoolLike::get),
            entity_deletion_threshold: shape.entity_deletion_threshold.unwrap_or(0.9),
        };
        let entries = doc
            .get("resources")
            .and_then(Value::as_array)
            .ok_or_else(|| err("`resources` must be a list".into()))?;
        let resources = entries
            .iter()
            .enumerate()
            .map(|(index, r)| ResourceEntry {
                index,
                kind: r["kind"].as_str().unwrap_or_default().to_string(),
                json: r.to_string(),
                use_get_resource_api: r
                    .get("selector")
                    .and_then(|s| bool_at(s, "useGetResourceAPI"))
                    .unwrap_or(false),
            })
            .collect();
        Ok(Self {
            settings,
            resources,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_default_mapping() {
        let text = include_str!("../../mappings/default.yaml");
        let m = MappingFile::parse(text, "default.yaml").unwrap();
        assert_eq!(m.resources.len(), 6);
        assert_eq!(m.resources[1].kind, "AWS::S3::Bucket");
        assert!(m.resources[1].use_get_resource_api);
        assert!(!m.resources[2].use_get_resource_api);
        assert_eq!(m.settings, Settings::default());
        assert_eq!(
            m.resources[1].constant_blueprint().as_deref(),
            Some("cloudResource")
        );
    }

    #[test]
    fn only_constant_blueprints_are_known() {
        let bp = |b: &str| {
            let text = format!(
                "resources:\n- kind: A\n  port:\n    entity:\n      mappings:\n        identifier: .id\n        blueprint: {b}\n"
            );
            MappingFile::parse(&text, "m.yaml").unwrap().resources[0].constant_blueprint()
        };
        assert_eq!(bp(r#"'"x"'"#).as_deref(), Some("x"));
        assert_eq!(bp(r#"'''x'''"#).as_deref(), Some("x"));
        assert_eq!(bp(r#"'.kind'"#), None);
        assert_eq!(bp(r#"'"a" + "b"'"#), None);
        assert_eq!(bp(r#"'""'"#), None);
    }

    #[test]
    fn invalid_yaml_names_the_line() {
        let e = MappingFile::parse("resources:\n- kind: A\n  port: [\n", "m.yaml").unwrap_err();
        assert!(e.to_string().starts_with("m.yaml: line "), "{e}");
    }

    #[test]
    fn missing_blueprint_names_the_path() {
        let text = "resources:\n- kind: A\n  port:\n    entity:\n      mappings:\n        identifier: .id\n";
        let e = MappingFile::parse(text, "m.yaml").unwrap_err().to_string();
        assert!(e.contains("resources[0].port.entity.mappings"), "{e}");
        assert!(e.contains("blueprint"), "{e}");
    }
}
