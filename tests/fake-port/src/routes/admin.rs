//! The fake's own admin API under `/_fake/` (no auth, never logged, never faulted): faults,
//! reset, the request log, state dump/load/save, token revocation, resync requests; and `/`, an
//! index for people with a browser.
//!
//! Owns: runtime control of a running fake. Must not touch: Port's routes.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::faults::Faults;
use crate::integration;
use crate::model::{SNAPSHOT_FORMAT, Snapshot};
use crate::reqlog::LogFilter;
use crate::server::{App, lock};

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, crate::error::INVALID_REQUEST, msg)
}

pub async fn index(State(app): State<App>) -> Response {
    let cat = lock(&app.catalog);
    let blueprints: Vec<Value> = cat
        .snap
        .blueprints
        .keys()
        .map(|bp| {
            json!({
                "identifier": bp,
                "entities": cat.snap.entities.get(bp).map_or(0, |m| m.len()),
                "list": format!("{}/v1/blueprints/{bp}/entities", app.base_url),
            })
        })
        .collect();
    super::json(
        StatusCode::OK,
        json!({
            "name": "berth fake Port",
            "baseUrl": app.base_url,
            "publicReads": app.config.public_reads,
            "blueprints": blueprints,
            "integrations": cat.snap.integrations.keys().collect::<Vec<_>>(),
            "admin": {
                "state": format!("{}/_fake/state", app.base_url),
                "requests": format!("{}/_fake/requests", app.base_url),
                "faults": format!("{}/_fake/faults", app.base_url),
            }
        }),
    )
}

fn faults_answer(f: &Faults) -> Response {
    super::json(StatusCode::OK, json!({"ok": true, "faults": f}))
}

pub async fn get_faults(State(app): State<App>) -> Response {
    faults_answer(lock(&app.faults).get())
}

fn install(app: &App, f: Faults) -> ApiResult<Response> {
    f.check().map_err(bad)?;
    lock(&app.faults).set(f.clone());
    Ok(faults_answer(&f))
}

/// `PUT`/`POST`: replace the faults (missing fields take their defaults).
pub async fn put_faults(State(app): State<App>, bytes: Bytes) -> ApiResult<Response> {
    let f: Faults = if bytes.is_empty() {
        Faults::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("faults: {e}")))?
    };
    install(&app, f)
}

/// `PATCH`: change only the given fields.
pub async fn patch_faults(State(app): State<App>, bytes: Bytes) -> ApiResult<Response> {
    let patch: Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("faults: {e}")))?;
    let mut current = serde_json::to_value(lock(&app.faults).get()).expect("faults serialize");
    for (k, v) in patch.as_object().into_iter().flatten() {
        current[k] = v.clone();
    }
    let f: Faults = serde_json::from_value(current).map_err(|e| bad(format!("faults: {e}")))?;
    install(&app, f)
}

pub async fn clear_faults(State(app): State<App>) -> ApiResult<Response> {
    install(&app, Faults::default())
}

pub async fn reset(State(app): State<App>) -> Response {
    app.reset();
    super::json(StatusCode::OK, json!({"ok": true}))
}

pub async fn requests(State(app): State<App>, Query(filter): Query<LogFilter>) -> Response {
    let log = lock(&app.log);
    let entries = log.filtered(&filter);
    super::json(
        StatusCode::OK,
        json!({"ok": true, "count": entries.len(), "dropped": log.dropped(), "requests": entries}),
    )
}

pub async fn clear_requests(State(app): State<App>) -> Response {
    lock(&app.log).clear();
    super::json(StatusCode::OK, json!({"ok": true}))
}

/// The whole state, including each entity's `datasource` (which Port's routes do not show).
pub async fn state(State(app): State<App>) -> Response {
    let snap = lock(&app.catalog).snap.clone();
    super::json(
        StatusCode::OK,
        serde_json::to_value(snap).expect("snapshot serializes"),
    )
}

/// Replaces the whole state (same JSON as `GET /_fake/state` and the state file).
pub async fn put_state(State(app): State<App>, bytes: Bytes) -> ApiResult<Response> {
    let snap: Snapshot = serde_json::from_slice(&bytes).map_err(|e| bad(format!("state: {e}")))?;
    if snap.format != SNAPSHOT_FORMAT {
        return Err(bad(format!("state: format must be {SNAPSHOT_FORMAT}")));
    }
    lock(&app.catalog).replace_snapshot(snap);
    app.touch();
    Ok(super::json(StatusCode::OK, json!({"ok": true})))
}

pub async fn save(State(app): State<App>) -> ApiResult<Response> {
    match app.save() {
        Ok(true) => Ok(super::json(StatusCode::OK, json!({"ok": true}))),
        Ok(false) => Err(bad("no state file configured (start with --state FILE)")),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::error::INTERNAL,
            format!("saving state failed: {e}"),
        )),
    }
}

pub async fn expire_tokens(State(app): State<App>) -> Response {
    lock(&app.tokens).expire_all();
    super::json(StatusCode::OK, json!({"ok": true}))
}

/// Simulates the "Resync" button of Port's UI.
pub async fn request_resync(State(app): State<App>, Path(id): Path<String>) -> ApiResult<Response> {
    let request = {
        let mut cat = lock(&app.catalog);
        let key = integration::resolve(&cat.snap, &id)?.0.clone();
        integration::request_resync(&mut cat.snap, &key, &clock::now_string());
        cat.snap.resync_requests[&key].clone()
    };
    app.touch();
    Ok(super::json(
        StatusCode::OK,
        json!({"ok": true, "request": request}),
    ))
}
