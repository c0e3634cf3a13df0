//! [`PortClient`]: the HTTP calls Berth makes to Port, each through the common retry policy,
//! token handling and request budget.
//!
//! Owns: the base URL (EU, US or custom), the User-Agent that makes Port record Berth's writes
//! under the same `$datasource` as Ocean's, every request's send/retry/refresh loop, and bulk
//! upsert: batching (at most `limits.port.bulkEntities` entities and `bodyKb` of body per call,
//! by default Port's maxima of 20 and 1 MiB), mapping Port's per-index results back to the
//! caller's entities, and splitting a batch Port answers 413.
//! Must not touch: mappings, AWS, plugins, change detection or reconciliation; entities arrive
//! as [`Entity`] records whose bodies go into the request as they are (never parsed or
//! re-serialised here), and leave as per-entity results.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use futures::future::BoxFuture;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, USER_AGENT};
use serde::Deserialize;
use serde_json::Value;

use super::PortError;
use super::auth::{Credentials, TokenCache, TokenGrant, parse_token_answer};
use super::entity::Entity;
use super::retry::{
    Budget, RetryPolicy, is_loopback_url, is_retryable_status, jitter_unit, pacing, server_hint,
};
use crate::limits::PortLimits;

/// Port's EU API (the default region). Ocean still defaults to the legacy host
/// `https://api.getport.io`, which serves the same API.
pub const EU_BASE_URL: &str = "https://api.port.io";
/// Port's US API (legacy host `https://api.us.getport.io`).
pub const US_BASE_URL: &str = "https://api.us.port.io";
const ENVELOPE_OPEN: &[u8] = br#"{"entities":["#;
const ENVELOPE_CLOSE: &[u8] = b"]}";

/// The User-Agent Ocean sends, `port-ocean/{type}/{version}/{identifier}/{exporter|gitops}`.
/// Port keeps the writer's User-Agent as the entity's `$datasource`, which is how Ocean (and so
/// Port's UI) tells which integration owns an entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserAgent {
    pub integration_type: String,
    pub version: String,
    pub integration_identifier: String,
    /// `exporter` for syncs; `None` leaves the last segment off, as Ocean does without a type.
    pub mode: Option<String>,
}

impl UserAgent {
    /// An exporter User-Agent, e.g. `port-ocean/aws/0.1.0/my-aws/exporter`.
    pub fn exporter(
        integration_type: impl Into<String>,
        version: impl Into<String>,
        integration_identifier: impl Into<String>,
    ) -> Self {
        Self {
            integration_type: integration_type.into(),
            version: version.into(),
            integration_identifier: integration_identifier.into(),
            mode: Some("exporter".into()),
        }
    }
}

impl fmt::Display for UserAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "port-ocean/{}/{}/{}",
            self.integration_type, self.version, self.integration_identifier
        )?;
        if let Some(mode) = &self.mode {
            write!(f, "/{mode}")?;
        }
        Ok(())
    }
}

/// Everything a [`PortClient`] is built from. The limits' meanings and defaults are those of
/// [`PortLimits`] (`limits.port`), which [`ClientConfig::apply_limits`] sets all at once.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Without a trailing `/v1` (e.g. [`EU_BASE_URL`] or the fake's `http://127.0.0.1:PORT`).
    pub base_url: String,
    pub credentials: Credentials,
    pub user_agent: UserAgent,
    pub retry: RetryPolicy,
    /// Requests in flight at once, across every caller of the client.
    pub concurrency: usize,
    /// Per-attempt timeout of a request.
    pub request_timeout: Duration,
    pub max_bulk_entities: usize,
    pub max_body_bytes: usize,
    pub max_bulk_delete: usize,
    pub search_page: u32,
    pub loopback_refused_attempts: u32,
    /// Sent as `X-Berth-Worker` on every request: which `berth serve` worker made a call
    /// (for tracing a tenant's calls across workers; not an identity).
    pub worker: Option<String>,
}

