//! Port's mapping YAML (the "port app config"), read and checked on the host.
//!
//! Owns: parsing the file, structural checks with errors that name the file,
//! line and key, warnings for keys of a resource entry that nothing reads
//! (everything accepted before is still accepted), Ocean's top-level settings
//! with their defaults, and turning each `resources[]` entry into the JSON a
//! plugin receives. The JQ inside is not evaluated here: it is untrusted and
//! is compiled and run only inside the sandbox. Must not touch: plugins,
//! Port or AWS.

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

/// How a resource entry is named to a user everywhere (summaries, errors, the report): its
/// place in `resources:` and its kind. Ocean's `{kind}-{index}` reads like a kind of its own.
pub fn entry_label(index: usize, kind: &str) -> String {
    format!("resources[{index}] {kind}")
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
    /// What names the file in messages (its path, or e.g. `config mapping`).
    pub source_name: String,
    /// One line each, naming the file, line, entry and key, without a `warning:` prefix.
    pub warnings: Vec<String>,
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
        let shape: FileShape =
            serde_norway::from_str(text).map_err(|e| err(shape_error(text, &e)))?;
        if let Some(t) = shape.entity_deletion_threshold
            && !(0.0..=1.0).contains(&t)
        {
            return Err(err(format!(
                "entityDeletionThreshold must be between 0 and 1, got {t}"
            )));
        }
        let doc: Value = serde_norway::from_str(text).map_err(|e| err(shape_error(text, &e)))?;
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
        let resources: Vec<ResourceEntry> = entries
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
        let warnings = unknown_keys(entries)
            .into_iter()
            .map(|u| {
                let line = locate_key(text, &u.path, &u.key)
                    .map(|l| format!("line {l}: "))
                    .unwrap_or_default();
                let kind = &resources[u.index].kind;
                format!(
                    "{source_name}: {line}resources[{}] ({kind}): unknown key `{}`{}",
                    u.index, u.shown, u.hint
                )
            })
            .collect();
        Ok(Self {
            settings,
            resources,
            source_name: source_name.to_string(),
            warnings,
        })
    }
}

/// The keys Berth reads in each block of a resource entry (Port's schema, Ocean's options
/// and Berth's own `selector.regionPolicy`), by path below the entry.
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    ("", &["kind", "selector", "port"]),
    ("selector", &["query", "useGetResourceAPI", "regionPolicy"]),
    (
        "port",
        &[
            "entity",
            "itemsToParse",
            "itemsToParseName",
            "itemsToParseTopLevelTransform",
        ],
    ),
    ("port.entity", &["mappings"]),
    (
        "port.entity.mappings",
        &[
            "identifier",
            "title",
            "blueprint",
            "icon",
            "team",
            "properties",
            "relations",
        ],
    ),
];

/// A key of a resource entry that nothing reads.
struct UnknownKey {
    index: usize,
    /// Where it is, as serde paths it: `resources[3].selector`.
    path: String,
    key: String,
    /// As shown: `selector.querry`.
    shown: String,
    /// ` (did you mean ...?)`, or empty.
    hint: String,
}

fn unknown_keys(entries: &[Value]) -> Vec<UnknownKey> {
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        for (block, known) in KNOWN_KEYS {
            let pointer = if block.is_empty() {
                String::new()
            } else {
                format!("/{}", block.replace('.', "/"))
            };
            let Some(Value::Object(map)) = entry.pointer(&pointer) else {
                continue;
            };
            for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
                let within = |k: &str| {
                    if block.is_empty() {
                        k.to_string()
                    } else {
                        format!("{block}.{k}")
                    }
                };
                let near = known
                    .iter()
                    .map(|k| {
                        (
                            strsim::levenshtein(&k.to_lowercase(), &key.to_lowercase()),
                            k,
                        )
                    })
                    .filter(|(d, k)| *d <= 2.max(k.len() / 4))
                    .min();
                let elsewhere = KNOWN_KEYS
                    .iter()
                    .find(|(b, ks)| b != block && ks.contains(&key.as_str()))
                    .map(|(b, _)| *b);
                let hint = match (near, elsewhere) {
                    (Some((_, k)), _) => format!(" (did you mean `{}`?)", within(k)),
                    (None, Some(b)) if !b.is_empty() => {
                        format!(" (`{key}` belongs in `{b}`; check the indentation)")
                    }
                    _ => String::new(),
                };
                out.push(UnknownKey {
                    index,
                    path: if block.is_empty() {
                        format!("resources[{index}]")
                    } else {
                        format!("resources[{index}].{block}")
                    },
                    key: key.clone(),
                    shown: within(key),
                    hint,
                });
            }
        }
    }
    out
}

