//! The database pool hands out a connection used within the last second without pinging it
//! first (`store::Db::connect`); one idle longer is pinged, and replaced when the server has
//! dropped it, so a restarted or reaped backend costs no request an error.

use std::time::Duration;

use labshare::store::{Backend, Db};
use sqlx::Connection;

use crate::common::fresh_database_url;

#[tokio::test]
async fn connections_the_server_dropped_while_idle_are_replaced_before_use() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _guard) = fresh_database_url(dir.path()).await;
    // A pool of its own, which nothing else uses meanwhile.
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    // Six connections in use at once, so six exist, then all idle in the pool.
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(db.acquire().await.unwrap());
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    if db.backend == Backend::Postgres {
        // The server ends every session of the pool: each idle connection is now dead on its
        // client's side, which learns it only when it next talks to the server.
        let mut admin = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
        let ended: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()) AS ended",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        assert!(ended >= 6, "the pool's six connections are ended ({ended})");
        admin.close().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    // More uses than the pool had connections, reads and a write transaction: none may fail.
    for i in 0..12i64 {
        let echoed: i64 = sqlx::query_scalar("SELECT CAST($1 AS BIGINT)")
            .bind(i)
            .fetch_one(&db.pool)
            .await
            .unwrap_or_else(|e| {
                panic!("read {i} after the server dropped the pool's connections: {e}")
            });
        assert_eq!(echoed, i);
    }
    let mut tx = db.begin_write().await.unwrap();
    sqlx::query(
        "INSERT INTO workflow_events (kind, instance_id, created_at) VALUES ('pool_check', 1, 0)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    db.pool.close().await;
}
