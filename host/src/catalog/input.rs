//! The input of `berth push`: entities as `berth map` prints them, one JSON object a line, or
//! wrapped with where they came from; and a scopes file saying how discovery ended per scope.
//!
//! Owns: those two formats and their errors (file, line, why). Must not touch: Port; lines
//! become [`EntityIn`] values (each entity an [`Entity`] record, parsed once here) for the
//! [`Pusher`](super::Pusher).
//!
//! An entity line is either the entity itself (`{"identifier", "blueprint", ...}`) — it then
//! belongs to the unscoped scope of its blueprint, which the file covers completely — or
//! `{"entity": {...}, "scope": {"account", "region", "kind"}, "kindIndex": 0}`.
//! A scopes file is JSON lines (or one array) of `{"account", "region", "kind", "status"}` with
//! status `complete`, `denied` or `failed`, and an optional `"reason"` saying why a scope did
//! not complete (the push report repeats it).

use serde::Deserialize;
use serde_json::Value;

use super::push::EntityIn;
use crate::catalog::port::Entity;
use crate::scope::{ScopeKey, ScopeStatus};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Envelope {
    entity: Value,
    scope: ScopeKey,
    #[serde(default)]
    kind_index: usize,
}

/// Reads one entity line (`at` names it in errors, e.g. `entities.jsonl:12`).
pub fn entity_line(line: &str, at: &str) -> Result<EntityIn, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("{at}: invalid JSON: {e}"))?;
    let Value::Object(map) = &v else {
        return Err(format!("{at}: expected a JSON object (an entity)"));
    };
    if map.contains_key("entity") && map.contains_key("scope") {
        let env: Envelope =
            serde_json::from_value(v).map_err(|e| format!("{at}: invalid entity envelope: {e}"))?;
        if !env.entity.is_object() {
            return Err(format!("{at}: \"entity\" must be an object"));
        }
        let entity = record(&env.entity, at)?;
        let kind = env.scope.kind.clone();
        return Ok(EntityIn {
            entity,
            scope: env.scope,
            kind,
            kind_index: env.kind_index,
        });
    }
    let entity = record(&v, at)?;
    Ok(EntityIn {
        kind: entity.blueprint.clone(),
        kind_index: 0,
        scope: ScopeKey::unscoped(&entity.blueprint),
        entity,
    })
}

/// The record of an entity object; an entity without a string `blueprint` is refused here, in
/// the line's terms, rather than counted as a failed write: the file is not `berth map` output.
fn record(v: &Value, at: &str) -> Result<Entity, String> {
    if !v.get("blueprint").is_some_and(Value::is_string) {
        return Err(format!(
            "{at}: the entity has no string \"blueprint\" (is this `berth map` output?)"
        ));
    }
    Entity::from_value(v).map_err(|e| format!("{at}: {e}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeLine {
    account: String,
    region: String,
    kind: String,
    /// A [`ScopeStatus::label`]; read by hand, since the reason is a field of its own.
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

impl ScopeLine {
    /// `at` names the line, in errors and as the reason of a line that gives none.
    fn read(self, at: &str) -> Result<(ScopeKey, ScopeStatus), String> {
        let reason = self
            .reason
            .unwrap_or_else(|| format!("no reason given ({at})"));
        match ScopeStatus::from_label(&self.status, reason) {
            Some(status) => Ok((ScopeKey::new(self.account, self.region, self.kind), status)),
            None => Err(format!(
                "{at}: unknown status {:?}: expected complete, denied or failed",
                self.status
            )),
        }
    }
}

/// Reads a scopes file.
pub fn scopes(text: &str, source: &str) -> Result<Vec<(ScopeKey, ScopeStatus)>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let lines: Vec<ScopeLine> =
            serde_json::from_str(trimmed).map_err(|e| format!("{source}: {e}"))?;
        return lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| l.read(&format!("{source}[{i}]")))
            .collect();
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let at = format!("{source}:{}", i + 1);
            let line: ScopeLine = serde_json::from_str(l).map_err(|e| format!("{at}: {e}"))?;
            line.read(&at)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_enveloped_lines() {
        let e = entity_line(r#"{"identifier":"a","blueprint":"bp"}"#, "f:1").unwrap();
        assert_eq!(e.scope, ScopeKey::unscoped("bp"));
        assert_eq!(
            (e.entity.blueprint.as_str(), e.entity.identifier.as_str()),
            ("bp", "a")
        );
        assert_eq!(e.entity.body, r#"{"identifier":"a"}"#);
        let e = entity_line(
            r#"{"entity":{"identifier":"a","blueprint":"bp"},"scope":{"account":"1","region":"r","kind":"K"},"kindIndex":2}"#,
            "f:2",
        )
        .unwrap();
        assert_eq!((e.kind.as_str(), e.kind_index), ("K", 2));
        assert_eq!(e.entity.blueprint, "bp");
        let err = entity_line(
            r#"{"entity":{"identifier":"a"},"scope":{"account":"1","region":"r","kind":"K"}}"#,
            "f:5",
        )
        .unwrap_err();
        assert!(
            err.starts_with("f:5:") && err.contains("blueprint"),
            "{err}"
        );
        let err = entity_line(r#"{"identifier":"a"}"#, "f:3").unwrap_err();
        assert!(
            err.starts_with("f:3:") && err.contains("blueprint"),
            "{err}"
        );
        assert!(entity_line("[1]", "f:4").unwrap_err().contains("object"));
    }

    #[test]
    fn scope_files() {
        let s = scopes(
            "{\"account\":\"1\",\"region\":\"r\",\"kind\":\"K\",\"status\":\"denied\"}\n",
            "s",
        )
        .unwrap();
        assert_eq!(s[0].0, ScopeKey::new("1", "r", "K"));
        assert_eq!(s[0].1, ScopeStatus::Denied("no reason given (s:1)".into()));
        let s = scopes(
            "[{\"account\":\"1\",\"region\":\"r\",\"kind\":\"K\",\"status\":\"failed\",\"reason\":\"throttled\"},\n\
             {\"account\":\"1\",\"region\":\"r2\",\"kind\":\"K\",\"status\":\"complete\",\"reason\":\"ignored\"}]",
            "s",
        )
        .unwrap();
        assert_eq!(s[0].1, ScopeStatus::Failed("throttled".into()));
        assert_eq!(s[1], (ScopeKey::new("1", "r2", "K"), ScopeStatus::Complete));
        let e = scopes(
            "[{\"account\":\"1\",\"region\":\"r\",\"kind\":\"K\",\"status\":\"gone\"}]",
            "s",
        )
        .unwrap_err();
        assert!(e.starts_with("s[0]: ") && e.contains("\"gone\""), "{e}");
        let e = scopes(
            "\n{\"account\":\"1\",\"region\":\"r\",\"kind\":\"K\",\"status\":\"complete\",\"extra\":1}",
            "s",
        )
        .unwrap_err();
        assert!(e.starts_with("s:2: ") && e.contains("extra"), "{e}");
    }
}
