//! Deferred writes (`store::Conn::defer`): held back in a PostgreSQL write transaction and sent
//! together as one statement, run at once on SQLite. On both backends a later read of the
//! transaction sees them, a compare-and-swap that changes another number of rows aborts the
//! transaction as the caller's conflict, and nothing of an aborted transaction stays.

use labshare::{
    error::AppError,
    store::{Expect, Touch},
};

use crate::common::{TestApp, spawn_app};

const ONE: Expect = Expect {
    rows: 1,
    code: "task_closed",
    message: "该待办已被处理，请刷新后查看最新状态",
};

fn insert_event(
    kind: &str,
    instance: i64,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    // A placeholder-like text and a quote inside the bound value: only the SQL's own `$N`
    // are renumbered when writes are combined.
    sqlx::query("INSERT INTO workflow_events (kind, instance_id, payload, created_at) VALUES ($1, $2, $3, $4)")
        .bind(kind.to_string())
        .bind(instance)
        .bind("{\"note\":\"$1 it's 引号\"}")
        .bind(0i64)
}

async fn events(app: &TestApp, kind: &str, delivered: Option<i64>) -> i64 {
    sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_events WHERE kind = $1 AND (delivered_at = $2 OR $2 IS NULL)",
    )
    .bind(kind)
    .bind(delivered)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn held_writes_are_seen_by_the_next_read_and_committed_with_the_transaction() {
    let app = spawn_app().await;
    let mut tx = app.db.begin_write().await.unwrap();
    for i in 0..3 {
        tx.defer(
            insert_event("deferred_a", i),
            &[Touch::Insert("workflow_events")],
            None,
        )
        .await
        .unwrap();
    }
    // An update of the same table is not combined with the inserts: it sees all three.
    tx.defer(
        sqlx::query("UPDATE workflow_events SET delivered_at = $1 WHERE kind = $2")
            .bind(7i64)
            .bind("deferred_a"),
        &[Touch::Update("workflow_events")],
        Some(Expect { rows: 3, ..ONE }),
    )
    .await
    .unwrap();
    // A read in the transaction sees every write before it.
    let seen: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_events WHERE kind = $1 AND delivered_at = $2 AND payload LIKE '%$1 it''s 引号%'",
    )
    .bind("deferred_a")
    .bind(7i64)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(seen, 3);
    // A write still held at the commit is committed with it.
    tx.defer(
        insert_event("deferred_a", 9),
        &[Touch::Insert("workflow_events")],
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(events(&app, "deferred_a", None).await, 4);
    assert_eq!(events(&app, "deferred_a", Some(7)).await, 3);
}

#[tokio::test]
async fn a_lost_compare_and_swap_aborts_the_whole_transaction_as_a_conflict() {
    let app = spawn_app().await;
    let mut tx = app.db.begin_write().await.unwrap();
    tx.defer(
        insert_event("deferred_b", 1),
        &[Touch::Insert("workflow_events")],
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let claim = || {
        sqlx::query(
            "UPDATE workflow_events SET delivered_at = $1 WHERE kind = $2 AND delivered_at IS NULL",
        )
        .bind(5i64)
        .bind("deferred_b")
    };
    let mut tx = app.db.begin_write().await.unwrap();
    let outcome = async {
        tx.defer(
            insert_event("deferred_b", 2),
            &[Touch::Insert("workflow_events")],
            None,
        )
        .await?;
        tx.defer(claim(), &[Touch::Update("workflow_events")], Some(ONE))
            .await?;
        // The same claim again finds nothing left to claim: the transaction must not commit.
        tx.defer(claim(), &[Touch::Update("workflow_events")], Some(ONE))
            .await?;
        tx.commit().await
    }
    .await;
    let err = outcome.expect_err("the second claim changes no row");
    match AppError::from(err) {
        AppError::Conflict { code, message } => {
            assert_eq!(code, "task_closed");
            assert_eq!(message, ONE.message);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Nothing of it stays: neither the insert nor the first claim.
    assert_eq!(events(&app, "deferred_b", None).await, 1);
    assert_eq!(events(&app, "deferred_b", Some(5)).await, 0);
}

#[tokio::test]
async fn only_a_single_write_without_returning_can_be_deferred() {
    let app = spawn_app().await;
    let mut tx = app.db.begin_write().await.unwrap();
    for sql in [
        "SELECT 1",
        "INSERT INTO workflow_events (kind, instance_id, created_at) VALUES ('x', 1, 0) RETURNING id",
        "DELETE FROM workflow_events WHERE id = 0; DELETE FROM workflow_events WHERE id = 1",
    ] {
        let err = tx
            .defer(sqlx::query(sql), &[Touch::Update("workflow_events")], None)
            .await
            .expect_err(sql);
        assert!(
            matches!(err, sqlx::Error::InvalidArgument(_)),
            "{sql}: {err:?}"
        );
    }
}
