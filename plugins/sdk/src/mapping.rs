//! The mapping engine: one `resources[]` entry of Port's mapping, compiled
//! once and applied to raw items with Ocean's semantics
//! (`docs/ocean-mapping.md`).
//!
//! Owns: the resource-entry model, compiling every JQ field (each a
//! [`crate::jq::Filter`], which picks the fast path or jaq), the selector,
//! `itemsToParse`, search-query objects, skipping entities with a null
//! identifier or blueprint, misconfiguration records, writing each entity as
//! the JSON body Port's bulk upsert receives, and saying which evaluator
//! runs each expression ([`Mapping::explain`]). Must not touch: enrichment
//! (the plugin's job, before this runs), parsing an item more than once for
//! several entries (callers hand one [`crate::jq::Input`] to
//! [`Mapping::map_input`]),
//! or anything outside the sandbox.

use jaq_json::Val;
use serde::Deserialize;
use serde_json::Value;

use crate::jq::{Filter, First, Input, Outcome, type_name};
use crate::json_out;
use crate::rewrite::ocean_format_filter;

/// A mapping problem that makes the whole resource entry unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingError {
    Invalid(String),
    Jq {
        field: String,
        expression: String,
        message: String,
        position: Option<u32>,
    },
}

/// A field that was null in an entity, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misconfiguration {
    pub field: String,
    pub expression: String,
    pub message: String,
}

/// Why one item produced nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemError {
    InvalidItem(String),
    Selector(String),
    ItemsToParse(String),
    /// The mapped entity is not one Port accepts (Ocean's entity model).
    Entity(String),
}

/// What one item became.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ItemOutput {
    pub entities: Vec<Entity>,
    pub filtered_out: u32,
    pub skipped: u32,
    pub misconfigured: Vec<Misconfiguration>,
}

/// One entity, as Port's bulk upsert receives it plus what the host needs without parsing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Entity {
    pub blueprint: String,
    /// Empty when the identifier is not a string (a search query).
    pub identifier: String,
    /// Identifiers the relations point at (string values, arrays of strings).
    pub relation_targets: Vec<String>,
    /// The entity without `blueprint` (it travels in the bulk call's path), compact JSON.
    pub body: String,
}

/// A JSON text's string value, when it is a string.
fn json_string(json: &str) -> Option<String> {
    if json.starts_with('"') {
        serde_json::from_str(json).ok()
    } else {
        None
    }
}

/// Which evaluator runs an expression of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The native fast path, on the item's JSON text.
    Fast,
    Jaq,
    /// The expression does not compile; the field is null in every entity.
    Invalid,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Fast => "fast",
            Engine::Jaq => "jaq",
            Engine::Invalid => "invalid",
        })
    }
}

/// One expression of a resource entry, and how it is evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    /// Where it is in the entry, named as in misconfiguration records
    /// (`selector.query`, `port.itemsToParse`, `identifier`,
    /// `properties.region`, `relations.vpc.rules`, ...).
    pub field: String,
    /// As written in the mapping.
    pub expression: String,
    pub engine: Engine,
    /// "in the fast subset", why the fast path declined (e.g. "`limit` is
    /// outside the fast subset", "uses $variables"), or the compile error.
    pub why: String,
}

// ---- the resource entry, as Port stores it --------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpec {
    kind: String,
    #[serde(default)]
    selector: Option<SelectorSpec>,
    port: PortSpec,
}

