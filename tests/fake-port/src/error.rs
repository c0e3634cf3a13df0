//! Port's error envelope: `{"ok": false, "error": "<code>", "message": "<text>"}`.
//!
//! Owns: the error type every handler returns and its HTTP rendering, and the code strings.
//! Must not touch: decisions about *when* to fail; those belong to the routes, the catalog
//! rules and the fault engine.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

// Only `not_found` is confirmed by the contract; the other codes are the fake's choice.
pub const NOT_FOUND: &str = "not_found";
pub const UNAUTHORIZED: &str = "unauthorized";
pub const INVALID_REQUEST: &str = "invalid_request";
pub const INVALID_JSON: &str = "invalid_json";
pub const CONFLICT: &str = "conflict";
pub const HAS_DEPENDENTS: &str = "has_dependents";
pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
pub const RATE_LIMITED: &str = "rate_limit_exceeded";
pub const INTERNAL: &str = "internal_error";

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra response headers (rate-limit headers of a 429); boxed to keep the error small.
    pub headers: Option<Box<HeaderMap>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: None,
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, NOT_FOUND, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, UNAUTHORIZED, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, INVALID_REQUEST, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, CONFLICT, message)
    }
    pub fn blueprint_not_found(bp: &str) -> Self {
        Self::not_found(format!("Blueprint with identifier \"{bp}\" was not found"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"ok": false, "error": self.code, "message": self.message});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(h) = self.headers {
            resp.headers_mut().extend(*h);
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
