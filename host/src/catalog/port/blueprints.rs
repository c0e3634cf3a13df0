//! Blueprints ensured from `mappings/` and the relation-ordered retry of failed entities.
//!
//! Owns: [`PortClient::ensure_blueprints`] (create missing blueprints in relation order, add the
//! properties and relations a user's blueprint lacks, report type conflicts) and
//! [`PortClient::upsert_with_relation_retry`] (bulk upsert, then the entities Port refused for a
//! missing related entity upserted again after the entities they relate to).
//! Must not touch: a user's blueprint beyond adding what is missing (never a delete, never a
//! changed property type, never a narrowed `required` list), and the request machinery itself
//! (every call goes through [`PortClient`]'s send loop and shared budget in `client.rs`).

use std::collections::{BTreeSet, HashMap};

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::PortError;
use super::client::{
    Answer, EntityError, EntityResult, PortClient, UpsertOptions, call_error, encode_segment,
    identifier_of,
};
use super::entity::Entity;

/// What [`PortClient::ensure_blueprints`] did, blueprint by blueprint (identifiers in the
/// order the calls happened).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlueprintReport {
    /// Blueprints that did not exist and were created.
    pub created: Vec<String>,
    /// Existing blueprints that got missing properties or relations added.
    pub extended: Vec<BlueprintExtension>,
    /// Existing blueprints that needed no write.
    pub unchanged: Vec<String>,
    /// Definitions that differ from Port's and were left as Port has them.
    pub conflicts: Vec<BlueprintConflict>,
}

/// The keys added to one existing blueprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlueprintExtension {
    pub blueprint: String,
    pub added_properties: Vec<String>,
    pub added_relations: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictKind {
    /// A property exists with another `type`.
    PropertyType,
    /// A relation exists with another `target`.
    RelationTarget,
}

/// A property or relation that exists in Port with a different type or target than ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlueprintConflict {
    pub blueprint: String,
    /// The property or relation identifier.
    pub key: String,
    pub kind: ConflictKind,
    /// Our definition's type (or target).
    pub wanted: String,
    /// Port's type (or target), which is kept.
    pub found: String,
}

