//! Search routes: `POST /v1/entities/search` (all blueprints, not paged),
//! `POST /v1/blueprints/{bp}/entities/search` (cursor paging) and Ocean's
//! `POST /v1/blueprints/entities/datasource-entities` (owned entities by `$datasource` prefix
//! and suffix, `before` an instant, cursor paging).
//!
//! Owns: paging and response shapes of these routes. Must not touch: query semantics
//! (`search.rs`).

use std::ops::Bound;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::search::{decode_cursor, encode_cursor, matches, project};
use crate::server::{App, lock};
use crate::spec::Route;

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub async fn search(
    State(app): State<App>,
    RawQuery(raw): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    let q = super::query(&app, Route::SearchEntities, raw.as_deref())?;
    let body = super::body(&app, Route::SearchEntities, &bytes)?;
    let (include, exclude) = (q.all("include"), q.all("exclude"));
    let cat = lock(&app.catalog);
    let mut entities = Vec::new();
    let mut blueprints: Vec<String> = Vec::new();
    for (bp, ents) in &cat.snap.entities {
        for e in ents.values() {
            if matches(&cat.snap, e, &body)? {
                if blueprints.last() != Some(bp) {
                    blueprints.push(bp.clone());
                }
                entities.push(project(e.to_json(), &include, &exclude));
            }
        }
    }
    Ok(super::json(
        StatusCode::OK,
        json!({
            "ok": true,
            "matchingBlueprints": blueprints,
            "failedBlueprints": [],
            "entities": entities
        }),
    ))
}

pub async fn blueprint_search(
    State(app): State<App>,
    Path(bp): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let body = super::body(&app, Route::SearchBlueprintEntities, &bytes)?;
    let body = if body.is_null() { json!({}) } else { body };
    let limit = body.get("limit").and_then(Value::as_f64).unwrap_or(200.0) as usize;
    let after = match body.get("from").and_then(Value::as_str) {
        Some(c) if !c.is_empty() => {
            let (cbp, id) = decode_cursor(c)?;
            if cbp != bp {
                return Err(ApiError::invalid(
                    "from: the cursor belongs to another blueprint",
                ));
            }
            Some(id)
        }
        _ => None,
    };
    let (include, exclude) = (strings(body.get("include")), strings(body.get("exclude")));
    let cat = lock(&app.catalog);
    cat.blueprint(&bp)?;
    let mut page: Vec<Value> = Vec::new();
    let mut last_id: Option<&str> = None;
    let mut next = None;
    let lower = after
        .as_ref()
        .map_or(Bound::Unbounded, |id| Bound::Excluded(id.clone()));
    let range = cat
        .snap
        .entities
        .get(&bp)
        .into_iter()
        .flat_map(|m| m.range::<String, _>((lower.clone(), Bound::Unbounded)));
    for (id, e) in range {
        if let Some(query) = body.get("query")
            && !matches(&cat.snap, e, query)?
        {
            continue;
        }
        if page.len() == limit {
            next = last_id.map(|l| encode_cursor(&bp, l));
            break;
        }
        page.push(project(e.to_json(), &include, &exclude));
        last_id = Some(id);
    }
    let mut out = json!({"ok": true, "entities": page});
    if let Some(n) = next {
        out["next"] = json!(n);
    }
    Ok(super::json(StatusCode::OK, out))
}

pub async fn datasource_entities(State(app): State<App>, bytes: Bytes) -> ApiResult<Response> {
    let body = super::body(&app, Route::DatasourceEntities, &bytes)?;
    let prefix = body["datasource_prefix"].as_str().unwrap_or_default();
    let suffix = body["datasource_suffix"].as_str().unwrap_or_default();
    let limit = body["limit"].as_u64().unwrap_or(1000) as usize;
    let before = match body.get("before").and_then(Value::as_str) {
        Some(s) => Some(
            clock::millis(s).ok_or_else(|| ApiError::invalid("body/before must be a date-time"))?,
        ),
        None => None,
    };
    let after = match body.get("from").and_then(Value::as_str) {
        Some(c) if !c.is_empty() => Some(decode_cursor(c)?),
        _ => None,
    };
    let cat = lock(&app.catalog);
    let mut page: Vec<Value> = Vec::new();
    let mut last: Option<(String, String)> = None;
    let mut next = None;
    'all: for (bp, ents) in &cat.snap.entities {
        for (id, e) in ents {
            if let Some((abp, aid)) = &after
                && (bp, id) <= (abp, aid)
            {
                continue;
            }
            let owned = e.datasource.as_deref().is_some_and(|d| {
                d.starts_with(prefix)
                    && d.ends_with(suffix)
                    && d.len() >= prefix.len() + suffix.len()
            });
            // Compared at Port's millisecond precision: an entity written in the same
            // millisecond as `before` does not count as older.
            let older = before.is_none_or(|b| clock::millis(&e.updated_at).is_some_and(|u| u < b));
            if !(owned && older) {
                continue;
            }
            if page.len() == limit {
                next = last.as_ref().map(|(b, i)| encode_cursor(b, i));
                break 'all;
            }
            page.push(e.to_json());
            last = Some((bp.clone(), id.clone()));
        }
    }
    Ok(super::json(
        StatusCode::OK,
        json!({"ok": true, "entities": page, "next": next}),
    ))
}
