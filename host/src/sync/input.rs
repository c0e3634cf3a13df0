//! The input of `berth push`: entities as `berth map` prints them, one JSON object a line, or
//! wrapped with where they came from; and a scopes file saying how discovery ended per scope.
//!
//! Owns: those two formats and their errors (file, line, why). Must not touch: Port; lines
//! become [`EntityIn`] values for the [`Pusher`](super::Pusher).
//!
//! An entity line is either the entity itself (`{"identifier", "blueprint", ...}`) — it then
//! belongs to the unscoped scope of its blueprint, which the file covers completely — or
//! `{"entity": {...}, "scope": {"account", "region", "kind"}, "kindIndex": 0}`.
//! A scopes file is JSON lines (or one array) of `{"account", "region", "kind", "status"}` with
//! status `complete`, `denied` or `failed`.

use serde::Deserialize;
use serde_json::Value;

use super::push::EntityIn;
use super::scope::{ScopeKey, ScopeStatus};

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
        let kind = env.scope.kind.clone();
        return Ok(EntityIn {
            entity: env.entity,
            scope: env.scope,
            kind,
            kind_index: env.kind_index,
        });
    }
    let Some(bp) = map.get("blueprint").and_then(Value::as_str) else {
        return Err(format!(
            "{at}: the entity has no string \"blueprint\" (is this `berth map` output?)"
        ));
    };
    let scope = ScopeKey::unscoped(bp);
    Ok(EntityIn {
        kind: bp.to_string(),
        kind_index: 0,
        scope,
        entity: v,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeLine {
    account: String,
    region: String,
    kind: String,
    status: ScopeStatus,
}

/// Reads a scopes file.
pub fn scopes(text: &str, source: &str) -> Result<Vec<(ScopeKey, ScopeStatus)>, String> {
    let trimmed = text.trim_start();
    let lines: Vec<ScopeLine> = if trimmed.starts_with('[') {
        serde_json::from_str(trimmed).map_err(|e| format!("{source}: {e}"))?
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("{source}:{}: {e}", i + 1)))
            .collect::<Result<_, _>>()?
    };
    Ok(lines
        .into_iter()
        .map(|l| (ScopeKey::new(l.account, l.region, l.kind), l.status))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_enveloped_lines() {
        let e = entity_line(r#"{"identifier":"a","blueprint":"bp"}"#, "f:1").unwrap();
        assert_eq!(e.scope, ScopeKey::unscoped("bp"));
        let e = entity_line(
            r#"{"entity":{"identifier":"a","blueprint":"bp"},"scope":{"account":"1","region":"r","kind":"K"},"kindIndex":2}"#,
            "f:2",
        )
        .unwrap();
        assert_eq!((e.kind.as_str(), e.kind_index), ("K", 2));
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
        assert_eq!(s[0].1, ScopeStatus::Denied);
        let e = scopes(
            "[{\"account\":\"1\",\"region\":\"r\",\"kind\":\"K\",\"status\":\"gone\"}]",
            "s",
        )
        .unwrap_err();
        assert!(e.contains("gone"), "{e}");
    }
}