impl PortClient {
    /// Makes sure every blueprint of `blueprints` (Port blueprint JSON, as in
    /// `mappings/blueprints/*.json`) exists in Port, without ever deleting or narrowing one.
    ///
    /// Missing blueprints are created with `POST /v1/blueprints`, a blueprint after the
    /// blueprints of the set its relations target (Port requires relation targets to exist); a
    /// relation that cannot be created yet (a cycle, or a relation to itself) is added by a
    /// `PATCH` once every blueprint exists, as Ocean stages its blueprints. Existing blueprints
    /// get only the properties and relations they lack, by `PATCH /v1/blueprints/{id}` (which
    /// merges those maps key by key); their `required` list is never sent. A property of
    /// another type, or a relation to another target, is reported as a conflict and left alone.
    pub async fn ensure_blueprints(
        &self,
        blueprints: &[Value],
    ) -> Result<BlueprintReport, PortError> {
        let mut ids = Vec::with_capacity(blueprints.len());
        for bp in blueprints {
            let id = bp
                .get("identifier")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    PortError::InvalidInput("a blueprint has no string identifier".into())
                })?;
            if ids.contains(&id) {
                return Err(PortError::InvalidInput(format!(
                    "blueprint \"{id}\" is given twice"
                )));
            }
            ids.push(id);
        }
        let mut existing = Vec::with_capacity(ids.len());
        for id in &ids {
            existing.push(self.get_blueprint(id).await?);
        }

        let mut report = BlueprintReport::default();
        // 1. Create the missing blueprints, relation targets first.
        let missing: Vec<usize> = (0..ids.len()).filter(|&i| existing[i].is_none()).collect();
        let deps: Vec<Vec<usize>> = missing
            .iter()
            .map(|&i| {
                relation_targets(&blueprints[i])
                    .iter()
                    .filter_map(|t| missing.iter().position(|&m| ids[m] == t.as_str()))
                    .collect()
            })
            .collect();
        let (levels, rest) = dependency_order(&deps);
        let order = levels.into_iter().flatten().chain(rest).map(|k| missing[k]);
        let mut present: BTreeSet<&str> = ids
            .iter()
            .zip(&existing)
            .filter(|(_, e)| e.is_some())
            .map(|(id, _)| *id)
            .collect();
        let mut deferred: Vec<(usize, Map<String, Value>)> = Vec::new();
        for i in order {
            let mut body = blueprints[i].clone();
            let mut later = Map::new();
            if let Some(rels) = body.get_mut("relations").and_then(Value::as_object_mut) {
                let not_ready: Vec<String> = rels
                    .iter()
                    .filter(|(_, r)| {
                        let target = r.get("target").and_then(Value::as_str).unwrap_or_default();
                        ids.contains(&target) && !present.contains(target)
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in not_ready {
                    if let Some(r) = rels.remove(&k) {
                        later.insert(k, r);
                    }
                }
            }
            let body = serde_json::to_vec(&body)
                .map_err(|e| PortError::InvalidInput(format!("blueprint {}: {e}", ids[i])))?;
            let answer = self
                .send(Method::POST, "/v1/blueprints", Some(body))
                .await?;
            expect_success(&answer, &format!("POST /v1/blueprints ({})", ids[i]))?;
            present.insert(ids[i]);
            report.created.push(ids[i].to_string());
            if !later.is_empty() {
                deferred.push((i, later));
            }
        }
        for (i, rels) in deferred {
            self.patch_blueprint(ids[i], json!({ "relations": rels }))
                .await?;
        }

        // 2. Extend the existing ones with what they lack.
        for (i, found) in existing.iter().enumerate() {
            let Some(found) = found else { continue };
            let id = ids[i];
            let diff = diff_blueprint(id, &blueprints[i], found);
            report.conflicts.extend(diff.conflicts);
            if diff.properties.is_empty() && diff.relations.is_empty() {
                report.unchanged.push(id.to_string());
                continue;
            }
            let mut patch = Map::new();
            if !diff.properties.is_empty() {
                patch.insert(
                    "schema".into(),
                    json!({ "properties": diff.properties.clone() }),
                );
            }
            if !diff.relations.is_empty() {
                patch.insert("relations".into(), Value::Object(diff.relations.clone()));
            }
            self.patch_blueprint(id, Value::Object(patch)).await?;
            report.extended.push(BlueprintExtension {
                blueprint: id.to_string(),
                added_properties: diff.properties.keys().cloned().collect(),
                added_relations: diff.relations.keys().cloned().collect(),
            });
        }
        Ok(report)
    }

    /// Upserts `entities` (each naming its blueprint) with
    /// [`PortClient::upsert_bulk`], one blueprint at a time in order of first appearance, then
    /// upserts again the entities Port refused because a related entity was missing (a
    /// per-entity `404`/`not_found`, which Ocean also reads as an unmet dependency): an entity
    /// after the failed entities it relates to, matched by (blueprint, identifier) through the
    /// relation targets of its blueprint. Entities of one dependency level go together in bulk
    /// calls. Entities on a relation cycle (and those relating to them) are retried last, one
    /// by one in input order, as Ocean's `EntityTopologicalSorter` falls back on a cycle.
    /// `opts` applies to every call. Returns one result per input entity, in input order; an
    /// entity without a blueprint fails without a call. Only the failed entities' bodies are
    /// read (for their relations).
    pub async fn upsert_with_relation_retry(
        &self,
        entities: &[Entity],
        opts: UpsertOptions,
    ) -> Result<Vec<EntityResult>, PortError> {
        let mut results: Vec<Option<EntityResult>> = vec![None; entities.len()];
        let mut valid = Vec::with_capacity(entities.len());
        for (i, e) in entities.iter().enumerate() {
            if blueprint_of(e).is_some() {
                valid.push(i);
            } else {
                results[i] = Some(EntityResult {
                    identifier: identifier_of(e),
                    outcome: Err(EntityError {
                        status: None,
                        code: None,
                        message: "entity has no string \"blueprint\" field".into(),
                    }),
                });
            }
        }
        self.upsert_grouped(entities, &valid, opts, &mut results)
            .await?;

        let failed: Vec<usize> = valid
            .iter()
            .copied()
            .filter(|&i| {
                results[i]
                    .as_ref()
                    .is_some_and(|r| r.outcome.as_ref().is_err_and(is_missing_related))
            })
            .collect();
        if !failed.is_empty() {
            let mut targets: HashMap<String, HashMap<String, String>> = HashMap::new();
            for &i in &failed {
                let bp = blueprint_of(&entities[i]).unwrap_or_default();
                if !targets.contains_key(bp) {
                    let defs = match self.get_blueprint(bp).await? {
                        Some(def) => relation_target_map(&def),
                        None => HashMap::new(),
                    };
                    targets.insert(bp.to_string(), defs);
                }
            }
            let deps = failed_dependencies(entities, &failed, &targets);
            let (levels, rest) = dependency_order(&deps);
            for level in levels {
                let indices: Vec<usize> = level.into_iter().map(|k| failed[k]).collect();
                self.upsert_grouped(entities, &indices, opts, &mut results)
                    .await?;
            }
            for k in rest {
                self.upsert_grouped(entities, &[failed[k]], opts, &mut results)
                    .await?;
            }
        }
        Ok(results
            .into_iter()
            .zip(entities)
            .map(|(r, e)| {
                r.unwrap_or_else(|| EntityResult {
                    identifier: identifier_of(e),
                    outcome: Err(EntityError {
                        status: None,
                        code: None,
                        message: "no result for this entity".into(),
                    }),
                })
            })
            .collect())
    }

    /// Bulk-upserts the entities at `indices`, one call group per blueprint (in order of first
    /// appearance), writing their results into `results`.
    async fn upsert_grouped(
        &self,
        entities: &[Entity],
        indices: &[usize],
        opts: UpsertOptions,
        results: &mut [Option<EntityResult>],
    ) -> Result<(), PortError> {
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        for &i in indices {
            let bp = blueprint_of(&entities[i]).unwrap_or_default();
            match groups.iter_mut().find(|(b, _)| *b == bp) {
                Some((_, members)) => members.push(i),
                None => groups.push((bp, vec![i])),
            }
        }
        for (bp, members) in groups {
            // A copy of each record: this is the retry path, taken by few entities.
            let batch: Vec<Entity> = members.iter().map(|&i| entities[i].clone()).collect();
            let out = self.upsert_bulk(bp, &batch, opts).await?;
            for (i, r) in members.into_iter().zip(out) {
                results[i] = Some(r);
            }
        }
        Ok(())
    }

    /// `GET /v1/blueprints/{id}`: the blueprint, or `None` when Port answers 404.
    async fn get_blueprint(&self, id: &str) -> Result<Option<Value>, PortError> {
        let path = format!("/v1/blueprints/{}", encode_segment(id));
        let answer = self.send(Method::GET, &path, None).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        expect_success(&answer, &format!("GET {path}"))?;
        let body: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| PortError::InvalidResponse(format!("GET {path}: {e}")))?;
        match body.get("blueprint") {
            Some(bp @ Value::Object(_)) => Ok(Some(bp.clone())),
            _ => Err(PortError::InvalidResponse(format!(
                "GET {path}: no \"blueprint\" object in the answer"
            ))),
        }
    }

    /// `PATCH /v1/blueprints/{id}` with a partial blueprint.
    async fn patch_blueprint(&self, id: &str, patch: Value) -> Result<(), PortError> {
        let path = format!("/v1/blueprints/{}", encode_segment(id));
        let body = serde_json::to_vec(&patch)
            .map_err(|e| PortError::InvalidInput(format!("blueprint {id}: {e}")))?;
        let answer = self.send(Method::PATCH, &path, Some(body)).await?;
        expect_success(&answer, &format!("PATCH {path}"))
    }
}

