//! A test kit for talking to the fake Port over HTTP, shared by this crate's tests and Berth's:
//! start a server with a config, fetch a token, call routes (Port's and the `/_fake` admin
//! API), create blueprints and read the JSON answers.
//!
//! Owns: the test side of the wire: requests as a client sends them, and the answers as
//! `(status, headers, JSON)`. Must not touch: the server's internals; it reaches a server only
//! over HTTP and through [`FakePortHandle`]'s public methods, so what a test sees is what any
//! client would. Behind the `client` feature, which is what pulls in `reqwest`: the
//! `fake-port` binary does not link it.

use std::ops::Deref;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::config::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use crate::{Config, FakePortHandle, spawn};

/// An Ocean-style User-Agent: entities written with it get it as their `$datasource`.
pub const UA: &str = "port-ocean/berth/0.1.0/test-aws/exporter";

/// The token request body with [`Config::default`]'s credentials.
pub fn credentials() -> Value {
    json!({"clientId": DEFAULT_CLIENT_ID, "clientSecret": DEFAULT_CLIENT_SECRET})
}

/// One answer. A body that is not JSON is kept as a JSON string, an empty one as `null`, so
/// that a failed assertion can still print it.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    async fn read(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
        };
        Resp {
            status,
            headers,
            body,
        }
    }
}

/// A client of a fake Port at `base`, which may run in another process. Every helper but
/// [`Client::raw`] and [`Client::admin`] sends [`UA`] and `token`.
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    /// Empty until [`Client::connect`] or the test sets one.
    pub token: String,
}

/// A fake Port started in-process with a client that already holds a token. Derefs to its
/// [`Client`], so that a test reads `fake.get(..)` next to `fake.handle.requests()`.
pub struct Fake {
    pub handle: FakePortHandle,
    pub client: Client,
}

impl Fake {
    pub async fn start() -> Self {
        Self::with(Config::default()).await
    }

    /// Needs `config` to accept [`credentials`] (the default ones).
    pub async fn with(config: Config) -> Self {
        let (_, handle) = spawn(config).await.expect("fake Port starts");
        let client = Client::connect(handle.base_url()).await;
        Fake { handle, client }
    }
}

impl Deref for Fake {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Client {
    /// No token yet.
    pub fn new(base: &str) -> Self {
        Client {
            base: base.to_string(),
            http: reqwest::Client::new(),
            token: String::new(),
        }
    }

    /// With a token for the default credentials.
    pub async fn connect(base: &str) -> Self {
        let mut client = Self::new(base);
        client.token = client.new_token().await;
        client
    }

    /// `POST /v1/auth/access_token` with `body`, without a User-Agent or token.
    pub async fn token_request(&self, body: Value) -> Resp {
        self.raw(
            Method::POST,
            "/v1/auth/access_token",
            Some(body),
            None,
            None,
        )
        .await
    }

    pub async fn new_token(&self) -> String {
        let r = self
            .raw(
                Method::POST,
                "/v1/auth/access_token",
                Some(credentials()),
                Some(UA),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["accessToken"].as_str().expect("token").to_string()
    }

    /// A request with full control over User-Agent and token.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        ua: Option<&str>,
        token: Option<&str>,
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(ua) = ua {
            req = req.header("user-agent", ua);
        }
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Resp::read(req.send().await.expect("request reaches the fake")).await
    }

    /// A request with bytes as the body (for size limits).
    pub async fn raw_bytes(&self, method: Method, path: &str, bytes: Vec<u8>) -> Resp {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(bytes)
            .send()
            .await
            .expect("request reaches the fake");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.json().await.unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.raw(method, path, body, Some(UA), Some(&self.token))
            .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None).await
    }

    /// Admin API (no token).
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.raw(method, path, body, None, None).await
    }

    pub async fn create_blueprint(&self, bp: Value) {
        let r = self.post("/v1/blueprints", bp).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }

    /// `awsAccount` and `awsS3Bucket` (relation `account` → `awsAccount`).
    pub async fn aws_blueprints(&self) {
        self.create_blueprint(json!({
            "identifier": "awsAccount",
            "title": "AWS Account",
            "schema": {"properties": {"name": {"type": "string"}}}
        }))
        .await;
        self.create_blueprint(json!({
            "identifier": "awsS3Bucket",
            "title": "S3 Bucket",
            "icon": "AWS",
            "schema": {
                "properties": {
                    "region": {"type": "string", "title": "Region"},
                    "arn": {"type": "string"},
                    "createdAt": {"type": "string", "format": "date-time"},
                    "tags": {"type": "object"},
                    "versioned": {"type": "boolean"},
                    "sizeGb": {"type": "number"},
                    "console": {"type": "string", "format": "url"},
                    "tier": {"type": "string", "enum": ["hot", "cold"]},
                    "aliases": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["region"]
            },
            "relations": {
                "account": {"title": "Account", "target": "awsAccount", "required": false, "many": false}
            }
        }))
        .await;
    }

    pub async fn bulk(&self, bp: &str, query: &str, entities: Value) -> Resp {
        self.post(
            &format!("/v1/blueprints/{bp}/entities/bulk?{query}"),
            json!({"entities": entities}),
        )
        .await
    }

    pub async fn state(&self) -> Value {
        self.admin(Method::GET, "/_fake/state", None).await.body
    }

    pub async fn set_faults(&self, faults: Value) {
        let r = self.admin(Method::PUT, "/_fake/faults", Some(faults)).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

/// `n` bucket entities `b0..b{n-1}` in region `eu-west-1`, for [`Client::aws_blueprints`].
pub fn buckets(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({"identifier": format!("b{i}"), "title": format!("bucket {i}"),
                             "properties": {"region": "eu-west-1"}})
            })
            .collect(),
    )
}
