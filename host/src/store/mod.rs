//! Berth's own state: what it last wrote to Port for each entity (change detection), the
//! history of its syncs, and for the hosted runtime (`berth serve`) its tenants and their
//! schedules and leases ([`tenants`], [`leases`]), and its OIDC signing keys ([`keys`]).
//!
//! Owns: the schema, its migrations and every SQL statement, behind [`Store`], keyed by an
//! *integration key* (one Port integration of one tenant), so one database can hold many
//! tenants. The same code runs on embedded SQLite (the default: a file, nothing to install) and
//! on Postgres (the hosted runtime, shared by several workers), through sqlx's `Any` driver;
//! statements use only SQL both accept (`$n` parameters, `INSERT … ON CONFLICT … DO UPDATE`,
//! `RETURNING`, `BIGINT` milliseconds, `TEXT`).
//! Must not touch: Port, AWS or entity JSON; callers hand in hashes, scopes and opaque tenant
//! specs (already encrypted where secret).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, AssertSqlSafe, Row};

mod keys;
mod leases;
mod tenants;

pub use keys::SigningKeyRow;
pub use leases::{Lease, ScheduleRow};
pub use tenants::{TenantRow, incarnation_integration_key, tenant_integration_key};

/// Rows per multi-row statement: a bound of the databases' parameter caps, declared in
/// `crate::limits` with why.
use crate::limits::STORE_ROWS_PER_STATEMENT as ROWS_PER_STATEMENT;

/// Bumped when the schema changes in a way older Berths cannot live with; a database written
/// by a newer Berth is refused. Columns in [`ADDED_COLUMNS`] are not such a change.
const SCHEMA_VERSION: i64 = 2;

/// Every table and index, oldest version first. Each statement is `IF NOT EXISTS`, so running
/// them all brings a database of any older version up to date (version 1 → 2 only adds tables).
const SCHEMA: &[&str] = &[
    // Version 1: change detection and sync history.
    "CREATE TABLE IF NOT EXISTS berth_entity_state (
        integration TEXT NOT NULL,
        blueprint TEXT NOT NULL,
        identifier TEXT NOT NULL,
        entry BIGINT NOT NULL,
        body_hash TEXT NOT NULL,
        scope TEXT NOT NULL,
        written_at BIGINT NOT NULL,
        also_scopes TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (integration, blueprint, identifier, entry))",
    "CREATE TABLE IF NOT EXISTS berth_sync (
        integration TEXT NOT NULL,
        sync_id TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        ended_at BIGINT,
        status TEXT NOT NULL,
        summary TEXT,
        PRIMARY KEY (integration, sync_id))",
    // Version 2: the hosted runtime's tenants, schedules and leases.
    "CREATE TABLE IF NOT EXISTS berth_tenant (
        id TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        version BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        incarnation TEXT NOT NULL DEFAULT '')",
    // `request_seq` counts on-demand requests and `lease_request_seq` is its value when the
    // current lease was granted: comparing them (not clocks of different machines) tells
    // whether a request arrived during a sync.
    "CREATE TABLE IF NOT EXISTS berth_schedule (
        tenant TEXT PRIMARY KEY,
        due_at BIGINT NOT NULL,
        requested_at BIGINT NOT NULL,
        interval_ms BIGINT NOT NULL,
        lease_worker TEXT,
        lease_token BIGINT NOT NULL,
        leased_at BIGINT NOT NULL,
        lease_expires BIGINT NOT NULL,
        request_seq BIGINT NOT NULL,
        lease_request_seq BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS berth_schedule_due ON berth_schedule (due_at)",
    // Also version 2 (a table older Berths never read): the OIDC issuer's signing keys.
    "CREATE TABLE IF NOT EXISTS berth_signing_key (
        generation BIGINT PRIMARY KEY,
        kid TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        sealed TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        published_at BIGINT NOT NULL,
        signs_from BIGINT NOT NULL)",
];

