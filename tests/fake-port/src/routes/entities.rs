//! Entity routes: single and bulk upsert, read, patch, replace, delete (single, bulk, all),
//! count.
//!
//! Owns: query flags (`upsert`, `merge`, `create_missing_related_entities`, `validation_only`,
//! `delete_dependents`), per-index bulk results (200 when all succeed, 207 otherwise) and
//! envelopes. Must not touch: the write rules (`catalog.rs`).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::catalog::{WriteMode, entity_not_found};
use crate::error::{ApiError, ApiResult};
use crate::query::QueryParams;
use crate::search::project;
use crate::server::{App, Caller, lock};
use crate::spec::Route;

fn object(v: &Value) -> ApiResult<&Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| ApiError::invalid("body must be object"))
}

fn upsert_mode(q: &QueryParams) -> ApiResult<WriteMode> {
    Ok(WriteMode::Upsert {
        upsert: q.bool("upsert", false)?,
        merge: q.bool("merge", false)?,
        create_missing: q.bool("create_missing_related_entities", false)?,
        validation_only: q.bool("validation_only", false)?,
    })
}

fn projection(q: &QueryParams) -> (Vec<String>, Vec<String>) {
    (q.all("include"), q.all("exclude"))
}

/// `POST /v1/blueprints/{bp}/entities`: 201 with the entity.
pub async fn upsert(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(bp): Path<String>,
    RawQuery(raw): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    let q = super::query(&app, Route::UpsertEntity, raw.as_deref())?;
    let body = super::body(&app, Route::UpsertEntity, &bytes)?;
    let mode = upsert_mode(&q)?;
    let ctx = super::write_ctx(&app, &caller);
    let written = {
        let mut cat = lock(&app.catalog);
        cat.blueprint(&bp)?;
        cat.write_entity(&bp, object(&body)?, None, mode, &ctx)
            .map_err(|e| e.error)?
    };
    if !q.bool("validation_only", false)? {
        app.touch();
    }
    Ok(super::json(
        StatusCode::CREATED,
        json!({"ok": true, "entity": written.entity}),
    ))
}

/// `POST /v1/blueprints/{bp}/entities/bulk`: per-index `entities[]` and `errors[]`.
pub async fn bulk_upsert(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(bp): Path<String>,
    RawQuery(raw): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    let q = super::query(&app, Route::BulkUpsert, raw.as_deref())?;
    let body = super::body(&app, Route::BulkUpsert, &bytes)?;
    let mode = upsert_mode(&q)?;
    let items = body
        .get("entities")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("body must have required property 'entities'"))?;
    let ctx = super::write_ctx(&app, &caller);
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    {
        let mut cat = lock(&app.catalog);
        cat.blueprint(&bp)?;
        for (index, item) in items.iter().enumerate() {
            let result = match item.as_object() {
                Some(m) => cat.write_entity(&bp, m, None, mode, &ctx),
                None => Err(crate::catalog::EntityError {
                    identifier: "unknown".into(),
                    error: ApiError::invalid(format!("body/entities/{index} must be object")),
                }),
            };
            match result {
                Ok(w) => ok.push(json!({
                    "created": w.created,
                    "identifier": w.identifier,
                    "index": index,
                    "additionalData": {}
                })),
                Err(e) => errors.push(json!({
                    "identifier": e.identifier,
                    "index": index,
                    "statusCode": e.error.status.as_u16(),
                    "error": e.error.code,
                    "message": e.error.message
                })),
            }
        }
    }
    if !ok.is_empty() && !q.bool("validation_only", false)? {
        app.touch();
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok(super::json(
        status,
        json!({"ok": true, "entities": ok, "errors": errors}),
    ))
}

pub async fn list(
    State(app): State<App>,
    Path(bp): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let q = super::query(&app, Route::ListEntities, raw.as_deref())?;
    let (include, exclude) = projection(&q);
    let cat = lock(&app.catalog);
    cat.blueprint(&bp)?;
    let entities: Vec<Value> = cat
        .snap
        .entities
        .get(&bp)
        .into_iter()
        .flat_map(|m| m.values())
        .map(|e| project(e.to_json(), &include, &exclude))
        .collect();
    Ok(super::json(
        StatusCode::OK,
        json!({"ok": true, "entities": entities}),
    ))
}

fn get_entity(app: &App, bp: &str, id: &str, raw: Option<&str>) -> ApiResult<Response> {
    let q = super::query(app, Route::GetEntity, raw)?;
    let (include, exclude) = projection(&q);
    let e = lock(&app.catalog).entity_json(bp, id)?;
    Ok(super::json(
        StatusCode::OK,
        json!({"ok": true, "entity": project(e, &include, &exclude)}),
    ))
}