impl ClientConfig {
    pub fn new(
        base_url: impl Into<String>,
        credentials: Credentials,
        user_agent: UserAgent,
    ) -> Self {
        let mut c = Self {
            base_url: base_url.into(),
            credentials,
            user_agent,
            retry: RetryPolicy::default(),
            concurrency: 0,
            request_timeout: Duration::ZERO,
            max_bulk_entities: 0,
            max_body_bytes: 0,
            max_bulk_delete: 0,
            search_page: 0,
            loopback_refused_attempts: 0,
            worker: None,
        };
        c.apply_limits(&PortLimits::default());
        c
    }

    /// Sets every limit of the client from `limits.port`.
    pub fn apply_limits(&mut self, l: &PortLimits) {
        self.retry = l.retry.clone();
        self.concurrency = l.concurrency;
        self.request_timeout = l.request_timeout;
        self.max_bulk_entities = l.max_bulk_entities;
        self.max_body_bytes = l.max_body_bytes;
        self.max_bulk_delete = l.max_bulk_delete;
        self.search_page = l.search_page;
        self.loopback_refused_attempts = l.loopback_refused_attempts;
    }

    /// Port's EU region.
    pub fn eu(credentials: Credentials, user_agent: UserAgent) -> Self {
        Self::new(EU_BASE_URL, credentials, user_agent)
    }

    /// Port's US region.
    pub fn us(credentials: Credentials, user_agent: UserAgent) -> Self {
        Self::new(US_BASE_URL, credentials, user_agent)
    }
}

/// Query flags of a bulk upsert (`upsert=true` is always sent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpsertOptions {
    /// Merge the given properties into the stored entity instead of replacing it.
    pub merge: bool,
    /// Let Port create bare entities for relation targets that do not exist yet.
    pub create_missing_related_entities: bool,
}

/// Why one entity was not written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityError {
    /// Port's per-entity `statusCode` (or the whole call's status); `None` when the entity was
    /// refused before sending (body not an object, over the size cap, wrong blueprint).
    pub status: Option<u16>,
    /// Port's error code string (`not_found`, ...), when it gave one.
    pub code: Option<String>,
    pub message: String,
}

impl fmt::Display for EntityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status, &self.code) {
            (Some(s), Some(c)) => write!(f, "HTTP {s} {c}: {}", self.message),
            (Some(s), None) => write!(f, "HTTP {s}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// The outcome for one input entity of [`PortClient::upsert_bulk`], in input order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityResult {
    /// The entity's `identifier` (its JSON text when it is a search query object).
    pub identifier: String,
    pub outcome: Result<(), EntityError>,
}

impl EntityResult {
    pub fn is_ok(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// One answered request (any status but 401, which is an error once a refresh did not help).
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
}

/// An entity ready to send: its input position, identifier and body bytes (borrowed from the
/// caller's record: a batch body is the only copy made).
struct Prepared<'a> {
    index: usize,
    identifier: String,
    body: &'a [u8],
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    user_agent: UserAgent,
    user_agent_header: String,
    retry: RetryPolicy,
    request_timeout: Duration,
    concurrency: usize,
    max_bulk_entities: usize,
    max_body_bytes: usize,
    max_bulk_delete: usize,
    search_page: u32,
    loopback_refused_attempts: u32,
    tokens: TokenCache,
    budget: Budget,
}

/// A Port API client. Cheap to clone; clones share the token, the concurrency limit and the
/// rate-limit pauses.
#[derive(Clone)]
pub struct PortClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for PortClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("PortClient")
            .field("base_url", &i.base_url)
            .field("user_agent", &i.user_agent_header)
            .field("client_id", &i.tokens.credentials().client_id)
            .field("concurrency", &i.concurrency)
            .finish_non_exhaustive()
    }
}

