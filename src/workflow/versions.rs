//! Definition versions for administrators: which running instances are on which version,
//! roll back (a new version with an old version's content), and moving running instances
//! to another version when their current state exists there (with an audit entry each).

#[allow(unused_imports)]
use super::*;

/// One recorded version with its running instances.
#[derive(Clone, Debug, Serialize)]
pub struct VersionRow {
    pub version: i64,
    pub created_at: i64,
    pub running: i64,
    /// (instance id, state) of its running instances (at most 50).
    pub instances: Vec<(i64, String)>,
}

/// The versions of a flow, newest first, with their running instances.
pub async fn version_rows(db: &Db, key: &str) -> Result<Vec<VersionRow>> {
    let mut out = Vec::new();
    for (version, created_at, _) in versions(db, key).await? {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, state FROM workflow_instances WHERE workflow_key = $1 AND version = $2 AND status = 'running' ORDER BY id LIMIT 50",
        )
        .bind(key)
        .bind(version)
        .fetch_all(&db.pool)
        .await?;
        let (running,): (i64,) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_instances WHERE workflow_key = $1 AND version = $2 AND status = 'running'",
        )
        .bind(key)
        .bind(version)
        .fetch_one(&db.pool)
        .await?;
        out.push(VersionRow {
            version,
            created_at,
            running,
            instances: rows,
        });
    }
    Ok(out)
}

/// The source of one recorded version.
pub async fn version_source(db: &Db, key: &str, version: i64) -> Result<String> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT source FROM workflow_definitions WHERE key = $1 AND version = $2")
            .bind(key)
            .bind(version)
            .fetch_optional(&db.pool)
            .await?;
    row.map(|r| r.0).ok_or(AppError::NotFound)
}

/// What moving instances did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Migration {
    pub moved: Vec<i64>,
    /// (instance id, why it stayed).
    pub skipped: Vec<(i64, String)>,
}

impl Engine {
    /// Roll back to `version`: publish its content again as a new version (a comment line
    /// naming the version it came from keeps the content distinct from the versions between).
    pub async fn rollback(&self, key: &str, version: i64) -> std::result::Result<i64, ReloadError> {
        let source = version_source(&self.db, key, version).await?;
        let current = self.definitions.get(key).map(|d| d.version).unwrap_or(0);
        let source = format!(
            "{}\n# 由版本 {current} 回滚为版本 {version} 的内容（{}）\n",
            source.trim_end(),
            queue::chinese_datetime(self.now())
        );
        self.definitions
            .publish(&self.db, key, &source, self.now())
            .await
    }

    /// Move the running instances of `key` on version `from` to version `to`, each only
    /// when its current state exists in `to` with the same kind (a step with a task, or
    /// not); the move is an audit entry (`migrate`) in the same transaction.
    pub async fn migrate_instances(
        &self,
        actor: &CurrentUser,
        key: &str,
        from: i64,
        to: i64,
    ) -> Result<Migration> {
        if from == to {
            return Ok(Migration::default());
        }
        let target = self.definitions.version(&self.db, key, to).await?;
        let source = self.definitions.version(&self.db, key, from).await?;
        let now = self.now();
        let mut out = Migration::default();
        let mut tx = self.db.begin_write().await?;
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, state FROM workflow_instances WHERE workflow_key = $1 AND version = $2 AND status = 'running' ORDER BY id",
        )
        .bind(key)
        .bind(from)
        .fetch_all(&mut *tx)
        .await?;
        for (id, state) in rows {
            let had_task = source.state(&state).is_some_and(|s| s.task.is_some());
            match target.state(&state) {
                Some(s) if s.task.is_some() == had_task && !s.terminal => {}
                Some(_) => {
                    out.skipped.push((
                        id,
                        format!("版本 {to} 中的“{}”不是同类环节", target.state_title(&state)),
                    ));
                    continue;
                }
                None => {
                    out.skipped.push((
                        id,
                        format!(
                            "当前环节“{}”在版本 {to} 中不存在",
                            source.state_title(&state)
                        ),
                    ));
                    continue;
                }
            }
            lock_instance(&mut tx, id).await?;
            let done = sqlx::query(
                "UPDATE workflow_instances SET version = $1, updated_at = $2 WHERE id = $3 AND version = $4 AND status = 'running'",
            )
            .bind(to)
            .bind(now)
            .bind(id)
            .bind(from)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                out.skipped.push((id, "该流程已结束或已迁移".into()));
                continue;
            }
            let comment = format!("由版本 {from} 迁移到版本 {to}");
            audit::append(
                &mut tx,
                audit::Entry {
                    instance_id: id,
                    at: now,
                    actor_id: Some(actor.id),
                    workflow_key: key,
                    version: to,
                    state: &state,
                    action: "migrate",
                    to_state: &state,
                    comment: &comment,
                    data: &json!({"from_version": from, "to_version": to}).to_string(),
                },
            )
            .await?;
            out.moved.push(id);
        }
        tx.commit().await?;
        Ok(out)
    }
}