fn expect_success(answer: &Answer, request: &str) -> Result<(), PortError> {
    if (200..300).contains(&answer.status) {
        return Ok(());
    }
    let err = call_error(answer.status, &answer.body);
    Err(PortError::Rejected {
        request: request.to_string(),
        status: answer.status,
        message: match err.code {
            Some(code) => format!("{code}: {}", err.message),
            None => err.message,
        },
    })
}

/// A per-entity failure that says a related entity was missing: Port's `404` with
/// `not_found` (or no code).
/// Port's per-entity answer when a related entity does not exist yet (Ocean reads it so too).
pub fn is_missing_related(e: &EntityError) -> bool {
    e.status == Some(404) && e.code.as_deref().is_none_or(|c| c == "not_found")
}

fn blueprint_of(entity: &Entity) -> Option<&str> {
    Some(entity.blueprint.as_str()).filter(|b| !b.is_empty())
}

/// The blueprints a blueprint's relations target.
fn relation_targets(bp: &Value) -> Vec<String> {
    relation_target_map(bp).into_values().collect()
}

/// Relation identifier → target blueprint.
fn relation_target_map(bp: &Value) -> HashMap<String, String> {
    bp.get("relations")
        .and_then(Value::as_object)
        .map(|rels| {
            rels.iter()
                .filter_map(|(k, r)| {
                    let t = r.get("target").and_then(Value::as_str)?;
                    Some((k.clone(), t.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What an existing blueprint lacks compared to ours, and where the two disagree.
struct BlueprintDiff {
    properties: Map<String, Value>,
    relations: Map<String, Value>,
    conflicts: Vec<BlueprintConflict>,
}

fn diff_blueprint(id: &str, wanted: &Value, found: &Value) -> BlueprintDiff {
    let map_at = |v: &Value, path: &[&str]| -> Map<String, Value> {
        let mut cur = v;
        for p in path {
            match cur.get(p) {
                Some(next) => cur = next,
                None => return Map::new(),
            }
        }
        cur.as_object().cloned().unwrap_or_default()
    };
    let mut diff = BlueprintDiff {
        properties: Map::new(),
        relations: Map::new(),
        conflicts: Vec::new(),
    };
    let have_props = map_at(found, &["schema", "properties"]);
    for (key, def) in map_at(wanted, &["schema", "properties"]) {
        match have_props.get(&key) {
            None => {
                diff.properties.insert(key, def);
            }
            Some(have) => {
                let (w, f) = (text_at(&def, "type"), text_at(have, "type"));
                if w != f {
                    diff.conflicts.push(BlueprintConflict {
                        blueprint: id.to_string(),
                        key,
                        kind: ConflictKind::PropertyType,
                        wanted: w,
                        found: f,
                    });
                }
            }
        }
    }
    let have_rels = map_at(found, &["relations"]);
    for (key, def) in map_at(wanted, &["relations"]) {
        match have_rels.get(&key) {
            None => {
                diff.relations.insert(key, def);
            }
            Some(have) => {
                let (w, f) = (text_at(&def, "target"), text_at(have, "target"));
                if w != f {
                    diff.conflicts.push(BlueprintConflict {
                        blueprint: id.to_string(),
                        key,
                        kind: ConflictKind::RelationTarget,
                        wanted: w,
                        found: f,
                    });
                }
            }
        }
    }
    diff
}

fn text_at(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// For each failed entity (positions into `failed`), the positions of the failed entities it
/// relates to. A relation is matched by (target blueprint, identifier) when the entity's
/// blueprint defines it, else by identifier alone; search-query relation values are skipped.
fn failed_dependencies(
    entities: &[Entity],
    failed: &[usize],
    targets: &HashMap<String, HashMap<String, String>>,
) -> Vec<Vec<usize>> {
    let keys: Vec<(&str, String)> = failed
        .iter()
        .map(|&i| {
            (
                blueprint_of(&entities[i]).unwrap_or_default(),
                identifier_of(&entities[i]),
            )
        })
        .collect();
    keys.iter()
        .enumerate()
        .map(|(k, (bp, _))| {
            let mut deps = BTreeSet::new();
            let rels = entities[failed[k]].relations();
            for (name, value) in rels.iter().flatten() {
                let target_bp = targets.get(*bp).and_then(|m| m.get(name.as_str()));
                let ids: Vec<&str> = match value {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                };
                for t in ids {
                    for (j, (jbp, jid)) in keys.iter().enumerate() {
                        let bp_ok = target_bp.is_none_or(|tb| tb == jbp);
                        if j != k && jid == t && bp_ok {
                            deps.insert(j);
                        }
                    }
                }
            }
            deps.into_iter().collect()
        })
        .collect()
}

/// Orders nodes `0..deps.len()` (`deps[n]`: the nodes `n` must come after) into levels whose
/// nodes depend only on earlier levels, each level in index order; the nodes on a cycle, or
/// depending on one, come back separately in index order.
fn dependency_order(deps: &[Vec<usize>]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut done = vec![false; deps.len()];
    let mut levels = Vec::new();
    loop {
        let level: Vec<usize> = (0..deps.len())
            .filter(|&n| !done[n] && deps[n].iter().all(|&d| done[d]))
            .collect();
        if level.is_empty() {
            break;
        }
        for &n in &level {
            done[n] = true;
        }
        levels.push(level);
    }
    let rest = (0..deps.len()).filter(|&n| !done[n]).collect();
    (levels, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_levels_and_cycles() {
        // 0 -> 1 -> 2; 3 alone.
        let (levels, rest) = dependency_order(&[vec![1], vec![2], vec![], vec![]]);
        assert_eq!(levels, vec![vec![2, 3], vec![1], vec![0]]);
        assert!(rest.is_empty());
        // 0 <-> 1, 2 depends on 0, 3 alone.
        let (levels, rest) = dependency_order(&[vec![1], vec![0], vec![0], vec![]]);
        assert_eq!(levels, vec![vec![3]]);
        assert_eq!(rest, vec![0, 1, 2]);
    }

    #[test]
    fn diff_adds_missing_and_reports_type_conflicts() {
        let wanted = json!({"identifier": "x", "schema": {"properties": {
            "a": {"type": "string"}, "b": {"type": "number"}, "c": {"type": "string"}}},
            "relations": {"r": {"target": "y", "required": false, "many": false},
                          "s": {"target": "z", "required": false, "many": false}}});
        let found = json!({"identifier": "x", "schema": {"properties": {
            "a": {"type": "string", "title": "user's"}, "b": {"type": "string"}, "mine": {"type": "boolean"}}},
            "relations": {"s": {"target": "w", "required": false, "many": false}}});
        let d = diff_blueprint("x", &wanted, &found);
        assert_eq!(d.properties.keys().collect::<Vec<_>>(), vec!["c"]);
        assert_eq!(d.relations.keys().collect::<Vec<_>>(), vec!["r"]);
        assert_eq!(d.conflicts.len(), 2);
        assert_eq!(
            (
                d.conflicts[0].kind,
                d.conflicts[0].wanted.as_str(),
                d.conflicts[0].found.as_str()
            ),
            (ConflictKind::PropertyType, "number", "string")
        );
        assert_eq!(d.conflicts[1].kind, ConflictKind::RelationTarget);
    }

    #[test]
    fn dependencies_match_blueprint_and_identifier() {
        let entities = Entity::from_values(&[
            json!({"identifier": "svc", "blueprint": "s", "relations": {"acct": "a1", "peers": ["p"]}}),
            json!({"identifier": "a1", "blueprint": "acct"}),
            json!({"identifier": "a1", "blueprint": "other"}),
            json!({"identifier": "p", "blueprint": "s"}),
        ])
        .unwrap();
        let mut targets = HashMap::new();
        targets.insert(
            "s".to_string(),
            HashMap::from([("acct".to_string(), "acct".to_string())]),
        );
        let deps = failed_dependencies(&entities, &[0, 1, 2, 3], &targets);
        // `acct` is known to target blueprint `acct`; `peers` is unknown, matched by identifier.
        assert_eq!(deps, vec![vec![1, 3], vec![], vec![], vec![]]);
        assert!(is_missing_related(&EntityError {
            status: Some(404),
            code: Some("not_found".into()),
            message: String::new(),
        }));
        assert!(!is_missing_related(&EntityError {
            status: Some(422),
            code: Some("invalid_request".into()),
            message: String::new(),
        }));
    }
}