fn modify_entity(
    app: &App,
    caller: &Caller,
    bp: &str,
    id: &str,
    raw: Option<&str>,
    bytes: &Bytes,
    patch: bool,
) -> ApiResult<Response> {
    let route = if patch {
        Route::PatchEntity
    } else {
        Route::ReplaceEntity
    };
    let q = super::query(app, route, raw)?;
    let body = super::body(app, route, bytes)?;
    let create_missing = q.bool("create_missing_related_entities", false)?;
    let mode = if patch {
        WriteMode::Patch { create_missing }
    } else {
        WriteMode::Replace { create_missing }
    };
    let ctx = super::write_ctx(app, caller);
    let written = {
        let mut cat = lock(&app.catalog);
        cat.blueprint(bp)?;
        cat.write_entity(bp, object(&body)?, Some(id), mode, &ctx)
            .map_err(|e| e.error)?
    };
    app.touch();
    Ok(super::json(
        StatusCode::OK,
        json!({"ok": true, "entity": written.entity}),
    ))
}

fn delete_entity(app: &App, bp: &str, id: &str, raw: Option<&str>) -> ApiResult<Response> {
    let q = super::query(app, Route::DeleteEntity, raw)?;
    let dependents = q.bool("delete_dependents", false)?;
    let deleted = lock(&app.catalog).delete_entities(bp, &[id.to_string()], dependents)?;
    if deleted.is_empty() {
        return Err(entity_not_found(bp, id));
    }
    app.touch();
    Ok(super::json(StatusCode::OK, json!({"ok": true})))
}

pub async fn get_one(
    State(app): State<App>,
    Path((bp, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    get_entity(&app, &bp, &id, raw.as_deref())
}

pub async fn patch(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path((bp, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    modify_entity(&app, &caller, &bp, &id, raw.as_deref(), &bytes, true)
}

pub async fn replace(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path((bp, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    modify_entity(&app, &caller, &bp, &id, raw.as_deref(), &bytes, false)
}

pub async fn delete_one(
    State(app): State<App>,
    Path((bp, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    delete_entity(&app, &bp, &id, raw.as_deref())
}

/// Entities literally named `bulk` or `search` share their path with the bulk and search
/// routes; the other methods on those paths reach the entity (as in Port, whose router matches
/// per method).
macro_rules! named_entity_routes {
    ($name:literal, $get:ident, $patch:ident, $replace:ident, $delete:ident) => {
        pub async fn $get(
            State(app): State<App>,
            Path(bp): Path<String>,
            RawQuery(raw): RawQuery,
        ) -> ApiResult<Response> {
            get_entity(&app, &bp, $name, raw.as_deref())
        }
        pub async fn $patch(
            State(app): State<App>,
            Extension(caller): Extension<Caller>,
            Path(bp): Path<String>,
            RawQuery(raw): RawQuery,
            bytes: Bytes,
        ) -> ApiResult<Response> {
            modify_entity(&app, &caller, &bp, $name, raw.as_deref(), &bytes, true)
        }
        pub async fn $replace(
            State(app): State<App>,
            Extension(caller): Extension<Caller>,
            Path(bp): Path<String>,
            RawQuery(raw): RawQuery,
            bytes: Bytes,
        ) -> ApiResult<Response> {
            modify_entity(&app, &caller, &bp, $name, raw.as_deref(), &bytes, false)
        }
        pub async fn $delete(
            State(app): State<App>,
            Path(bp): Path<String>,
            RawQuery(raw): RawQuery,
        ) -> ApiResult<Response> {
            delete_entity(&app, &bp, $name, raw.as_deref())
        }
    };
}

named_entity_routes!(
    "bulk",
    get_named_bulk,
    patch_named_bulk,
    replace_named_bulk,
    delete_named_bulk
);
named_entity_routes!(
    "search",
    get_named_search,
    patch_named_search,
    replace_named_search,
    delete_named_search
);

pub async fn count(State(app): State<App>, Path(bp): Path<String>) -> ApiResult<Response> {
    let cat = lock(&app.catalog);
    cat.blueprint(&bp)?;
    let n = cat.snap.entities.get(&bp).map_or(0, |m| m.len());
    Ok(super::json(StatusCode::OK, json!({"ok": true, "count": n})))
}

/// `POST /v1/blueprints/{bp}/bulk/entities/delete`: `deletedEntities` lists the requested ids
/// that were deleted (unknown ids are skipped).
pub async fn bulk_delete(
    State(app): State<App>,
    Path(bp): Path<String>,
    RawQuery(raw): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    let q = super::query(&app, Route::BulkDelete, raw.as_deref())?;
    let body = super::body(&app, Route::BulkDelete, &bytes)?;
    let ids: Vec<String> = body
        .get("entities")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let dependents = q.bool("delete_dependents", false)?;
    let deleted = lock(&app.catalog).delete_entities(&bp, &ids, dependents)?;
    if !deleted.is_empty() {
        app.touch();
    }
    Ok(super::json(
        StatusCode::OK,
        json!({"ok": true, "deletedEntities": deleted}),
    ))
}

/// `DELETE /v1/blueprints/{bp}/all-entities[?delete_blueprint=true]`: done synchronously.
pub async fn delete_all(
    State(app): State<App>,
    Path(bp): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let q = super::query(&app, Route::DeleteAllEntities, raw.as_deref())?;
    {
        let mut cat = lock(&app.catalog);
        cat.delete_all_entities(&bp)?;
        if q.bool("delete_blueprint", false)? {
            cat.delete_blueprint(&bp)?;
        }
    }
    app.touch();
    Ok(super::json(StatusCode::OK, json!({"ok": true})))
}
