//! `POST /v1/auth/access_token`.
//!
//! Owns: turning accepted credentials into a token answer. Must not touch: token bookkeeping
//! (`auth.rs`) or the accepted credentials (`Config`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::auth::expires_in_json;
use crate::error::{ApiError, ApiResult};
use crate::server::{App, lock};
use crate::spec::Route;

pub async fn access_token(State(app): State<App>, bytes: Bytes) -> ApiResult<Response> {
    let body = super::body(&app, Route::AccessToken, &bytes)?;
    let id = body["clientId"].as_str().unwrap_or_default();
    let secret = body["clientSecret"].as_str().unwrap_or_default();
    if !app
        .config
        .credentials
        .iter()
        .any(|c| c.client_id == id && c.client_secret == secret)
    {
        return Err(ApiError::unauthorized("Invalid clientId or clientSecret"));
    }
    let (token, expires_in) =
        lock(&app.tokens).issue(id, app.config.token_ttl, app.config.expires_in_on_reuse);
    Ok(super::json(
        StatusCode::OK,
        json!({
            "ok": true,
            "accessToken": token,
            "expiresIn": expires_in_json(expires_in),
            "tokenType": "Bearer"
        }),
    ))
}