/// Columns added to a table after it was first created: (table, column, the `ALTER TABLE` that
/// adds it). [`SCHEMA`] creates the table with them; a database whose table predates them gets
/// them when opened. Each has a default and older Berths never name it, so an older worker can
/// still run on the database (several workers on one Postgres are upgraded one at a time): a
/// tenant it creates gets the default.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    (
        // What tells two tenants of the same id apart (`tenants::TenantRow::incarnation`); ''
        // for a tenant created before incarnations, which keeps its state key.
        "berth_tenant",
        "incarnation",
        "ALTER TABLE berth_tenant ADD COLUMN incarnation TEXT NOT NULL DEFAULT ''",
    ),
    (
        // [`EntityState::also`], as a JSON list; '' for none. An older Berth's upsert leaves
        // it as it was: more scopes than needed, which only keeps more.
        "berth_entity_state",
        "also_scopes",
        "ALTER TABLE berth_entity_state ADD COLUMN also_scopes TEXT NOT NULL DEFAULT ''",
    ),
];

use crate::limits::{STORE_MIGRATE_ATTEMPTS, STORE_MIGRATE_BACKOFF};

/// An error of the state store, naming what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {what}: {source}")]
    Sql {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("state store: {0}")]
    Invalid(String),
    /// A conditional write found another version than the caller expected (someone else
    /// wrote in between); re-read and retry.
    #[error("state store conflict: {0}")]
    Conflict(String),
}

fn sql(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
    let what = what.into();
    move |source| StoreError::Sql { what, source }
}

/// An entity's key in Port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityKey {
    pub blueprint: String,
    pub identifier: String,
}

/// One write's key: an entity as one resource entry (its index in `resources:`) produces it.
/// Two entries may write the same entity (with `enableMergeEntity` each adds its properties),
/// so each keeps its own hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateKey {
    pub entity: EntityKey,
    pub entry: u32,
}

/// What Berth last wrote for one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityState {
    /// Hash of the body last upserted (see `catalog::changes`).
    pub body_hash: String,
    /// The scope the body came from, as `crate::scope::ScopeKey::to_text` renders it.
    pub scope: String,
    /// Other scopes that may produce the same entity (an identifier two accounts or regions
    /// share: Port holds one entity, written from `scope`). Never holds `scope` itself.
    pub also: Vec<String>,
    /// When it was written (Unix milliseconds).
    pub written_at: i64,
}

impl EntityState {
    /// Every scope the entity may come from, `scope` first: reconciliation deletes an unseen
    /// entity only when all of them completed.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.scope.as_str()).chain(self.also.iter().map(String::as_str))
    }
}

/// The `also_scopes` column's text: '' for none, else a JSON list.
fn also_text(also: &[String]) -> String {
    if also.is_empty() {
        String::new()
    } else {
        serde_json::to_string(also).unwrap_or_default()
    }
}

/// Reads `also_scopes` back, without the row's own `scope` (an update of other scopes does not
/// know which scope the row's body came from, so it may name it).
fn also_of(text: &str, scope: &str) -> Result<Vec<String>, StoreError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut also: Vec<String> = serde_json::from_str(text).map_err(|e| {
        StoreError::Invalid(format!(
            "an entity state's also_scopes is not a JSON list of strings ({e})"
        ))
    })?;
    also.retain(|s| s != scope);
    also.sort();
    also.dedup();
    Ok(also)
}

/// One sync as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRecord {
    pub sync_id: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    /// `running`, `completed`, `partial`, `failed`, `aborted`.
    pub status: String,
    /// A JSON summary (counts per kind and phase).
    pub summary: Option<String>,
}

