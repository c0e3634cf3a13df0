//! Port's data-model rules: blueprints (identifiers, relation targets, `many && required`) and
//! entity writes (upsert / merge / replace, property types and formats against the blueprint
//! schema, relation cardinality and targets, placeholders for missing related entities,
//! ownership by User-Agent, deletes with dependents).
//!
//! Owns: every change to blueprints and entities in the [`Snapshot`], and the compiled property
//! validators. Must not touch: HTTP (routes turn results into responses), the request-schema
//! checks of the OpenAPI spec (`spec.rs`, run before anything here), integrations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::http::StatusCode;
use jsonschema::Validator;
use serde_json::{Map, Value, json};

use crate::config::DatasourcePolicy;
use crate::error::{self, ApiError, ApiResult};
use crate::model::{Entity, Snapshot};
use crate::search;

/// Who writes, and when.
pub struct WriteCtx<'a> {
    /// The request's User-Agent; becomes the entity's `$datasource`.
    pub datasource: Option<&'a str>,
    /// The machine user behind the token (its clientId): `createdBy`/`updatedBy`.
    pub user: &'a str,
    pub now: String,
    pub policy: DatasourcePolicy,
}

/// How an entity body is applied.
#[derive(Clone, Copy, Debug)]
pub enum WriteMode {
    /// `POST .../entities` and `.../entities/bulk`.
    Upsert {
        upsert: bool,
        merge: bool,
        create_missing: bool,
        validation_only: bool,
    },
    /// `PATCH .../entities/{id}`: merge into an existing entity.
    Patch { create_missing: bool },
    /// `PUT .../entities/{id}`: replace an existing entity.
    Replace { create_missing: bool },
}

impl WriteMode {
    fn create_missing(self) -> bool {
        match self {
            WriteMode::Upsert { create_missing, .. }
            | WriteMode::Patch { create_missing }
            | WriteMode::Replace { create_missing } => create_missing,
        }
    }
}

/// A successful entity write.
pub struct Written {
    pub identifier: String,
    pub created: bool,
    pub entity: Value,
}

/// A failed entity write: the per-index error of a bulk call, or the whole answer of a single
/// one.
#[derive(Debug)]
pub struct EntityError {
    pub identifier: String,
    pub error: ApiError,
}

/// Compiled checks of one blueprint's `schema.properties`.
struct PropertyRules {
    validator: Validator,
    defaults: Map<String, Value>,
}

#[derive(Default)]
pub struct Catalog {
    pub snap: Snapshot,
    rules: HashMap<String, Arc<PropertyRules>>,
    generated_ids: u64,
}

const META_KEYS: [&str; 4] = ["createdAt", "updatedAt", "createdBy", "updatedBy"];

impl Catalog {
    pub fn new(snap: Snapshot) -> Self {
        Self {
            snap,
            rules: HashMap::new(),
            generated_ids: 0,
        }
    }

    pub fn replace_snapshot(&mut self, snap: Snapshot) {
        self.snap = snap;
        self.rules.clear();
    }

    // ----- blueprints -------------------------------------------------------------------

    pub fn blueprint(&self, id: &str) -> ApiResult<&Value> {
        self.snap
            .blueprints
            .get(id)
            .ok_or_else(|| ApiError::blueprint_not_found(id))
    }

    pub fn create_blueprint(&mut self, mut body: Value, ctx: &WriteCtx<'_>) -> ApiResult<Value> {
        let id = body["identifier"].as_str().unwrap_or_default().to_string();
        if self.snap.blueprints.contains_key(&id) {
            return Err(ApiError::conflict(format!(
                "A blueprint with identifier \"{id}\" already exists"
            )));
        }
        normalize_blueprint(&mut body);
        let m = body.as_object_mut().expect("schema-checked object");
        m.insert("createdAt".into(), json!(ctx.now));
        m.insert("createdBy".into(), json!(ctx.user));
        m.insert("updatedAt".into(), json!(ctx.now));
        m.insert("updatedBy".into(), json!(ctx.user));
        self.check_blueprint(&id, &body)?;
        self.snap.blueprints.insert(id.clone(), body.clone());
        self.rules.remove(&id);
        Ok(body)
    }

