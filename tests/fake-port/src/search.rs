//! Entity search: Port's query language (`{combinator, rules}`), projections and cursors.
//!
//! Owns: evaluating a query against one entity (operators `=`, `!=`, `in`, `notIn`,
//! `contains`, `doesNotContains`, `containsAny`, `beginsWith`, `doesNotBeginsWith`,
//! `endsWith`, `doesNotEndsWith`, `isEmpty`, `isNotEmpty`, `<`, `<=`, `>`, `>=`, `between`,
//! `notBetween`, `isExpired`, `isNotExpired`, `relatedTo`), over properties, relations and the
//! meta-properties `$identifier $title $icon $team $blueprint $createdAt $updatedAt $createdBy
//! $updatedBy $datasource`; `include`/`exclude` projections; opaque paging cursors. Must not
//! touch: state (it only reads the snapshot).

use serde_json::{Map, Value, json};

use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::model::{Entity, Snapshot};

/// Whether entity `e` matches a `{combinator, rules}` query.
pub fn matches(snap: &Snapshot, e: &Entity, query: &Value) -> ApiResult<bool> {
    let q = query
        .as_object()
        .ok_or_else(|| ApiError::invalid("query must be an object"))?;
    let and = match q.get("combinator").and_then(Value::as_str) {
        Some("and") | None => true,
        Some("or") => false,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "combinator must be \"and\" or \"or\", got \"{other}\""
            )));
        }
    };
    let rules = q
        .get("rules")
        .and_then(Value::as_array)
        .map_or(&[][..], |r| r);
    for rule in rules {
        let hit = eval_rule(snap, e, rule)?;
        if and && !hit {
            return Ok(false);
        }
        if !and && hit {
            return Ok(true);
        }
    }
    // `and` of nothing is true; `or` of nothing is false.
    Ok(and)
}

/// Identifiers of the entities of `bp` matching `query`, sorted.
pub fn matching_ids(snap: &Snapshot, bp: &str, query: &Value) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    for e in snap.entities.get(bp).into_iter().flat_map(|m| m.values()) {
        if matches(snap, e, query)? {
            out.push(e.identifier.clone());
        }
    }
    Ok(out)
}

fn unsupported(what: &str) -> ApiError {
    ApiError::invalid(format!("{what} is not supported by the fake Port"))
}

fn eval_rule(snap: &Snapshot, e: &Entity, rule: &Value) -> ApiResult<bool> {
    let r = rule
        .as_object()
        .ok_or_else(|| ApiError::invalid("a rule must be an object"))?;
    if r.contains_key("combinator") {
        return matches(snap, e, rule);
    }
    if r.contains_key("propertySchema") {
        return Err(unsupported("The propertySchema rule"));
    }
    let op = r
        .get("operator")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("rule must have required property 'operator'"))?;
    if op == "relatedTo" {
        return related_to(snap, e, r);
    }
    if op == "matchAny" {
        return Err(unsupported("The matchAny operator"));
    }
    let prop = match r.get("property") {
        Some(Value::String(p)) => p.as_str(),
        Some(_) => {
            return Err(unsupported(
                "A property given as an object (user context or path)",
            ));
        }
        None => {
            return Err(ApiError::invalid(
                "rule must have required property 'property'",
            ));
        }
    };
    let f = field(e, prop);
    let f = f.as_ref().filter(|v| !v.is_null());
    let v = r.get("value").unwrap_or(&Value::Null);
    Ok(match op {
        "=" if v.is_object() => date_range(f, v)?,
        "=" => eq(f, v),
        "!=" => !eq(f, v),
        "in" => is_in(f, v),
        "notIn" => !is_in(f, v),
        "contains" => contains(f, v),
        "doesNotContains" => !contains(f, v),
        "containsAny" => contains_any(f, v),
        "beginsWith" => str_test(f, v, |a, b| a.starts_with(b)),
        "doesNotBeginsWith" => !str_test(f, v, |a, b| a.starts_with(b)),
        "endsWith" => str_test(f, v, |a, b| a.ends_with(b)),
        "doesNotEndsWith" => !str_test(f, v, |a, b| a.ends_with(b)),
        "isEmpty" => is_empty(f),
        "isNotEmpty" => !is_empty(f),
        ">" | ">=" | "<" | "<=" => compare(f, v, op),
        "between" => date_range(f, v)?,
        "notBetween" => !date_range(f, v)?,
        "isExpired" => expired(f),
        "isNotExpired" => !expired(f),
        other => return Err(unsupported(&format!("The operator \"{other}\""))),
    })
}