/// The text of a shape error, naming the line once; a missing key that is present elsewhere
/// in the same entry (mis-indented) names the line where it is.
fn shape_error(text: &str, e: &serde_norway::Error) -> String {
    let mut message = e.to_string();
    let Some(loc) = e.location() else {
        return message;
    };
    // serde_norway appends the position it reports; it is given first, once.
    let suffix = format!(" at line {} column {}", loc.line(), loc.column());
    if let Some(at) = message.find(&suffix) {
        message.replace_range(at..at + suffix.len(), "");
    }
    if let Some((path, key)) = missing_key(&message) {
        let entry = path.split('.').next().unwrap_or_default();
        if entry.starts_with("resources[")
            && let Some((line, found_in)) = find_key(text, |p, k| {
                k == key && p != path && (p == entry || p.starts_with(&format!("{entry}.")))
            })
        {
            return format!(
                "line {line}: `{key}` is a key of {found_in}, so {path} has no `{key}` \
                 (check the indentation)"
            );
        }
        return format!("line {}: {path}: missing key `{key}`", loc.line());
    }
    format!("line {}, column {}: {message}", loc.line(), loc.column())
}

/// (path, key) of serde's "PATH: missing field `KEY`".
fn missing_key(message: &str) -> Option<(&str, &str)> {
    let (path, rest) = message.split_once(": missing field `")?;
    Some((path, rest.strip_suffix('`')?))
}

/// The line of `key` directly under `path` (`resources[0].selector`).
fn locate_key(text: &str, path: &str, key: &str) -> Option<usize> {
    find_key(text, |p, k| p == path && k == key).map(|(line, _)| line)
}

/// The line and parent path of the first key for which `hit(parent path, key)` holds.
/// serde_norway reports positions only with errors, so the walk fails on purpose at that key
/// and reads the error's position.
fn find_key(text: &str, hit: impl Fn(&str, &str) -> bool) -> Option<(usize, String)> {
    let found = std::cell::RefCell::new(None);
    let walk = locate::Walk {
        path: String::new(),
        hit: &hit,
        found: &found,
    };
    let e =
        serde::de::DeserializeSeed::deserialize(walk, serde_norway::Deserializer::from_str(text))
            .err()?;
    let path = found.into_inner()?;
    Some((e.location()?.line(), path))
}

/// A walk over any YAML document that fails at the first key a predicate picks.
mod locate {
    use std::cell::RefCell;
    use std::fmt;

    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

    pub(super) struct Walk<'a> {
        pub(super) path: String,
        pub(super) hit: &'a dyn Fn(&str, &str) -> bool,
        pub(super) found: &'a RefCell<Option<String>>,
    }

    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any YAML value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_none<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            while seq
                .next_element_seed(Walk {
                    path: format!("{}[{i}]", self.path),
                    hit: self.hit,
                    found: self.found,
                })?
                .is_some()
            {
                i += 1;
            }
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key_seed(Key { walk: &self })? {
                let path = if self.path.is_empty() {
                    key
                } else {
                    format!("{}.{key}", self.path)
                };
                map.next_value_seed(Walk {
                    path,
                    hit: self.hit,
                    found: self.found,
                })?;
            }
            Ok(())
        }
    }

    /// A key, failing when it is the one looked for: an error raised while the key is read
    /// carries the key's own position (one raised later carries its map's).
    struct Key<'w, 'a> {
        walk: &'w Walk<'a>,
    }

    impl Key<'_, '_> {
        fn check<E: de::Error>(self, key: String) -> Result<String, E> {
            if (self.walk.hit)(&self.walk.path, &key) {
                *self.walk.found.borrow_mut() = Some(self.walk.path.clone());
                return Err(E::custom("found"));
            }
            Ok(key)
        }
    }

    impl<'de> DeserializeSeed<'de> for Key<'_, '_> {
        type Value = String;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Key<'_, '_> {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            self.check(v.to_string())
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
            self.check(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            self.check(v.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            self.check(v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
            self.check(v.to_string())
        }
        fn visit_unit<E: de::Error>(self) -> Result<String, E> {
            self.check("null".into())
        }
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

    #[test]
    fn unknown_keys_are_warnings_with_line_and_suggestion() {
        let text = "resources:\n- kind: A\n  port:\n    entity:\n      mappings:\n        \
                    identifier: .id\n        blueprint: '\"b\"'\n        icn: .x\n        \
                    relations: {team: .t}\n    itemsToParse: .x\n";
        let m = MappingFile::parse(text, "m.yaml").unwrap();
        assert_eq!(
            m.warnings,
            [
                "m.yaml: line 8: resources[0] (A): unknown key `port.entity.mappings.icn` (did you \
              mean `port.entity.mappings.icon`?)"
            ]
        );
        let clean = include_str!("../../mappings/default.yaml");
        assert!(
            MappingFile::parse(clean, "d.yaml")
                .unwrap()
                .warnings
                .is_empty()
        );
    }

    #[test]
    fn a_key_is_located_in_block_and_flow_style() {
        let text = "a:\n  b:\n    c: 1\n  d: {e: 1, f: [x, {g: 2}]}\n";
        assert_eq!(locate_key(text, "a.b", "c"), Some(3));
        assert_eq!(locate_key(text, "a.d.f[1]", "g"), Some(4));
        assert_eq!(locate_key(text, "a", "zz"), None);
    }
}
