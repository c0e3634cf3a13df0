//! The route table and the helpers handlers share (query and body checks, write context,
//! JSON answers).
//!
//! Owns: which path and method reach which handler, and the 404 for unknown routes. Must not
//! touch: the middleware's concerns (auth, faults, body cap, log) or the rules in `catalog.rs`.

mod admin;
mod blueprints;
mod entities;
mod integrations;
mod organization;
mod queries;
mod tokens;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::Value;

use crate::catalog::WriteCtx;
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::query::QueryParams;
use crate::server::{App, Caller};
use crate::spec::{Route, spec};

pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(admin::index))
        // Auth
        .route("/v1/auth/access_token", post(tokens::access_token))
        // Blueprints
        .route(
            "/v1/blueprints",
            get(blueprints::list).post(blueprints::create),
        )
        .route(
            "/v1/blueprints/{bp}",
            get(blueprints::get_one)
                .put(blueprints::replace)
                .patch(blueprints::patch)
                .delete(blueprints::delete),
        )
        // Entities
        .route(
            "/v1/blueprints/{bp}/entities",
            get(entities::list).post(entities::upsert),
        )
        .route(
            "/v1/blueprints/{bp}/entities/bulk",
            post(entities::bulk_upsert)
                .get(entities::get_named_bulk)
                .patch(entities::patch_named_bulk)
                .put(entities::replace_named_bulk)
                .delete(entities::delete_named_bulk),
        )
        .route(
            "/v1/blueprints/{bp}/entities/search",
            post(queries::blueprint_search)
                .get(entities::get_named_search)
                .patch(entities::patch_named_search)
                .put(entities::replace_named_search)
                .delete(entities::delete_named_search),
        )
        .route(
            "/v1/blueprints/{bp}/entities/{id}",
            get(entities::get_one)
                .patch(entities::patch)
                .put(entities::replace)
                .delete(entities::delete_one),
        )
        .route("/v1/blueprints/{bp}/entities-count", get(entities::count))
        .route(
            "/v1/blueprints/{bp}/all-entities",
            axum::routing::delete(entities::delete_all),
        )
        .route(
            "/v1/blueprints/{bp}/bulk/entities/delete",
            post(entities::bulk_delete),
        )
        // Search
        .route("/v1/entities/search", post(queries::search))
        .route(
            "/v1/blueprints/entities/datasource-entities",
            post(queries::datasource_entities),
        )
        // Organization (Ocean reads its feature flags at start-up)
        .route("/v1/organization", get(organization::get_one))
        // Integration
        .route(
            "/v1/integration",
            get(integrations::list).post(integrations::create),
        )
        // A static segment: matched before `/v1/integration/{id}`.
        .route(
            "/v1/integration/provision-enabled",
            get(integrations::provision_enabled),
        )
        .route(
            "/v1/integration/{id}",
            get(integrations::get_one)
                .patch(integrations::patch)
                .delete(integrations::delete),
        )
        .route(
            "/v1/integration/{id}/config",
            axum::routing::patch(integrations::patch_config),
        )
        .route(
            "/v1/integration/{id}/resync-state",
            axum::routing::patch(integrations::patch_resync_state),
        )
        .route(
            "/v1/integration/{id}/resync-request",
            get(integrations::resync_request),
        )
        .route(
            "/v1/integration/{id}/kinds/{kind}/examples",
            post(integrations::examples),
        )
        .route(
            "/v1/integration/{id}/syncMetrics",
            get(integrations::sync_metrics),
        )
        .route(
            "/v1/integration/{id}/syncsMetadata",
            get(integrations::syncs_metadata),
        )
        // Ingest URLs handed out in metricAttributes / logAttributes
        .route(
            "/ingest/{id}/metrics/syncMetrics",
            post(integrations::ingest_sync_metrics),
        )
        .route(
            "/ingest/{id}/metrics/syncMetrics/resync/{event}/kind/{kind}",
            put(integrations::ingest_kind_metrics),
        )
        .route(
            "/ingest/{id}/metrics/heartbeat",
            post(integrations::ingest_heartbeat).put(integrations::ingest_heartbeat),
        )
        .route("/ingest/{id}/logs", post(integrations::ingest_logs))
        // Admin
        .route(
            "/_fake/faults",
            get(admin::get_faults)
                .put(admin::put_faults)
                .post(admin::put_faults)
                .patch(admin::patch_faults)
                .delete(admin::clear_faults),
        )
        .route("/_fake/reset", post(admin::reset))
        .route(
            "/_fake/requests",
            get(admin::requests).delete(admin::clear_requests),
        )
        .route("/_fake/state", get(admin::state).put(admin::put_state))
        .route("/_fake/save", post(admin::save))
        .route("/_fake/tokens/expire", post(admin::expire_tokens))
        .route(
            "/_fake/integrations/{id}/resync-request",
            post(admin::request_resync),
        )
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .with_state(app)
}

/// Port (fastify) answers unknown method/path pairs with 404.
async fn unknown_route(method: Method, uri: Uri) -> Response {
    ApiError::not_found(format!("Route {method}:{} not found", uri.path())).into_response()
}

/// Checks the query string against the spec's parameters for `route`.
pub(crate) fn query(app: &App, route: Route, raw: Option<&str>) -> ApiResult<QueryParams> {
    let q = QueryParams::parse(raw);
    if app.config.validate_requests {
        spec().check_query(route, &q)?;
    }
    Ok(q)
}

/// Parses the body and checks it against the route's request schema.
pub(crate) fn body(app: &App, route: Route, bytes: &Bytes) -> ApiResult<Value> {
    if app.config.validate_requests {
        spec().parse_body(route, bytes)
    } else if bytes.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(bytes)
            .map_err(|e| ApiError::invalid(format!("Body is not valid JSON: {e}")))
    }
}

pub(crate) fn write_ctx<'a>(app: &App, caller: &'a Caller) -> WriteCtx<'a> {
    WriteCtx {
        datasource: caller.user_agent.as_deref(),
        user: &caller.user,
        now: clock::now_string(),
        policy: app.config.datasource_policy,
    }
}

pub(crate) fn json(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}
