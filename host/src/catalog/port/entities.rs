//! Reading back what an integration owns, and deleting entities.
//!
//! Owns: listing the entities of one blueprint whose `$datasource` is this client's User-Agent
//! (Ocean's ownership rule, version left out so entities written by older versions still
//! count), through the documented paginated blueprint search (`POST
//! /v1/blueprints/{bp}/entities/search`, not Ocean's undocumented datasource route), and the
//! two delete routes: bulk (`limits.port.bulkDelete` ids, one blueprint) and single. Must not touch: which entities
//! to delete; that is `catalog::reconcile`'s decision.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::PortError;
use super::client::{PortClient, call_error, encode_segment};

/// An entity this integration owns, as far as reconciliation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedEntity {
    pub identifier: String,
    /// `$updatedAt`, as Port wrote it (ISO 8601), when Port returned it.
    pub updated_at: Option<String>,
}

/// The outcome of deleting some entities of one blueprint.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    pub deleted: Vec<String>,
    /// Ids Port did not delete, with why.
    pub failed: Vec<(String, String)>,
}

impl PortClient {
    /// `$datasource` rules that select this client's writes: Ocean's prefix
    /// `port-ocean/{type}/` and suffix `/{identifier}/{mode}`.
    fn ownership_rules(&self) -> Vec<Value> {
        let ua = self.user_agent();
        let mut suffix = format!("/{}", ua.integration_identifier);
        if let Some(mode) = &ua.mode {
            suffix.push('/');
            suffix.push_str(mode);
        }
        vec![
            json!({"property": "$datasource", "operator": "beginsWith",
                   "value": format!("port-ocean/{}/", ua.integration_type)}),
            json!({"property": "$datasource", "operator": "endsWith", "value": suffix}),
        ]
    }

    /// Every entity of `blueprint` this integration owns, following the search cursor to the
    /// end. A blueprint Port does not know owns nothing.
    pub async fn owned_entities(&self, blueprint: &str) -> Result<Vec<OwnedEntity>, PortError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            entities: Vec<Row>,
            next: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Row {
            identifier: String,
            updated_at: Option<String>,
        }
        let path = format!(
            "/v1/blueprints/{}/entities/search",
            encode_segment(blueprint)
        );
        let mut out = Vec::new();
        let mut from: Option<String> = None;
        loop {
            let mut body = json!({
                "query": {"combinator": "and", "rules": self.ownership_rules()},
                "include": ["$identifier", "$updatedAt"],
                "limit": self.search_page(),
            });
            if let Some(cursor) = &from {
                body["from"] = json!(cursor);
            }
            let answer = self
                .send(Method::POST, &path, Some(body.to_string().into_bytes()))
                .await?;
            if answer.status == 404 && from.is_none() {
                return Ok(out);
            }
            if !(200..300).contains(&answer.status) {
                let e = call_error(answer.status, &answer.body);
                return Err(PortError::Rejected {
                    request: format!("POST {path}"),
                    status: answer.status,
                    message: e.message,
                });
            }
            let page: Page = serde_json::from_slice(&answer.body).map_err(|e| {
                PortError::InvalidResponse(format!("POST {path}: unreadable page: {e}"))
            })?;
            let n = page.entities.len();
            out.extend(page.entities.into_iter().map(|r| OwnedEntity {
                identifier: r.identifier,
                updated_at: r.updated_at,
            }));
            match page.next.filter(|c| !c.is_empty()) {
                // A cursor with an empty page would loop forever on a confused server.
                Some(cursor) if n > 0 => from = Some(cursor),
                _ => return Ok(out),
            }
        }
    }

    /// Deletes `ids` of `blueprint` with `POST /v1/blueprints/{bp}/bulk/entities/delete`, at
    /// most `limits.port.bulkDelete` (Port's cap of 100 by default) per call. With `delete_dependents`, Port also deletes entities
    /// that require these. Ids Port did not report deleted come back as failed.
    pub async fn delete_bulk(
        &self,
        blueprint: &str,
        ids: &[String],
        delete_dependents: bool,
    ) -> Result<DeleteOutcome, PortError> {
        let path = format!(
            "/v1/blueprints/{}/bulk/entities/delete?delete_dependents={delete_dependents}",
            encode_segment(blueprint)
        );
        let mut outcome = DeleteOutcome::default();
        for chunk in ids.chunks(self.bulk_delete_size()) {
            let body = json!({ "entities": chunk }).to_string().into_bytes();
            let answer = self.send(Method::POST, &path, Some(body)).await?;
            if !(200..300).contains(&answer.status) {
                let e = call_error(answer.status, &answer.body);
                outcome
                    .failed
                    .extend(chunk.iter().map(|id| (id.clone(), e.to_string())));
                continue;
            }
            let done: Vec<String> = serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .and_then(|v| {
                    v.get("deletedEntities").and_then(Value::as_array).map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                })
                .unwrap_or_default();
            for id in chunk {
                if done.contains(id) {
                    outcome.deleted.push(id.clone());
                } else {
                    outcome.failed.push((
                        id.clone(),
                        "Port did not list it in deletedEntities".to_string(),
                    ));
                }
            }
        }
        Ok(outcome)
    }

    /// Deletes one entity (`DELETE /v1/blueprints/{bp}/entities/{id}`). Already gone (404)
    /// counts as deleted, as Ocean treats it.
    pub async fn delete_one(
        &self,
        blueprint: &str,
        id: &str,
        delete_dependents: bool,
    ) -> Result<Result<(), String>, PortError> {
        let path = format!(
            "/v1/blueprints/{}/entities/{}?delete_dependents={delete_dependents}",
            encode_segment(blueprint),
            encode_segment(id)
        );
        let answer = self.send(Method::DELETE, &path, None).await?;
        if (200..300).contains(&answer.status) || answer.status == 404 {
            Ok(Ok(()))
        } else {
            Ok(Err(call_error(answer.status, &answer.body).to_string()))
        }
    }
}
