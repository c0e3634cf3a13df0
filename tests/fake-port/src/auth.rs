//! Access tokens: `POST /v1/auth/access_token` issues them, every other `/v1` route checks the
//! `Authorization: Bearer <token>` header.
//!
//! Owns: issued tokens, their expiry, "one active token per credential set" (asking again
//! before expiry returns the same token) and revocation for tests. Must not touch: which
//! credentials are accepted (the `Config`) or fault decisions (an "early 401" is injected by the
//! middleware through `faults.rs`).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::config::ExpiresInOnReuse;
use crate::error::ApiError;

#[derive(Debug, Clone)]
struct TokenInfo {
    client_id: String,
    expires: Instant,
}

#[derive(Debug, Default)]
pub struct TokenStore {
    by_token: HashMap<String, TokenInfo>,
    by_client: HashMap<String, String>,
    issued: u64,
}

impl TokenStore {
    /// The credential set's active token, or a new one. Returns the token and the `expiresIn`
    /// to report.
    pub fn issue(
        &mut self,
        client_id: &str,
        ttl: Duration,
        on_reuse: ExpiresInOnReuse,
    ) -> (String, Duration) {
        let now = Instant::now();
        if let Some(token) = self.by_client.get(client_id)
            && let Some(info) = self.by_token.get(token)
            && info.expires > now
        {
            let left = info.expires - now;
            let reported = match on_reuse {
                ExpiresInOnReuse::Remaining => left,
                ExpiresInOnReuse::Full => ttl,
            };
            return (token.clone(), reported);
        }
        self.issued += 1;
        let token = unsigned_jwt(client_id, ttl, self.issued);
        self.by_token.insert(
            token.clone(),
            TokenInfo {
                client_id: client_id.to_string(),
                expires: now + ttl,
            },
        );
        if let Some(old) = self.by_client.insert(client_id.to_string(), token.clone()) {
            self.by_token.remove(&old);
        }
        (token, ttl)
    }

    /// The clientId behind a valid `Authorization` header.
    pub fn check(&self, header: Option<&str>) -> Result<String, ApiError> {
        let header =
            header.ok_or_else(|| ApiError::unauthorized("No Authorization header was sent"))?;
        let (scheme, token) = header.split_once(' ').ok_or_else(|| {
            ApiError::unauthorized("Authorization header must be 'Bearer <token>'")
        })?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::unauthorized(
                "Authorization header must be 'Bearer <token>'",
            ));
        }
        let info = self
            .by_token
            .get(token.trim())
            .ok_or_else(|| ApiError::unauthorized("The access token is invalid"))?;
        if info.expires <= Instant::now() {
            return Err(ApiError::unauthorized("The access token has expired"));
        }
        Ok(info.client_id.clone())
    }

    /// Revokes every token (the next call with one gets 401).
    pub fn expire_all(&mut self) {
        self.by_token.clear();
        self.by_client.clear();
    }
}

/// The one organization every token belongs to (`orgId` claim, `GET /v1/organization`).
pub const ORG_ID: &str = "org_fakeport";

/// An unsigned JWT with the claims Ocean reads (`isMachine`, `personalToken`); Port's clients
/// decode it without checking the signature.
fn unsigned_jwt(client_id: &str, ttl: Duration, n: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let claims = json!({
        "sub": client_id,
        "orgId": ORG_ID,
        "isMachine": true,
        "personalToken": false,
        "iat": now,
        "exp": now + ttl.as_secs(),
        "jti": format!("fake-{n}"),
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(format!("fake-port-signature-{n}"))
    )
}

/// `expiresIn` as a JSON number: whole seconds (rounded down), or a fraction below one second.
pub fn expires_in_json(d: Duration) -> serde_json::Value {
    if d >= Duration::from_secs(1) {
        json!(d.as_secs())
    } else {
        json!(d.as_secs_f64())
    }
}
