//! The integration resource (`/v1/integration/...`): create, read, patch, config, resync state,
//! resync requests, raw examples, and the sync metrics Ocean posts to the ingest URLs Port
//! hands out (`metricAttributes.ingestUrl`, `logAttributes.ingestUrl`).
//!
//! Owns: integration and metrics data in the [`Snapshot`] and their JSON shapes (as
//! `docs/port-api.md` describes them). Must not touch: blueprints and entities, HTTP plumbing.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::model::Snapshot;

fn internal_id(installation_id: &str) -> String {
    // Stable per installationId, shaped like Port's `integration_0dOOhnlJQDjMPnfe`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in installation_id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("integration_{h:016x}")
}

/// The stored integration an id names: its `installationId` or its internal `_id`.
pub fn resolve<'a>(snap: &'a Snapshot, id: &str) -> ApiResult<(&'a String, &'a Value)> {
    snap.integrations
        .get_key_value(id)
        .or_else(|| {
            snap.integrations
                .iter()
                .find(|(_, v)| v["_id"].as_str() == Some(id))
        })
        .ok_or_else(|| ApiError::not_found(format!("Integration \"{id}\" was not found")))
}

/// The integration as Port returns it, with ingest URLs pointing back at this server.
pub fn render(stored: &Value, base_url: &str) -> Value {
    let mut v = stored.clone();
    let id = v["installationId"].as_str().unwrap_or_default().to_string();
    let ingest_id = format!("ingest_{}", &internal_id(&id)["integration_".len()..]);
    let m = v.as_object_mut().expect("stored integrations are objects");
    m.insert(
        "logAttributes".into(),
        json!({"ingestId": ingest_id, "ingestUrl": format!("{base_url}/ingest/{id}/logs")}),
    );
    m.insert(
        "metricAttributes".into(),
        json!({"ingestId": ingest_id, "ingestUrl": format!("{base_url}/ingest/{id}/metrics")}),
    );
    m.insert(
        "ingestAttributes".into(),
        json!({"ingestUrl": format!("{base_url}/ingest/{id}")}),
    );
    v
}

pub fn create(snap: &mut Snapshot, body: &Value, user: &str, now: &str) -> ApiResult<Value> {
    let id = body["installationId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if snap.integrations.contains_key(&id) {
        return Err(ApiError::conflict(format!(
            "Integration \"{id}\" already exists"
        )));
    }
    let mut m = Map::new();
    m.insert("_id".into(), json!(internal_id(&id)));
    m.insert("_orgId".into(), json!("org_fakeport"));
    m.insert("installationId".into(), json!(id));
    m.insert("identifier".into(), json!(id));
    m.insert(
        "title".into(),
        body.get("title").cloned().unwrap_or(Value::Null),
    );
    let app_type = body
        .get("installationAppType")
        .cloned()
        .unwrap_or(Value::Null);
    m.insert("installationAppType".into(), app_type.clone());
    m.insert("integrationType".into(), app_type);
    m.insert(
        "version".into(),
        body.get("version").cloned().unwrap_or(Value::Null),
    );
    m.insert("installationType".into(), json!("OnPrem"));
    let config = match body.get("config") {
        Some(Value::Object(c)) => Value::Object(c.clone()),
        _ => json!({}),
    };
    m.insert("config".into(), config);
    m.insert(
        "changelogDestination".into(),
        body.get("changelogDestination")
            .cloned()
            .unwrap_or(json!({})),
    );
    for (k, default) in [
        ("actionsProcessingEnabled", json!(false)),
        ("incrementalSyncEnabled", json!(false)),
        ("createPortResourcesOrigin", json!("Empty")),
    ] {
        m.insert(k.into(), body.get(k).cloned().unwrap_or(default));
    }
    m.insert("resyncState".into(), Value::Null);
    m.insert("clientId".into(), json!(user));
    m.insert("createdBy".into(), json!(user));
    m.insert("updatedBy".into(), json!(user));
    m.insert("createdAt".into(), json!(now));
    m.insert("updatedAt".into(), json!(now));
    // Keep any other keys the client sent (Ocean's newer fields).
    for (k, v) in body.as_object().into_iter().flatten() {
        m.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let v = Value::Object(m);
    snap.integrations.insert(id, v.clone());
    Ok(v)
}

fn stored_mut<'a>(snap: &'a mut Snapshot, id: &str) -> ApiResult<&'a mut Map<String, Value>> {
    let key = resolve(snap, id)?.0.clone();
    Ok(snap
        .integrations
        .get_mut(&key)
        .and_then(Value::as_object_mut)
        .expect("resolved above"))
}

