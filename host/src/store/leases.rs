//! When each tenant syncs next, and which worker may sync it now: one `berth_schedule` row per
//! tenant holding its due time, on-demand requests and a lease with a fencing token.
//!
//! Owns: every read and write of the schedule and lease columns. Mutual exclusion comes from
//! single conditional `UPDATE`s (compare-and-set on the lease columns), never from
//! `SELECT … FOR UPDATE` (SQLite has none) nor from reading then writing.
//! Must not touch: tenant specs, or entity state and sync history (the schedule row itself is
//! created and deleted with its tenant, in [`super::tenants`]).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, sql};

/// A tenant's schedule and lease, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    pub tenant: String,
    /// When the next sync is due (Unix milliseconds).
    pub due_at: i64,
    /// The last on-demand request (0 if none).
    pub requested_at: i64,
    pub interval_ms: i64,
    /// The worker holding the lease; `None` when free (`leased_at` and `lease_expires` then
    /// describe the last lease: when it was granted and when it was released or expired).
    pub lease_worker: Option<String>,
    /// The last lease's fencing token (0 if never leased).
    pub lease_token: i64,
    pub leased_at: i64,
    pub lease_expires: i64,
}

/// Proof of holding a tenant's lease: `token` increments on every grant (a fencing token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub tenant: String,
    pub worker: String,
    pub token: i64,
    pub leased_at: i64,
    /// As granted; [`Store::renew_lease`] moves the stored expiry, not this copy.
    pub expires_at: i64,
}

/// A macro so that statements can `concat!` it into `&'static str` SQL.
macro_rules! schedule_columns {
    () => {
        "tenant, due_at, requested_at, interval_ms, lease_worker, lease_token, leased_at, \
         lease_expires"
    };
}

fn schedule_from_row(row: &AnyRow) -> Result<ScheduleRow, sqlx::Error> {
    Ok(ScheduleRow {
        tenant: row.try_get("tenant")?,
        due_at: row.try_get("due_at")?,
        requested_at: row.try_get("requested_at")?,
        interval_ms: row.try_get("interval_ms")?,
        lease_worker: row.try_get("lease_worker")?,
        lease_token: row.try_get("lease_token")?,
        leased_at: row.try_get("leased_at")?,
        lease_expires: row.try_get("lease_expires")?,
    })
}

