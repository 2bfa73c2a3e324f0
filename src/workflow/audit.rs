//! The decision log (审计日志): append-only, each entry carrying the hash of the one before,
//! so any edit or deletion breaks the chain at a findable place (`labshare audit verify`).

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{
    error::Result,
    store::{Db, Touch},
};

pub struct Entry<'a> {
    pub instance_id: i64,
    pub at: i64,
    pub actor_id: Option<i64>,
    pub workflow_key: &'a str,
    pub version: i64,
    pub state: &'a str,
    pub action: &'a str,
    pub to_state: &'a str,
    pub comment: &'a str,
    pub data: &'a str,
}

#[allow(clippy::too_many_arguments)]
fn digest(
    seq: i64,
    prev: &str,
    instance_id: i64,
    at: i64,
    actor: Option<i64>,
    key: &str,
    version: i64,
    state: &str,
    action: &str,
    to: &str,
    comment: &str,
    data: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        seq.to_string(),
        prev.to_string(),
        instance_id.to_string(),
        at.to_string(),
        actor.map(|a| a.to_string()).unwrap_or_default(),
        key.to_string(),
        version.to_string(),
        state.to_string(),
        action.to_string(),
        to.to_string(),
        comment.to_string(),
        data.to_string(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Append inside the caller's transaction. The head row is updated first, which serialises
/// concurrent appends on both backends; on SQLite the entry's insert sets the head's hash (a
/// trigger, migration 0023).
/// Callers append last, just before they commit, so the head is held as briefly as possible.
///
/// On PostgreSQL the server extends the chain when the transaction commits (a deferred
/// trigger, migration 0024): the entry is one INSERT that takes no lock, held back with the
/// decision's other writes (`Conn::defer`), and the head is held only inside COMMIT.
pub async fn append(conn: &mut crate::store::Conn, e: Entry<'_>) -> Result<()> {
    if conn.backend_name() == "PostgreSQL" {
        let insert = sqlx::query(
            "INSERT INTO workflow_audit (instance_id, at, actor_id, workflow_key, version, state, action, to_state, comment, data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(e.instance_id)
        .bind(e.at)
        .bind(e.actor_id)
        .bind(e.workflow_key)
        .bind(e.version)
        .bind(e.state)
        .bind(e.action)
        .bind(e.to_state)
        .bind(e.comment)
        .bind(e.data);
        conn.defer(insert, &[Touch::Insert("workflow_audit")], None)
            .await?;
        return Ok(());
    }
    let row = sqlx::query(
        "UPDATE workflow_audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash",
    )
    .fetch_one(&mut *conn)
    .await?;
    let seq: i64 = row.get("seq");
    let prev: String = row.get("hash");
    let hash = digest(
        seq,
        &prev,
        e.instance_id,
        e.at,
        e.actor_id,
        e.workflow_key,
        e.version,
        e.state,
        e.action,
        e.to_state,
        e.comment,
        e.data,
    );
    sqlx::query(
        "INSERT INTO workflow_audit (seq, instance_id, at, actor_id, workflow_key, version, state, action, to_state, comment, data, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(seq).bind(e.instance_id).bind(e.at).bind(e.actor_id).bind(e.workflow_key).bind(e.version)
    .bind(e.state).bind(e.action).bind(e.to_state).bind(e.comment).bind(e.data).bind(&prev).bind(&hash)
    .execute(&mut *conn)
    .await?;
    // The head's hash follows by trigger (migration 0023).
    Ok(())
}

/// The outcome of a verification.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        entries: i64,
    },
    /// The first entry whose link or content does not match.
    Broken {
        seq: i64,
        reason: String,
    },
}

pub async fn verify(db: &Db) -> Result<Verdict> {
    let rows = sqlx::query("SELECT seq, instance_id, at, actor_id, workflow_key, version, state, action, to_state, comment, data, prev_hash, hash FROM workflow_audit ORDER BY seq")
        .fetch_all(&db.pool)
        .await?;
    let mut prev = String::new();
    let mut expected_seq = 1;
    for r in &rows {
        let seq: i64 = r.get("seq");
        if seq != expected_seq {
            return Ok(Verdict::Broken {
                seq: expected_seq,
                reason: format!("第 {expected_seq} 条记录缺失"),
            });
        }
        let prev_hash: String = r.get("prev_hash");
        if prev_hash != prev {
            return Ok(Verdict::Broken {
                seq,
                reason: "与前一条记录的哈希不一致".into(),
            });
        }
        let hash: String = r.get("hash");
        let again = digest(
            seq,
            &prev_hash,
            r.get("instance_id"),
            r.get("at"),
            r.get("actor_id"),
            &r.get::<String, _>("workflow_key"),
            r.get("version"),
            &r.get::<String, _>("state"),
            &r.get::<String, _>("action"),
            &r.get::<String, _>("to_state"),
            &r.get::<String, _>("comment"),
            &r.get::<String, _>("data"),
        );
        if again != hash {
            return Ok(Verdict::Broken {
                seq,
                reason: "记录内容已被改动".into(),
            });
        }
        prev = hash;
        expected_seq += 1;
    }
    let head: (i64,) = sqlx::query_as("SELECT seq FROM workflow_audit_head WHERE id = 1")
        .fetch_one(&db.pool)
        .await?;
    if head.0 != expected_seq - 1 {
        return Ok(Verdict::Broken {
            seq: expected_seq,
            reason: format!("日志末尾的记录被删除（应有 {} 条）", head.0),
        });
    }
    Ok(Verdict::Intact {
        entries: expected_seq - 1,
    })
}
