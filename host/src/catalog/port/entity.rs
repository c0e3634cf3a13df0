//! [`Entity`]: one mapped entity as the catalog side carries it, from the mapping to Port.
//!
//! Owns: the record (blueprint, identifier, relation targets, and the body Port's bulk upsert
//! receives, i.e. the entity without its `blueprint` key), building it from an entity object as
//! `berth map` prints it, and printing it back in that shape. The body is the mapper's bytes:
//! they are hashed and sent as they are, and parsed again only where a caller needs a field the
//! record does not carry (the relations of an entity retried in relation order).
//! Must not touch: HTTP, batching, change detection or the state store.

use std::io::Write;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// One entity for a bulk upsert. `body` is compact JSON of the entity without `blueprint` (the
/// blueprint travels in the URL of `POST /v1/blueprints/{bp}/entities/bulk`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entity {
    pub blueprint: String,
    /// The identifier, or empty when it is not a string (a search query).
    pub identifier: String,
    /// Identifiers the entity's relations point at: string values and arrays of strings.
    pub relation_targets: Vec<String>,
    pub body: String,
}

impl Entity {
    /// The record of an entity object as `berth map` prints it (`{"identifier", "blueprint",
    /// ...}`). Errors (one line) when `v` is not an object or has no string `blueprint`.
    pub fn from_value(v: &Value) -> Result<Entity, String> {
        let Value::Object(map) = v else {
            return Err("the entity is not a JSON object".into());
        };
        let Some(blueprint) = map.get("blueprint").and_then(Value::as_str) else {
            return Err("the entity has no string \"blueprint\"".into());
        };
        let identifier = map
            .get("identifier")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let relation_targets = map
            .get("relations")
            .and_then(Value::as_object)
            .map(relation_targets)
            .unwrap_or_default();
        let body = serde_json::to_string(&WithoutBlueprint(map))
            .map_err(|e| format!("the entity cannot be written as JSON: {e}"))?;
        Ok(Entity {
            blueprint: blueprint.to_string(),
            identifier,
            relation_targets,
            body,
        })
    }

    /// [`Entity::from_value`] for each of `vs`; the first error names the entity's position.
    pub fn from_values(vs: &[Value]) -> Result<Vec<Entity>, String> {
        vs.iter()
            .enumerate()
            .map(|(i, v)| Entity::from_value(v).map_err(|e| format!("entity {i}: {e}")))
            .collect()
    }

    /// The entity as `berth map` prints it, blueprint first (see [`full_json`]).
    pub fn full_json(&self) -> String {
        full_json(&self.blueprint, &self.body)
    }

    /// The body's `relations` object, parsed on demand: only entities retried in relation order
    /// need it. `None` when the body has none (or is not readable).
    pub fn relations(&self) -> Option<Map<String, Value>> {
        #[derive(Deserialize)]
        struct Relations {
            relations: Option<Value>,
        }
        match serde_json::from_str::<Relations>(&self.body)
            .ok()?
            .relations
        {
            Some(Value::Object(m)) => Some(m),
            _ => None,
        }
    }
}

/// `{"blueprint":<blueprint>,` followed by the members of `body` (a JSON object without
/// `blueprint`), without parsing the body: `{}` gives `{"blueprint":"x"}`. A body that is not
/// an object comes back as it is, so a broken mapper output stays visible as what it was.
pub fn full_json(blueprint: &str, body: &str) -> String {
    let mut out = Vec::with_capacity(body.len() + blueprint.len() + 16);
    write_full_json(&mut out, blueprint, body).expect("writing to memory");
    String::from_utf8(out).expect("JSON text and a JSON string are UTF-8")
}

/// [`full_json`] written straight into `out`: `berth map` prints every entity this way, with
/// no string built per entity.
pub fn write_full_json(out: &mut impl Write, blueprint: &str, body: &str) -> std::io::Result<()> {
    let Some(members) = body.trim_start().strip_prefix('{') else {
        return out.write_all(body.as_bytes());
    };
    let members = members.trim_start();
    out.write_all(b"{\"blueprint\":")?;
    serde_json::to_writer(&mut *out, blueprint)?;
    if !members.starts_with('}') {
        out.write_all(b",")?;
    }
    out.write_all(members.as_bytes())
}

