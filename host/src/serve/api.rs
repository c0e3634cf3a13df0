//! The admin API of `berth serve` (axum on hyper): tenants (create, replace, delete, list,
//! read), an on-demand resync, a tenant's status and sync history, `/metrics` with per-tenant
//! labels, `/healthz`, and the OpenAPI document describing all of it at `/openapi.json`.
//!
//! Every route but `/healthz` and `/openapi.json` needs a bearer token from the serve config.
//! A token scoped to one tenant sees and changes only that tenant: any other tenant is "not
//! found" to it (not "forbidden", which would confirm the tenant exists), lists show only its
//! own, and `/metrics` has only its own series; it may not change its tenant's `weight` or
//! `plugins` (only an admin token may). Secrets are write-only: responses name them and never
//! carry their values; tenant documents are sealed before they reach the store.
//!
//! The listener gives an unauthenticated client as little as possible: the token is checked
//! from the headers before any byte of a body is read, a request's head and body must arrive
//! within `listener.headerTimeoutSeconds` / `bodyTimeoutSeconds` (the header timeout also
//! closes idle kept-alive connections), and requests are rate limited per client address
//! (every request, public routes included) and per token (answered 429 with `Retry-After`).
//!
//! Owns: the listener and its limits, routing, authentication, request/response shapes. Must
//! not touch: scheduling (`serve::worker`) beyond reading its metrics, or tenant validation
//! (`serve::tenants`).

// Handlers return an error `Response` early from helpers; it is built once per request, so
// its size on the stack does not matter.
#![allow(clippy::result_large_err)]

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value, json};
use tokio::sync::watch;
use tower::ServiceExt as _;

use super::config::{AdminToken, ListenerLimits, Rate};
use super::secrets::SecretKey;
use super::tenants::{StoredTenant, TenantDoc, TenantPolicy, check_id};
use super::worker::{Worker, integration_key};
use crate::store::{Store, StoreError, now_ms};

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

pub struct ApiState {
    pub store: Store,
    pub key: Arc<SecretKey>,
    pub policy: TenantPolicy,
    pub tokens: Vec<AdminToken>,
    pub worker: Arc<Worker>,
    /// Berth's OIDC issuer (`None`: no `identity:` section).
    pub issuer: Option<Arc<super::identity::Issuer>>,
    pub limits: RateLimits,
    /// How long a handler waits for a request's whole body.
    pub body_timeout: Duration,
    /// Largest request body read, bytes (`listener.bodyKb`).
    pub max_body_bytes: usize,
}

/// The listener's token buckets: one per configured token, one per client address.
pub struct RateLimits {
    tokens: Vec<DefaultDirectRateLimiter>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

fn quota(r: Rate) -> Quota {
    let at_least_one = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(at_least_one(r.per_second)).allow_burst(at_least_one(r.burst))
}

impl RateLimits {
    pub fn new(limits: &ListenerLimits, tokens: usize) -> Self {
        Self {
            tokens: (0..tokens)
                .map(|_| DefaultDirectRateLimiter::direct(quota(limits.token_rate)))
                .collect(),
            addresses: DefaultKeyedRateLimiter::keyed(quota(limits.address_rate)),
            clock: DefaultClock::default(),
        }
    }

