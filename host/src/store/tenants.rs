//! The hosted runtime's tenants: one row per tenant with its spec, an optimistic-concurrency
//! version and an incarnation, created and deleted together with its schedule row (see
//! [`super::leases`]).
//!
//! A tenant id can be deleted and created again, and the second tenant is a stranger to the
//! first: it gets a fresh random incarnation, and everything kept for a tenant (its entity
//! states and sync history here, its setup, clients and plugin instances in a worker) is keyed
//! by the incarnation, never by id and version (versions start again at 1).
//!
//! Owns: the `berth_tenant` table, incarnations and the state keys derived from them, and
//! deleting everything a tenant owns. Must not touch: the spec's content (opaque text; the
//! caller has already encrypted secrets in it), nor leases beyond creating and deleting the
//! schedule row.

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
    /// Drawn when the id is created (again after a delete: 128 random bits, hex) and kept by
    /// updates: two tenants that share an id never share an incarnation. Empty for a tenant
    /// created before incarnations existed (or by such an older Berth).
    pub incarnation: String,
}

impl TenantRow {
    /// The key of this incarnation's entity states and sync history, and its name in a worker
    /// ([`incarnation_integration_key`]).
    pub fn integration_key(&self) -> String {
        incarnation_integration_key(&self.id, &self.incarnation)
    }
}

/// The key a tenant is known by from outside (`tenant:<id>`, as the admin API knows it by id):
/// [`Store::sync_history`] under it reads the current incarnation's syncs. A tenant created
/// before incarnations keeps its state under it too.
pub fn tenant_integration_key(tenant: &str) -> String {
    format!("tenant:{tenant}")
}

/// The key of one incarnation's entity states and sync history: `tenant:<id>/<incarnation>`
/// (tenant ids have no `/`), or [`tenant_integration_key`] for the empty incarnation of a
/// tenant from before incarnations.
pub fn incarnation_integration_key(tenant: &str, incarnation: &str) -> String {
    if incarnation.is_empty() {
        tenant_integration_key(tenant)
    } else {
        format!("tenant:{tenant}/{incarnation}")
    }
}

/// 128 random bits, hex.
fn new_incarnation() -> String {
    let mut bits = [0u8; 16];
    // Incarnations must not repeat; a system without randomness cannot run `berth serve` safely.
    aws_lc_rs::rand::fill(&mut bits).expect("the system random generator failed");
    hex::encode(bits)
}

fn tenant_from_row(row: &AnyRow) -> Result<TenantRow, sqlx::Error> {
    Ok(TenantRow {
        id: row.try_get("id")?,
        spec: row.try_get("spec")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        incarnation: row.try_get("incarnation")?,
    })
}

