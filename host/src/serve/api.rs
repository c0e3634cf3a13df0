//! The admin API of `berth serve` (axum): tenants (create, replace, delete, list, read), an
//! on-demand resync, a tenant's status and sync history, `/metrics` with per-tenant labels,
//! `/healthz`, and the OpenAPI document describing all of it at `/openapi.json`.
//!
//! Every route but `/healthz` and `/openapi.json` needs a bearer token from the serve config.
//! A token scoped to one tenant sees and changes only that tenant: any other tenant is "not
//! found" to it (not "forbidden", which would confirm the tenant exists), lists show only its
//! own, and `/metrics` has only its own series. Secrets are write-only: responses name them
//! and never carry their values; tenant documents are sealed before they reach the store.
//!
//! Owns: routing, authentication, request/response shapes. Must not touch: scheduling
//! (`serve::worker`) beyond reading its metrics, or tenant validation (`serve::tenants`).

// Handlers return an error `Response` early from helpers; it is built once per request, so
// its size on the stack does not matter.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::config::AdminToken;
use super::secrets::SecretKey;
use super::tenants::{StoredTenant, TenantDoc, TenantPolicy, check_id};
use super::worker::{Worker, integration_key};
use crate::store::{Store, StoreError, now_ms};

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Largest request body accepted (a tenant document with an inline mapping).
const MAX_BODY: usize = 1 << 20;

pub struct ApiState {
    pub store: Store,
    pub key: Arc<SecretKey>,
    pub policy: TenantPolicy,
    pub tokens: Vec<AdminToken>,
    pub worker: Arc<Worker>,
}

/// Who is calling.
enum Caller {
    Admin,
    Tenant(String),
}

impl Caller {
    fn sees(&self, tenant: &str) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Tenant(t) => t == tenant,
        }
    }
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json_response(
        status,
        &json!({"ok": false, "error": code, "message": message.into()}),
    )
}

fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no tenant {id:?}"),
    )
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::Conflict(m) => error(StatusCode::CONFLICT, "conflict", m),
        e => {
            tracing::error!("state store: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the state store is not available; try again",
            )
        }
    }
}

/// Compares without an early exit, so response timing says nothing about a token's prefix.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

fn authenticate(state: &ApiState, headers: &HeaderMap) -> Result<Caller, Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let unauthorized = || {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        r
    };
    let Some(presented) = presented else {
        return Err(unauthorized());
    };
    let mut found = None;
    for t in &state.tokens {
        if same(&t.token, presented) && found.is_none() {
            found = Some(match &t.tenant {
                None => Caller::Admin,
                Some(id) => Caller::Tenant(id.clone()),
            });
        }
    }
    found.ok_or_else(unauthorized)
}

/// [`authenticate`], and the caller may see tenant `id` (else it is "not found" to them).
fn authorize(state: &ApiState, headers: &HeaderMap, id: &str) -> Result<Caller, Response> {
    let caller = authenticate(state, headers)?;
    if caller.sees(id) {
        Ok(caller)
    } else {
        Err(not_found(id))
    }
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/metrics", get(metrics))
        .route("/v1/tenants", get(list_tenants))
        .route(
            "/v1/tenants/{id}",
            get(get_tenant).put(put_tenant).delete(delete_tenant),
        )
        .route("/v1/tenants/{id}/resync", post(resync))
        .route("/v1/tenants/{id}/status", get(status))
        .route("/v1/tenants/{id}/syncs", get(syncs))
        .with_state(state)
}

async fn metrics(State(s): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let caller = match authenticate(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let only = match &caller {
        Caller::Admin => None,
        Caller::Tenant(t) => Some(t.as_str()),
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.worker.metrics(only),
    )
        .into_response()
}

async fn list_tenants(State(s): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let caller = match authenticate(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match s.store.tenants().await {
        Ok(rows) => {
            let tenants: Vec<Value> = rows
                .iter()
                .filter(|r| caller.sees(&r.id))
                .map(|r| json!({"id": r.id, "version": r.version, "updatedAt": r.updated_at}))
                .collect();
            json_response(StatusCode::OK, &json!({"ok": true, "tenants": tenants}))
        }
        Err(e) => store_error(e),
    }
}

/// The stored tenant, if the caller may see it.
async fn load(
    s: &ApiState,
    caller: &Caller,
    id: &str,
) -> Result<Option<(crate::store::TenantRow, StoredTenant)>, Response> {
    if !caller.sees(id) {
        return Err(not_found(id));
    }
    let row = match s.store.tenant(id).await {
        Ok(r) => r,
        Err(e) => return Err(store_error(e)),
    };
    match row {
        None => Ok(None),
        Some(row) => match StoredTenant::open(id, &row.spec, &s.key) {
            Ok(t) => Ok(Some((row, t))),
            Err(e) => {
                tracing::error!("{e}");
                Err(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "sealed",
                    format!("tenant {id}: its stored document cannot be opened with this key"),
                ))
            }
        },
    }
}

fn view(row: &crate::store::TenantRow, t: &StoredTenant) -> Value {
    let mut v = t.redacted();
    v["id"] = json!(row.id);
    v["version"] = json!(row.version);
    v["createdAt"] = json!(row.created_at);
    v["updatedAt"] = json!(row.updated_at);
    v
}

async fn get_tenant(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let caller = match authenticate(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match load(&s, &caller, &id).await {
        Ok(Some((row, t))) => json_response(
            StatusCode::OK,
            &json!({"ok": true, "tenant": view(&row, &t)}),
        ),
        Ok(None) => not_found(&id),
        Err(r) => r,
    }
}

async fn put_tenant(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match authenticate(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(e) = check_id(&id) {
        return error(StatusCode::BAD_REQUEST, "invalid_id", e.to_string());
    }
    if body.len() > MAX_BODY {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a tenant document is at most {MAX_BODY} bytes"),
        );
    }
    let doc: TenantDoc = match serde_json::from_slice(&body) {
        Ok(d) => d,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!(
                    "tenant document, line {} column {}: {e}",
                    e.line(),
                    e.column()
                ),
            );
        }
    };
    let expected = match headers.get(header::IF_MATCH).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => match v.trim_matches('"').parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_if_match",
                    "If-Match: the tenant's version number (0: must not exist yet)",
                );
            }
        },
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_if_match",
                "If-Match: not text",
            );
        }
    };
    let previous = match load(&s, &caller, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let stored = StoredTenant::merged(previous.as_ref().map(|(_, t)| t), doc);
    let config = match stored.checked_config(&id, &s.policy) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_tenant", e.to_string()),
    };
    let interval = StoredTenant::interval_ms(&config);
    let sealed = stored.seal(&id, &s.key);
    match s.store.put_tenant(&id, &sealed, interval, expected).await {
        Ok(row) => {
            let status = if row.version == 1 {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            tracing::info!(tenant = id, version = row.version, "tenant saved");
            json_response(status, &json!({"ok": true, "tenant": view(&row, &stored)}))
        }
        Err(e) => store_error(e),
    }
}