    /// `PUT`: replaces everything but the identifier and the creation stamps.
    pub fn replace_blueprint(
        &mut self,
        id: &str,
        mut body: Value,
        ctx: &WriteCtx<'_>,
    ) -> ApiResult<Value> {
        let old = self.blueprint(id)?.clone();
        normalize_blueprint(&mut body);
        let m = body.as_object_mut().expect("schema-checked object");
        m.insert("identifier".into(), json!(id));
        for k in ["createdAt", "createdBy"] {
            m.insert(k.into(), old[k].clone());
        }
        m.insert("updatedAt".into(), json!(ctx.now));
        m.insert("updatedBy".into(), json!(ctx.user));
        self.check_blueprint(id, &body)?;
        self.snap.blueprints.insert(id.to_string(), body.clone());
        self.rules.remove(id);
        Ok(body)
    }

    /// `PATCH`: top-level keys replace, except that the property, relation, calculation,
    /// mirror and aggregation maps merge key by key (a patch adds or changes entries and never
    /// drops the ones it does not mention).
    pub fn patch_blueprint(
        &mut self,
        id: &str,
        body: Value,
        ctx: &WriteCtx<'_>,
    ) -> ApiResult<Value> {
        let mut bp = self.blueprint(id)?.clone();
        let target = bp.as_object_mut().expect("stored blueprints are objects");
        for (k, v) in body.as_object().cloned().unwrap_or_default() {
            match (k.as_str(), v) {
                ("identifier", _) => {}
                ("schema", Value::Object(schema)) => {
                    let dest = target
                        .entry("schema")
                        .or_insert_with(|| json!({"properties": {}}));
                    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                        merge_map(&mut dest["properties"], props);
                    }
                    if let Some(req) = schema.get("required") {
                        dest["required"] = req.clone();
                    }
                }
                (
                    "relations"
                    | "calculationProperties"
                    | "mirrorProperties"
                    | "aggregationProperties",
                    Value::Object(entries),
                ) => merge_map(target.entry(k).or_insert_with(|| json!({})), &entries),
                (_, v) => {
                    target.insert(k, v);
                }
            }
        }
        target.insert("updatedAt".into(), json!(ctx.now));
        target.insert("updatedBy".into(), json!(ctx.user));
        normalize_blueprint(&mut bp);
        self.check_blueprint(id, &bp)?;
        self.snap.blueprints.insert(id.to_string(), bp.clone());
        self.rules.remove(id);
        Ok(bp)
    }

    pub fn delete_blueprint(&mut self, id: &str) -> ApiResult<()> {
        self.blueprint(id)?;
        if self.snap.entities.get(id).is_some_and(|m| !m.is_empty()) {
            return Err(ApiError::conflict(format!(
                "Blueprint \"{id}\" still has entities; delete them first"
            )));
        }
        if let Some((other, rel)) = self.snap.blueprints.iter().find_map(|(b, def)| {
            relation_defs(def)
                .into_iter()
                .find(|(_, r)| r.target == id && b != id)
                .map(|(name, _)| (b.clone(), name))
        }) {
            return Err(ApiError::conflict(format!(
                "Blueprint \"{other}\" has relation \"{rel}\" targeting \"{id}\""
            )));
        }
        self.snap.blueprints.remove(id);
        self.snap.entities.remove(id);
        self.rules.remove(id);
        Ok(())
    }

    /// Rules beyond the request schema: relation targets exist, no `many && required`,
    /// `schema.required` names defined properties, property definitions compile.
    fn check_blueprint(&self, id: &str, bp: &Value) -> ApiResult<()> {
        for (name, rel) in relation_defs(bp) {
            if rel.many && rel.required {
                return Err(ApiError::invalid(format!(
                    "body/relations/{name}: a relation cannot be both many and required"
                )));
            }
            if rel.target != id && !self.snap.blueprints.contains_key(&rel.target) {
                return Err(ApiError::not_found(format!(
                    "Relation \"{name}\" targets blueprint \"{}\", which was not found",
                    rel.target
                )));
            }
        }
        let props = bp
            .pointer("/schema/properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(req) = bp.pointer("/schema/required").and_then(Value::as_array) {
            for r in req {
                let r = r.as_str().unwrap_or_default();
                if !props.contains_key(r) {
                    return Err(ApiError::invalid(format!(
                        "body/schema/required: \"{r}\" is not a property of the blueprint"
                    )));
                }
            }
        }
        PropertyRules::compile(bp)
            .map(|_| ())
            .map_err(|e| ApiError::invalid(format!("body/schema/properties: {e}")))
    }

    fn property_rules(&mut self, bp: &str) -> ApiResult<Arc<PropertyRules>> {
        if let Some(r) = self.rules.get(bp) {
            return Ok(r.clone());
        }
        let def = self.blueprint(bp)?;
        let rules = Arc::new(
            PropertyRules::compile(def)
                .map_err(|e| ApiError::invalid(format!("blueprint \"{bp}\": {e}")))?,
        );
        self.rules.insert(bp.to_string(), rules.clone());
        Ok(rules)
    }

    // ----- entities -------------------------------------------------------------------------

    pub fn entity_json(&self, bp: &str, id: &str) -> ApiResult<Value> {
        self.blueprint(bp)?;
        self.snap
            .entity(bp, id)
            .map(Entity::to_json)
            .ok_or_else(|| entity_not_found(bp, id))
    }

    /// Applies one entity body (already checked against the route's request schema). `path_id`
    /// is the identifier from the path for PATCH and PUT.
    pub fn write_entity(
        &mut self,
        bp: &str,
        body: &Map<String, Value>,
        path_id: Option<&str>,
        mode: WriteMode,
        ctx: &WriteCtx<'_>,
    ) -> Result<Written, EntityError> {
        let fail = |identifier: &str, error: ApiError| EntityError {
            identifier: identifier.to_string(),
            error,
        };
        let bp_def = self.blueprint(bp).map_err(|e| fail("unknown", e))?.clone();

        // 1. Which entity.
        let id = match (path_id, body.get("identifier")) {
            (Some(id), _) => id.to_string(),
            (None, Some(Value::String(s))) => s.clone(),
            (None, Some(q @ Value::Object(_))) => {
                let ids =
                    search::matching_ids(&self.snap, bp, q).map_err(|e| fail("unknown", e))?;
                match ids.as_slice() {
                    [one] => one.clone(),
                    [] => {
                        return Err(fail(
                            "unknown",
                            ApiError::not_found(format!(
                                "No entity of blueprint \"{bp}\" matches the identifier search query"
                            )),
                        ));
                    }
                    many => {
                        return Err(fail(
                            "unknown",
                            ApiError::invalid(format!(
                                "The identifier search query matches {} entities of blueprint \"{bp}\"; it must match exactly one",
                                many.len()
                            )),
                        ));
                    }
                }
            }
            (None, _) => {
                self.generated_ids += 1;
                format!("e_{:08x}{:08x}", std::process::id(), self.generated_ids)
            }
        };
        let existing = self.snap.entity(bp, &id).cloned();
        let merge = match mode {
            WriteMode::Upsert { upsert, merge, .. } => {
                if existing.is_some() && !upsert {
                    return Err(fail(
                        &id,
                        ApiError::conflict(format!(
                            "Entity with identifier \"{id}\" already exists in blueprint \"{bp}\""
                        )),
                    ));
                }
                merge && existing.is_some()
            }
            WriteMode::Patch { .. } | WriteMode::Replace { .. } => {
                if existing.is_none() {
                    return Err(fail(&id, entity_not_found(bp, &id)));
                }
                matches!(mode, WriteMode::Patch { .. })
            }
        };

        // 2. The new state.
        let mut e = match (&existing, merge) {
            (Some(old), true) => old.clone(),
            _ => Entity {
                identifier: id.clone(),
                blueprint: bp.to_string(),
                title: None,
                icon: None,
                team: Vec::new(),
                properties: Map::new(),
                relations: Map::new(),
                created_at: existing
                    .as_ref()
                    .map_or_else(|| ctx.now.clone(), |o| o.created_at.clone()),
                created_by: existing
                    .as_ref()
                    .map_or_else(|| ctx.user.to_string(), |o| o.created_by.clone()),
                updated_at: ctx.now.clone(),
                updated_by: ctx.user.to_string(),
                datasource: None,
            },
        };
        if let Some(t) = body.get("title") {
            e.title = t.as_str().map(str::to_string);
        }
        if let Some(i) = body.get("icon") {
            e.icon = i.as_str().map(str::to_string);
        }
        match body.get("team") {
            None => {}
            Some(Value::Null) => e.team.clear(),
            Some(Value::String(t)) => e.team = vec![t.clone()],
            Some(Value::Array(ts)) => {
                e.team = ts
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
            }
            Some(_) => {
                return Err(fail(
                    &id,
                    ApiError::invalid(
                        "team: search queries for teams are not supported by the fake",
                    ),
                ));
            }
        }
        let rules = self.property_rules(bp).map_err(|e| fail(&id, e))?;
        let given_props = body.get("properties").and_then(Value::as_object);
        if merge {
            for (k, v) in given_props.into_iter().flatten() {
                e.properties.insert(k.clone(), v.clone());
            }
        } else {
            e.properties = given_props.cloned().unwrap_or_default();
            for (k, v) in &rules.defaults {
                e.properties.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let given_rels = body.get("relations").and_then(Value::as_object);
        if merge {
            for (k, v) in given_rels.into_iter().flatten() {
                e.relations.insert(k.clone(), v.clone());
            }
        } else {
            e.relations = given_rels.cloned().unwrap_or_default();
        }

        // 3. Properties against the blueprint schema.
        let props = Value::Object(e.properties.clone());
        let errors: Vec<String> = rules
            .validator
            .iter_errors(&props)
            .take(3)
            .map(|err| {
                let text = if err.instance().is_object() || err.instance().is_array() {
                    err.masked_with("value").to_string()
                } else {
                    err.to_string()
                };
                format!("properties{}: {text}", err.instance_path().as_str())
            })
            .collect();
        if !errors.is_empty() {
            return Err(fail(&id, ApiError::invalid(errors.join("; "))));
        }

        // 4. Relations: defined, right cardinality, targets exist.
        let defs = relation_defs(&bp_def);
        let mut missing: Vec<(String, String, String)> = Vec::new(); // (relation, target bp, id)
        let names: Vec<String> = e.relations.keys().cloned().collect();
        for name in names {
            let Some(def) = defs.get(&name) else {
                return Err(fail(
                    &id,
                    ApiError::invalid(format!(
                        "relations/{name}: relation \"{name}\" is not defined in blueprint \"{bp}\""
                    )),
                ));
            };
            let value = e.relations[&name].clone();
            let resolved = match value {
                Value::Null => Value::Null,
                Value::String(s) if def.many => {
                    return Err(fail(
                        &id,
                        ApiError::invalid(format!(
                            "relations/{name}: \"{s}\" must be an array (relation \"{name}\" is many)"
                        )),
                    ));
                }
                Value::String(s) => Value::String(s),
                Value::Array(_) if !def.many => {
                    return Err(fail(
                        &id,
                        ApiError::invalid(format!(
                            "relations/{name}: must be a single identifier (relation \"{name}\" is not many)"
                        )),
                    ));
                }
                Value::Array(items) => Value::Array(items),
                q @ Value::Object(_) => {
                    let ids = search::matching_ids(&self.snap, &def.target, &q)
                        .map_err(|err| fail(&id, err))?;
                    if ids.len() > 100 {
                        return Err(fail(
                            &id,
                            ApiError::invalid(format!(
                                "relations/{name}: the search query matches {} entities (at most 100)",
                                ids.len()
                            )),
                        ));
                    }
                    if def.many {
                        json!(ids)
                    } else if ids.len() == 1 {
                        json!(ids[0])
                    } else if ids.is_empty() {
                        return Err(fail(
                            &id,
                            ApiError::not_found(format!(
                                "relations/{name}: no entity of blueprint \"{}\" matches the search query",
                                def.target
                            )),
                        ));
                    } else {
                        return Err(fail(
                            &id,
                            ApiError::invalid(format!(
                                "relations/{name}: the search query matches {} entities; a single relation needs exactly one",
                                ids.len()
                            )),
                        ));
                    }
                }
                other => other,
            };
            let targets: Vec<String> = match &resolved {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            };
            for t in targets {
                let own = def.target == bp && t == id;
                if !own && self.snap.entity(&def.target, &t).is_none() {
                    missing.push((name.clone(), def.target.clone(), t));
                }
            }
            e.relations.insert(name, resolved);
        }
        for (name, def) in &defs {
            let empty = match e.relations.get(name) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            if def.required && empty {
                return Err(fail(
                    &id,
                    ApiError::invalid(format!("relations must have required property '{name}'")),
                ));
            }
        }
        if let Some((name, target, t)) = missing.first()
            && !mode.create_missing()
        {
            return Err(fail(
                &id,
                ApiError::not_found(format!(
                    "Related entity with identifier \"{t}\" of blueprint \"{target}\" (relation \"{name}\") was not found"
                )),
            ));
        }

        // 5. Write (unless only validating).
        let created = existing.is_none();
        e.updated_at = ctx.now.clone();
        e.updated_by = ctx.user.to_string();
        e.datasource = match (ctx.policy, &existing) {
            (DatasourcePolicy::FirstWriter, Some(old)) => old.datasource.clone(),
            _ => ctx.datasource.map(str::to_string),
        };
        if matches!(
            mode,
            WriteMode::Upsert {
                validation_only: true,
                ..
            }
        ) {
            return Ok(Written {
                identifier: id,
                created,
                entity: e.to_json(),
            });
        }
        for (_, target, t) in missing {
            if self.snap.entity(&target, &t).is_none() {
                let placeholder = Entity {
                    identifier: t.clone(),
                    blueprint: target.clone(),
                    title: None,
                    icon: None,
                    team: Vec::new(),
                    properties: Map::new(),
                    relations: Map::new(),
                    created_at: ctx.now.clone(),
                    updated_at: ctx.now.clone(),
                    created_by: ctx.user.to_string(),
                    updated_by: ctx.user.to_string(),
                    datasource: ctx.datasource.map(str::to_string),
                };
                self.snap
                    .entities
                    .entry(target)
                    .or_default()
                    .insert(t, placeholder);
            }
        }
        let json = e.to_json();
        self.snap
            .entities
            .entry(bp.to_string())
            .or_default()
            .insert(id.clone(), e);
        Ok(Written {
            identifier: id,
            created,
            entity: json,
        })
    }

    /// Deletes `ids` of blueprint `bp`. Unknown ids are skipped; the answer lists the requested
    /// ids that were deleted. Entities that hold a *required* relation to a deleted one are its
    /// dependents: without `delete_dependents` their existence fails the whole call (nothing is
    /// deleted); with it they are deleted too, recursively. Non-required relations pointing at
    /// deleted entities are cleared.
    pub fn delete_entities(
        &mut self,
        bp: &str,
        ids: &[String],
        delete_dependents: bool,
    ) -> ApiResult<Vec<String>> {
        self.blueprint(bp)?;
        let mut doomed: BTreeSet<(String, String)> = ids
            .iter()
            .filter(|id| self.snap.entity(bp, id).is_some())
            .map(|id| (bp.to_string(), id.clone()))
            .collect();
        let required = self.required_relations();
        loop {
            let deps = self.dependents(&doomed, &required);
            if deps.is_empty() {
                break;
            }
            if !delete_dependents {
                let list: Vec<String> = deps
                    .iter()
                    .take(5)
                    .map(|(b, i)| format!("{b}/{i}"))
                    .collect();
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    error::HAS_DEPENDENTS,
                    format!(
                        "Cannot delete: {} dependent entities hold a required relation to it ({}); use delete_dependents=true",
                        deps.len(),
                        list.join(", ")
                    ),
                ));
            }
            doomed.extend(deps);
        }
        for (b, i) in &doomed {
            if let Some(m) = self.snap.entities.get_mut(b) {
                m.remove(i);
            }
        }
        // Clear references to what is gone.
        let gone: HashMap<&str, BTreeSet<&str>> =
            doomed.iter().fold(HashMap::new(), |mut acc, (b, i)| {
                acc.entry(b.as_str()).or_default().insert(i.as_str());
                acc
            });
        let targets: HashMap<String, HashMap<String, String>> = self
            .snap
            .blueprints
            .iter()
            .map(|(b, def)| {
                (
                    b.clone(),
                    relation_defs(def)
                        .into_iter()
                        .map(|(n, r)| (n, r.target))
                        .collect(),
                )
            })
            .collect();
        for (b, ents) in self.snap.entities.iter_mut() {
            let Some(rels) = targets.get(b) else { continue };
            for e in ents.values_mut() {
                for (name, v) in e.relations.iter_mut() {
                    let Some(set) = rels.get(name).and_then(|t| gone.get(t.as_str())) else {
                        continue;
                    };
                    match v {
                        Value::String(s) if set.contains(s.as_str()) => *v = Value::Null,
                        Value::Array(a) => {
                            a.retain(|x| x.as_str().is_none_or(|s| !set.contains(s)))
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(ids
            .iter()
            .filter(|id| doomed.contains(&(bp.to_string(), (*id).clone())))
            .cloned()
            .collect())
    }

    /// Deletes every entity of a blueprint (dependents in other blueprints included).
    pub fn delete_all_entities(&mut self, bp: &str) -> ApiResult<usize> {
        let ids: Vec<String> = self
            .snap
            .entities
            .get(bp)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let n = ids.len();
        self.delete_entities(bp, &ids, true)?;
        Ok(n)
    }

    /// `(source blueprint, relation)` pairs that are required, by target blueprint.
    fn required_relations(&self) -> BTreeMap<String, Vec<(String, String)>> {
        let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (b, def) in &self.snap.blueprints {
            for (name, r) in relation_defs(def) {
                if r.required {
                    out.entry(r.target).or_default().push((b.clone(), name));
                }
            }
        }
        out
    }

    fn dependents(
        &self,
        doomed: &BTreeSet<(String, String)>,
        required: &BTreeMap<String, Vec<(String, String)>>,
    ) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (target_bp, sources) in required {
            for (src_bp, rel) in sources {
                for e in self
                    .snap
                    .entities
                    .get(src_bp)
                    .into_iter()
                    .flat_map(|m| m.values())
                {
                    let key = (src_bp.clone(), e.identifier.clone());
                    if doomed.contains(&key) {
                        continue;
                    }
                    let hits = |id: &str| doomed.contains(&(target_bp.clone(), id.to_string()));
                    let depends = match e.relations.get(rel) {
                        Some(Value::String(s)) => hits(s),
                        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(hits),
                        _ => false,
                    };
                    if depends {
                        out.insert(key);
                    }
                }
            }
        }
        out
    }
}

pub fn entity_not_found(bp: &str, id: &str) -> ApiError {
    ApiError::not_found(format!(
        "Entity with identifier \"{id}\" of blueprint \"{bp}\" was not found"
    ))
}

/// A relation definition of a blueprint.
#[derive(Debug, Clone)]
pub struct RelationDef {
    pub target: String,
    pub many: bool,
    pub required: bool,
}

pub fn relation_defs(bp: &Value) -> BTreeMap<String, RelationDef> {
    bp.get("relations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        RelationDef {
                            target: v["target"].as_str().unwrap_or_default().to_string(),
                            many: v["many"].as_bool().unwrap_or(false),
                            required: v["required"].as_bool().unwrap_or(false),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Fills the maps Port always returns, and drops response-only keys a client echoed back.
fn normalize_blueprint(bp: &mut Value) {
    let Some(m) = bp.as_object_mut() else { return };
    for k in [
        "relations",
        "calculationProperties",
        "mirrorProperties",
        "aggregationProperties",
    ] {
        m.entry(k).or_insert_with(|| json!({}));
    }
    if let Some(schema) = m.get_mut("schema").and_then(Value::as_object_mut) {
        schema.entry("properties").or_insert_with(|| json!({}));
        schema.entry("required").or_insert_with(|| json!([]));
    }
    for k in META_KEYS {
        m.remove(k);
    }
}

fn merge_map(dest: &mut Value, entries: &Map<String, Value>) {
    if !dest.is_object() {
        *dest = json!({});
    }
    let d = dest.as_object_mut().expect("made an object above");
    for (k, v) in entries {
        d.insert(k.clone(), v.clone());
    }
}

/// Port property definition keys that constrain values (others, such as `title`, `icon`,
/// `enumColors`, `spec`, are presentation).
const CONSTRAINT_KEYS: [&str; 13] = [
    "enum",
    "const",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "uniqueItems",
    "multipleOf",
];

/// Formats the fake checks; the others (`markdown`, `yaml`, `user`, `team`, `proto`,
/// `labeled-url`, `blueprints`, `idn-email`) are presentation hints and accept any string.
fn checked_format(f: &str) -> Option<&'static str> {
    match f {
        "date-time" | "timer" => Some("date-time"),
        "url" => Some("url"),
        "email" => Some("email"),
        "ipv4" => Some("ipv4"),
        "ipv6" => Some("ipv6"),
        _ => None,
    }
}

/// One property definition as JSON Schema; `nullable` for properties that are not required
/// (Port accepts `null` for them).
fn property_schema(def: &Value, nullable: bool) -> Value {
    let mut out = Map::new();
    if let Some(t) = def.get("type").and_then(Value::as_str) {
        out.insert(
            "type".into(),
            if nullable {
                json!([t, "null"])
            } else {
                json!(t)
            },
        );
    }
    if let Some(f) = def
        .get("format")
        .and_then(Value::as_str)
        .and_then(checked_format)
    {
        out.insert("format".into(), json!(f));
    }
    for k in CONSTRAINT_KEYS {
        if let Some(v) = def.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    if nullable && let Some(Value::Array(e)) = out.get_mut("enum") {
        e.push(Value::Null);
    }
    if let Some(items) = def.get("items").filter(|i| i.is_object()) {
        out.insert("items".into(), property_schema(items, false));
    }
    Value::Object(out)
}

impl PropertyRules {
    fn compile(bp: &Value) -> Result<Self, String> {
        let props = bp
            .pointer("/schema/properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let required: Vec<String> = bp
            .pointer("/schema/required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut schemas = Map::new();
        let mut defaults = Map::new();
        for (name, def) in &props {
            schemas.insert(name.clone(), property_schema(def, !required.contains(name)));
            if let Some(d) = def.get("default") {
                defaults.insert(name.clone(), d.clone());
            }
        }
        let schema = json!({
            "type": "object",
            "properties": schemas,
            "required": required,
            "additionalProperties": false
        });
        let validator = crate::spec::compile(&schema, &json!({}))?;
        Ok(Self {
            validator,
            defaults,
        })
    }
}
