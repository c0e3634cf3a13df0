//! The state store's behaviour on Postgres and on SQLite, through the same tests: tenants,
//! schedules, leases under concurrency, migrations, entity states and sync history.
//!
//! Owns: its throwaway databases (a fresh Postgres database per test, dropped when the test
//! passes; a temporary SQLite file). Needs `BERTH_TEST_POSTGRES_URL` (`scripts/test` sets it from
//! `tests/postgres/start`) and fails without it, never skips.
//! Must not touch: the `berth` database the URL names, beyond creating and dropping databases.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use berth::store::{
    EntityKey, EntityState, Lease, StateKey, Store, StoreError, TenantRow, now_ms,
    tenant_integration_key,
};
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Connection, Row};

/// Where one test's store lives.
enum Db {
    Postgres {
        /// The cluster's own database, for CREATE/DROP DATABASE.
        admin_url: String,
        name: String,
        url: String,
    },
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
}

impl Db {
    /// A fresh database, so reruns on the same cluster and tests running in parallel (they all
    /// see every due tenant) cannot meet.
    async fn postgres() -> Db {
        let admin_url = std::env::var("BERTH_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!(
                "BERTH_TEST_POSTGRES_URL is not set: start a throwaway cluster with \
                 `export BERTH_TEST_POSTGRES_URL=$(tests/postgres/start)` (needs Debian's \
                 postgresql package), or run ./scripts/test"
            )
        });
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "berth_test_{}_{}_{}",
            std::process::id(),
            now_ms(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::any::install_default_drivers();
        let mut admin = AnyConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("connect to BERTH_TEST_POSTGRES_URL: {e}"));
        // The name is generated above from digits and underscores.
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let url = with_database(&admin_url, &name);
        Db::Postgres {
            admin_url,
            name,
            url,
        }
    }

    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("state.db").display()
        );
        Db::Sqlite { _dir: dir, url }
    }

    fn url(&self) -> &str {
        match self {
            Db::Postgres { url, .. } | Db::Sqlite { url, .. } => url,
        }
    }

    /// A new store (its own connection pool) on this database.
    async fn open(&self) -> Store {
        Store::open(self.url()).await.unwrap()
    }

    /// A raw pool, for what the store API does not do (old schemas).
    async fn raw(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPool::connect(self.url()).await.unwrap()
    }

    /// Drops a passed test's Postgres database (a failed one's stays, to look at).
    async fn finish(self) {
        if let Db::Postgres {
            admin_url, name, ..
        } = self
        {
            let mut admin = AnyConnection::connect(&admin_url).await.unwrap();
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .unwrap();
            admin.close().await.unwrap();
        }
    }
}

/// `url` naming database `name` instead.
fn with_database(url: &str, name: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (url, None),
    };
    let (prefix, _) = main
        .rsplit_once('/')
        .filter(|(p, _)| p.contains("://") && !p.ends_with('/'))
        .unwrap_or_else(|| panic!("BERTH_TEST_POSTGRES_URL {url:?} names no database"));
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

/// Each behaviour below runs once on Postgres and once on SQLite.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let db = super::Db::postgres().await;
                super::$name(&db).await;
                db.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = super::Db::sqlite();
                super::$name(&db).await;
                db.finish().await;
            }
        }
    )*};
}

on_both!(
    tenants_crud_and_version_conflicts,
    delete_tenant_removes_what_it_owns,
    request_during_lease_makes_one_more_sync_after_release,
    release_without_request_is_due_one_interval_after_lease,
    concurrent_try_lease_has_exactly_one_winner,
    expired_lease_is_taken_over_and_the_old_holder_is_fenced,
    entity_states_and_sync_history_round_trip,
    version_1_database_is_upgraded_and_newer_refused,
    concurrent_opens_create_the_schema_once,
);

const MINUTE: i64 = 60_000;