/// The value a rule's `property` names.
fn field(e: &Entity, prop: &str) -> Option<Value> {
    Some(match prop {
        "$identifier" => json!(e.identifier),
        "$title" => json!(e.title),
        "$icon" => json!(e.icon),
        "$team" => json!(e.team),
        "$blueprint" => json!(e.blueprint),
        "$createdAt" => json!(e.created_at),
        "$updatedAt" => json!(e.updated_at),
        "$createdBy" => json!(e.created_by),
        "$updatedBy" => json!(e.updated_by),
        "$datasource" => json!(e.datasource),
        other => e
            .properties
            .get(other)
            .or_else(|| e.relations.get(other))?
            .clone(),
    })
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn eq(f: Option<&Value>, v: &Value) -> bool {
    match (f, v) {
        (None, Value::Null) => true,
        (None, _) => false,
        (Some(Value::Array(items)), w) if !w.is_array() => items.iter().any(|i| scalar_eq(i, w)),
        (Some(a), b) => scalar_eq(a, b),
    }
}

fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

fn is_in(f: Option<&Value>, v: &Value) -> bool {
    let list = as_list(v);
    match f {
        None => list.iter().any(|x| x.is_null()),
        Some(Value::Array(items)) => items.iter().any(|i| list.iter().any(|x| scalar_eq(i, x))),
        Some(a) => list.iter().any(|x| scalar_eq(a, x)),
    }
}

fn contains(f: Option<&Value>, v: &Value) -> bool {
    let Some(f) = f else { return false };
    as_list(v).iter().any(|needle| match (f, needle) {
        (Value::String(s), Value::String(n)) => s.contains(n.as_str()),
        (Value::Array(items), n) => items.iter().any(|i| scalar_eq(i, n)),
        _ => false,
    })
}

fn contains_any(f: Option<&Value>, v: &Value) -> bool {
    let Some(f) = f else { return false };
    let list = as_list(v);
    match f {
        Value::Array(items) => items.iter().any(|i| list.iter().any(|x| scalar_eq(i, x))),
        Value::String(s) => list
            .iter()
            .filter_map(|x| x.as_str())
            .any(|n| s.contains(n)),
        other => list.iter().any(|x| scalar_eq(other, x)),
    }
}

fn str_test(f: Option<&Value>, v: &Value, test: fn(&str, &str) -> bool) -> bool {
    match (f, v) {
        (Some(Value::String(a)), Value::String(b)) => test(a, b),
        _ => false,
    }
}

fn is_empty(f: Option<&Value>) -> bool {
    match f {
        None => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

/// Numbers compare as numbers, date-time strings as instants.
fn compare(f: Option<&Value>, v: &Value, op: &str) -> bool {
    let Some(f) = f else { return false };
    let ord = match (f.as_f64(), v.as_f64()) {
        (Some(a), Some(b)) => a.partial_cmp(&b),
        _ => match (
            f.as_str().and_then(clock::millis),
            v.as_str().and_then(clock::millis),
        ) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => None,
        },
    };
    let Some(ord) = ord else { return false };
    match op {
        ">" => ord.is_gt(),
        ">=" => ord.is_ge(),
        "<" => ord.is_lt(),
        _ => ord.is_le(),
    }
}

fn expired(f: Option<&Value>) -> bool {
    f.and_then(Value::as_str)
        .and_then(clock::millis)
        .is_some_and(|t| t < clock::now().as_millisecond())
}

/// `{from, to}` (inclusive) or `{preset}` relative to now.
fn date_range(f: Option<&Value>, v: &Value) -> ApiResult<bool> {
    let Some(t) = f.and_then(Value::as_str).and_then(clock::millis) else {
        return Ok(false);
    };
    let now = clock::now().as_millisecond();
    const DAY: i64 = 24 * 60 * 60 * 1000;
    let (from, to) = if let Some(p) = v.get("preset").and_then(Value::as_str) {
        let today = now - now.rem_euclid(DAY);
        match p {
            "today" => (today, today + DAY - 1),
            "tomorrow" => (today + DAY, today + 2 * DAY - 1),
            "yesterday" => (today - DAY, today - 1),
            "lastDay" => (now - DAY, now),
            "lastWeek" => (now - 7 * DAY, now),
            "last2Weeks" => (now - 14 * DAY, now),
            "lastMonth" => (now - 30 * DAY, now),
            "last3Months" => (now - 90 * DAY, now),
            "last6Months" => (now - 180 * DAY, now),
            "last12Months" => (now - 365 * DAY, now),
            other => return Err(unsupported(&format!("The date preset \"{other}\""))),
        }
    } else {
        let bound = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .and_then(clock::millis)
                .ok_or_else(|| ApiError::invalid(format!("value/{k} must be a date-time")))
        };
        (bound("from")?, bound("to")?)
    };
    Ok(from <= t && t <= to)
}

/// `relatedTo`: one hop. `direction: "upstream"` finds the entities the given ones point at;
/// `"downstream"` the entities pointing at the given ones; without a direction, either.
fn related_to(snap: &Snapshot, e: &Entity, r: &Map<String, Value>) -> ApiResult<bool> {
    let bp = r.get("blueprint").and_then(Value::as_str).ok_or_else(|| {
        ApiError::invalid("relatedTo rule must have required property 'blueprint'")
    })?;
    let ids: Vec<&str> = as_list(r.get("value").unwrap_or(&Value::Null))
        .into_iter()
        .filter_map(Value::as_str)
        .collect();
    let dir = r.get("direction").and_then(Value::as_str);
    let points_at = |from: &Entity, to_bp: &str, to_id: &str| {
        let Some(def) = snap.blueprints.get(&from.blueprint) else {
            return false;
        };
        from.relations.iter().any(|(name, v)| {
            def.pointer(&format!("/relations/{name}/target"))
                .and_then(Value::as_str)
                == Some(to_bp)
                && as_list(v).iter().any(|x| x.as_str() == Some(to_id))
        })
    };
    let down = || ids.iter().any(|id| points_at(e, bp, id));
    let up = || {
        ids.iter().any(|id| {
            snap.entity(bp, id)
                .is_some_and(|g| points_at(g, &e.blueprint, &e.identifier))
        })
    };
    Ok(match dir {
        Some("downstream") => down(),
        Some("upstream") => up(),
        _ => down() || up(),
    })
}

const TOP_LEVEL: [&str; 11] = [
    "identifier",
    "title",
    "icon",
    "blueprint",
    "team",
    "properties",
    "relations",
    "createdAt",
    "createdBy",
    "updatedAt",
    "updatedBy",
];

/// `$identifier` → `identifier`, `properties.region` as written, a bare property id →
/// `properties.<id>`.
fn projection_path(p: &str) -> Vec<String> {
    if let Some(meta) = p.strip_prefix('$') {
        return vec![meta.to_string()];
    }
    let parts: Vec<String> = p.split('.').map(str::to_string).collect();
    if parts.len() == 1 && !TOP_LEVEL.contains(&p) {
        return vec!["properties".into(), p.to_string()];
    }
    parts
}

/// Applies `include` (keep only these paths) and then `exclude` (drop these paths).
pub fn project(entity: Value, include: &[String], exclude: &[String]) -> Value {
    let mut out = if include.is_empty() {
        entity
    } else {
        let mut kept = Value::Object(Map::new());
        for p in include {
            let path = projection_path(p);
            let mut src = &entity;
            let mut found = true;
            for seg in &path {
                match src.get(seg) {
                    Some(v) => src = v,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            if !found {
                continue;
            }
            let mut dst = &mut kept;
            for seg in &path[..path.len() - 1] {
                dst = dst
                    .as_object_mut()
                    .expect("built from objects")
                    .entry(seg.clone())
                    .or_insert_with(|| json!({}));
            }
            if let Some(m) = dst.as_object_mut() {
                m.insert(path[path.len() - 1].clone(), src.clone());
            }
        }
        kept
    };
    for p in exclude {
        let path = projection_path(p);
        let (last, parents) = path.split_last().expect("a path has a segment");
        let mut dst = Some(&mut out);
        for seg in parents {
            dst = dst.and_then(|d| d.get_mut(seg));
        }
        if let Some(m) = dst.and_then(Value::as_object_mut) {
            m.remove(last);
        }
    }
    out
}

/// An opaque cursor naming the last entity of a page.
pub fn encode_cursor(bp: &str, id: &str) -> String {
    let raw = format!("{bp}\u{1f}{id}");
    let mut s = String::from("c1");
    for b in raw.bytes() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub fn decode_cursor(c: &str) -> ApiResult<(String, String)> {
    let bad = || ApiError::invalid("from: invalid cursor");
    let hex = c.strip_prefix("c1").ok_or_else(bad)?;
    if hex.len() % 2 != 0 {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let raw = String::from_utf8(bytes).map_err(|_| bad())?;
    let (bp, id) = raw.split_once('\u{1f}').ok_or_else(bad)?;
    Ok((bp.to_string(), id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        let c = encode_cursor("bp", "arn:aws:s3:::a/b");
        assert_eq!(
            decode_cursor(&c).unwrap(),
            ("bp".into(), "arn:aws:s3:::a/b".into())
        );
        assert!(decode_cursor("nope").is_err());
    }

    #[test]
    fn projection() {
        let e = json!({"identifier": "a", "title": "A", "properties": {"region": "x", "n": 1}});
        assert_eq!(
            project(e.clone(), &["$identifier".into(), "region".into()], &[]),
            json!({"identifier": "a", "properties": {"region": "x"}})
        );
        assert_eq!(
            project(e, &[], &["properties.n".into(), "title".into()]),
            json!({"identifier": "a", "properties": {"region": "x"}})
        );
    }
}
