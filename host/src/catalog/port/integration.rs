//! The integration resource: what makes a sync visible in Port's UI.
//!
//! Owns: reading (and creating when missing) the integration, `resyncState` updates at the start
//! and end of a resync, the per-kind sync metrics Ocean posts to the ingest URL Port hands out
//! (`metricAttributes.ingestUrl`), and reading the resync-request watermark. Bodies follow
//! `docs/port-api.md` and Ocean's field names (including `intervalInMinuets`).
//! Must not touch: what the numbers are; `catalog::metrics` computes them.

use reqwest::Method;
use serde_json::{Value, json};

use super::PortError;
use super::client::{PortClient, call_error, encode_segment};

/// `resyncState.status` values Ocean writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncStatus {
    Running,
    Completed,
    Failed,
    Aborted,
}

impl ResyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
        }
    }
}

/// A resync request from Port's UI (the watermark `berth run` polls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResyncRequest {
    pub id: Option<String>,
    pub updated_at: String,
}

fn rejected(method: &str, path: &str, status: u16, body: &[u8]) -> PortError {
    PortError::Rejected {
        request: format!("{method} {}", path.split('?').next().unwrap_or(path)),
        status,
        message: call_error(status, body).message,
    }
}

impl PortClient {
    /// `GET /v1/integration/{id}`: the integration, or `None` when Port has none by that id.
    pub async fn get_integration(&self, id: &str) -> Result<Option<Value>, PortError> {
        let path = format!("/v1/integration/{}", encode_segment(id));
        let answer = self.send(Method::GET, &path, None).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        if !(200..300).contains(&answer.status) {
            return Err(rejected("GET", &path, answer.status, &answer.body));
        }
        let v: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| PortError::InvalidResponse(format!("GET {path}: {e}")))?;
        match v.get("integration") {
            Some(i @ Value::Object(_)) => Ok(Some(i.clone())),
            _ => Err(PortError::InvalidResponse(format!(
                "GET {path}: no \"integration\" object in the answer"
            ))),
        }
    }

    /// The integration named by this client's User-Agent identifier, created (as Ocean does on
    /// a 404) with an empty config when Port has none. Never changes an existing one.
    pub async fn ensure_integration(&self) -> Result<Value, PortError> {
        let ua = self.user_agent().clone();
        if let Some(i) = self.get_integration(&ua.integration_identifier).await? {
            return Ok(i);
        }
        let body = json!({
            "installationId": ua.integration_identifier,
            "installationAppType": ua.integration_type,
            "version": ua.version,
            "changelogDestination": {},
            "config": {},
        });
        let path = "/v1/integration";
        let answer = self
            .send(Method::POST, path, Some(body.to_string().into_bytes()))
            .await?;
        if answer.status == 409 {
            // Someone created it meanwhile.
            return self
                .get_integration(&ua.integration_identifier)
                .await?
                .ok_or_else(|| {
                    PortError::InvalidResponse("integration exists (409) but cannot be read".into())
                });
        }
        if !(200..300).contains(&answer.status) {
            return Err(rejected("POST", path, answer.status, &answer.body));
        }
        let v: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| PortError::InvalidResponse(format!("POST {path}: {e}")))?;
        v.get("integration").cloned().ok_or_else(|| {
            PortError::InvalidResponse(format!("POST {path}: no \"integration\" in the answer"))
        })
    }

    /// `PATCH /v1/integration/{id}/resync-state`. `start`/`end` are ISO 8601 instants; at the
    /// start `lastResyncEnd` is sent as null, as Ocean does.
    pub async fn patch_resync_state(
        &self,
        status: ResyncStatus,
        start: Option<&str>,
        end: Option<&str>,
        next_resync: Option<&str>,
        interval_minutes: Option<u64>,
    ) -> Result<(), PortError> {
        let id = &self.user_agent().integration_identifier;
        let path = format!("/v1/integration/{}/resync-state", encode_segment(id));
        let mut body = json!({
            "status": status.as_str(),
            "nextResync": next_resync,
            "intervalInMinuets": interval_minutes,
        });
        if let Some(s) = start {
            body["lastResyncStart"] = json!(s);
            body["lastResyncEnd"] = Value::Null;
        }
        if let Some(e) = end {
            body["lastResyncEnd"] = json!(e);
        }
        let answer = self
            .send(Method::PATCH, &path, Some(body.to_string().into_bytes()))
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(rejected("PATCH", &path, answer.status, &answer.body));
        }
        Ok(())
    }

    /// `PUT {ingestUrl}/syncMetrics/resync/{eventId}/kind/{kindIdentifier}` with one kind's
    /// metrics (`{"syncKindMetrics": ...}`).
    pub async fn put_kind_metrics(
        &self,
        ingest_url: &str,
        event_id: &str,
        kind_identifier: &str,
        metrics: &Value,
    ) -> Result<(), PortError> {
        let url = format!(
            "{}/syncMetrics/resync/{}/kind/{}",
            ingest_url.trim_end_matches('/'),
            encode_segment(event_id),
            encode_segment(kind_identifier)
        );
        let body = json!({ "syncKindMetrics": metrics })
            .to_string()
            .into_bytes();
        let answer = self.send(Method::PUT, &url, Some(body)).await?;
        if !(200..300).contains(&answer.status) {
            return Err(rejected("PUT", &url, answer.status, &answer.body));
        }
        Ok(())
    }

    /// `POST {ingestUrl}/syncMetrics` with every kind's metrics of a resync.
    pub async fn post_sync_metrics(
        &self,
        ingest_url: &str,
        kinds: &[Value],
    ) -> Result<(), PortError> {
        let url = format!("{}/syncMetrics", ingest_url.trim_end_matches('/'));
        let body = json!({ "syncKindsMetrics": kinds })
            .to_string()
            .into_bytes();
        let answer = self.send(Method::POST, &url, Some(body)).await?;
        if !(200..300).contains(&answer.status) {
            return Err(rejected("POST", &url, answer.status, &answer.body));
        }
        Ok(())
    }

    /// `GET /v1/integration/{id}/resync-request`: the latest resync request from Port's UI.
    pub async fn resync_request(&self) -> Result<Option<ResyncRequest>, PortError> {
        let id = &self.user_agent().integration_identifier;
        let path = format!("/v1/integration/{}/resync-request", encode_segment(id));
        let answer = self.send(Method::GET, &path, None).await?;
        if !(200..300).contains(&answer.status) {
            return Err(rejected("GET", &path, answer.status, &answer.body));
        }
        let v: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| PortError::InvalidResponse(format!("GET {path}: {e}")))?;
        let req = &v["request"];
        Ok(req
            .get("updatedAt")
            .and_then(Value::as_str)
            .map(|u| ResyncRequest {
                id: req.get("id").and_then(Value::as_str).map(str::to_string),
                updated_at: u.to_string(),
            }))
    }
}

/// The metrics ingest URL of an integration object (`metricAttributes.ingestUrl`).
pub fn metrics_ingest_url(integration: &Value) -> Option<&str> {
    integration
        .pointer("/metricAttributes/ingestUrl")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
}
