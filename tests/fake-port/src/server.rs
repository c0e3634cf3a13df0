//! The HTTP server: shared state, the middleware every Port request goes through (body cap,
//! latency, rate limit and injected faults, auth, request log), startup, persistence and the
//! handle tests hold.
//!
//! Owns: [`spawn`], [`FakePortHandle`], the order in which a request meets faults, limits and
//! auth, and saving/loading the state file. Must not touch: route semantics (`routes/`), catalog
//! rules (`catalog.rs`), validation (`spec.rs`).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::TokenStore;
use crate::catalog::Catalog;
use crate::clock;
use crate::config::Config;
use crate::error::{self, ApiError};
use crate::faults::{FaultEngine, Faults, RequestFacts};
use crate::model::Snapshot;
use crate::reqlog::{LogFilter, LoggedRequest, RequestLog};
use crate::routes;

/// Who is calling, put into request extensions by the middleware for `/v1` and ingest routes.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The clientId behind the token (`anonymous` on unauthenticated routes).
    pub user: String,
    pub user_agent: Option<String>,
}

pub struct Shared {
    pub config: Config,
    pub base_url: String,
    pub catalog: Mutex<Catalog>,
    pub tokens: Mutex<TokenStore>,
    pub faults: Mutex<FaultEngine>,
    pub log: Mutex<RequestLog>,
    /// Bumped on every change to the catalog; the saver compares it with the last save.
    pub changes: AtomicU64,
}

pub type App = Arc<Shared>;

/// Locks a mutex, ignoring poisoning (a panicking handler must not wedge the fake).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn touch(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    /// Writes the state file (if one is configured). Returns whether it wrote.
    pub fn save(&self) -> io::Result<bool> {
        let Some(path) = &self.config.state_file else {
            return Ok(false);
        };
        let bytes = {
            let cat = lock(&self.catalog);
            serde_json::to_vec_pretty(&cat.snap).map_err(io::Error::other)?
        };
        Snapshot::save(&bytes, path)?;
        Ok(true)
    }

    /// Clears catalog, tokens, faults and the request log.
    pub fn reset(&self) {
        lock(&self.catalog).replace_snapshot(Snapshot::empty());
        *lock(&self.tokens) = TokenStore::default();
        lock(&self.faults).set(Faults::default());
        lock(&self.log).clear();
        self.touch();
    }
}

/// A running fake Port. Dropping it stops the server (and saves the state file, if any);
/// [`FakePortHandle::shutdown`] does the same and waits for it.
pub struct FakePortHandle {
    app: App,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl FakePortHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (routes are under `/v1`).
    pub fn base_url(&self) -> &str {
        &self.app.base_url
    }

    pub fn faults(&self) -> Faults {
        lock(&self.app.faults).get().clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        lock(&self.app.faults).set(faults);
    }

    /// The request log (admin calls excluded), in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.app.log).filtered(&LogFilter::default())
    }

    pub fn clear_requests(&self) {
        lock(&self.app.log).clear();
    }

    /// A copy of the whole state (what the state file holds).
    pub fn snapshot(&self) -> Snapshot {
        lock(&self.app.catalog).snap.clone()
    }

    /// Revokes every issued token.
    pub fn expire_tokens(&self) {
        lock(&self.app.tokens).expire_all();
    }

    pub fn reset(&self) {
        self.app.reset();
    }

    /// Saves the state file now.
    pub fn save_state(&self) -> io::Result<bool> {
        self.app.save()
    }

    /// Stops accepting requests, lets running ones finish, saves the state file.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for FakePortHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a fake Port on `config.host:config.port` (port 0: an ephemeral one) and returns its
