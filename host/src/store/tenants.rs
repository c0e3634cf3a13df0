//! The hosted runtime's tenants: one row per tenant with its spec and an optimistic-concurrency
//! version, created and deleted together with its schedule row (see [`super::leases`]).
//!
//! Owns: the `berth_tenant` table, and deleting everything a tenant owns.
//! Must not touch: the spec's content (opaque text; the caller has already encrypted secrets in
//! it), nor leases beyond creating and deleting the schedule row.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_ms, sql};

/// A tenant as stored. `spec` is opaque JSON text to the store (the caller has already
/// encrypted secrets inside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    pub id: String,
    pub spec: String,
    /// 1 when created, bumped by each put.
    pub version: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// The integration key under which a tenant's entity states and sync history are kept:
/// `tenant:<id>`. [`Store::delete_tenant`] deletes those rows by this key.
pub fn tenant_integration_key(tenant: &str) -> String {
    format!("tenant:{tenant}")
}

fn tenant_from_row(row: &AnyRow) -> Result<TenantRow, sqlx::Error> {
    Ok(TenantRow {
        id: row.try_get("id")?,
        spec: row.try_get("spec")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Insert or replace; `expected_version: Some(v)` fails with [`StoreError::Conflict`] unless
    /// the stored version is v (`Some(0)` = must not exist yet). Version starts at 1 and bumps
    /// on each put. Creating a tenant also creates its schedule row, due at once, with
    /// `interval_ms`; an update changes the schedule's `interval_ms` only (a running lease and
    /// the next due time are kept). `interval_ms` must be positive.
    pub async fn put_tenant(
        &self,
        id: &str,
        spec: &str,
        interval_ms: i64,
        expected_version: Option<i64>,
    ) -> Result<TenantRow, StoreError> {
        if id.is_empty() {
            return Err(StoreError::Invalid("a tenant id must not be empty".into()));
        }
        if interval_ms <= 0 {
            return Err(StoreError::Invalid(format!(
                "tenant {id}: the sync interval must be positive, not {interval_ms} ms"
            )));
        }
        let now = now_ms();
        // Each statement below is one conditional write, so a concurrent put cannot slip in
        // between a version check and the write; the transaction only ties the schedule row to
        // the tenant row.
        let mut tx = self.pool.begin().await.map_err(sql("begin"))?;
        let written = match expected_version {
            None => sqlx::query(
                "INSERT INTO berth_tenant (id, spec, version, created_at, updated_at)
                 VALUES ($1, $2, 1, $3, $3)
                 ON CONFLICT (id) DO UPDATE SET spec = excluded.spec,
                 version = berth_tenant.version + 1, updated_at = excluded.updated_at
                 RETURNING id, spec, version, created_at, updated_at",
            )
            .bind(id)
            .bind(spec)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql(format!("write tenant {id}")))?,
            Some(0) => sqlx::query(
                "INSERT INTO berth_tenant (id, spec, version, created_at, updated_at)
                 VALUES ($1, $2, 1, $3, $3)
                 ON CONFLICT (id) DO NOTHING
                 RETURNING id, spec, version, created_at, updated_at",
            )
            .bind(id)
            .bind(spec)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql(format!("create tenant {id}")))?,
            Some(v) => sqlx::query(
                "UPDATE berth_tenant SET spec = $1, version = version + 1, updated_at = $2
                 WHERE id = $3 AND version = $4
                 RETURNING id, spec, version, created_at, updated_at",
            )
            .bind(spec)
            .bind(now)
            .bind(id)
            .bind(v)
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql(format!("update tenant {id}")))?,
        };
        let Some(row) = written else {
            // Only for the message: the version someone else wrote.
            let found = sqlx::query("SELECT version FROM berth_tenant WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(sql(format!("read tenant {id}")))?
                .map(|r| r.try_get::<i64, _>("version"))
                .transpose()
                .map_err(sql(format!("read tenant {id}")))?;
            let expected = expected_version.unwrap_or_default();
            return Err(StoreError::Conflict(match found {
                Some(found) if expected == 0 => {
                    format!("tenant {id} already exists (version {found})")
                }
                Some(found) => format!("tenant {id} is at version {found}, not {expected}"),
                None => format!("tenant {id} does not exist (expected version {expected})"),
            }));
        };
        let tenant = tenant_from_row(&row).map_err(sql(format!("read tenant {id}")))?;
        // The upsert also restores a schedule row should one ever be missing.
        sqlx::query(
            "INSERT INTO berth_schedule (tenant, due_at, requested_at, interval_ms, lease_worker,
                 lease_token, leased_at, lease_expires, request_seq, lease_request_seq)
             VALUES ($1, $2, 0, $3, NULL, 0, 0, 0, 0, 0)
             ON CONFLICT (tenant) DO UPDATE SET interval_ms = excluded.interval_ms",
        )
        .bind(id)
        .bind(now)
        .bind(interval_ms)
        .execute(&mut *tx)
        .await
        .map_err(sql(format!("write schedule of tenant {id}")))?;
        tx.commit()
            .await
            .map_err(sql(format!("commit tenant {id}")))?;
        Ok(tenant)
    }

    /// One tenant, if it exists.
    pub async fn tenant(&self, id: &str) -> Result<Option<TenantRow>, StoreError> {
        sqlx::query(
            "SELECT id, spec, version, created_at, updated_at FROM berth_tenant WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql(format!("read tenant {id}")))?
        .map(|row| tenant_from_row(&row))
        .transpose()
        .map_err(sql(format!("read tenant {id}")))
    }

    /// Every tenant, ordered by id (byte order, whatever the database's collation).
    pub async fn tenants(&self) -> Result<Vec<TenantRow>, StoreError> {
        let rows =
            sqlx::query("SELECT id, spec, version, created_at, updated_at FROM berth_tenant")
                .fetch_all(&self.pool)
                .await
                .map_err(sql("read tenants"))?;
        let mut out = rows
            .iter()
            .map(tenant_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("read tenants"))?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Deletes the tenant, its schedule and lease, and its entity states and sync history: the
    /// rows of integration key `tenant:<id>` ([`tenant_integration_key`]), the key `berth
    /// serve` keeps a tenant's state under. `true` if the tenant existed.
    ///
    /// A worker still syncing the tenant finds its lease gone (renew and release return
    /// `false`); it must stop writing state, which the store cannot prevent.
    pub async fn delete_tenant(&self, id: &str) -> Result<bool, StoreError> {
        let key = tenant_integration_key(id);
        let mut tx = self.pool.begin().await.map_err(sql("begin"))?;
        let existed = sqlx::query("DELETE FROM berth_tenant WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(sql(format!("delete tenant {id}")))?
            .rows_affected()
            > 0;
        for (stmt, value) in [
            ("DELETE FROM berth_schedule WHERE tenant = $1", id),
            (
                "DELETE FROM berth_entity_state WHERE integration = $1",
                key.as_str(),
            ),
            (
                "DELETE FROM berth_sync WHERE integration = $1",
                key.as_str(),
            ),
        ] {
            sqlx::query(stmt)
                .bind(value)
                .execute(&mut *tx)
                .await
                .map_err(sql(format!("delete tenant {id}")))?;
        }
        tx.commit()
            .await
            .map_err(sql(format!("commit deletion of tenant {id}")))?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EntityKey, EntityState, StateKey};

    #[tokio::test]
    async fn versions_guard_puts() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let a = store.put_tenant("a", "{}", 1_000, Some(0)).await.unwrap();
        assert_eq!(a.version, 1);
        assert!(matches!(
            store.put_tenant("a", "{}", 1_000, Some(0)).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store.put_tenant("a", "{}", 1_000, Some(7)).await,
            Err(StoreError::Conflict(_))
        ));
        let a2 = store.put_tenant("a", "[1]", 2_000, Some(1)).await.unwrap();
        assert_eq!((a2.version, a2.spec.as_str()), (2, "[1]"));
        let a3 = store.put_tenant("a", "[2]", 3_000, None).await.unwrap();
        assert_eq!(a3.version, 3);
        let b = store.put_tenant("B", "{}", 1_000, None).await.unwrap();
        assert_eq!(store.tenants().await.unwrap(), vec![b, a3.clone()]);
        assert_eq!(store.tenant("a").await.unwrap(), Some(a3));
        let s = store.schedule("a").await.unwrap().unwrap();
        assert_eq!((s.due_at, s.interval_ms), (a.created_at, 3_000));
    }

    #[tokio::test]
    async fn delete_takes_the_tenants_state_along() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        store.put_tenant("a", "{}", 1_000, None).await.unwrap();
        let state = EntityState {
            body_hash: "h".into(),
            scope: "s".into(),
            written_at: 1,
        };
        let key = StateKey {
            entity: EntityKey {
                blueprint: "bp".into(),
                identifier: "e".into(),
            },
            entry: 0,
        };
        for integration in ["tenant:a", "my-aws"] {
            store
                .put_entity_states(integration, &[(key.clone(), state.clone())])
                .await
                .unwrap();
            store.begin_sync(integration, "s1", 1).await.unwrap();
        }
        assert!(store.delete_tenant("a").await.unwrap());
        assert!(!store.delete_tenant("a").await.unwrap());
        assert_eq!(store.schedule("a").await.unwrap(), None);
        assert!(store.entity_states("tenant:a").await.unwrap().is_empty());
        assert!(store.sync_history("tenant:a", 5).await.unwrap().is_empty());
        assert_eq!(store.entity_states("my-aws").await.unwrap().len(), 1);
        assert_eq!(store.sync_history("my-aws", 5).await.unwrap().len(), 1);
    }
}