/// `PATCH /v1/integration/{id}`: given top-level keys replace. An empty body is Port's
/// "trigger a resync": it records a resync request.
pub fn patch(
    snap: &mut Snapshot,
    id: &str,
    body: &Value,
    user: &str,
    now: &str,
) -> ApiResult<Value> {
    let fields = body.as_object().cloned().unwrap_or_default();
    let key = resolve(snap, id)?.0.clone();
    if fields.is_empty() {
        request_resync(snap, &key, now);
    }
    let m = stored_mut(snap, &key)?;
    for (k, v) in fields {
        if !matches!(
            k.as_str(),
            "installationId" | "identifier" | "_id" | "_orgId"
        ) {
            m.insert(k, v);
        }
    }
    m.insert("updatedAt".into(), json!(now));
    m.insert("updatedBy".into(), json!(user));
    Ok(Value::Object(m.clone()))
}

pub fn patch_config(
    snap: &mut Snapshot,
    id: &str,
    config: &Value,
    user: &str,
    now: &str,
) -> ApiResult<Value> {
    let m = stored_mut(snap, id)?;
    m.insert("config".into(), config.clone());
    m.insert("updatedAt".into(), json!(now));
    m.insert("updatedBy".into(), json!(user));
    Ok(Value::Object(m.clone()))
}

/// `PATCH .../resync-state`: merges the given fields into `resyncState` and stamps its
/// `updatedAt`.
pub fn patch_resync_state(
    snap: &mut Snapshot,
    id: &str,
    body: &Value,
    now: &str,
) -> ApiResult<Value> {
    let m = stored_mut(snap, id)?;
    let state = m.entry("resyncState").or_insert(Value::Null);
    if !state.is_object() {
        *state = json!({
            "status": null, "lastResyncStart": null, "lastResyncEnd": null,
            "nextResync": null, "intervalInMinuets": null
        });
    }
    let s = state.as_object_mut().expect("made an object above");
    for (k, v) in body.as_object().into_iter().flatten() {
        s.insert(k.clone(), v.clone());
    }
    s.insert("updatedAt".into(), json!(now));
    m.insert("updatedAt".into(), json!(now));
    Ok(Value::Object(m.clone()))
}

pub fn delete(snap: &mut Snapshot, id: &str) -> ApiResult<()> {
    let key = resolve(snap, id)?.0.clone();
    snap.integrations.remove(&key);
    snap.sync_metrics.remove(&key);
    snap.resync_requests.remove(&key);
    snap.kind_examples.remove(&key);
    snap.heartbeats.remove(&key);
    snap.log_lines.remove(&key);
    Ok(())
}

/// Records "the user pressed Resync" for `GET .../resync-request`.
pub fn request_resync(snap: &mut Snapshot, key: &str, now: &str) {
    let n = snap.resync_requests.len() + 1;
    snap.resync_requests.insert(
        key.to_string(),
        json!({"id": format!("resync_request_{n}"), "updatedAt": now}),
    );
}

pub fn resync_request(snap: &Snapshot, id: &str) -> ApiResult<Value> {
    let key = resolve(snap, id)?.0;
    Ok(snap.resync_requests.get(key).cloned().unwrap_or(json!({})))
}

pub fn put_examples(snap: &mut Snapshot, id: &str, kind: &str, examples: &Value) -> ApiResult<()> {
    let key = resolve(snap, id)?.0.clone();
    snap.kind_examples
        .entry(key)
        .or_default()
        .insert(kind.to_string(), examples.clone());
    Ok(())
}