    /// One request with token number `index`; how long to wait when over the limit.
    fn token(&self, index: usize) -> Result<(), Duration> {
        match self.tokens.get(index).map(|l| l.check()) {
            Some(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            _ => Ok(()),
        }
    }

    /// One request from `ip`; how long to wait when over the limit.
    fn address(&self, ip: IpAddr) -> Result<(), Duration> {
        self.addresses
            .check_key(&client_key(ip))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets the addresses whose buckets are full again (indistinguishable from new ones),
    /// so the table does not keep every address ever seen.
    pub fn forget_idle(&self) {
        self.addresses.retain_recent();
        self.addresses.shrink_to_fit();
    }
}

/// The rate-limit key of a client: its IPv4 address, or its IPv6 /64 (one host commonly has
/// a whole /64, and would otherwise get a fresh bucket per address).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// Who is calling.
#[derive(Clone)]
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

fn too_many(wait: Duration, whose: &str) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests from {whose}; retry in {seconds} s"),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    r
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

/// The caller and the index of its token in the serve config.
fn authenticate(state: &ApiState, headers: &HeaderMap) -> Result<(usize, Caller), Response> {
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
    for (i, t) in state.tokens.iter().enumerate() {
        if same(&t.token, presented) && found.is_none() {
            found = Some((
                i,
                match &t.tenant {
                    None => Caller::Admin,
                    Some(id) => Caller::Tenant(id.clone()),
                },
            ));
        }
    }
    found.ok_or_else(unauthorized)
}

/// Every request, public or not, spends from its client address's bucket first.
async fn limit_address(State(s): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().cloned()
        && let Err(wait) = s.limits.address(peer.ip())
    {
        return too_many(wait, "this address");
    }
    next.run(req).await
}

/// The token is checked from the headers alone, before anything reads the body: an
/// unauthenticated client cannot make the server buffer (or wait for) a body.
async fn require_token(State(s): State<Arc<ApiState>>, mut req: Request, next: Next) -> Response {
    let (index, caller) = match authenticate(&s, req.headers()) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(wait) = s.limits.token(index) {
        return too_many(wait, "this token");
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

pub fn router(state: Arc<ApiState>) -> Router {
    let private = Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/tenants", get(list_tenants))
        .route(
            "/v1/tenants/{id}",
            get(get_tenant).put(put_tenant).delete(delete_tenant),
        )
        .route("/v1/tenants/{id}/resync", post(resync))
        .route("/v1/tenants/{id}/status", get(status))
        .route("/v1/tenants/{id}/syncs", get(syncs))
        .route("/v1/tenants/{id}/aws-setup", get(aws_setup))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let mut public = Router::new();
    if let Some(issuer) = &state.issuer {
        // Under the issuer's path, where relying parties look for them.
        let path = issuer.config().path();
        public = public
            .route(
                &format!("{path}/.well-known/openid-configuration"),
                get(oidc_discovery),
            )
            .route(&format!("{path}/.well-known/jwks.json"), get(oidc_jwks));
    }
    Router::new()
        .merge(public)
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .merge(private)
        .layer(middleware::from_fn_with_state(state.clone(), limit_address))
        .with_state(state)
}

/// Serves `app` on `listener` until `stop` turns true. hyper rather than `axum::serve`, which
/// has no header-read timeout: a client that never finishes its request head is cut off
/// after `headerTimeoutSeconds`, as is a kept-alive connection that sends nothing more.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: &ListenerLimits,
    mut stop: watch::Receiver<bool>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout());
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait for some to close, not spin.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "admin API connection: {e}");
            }
        });
    }
    drop(listener);
    // Requests under way finish and idle connections close; none can take longer than its
    // handler (a stalled client is cut off by the timeouts), but do not hang the stop on one.
    let grace = limits.header_timeout() + limits.body_timeout();
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("admin API connections still open after {grace:?}; closing them");
    }
}

async fn metrics(State(s): State<Arc<ApiState>>, Extension(caller): Extension<Caller>) -> Response {
    let only = match &caller {
        Caller::Admin => None,
        Caller::Tenant(t) => Some(t.as_str()),
    };
    (
        [(
            header::CONTENT_TYPE,
            crate::pipeline::runner::METRICS_CONTENT_TYPE,
        )],
        s.worker.metrics(only),
    )
        .into_response()
}

async fn list_tenants(
    State(s): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
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

fn view(row: &crate::store::TenantRow, t: &StoredTenant, policy: &TenantPolicy) -> Value {
    let mut v = t.redacted();
    v["effective"] = t.effective(&row.id, policy);
    v["id"] = json!(row.id);
    v["version"] = json!(row.version);
    v["createdAt"] = json!(row.created_at);
    v["updatedAt"] = json!(row.updated_at);
    v
}

async fn get_tenant(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
) -> Response {
    match load(&s, &caller, &id).await {
        Ok(Some((row, t))) => json_response(
            StatusCode::OK,
            &json!({"ok": true, "tenant": view(&row, &t, &s.policy)}),
        ),
        Ok(None) => not_found(&id),
        Err(r) => r,
    }
}

async fn oidc_discovery(State(s): State<Arc<ApiState>>) -> Response {
    match &s.issuer {
        Some(i) => json_response(StatusCode::OK, &i.discovery()),
        None => error(StatusCode::NOT_FOUND, "not_found", "no OIDC issuer here"),
    }
}

async fn oidc_jwks(State(s): State<Arc<ApiState>>) -> Response {
    let Some(issuer) = &s.issuer else {
        return error(StatusCode::NOT_FOUND, "not_found", "no OIDC issuer here");
    };
    match issuer.jwks().await {
        Ok(set) => {
            let mut r = json_response(StatusCode::OK, &json!(set));
            // Short next to the publish lead: a cached copy always has the next key in time.
            let age = (issuer.config().publish_lead_seconds / 4).clamp(1, 300);
            if let Ok(v) = header::HeaderValue::from_str(&format!("public, max-age={age}")) {
                r.headers_mut().insert(header::CACHE_CONTROL, v);
            }
            r
        }
        Err(e) => {
            tracing::warn!("JWKS: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the signing keys cannot be read now",
            )
        }
    }
}

/// `GET /v1/tenants/{id}/aws-setup`: the templates, this tenant's parameters and the
/// quick-create link.
async fn aws_setup(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let Some(issuer) = &s.issuer else {
        return error(
            StatusCode::CONFLICT,
            "no_identity",
            "this Berth has no `identity:` section in its serve config: it cannot be an OIDC provider",
        );
    };
    match load(&s, &caller, &id).await {
        Ok(Some((row, t))) => json_response(
            StatusCode::OK,
            &json!({"ok": true, "setup": super::aws_setup::setup(issuer.config(), &id, &row.incarnation, &t.external_id)}),
        ),
        Ok(None) => not_found(&id),
        Err(r) => r,
    }
}

/// Reads a request body of at most `max` bytes, all of it within `timeout`: a client dripping
/// a byte at a time cannot hold the handler longer than that.
async fn read_body(
    body: Body,
    timeout: Duration,
    max: usize,
) -> Result<axum::body::Bytes, Response> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, max)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let inner = e.into_inner();
            if inner.is::<http_body_util::LengthLimitError>() {
                Err(too_large(max))
            } else {
                Err(error(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    format!("the request body could not be read: {inner}"),
                ))
            }
        }
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs()
            ),
        )),
    }
}

