//! Integration routes (`/v1/integration/...`) and the ingest URLs the integration object hands
//! out for sync metrics, heartbeats and logs (`/ingest/{installationId}/...`).
//!
//! Owns: the HTTP side of the integration resource. Must not touch: its data rules
//! (`integration.rs`).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::clock;
use crate::error::ApiResult;
use crate::integration;
use crate::server::{App, Caller, lock};
use crate::spec::{Route, spec};

fn answer(app: &App, stored: &Value) -> Response {
    super::json(
        StatusCode::OK,
        json!({"ok": true, "integration": integration::render(stored, &app.base_url)}),
    )
}

pub async fn list(State(app): State<App>) -> ApiResult<Response> {
    let cat = lock(&app.catalog);
    let all: Vec<Value> = cat
        .snap
        .integrations
        .values()
        .map(|v| integration::render(v, &app.base_url))
        .collect();
    Ok(super::json(
        StatusCode::OK,
        json!({"ok": true, "integrations": all}),
    ))
}

pub async fn create(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let body = super::body(&app, Route::CreateIntegration, &bytes)?;
    let v = integration::create(
        &mut lock(&app.catalog).snap,
        &body,
        &caller.user,
        &clock::now_string(),
    )?;
    app.touch();
    let mut resp = answer(&app, &v);
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

/// `GET /v1/integration/provision-enabled`: the integration types for which Port provisions
/// default resources itself. None here: the fake has no provisioner, and an integration that
/// believed it had one would wait for a config that never comes. See the README.
pub async fn provision_enabled(
    State(app): State<App>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    super::query(&app, Route::ProvisionEnabled, raw.as_deref())?;
    Ok(super::json(
        StatusCode::OK,
        json!({"ok": true, "integrations": []}),
    ))
}

pub async fn get_one(
    State(app): State<App>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    super::query(&app, Route::GetIntegration, raw.as_deref())?;
    let cat = lock(&app.catalog);
    let (_, v) = integration::resolve(&cat.snap, &id)?;
    Ok(answer(&app, v))
}

pub async fn patch(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let body = super::body(&app, Route::PatchIntegration, &bytes)?;
    let body = if body.is_null() { json!({}) } else { body };
    let v = integration::patch(
        &mut lock(&app.catalog).snap,
        &id,
        &body,
        &caller.user,
        &clock::now_string(),
    )?;
    app.touch();
    Ok(answer(&app, &v))
}

pub async fn patch_config(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let body = super::body(&app, Route::PatchIntegrationConfig, &bytes)?;
    let v = integration::patch_config(
        &mut lock(&app.catalog).snap,
        &id,
        &body["config"],
        &caller.user,
        &clock::now_string(),
    )?;
    app.touch();
    Ok(answer(&app, &v))
}

pub async fn delete(State(app): State<App>, Path(id): Path<String>) -> ApiResult<Response> {
    integration::delete(&mut lock(&app.catalog).snap, &id)?;
    app.touch();
    Ok(super::json(StatusCode::OK, json!({"ok": true})))
}

pub async fn patch_resync_state(
    State(app): State<App>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let body = super::body(&app, Route::ResyncState, &bytes)?;
    let v = integration::patch_resync_state(
        &mut lock(&app.catalog).snap,
        &id,
        &body,
        &clock::now_string(),
    )?;
    app.touch();
    Ok(answer(&app, &v))
}

pub async fn resync_request(State(app): State<App>, Path(id): Path<String>) -> ApiResult<Response> {
    let request = integration::resync_request(&lock(&app.catalog).snap, &id)?;
    Ok(super::json(
        StatusCode::OK,
        json!({"ok": true, "request": request}),
    ))
}

pub async fn examples(
    State(app): State<App>,
    Path((id, kind)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let body = super::body(&app, Route::KindExamples, &bytes)?;
    integration::put_examples(&mut lock(&app.catalog).snap, &id, &kind, &body["examples"])?;
    app.touch();
    Ok(super::json(StatusCode::OK, json!({"ok": true})))
}

pub async fn sync_metrics(
    State(app): State<App>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let q = super::query(&app, Route::SyncMetrics, raw.as_deref())?;
    let v = integration::sync_metrics(
        &lock(&app.catalog).snap,
        &id,
        q.get("resyncId"),
        spec().sync_metrics_item(),
    )?;
    Ok(super::json(StatusCode::OK, v))
}

pub async fn syncs_metadata(State(app): State<App>, Path(id): Path<String>) -> ApiResult<Response> {
    let v = integration::syncs_metadata(&lock(&app.catalog).snap, &id)?;
    Ok(super::json(StatusCode::OK, v))
}

/// `POST {metricAttributes.ingestUrl}/syncMetrics` with `{syncKindsMetrics: [...]}`.
pub async fn ingest_sync_metrics(
    State(app): State<App>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let body = super::body(&app, Route::IngestSyncMetrics, &bytes)?;
    let now = clock::now_string();
    {
        let mut cat = lock(&app.catalog);
        for item in body["syncKindsMetrics"].as_array().into_iter().flatten() {
            integration::put_kind_metrics(&mut cat.snap, &id, item.clone(), &now)?;
        }
    }
    app.touch();
    Ok(super::json(StatusCode::OK, json!({"ok": true})))
}

/// `PUT {ingestUrl}/syncMetrics/resync/{eventId}/kind/{kindIdentifier}` with
/// `{syncKindMetrics: {...}}`; the path names the resync and kind.
pub async fn ingest_kind_metrics(
    State(app): State<App>,
    Path((id, event, kind)): Path<(String, String, String)>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let body = super::body(&app, Route::IngestKindMetrics, &bytes)?;
    let mut item = body["syncKindMetrics"].clone();
    item["eventId"] = json!(event);
    item["kindIdentifier"] = json!(kind);
    integration::put_kind_metrics(
        &mut lock(&app.catalog).snap,
        &id,
        item,
        &clock::now_string(),
    )?;
    app.touch();
    Ok(super::json(StatusCode::OK, json!({"ok": true})))
}

pub async fn ingest_heartbeat(
    State(app): State<App>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let body = super::body(&app, Route::IngestHeartbeat, &bytes)?;
    {
        let mut cat = lock(&app.catalog);
        let key = integration::resolve(&cat.snap, &id)?.0.clone();
        cat.snap.heartbeats.insert(
            key,
            json!({"eventId": body["eventId"], "at": clock::now_string()}),
        );
    }
    Ok(super::json(StatusCode::OK, json!({"ok": true})))
}

pub async fn ingest_logs(
    State(app): State<App>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let body = super::body(&app, Route::IngestLogs, &bytes)?;
    let n = body["logs"].as_array().map_or(0, Vec::len) as u64;
    {
        let mut cat = lock(&app.catalog);
        let key = integration::resolve(&cat.snap, &id)?.0.clone();
        *cat.snap.log_lines.entry(key).or_default() += n;
    }
    Ok(super::json(StatusCode::OK, json!({"ok": true})))
}
