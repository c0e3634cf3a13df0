//! Tenant incarnations in the state store, on Postgres and on SQLite: a tenant created again
//! under a deleted one's id is another incarnation, whose state and history are its own; a
//! database from before incarnations gets the column when opened (by several workers at once
//! too) and its tenants keep their state.
//!
//! Needs `BERTH_TEST_POSTGRES_URL` (`scripts/test` sets it from `tests/postgres/start`) and fails
//! without it, never skips.

mod e2e_support;
mod serve_support;

use berth::store::{EntityKey, EntityState, StateKey, Store, tenant_integration_key};
use sqlx::{AnyPool, AssertSqlSafe};

const MINUTE: i64 = 60_000;

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let url = crate::serve_support::fresh_postgres_database("berth_incarnation").await;
                super::$name(&url).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("state.db").display());
                super::$name(&url).await;
            }
        }
    )*};
}

on_both!(
    a_tenant_created_again_is_a_stranger_to_the_deleted_one,
    a_database_from_before_incarnations_is_upgraded_by_concurrent_opens,
);

async fn a_tenant_created_again_is_a_stranger_to_the_deleted_one(url: &str) {
    let store = Store::open(url).await.unwrap();
    let first = store
        .put_tenant("acme", "{}", MINUTE, Some(0))
        .await
        .unwrap();
    let updated = store.put_tenant("acme", "[1]", MINUTE, None).await.unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.incarnation, first.incarnation);
    let key = first.integration_key();
    store
        .put_entity_states(&key, &[(skey("e1"), state("h"))])
        .await
        .unwrap();
    store.begin_sync(&key, "s1", 1).await.unwrap();
    // The admin API reads a tenant's history by id.
    let by_id = tenant_integration_key("acme");
    assert_eq!(store.sync_history(&by_id, 10).await.unwrap().len(), 1);

    assert!(store.delete_tenant("acme").await.unwrap());
    assert!(store.entity_states(&key).await.unwrap().is_empty());
    assert!(store.sync_history(&by_id, 10).await.unwrap().is_empty());
    // A sync of the deleted tenant that wrote on after the deletion.
    store
        .put_entity_states(&key, &[(skey("late"), state("h"))])
        .await
        .unwrap();
    store.begin_sync(&key, "late", 2).await.unwrap();

    let again = store
        .put_tenant("acme", "{}", MINUTE, Some(0))
        .await
        .unwrap();
    assert_eq!(again.version, 1);
    assert_ne!(again.incarnation, first.incarnation);
    assert_ne!(again.integration_key(), key);
    assert!(
        store
            .entity_states(&again.integration_key())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.sync_history(&by_id, 10).await.unwrap().is_empty());
    store
        .begin_sync(&again.integration_key(), "s2", 3)
        .await
        .unwrap();
    let h = store.sync_history(&by_id, 10).await.unwrap();
    assert_eq!(
        h.iter().map(|s| s.sync_id.as_str()).collect::<Vec<_>>(),
        ["s2"]
    );
    store.forget_integration(&key).await.unwrap();
    assert!(store.entity_states(&key).await.unwrap().is_empty());
    assert!(store.sync_history(&key, 10).await.unwrap().is_empty());
    assert_eq!(store.tenant("acme").await.unwrap(), Some(again));
}

/// Version 2 as first released: the tenant table has no incarnation.
const SCHEMA_V2: &[&str] = &[
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
    "CREATE TABLE berth_tenant (
        id TEXT PRIMARY KEY, spec TEXT NOT NULL, version BIGINT NOT NULL,
        created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
    "CREATE TABLE berth_schedule (
        tenant TEXT PRIMARY KEY, due_at BIGINT NOT NULL, requested_at BIGINT NOT NULL,
        interval_ms BIGINT NOT NULL, lease_worker TEXT, lease_token BIGINT NOT NULL,
        leased_at BIGINT NOT NULL, lease_expires BIGINT NOT NULL,
        request_seq BIGINT NOT NULL, lease_request_seq BIGINT NOT NULL)",
    "CREATE INDEX berth_schedule_due ON berth_schedule (due_at)",
    "INSERT INTO berth_schema (version) VALUES (2)",
    "INSERT INTO berth_tenant VALUES ('old', '{}', 3, 1, 2)",
    "INSERT INTO berth_schedule VALUES ('old', 0, 0, 60000, NULL, 0, 0, 0, 0, 0)",
    "INSERT INTO berth_entity_state VALUES ('tenant:old', 'bp', 'e1', 0, 'h', 's', 5)",
    "INSERT INTO berth_sync VALUES ('tenant:old', 's1', 1, 2, 'completed', '{}')",
];

async fn a_database_from_before_incarnations_is_upgraded_by_concurrent_opens(url: &str) {
    sqlx::any::install_default_drivers();
    let raw = AnyPool::connect(url).await.unwrap();
    for stmt in SCHEMA_V2 {
        sqlx::query(AssertSqlSafe(*stmt))
            .execute(&raw)
            .await
            .unwrap();
    }
    // Several workers upgrading at once: each open succeeds.
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.to_string();
            tokio::spawn(async move { Store::open(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for o in opens {
        stores.push(o.await.unwrap().expect("every concurrent open succeeds"));
    }
    let store = &stores[0];
    let old = store.tenant("old").await.unwrap().unwrap();
    assert_eq!((old.version, old.incarnation.as_str()), (3, ""));
    assert_eq!(old.integration_key(), "tenant:old");
    assert_eq!(store.entity_states("tenant:old").await.unwrap().len(), 1);
    assert_eq!(store.sync_history("tenant:old", 10).await.unwrap().len(), 1);
    let updated = store
        .put_tenant("old", "[1]", MINUTE, Some(3))
        .await
        .unwrap();
    assert_eq!((updated.version, updated.incarnation.as_str()), (4, ""));

    let new = stores[1]
        .put_tenant("new", "{}", MINUTE, Some(0))
        .await
        .unwrap();
    assert_eq!(new.incarnation.len(), 32);
    // A worker from before incarnations, still running on the database, can create tenants.
    sqlx::query(
        "INSERT INTO berth_tenant (id, spec, version, created_at, updated_at)
         VALUES ('older', '{}', 1, 1, 1)",
    )
    .execute(&raw)
    .await
    .unwrap();
    assert_eq!(
        stores[2]
            .tenant("older")
            .await
            .unwrap()
            .unwrap()
            .incarnation,
        ""
    );
    raw.close().await;
}

fn skey(identifier: &str) -> StateKey {
    StateKey {
        entity: EntityKey {
            blueprint: "bp".into(),
            identifier: identifier.into(),
        },
        entry: 0,
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