/// The state store. Cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Invalid(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let text = path
            .to_str()
            .ok_or_else(|| StoreError::Invalid(format!("path {path:?} is not UTF-8")))?;
        Self::open(&format!("sqlite://{text}?mode=rwc")).await
    }

    /// Opens a store by URL: `sqlite://PATH?mode=rwc`, `sqlite::memory:` or `postgres://…`.
    /// Creates the tables when missing.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let memory = url.starts_with("sqlite::memory:");
        let mut options = AnyPoolOptions::new().max_connections(if memory { 1 } else { 4 });
        if memory {
            // An in-memory SQLite database lives and dies with its one connection.
            options = options
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let pool = options
            .connect(url)
            .await
            .map_err(sql(format!("connect to {}", redact_url(url))))?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut attempt = 1;
        loop {
            match self.migrate_once().await {
                Err(StoreError::Sql { .. }) if attempt < STORE_MIGRATE_ATTEMPTS => {
                    tokio::time::sleep(STORE_MIGRATE_BACKOFF * attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One transaction, so a failed upgrade leaves the previous version intact (both databases
    /// have transactional DDL).
    async fn migrate_once(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(sql("begin migration"))?;
        sqlx::query("CREATE TABLE IF NOT EXISTS berth_schema (version BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(sql("create tables"))?;
        let row = sqlx::query("SELECT MAX(version) AS v FROM berth_schema")
            .fetch_one(&mut *tx)
            .await
            .map_err(sql("read schema version"))?;
        let version: Option<i64> = row.try_get("v").map_err(sql("read schema version"))?;
        if let Some(v) = version.filter(|v| *v > SCHEMA_VERSION) {
            // Checked before any CREATE: a newer schema may have renamed what we would create.
            return Err(StoreError::Invalid(format!(
                "the database has schema version {v}, written by a newer Berth (this one \
                 knows {SCHEMA_VERSION}); refusing to touch it"
            )));
        }
        for stmt in SCHEMA {
            // Constant schema text.
            sqlx::query(AssertSqlSafe(*stmt))
                .execute(&mut *tx)
                .await
                .map_err(sql("create tables"))?;
        }
        for (table, column, add) in ADDED_COLUMNS {
            // Selecting the column is the one probe both databases answer alike; in a savepoint,
            // because a failed statement spoils a Postgres transaction.
            let mut probe = sqlx::Acquire::begin(&mut tx)
                .await
                .map_err(sql("begin migration"))?;
            let present = sqlx::query(AssertSqlSafe(format!(
                "SELECT {column} FROM {table} WHERE 1 = 0"
            )))
            .fetch_optional(&mut *probe)
            .await
            .is_ok();
            probe.rollback().await.map_err(sql("migrate"))?;
            if !present {
                // Constant schema text. Workers opening together may both get here; the
                // loser's ALTER fails and its retry finds the column.
                sqlx::query(AssertSqlSafe(*add))
                    .execute(&mut *tx)
                    .await
                    .map_err(sql(format!("add {table}.{column}")))?;
            }
        }
        if version != Some(SCHEMA_VERSION) {
            sqlx::query("INSERT INTO berth_schema (version) VALUES ($1)")
                .bind(SCHEMA_VERSION)
                .execute(&mut *tx)
                .await
                .map_err(sql("write schema version"))?;
        }
        tx.commit().await.map_err(sql("commit migration"))
    }

    /// Every entity state of `integration`.
    pub async fn entity_states(
        &self,
        integration: &str,
    ) -> Result<HashMap<StateKey, EntityState>, StoreError> {
        let rows = sqlx::query(
            "SELECT blueprint, identifier, entry, body_hash, scope, written_at, also_scopes
             FROM berth_entity_state WHERE integration = $1",
        )
        .bind(integration)
        .fetch_all(&self.pool)
        .await
        .map_err(sql("read entity states"))?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let get = |c: &str| {
                row.try_get::<String, _>(c)
                    .map_err(sql("read entity states"))
            };
            let entry: i64 = row.try_get("entry").map_err(sql("read entity states"))?;
            let scope = get("scope")?;
            let also = also_of(&get("also_scopes")?, &scope)?;
            out.insert(
                StateKey {
                    entity: EntityKey {
                        blueprint: get("blueprint")?,
                        identifier: get("identifier")?,
                    },
                    entry: entry as u32,
                },
                EntityState {
                    body_hash: get("body_hash")?,
                    scope,
                    also,
                    written_at: row
                        .try_get::<i64, _>("written_at")
                        .map_err(sql("read entity states"))?,
                },
            );
        }
        Ok(out)
    }

    /// Records what was just written to Port (insert or replace).
    pub async fn put_entity_states(
        &self,
        integration: &str,
        states: &[(StateKey, EntityState)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(sql("begin"))?;
        for chunk in states.chunks(ROWS_PER_STATEMENT) {
            let mut q = String::from(
                "INSERT INTO berth_entity_state
                 (integration, blueprint, identifier, entry, body_hash, scope, written_at,
                  also_scopes) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 8;
                if i > 0 {
                    q.push(',');
                }
                let params: Vec<String> = (1..=8).map(|n| format!("${}", b + n)).collect();
                q.push_str(&format!("({})", params.join(",")));
            }
            q.push_str(
                " ON CONFLICT (integration, blueprint, identifier, entry) DO UPDATE SET
                 body_hash = excluded.body_hash, scope = excluded.scope,
                 written_at = excluded.written_at, also_scopes = excluded.also_scopes",
            );
            // Only placeholders are generated; values are bound.
            let mut query = sqlx::query(AssertSqlSafe(q));
            for (k, s) in chunk {
                query = query
                    .bind(integration)
                    .bind(&k.entity.blueprint)
                    .bind(&k.entity.identifier)
                    .bind(i64::from(k.entry))
                    .bind(&s.body_hash)
                    .bind(&s.scope)
                    .bind(s.written_at)
                    .bind(also_text(&s.also));
            }
            query
                .execute(&mut *tx)
                .await
                .map_err(sql("write entity states"))?;
        }
        tx.commit().await.map_err(sql("commit entity states"))
    }

    /// Replaces the other scopes ([`EntityState::also`]) of entities that have a state; others
    /// are left alone. `also` may name a row's own scope (it is dropped when read), so callers
    /// need not know which scope a row's body came from.
    pub async fn put_entity_also(
        &self,
        integration: &str,
        rows: &[(StateKey, Vec<String>)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(sql("begin"))?;
        for (k, also) in rows {
            sqlx::query(
                "UPDATE berth_entity_state SET also_scopes = $1
                 WHERE integration = $2 AND blueprint = $3 AND identifier = $4 AND entry = $5",
            )
            .bind(also_text(also))
            .bind(integration)
            .bind(&k.entity.blueprint)
            .bind(&k.entity.identifier)
            .bind(i64::from(k.entry))
            .execute(&mut *tx)
            .await
            .map_err(sql("write entity scopes"))?;
        }
        tx.commit().await.map_err(sql("commit entity scopes"))
    }

    /// Forgets entities, every entry's write (deleted from Port, or found missing there).
    pub async fn delete_entity_states(
        &self,
        integration: &str,
        keys: &[EntityKey],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(sql("begin"))?;
        for k in keys {
            sqlx::query(
                "DELETE FROM berth_entity_state
                 WHERE integration = $1 AND blueprint = $2 AND identifier = $3",
            )
            .bind(integration)
            .bind(&k.blueprint)
            .bind(&k.identifier)
            .execute(&mut *tx)
            .await
            .map_err(sql("delete entity states"))?;
        }
        tx.commit().await.map_err(sql("commit entity deletions"))
    }

    /// Records that a sync started.
    pub async fn begin_sync(
        &self,
        integration: &str,
        sync_id: &str,
        started_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO berth_sync (integration, sync_id, started_at, status)
             VALUES ($1, $2, $3, 'running')",
        )
        .bind(integration)
        .bind(sync_id)
        .bind(started_at)
        .execute(&self.pool)
        .await
        .map_err(sql("record sync start"))?;
        Ok(())
    }

    /// Records how a sync ended.
    pub async fn finish_sync(
        &self,
        integration: &str,
        sync_id: &str,
        ended_at: i64,
        status: &str,
        summary: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE berth_sync SET ended_at = $1, status = $2, summary = $3
             WHERE integration = $4 AND sync_id = $5",
        )
        .bind(ended_at)
        .bind(status)
        .bind(summary)
        .bind(integration)
        .bind(sync_id)
        .execute(&self.pool)
        .await
        .map_err(sql("record sync end"))?;
        Ok(())
    }

    /// The most recent syncs of `integration`, newest first. A tenant's key
    /// ([`tenant_integration_key`]: whoever knows a tenant by id only, such as the admin API)
    /// reads the syncs of the tenant's current incarnation, and those kept under the key itself
    /// (before incarnations), never a deleted incarnation's.
    pub async fn sync_history(
        &self,
        integration: &str,
        limit: i64,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        let current = self.current_incarnation_key(integration).await?;
        let rows = sqlx::query(
            "SELECT sync_id, started_at, ended_at, status, summary FROM berth_sync
             WHERE integration = $1 OR integration = $2
             ORDER BY started_at DESC, sync_id DESC LIMIT $3",
        )
        .bind(integration)
        .bind(current.as_deref().unwrap_or(integration))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(sql("read sync history"))?;
        rows.iter()
            .map(|row| {
                Ok(SyncRecord {
                    sync_id: row.try_get("sync_id")?,
                    started_at: row.try_get("started_at")?,
                    ended_at: row.try_get("ended_at")?,
                    status: row.try_get("status")?,
                    summary: row.try_get("summary")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(sql("read sync history"))
    }
}

/// A database URL with any password replaced, for error messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: &str, i: &str) -> EntityKey {
        EntityKey {
            blueprint: b.into(),
            identifier: i.into(),
        }
    }

    fn skey(b: &str, i: &str, entry: u32) -> StateKey {
        StateKey {
            entity: key(b, i),
            entry,
        }
    }

    fn state(h: &str) -> EntityState {
        EntityState {
            body_hash: h.into(),
            scope: "123/us-east-1/AWS::S3::Bucket".into(),
            also: Vec::new(),
            written_at: 1,
        }
    }

    #[tokio::test]
    async fn states_are_kept_per_integration_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("s/state.db"))
            .await
            .unwrap();
        let many: Vec<_> = (0..1203)
            .map(|i| (skey("bp", &format!("e{i}"), 0), state("h1")))
            .collect();
        store
            .put_entity_states("tenant-a/aws", &many)
            .await
            .unwrap();
        store
            .put_entity_states("tenant-b/aws", &[(skey("bp", "e1", 0), state("other"))])
            .await
            .unwrap();
        store
            .put_entity_states(
                "tenant-a/aws",
                &[
                    (skey("bp", "e1", 0), state("h2")),
                    (skey("bp", "e1", 1), state("second entry")),
                ],
            )
            .await
            .unwrap();
        let a = store.entity_states("tenant-a/aws").await.unwrap();
        assert_eq!(a.len(), 1204);
        assert_eq!(a[&skey("bp", "e1", 0)].body_hash, "h2");
        assert_eq!(a[&skey("bp", "e1", 1)].body_hash, "second entry");
        assert_eq!(a[&skey("bp", "e2", 0)].body_hash, "h1");
        let b = store.entity_states("tenant-b/aws").await.unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[&skey("bp", "e1", 0)].body_hash, "other");

        store
            .delete_entity_states("tenant-a/aws", &[key("bp", "e1"), key("bp", "nope")])
            .await
            .unwrap();
        assert_eq!(
            store.entity_states("tenant-a/aws").await.unwrap().len(),
            1202
        );
        assert_eq!(store.entity_states("tenant-b/aws").await.unwrap().len(), 1);

        // Reopening the file keeps everything.
        drop(store);
        let again = Store::open_sqlite(&dir.path().join("s/state.db"))
            .await
            .unwrap();
        assert_eq!(
            again.entity_states("tenant-a/aws").await.unwrap().len(),
            1202
        );
    }

    #[tokio::test]
    async fn other_scopes_are_kept_replaced_and_never_name_the_row_itself() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let own = state("h").scope;
        let other = "456/eu-west-1/AWS::S3::Bucket".to_string();
        let mut shared = state("h");
        shared.also = vec![other.clone()];
        store
            .put_entity_states(
                "i",
                &[
                    (skey("bp", "a", 0), shared),
                    (skey("bp", "b", 0), state("h")),
                ],
            )
            .await
            .unwrap();
        let read = store.entity_states("i").await.unwrap();
        assert_eq!(read[&skey("bp", "a", 0)].also, vec![other.clone()]);
        assert_eq!(
            read[&skey("bp", "a", 0)].sources().collect::<Vec<_>>(),
            vec![own.as_str(), other.as_str()]
        );
        assert!(read[&skey("bp", "b", 0)].also.is_empty());
        // Replaced by a list naming the row's own scope (dropped when read); a key without a
        // state is left alone.
        store
            .put_entity_also(
                "i",
                &[
                    (skey("bp", "b", 0), vec![own.clone(), other.clone()]),
                    (skey("bp", "a", 0), vec![own.clone()]),
                    (skey("bp", "none", 0), vec![other.clone()]),
                ],
            )
            .await
            .unwrap();
        let read = store.entity_states("i").await.unwrap();
        assert_eq!(read.len(), 2);
        assert!(read[&skey("bp", "a", 0)].also.is_empty());
        assert_eq!(read[&skey("bp", "b", 0)].also, vec![other]);
        // A value no Berth wrote is an error naming the column, not an empty list.
        sqlx::query("UPDATE berth_entity_state SET also_scopes = 'oops'")
            .execute(&store.pool)
            .await
            .unwrap();
        let err = store.entity_states("i").await.unwrap_err().to_string();
        assert!(err.contains("also_scopes"), "{err}");
    }

    #[tokio::test]
    async fn sync_history_newest_first() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        store.begin_sync("t", "s1", 10).await.unwrap();
        store
            .finish_sync("t", "s1", 20, "completed", "{}")
            .await
            .unwrap();
        store.begin_sync("t", "s2", 30).await.unwrap();
        store.begin_sync("other", "s3", 40).await.unwrap();
        let h = store.sync_history("t", 10).await.unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].sync_id, "s2");
        assert_eq!(h[0].status, "running");
        assert_eq!(h[0].ended_at, None);
        assert_eq!(h[1].status, "completed");
        assert_eq!(h[1].ended_at, Some(20));
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open_sqlite(&path).await.unwrap();
        sqlx::query("INSERT INTO berth_schema (version) VALUES (99)")
            .execute(&store.pool)
            .await
            .unwrap();
        drop(store);
        let err = Store::open_sqlite(&path).await.unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }

    #[tokio::test]
    async fn version_1_database_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open_sqlite(&path).await.unwrap();
        store
            .put_entity_states("my-aws", &[(skey("bp", "e1", 0), state("h"))])
            .await
            .unwrap();
        // Back to what version 1 left: no tenant tables, version 1 recorded.
        for stmt in [
            "DROP TABLE berth_tenant",
            "DROP TABLE berth_schedule",
            "DELETE FROM berth_schema",
            "INSERT INTO berth_schema (version) VALUES (1)",
        ] {
            sqlx::query(stmt).execute(&store.pool).await.unwrap();
        }
        drop(store);

        let store = Store::open_sqlite(&path).await.unwrap();
        assert_eq!(store.entity_states("my-aws").await.unwrap().len(), 1);
        store.put_tenant("a", "{}", 1_000, Some(0)).await.unwrap();
        assert!(store.schedule("a").await.unwrap().is_some());
        let v: i64 = sqlx::query("SELECT MAX(version) AS v FROM berth_schema")
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .try_get("v")
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn a_tenant_table_from_before_incarnations_gets_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open_sqlite(&path).await.unwrap();
        // Back to version 2 as it was first released: no incarnation column.
        for stmt in [
            "DROP TABLE berth_tenant",
            "CREATE TABLE berth_tenant (id TEXT PRIMARY KEY, spec TEXT NOT NULL,
                version BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
            "INSERT INTO berth_tenant VALUES ('old', '{}', 4, 1, 2)",
        ] {
            sqlx::query(stmt).execute(&store.pool).await.unwrap();
        }
        store
            .put_entity_states("tenant:old", &[(skey("bp", "e1", 0), state("h"))])
            .await
            .unwrap();
        store.begin_sync("tenant:old", "s1", 1).await.unwrap();
        drop(store);

        let store = Store::open_sqlite(&path).await.unwrap();
        // The tenant keeps its state and history under the key it had.
        let old = store.tenant("old").await.unwrap().unwrap();
        assert_eq!((old.version, old.incarnation.as_str()), (4, ""));
        assert_eq!(old.integration_key(), "tenant:old");
        assert_eq!(store.entity_states("tenant:old").await.unwrap().len(), 1);
        assert_eq!(store.sync_history("tenant:old", 5).await.unwrap().len(), 1);
        let updated = store
            .put_tenant("old", "[1]", 1_000, Some(4))
            .await
            .unwrap();
        assert_eq!(updated.incarnation, "");
        let new = store.put_tenant("new", "{}", 1_000, Some(0)).await.unwrap();
        assert_eq!(new.incarnation.len(), 32);
        // Opening again finds the column and changes nothing.
        drop(store);
        let store = Store::open_sqlite(&path).await.unwrap();
        assert_eq!(store.tenant("new").await.unwrap(), Some(new));
        // An older Berth's insert, which names no incarnation, still works.
        sqlx::query(
            "INSERT INTO berth_tenant (id, spec, version, created_at, updated_at)
             VALUES ('older', '{}', 1, 1, 1)",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        assert_eq!(
            store.tenant("older").await.unwrap().unwrap().incarnation,
            ""
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://berth:s3cret@db:5432/berth"),
            "postgres://berth:***@db:5432/berth"
        );
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }
}