fn too_large(max: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("a tenant document is at most {max} bytes (listener.bodyKb)"),
    )
}

async fn put_tenant(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Everything the headers alone decide is answered before the body is read.
    if let Err(e) = check_id(&id) {
        return error(StatusCode::BAD_REQUEST, "invalid_id", e.to_string());
    }
    if !caller.sees(&id) {
        return not_found(&id);
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if length.is_some_and(|n| n > s.max_body_bytes as u64) {
        return too_large(s.max_body_bytes);
    }
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
    let body = match read_body(body, s.body_timeout, s.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut doc: TenantDoc = match serde_json::from_slice(&body) {
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
    let previous = match load(&s, &caller, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Caller::Tenant(_) = caller
        && let Err(r) = keep_admin_fields(&mut doc, previous.as_ref().map(|(_, t)| t))
    {
        return r;
    }
    let stored = StoredTenant::merged(previous.as_ref().map(|(_, t)| t), doc);
    let config = match stored.checked_config(&id, &s.policy) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_tenant", e.to_string()),
    };
    if s.issuer.is_none()
        && config.aws.as_ref().map(|a| a.auth.method)
            == Some(crate::discovery::config::AuthMethod::BerthIdentity)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            format!("tenant {id}: {}", super::identity::NEEDS_ISSUER),
        );
    }
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
            json_response(
                status,
                &json!({"ok": true, "tenant": view(&row, &stored, &s.policy)}),
            )
        }
        Err(e) => store_error(e),
    }
}

/// A tenant's own token may repeat its `weight` and `plugins` (a GET, edit, PUT round trip)
/// but not change them: they decide its share of the worker and what code runs for it, which
/// is the operator's call. Left out, they keep their stored values (1 and the operator's
/// default for a new tenant).
fn keep_admin_fields(doc: &mut TenantDoc, previous: Option<&StoredTenant>) -> Result<(), Response> {
    let weight = previous.map_or(1, |p| p.weight);
    let plugins = previous.and_then(|p| p.plugins.clone());
    let forbidden = |key: &str| {
        error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{key}: only an admin token may change it"),
        )
    };
    if doc.weight.is_some_and(|w| w != weight) {
        return Err(forbidden("weight"));
    }
    if doc.plugins.is_some() && doc.plugins != plugins {
        return Err(forbidden("plugins"));
    }
    doc.weight = Some(weight);
    doc.plugins = plugins;
    Ok(())
}

async fn delete_tenant(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if !caller.sees(&id) {
        return not_found(&id);
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
    Extension(caller): Extension<Caller>,
) -> Response {
    if !caller.sees(&id) {
        return not_found(&id);
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
    Extension(caller): Extension<Caller>,
) -> Response {
    // The external id is shown here too: it is what the customer's trust policy must name.
    let tenant = match load(&s, &caller, &id).await {
        Ok(Some((_, t))) => t,
        Ok(None) => return not_found(&id),
        Err(r) => return r,
    };
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
            "externalId": tenant.external_id,
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
    Extension(caller): Extension<Caller>,
) -> Response {
    if !caller.sees(&id) {
        return not_found(&id);
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
            "GET /v1/tenants/{id}/aws-setup",
            "GET /.well-known/openid-configuration",
            "GET /.well-known/jwks.json",
        ];
        served.sort();
        assert_eq!(documented, served);
        assert_eq!(doc["openapi"], "3.1.0");
    }

    /// The body cap is the listener's `bodyKb`: a body of exactly the cap is read, one byte
    /// more is 413.
    #[tokio::test]
    async fn bodies_past_the_configured_cap_are_refused() {
        let max = 2 << 10;
        let timeout = Duration::from_secs(5);
        let got = read_body(Body::from(vec![b' '; max]), timeout, max)
            .await
            .unwrap();
        assert_eq!(got.len(), max);
        let refused = read_body(Body::from(vec![b' '; max + 1]), timeout, max)
            .await
            .unwrap_err();
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = axum::body::to_bytes(refused.into_body(), 1 << 16)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("at most 2048 bytes"), "{text}");
    }

    #[test]
    fn token_comparison() {
        assert!(same("abcdef0123456789", "abcdef0123456789"));
        assert!(!same("abcdef0123456789", "abcdef012345678"));
        assert!(!same("abcdef0123456789", "bbcdef0123456789"));
    }
}