fn conflict(r: Result<TenantRow, StoreError>) -> String {
    match r {
        Err(StoreError::Conflict(m)) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn tenants_crud_and_version_conflicts(db: &Db) {
    let store = db.open().await;
    let before = now_ms();
    let acme = store
        .put_tenant("acme", r#"{"v":1}"#, MINUTE, Some(0))
        .await
        .unwrap();
    assert_eq!(acme.id, "acme");
    assert_eq!(acme.spec, r#"{"v":1}"#);
    assert_eq!(acme.version, 1);
    assert!(acme.created_at >= before);
    assert_eq!(acme.created_at, acme.updated_at);

    let m = conflict(store.put_tenant("acme", "{}", MINUTE, Some(0)).await);
    assert!(m.contains("already exists"), "{m}");
    let m = conflict(store.put_tenant("acme", "{}", MINUTE, Some(2)).await);
    assert!(m.contains("version 1"), "{m}");
    let m = conflict(store.put_tenant("ghost", "{}", MINUTE, Some(3)).await);
    assert!(m.contains("does not exist"), "{m}");
    assert_eq!(store.tenant("ghost").await.unwrap(), None);
    assert_eq!(store.schedule("ghost").await.unwrap(), None);
    // A failed put changed nothing.
    assert_eq!(store.tenant("acme").await.unwrap(), Some(acme.clone()));

    let v2 = store
        .put_tenant("acme", r#"{"v":2}"#, 2 * MINUTE, Some(1))
        .await
        .unwrap();
    assert_eq!((v2.version, v2.created_at), (2, acme.created_at));
    assert!(v2.updated_at >= acme.updated_at);
    let v3 = store
        .put_tenant("acme", r#"{"v":3}"#, 3 * MINUTE, None)
        .await
        .unwrap();
    assert_eq!((v3.version, v3.spec.as_str()), (3, r#"{"v":3}"#));
    let beta = store.put_tenant("beta", "{}", MINUTE, None).await.unwrap();
    assert_eq!(beta.version, 1);
    let aaa = store.put_tenant("Aaa", "{}", MINUTE, None).await.unwrap();

    assert_eq!(store.tenant("acme").await.unwrap(), Some(v3.clone()));
    assert_eq!(store.tenants().await.unwrap(), vec![aaa, v3, beta.clone()]);

    // Created due at once; an update changed the interval only.
    let s = store.schedule("acme").await.unwrap().unwrap();
    assert_eq!(s.due_at, acme.created_at);
    assert_eq!(s.interval_ms, 3 * MINUTE);
    assert_eq!(s.requested_at, 0);
    assert_eq!((s.lease_worker, s.lease_token), (None, 0));
    let mut all_due = due(&store, now_ms()).await;
    all_due.sort();
    assert_eq!(all_due, ["Aaa", "acme", "beta"]);
    assert_eq!(store.due_tenants(now_ms(), 1).await.unwrap().len(), 1);

    assert!(matches!(
        store.put_tenant("", "{}", MINUTE, None).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.put_tenant("acme", "{}", 0, None).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn delete_tenant_removes_what_it_owns(db: &Db) {
    let store = db.open().await;
    for t in ["acme", "beta"] {
        store.put_tenant(t, "{}", MINUTE, Some(0)).await.unwrap();
        let key = tenant_integration_key(t);
        store
            .put_entity_states(&key, &[(skey("bp", "e1", 0), state("h"))])
            .await
            .unwrap();
        store.begin_sync(&key, "s1", 1).await.unwrap();
    }
    assert_eq!(tenant_integration_key("acme"), "tenant:acme");
    // Another integration key that merely starts like it is not the tenant's.
    store
        .put_entity_states("tenant:acme/other", &[(skey("bp", "e1", 0), state("h"))])
        .await
        .unwrap();

    assert!(store.delete_tenant("acme").await.unwrap());
    assert_eq!(store.tenant("acme").await.unwrap(), None);
    assert_eq!(store.schedule("acme").await.unwrap(), None);
    assert!(store.entity_states("tenant:acme").await.unwrap().is_empty());
    assert!(
        store
            .sync_history("tenant:acme", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .entity_states("tenant:acme/other")
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.entity_states("tenant:beta").await.unwrap().len(), 1);
    assert_eq!(
        store.sync_history("tenant:beta", 10).await.unwrap().len(),
        1
    );
    assert!(store.schedule("beta").await.unwrap().is_some());
    assert!(!store.delete_tenant("acme").await.unwrap());

    // The id can be used again, from scratch.
    let again = store
        .put_tenant("acme", "{}", MINUTE, Some(0))
        .await
        .unwrap();
    assert_eq!(again.version, 1);
    assert_eq!(
        store.schedule("acme").await.unwrap().unwrap().lease_token,
        0
    );
}

async fn request_during_lease_makes_one_more_sync_after_release(db: &Db) {
    let store = db.open().await;
    let t0 = store
        .put_tenant("acme", "{}", MINUTE, Some(0))
        .await
        .unwrap()
        .created_at;
    assert_eq!(due(&store, t0).await, ["acme"]);

    let lease = store
        .try_lease("acme", "w1", t0, 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        lease,
        Lease {
            tenant: "acme".into(),
            worker: "w1".into(),
            token: 1,
            leased_at: t0,
            expires_at: t0 + 30_000,
        }
    );
    assert!(due(&store, t0 + 1).await.is_empty(), "leased, so not due");
    assert_eq!(
        store.try_lease("acme", "w2", t0 + 1, 30_000).await.unwrap(),
        None
    );

    // Two requests while it syncs: one more sync, not two.
    assert!(store.request_sync("acme", t0 + 1_000).await.unwrap());
    assert!(store.request_sync("acme", t0 + 2_000).await.unwrap());
    let s = store.schedule("acme").await.unwrap().unwrap();
    assert_eq!(s.requested_at, t0 + 2_000);
    assert_eq!(s.lease_worker.as_deref(), Some("w1"));
    assert!(
        due(&store, t0 + 2_000).await.is_empty(),
        "never two at once"
    );

    assert!(store.release_lease(&lease, t0 + 5_000).await.unwrap());
    let s = store.schedule("acme").await.unwrap().unwrap();
    assert_eq!((s.due_at, s.lease_worker), (t0 + 5_000, None));
    assert_eq!(due(&store, t0 + 5_000).await, ["acme"]);

    let second = store
        .try_lease("acme", "w2", t0 + 5_000, 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.token, 2);
    assert!(store.release_lease(&second, t0 + 6_000).await.unwrap());
    let s = store.schedule("acme").await.unwrap().unwrap();
    assert_eq!(s.due_at, t0 + 5_000 + MINUTE, "the request was served once");

    // A request while idle makes it due at once, and the next sync serves it.
    assert!(store.request_sync("acme", t0 + 7_000).await.unwrap());
    assert_eq!(
        store.schedule("acme").await.unwrap().unwrap().due_at,
        t0 + 7_000
    );
    let third = store
        .try_lease("acme", "w1", t0 + 8_000, 30_000)
        .await
        .unwrap()
        .unwrap();
    assert!(store.release_lease(&third, t0 + 9_000).await.unwrap());
    assert_eq!(
        store.schedule("acme").await.unwrap().unwrap().due_at,
        t0 + 8_000 + MINUTE
    );

    // A request never delays a tenant that is already due earlier.
    store
        .put_tenant("beta", "{}", MINUTE, Some(0))
        .await
        .unwrap();
    let beta_due = store.schedule("beta").await.unwrap().unwrap().due_at;
    assert!(store.request_sync("beta", beta_due + 50_000).await.unwrap());
    assert_eq!(
        store.schedule("beta").await.unwrap().unwrap().due_at,
        beta_due
    );

    assert!(!store.request_sync("nope", t0).await.unwrap());
}

async fn release_without_request_is_due_one_interval_after_lease(db: &Db) {
    let store = db.open().await;
    let t0 = store
        .put_tenant("acme", "{}", MINUTE, Some(0))
        .await
        .unwrap()
        .created_at;
    let lease = store
        .try_lease("acme", "w1", t0 + 10, 30_000)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .renew_lease(&lease, t0 + 20_000, 30_000)
            .await
            .unwrap()
    );
    assert!(store.release_lease(&lease, t0 + 25_000).await.unwrap());
    let s = store.schedule("acme").await.unwrap().unwrap();
    assert_eq!(s.due_at, t0 + 10 + MINUTE);
    assert_eq!(s.requested_at, 0);
    assert_eq!(s.lease_worker, None);
    assert_eq!((s.lease_token, s.leased_at), (1, t0 + 10));
    assert!(due(&store, t0 + 10 + MINUTE - 1).await.is_empty());
    assert_eq!(due(&store, t0 + 10 + MINUTE).await, ["acme"]);

    // Released once; the same lease cannot release or renew again.
    assert!(!store.release_lease(&lease, t0 + 26_000).await.unwrap());
    assert!(
        !store
            .renew_lease(&lease, t0 + 26_000, 30_000)
            .await
            .unwrap()
    );

    // A sync longer than the interval: due again at once on release.
    let t1 = t0 + 10 + MINUTE;
    let long = store
        .try_lease("acme", "w1", t1, 30_000)
        .await
        .unwrap()
        .unwrap();
    for i in 1..=4 {
        assert!(
            store
                .renew_lease(&long, t1 + i * 20_000, 30_000)
                .await
                .unwrap()
        );
    }
    assert!(store.release_lease(&long, t1 + 90_000).await.unwrap());
    assert_eq!(
        store.schedule("acme").await.unwrap().unwrap().due_at,
        t1 + MINUTE
    );
    assert_eq!(due(&store, t1 + 90_000).await, ["acme"]);

    // An interval changed by an update applies from the next release.
    store
        .put_tenant("acme", "{}", 5 * MINUTE, None)
        .await
        .unwrap();
    let t2 = t1 + 90_000;
    let next = store
        .try_lease("acme", "w1", t2, 30_000)
        .await
        .unwrap()
        .unwrap();
    assert!(store.release_lease(&next, t2 + 1_000).await.unwrap());
    assert_eq!(
        store.schedule("acme").await.unwrap().unwrap().due_at,
        t2 + 5 * MINUTE
    );
}

async fn concurrent_try_lease_has_exactly_one_winner(db: &Db) {
    // Two pools: on Postgres, as two worker processes would be.
    let stores = [db.open().await, db.open().await];
    let t0 = stores[0]
        .put_tenant("acme", "{}", MINUTE, Some(0))
        .await
        .unwrap()
        .created_at;
    for round in 1..=5 {
        let now = t0 + round * MINUTE;
        let start = Arc::new(tokio::sync::Barrier::new(20));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = stores[i % 2].clone();
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    store
                        .try_lease("acme", &format!("w{i}"), now, 30_000)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            if let Some(lease) = t.await.unwrap() {
                winners.push(lease);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let lease = &winners[0];
        assert_eq!(lease.token, round);
        let s = stores[1].schedule("acme").await.unwrap().unwrap();
        assert_eq!(s.lease_worker.as_deref(), Some(lease.worker.as_str()));
        assert_eq!(s.lease_token, round);
        assert!(stores[1].release_lease(lease, now + 1).await.unwrap());
    }
}

async fn expired_lease_is_taken_over_and_the_old_holder_is_fenced(db: &Db) {
    let store = db.open().await;
    let other = db.open().await;
    let t0 = store
        .put_tenant("acme", "{}", MINUTE, Some(0))
        .await
        .unwrap()
        .created_at;
    let old = store
        .try_lease("acme", "w1", t0, 1_000)
        .await
        .unwrap()
        .unwrap();
    assert!(store.renew_lease(&old, t0 + 500, 1_000).await.unwrap());
    // Held until t0 + 1500 now.
    assert_eq!(
        other
            .try_lease("acme", "w2", t0 + 1_400, 1_000)
            .await
            .unwrap(),
        None
    );
    assert!(due(&other, t0 + 1_500).await.is_empty());
    assert_eq!(due(&other, t0 + 1_501).await, ["acme"]);

    let new = other
        .try_lease("acme", "w2", t0 + 1_600, 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.token, 2);
    assert!(!store.renew_lease(&old, t0 + 1_700, 1_000).await.unwrap());
    assert!(!store.release_lease(&old, t0 + 1_700).await.unwrap());
    let s = store.schedule("acme").await.unwrap().unwrap();
    assert_eq!(s.lease_worker.as_deref(), Some("w2"));
    assert_eq!((s.lease_token, s.lease_expires), (2, t0 + 2_600));
    // The token fences, not the worker's name.
    let stale_token = Lease {
        worker: "w2".into(),
        ..old.clone()
    };
    assert!(!store.release_lease(&stale_token, t0 + 1_800).await.unwrap());

    assert!(other.renew_lease(&new, t0 + 2_000, 1_000).await.unwrap());
    assert!(other.release_lease(&new, t0 + 2_500).await.unwrap());

    // Not due yet (the release scheduled it one interval after w2's lease): no lease.
    assert_eq!(
        store
            .try_lease("acme", "w3", t0 + 10_000, 100)
            .await
            .unwrap(),
        None
    );
    // Due again: expired but not taken, renewing is refused (the holder must stop),
    // releasing still ends it and schedules the next sync.
    let at = t0 + 1_600 + MINUTE;
    let late = store
        .try_lease("acme", "w3", at, 100)
        .await
        .unwrap()
        .unwrap();
    assert!(!store.renew_lease(&late, at + 200, 100).await.unwrap());
    assert!(store.release_lease(&late, at + 300).await.unwrap());
    let s = store.schedule("acme").await.unwrap().unwrap();
    assert_eq!((s.lease_worker, s.due_at), (None, at + MINUTE));

    // A deleted tenant's lease is gone.
    let gone = store
        .try_lease("acme", "w4", at + MINUTE, 1_000)
        .await
        .unwrap()
        .unwrap();
    assert!(store.delete_tenant("acme").await.unwrap());
    assert!(
        !store
            .renew_lease(&gone, gone.leased_at + 1, 1_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .release_lease(&gone, gone.leased_at + 1)
            .await
            .unwrap()
    );
    assert_eq!(
        store.try_lease("acme", "w4", t0, 1_000).await.unwrap(),
        None
    );
}

async fn entity_states_and_sync_history_round_trip(db: &Db) {
    let store = db.open().await;
    let key = tenant_integration_key("acme");
    let many: Vec<_> = (0..1203)
        .map(|i| (skey("bp", &format!("e{i}"), 0), state("h1")))
        .collect();
    store.put_entity_states(&key, &many).await.unwrap();
    store
        .put_entity_states(
            &key,
            &[
                (skey("bp", "e1", 0), state("h2")),
                (skey("bp", "e1", 1), state("second entry")),
            ],
        )
        .await
        .unwrap();
    store
        .put_entity_states("tenant:beta", &[(skey("bp", "e1", 0), state("other"))])
        .await
        .unwrap();
    let a = store.entity_states(&key).await.unwrap();
    assert_eq!(a.len(), 1204);
    assert_eq!(a[&skey("bp", "e1", 0)], state("h2"));
    assert_eq!(a[&skey("bp", "e1", 1)].body_hash, "second entry");
    assert_eq!(a[&skey("bp", "e2", 0)].body_hash, "h1");
    store
        .delete_entity_states(&key, &[key_of("bp", "e1"), key_of("bp", "nope")])
        .await
        .unwrap();
    assert_eq!(store.entity_states(&key).await.unwrap().len(), 1202);
    assert_eq!(store.entity_states("tenant:beta").await.unwrap().len(), 1);

    store.begin_sync(&key, "s1", 10).await.unwrap();
    let summary = r#"{"kinds":{"AWS::S3::Bucket":{"upserted":3}}}"#;
    store
        .finish_sync(&key, "s1", 20, "completed", summary)
        .await
        .unwrap();
    store.begin_sync(&key, "s2", 30).await.unwrap();
    store.begin_sync("tenant:beta", "s3", 40).await.unwrap();
    let h = store.sync_history(&key, 10).await.unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(
        (h[0].sync_id.as_str(), h[0].status.as_str(), h[0].ended_at),
        ("s2", "running", None)
    );
    assert_eq!(h[0].summary, None);
    assert_eq!(
        (h[1].sync_id.as_str(), h[1].status.as_str(), h[1].ended_at),
        ("s1", "completed", Some(20))
    );
    assert_eq!(h[1].summary.as_deref(), Some(summary));
    assert_eq!(store.sync_history(&key, 1).await.unwrap().len(), 1);
}

/// The version 1 schema exactly as the first Berth with a store created it.
const SCHEMA_V1: &[&str] = &[
    "CREATE TABLE berth_schema (version BIGINT NOT NULL)",
    "CREATE TABLE berth_entity_state (
        integration TEXT NOT NULL, blueprint TEXT NOT NULL, identifier TEXT NOT NULL,
        entry BIGINT NOT NULL, body_hash TEXT NOT NULL, scope TEXT NOT NULL,
        written_at BIGINT NOT NULL,
        PRIMARY KEY (integration, blueprint, identifier, entry))",
    "CREATE TABLE berth_sync (
        integration TEXT NOT NULL, sync_id TEXT NOT NULL, started_at BIGINT NOT NULL,
        ended_at BIGINT, status TEXT NOT NULL, summary TEXT,
        PRIMARY KEY (integration, sync_id))",
    "INSERT INTO berth_schema (version) VALUES (1)",
    "INSERT INTO berth_entity_state VALUES ('my-aws', 'bp', 'e1', 0, 'h', 's', 5)",
    "INSERT INTO berth_sync VALUES ('my-aws', 's1', 1, 2, 'completed', '{}')",
];

async fn version_1_database_is_upgraded_and_newer_refused(db: &Db) {
    let raw = db.raw().await;
    for stmt in SCHEMA_V1 {
        sqlx::query(AssertSqlSafe(*stmt))
            .execute(&raw)
            .await
            .unwrap();
    }

    let store = db.open().await;
    let states = store.entity_states("my-aws").await.unwrap();
    assert_eq!(states[&skey("bp", "e1", 0)].body_hash, "h");
    // The column added since: a row from before names no other scope until one is recorded.
    assert!(states[&skey("bp", "e1", 0)].also.is_empty());
    store
        .put_entity_also(
            "my-aws",
            &[(skey("bp", "e1", 0), vec!["s".into(), "t".into()])],
        )
        .await
        .unwrap();
    let states = store.entity_states("my-aws").await.unwrap();
    assert_eq!(states[&skey("bp", "e1", 0)].also, vec!["t".to_string()]);
    assert_eq!(store.sync_history("my-aws", 10).await.unwrap().len(), 1);
    store
        .put_tenant("acme", "{}", MINUTE, Some(0))
        .await
        .unwrap();
    assert!(
        store
            .try_lease("acme", "w1", now_ms(), 1_000)
            .await
            .unwrap()
            .is_some()
    );
    let version: i64 = sqlx::query("SELECT MAX(version) AS v FROM berth_schema")
        .fetch_one(&raw)
        .await
        .unwrap()
        .try_get("v")
        .unwrap();
    assert_eq!(version, 2);
    // Opening again is a no-op.
    drop(db.open().await);

    sqlx::query("INSERT INTO berth_schema (version) VALUES (3)")
        .execute(&raw)
        .await
        .unwrap();
    let err = Store::open(db.url()).await.unwrap_err().to_string();
    assert!(err.contains("schema version 3"), "{err}");
    raw.close().await;
}

async fn concurrent_opens_create_the_schema_once(db: &Db) {
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let url = db.url().to_string();
            tokio::spawn(async move { Store::open(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for o in opens {
        stores.push(o.await.unwrap().expect("every concurrent open succeeds"));
    }
    stores[0]
        .put_tenant("acme", "{}", MINUTE, Some(0))
        .await
        .unwrap();
    assert_eq!(stores[5].tenants().await.unwrap().len(), 1);
}

async fn due(store: &Store, now: i64) -> Vec<String> {
    store
        .due_tenants(now, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.tenant)
        .collect()
}

fn key_of(b: &str, i: &str) -> EntityKey {
    EntityKey {
        blueprint: b.into(),
        identifier: i.into(),
    }
}

fn skey(b: &str, i: &str, entry: u32) -> StateKey {
    StateKey {
        entity: key_of(b, i),
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