/// An entity object serialised without its `blueprint` member, in its own key order: no copy
/// of the object, and no reordering (removing a key from an order-preserving map swaps the last
/// key into its place).
struct WithoutBlueprint<'a>(&'a Map<String, Value>);

impl Serialize for WithoutBlueprint<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().filter(|(k, _)| k.as_str() != "blueprint"))
    }
}

/// Identifiers a relations object points at (search-query relations name none).
fn relation_targets(rels: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for v in rels.values() {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => out.extend(a.iter().filter_map(Value::as_str).map(str::to_string)),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn from_value_splits_off_the_blueprint() {
        let v = json!({"identifier": "i-1", "blueprint": "ec2", "title": "t",
                       "properties": {"a": 1}, "relations": {"vpc": "vpc-1"}});
        let e = Entity::from_value(&v).unwrap();
        assert_eq!(
            (e.blueprint.as_str(), e.identifier.as_str()),
            ("ec2", "i-1")
        );
        // Compact, in the input's key order, without `blueprint`.
        assert_eq!(
            e.body,
            r#"{"identifier":"i-1","title":"t","properties":{"a":1},"relations":{"vpc":"vpc-1"}}"#
        );
        assert_eq!(e.relation_targets, vec!["vpc-1"]);
    }

    #[test]
    fn full_json_round_trips_by_value() {
        for v in [
            json!({"identifier": "a", "blueprint": "svc", "properties": {"x": [1, "y"]}}),
            json!({"blueprint": "b\"q\u{e9}", "identifier": "z"}),
            json!({"blueprint": "only"}),
        ] {
            let e = Entity::from_value(&v).unwrap();
            let back: Value = serde_json::from_str(&e.full_json()).unwrap();
            assert_eq!(back, v, "{}", e.full_json());
            assert!(e.full_json().starts_with("{\"blueprint\":"));
        }
        assert_eq!(full_json("x", "{}"), r#"{"blueprint":"x"}"#);
        assert_eq!(full_json("x", "{ }"), r#"{"blueprint":"x"}"#);
        assert_eq!(
            full_json("x", r#"{"identifier":"a"}"#),
            r#"{"blueprint":"x","identifier":"a"}"#
        );
        // Not an object: printed as it came, never wrapped into something that looks valid.
        assert_eq!(full_json("x", "[1]"), "[1]");
    }

    #[test]
    fn relation_targets_are_strings_and_string_arrays() {
        let v = json!({"identifier": "a", "blueprint": "svc", "relations": {
            "one": "t1", "many": ["t2", 3, "t3"], "query": {"combinator": "and", "rules": []},
            "none": null}});
        let e = Entity::from_value(&v).unwrap();
        assert_eq!(e.relation_targets, vec!["t1", "t2", "t3"]);
        let rels = e.relations().unwrap();
        assert_eq!(rels.len(), 4);
        assert_eq!(rels["many"], json!(["t2", 3, "t3"]));
        let bare = Entity::from_value(&json!({"identifier": "b", "blueprint": "svc"})).unwrap();
        assert!(bare.relation_targets.is_empty());
        assert_eq!(bare.relations(), None);
    }

    #[test]
    fn search_query_identifier_is_empty() {
        let v = json!({"identifier": {"combinator": "and", "rules": []}, "blueprint": "svc"});
        let e = Entity::from_value(&v).unwrap();
        assert_eq!(e.identifier, "");
        assert!(e.body.contains("combinator"));
    }

    #[test]
    fn errors_say_what_is_missing() {
        assert!(
            Entity::from_value(&json!([1]))
                .unwrap_err()
                .contains("object")
        );
        let e = Entity::from_value(&json!({"identifier": "a"})).unwrap_err();
        assert!(e.contains("blueprint"), "{e}");
        let e = Entity::from_value(&json!({"identifier": "a", "blueprint": 3})).unwrap_err();
        assert!(e.contains("blueprint"), "{e}");
        let e = Entity::from_values(&[json!({"identifier": "a", "blueprint": "b"}), json!(1)])
            .unwrap_err();
        assert!(e.starts_with("entity 1:"), "{e}");
        assert_eq!(
            Entity::from_values(&[json!({"blueprint": "b"})]).unwrap()[0].body,
            "{}"
        );
    }
}