impl Store {
    /// Insert or replace; `expected_version: Some(v)` fails with [`StoreError::Conflict`] unless
    /// the stored version is v (`Some(0)` = must not exist yet). Version starts at 1 and bumps
    /// on each put. Creating a tenant draws its incarnation and creates its schedule row, due
    /// at once, with `interval_ms`; an update keeps the incarnation and changes the schedule's
    /// `interval_ms` only (a running lease and the next due time are kept). `interval_ms` must
    /// be positive.
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
        // Used only if this put creates the tenant.
        let incarnation = new_incarnation();
        // Each statement below is one conditional write, so a concurrent put cannot slip in
        // between a version check and the write; the transaction only ties the schedule row to
        // the tenant row.
        let mut tx = self.pool.begin().await.map_err(sql("begin"))?;
        let written = match expected_version {
            None => sqlx::query(
                "INSERT INTO berth_tenant (id, spec, version, created_at, updated_at, incarnation)
                 VALUES ($1, $2, 1, $3, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET spec = excluded.spec,
                 version = berth_tenant.version + 1, updated_at = excluded.updated_at
                 RETURNING id, spec, version, created_at, updated_at, incarnation",
            )
            .bind(id)
            .bind(spec)
            .bind(now)
            .bind(&incarnation)
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql(format!("write tenant {id}")))?,
            Some(0) => sqlx::query(
                "INSERT INTO berth_tenant (id, spec, version, created_at, updated_at, incarnation)
                 VALUES ($1, $2, 1, $3, $3, $4)
                 ON CONFLICT (id) DO NOTHING
                 RETURNING id, spec, version, created_at, updated_at, incarnation",
            )
            .bind(id)
            .bind(spec)
            .bind(now)
            .bind(&incarnation)
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql(format!("create tenant {id}")))?,
            Some(v) => sqlx::query(
                "UPDATE berth_tenant SET spec = $1, version = version + 1, updated_at = $2
                 WHERE id = $3 AND version = $4
                 RETURNING id, spec, version, created_at, updated_at, incarnation",
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
        if tenant.version == 1 {
            // A new tenant starts with no state. Only a sync of a deleted tenant by this id
            // that wrote on after the deletion (by a Berth from before incarnations, which
            // kept state under the bare key) can have left any; it must not reach this one's
            // history.
            delete_integration_in(&mut tx, &tenant_integration_key(id))
                .await
                .map_err(sql(format!("create tenant {id}")))?;
        }
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
            "SELECT id, spec, version, created_at, updated_at, incarnation FROM berth_tenant
             WHERE id = $1",
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
        let rows = sqlx::query(
            "SELECT id, spec, version, created_at, updated_at, incarnation FROM berth_tenant",
        )
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

    /// Deletes the tenant, its schedule and lease, and its entity states and sync history (the
    /// rows of its incarnation's key, [`TenantRow::integration_key`], and of its bare key,
    /// [`tenant_integration_key`]). `true` if the tenant existed.
    ///
    /// A worker still syncing the tenant finds its lease gone (renew and release return
    /// `false`); it must stop writing state, which the store cannot prevent. What it writes
    /// after this goes under a key no later tenant of this id reads; that worker then removes
    /// it with [`Store::forget_integration`].
    pub async fn delete_tenant(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(sql("begin"))?;
        let deleted = sqlx::query("DELETE FROM berth_tenant WHERE id = $1 RETURNING incarnation")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql(format!("delete tenant {id}")))?;
        let incarnation: Option<String> = deleted
            .map(|row| row.try_get("incarnation"))
            .transpose()
            .map_err(sql(format!("delete tenant {id}")))?;
        sqlx::query("DELETE FROM berth_schedule WHERE tenant = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(sql(format!("delete tenant {id}")))?;
        let mut keys = vec![tenant_integration_key(id)];
        if let Some(inc) = incarnation.as_deref().filter(|i| !i.is_empty()) {
            keys.push(incarnation_integration_key(id, inc));
        }
        for key in &keys {
            delete_integration_in(&mut tx, key)
                .await
                .map_err(sql(format!("delete tenant {id}")))?;
        }
        tx.commit()
            .await
            .map_err(sql(format!("commit deletion of tenant {id}")))?;
        Ok(incarnation.is_some())
    }

    /// Deletes every entity state and sync record of `integration`: what a sync of a deleted
    /// tenant wrote after the deletion, under its incarnation's key.
    pub async fn forget_integration(&self, integration: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(sql("begin"))?;
        delete_integration_in(&mut tx, integration)
            .await
            .map_err(sql(format!("forget {integration}")))?;
        tx.commit()
            .await
            .map_err(sql(format!("commit forgetting {integration}")))
    }

    /// For a tenant's bare key ([`tenant_integration_key`]), the key of its current
    /// incarnation, if that differs; `None` for any other key.
    pub(super) async fn current_incarnation_key(
        &self,
        integration: &str,
    ) -> Result<Option<String>, StoreError> {
        let Some(id) = integration
            .strip_prefix("tenant:")
            .filter(|id| !id.contains('/'))
        else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT incarnation FROM berth_tenant WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql(format!("read tenant {id}")))?;
        let incarnation: Option<String> = row
            .map(|r| r.try_get("incarnation"))
            .transpose()
            .map_err(sql(format!("read tenant {id}")))?;
        Ok(incarnation
            .filter(|i| !i.is_empty())
            .map(|i| incarnation_integration_key(id, &i)))
    }
}

