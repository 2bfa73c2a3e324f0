//! Index sync across nodes (索引同步). `search_outbox` is an append-only change log that write
//! transactions fill; every node applies it to its own index from its own cursor, kept in the
//! index's commit payload so the cursor and the documents are saved together. Nodes report
//! their cursors in `search_nodes`; the log is pruned below the smallest cursor of the nodes
//! seen in the last day, and a node whose cursor fell below what was pruned rebuilds.
//!
//! A transaction may commit after a later one (ids are taken at insert): rows younger than
//! `GRACE_SECS` are applied but the cursor does not pass them yet, so a late commit is still
//! seen; rows already applied above the cursor are remembered and not applied twice.

use std::{
    collections::BTreeSet,
    sync::atomic::{AtomicBool, Ordering},
};

use serde::{Deserialize, Serialize};

use crate::{error::Result, store::Db, store::WriteQuery};

/// How long a change may stay uncommitted and still be seen by the cursor rule.
pub const GRACE_SECS: i64 = 30;
/// A node not seen for this long no longer holds back pruning (it rebuilds when back).
pub const NODE_TTL_SECS: i64 = 86_400;
/// Log rows are kept at least this long.
pub const KEEP_SECS: i64 = 3_600;
/// How often a node reports its cursor and prunes.
pub const REPORT_EVERY_SECS: i64 = 10;

/// What the index commit payload holds.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(super) struct Payload {
    pub cursor: i64,
}

/// One node's place in the log.
pub(super) struct SyncState {
    pub node_id: String,
    /// Every log row with an id at or below it is in the index (durable).
    pub cursor: i64,
    /// Rows above the cursor already applied (not durable: re-applied after a restart).
    pub applied_above: BTreeSet<i64>,
    pub last_report: i64,
    pub last_payload: i64,
}

/// The sync part of a `SearchIndex`.
pub(super) struct Sync {
    pub state: tokio::sync::Mutex<SyncState>,
    /// Set once the node has applied the whole log at least once since it started.
    pub caught_up: AtomicBool,
}

impl Sync {
    pub fn new(node_id: String, cursor: i64) -> Sync {
        Sync {
            state: tokio::sync::Mutex::new(SyncState {
                node_id,
                cursor,
                applied_above: BTreeSet::new(),
                last_report: 0,
                last_payload: 0,
            }),
            caught_up: AtomicBool::new(false),
        }
    }

    pub fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }
}

/// This node's id, kept beside its index so a restarted node is the same node.
pub(super) fn node_id(dir: &std::path::Path) -> anyhow::Result<String> {
    let path = dir.join("node-id");
    if let Ok(id) = std::fs::read_to_string(&path)
        && !id.trim().is_empty()
    {
        return Ok(id.trim().to_string());
    }
    let id = format!(
        "{}-{}",
        hostname_or_node(),
        crate::auth::random_token()[..12].to_lowercase()
    );
    std::fs::write(&path, &id)?;
    Ok(id)
}

fn hostname_or_node() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or_else(|| "node".into())
}

/// A log row.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct Change {
    pub id: i64,
    pub doc_type: String,
    pub doc_id: i64,
    pub created_at: i64,
}

pub(super) async fn changes_after(db: &Db, cursor: i64, limit: i64) -> Result<Vec<Change>> {
    Ok(sqlx::query_as(
        "SELECT id, doc_type, doc_id, created_at FROM search_outbox WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(cursor)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

/// The newest log id (0 when empty).
pub(super) async fn head(db: &Db) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM search_outbox")
            .fetch_one(&db.pool)
            .await?,
    )
}

/// The highest log id ever pruned (0 when nothing was).
pub(super) async fn pruned_through(db: &Db) -> Result<i64> {
    let v: Option<i64> = sqlx::query_scalar("SELECT pruned_through FROM search_prune WHERE id = 1")
        .fetch_optional(&db.pool)
        .await?;
    Ok(v.unwrap_or(0))
}

/// Log rows this node has not applied yet.
pub(super) async fn backlog(db: &Db, cursor: i64) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM search_outbox WHERE id > $1")
            .bind(cursor)
            .fetch_one(&db.pool)
            .await?,
    )
}

/// Record this node's cursor.
pub(super) async fn report(db: &Db, node_id: &str, cursor: i64, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO search_nodes (node_id, cursor, seen_at) VALUES ($1, $2, $3) \
         ON CONFLICT (node_id) DO UPDATE SET cursor = excluded.cursor, seen_at = excluded.seen_at",
    )
    .bind(node_id)
    .bind(cursor)
    .bind(now)
    .write(db)
    .await?;
    Ok(())
}

/// Delete log rows every live node has applied and that are old enough; remember how far.
/// Returns how many rows went.
pub async fn prune(db: &Db, now: i64) -> Result<u64> {
    let mut tx = db.begin_write().await?;
    let low: Option<i64> =
        sqlx::query_scalar("SELECT MIN(cursor) FROM search_nodes WHERE seen_at >= $1")
            .bind(now - NODE_TTL_SECS)
            .fetch_one(&mut *tx)
            .await?;
    let Some(low) = low else {
        return Ok(0);
    };
    let upto: Option<i64> =
        sqlx::query_scalar("SELECT MAX(id) FROM search_outbox WHERE id <= $1 AND created_at < $2")
            .bind(low)
            .bind(now - KEEP_SECS)
            .fetch_one(&mut *tx)
            .await?;
    let Some(upto) = upto else {
        return Ok(0);
    };
    let gone = sqlx::query("DELETE FROM search_outbox WHERE id <= $1")
        .bind(upto)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query(
        "INSERT INTO search_prune (id, pruned_through) VALUES (1, $1) \
         ON CONFLICT (id) DO UPDATE SET pruned_through = excluded.pruned_through \
         WHERE search_prune.pruned_through < excluded.pruned_through",
    )
    .bind(upto)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(gone)
}

/// Where the cursor may move after `rows` (all applied now): past every row older than the
/// grace period, and no further than the first younger one.
pub(super) fn advance(cursor: i64, rows: &[Change], now: i64) -> i64 {
    let mut c = cursor;
    for r in rows {
        if r.created_at > now - GRACE_SECS {
            break;
        }
        c = r.id;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, created_at: i64) -> Change {
        Change {
            id,
            doc_type: "instrument".into(),
            doc_id: id,
            created_at,
        }
    }

    #[test]
    fn the_cursor_stops_before_the_first_change_younger_than_the_grace_period() {
        let now = 1_000;
        let rows = [row(5, 900), row(7, 960), row(8, 990), row(9, 900)];
        assert_eq!(advance(4, &rows, now), 7);
        assert_eq!(advance(4, &rows[..0], now), 4);
        assert_eq!(advance(4, &[row(5, 999)], now), 4);
    }
}