/// Stores one posted `KindMetrics` (upsert by `eventId` + `kindIdentifier`).
pub fn put_kind_metrics(
    snap: &mut Snapshot,
    id: &str,
    mut item: Value,
    now: &str,
) -> ApiResult<()> {
    let key = resolve(snap, id)?.0.clone();
    let list = snap.sync_metrics.entry(key).or_default();
    let same = |a: &Value, b: &Value| {
        a["eventId"] == b["eventId"] && a["kindIdentifier"] == b["kindIdentifier"]
    };
    let m = item
        .as_object_mut()
        .ok_or_else(|| ApiError::invalid("body/syncKindMetrics must be object"))?;
    m.insert("updatedAt".into(), json!(now));
    if let Some(old) = list.iter_mut().find(|old| same(old, &item)) {
        let created = old["createdAt"].clone();
        *old = item;
        old["createdAt"] = created;
    } else {
        item["createdAt"] = json!(now);
        list.push(item);
    }
    Ok(())
}

/// `GET .../syncMetrics?resyncId=`: the items of that resync (default: the most recent one),
/// pruned to Port's response schema for one item (`item_schema`): Ocean posts more fields and
/// metric names than Port's answer carries.
pub fn sync_metrics(
    snap: &Snapshot,
    id: &str,
    resync_id: Option<&str>,
    item_schema: &Value,
) -> ApiResult<Value> {
    let key = resolve(snap, id)?.0;
    let list = snap.sync_metrics.get(key).map_or(&[][..], Vec::as_slice);
    let event = match resync_id {
        Some(r) if !r.is_empty() => Some(r.to_string()),
        _ => list
            .iter()
            .max_by(|a, b| a["updatedAt"].as_str().cmp(&b["updatedAt"].as_str()))
            .and_then(|i| i["eventId"].as_str().map(str::to_string)),
    };
    let data: Vec<Value> = list
        .iter()
        .filter(|i| {
            event
                .as_deref()
                .is_some_and(|e| i["eventId"].as_str() == Some(e))
        })
        .map(|i| crate::spec::prune_to_schema(i, item_schema))
        .collect();
    Ok(json!({"ok": true, "count": data.len(), "data": data}))
}

/// `GET .../syncsMetadata`: one line per resync (most recent first, at most 50).
pub fn syncs_metadata(snap: &Snapshot, id: &str) -> ApiResult<Value> {
    let key = resolve(snap, id)?.0;
    let mut by_event: Vec<(String, Value)> = Vec::new();
    for item in snap.sync_metrics.get(key).into_iter().flatten() {
        let event = item["eventId"].as_str().unwrap_or_default().to_string();
        let state = item["syncState"].clone();
        let created = item["createdAt"].clone();
        let updated = item["updatedAt"].clone();
        match by_event.iter_mut().find(|(e, _)| *e == event) {
            Some((_, meta)) => {
                if created.as_str() < meta["createdAt"].as_str() {
                    meta["createdAt"] = created;
                }
                if updated.as_str() >= meta["updatedAt"].as_str() {
                    meta["updatedAt"] = updated;
                    // The overall state is the resync pseudo-kind's when present, else the
                    // latest kind's.
                    if item["kind"] == "__resync__" || meta["kind"] != "__resync__" {
                        meta["syncState"] = state;
                    }
                }
                if item["kind"] == "__resync__" {
                    meta["kind"] = json!("__resync__");
                    meta["syncState"] = item["syncState"].clone();
                }
            }
            None => by_event.push((
                event.clone(),
                json!({"eventId": event, "syncState": state, "createdAt": created,
                       "updatedAt": updated, "kind": item["kind"]}),
            )),
        }
    }
    let mut data: Vec<Value> = by_event
        .into_iter()
        .map(|(_, mut m)| {
            m.as_object_mut().expect("object").remove("kind");
            m
        })
        .collect();
    data.sort_by(|a, b| b["updatedAt"].as_str().cmp(&a["updatedAt"].as_str()));
    data.truncate(50);
    Ok(json!({"ok": true, "count": data.len(), "data": data}))
}