#[derive(Deserialize)]
struct SelectorSpec {
    #[serde(default)]
    query: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PortSpec {
    entity: EntitySpec,
    #[serde(default)]
    items_to_parse: Option<String>,
    #[serde(default)]
    items_to_parse_name: Option<String>,
    #[serde(default)]
    items_to_parse_top_level_transform: Option<Value>,
}

#[derive(Deserialize)]
struct EntitySpec {
    mappings: MappingsSpec,
}

#[derive(Deserialize)]
struct MappingsSpec {
    identifier: Value,
    #[serde(default)]
    title: Option<Value>,
    blueprint: Value,
    #[serde(default)]
    team: Option<Value>,
    #[serde(default)]
    icon: Option<Value>,
    #[serde(default)]
    properties: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    relations: Option<serde_json::Map<String, Value>>,
}

// ---- compiled form -----------------------------------------------------

enum Eval {
    /// Boxed: a filter is large, and most entries hold many expressions.
    Filter(Box<Filter>),
    /// The expression does not compile: every evaluation is this error
    /// (Ocean keeps the entity with the field null).
    Invalid(String),
}

struct Expr {
    /// Field path in the mapping, e.g. `properties.region`.
    path: String,
    /// As written in the mapping.
    source: String,
    eval: Eval,
}

/// A field value: a JQ expression or an Ocean search-query object whose
/// `value` leaves are JQ.
enum Field {
    Expr(Expr),
    Search(SearchNode),
}

enum SearchNode {
    Object(Vec<(String, SearchNode)>),
    Array(Vec<SearchNode>),
    Literal(String),
    Jq(Expr),
}

/// One compiled `resources[]` entry.
pub struct Mapping {
    kind: String,
    selector: Expr,
    items_to_parse: Option<ItemsToParse>,
    identifier: Field,
    title: Option<Expr>,
    blueprint: Expr,
    team: Option<Field>,
    icon: Option<Expr>,
    properties: Option<Vec<(String, Expr)>>,
    relations: Option<Vec<(String, Field)>>,
}

struct ItemsToParse {
    /// As written in the mapping.
    source: String,
    expr: Filter,
    /// `del(expr)`, when `itemsToParseTopLevelTransform` is on.
    delete: Option<Filter>,
    name: String,
}

/// The JQ text of a mapping value. Ocean's models coerce scalars with
/// Python's `str()`, so an unquoted YAML `true` becomes `True` (which then
/// fails to compile, as in Ocean).
fn expr_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(true) => Some("True".into()),
        Value::Bool(false) => Some("False".into()),
        Value::Number(_) => Some(v.to_string()),
        _ => None,
    }
}

/// Compile one JQ field. `strict` makes a compile error fatal for the entry
/// (the selector); otherwise the field is null in every entity, as in Ocean.
fn compile_expr(path: &str, source: &str, strict: bool) -> Result<Expr, MappingError> {
    let code = ocean_format_filter(source);
    let eval = match Filter::compile(&code) {
        Ok(f) => Eval::Filter(Box::new(f)),
        Err(e) if strict => {
            return Err(MappingError::Jq {
                field: format!("selector.{path}"),
                expression: source.to_string(),
                message: e.message,
                position: e.position,
            });
        }
        Err(e) => Eval::Invalid(format!("invalid JQ: {e}")),
    };
    Ok(Expr {
        path: path.to_string(),
        source: source.to_string(),
        eval,
    })
}

fn compile_field(path: &str, v: &Value) -> Result<Field, MappingError> {
    match v {
        Value::Object(_) => Ok(Field::Search(compile_search(path, v)?)),
        other => {
            let src = expr_text(other).ok_or_else(|| {
                MappingError::Invalid(format!(
                    "port.entity.mappings.{path} must be a JQ string or a search query object"
                ))
            })?;
            Ok(Field::Expr(compile_expr(path, &src, false)?))
        }
    }
}

fn compile_search(path: &str, v: &Value) -> Result<SearchNode, MappingError> {
    Ok(match v {
        Value::Object(m) => {
            let mut out = Vec::with_capacity(m.len());
            for (k, x) in m {
                let sub = format!("{path}.{k}");
                out.push((k.clone(), compile_search(&sub, x)?));
            }
            SearchNode::Object(out)
        }
        // Ocean evaluates every leaf of a search query as JQ (Port's docs
        // write `combinator: '"and"'` for that reason); array elements share
        // their parent's path in its misconfiguration records.
        Value::Array(a) => SearchNode::Array(
            a.iter()
                .map(|x| compile_search(path, x))
                .collect::<Result<_, _>>()?,
        ),
        Value::Null => SearchNode::Literal("null".into()),
        other => SearchNode::Jq(compile_expr(
            path,
            &expr_text(other).unwrap_or_default(),
            false,
        )?),
    })
}

