//! Port credentials and the cached access token.
//!
//! Owns: the client id + secret (the secret is never shown by `Debug`), the body of
//! `POST /v1/auth/access_token` and the parsing of its answer, the cached token and the rule for
//! refreshing it (before expiry, and once after a 401). Only one fetch runs at a time; callers
//! waiting meanwhile get its token. Must not touch: HTTP itself or retries; the client hands in
//! the fetch (`client.rs`), which goes through the common retry policy.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::PortError;

/// A secret string: `Debug` prints `<redacted>`, and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A Port client id and secret (Port → Settings → Credentials).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: Secret,
}

impl Credentials {
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Secret::new(client_secret),
        }
    }

    /// The JSON body of `POST /v1/auth/access_token`.
    pub(crate) fn token_request_body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "clientId": self.client_id,
            "clientSecret": self.client_secret.expose(),
        }))
        .unwrap_or_default()
    }
}

/// What `POST /v1/auth/access_token` granted.
#[derive(Clone, PartialEq)]
pub struct TokenGrant {
    pub access_token: Secret,
    pub expires_in: Duration,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("access_token", &self.access_token)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Parses the 200 answer `{"accessToken", "expiresIn" (seconds), "tokenType"}`.
pub fn parse_token_answer(body: &[u8]) -> Result<TokenGrant, PortError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        access_token: String,
        expires_in: f64,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|e| {
        PortError::InvalidResponse(format!("access token answer is not as expected: {e}"))
    })?;
    if !a.expires_in.is_finite() || a.expires_in < 0.0 {
        return Err(PortError::InvalidResponse(format!(
            "access token answer has expiresIn {}",
            a.expires_in
        )));
    }
    Ok(TokenGrant {
        access_token: Secret(a.access_token),
        expires_in: Duration::from_secs_f64(a.expires_in.min(1e9)),
    })
}

/// Whether a token of `lifetime`, fetched `age` ago, should be replaced before use (see
/// [`crate::limits::PORT_TOKEN_REFRESH_MARGIN`]).
pub fn needs_refresh(age: Duration, lifetime: Duration) -> bool {
    let margin = crate::limits::PORT_TOKEN_REFRESH_MARGIN.min(lifetime / 10);
    age.saturating_add(margin) >= lifetime
}

struct Cached {
    token: Arc<str>,
    fetched: Instant,
    lifetime: Duration,
}

/// The token cache of one client.
pub struct TokenCache {
    credentials: Credentials,
    current: Mutex<Option<Cached>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            current: Mutex::new(None),
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// A usable token: the cached one, or a new one from `fetch` when there is none or it is
    /// about to expire. Concurrent callers wait for one fetch instead of each making their own.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<Arc<str>, PortError>
    where
        F: FnOnce(Credentials) -> Fut,
        Fut: Future<Output = Result<TokenGrant, PortError>>,
    {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref()
            && !needs_refresh(c.fetched.elapsed(), c.lifetime)
        {
            return Ok(c.token.clone());
        }
        let fetched = Instant::now();
        let grant = fetch(self.credentials.clone()).await?;
        let token: Arc<str> = Arc::from(grant.access_token.expose());
        *current = Some(Cached {
            token: token.clone(),
            fetched,
            lifetime: grant.expires_in,
        });
        Ok(token)
    }

    /// Drops the cached token after Port answered 401 to it, so the next [`TokenCache::get`]
    /// fetches anew. A token another caller already replaced is left alone.
    pub async fn invalidate(&self, rejected: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| &*c.token == rejected) {
            *current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn secret_never_shown() {
        let c = Credentials::new("id-1", "very-secret-value");
        let shown = format!("{c:?} {:?}", c.client_secret);
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(shown.contains("id-1"));
        let body = String::from_utf8(c.token_request_body()).unwrap();
        assert_eq!(
            body,
            r#"{"clientId":"id-1","clientSecret":"very-secret-value"}"#
        );
    }

    #[test]
    fn refresh_margin() {
        let three_h = Duration::from_secs(3 * 3600);
        assert!(!needs_refresh(Duration::ZERO, three_h));
        assert!(!needs_refresh(three_h - Duration::from_secs(61), three_h));
        assert!(needs_refresh(three_h - Duration::from_secs(60), three_h));
        assert!(needs_refresh(three_h * 2, three_h));
        let two_s = Duration::from_secs(2);
        assert!(!needs_refresh(Duration::from_millis(1700), two_s));
        assert!(needs_refresh(Duration::from_millis(1800), two_s));
        assert!(needs_refresh(Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn token_answer_parsing() {
        let g = parse_token_answer(
            br#"{"ok":true,"accessToken":"abc","expiresIn":10800,"tokenType":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(g.access_token.expose(), "abc");
        assert_eq!(g.expires_in, Duration::from_secs(10800));
        assert!(!format!("{g:?}").contains("abc"));
        let frac = parse_token_answer(br#"{"accessToken":"t","expiresIn":0.25}"#).unwrap();
        assert_eq!(frac.expires_in, Duration::from_millis(250));
        assert!(parse_token_answer(br#"{"accessToken":"t"}"#).is_err());
        assert!(parse_token_answer(b"not json").is_err());
    }

    #[tokio::test]
    async fn cache_reuses_and_invalidates() {
        let cache = TokenCache::new(Credentials::new("id", "secret"));
        let counter = AtomicU32::new(0);
        let calls = &counter;
        let fetch = move |_c: Credentials| async move {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            Ok(TokenGrant {
                access_token: Secret::new(format!("tok-{n}")),
                expires_in: Duration::from_secs(3600),
            })
        };
        assert_eq!(&*cache.get(fetch).await.unwrap(), "tok-0");
        assert_eq!(&*cache.get(fetch).await.unwrap(), "tok-0");
        // A stale 401 for an older token does not drop the current one.
        cache.invalidate("tok-old").await;
        assert_eq!(&*cache.get(fetch).await.unwrap(), "tok-0");
        cache.invalidate("tok-0").await;
        assert_eq!(&*cache.get(fetch).await.unwrap(), "tok-1");
        assert_eq!(counter.load(Ordering::SeqCst), 2);
    }
}