/// Deletes the entity states and sync records of `integration`, within `tx`.
async fn delete_integration_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    integration: &str,
) -> Result<(), sqlx::Error> {
    for stmt in [
        "DELETE FROM berth_entity_state WHERE integration = $1",
        "DELETE FROM berth_sync WHERE integration = $1",
    ] {
        sqlx::query(stmt)
            .bind(integration)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
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
            also: Vec::new(),
            written_at: 1,
        };
        let key = StateKey {
            entity: EntityKey {
                blueprint: "bp".into(),
                identifier: "e".into(),
            },
            entry: 0,
        };
        let inc_key = store.tenant("a").await.unwrap().unwrap().integration_key();
        for integration in ["tenant:a", inc_key.as_str(), "my-aws"] {
            store
                .put_entity_states(integration, &[(key.clone(), state.clone())])
                .await
                .unwrap();
            store.begin_sync(integration, "s1", 1).await.unwrap();
        }
        assert!(store.delete_tenant("a").await.unwrap());
        assert!(!store.delete_tenant("a").await.unwrap());
        assert_eq!(store.schedule("a").await.unwrap(), None);
        for key in ["tenant:a", inc_key.as_str()] {
            assert!(store.entity_states(key).await.unwrap().is_empty());
            assert!(store.sync_history(key, 5).await.unwrap().is_empty());
        }
        assert_eq!(store.entity_states("my-aws").await.unwrap().len(), 1);
        assert_eq!(store.sync_history("my-aws", 5).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_tenant_created_again_is_another_incarnation() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let first = store.put_tenant("a", "{}", 1_000, Some(0)).await.unwrap();
        assert_eq!(first.incarnation.len(), 32);
        assert!(first.incarnation.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            first.integration_key(),
            format!("tenant:a/{}", first.incarnation)
        );
        // Updates, with or without a version check, keep the incarnation.
        let updated = store.put_tenant("a", "[1]", 1_000, Some(1)).await.unwrap();
        let upserted = store.put_tenant("a", "[2]", 1_000, None).await.unwrap();
        assert_eq!(
            (updated.incarnation.as_str(), upserted.incarnation.as_str()),
            (first.incarnation.as_str(), first.incarnation.as_str())
        );
        assert_eq!(upserted.version, 3);
        let other = store.put_tenant("b", "{}", 1_000, None).await.unwrap();
        assert_ne!(other.incarnation, first.incarnation);

        store
            .begin_sync(&first.integration_key(), "old", 1)
            .await
            .unwrap();
        assert_eq!(
            store.sync_history("tenant:a", 5).await.unwrap()[0].sync_id,
            "old"
        );
        assert!(store.delete_tenant("a").await.unwrap());
        // A sync of the deleted tenant that wrote on after the deletion.
        store
            .begin_sync(&first.integration_key(), "late", 2)
            .await
            .unwrap();
        store.begin_sync("tenant:a", "late-bare", 2).await.unwrap();

        for expected in [Some(0), None] {
            let again = store.put_tenant("a", "{}", 1_000, expected).await.unwrap();
            assert_eq!(again.version, 1);
            assert_ne!(again.incarnation, first.incarnation);
            assert_ne!(again.integration_key(), first.integration_key());
            store
                .begin_sync(&again.integration_key(), "new", 3)
                .await
                .unwrap();
            // By id, only the tenant now living under it.
            let seen: Vec<String> = store
                .sync_history("tenant:a", 5)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.sync_id)
                .collect();
            assert_eq!(seen, ["new"]);
            assert!(store.delete_tenant("a").await.unwrap());
        }
        store
            .forget_integration(&first.integration_key())
            .await
            .unwrap();
        assert!(
            store
                .sync_history(&first.integration_key(), 5)
                .await
                .unwrap()
                .is_empty()
        );
        // Keys of other integrations are read as they are.
        store.begin_sync("my-aws", "s", 1).await.unwrap();
        assert_eq!(store.sync_history("my-aws", 5).await.unwrap().len(), 1);
        assert_eq!(incarnation_integration_key("a", ""), "tenant:a");
    }
}