impl Store {
    /// A tenant's schedule and lease, if the tenant exists.
    pub async fn schedule(&self, tenant: &str) -> Result<Option<ScheduleRow>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM berth_schedule WHERE tenant = $1"
        ))
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql(format!("read schedule of tenant {tenant}")))?
        .map(|row| schedule_from_row(&row))
        .transpose()
        .map_err(sql(format!("read schedule of tenant {tenant}")))
    }

    /// On-demand resync: `requested_at = now`, `due_at = min(due_at, now)`. A request while a
    /// sync of the tenant runs makes one more sync right after it (queued, never dropped, never
    /// two at once: see [`Store::release_lease`]). `false` if there is no such tenant.
    pub async fn request_sync(&self, tenant: &str, now_ms: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE berth_schedule SET requested_at = $1, request_seq = request_seq + 1,
                 due_at = CASE WHEN due_at < $1 THEN due_at ELSE $1 END
             WHERE tenant = $2",
        )
        .bind(now_ms)
        .bind(tenant)
        .execute(&self.pool)
        .await
        .map_err(sql(format!("request a sync of tenant {tenant}")))?;
        Ok(result.rows_affected() > 0)
    }

    /// Tenants due (`due_at <= now`) whose lease is free or expired, earliest due first, at
    /// most `limit`. Only candidates: [`Store::try_lease`] decides who syncs.
    pub async fn due_tenants(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<ScheduleRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM berth_schedule
             WHERE due_at <= $1 AND (lease_worker IS NULL OR lease_expires < $1)
             ORDER BY due_at, tenant LIMIT $2"
        ))
        .bind(now_ms)
        // Postgres rejects a negative LIMIT; SQLite reads it as "no limit".
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(sql("read due tenants"))?;
        rows.iter()
            .map(schedule_from_row)
            .collect::<Result<_, _>>()
            .map_err(sql("read due tenants"))
    }

    /// Atomically takes the lease if free or expired (`lease_expires < now`): one conditional
    /// `UPDATE`, so exactly one of several concurrent callers, on Postgres or SQLite, in one
    /// process or many, gets `Some`. The token is the previous token + 1. `None` if the lease
    /// is held, the tenant is not due (`due_at > now`: a caller acting on an older
    /// [`Store::due_tenants`] answer does not sync again a tenant another worker has just
    /// synced) or there is no such tenant.
    pub async fn try_lease(
        &self,
        tenant: &str,
        worker: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        if ttl_ms <= 0 {
            return Err(StoreError::Invalid(format!(
                "a lease's time to live must be positive, not {ttl_ms} ms"
            )));
        }
        let expires_at = now_ms.saturating_add(ttl_ms);
        // Only a due tenant: a worker acting on a stale `due_tenants` list must not sync again a
        // tenant another worker has just finished. `lease_request_seq` snapshots the request count at the grant, in the same statement,
        // so a request committed after it is seen as arriving during this sync.
        let row = sqlx::query(
            "UPDATE berth_schedule SET lease_worker = $1, lease_token = lease_token + 1,
                 leased_at = $2, lease_expires = $3, lease_request_seq = request_seq
             WHERE tenant = $4 AND due_at <= $2 AND (lease_worker IS NULL OR lease_expires < $2)
             RETURNING lease_token",
        )
        .bind(worker)
        .bind(now_ms)
        .bind(expires_at)
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql(format!("lease tenant {tenant}")))?;
        let Some(row) = row else { return Ok(None) };
        let token: i64 = row
            .try_get("lease_token")
            .map_err(sql(format!("lease tenant {tenant}")))?;
        Ok(Some(Lease {
            tenant: tenant.to_string(),
            worker: worker.to_string(),
            token,
            leased_at: now_ms,
            expires_at,
        }))
    }

    /// Heartbeat: moves the lease's expiry to `now + ttl_ms` if it is still held with this
    /// token and not expired; `false` if lost (expired, taken by another worker, or the tenant
    /// deleted), and the holder must then stop.
    pub async fn renew_lease(
        &self,
        lease: &Lease,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        if ttl_ms <= 0 {
            return Err(StoreError::Invalid(format!(
                "a lease's time to live must be positive, not {ttl_ms} ms"
            )));
        }
        let result = sqlx::query(
            "UPDATE berth_schedule SET lease_expires = $1
             WHERE tenant = $2 AND lease_worker = $3 AND lease_token = $4
                 AND lease_expires >= $5",
        )
        .bind(now_ms.saturating_add(ttl_ms))
        .bind(&lease.tenant)
        .bind(&lease.worker)
        .bind(lease.token)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(sql(format!("renew the lease of tenant {}", lease.tenant)))?;
        Ok(result.rows_affected() > 0)
    }

    /// Ends the lease and sets the next due time, in one conditional `UPDATE`:
    /// - due at once (`now`) if a sync was requested while the lease was held (the request is
    ///   queued, not dropped);
    /// - else at `leased_at + interval_ms`, so a sync that overran its interval is due at once.
    ///
    /// `false`, changing nothing, unless the lease is still held with this token. An expired
    /// lease that no other worker has taken still counts as held: its sync did run alone, and
    /// releasing it sets the right due time instead of leaving it to be taken over.
    ///
    /// "During the lease" compares request and grant counters, not timestamps, so clocks of
    /// different machines cannot lose a request.
    pub async fn release_lease(&self, lease: &Lease, now_ms: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE berth_schedule SET lease_worker = NULL, lease_expires = $1,
                 due_at = CASE WHEN request_seq > lease_request_seq THEN $1
                     ELSE leased_at + interval_ms END
             WHERE tenant = $2 AND lease_worker = $3 AND lease_token = $4",
        )
        .bind(now_ms)
        .bind(&lease.tenant)
        .bind(&lease.worker)
        .bind(lease.token)
        .execute(&self.pool)
        .await
        .map_err(sql(format!("release the lease of tenant {}", lease.tenant)))?;
        Ok(result.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: i64 = 30_000;

    async fn store_with(tenant: &str, interval_ms: i64) -> (Store, i64) {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let t = store
            .put_tenant(tenant, "{}", interval_ms, Some(0))
            .await
            .unwrap();
        (store, t.created_at)
    }

    #[tokio::test]
    async fn a_request_during_a_sync_is_queued_behind_it() {
        let (store, t0) = store_with("a", 60_000).await;
        let lease = store.try_lease("a", "w1", t0, TTL).await.unwrap().unwrap();
        assert_eq!(lease.token, 1);
        assert!(store.request_sync("a", t0 + 10).await.unwrap());
        assert!(store.due_tenants(t0 + 10, 10).await.unwrap().is_empty());
        assert!(store.release_lease(&lease, t0 + 20).await.unwrap());
        assert_eq!(store.schedule("a").await.unwrap().unwrap().due_at, t0 + 20);

        let next = store
            .try_lease("a", "w1", t0 + 20, TTL)
            .await
            .unwrap()
            .unwrap();
        assert!(store.release_lease(&next, t0 + 30).await.unwrap());
        assert_eq!(
            store.schedule("a").await.unwrap().unwrap().due_at,
            t0 + 20 + 60_000
        );
    }

    #[tokio::test]
    async fn a_request_whose_clock_lags_the_workers_is_not_lost() {
        let (store, t0) = store_with("a", 60_000).await;
        let lease = store.try_lease("a", "w1", t0, TTL).await.unwrap().unwrap();
        // The requesting machine's clock is a second behind the worker's.
        assert!(store.request_sync("a", t0 - 1_000).await.unwrap());
        assert!(store.release_lease(&lease, t0 + 5_000).await.unwrap());
        assert_eq!(
            store.schedule("a").await.unwrap().unwrap().due_at,
            t0 + 5_000
        );
    }

    #[tokio::test]
    async fn an_expired_lease_passes_on_with_a_new_token() {
        let (store, t0) = store_with("a", 60_000).await;
        let old = store.try_lease("a", "w1", t0, 100).await.unwrap().unwrap();
        assert_eq!(
            store.try_lease("a", "w2", t0 + 100, TTL).await.unwrap(),
            None
        );
        assert_eq!(store.due_tenants(t0 + 101, 10).await.unwrap().len(), 1);
        let new = store
            .try_lease("a", "w2", t0 + 101, TTL)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(new.token, 2);
        assert!(!store.renew_lease(&old, t0 + 102, TTL).await.unwrap());
        assert!(!store.release_lease(&old, t0 + 102).await.unwrap());
        assert!(store.renew_lease(&new, t0 + 102, TTL).await.unwrap());
        assert_eq!(
            store.schedule("a").await.unwrap().unwrap().lease_expires,
            t0 + 102 + TTL
        );
        assert!(store.release_lease(&new, t0 + 200).await.unwrap());
        assert_eq!(
            store.schedule("a").await.unwrap().unwrap().due_at,
            t0 + 101 + 60_000
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_connections_get_one_lease() {
        // A file, not `sqlite::memory:`: that has a single connection, so nothing would race.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("s.db")).await.unwrap();
        let t0 = store
            .put_tenant("a", "{}", 60_000, None)
            .await
            .unwrap()
            .created_at;
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .try_lease("a", &format!("w{i}"), t0, TTL)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            won += usize::from(t.await.unwrap().is_some());
        }
        assert_eq!(won, 1);
    }

    #[tokio::test]
    async fn bad_arguments_are_refused() {
        let (store, t0) = store_with("a", 60_000).await;
        assert!(matches!(
            store.try_lease("a", "w1", t0, 0).await,
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(store.try_lease("nope", "w1", t0, TTL).await.unwrap(), None);
        assert!(!store.request_sync("nope", t0).await.unwrap());
        assert!(store.due_tenants(t0, -1).await.unwrap().is_empty());
    }
}