async fn delete_tenant(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&s, &headers, &id) {
        return r;
    }
    match s.store.delete_tenant(&id).await {
        Ok(true) => {
            tracing::info!(tenant = id, "tenant deleted");
            json_response(StatusCode::OK, &json!({"ok": true}))
        }
        Ok(false) => not_found(&id),
        Err(e) => store_error(e),
    }
}

async fn resync(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&s, &headers, &id) {
        return r;
    }
    match s.store.request_sync(&id, now_ms()).await {
        Ok(true) => json_response(
            StatusCode::ACCEPTED,
            &json!({"ok": true, "requested": true}),
        ),
        Ok(false) => not_found(&id),
        Err(e) => store_error(e),
    }
}

async fn status(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&s, &headers, &id) {
        return r;
    }
    let schedule = match s.store.schedule(&id).await {
        Ok(Some(sc)) => sc,
        Ok(None) => return not_found(&id),
        Err(e) => return store_error(e),
    };
    let last = match s.store.sync_history(&integration_key(&id), 1).await {
        Ok(h) => h.into_iter().next().map(sync_json),
        Err(e) => return store_error(e),
    };
    let now = now_ms();
    let leased = schedule.lease_worker.is_some() && schedule.lease_expires > now;
    json_response(
        StatusCode::OK,
        &json!({"ok": true, "status": {
            "id": id,
            "running": leased,
            "worker": if leased { schedule.lease_worker.clone() } else { None },
            "leaseExpiresAt": if leased { Some(schedule.lease_expires) } else { None },
            "dueAt": schedule.due_at,
            "requestedAt": schedule.requested_at,
            "intervalMs": schedule.interval_ms,
            "lastSync": last,
        }}),
    )
}

fn sync_json(r: crate::store::SyncRecord) -> Value {
    let summary: Value = r
        .summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    json!({"syncId": r.sync_id, "startedAt": r.started_at, "endedAt": r.ended_at,
           "status": r.status, "summary": summary})
}

async fn syncs(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&s, &headers, &id) {
        return r;
    }
    match s.store.tenant(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(&id),
        Err(e) => return store_error(e),
    }
    match s.store.sync_history(&integration_key(&id), 100).await {
        Ok(h) => {
            let syncs: Vec<Value> = h.into_iter().map(sync_json).collect();
            json_response(StatusCode::OK, &json!({"ok": true, "syncs": syncs}))
        }
        Err(e) => store_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router serves is in the OpenAPI document, and nothing else is.
    #[test]
    fn openapi_lists_every_route() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        let mut documented: Vec<String> = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in item.as_object().unwrap().keys() {
                if m == "parameters" {
                    continue;
                }
                documented.push(format!("{} {path}", m.to_uppercase()));
            }
        }
        documented.sort();
        let mut served = vec![
            "GET /healthz",
            "GET /openapi.json",
            "GET /metrics",
            "GET /v1/tenants",
            "GET /v1/tenants/{id}",
            "PUT /v1/tenants/{id}",
            "DELETE /v1/tenants/{id}",
            "POST /v1/tenants/{id}/resync",
            "GET /v1/tenants/{id}/status",
            "GET /v1/tenants/{id}/syncs",
        ];
        served.sort();
        assert_eq!(documented, served);
        assert_eq!(doc["openapi"], "3.1.0");
    }

    #[test]
    fn token_comparison() {
        assert!(same("abcdef0123456789", "abcdef0123456789"));
        assert!(!same("abcdef0123456789", "abcdef012345678"));
        assert!(!same("abcdef0123456789", "bbcdef0123456789"));
    }
}
