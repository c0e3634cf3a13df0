//! Blueprint routes: list, create, get, replace, patch, delete.
//!
//! Owns: the HTTP side of blueprints (checks, status codes, envelopes). Must not touch: the
//! blueprint rules themselves (`catalog.rs`).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::ApiResult;
use crate::server::{App, Caller, lock};
use crate::spec::Route;

pub async fn list(State(app): State<App>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    super::query(&app, Route::ListBlueprints, q.as_deref())?;
    let cat = lock(&app.catalog);
    let bps: Vec<Value> = cat.snap.blueprints.values().cloned().collect();
    Ok(super::json(
        StatusCode::OK,
        json!({"ok": true, "blueprints": bps}),
    ))
}

pub async fn create(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    super::query(&app, Route::CreateBlueprint, q.as_deref())?;
    let body = super::body(&app, Route::CreateBlueprint, &bytes)?;
    let ctx = super::write_ctx(&app, &caller);
    let bp = lock(&app.catalog).create_blueprint(body, &ctx)?;
    app.touch();
    Ok(super::json(
        StatusCode::CREATED,
        json!({"ok": true, "blueprint": bp}),
    ))
}

pub async fn get_one(State(app): State<App>, Path(bp): Path<String>) -> ApiResult<Response> {
    let cat = lock(&app.catalog);
    let v = cat.blueprint(&bp)?.clone();
    Ok(super::json(
        StatusCode::OK,
        json!({"ok": true, "blueprint": v}),
    ))
}

pub async fn replace(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(bp): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let body = super::body(&app, Route::ReplaceBlueprint, &bytes)?;
    let ctx = super::write_ctx(&app, &caller);
    let v = lock(&app.catalog).replace_blueprint(&bp, body, &ctx)?;
    app.touch();
    Ok(super::json(
        StatusCode::OK,
        json!({"ok": true, "blueprint": v}),
    ))
}

pub async fn patch(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(bp): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let body = super::body(&app, Route::PatchBlueprint, &bytes)?;
    let ctx = super::write_ctx(&app, &caller);
    let v = lock(&app.catalog).patch_blueprint(&bp, body, &ctx)?;
    app.touch();
    Ok(super::json(
        StatusCode::OK,
        json!({"ok": true, "blueprint": v}),
    ))
}

pub async fn delete(
    State(app): State<App>,
    Path(bp): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    super::query(&app, Route::DeleteBlueprint, q.as_deref())?;
    lock(&app.catalog).delete_blueprint(&bp)?;
    app.touch();
    Ok(super::json(StatusCode::OK, json!({"ok": true})))
}
