//! `GET /v1/organization`, which Ocean calls at start-up for the organization's feature flags.
//!
//! Owns: the organization's JSON shape. Must not touch: auth (the middleware checks the token, as
//! on every `/v1` route) or any stored state; the fake has one organization and nothing in it
//! can be changed.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::auth::ORG_ID;
use crate::error::ApiResult;
use crate::server::App;
use crate::spec::Route;

/// The spec documents no 200 body for this route, only that it returns "its name, id, and
/// hidden blueprints"; the field names are those of its PUT/PATCH bodies (`name`,
/// `settings.hiddenBlueprints`), plus `featureFlags`, the one field Ocean reads
/// (`organization.featureFlags`). No flags: with `USE_PROVISIONED_DEFAULTS` Ocean would wait for
/// Port to provision an integration's defaults, which the fake never does.
pub async fn get_one(State(app): State<App>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    super::query(&app, Route::GetOrganization, raw.as_deref())?;
    Ok(super::json(
        StatusCode::OK,
        json!({
            "ok": true,
            "organization": {
                "id": ORG_ID,
                "name": "Fake Port",
                "settings": {"hiddenBlueprints": []},
                "featureFlags": []
            }
        }),
    ))
}