/// address and handle. Loads `config.state_file` when it exists.
pub async fn spawn(config: Config) -> io::Result<(SocketAddr, FakePortHandle)> {
    if let Err(e) = config.faults.check() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, e));
    }
    let snap = match &config.state_file {
        Some(path) if path.exists() => Snapshot::load(path)?,
        _ => Snapshot::empty(),
    };
    // Compile the spec before the first request (and fail loudly if it does not).
    let _ = crate::spec::spec();
    let listener = tokio::net::TcpListener::bind((config.host, config.port)).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let app: App = Arc::new(Shared {
        faults: Mutex::new(FaultEngine::new(config.faults.clone())),
        config,
        base_url,
        catalog: Mutex::new(Catalog::new(snap)),
        tokens: Mutex::new(TokenStore::default()),
        log: Mutex::new(RequestLog::default()),
        changes: AtomicU64::new(0),
    });
    let router = routes::router(app.clone())
        .layer(middleware::from_fn_with_state(app.clone(), port_middleware));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let saver = app
        .config
        .save_interval
        .filter(|_| app.config.state_file.is_some())
        .map(|every| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut saved = app.changes.load(Ordering::SeqCst);
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    let now = app.changes.load(Ordering::SeqCst);
                    if now != saved {
                        match app.save() {
                            Ok(_) => saved = now,
                            Err(e) => eprintln!("fake-port: saving state failed: {e}"),
                        }
                    }
                }
            })
        });
    let task_app = app.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await;
        if let Some(saver) = saver {
            saver.abort();
        }
        task_app.save()?;
        served
    });
    Ok((
        addr,
        FakePortHandle {
            app,
            addr,
            stop: Some(stop_tx),
            task: Some(task),
        },
    ))
}

fn is_admin(path: &str) -> bool {
    path == "/" || path == "/_fake" || path.starts_with("/_fake/")
}

/// Every non-admin request: read the body (cap), wait the latency, meet the rate limit and the
/// injected faults, check the body size and the token (or an armed early 401), run the
/// handler, add `x-ratelimit-*`, log.
async fn port_middleware(State(app): State<App>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if is_admin(&path) {
        return next.run(req).await;
    }
    let started = Instant::now();
    let timestamp = clock::now_string();
    let (mut parts, body) = req.into_parts();
    let query = parts.uri.query().map(str::to_string);
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let worker = parts
        .headers
        .get("x-berth-worker")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let seq = lock(&app.log).next_seq();
    let hard_cap = app.config.max_body_bytes.max(crate::config::ONE_MIB) * 16;
    let (bytes, body_len) = match to_bytes(body, hard_cap).await {
        Ok(b) => {
            let n = b.len();
            (Some(b), n)
        }
        Err(_) => (None, hard_cap + 1),
    };
    let latency = lock(&app.faults).latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let method = parts.method.clone();
    let facts = RequestFacts {
        method: &method,
        path: &path,
        body_len,
    };
    let (mut resp, fault): (Response, Option<&'static str>) = 'answer: {
        let decision = lock(&app.faults).decide(&facts);
        let mut after_handler = None;
        if let Some(inj) = decision {
            if inj.after_handler {
                after_handler = Some(inj);
            } else {
                break 'answer (inj.error.into_response(), Some(inj.kind));
            }
        }
        let Some(bytes) = bytes.filter(|_| body_len <= app.config.max_body_bytes) else {
            break 'answer (
                ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    error::PAYLOAD_TOO_LARGE,
                    format!(
                        "Request body is too large (limit is {} bytes)",
                        app.config.max_body_bytes
                    ),
                )
                .into_response(),
                None,
            );
        };
        let needs_auth = path.starts_with("/ingest/")
            || (path.starts_with("/v1/") && path != "/v1/auth/access_token");
        let mut user = "anonymous".to_string();
        if needs_auth {
            let auth = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let public = app.config.public_reads && method == Method::GET && auth.is_none();
            if !public {
                match lock(&app.tokens).check(auth) {
                    Ok(u) => user = u,
                    Err(e) => break 'answer (e.into_response(), None),
                }
                if lock(&app.faults).take_early_401(&facts) {
                    break 'answer (
                        ApiError::unauthorized("The access token has expired").into_response(),
                        Some("early_401"),
                    );
                }
            }
        }
        parts.extensions.insert(Caller {
            user,
            user_agent: user_agent.clone(),
        });
        let resp = next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
        match after_handler {
            Some(inj) => (inj.error.into_response(), Some(inj.kind)),
            None => (resp, None),
        }
    };
    let rl = lock(&app.faults).ratelimit_headers(None);
    for (name, value) in rl.iter() {
        if !resp.headers().contains_key(name) {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
    }
    resp.headers_mut().insert(
        "x-trace-id",
        HeaderValue::from_str(&format!("fake-{seq}")).expect("ascii"),
    );
    lock(&app.log).push(LoggedRequest {
        seq,
        method: facts.method.to_string(),
        path,
        query,
        status: resp.status().as_u16(),
        timestamp,
        body_bytes: body_len,
        user_agent,
        worker,
        fault: fault.map(str::to_string),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    });
    resp
}
