//! The catalog data the fake keeps: blueprints, entities, integrations and sync metrics, and the
//! JSON snapshot they are saved to and loaded from.
//!
//! Owns: the data types, their JSON rendering for Port's responses, and snapshot file I/O.
//! Must not touch: the rules for changing them (`catalog.rs`, `integration.rs`) or HTTP.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// One entity as stored. Rendered to Port's entity JSON by [`Entity::to_json`]; the
/// `$datasource` is kept apart because Port does not return it in entity bodies (it is only
/// searchable).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entity {
    pub identifier: String,
    pub blueprint: String,
    pub title: Option<String>,
    pub icon: Option<String>,
    #[serde(default)]
    pub team: Vec<String>,
    #[serde(default)]
    pub properties: Map<String, Value>,
    #[serde(default)]
    pub relations: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: String,
    pub updated_by: String,
    /// The User-Agent of the writer (see `DatasourcePolicy`); `None` when it sent none.
    pub datasource: Option<String>,
}

impl Entity {
    /// Port's entity JSON (without `$datasource`).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("identifier".into(), json!(self.identifier));
        // The spec types `title` as a string, so an entity without one has no `title` key.
        if let Some(title) = &self.title {
            m.insert("title".into(), json!(title));
        }
        if let Some(icon) = &self.icon {
            m.insert("icon".into(), json!(icon));
        }
        m.insert("blueprint".into(), json!(self.blueprint));
        m.insert("team".into(), json!(self.team));
        m.insert("properties".into(), Value::Object(self.properties.clone()));
        m.insert("relations".into(), Value::Object(self.relations.clone()));
        m.insert("createdAt".into(), json!(self.created_at));
        m.insert("createdBy".into(), json!(self.created_by));
        m.insert("updatedAt".into(), json!(self.updated_at));
        m.insert("updatedBy".into(), json!(self.updated_by));
        Value::Object(m)
    }
}

/// Everything the fake saves to its state file and `GET /_fake/state` returns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    pub format: u32,
    /// Stored blueprint JSON (as Port returns it), by identifier.
    pub blueprints: BTreeMap<String, Value>,
    /// Entities by blueprint, then identifier.
    pub entities: BTreeMap<String, BTreeMap<String, Entity>>,
    /// Stored integration JSON by `installationId` (ingest URLs are added when rendered).
    pub integrations: BTreeMap<String, Value>,
    /// Posted per-kind sync metrics by `installationId`.
    pub sync_metrics: BTreeMap<String, Vec<Value>>,
    /// Pending resync requests (`GET .../resync-request`) by `installationId`.
    pub resync_requests: BTreeMap<String, Value>,
    /// Last raw examples posted per integration, then kind.
    pub kind_examples: BTreeMap<String, BTreeMap<String, Value>>,
    /// Last heartbeat per integration: `{eventId, at}`.
    pub heartbeats: BTreeMap<String, Value>,
    /// Number of log lines posted per integration.
    pub log_lines: BTreeMap<String, u64>,
}

pub const SNAPSHOT_FORMAT: u32 = 1;

impl Snapshot {
    pub fn empty() -> Self {
        Self {
            format: SNAPSHOT_FORMAT,
            ..Self::default()
        }
    }

    pub fn entity(&self, bp: &str, id: &str) -> Option<&Entity> {
        self.entities.get(bp).and_then(|m| m.get(id))
    }

    pub fn entity_count(&self) -> usize {
        self.entities.values().map(BTreeMap::len).sum()
    }

    pub fn load(path: &Path) -> io::Result<Self> {
        let bytes = std::fs::read(path)?;
        let snap: Snapshot = serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a fake-port state file: {e}", path.display()),
            )
        })?;
        if snap.format != SNAPSHOT_FORMAT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: state format {} is not {SNAPSHOT_FORMAT}",
                    path.display(),
                    snap.format
                ),
            ));
        }
        Ok(snap)
    }

    /// Writes atomically: a temporary file next to `path`, then a rename.
    pub fn save(bytes: &[u8], path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("tmp-fake-port");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    }
}