fn optional_expr(path: &str, v: &Option<Value>) -> Result<Option<Expr>, MappingError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let src = expr_text(v).ok_or_else(|| {
                MappingError::Invalid(format!("port.entity.mappings.{path} must be a JQ string"))
            })?;
            Ok(Some(compile_expr(path, &src, false)?))
        }
    }
}

impl Mapping {
    /// Compile a resource entry given as JSON.
    pub fn compile(resource_json: &str) -> Result<Self, MappingError> {
        let spec: ResourceSpec = serde_json::from_str(resource_json)
            .map_err(|e| MappingError::Invalid(format!("resource entry: {e}")))?;
        let query = spec
            .selector
            .and_then(|s| s.query)
            .map(|q| {
                expr_text(&q).ok_or_else(|| {
                    MappingError::Invalid("selector.query must be a JQ string".into())
                })
            })
            .transpose()?
            .unwrap_or_else(|| "true".to_string());
        let selector = compile_expr("query", &query, true)?;
        let m = spec.port.entity.mappings;
        let items_to_parse = match spec.port.items_to_parse {
            None => None,
            Some(src) => {
                let code = ocean_format_filter(&src);
                let expr = Filter::compile(&code).map_err(|e| MappingError::Jq {
                    field: "port.itemsToParse".into(),
                    expression: src.clone(),
                    message: e.message,
                    position: e.position,
                })?;
                let top_level = match spec.port.items_to_parse_top_level_transform {
                    None => true,
                    Some(Value::Bool(b)) => b,
                    Some(Value::String(s)) => s != "false",
                    Some(_) => true,
                };
                // Ocean deletes the path its regex finds in the expression
                // (`.` when none, which makes the parent null).
                let delete = if top_level {
                    let target = deletion_path(&code).unwrap_or_else(|| ".".into());
                    Some(Filter::compile(&format!(". | del({target})")).map_err(|e| {
                        MappingError::Jq {
                            field: "port.itemsToParse".into(),
                            expression: src.clone(),
                            message: format!(
                                "cannot delete `{target}` from the parent: {}",
                                e.message
                            ),
                            position: None,
                        }
                    })?)
                } else {
                    None
                };
                Some(ItemsToParse {
                    source: src,
                    expr,
                    delete,
                    name: spec
                        .port
                        .items_to_parse_name
                        .unwrap_or_else(|| "item".into()),
                })
            }
        };
        Ok(Self {
            kind: spec.kind,
            selector,
            items_to_parse,
            identifier: compile_field("identifier", &m.identifier)?,
            title: optional_expr("title", &m.title)?,
            blueprint: optional_expr("blueprint", &Some(m.blueprint))?
                .ok_or_else(|| MappingError::Invalid("blueprint is required".into()))?,
            team: m
                .team
                .as_ref()
                .filter(|t| !t.is_null())
                .map(|t| compile_field("team", t))
                .transpose()?,
            icon: optional_expr("icon", &m.icon)?,
            properties: m
                .properties
                .map(|ps| {
                    ps.iter()
                        .map(|(k, v)| {
                            let path = format!("properties.{k}");
                            let src = expr_text(v).ok_or_else(|| {
                                MappingError::Invalid(format!(
                                    "port.entity.mappings.{path} must be a JQ string"
                                ))
                            })?;
                            Ok((k.clone(), compile_expr(&path, &src, false)?))
                        })
                        .collect::<Result<Vec<_>, MappingError>>()
                })
                .transpose()?,
            relations: m
                .relations
                .map(|rs| {
                    rs.iter()
                        .map(|(k, v)| Ok((k.clone(), compile_field(&format!("relations.{k}"), v)?)))
                        .collect::<Result<Vec<_>, MappingError>>()
                })
                .transpose()?,
        })
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Map one raw item (JSON object text).
    pub fn map_item(&self, text: &str) -> Result<ItemOutput, ItemError> {
        let input = Input::new(text).map_err(ItemError::InvalidItem)?;
        self.map_input(&input)
    }

    /// Map one item already read with [`Input::new`], so that one parsed
    /// item can go through several resource entries.
    pub fn map_input(&self, input: &Input<'_>) -> Result<ItemOutput, ItemError> {
        let mut out = ItemOutput::default();
        let Some(itp) = &self.items_to_parse else {
            self.map_one(input, &mut out)?;
            return Ok(out);
        };
        let items = match itp.expr.first_value(input) {
            First::Value(Val::Arr(a)) => a,
            First::Value(other) => {
                return Err(ItemError::ItemsToParse(format!(
                    "itemsToParse must yield an array, got {}",
                    type_name(&other)
                )));
            }
            First::Empty => {
                return Err(ItemError::ItemsToParse(
                    "itemsToParse yielded no output".into(),
                ));
            }
            First::Error(e) => return Err(ItemError::ItemsToParse(e)),
        };
        let base = match &itp.delete {
            Some(del) => match del.first_value(input) {
                First::Value(v) => v,
                _ => Val::Null,
            },
            None => input.val().map_err(ItemError::InvalidItem)?,
        };
        if items.is_empty() {
            return Ok(out);
        }
        let Val::Obj(base_obj) = base else {
            return Err(ItemError::ItemsToParse(format!(
                "the item without its itemsToParse array is {}, not an object",
                type_name(&base)
            )));
        };
        let key = Val::from(itp.name.clone());
        for element in items.iter() {
            let mut obj = (*base_obj).clone();
            obj.insert(key.clone(), element.clone());
            let merged = json_out::to_json(&Val::obj(obj));
            let input = Input::new(&merged).map_err(ItemError::InvalidItem)?;
            self.map_one(&input, &mut out)?;
        }
        Ok(out)
    }

    /// Every expression of the entry, in the order the entry lists them,
    /// with the evaluator that runs it and why.
    pub fn explain(&self) -> Vec<Explained> {
        let mut out = Vec::new();
        self.selector.explain("selector.query", &mut out);
        if let Some(itp) = &self.items_to_parse {
            out.push(explained("port.itemsToParse", &itp.source, Some(&itp.expr)));
        }
        self.identifier.explain(&mut out);
        if let Some(t) = &self.title {
            t.explain(&t.path, &mut out);
        }
        self.blueprint.explain(&self.blueprint.path, &mut out);
        if let Some(t) = &self.team {
            t.explain(&mut out);
        }
        if let Some(i) = &self.icon {
            i.explain(&i.path, &mut out);
        }
        for (_, e) in self.properties.iter().flatten() {
            e.explain(&e.path, &mut out);
        }
        for (_, f) in self.relations.iter().flatten() {
            f.explain(&mut out);
        }
        out
    }

    fn map_one(&self, input: &Input<'_>, out: &mut ItemOutput) -> Result<(), ItemError> {
        match self.selector.first(input) {
            Outcome::Json(j) if j == "true" => {}
            Outcome::Json(j) if j == "false" => {
                out.filtered_out += 1;
                return Ok(());
            }
            Outcome::Json(j) => {
                return Err(ItemError::Selector(format!(
                    "selector.query `{}` must yield a boolean, got {}",
                    self.selector.source,
                    truncate(&j, 80)
                )));
            }
            Outcome::Empty => {
                return Err(ItemError::Selector(format!(
                    "selector.query `{}` yielded no output",
                    self.selector.source
                )));
            }
            Outcome::Error(e) => {
                return Err(ItemError::Selector(format!(
                    "selector.query `{}` failed: {e}",
                    self.selector.source
                )));
            }
        }

        let mis = &mut out.misconfigured;
        let identifier = self.identifier.eval(input, mis);
        let blueprint = self.blueprint.value(input, mis);
        let mut entity = String::with_capacity(256);
        let mut relation_targets = Vec::new();
        entity.push_str("{\"identifier\":");
        entity.push_str(&identifier);
        if let Some(t) = &self.title {
            entity.push_str(",\"title\":");
            entity.push_str(&t.value(input, mis));
        }
        if let Some(t) = &self.team {
            entity.push_str(",\"team\":");
            entity.push_str(&coerce_scalar_to_str(t.eval(input, mis)));
        }
        if let Some(i) = &self.icon {
            let icon = coerce_scalar_to_str(i.value(input, mis));
            if icon.starts_with('[') || icon.starts_with('{') {
                return Err(ItemError::Entity(format!(
                    "icon must be a string, got {}",
                    truncate(&icon, 80)
                )));
            }
            entity.push_str(",\"icon\":");
            entity.push_str(&icon);
        }
        if let Some(ps) = &self.properties {
            entity.push_str(",\"properties\":{");
            for (i, (k, e)) in ps.iter().enumerate() {
                if i > 0 {
                    entity.push(',');
                }
                json_out::write_str(&mut entity, k);
                entity.push(':');
                entity.push_str(&e.value(input, mis));
            }
            entity.push('}');
        }
        if let Some(rs) = &self.relations {
            entity.push_str(",\"relations\":{");
            for (i, (k, f)) in rs.iter().enumerate() {
                if i > 0 {
                    entity.push(',');
                }
                json_out::write_str(&mut entity, k);
                entity.push(':');
                let value = f.eval(input, mis);
                if let Some(t) = json_string(&value) {
                    relation_targets.push(t);
                } else if value.starts_with('[') {
                    let ids: Vec<serde_json::Value> =
                        serde_json::from_str(&value).unwrap_or_default();
                    relation_targets.extend(
                        ids.into_iter()
                            .filter_map(|v| v.as_str().map(str::to_string)),
                    );
                }
                entity.push_str(&value);
            }
            entity.push('}');
        }
        entity.push('}');
        if is_blank(&identifier) || is_blank(&blueprint) {
            out.skipped += 1;
        } else {
            // Ocean's entity model (pydantic v1) turns a number or boolean blueprint into
            // its string; anything else is no blueprint Port accepts.
            let blueprint = coerce_scalar_to_str(blueprint);
            let Some(blueprint) = json_string(&blueprint) else {
                return Err(ItemError::Entity(format!(
                    "blueprint must be a string, got {}",
                    truncate(&blueprint, 80)
                )));
            };
            out.entities.push(Entity {
                blueprint,
                identifier: json_string(&identifier).unwrap_or_default(),
                relation_targets,
                body: entity,
            });
        }
        Ok(())
    }
}

/// Ocean's entity model (pydantic v1) turns a number or boolean `team` or
/// `icon` into its Python `str()`.
fn coerce_scalar_to_str(json: String) -> String {
    match json.as_bytes().first() {
        Some(b't') if json == "true" => "\"True\"".into(),
        Some(b'f') if json == "false" => "\"False\"".into(),
        Some(b'-' | b'0'..=b'9') => format!("\"{json}\""),
        _ => json,
    }
}

/// Ocean's `extract_jq_deletion_path_revised`: the first plain path in the
/// `itemsToParse` expression's pipeline, which `itemsToParseTopLevelTransform`
/// deletes from the parent.
fn deletion_path(expr: &str) -> Option<String> {
    let expr = expr.trim();
    let chain = if let Some(rest) = expr.strip_prefix('(') {
        rest[..rest.find(')')?].trim()
    } else {
        expr
    };
    let word = |c: char| c.is_alphanumeric() || c == '_';
    for segment in chain.split('|') {
        let segment = segment.trim();
        if segment == "." || segment.starts_with('$') || is_dot_as_var(segment) {
            continue;
        }
        // (\.[\w]+|\.\[[^\]]+\])(\.[\w]+|\[[^\]]+\]|\.\[[^\]]+\])*, anchored.
        let b = segment.as_bytes();
        let mut i = 0;
        let mut parts = 0;
        loop {
            let rest = &segment[i..];
            let step = if let Some(r) = rest.strip_prefix('.') {
                let w: usize = r.chars().take_while(|c| word(*c)).map(char::len_utf8).sum();
                if w > 0 {
                    Some(1 + w)
                } else {
                    bracket(r).map(|n| 1 + n)
                }
            } else if parts > 0 && b.get(i) == Some(&b'[') {
                bracket(rest)
            } else {
                None
            };
            match step {
                Some(n) => {
                    i += n;
                    parts += 1;
                }
                None => break,
            }
        }
        if parts > 0 {
            return Some(segment[..i].trim().to_string());
        }
    }
    None
}

/// Length of `[...]` (one or more non-`]` characters) at the start of `s`.
fn bracket(s: &str) -> Option<usize> {
    let inner = s.strip_prefix('[')?;
    let close = inner.find(']')?;
    (close > 0).then_some(close + 2)
}

/// `^\.\s+as\s+\$\w+`
fn is_dot_as_var(s: &str) -> bool {
    let Some(r) = s.strip_prefix('.') else {
        return false;
    };
    let t = r.trim_start();
    if t.len() == r.len() {
        return false;
    }
    let Some(r) = t.strip_prefix("as") else {
        return false;
    };
    let t = r.trim_start();
    t.len() < r.len()
        && t.strip_prefix('$')
            .and_then(|v| v.chars().next())
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Ocean skips an entity whose identifier or blueprint is falsy in Python:
/// null, false, 0, "", [] or {}.
fn is_blank(json: &str) -> bool {
    matches!(json, "null" | "false" | "0" | "\"\"" | "[]" | "{}")
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// An [`Explained`] for one compiled expression (`None`: it does not compile,
/// and `invalid` says why).
fn explained(field: &str, source: &str, filter: Option<&Filter>) -> Explained {
    let (engine, why) = match filter {
        Some(f) => match f.declined() {
            None => (Engine::Fast, "in the fast subset".to_string()),
            Some(d) => (Engine::Jaq, d.to_string()),
        },
        None => (Engine::Invalid, String::new()),
    };
    Explained {
        field: field.to_string(),
        expression: source.to_string(),
        engine,
        why,
    }
}

impl Expr {
    fn first(&self, input: &Input<'_>) -> Outcome {
        match &self.eval {
            Eval::Filter(f) => f.first(input),
            Eval::Invalid(e) => Outcome::Error(e.clone()),
        }
    }

    fn explain(&self, field: &str, out: &mut Vec<Explained>) {
        out.push(match &self.eval {
            Eval::Filter(f) => explained(field, &self.source, Some(f)),
            Eval::Invalid(e) => Explained {
                why: e.clone(),
                ..explained(field, &self.source, None)
            },
        });
    }

    /// The field's JSON value; null (recorded as a misconfiguration) when it
    /// failed, yielded nothing, or yielded null.
    fn value(&self, input: &Input<'_>, mis: &mut Vec<Misconfiguration>) -> String {
        let (json, why) = match self.first(input) {
            Outcome::Json(j) if j == "null" => (j, Some("null result".to_string())),
            Outcome::Json(j) => (j, None),
            Outcome::Empty => ("null".into(), Some("no output".to_string())),
            Outcome::Error(e) => ("null".into(), Some(e)),
        };
        if let Some(message) = why {
            mis.push(Misconfiguration {
                field: self.path.clone(),
                expression: self.source.clone(),
                message,
            });
        }
        json
    }
}

impl Field {
    fn explain(&self, out: &mut Vec<Explained>) {
        match self {
            Field::Expr(e) => e.explain(&e.path, out),
            Field::Search(node) => node.explain(out),
        }
    }

    fn eval(&self, input: &Input<'_>, mis: &mut Vec<Misconfiguration>) -> String {
        match self {
            Field::Expr(e) => e.value(input, mis),
            Field::Search(node) => {
                let mut s = String::new();
                node.write(input, mis, &mut s);
                s
            }
        }
    }
}

impl SearchNode {
    fn explain(&self, out: &mut Vec<Explained>) {
        match self {
            SearchNode::Object(kv) => kv.iter().for_each(|(_, v)| v.explain(out)),
            SearchNode::Array(xs) => xs.iter().for_each(|x| x.explain(out)),
            SearchNode::Literal(_) => {}
            SearchNode::Jq(e) => e.explain(&e.path, out),
        }
    }

    fn write(&self, input: &Input<'_>, mis: &mut Vec<Misconfiguration>, out: &mut String) {
        match self {
            SearchNode::Object(kv) => {
                out.push('{');
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_out::write_str(out, k);
                    out.push(':');
                    v.write(input, mis, out);
                }
                out.push('}');
            }
            SearchNode::Array(xs) => {
                out.push('[');
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    x.write(input, mis, out);
                }
                out.push(']');
            }
            SearchNode::Literal(l) => out.push_str(l),
            SearchNode::Jq(e) => out.push_str(&e.value(input, mis)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(mappings: &str) -> String {
        format!(
            r#"{{"kind":"K","selector":{{"query":"true"}},"port":{{"entity":{{"mappings":{mappings}}}}}}}"#
        )
    }

    #[test]
    fn maps_fields_and_records_nulls() {
        let m = Mapping::compile(&resource(
            r#"{"identifier":".id","blueprint":"\"bp\"","properties":{"a":".a","b":".missing"}}"#,
        ))
        .unwrap();
        let out = m.map_item(r#"{"id":"x","a":[1,2]}"#).unwrap();
        assert_eq!(out.entities.len(), 1);
        let record = &out.entities[0];
        assert_eq!(
            (record.blueprint.as_str(), record.identifier.as_str()),
            ("bp", "x")
        );
        assert!(!record.body.contains("blueprint"), "{}", record.body);
        // The host puts the blueprint back in front of the body (`catalog::port::Entity`).
        let e: Value = serde_json::from_str(&record.body).unwrap();
        assert_eq!(e["identifier"], "x");
        assert_eq!(e["properties"]["a"], serde_json::json!([1, 2]));
        assert!(e["properties"]["b"].is_null());
        assert_eq!(out.misconfigured.len(), 1);
        assert_eq!(out.misconfigured[0].field, "properties.b");
    }

    #[test]
    fn records_carry_relation_targets_and_a_string_blueprint() {
        let m = Mapping::compile(&resource(
            r#"{"identifier":".id","blueprint":"7","relations":{"one":".a","many":".b","q":"{\"combinator\":\"and\",\"rules\":[]}"}}"#,
        ))
        .unwrap();
        let out = m
            .map_item(r#"{"id":"x","a":"t1","b":["t2",3,"t3"]}"#)
            .unwrap();
        let e = &out.entities[0];
        assert_eq!(
            e.blueprint, "7",
            "a number blueprint becomes its string, as in Ocean"
        );
        assert_eq!(e.relation_targets, ["t1", "t2", "t3"]);
        let m = Mapping::compile(&resource(r#"{"identifier":".id","blueprint":"[1]"}"#)).unwrap();
        assert!(matches!(
            m.map_item(r#"{"id":"x"}"#),
            Err(ItemError::Entity(m)) if m.contains("blueprint must be a string")
        ));
    }

    #[test]
    fn null_identifier_is_skipped() {
        let m =
            Mapping::compile(&resource(r#"{"identifier":".id","blueprint":"\"bp\""}"#)).unwrap();
        let out = m.map_item(r#"{"x":1}"#).unwrap();
        assert!(out.entities.is_empty());
        assert_eq!(out.skipped, 1);
    }

    #[test]
    fn non_boolean_selector_is_an_item_error() {
        let r = r#"{"kind":"K","selector":{"query":".x"},"port":{"entity":{"mappings":{"identifier":".x","blueprint":"\"b\""}}}}"#;
        let m = Mapping::compile(r).unwrap();
        assert!(matches!(
            m.map_item(r#"{"x":"s"}"#),
            Err(ItemError::Selector(_))
        ));
    }

    #[test]
    fn deletion_path_like_ocean() {
        assert_eq!(deletion_path(".Items | map(.x)").as_deref(), Some(".Items"));
        assert_eq!(
            deletion_path(".a.b[0].c | .d").as_deref(),
            Some(".a.b[0].c")
        );
        assert_eq!(
            deletion_path(". as $p | .Props.[\"x\"]").as_deref(),
            Some(".Props.[\"x\"]")
        );
        assert_eq!(
            deletion_path("(.Spec.Items) | .[]").as_deref(),
            Some(".Spec.Items")
        );
        assert_eq!(deletion_path("[.Items[] | select(.a)]"), None);
        assert_eq!(deletion_path("."), None);
    }

    #[test]
    fn explain_names_every_expression_and_its_engine() {
        let m = Mapping::compile(
            r#"{"kind":"K","selector":{"query":".a == 1"},
                "port":{"itemsToParse":".Items | map(.)","entity":{"mappings":{
                  "identifier":".id","title":"[.t][0]","blueprint":"\"bp\"",
                  "team":{"combinator":"\"and\"","rules":[{"property":"\"x\"","value":".t"}]},
                  "properties":{"n":"limit(1; .x)","v":"$x","bad":".a |"},
                  "relations":{"r":".r"}}}}}"#,
        )
        .unwrap();
        let got: Vec<(String, String, Engine, String)> = m
            .explain()
            .into_iter()
            .map(|e| (e.field, e.expression, e.engine, e.why))
            .collect();
        let fast = |f: &str, x: &str| {
            (
                f.into(),
                x.into(),
                Engine::Fast,
                "in the fast subset".into(),
            )
        };
        let jaq = |f: &str, x: &str, why: &str| (f.into(), x.into(), Engine::Jaq, why.into());
        assert_eq!(got[0], fast("selector.query", ".a == 1"));
        assert_eq!(
            got[1],
            jaq(
                "port.itemsToParse",
                ".Items | map(.)",
                "`map` is outside the fast subset"
            )
        );
        assert_eq!(got[2], fast("identifier", ".id"));
        assert_eq!(
            got[3],
            jaq(
                "title",
                "[.t][0]",
                "`[...]` (array construction) is outside the fast subset"
            )
        );
        assert_eq!(got[4], fast("blueprint", "\"bp\""));
        assert_eq!(got[5], fast("team.combinator", "\"and\""));
        assert_eq!(got[6], fast("team.rules.property", "\"x\""));
        assert_eq!(got[7], fast("team.rules.value", ".t"));
        assert_eq!(
            got[8],
            jaq(
                "properties.n",
                "limit(1; .x)",
                "`limit` is outside the fast subset"
            )
        );
        assert_eq!(got[9].2, Engine::Invalid);
        assert!(got[9].3.contains("invalid JQ"), "{:?}", got[9]);
        assert_eq!(got[10].0, "properties.bad");
        assert_eq!(got[10].2, Engine::Invalid);
        assert_eq!(got[11], fast("relations.r", ".r"));
        assert_eq!(got.len(), 12);
        assert_eq!(Engine::Fast.to_string(), "fast");
        assert_eq!(Engine::Invalid.to_string(), "invalid");
    }

    /// One parsed item through several entries gives what mapping the text
    /// through each does, whichever engine evaluates the fields.
    #[test]
    fn one_input_for_several_entries() {
        let fast = Mapping::compile(&resource(
            r#"{"identifier":".id","blueprint":"\"bp\"","properties":{"n":".n"}}"#,
        ))
        .unwrap();
        let slow = Mapping::compile(&resource(
            r#"{"identifier":".id","blueprint":"\"bp\"","properties":{"n":"[.n][0]"}}"#,
        ))
        .unwrap();
        let items = r#"{"kind":"K","selector":{"query":"true"},"port":{"itemsToParse":".xs","entity":{"mappings":{"identifier":".item.k","blueprint":"\"b\""}}}}"#;
        let items = Mapping::compile(items).unwrap();
        let text = r#"{"id":"x","n":1,"xs":[{"k":"a"},{"k":"b"}]}"#;
        let input = Input::new(text).unwrap();
        for m in [&fast, &slow, &items] {
            assert_eq!(m.map_input(&input), m.map_item(text));
        }
        assert_eq!(
            fast.map_input(&input).unwrap().entities,
            slow.map_input(&input).unwrap().entities
        );
        assert_eq!(items.map_input(&input).unwrap().entities.len(), 2);
        assert!(Input::new("[1]").is_err());
    }

    #[test]
    fn invalid_field_jq_keeps_entity() {
        let m = Mapping::compile(&resource(
            r#"{"identifier":".id","blueprint":"\"bp\"","properties":{"j":".t | join('-')"}}"#,
        ))
        .unwrap();
        let out = m.map_item(r#"{"id":"x","t":["a"]}"#).unwrap();
        assert_eq!(out.entities.len(), 1);
        assert!(
            out.misconfigured[0].message.contains("invalid JQ"),
            "{:?}",
            out.misconfigured
        );
    }
}