impl PortClient {
    pub fn new(config: ClientConfig) -> Result<Self, PortError> {
        let base_url = config.base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(PortError::Config(format!(
                "base URL must start with http:// or https://, got {base_url:?}"
            )));
        }
        if config.max_bulk_entities == 0 || config.max_body_bytes <= ENVELOPE_OPEN.len() + 2 {
            return Err(PortError::Config(
                "max_bulk_entities and max_body_bytes must leave room for one entity".into(),
            ));
        }
        let mut headers = HeaderMap::new();
        if let Some(w) = &config.worker {
            let v = reqwest::header::HeaderValue::from_str(w)
                .map_err(|_| PortError::Config(format!("worker id {w:?} is not a header value")))?;
            headers.insert("x-berth-worker", v);
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .default_headers(headers)
            // Port answers in place; a redirect would carry the bearer token or the client
            // secret (a 307/308 resends the body) to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PortError::Config(format!("HTTP client: {e}")))?;
        let user_agent_header = config.user_agent.to_string();
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base_url,
                user_agent: config.user_agent,
                user_agent_header,
                retry: config.retry,
                request_timeout: config.request_timeout,
                concurrency: config.concurrency.max(1),
                max_bulk_entities: config.max_bulk_entities,
                max_body_bytes: config.max_body_bytes,
                max_bulk_delete: config.max_bulk_delete.max(1),
                search_page: config.search_page.max(1),
                loopback_refused_attempts: config.loopback_refused_attempts,
                tokens: TokenCache::new(config.credentials),
                budget: Budget::new(config.concurrency),
            }),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    pub fn user_agent(&self) -> &UserAgent {
        &self.inner.user_agent
    }

    /// Ids per bulk delete call (`limits.port.bulkDelete`).
    pub(super) fn bulk_delete_size(&self) -> usize {
        self.inner.max_bulk_delete
    }

    /// Entities per search page (`limits.port.searchPage`).
    pub(super) fn search_page(&self) -> u32 {
        self.inner.search_page
    }

    /// Reaches Port and gets an access token (the cached one when it is fresh): whether Port
    /// answers and takes these credentials, with a [`PortError::Transport`] when it cannot be
    /// reached.
    pub async fn check_access(&self) -> Result<(), PortError> {
        self.inner
            .tokens
            .get(|c| self.fetch_token(c))
            .await
            .map(|_| ())
    }

    /// Upserts `entities` into `blueprint` with
    /// `POST /v1/blueprints/{blueprint}/entities/bulk`, in calls of at most
    /// `limits.port.bulkEntities` entities and `bodyKb` KiB, several at once. Returns one result per input entity, in input order.
    ///
    /// Each entity's body (the entity without `blueprint`, which is in the URL) is sent as it
    /// is. An entity naming another blueprint, whose body is not a JSON object, or alone over
    /// the body cap is refused without a call. A batch answered 413 is halved and sent again,
    /// down to single entities. Errors of the whole call: Port unreachable, or credentials
    /// refused.
    pub async fn upsert_bulk(
        &self,
        blueprint: &str,
        entities: &[Entity],
        opts: UpsertOptions,
    ) -> Result<Vec<EntityResult>, PortError> {
        let mut results: Vec<Option<EntityResult>> = vec![None; entities.len()];
        let mut prepared = Vec::with_capacity(entities.len());
        let single_cap = self.inner.max_body_bytes - ENVELOPE_OPEN.len() - ENVELOPE_CLOSE.len();
        for (index, entity) in entities.iter().enumerate() {
            let identifier = identifier_of(entity);
            match check_entity(entity, blueprint, single_cap) {
                Ok(()) => prepared.push(Prepared {
                    index,
                    identifier,
                    body: entity.body.as_bytes(),
                }),
                Err(message) => {
                    results[index] = Some(EntityResult {
                        identifier,
                        outcome: Err(EntityError {
                            status: None,
                            code: None,
                            message,
                        }),
                    })
                }
            }
        }
        let sizes: Vec<usize> = prepared.iter().map(|p| p.body.len()).collect();
        let batches = plan_batches(
            &sizes,
            self.inner.max_bulk_entities,
            self.inner.max_body_bytes,
        );
        let path = format!(
            "/v1/blueprints/{}/entities/bulk?upsert=true&merge={}&create_missing_related_entities={}",
            encode_segment(blueprint),
            opts.merge,
            opts.create_missing_related_entities
        );
        let mut done = futures::stream::iter(batches)
            .map(|range| self.send_batch(&path, &prepared[range]))
            .buffer_unordered(self.inner.concurrency);
        while let Some(batch) = done.next().await {
            for (index, result) in batch? {
                results[index] = Some(result);
            }
        }
        Ok(results
            .into_iter()
            .zip(entities)
            .map(|(r, e)| {
                r.unwrap_or_else(|| EntityResult {
                    identifier: identifier_of(e),
                    outcome: Err(EntityError {
                        status: None,
                        code: None,
                        message: "no result for this entity".into(),
                    }),
                })
            })
            .collect())
    }

    /// Sends one batch; on 413 sends each half instead. Returns `(input index, result)` pairs.
    fn send_batch<'a>(
        &'a self,
        path: &'a str,
        items: &'a [Prepared<'a>],
    ) -> BoxFuture<'a, Result<Vec<(usize, EntityResult)>, PortError>> {
        Box::pin(async move {
            let answer = self
                .send(Method::POST, path, Some(bulk_body(items)))
                .await?;
            if answer.status == 413 && items.len() > 1 {
                let (a, b) = items.split_at(items.len() / 2);
                let (ra, rb) =
                    futures::future::join(self.send_batch(path, a), self.send_batch(path, b)).await;
                let mut out = ra?;
                out.extend(rb?);
                return Ok(out);
            }
            let outcomes = if (200..300).contains(&answer.status) {
                parse_bulk_answer(&answer.body, items.len())
            } else {
                let err = call_error(answer.status, &answer.body);
                vec![Err(err); items.len()]
            };
            Ok(items
                .iter()
                .zip(outcomes)
                .map(|(p, outcome)| {
                    (
                        p.index,
                        EntityResult {
                            identifier: p.identifier.clone(),
                            outcome,
                        },
                    )
                })
                .collect())
        })
    }

    /// One authenticated request through the retry policy and the budget. `path` is under the
    /// base URL, or a whole URL Port handed out. Returns the last
    /// answer (a success, or a status that is not retried, or the last retried one when the
    /// attempts ran out); 401 is retried once with a new token, then an error.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, PortError> {
        let i = &self.inner;
        // Ingest URLs (sync metrics) come whole from Port's integration object.
        let url = if path.starts_with("https://") || path.starts_with("http://") {
            path.to_string()
        } else {
            format!("{}{path}", i.base_url)
        };
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            let token = i.tokens.get(|c| self.fetch_token(c)).await?;
            let mut req = i
                .http
                .request(method.clone(), &url)
                .header(USER_AGENT, &i.user_agent_header)
                .header(AUTHORIZATION, format!("Bearer {token}"));
            if let Some(b) = &body {
                req = req.header(CONTENT_TYPE, "application/json").body(b.clone());
            }
            let sent = {
                let _permit = i.budget.acquire().await;
                read_answer(req).await
            };
            let (status, headers, bytes) = match sent {
                Ok(a) => a,
                Err(source) => {
                    self.wait_after_transport_error(&method, &url, source, attempt)
                        .await?;
                    attempt += 1;
                    continue;
                }
            };
            self.observe(&headers);
            if status == 401 {
                if !refreshed {
                    refreshed = true;
                    i.tokens.invalidate(&token).await;
                    continue;
                }
                return Err(PortError::Unauthorized {
                    path: path.split('?').next().unwrap_or(path).to_string(),
                    message: error_text(&bytes),
                });
            }
            if is_retryable_status(status) && i.retry.may_retry(attempt) {
                self.wait_before_retry(&method, &url, status, &headers, attempt)
                    .await;
                attempt += 1;
                continue;
            }
            return Ok(Answer {
                status,
                body: bytes,
            });
        }
    }

    /// `POST /v1/auth/access_token`, through the same retry policy (without a token).
    async fn fetch_token(&self, credentials: Credentials) -> Result<TokenGrant, PortError> {
        let i = &self.inner;
        let url = format!("{}/v1/auth/access_token", i.base_url);
        let body = credentials.token_request_body();
        let mut attempt = 0u32;
        loop {
            let req = i
                .http
                .post(&url)
                .header(USER_AGENT, &i.user_agent_header)
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
            let sent = {
                let _permit = i.budget.acquire().await;
                read_answer(req).await
            };
            match sent {
                Err(source) => {
                    self.wait_after_transport_error(&Method::POST, &url, source, attempt)
                        .await?;
                }
                Ok((status, headers, bytes)) => {
                    self.observe(&headers);
                    if (200..300).contains(&status) {
                        return parse_token_answer(&bytes);
                    }
                    if !(is_retryable_status(status) && i.retry.may_retry(attempt)) {
                        return Err(PortError::Auth {
                            status,
                            message: error_text(&bytes),
                        });
                    }
                    self.wait_before_retry(&Method::POST, &url, status, &headers, attempt)
                        .await;
                }
            }
            attempt += 1;
        }
    }

    /// Paces every caller by what Port says of its rate-limit window: spaced while it runs low,
    /// paused while it is used up.
    fn observe(&self, headers: &HeaderMap) {
        let i = &self.inner;
        let low = i.concurrency as u64;
        i.budget
            .observe(pacing(headers, SystemTime::now(), low), i.retry.max_delay);
    }

    async fn wait_before_retry(
        &self,
        method: &Method,
        url: &str,
        status: u16,
        headers: &HeaderMap,
        attempt: u32,
    ) {
        let i = &self.inner;
        let hint = server_hint(headers, SystemTime::now());
        let wait = i.retry.delay(attempt, hint, jitter_unit());
        warn_retry(
            method,
            url,
            &format!("HTTP {status}"),
            attempt,
            i.retry.max_attempts.max(1),
            wait,
        );
        if status == 429 {
            // A rate limit applies to everyone: hold the other callers too.
            i.budget.pause_for(wait);
        }
        tokio::time::sleep(wait).await;
    }

    /// After attempt `attempt` (0-based) could not reach `url`: waits before the next attempt
    /// and logs it, or gives up with one line naming the URL and the root cause. A loopback
    /// address that refuses the connection gets only a few quick attempts.
    async fn wait_after_transport_error(
        &self,
        method: &Method,
        url: &str,
        error: reqwest::Error,
        attempt: u32,
    ) -> Result<(), PortError> {
        let i = &self.inner;
        let refused_locally = is_loopback_url(url)
            && crate::error_text::has_io_kind(&error, std::io::ErrorKind::ConnectionRefused);
        let attempts = i
            .retry
            .transport_attempts(refused_locally, i.loopback_refused_attempts);
        let cause = if error.is_timeout() {
            format!("no answer within {:?}", i.request_timeout)
        } else {
            // Without its URL: the error is reported with the URL already.
            crate::error_text::cause(&error.without_url())
        };
        if attempt + 1 >= attempts {
            return Err(PortError::Transport {
                url: without_query(url).to_string(),
                attempts: attempt + 1,
                cause,
            });
        }
        let wait = i.retry.delay(attempt, None, jitter_unit());
        warn_retry(method, url, &cause, attempt, attempts, wait);
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

/// Every retry is logged: a user watching a stuck command sees why and for how long.
fn warn_retry(method: &Method, url: &str, why: &str, attempt: u32, attempts: u32, wait: Duration) {
    let url = without_query(url);
    tracing::warn!(
        "Port: {method} {url}: {why} (attempt {} of {attempts}); next attempt in {:.1}s",
        attempt + 1,
        wait.as_secs_f64()
    );
}

/// `url` for messages: a whole URL Port handed out (an ingest URL) may carry a key in its
/// query, and the query of Berth's own calls says nothing a user needs.
fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

async fn read_answer(
    req: reqwest::RequestBuilder,
) -> Result<(u16, HeaderMap, Vec<u8>), reqwest::Error> {
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await?;
    Ok((status, headers, bytes.to_vec()))
}

/// The identifier to report for an entity: the record's, or for a search query (which the
/// record leaves empty) the JSON text of its body's `identifier`, read only in that case.
pub(super) fn identifier_of(entity: &Entity) -> String {
    if !entity.identifier.is_empty() {
        return entity.identifier.clone();
    }
    #[derive(Deserialize)]
    struct Identifier {
        identifier: Option<Value>,
    }
    match serde_json::from_str::<Identifier>(&entity.body).map(|i| i.identifier) {
        Ok(Some(Value::String(s))) => s,
        Ok(Some(other)) => other.to_string(),
        _ => String::new(),
    }
}

/// Whether one entity may go into a bulk call to `blueprint`: its record names no other
/// blueprint (empty means "not said": the URL decides), its body is an object (one that is
/// not would make Port refuse the whole batch), and it fits a request on its own.
fn check_entity(entity: &Entity, blueprint: &str, max_bytes: usize) -> Result<(), String> {
    if !entity.blueprint.is_empty() && entity.blueprint != blueprint {
        return Err(format!(
            "entity belongs to blueprint {}, not \"{blueprint}\"",
            Value::from(entity.blueprint.as_str())
        ));
    }
    if !entity.body.trim_start().starts_with('{') {
        return Err("entity is not a JSON object".into());
    }
    if entity.body.len() > max_bytes {
        return Err(format!(
            "entity body is {} bytes; a Port request may carry at most {} bytes",
            entity.body.len(),
            max_bytes + ENVELOPE_OPEN.len() + ENVELOPE_CLOSE.len()
        ));
    }
    Ok(())
}

/// Splits entity bodies of these sizes, in order, into batches of at most `max_entities` whose
/// bulk request body (`{"entities":[a,b,...]}`) is at most `max_bytes`. Every single entity must
/// fit on its own.
pub fn plan_batches(sizes: &[usize], max_entities: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let envelope = ENVELOPE_OPEN.len() + ENVELOPE_CLOSE.len();
    let mut batches = Vec::new();
    let mut start = 0;
    let mut bytes = envelope;
    for (i, &size) in sizes.iter().enumerate() {
        let n = i - start;
        let added = size + usize::from(n > 0);
        if n > 0 && (n >= max_entities || bytes + added > max_bytes) {
            batches.push(start..i);
            start = i;
            bytes = envelope + size;
        } else {
            bytes += added;
        }
    }
    if start < sizes.len() {
        batches.push(start..sizes.len());
    }
    batches
}

fn bulk_body(items: &[Prepared<'_>]) -> Vec<u8> {
    let len = items.iter().map(|p| p.body.len() + 1).sum::<usize>() + ENVELOPE_OPEN.len() + 2;
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(ENVELOPE_OPEN);
    for (n, p) in items.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(p.body);
    }
    body.extend_from_slice(ENVELOPE_CLOSE);
    body
}

/// Maps a 200/207 bulk answer (`entities[]` and `errors[]`, each with the `index` of the entity
/// in the request) to one outcome per request position. A position in neither list failed
/// (Ocean counts it so too).
pub fn parse_bulk_answer(body: &[u8], count: usize) -> Vec<Result<(), EntityError>> {
    #[derive(Deserialize)]
    struct Done {
        index: usize,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Failed {
        index: usize,
        status_code: Option<u16>,
        error: Option<Value>,
        message: Option<String>,
    }
    #[derive(Deserialize)]
    struct BulkAnswer {
        #[serde(default)]
        entities: Vec<Done>,
        #[serde(default)]
        errors: Vec<Failed>,
    }
    let missing = |message: &str| EntityError {
        status: None,
        code: None,
        message: message.into(),
    };
    let answer: BulkAnswer = match serde_json::from_slice(body) {
        Ok(a) => a,
        Err(e) => {
            let err = missing(&format!("unreadable bulk upsert answer: {e}"));
            return vec![Err(err); count];
        }
    };
    let mut out = vec![Err(missing("Port's answer has no result for this entity")); count];
    for d in answer.entities {
        if let Some(slot) = out.get_mut(d.index) {
            *slot = Ok(());
        }
    }
    for f in answer.errors {
        if let Some(slot) = out.get_mut(f.index) {
            let (code, nested) = split_error(f.error);
            *slot = Err(EntityError {
                status: f.status_code,
                code,
                message: f.message.or(nested).unwrap_or_default(),
            });
        }
    }
    out
}

/// Port's `error` field: a code string, or (newer routes) an object `{name, message}`.
fn split_error(error: Option<Value>) -> (Option<String>, Option<String>) {
    match error {
        Some(Value::String(s)) => (Some(s), None),
        Some(Value::Object(o)) => (
            o.get("name").and_then(Value::as_str).map(str::to_string),
            o.get("message").and_then(Value::as_str).map(str::to_string),
        ),
        _ => (None, None),
    }
}

/// The error of a whole call, from Port's envelope `{"ok":false,"error","message"}`.
pub(super) fn call_error(status: u16, body: &[u8]) -> EntityError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let (code, nested) = split_error(parsed.as_ref().and_then(|v| v.get("error")).cloned());
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(nested)
        .unwrap_or_else(|| error_text(body));
    EntityError {
        status: Some(status),
        code,
        message,
    }
}

/// A short text of an error body, for messages.
fn error_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut t: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        t.push('…');
    }
    t
}

/// Percent-encodes one path segment (everything but `A-Za-z0-9-._~`).
pub(super) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_agent_format() {
        let ua = UserAgent::exporter("aws", "0.1.0", "my-aws");
        assert_eq!(ua.to_string(), "port-ocean/aws/0.1.0/my-aws/exporter");
        let bare = UserAgent { mode: None, ..ua };
        assert_eq!(bare.to_string(), "port-ocean/aws/0.1.0/my-aws");
    }

    #[test]
    fn batches_respect_count_and_bytes() {
        assert_eq!(plan_batches(&[], 20, 1000), Vec::<Range<usize>>::new());
        assert_eq!(plan_batches(&[10; 21], 20, 1 << 20), vec![0..20, 20..21]);
        assert_eq!(plan_batches(&[10; 40], 20, 1 << 20), vec![0..20, 20..40]);
        // Envelope 15 bytes: 15 + 40 + 1 + 40 = 96 fits in 96; a third does not.
        assert_eq!(plan_batches(&[40, 40, 40], 20, 96), vec![0..2, 2..3]);
        assert_eq!(plan_batches(&[40, 40, 40], 20, 95), vec![0..1, 1..2, 2..3]);
        // Every batch body within the cap, for random-ish sizes.
        let sizes: Vec<usize> = (0..500).map(|i| (i * 7919) % 300_000 + 1).collect();
        let cap = crate::limits::PORT_MAX_BODY_BYTES;
        let batches = plan_batches(&sizes, 20, cap);
        assert_eq!(batches.first().map(|r| r.start), Some(0));
        assert_eq!(batches.last().map(|r| r.end), Some(500));
        for w in batches.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        for r in batches {
            let body: usize = 15 + sizes[r.clone()].iter().sum::<usize>() + r.len() - 1;
            assert!(body <= cap && r.len() <= 20, "{r:?} {body}");
        }
    }

    #[test]
    fn bulk_body_matches_plan_size() {
        let items: Vec<Prepared> = ["{\"identifier\":\"a\"}", "{\"identifier\":\"b\"}"]
            .iter()
            .enumerate()
            .map(|(index, b)| Prepared {
                index,
                identifier: String::new(),
                body: b.as_bytes(),
            })
            .collect();
        let body = bulk_body(&items);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"entities": [{"identifier": "a"}, {"identifier": "b"}]})
        );
        assert_eq!(body.len(), 15 + 18 + 1 + 18);
    }

    #[test]
    fn entity_checked_against_blueprint_shape_and_size() {
        let e = Entity::from_value(
            &json!({"identifier": "x", "blueprint": "svc", "properties": {"a": 1}}),
        )
        .unwrap();
        assert_eq!(check_entity(&e, "svc", 1000), Ok(()));
        assert_eq!(
            check_entity(&e, "other", 1000).unwrap_err(),
            r#"entity belongs to blueprint "svc", not "other""#
        );
        // A record that names no blueprint goes where the call sends it.
        let unnamed = Entity {
            blueprint: String::new(),
            ..e.clone()
        };
        assert_eq!(check_entity(&unnamed, "other", 1000), Ok(()));
        let not_object = Entity {
            body: "[1]".into(),
            ..e.clone()
        };
        assert!(
            check_entity(&not_object, "svc", 1000)
                .unwrap_err()
                .contains("object")
        );
        assert!(check_entity(&e, "svc", 10).unwrap_err().contains("bytes"));
        assert_eq!(identifier_of(&e), "x");
        let query =
            Entity::from_value(&json!({"identifier": {"combinator": "and"}, "blueprint": "svc"}))
                .unwrap();
        assert_eq!(identifier_of(&query), r#"{"combinator":"and"}"#);
    }

    #[test]
    fn bulk_answer_maps_indices() {
        let body = json!({
            "ok": true,
            "entities": [{"identifier": "a", "index": 0, "created": true}, {"identifier": "c", "index": 2}],
            "errors": [{"identifier": "b", "index": 1, "statusCode": 422, "error": "invalid_request",
                        "message": "properties/size must be number"},
                       {"identifier": "z", "index": 99, "statusCode": 404}]
        });
        let out = parse_bulk_answer(body.to_string().as_bytes(), 4);
        assert_eq!(out[0], Ok(()));
        assert_eq!(out[2], Ok(()));
        let e1 = out[1].clone().unwrap_err();
        assert_eq!(e1.status, Some(422));
        assert_eq!(e1.code.as_deref(), Some("invalid_request"));
        assert_eq!(e1.message, "properties/size must be number");
        assert!(out[3].is_err(), "an index missing from both lists failed");
        assert!(parse_bulk_answer(b"<html>", 2).iter().all(Result::is_err));
    }

    #[test]
    fn call_error_reads_envelope_leniently() {
        let e = call_error(
            404,
            br#"{"ok":false,"error":"not_found","message":"no bp"}"#,
        );
        assert_eq!(
            (e.status, e.code.as_deref(), e.message.as_str()),
            (Some(404), Some("not_found"), "no bp")
        );
        let e = call_error(400, br#"{"ok":false,"error":{"name":"bad","message":"m"}}"#);
        assert_eq!((e.code.as_deref(), e.message.as_str()), (Some("bad"), "m"));
        let e = call_error(502, b"Bad Gateway");
        assert_eq!(e.message, "Bad Gateway");
        assert_eq!(e.to_string(), "HTTP 502: Bad Gateway");
    }

    #[test]
    fn segment_encoding() {
        assert_eq!(encode_segment("awsS3Bucket"), "awsS3Bucket");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn config_checks() {
        let creds = Credentials::new("id", "s");
        let ua = UserAgent::exporter("aws", "1", "x");
        assert_eq!(
            ClientConfig::eu(creds.clone(), ua.clone()).base_url,
            EU_BASE_URL
        );
        assert_eq!(
            ClientConfig::us(creds.clone(), ua.clone()).base_url,
            US_BASE_URL
        );
        let bad = ClientConfig::new("ftp://x", creds, ua);
        assert!(matches!(PortClient::new(bad), Err(PortError::Config(_))));
    }
}
