//! Delegation (委托代理): a user names a deputy for a period. A task created for the user
//! while the delegation is in force goes to the deputy instead (if the deputy may hold it:
//! recusal, not the applicant, not an earlier approver where 四眼原则 applies, not already
//! holding a task of the step), remembering whom it is for (`workflow_tasks.on_behalf_of`);
//! the deputy decides under the user's assignee rule and the history says "代 X 审批".
//! Ending the delegation routes new tasks back; tasks already given to the deputy stay.

#[allow(unused_imports)]
use super::*;

#[derive(Clone, Debug, Serialize)]
pub struct Delegation {
    pub id: i64,
    pub user_id: i64,
    pub user_name: String,
    pub deputy_id: i64,
    pub deputy_name: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: String,
    pub ended_at: Option<i64>,
    pub created_at: i64,
}

impl Delegation {
    /// In force at `now`: started, not past its end and not ended early.
    pub fn active_at(&self, now: i64) -> bool {
        self.ended_at.is_none() && self.starts_at <= now && now < self.ends_at
    }
}

const COLS: &str = "d.id, d.user_id, u.display_name AS user_name, d.deputy_id, p.display_name AS deputy_name, d.starts_at, d.ends_at, d.reason, d.ended_at, d.created_at \
     FROM delegations d JOIN users u ON u.id = d.user_id JOIN users p ON p.id = d.deputy_id";

fn from_row(r: &sqlx::any::AnyRow) -> Delegation {
    Delegation {
        id: r.get("id"),
        user_id: r.get("user_id"),
        user_name: r.get("user_name"),
        deputy_id: r.get("deputy_id"),
        deputy_name: r.get("deputy_name"),
        starts_at: r.get("starts_at"),
        ends_at: r.get("ends_at"),
        reason: r.get("reason"),
        ended_at: r.get("ended_at"),
        created_at: r.get("created_at"),
    }
}

/// Delegations the user gave or received, newest first (at most 100).
pub async fn delegations_of(db: &Db, user_id: i64) -> Result<Vec<Delegation>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} WHERE d.user_id = $1 OR d.deputy_id = $1 ORDER BY d.id DESC LIMIT 100"
    )))
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// Name `deputy` (a username) for `user_id` from `starts_at` to `ends_at` (unix seconds).
pub async fn create_delegation(
    db: &Db,
    user_id: i64,
    deputy: &str,
    starts_at: i64,
    ends_at: i64,
    reason: &str,
    now: i64,
) -> Result<i64> {
    let mut fields = crate::error::FieldErrors::new();
    let deputy_id: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM users WHERE username = $1 AND is_active = 1")
            .bind(deputy.trim())
            .fetch_optional(&db.pool)
            .await?;
    match deputy_id {
        None => {
            fields.insert("deputy".into(), "没有这个用户（或该账号已停用）".into());
        }
        Some((id,)) if id == user_id => {
            fields.insert("deputy".into(), "不能委托给自己".into());
        }
        _ => {}
    }
    if ends_at <= starts_at {
        fields.insert("ends_on".into(), "结束日期须晚于开始日期".into());
    } else if ends_at <= now {
        fields.insert("ends_on".into(), "结束日期已过".into());
    }
    if reason.chars().count() > 200 {
        fields.insert("reason".into(), "委托说明不超过 200 字".into());
    }
    if !fields.is_empty() {
        return Err(AppError::Validation {
            message: "委托未保存，请检查标出的项目".into(),
            fields,
        });
    }
    let deputy_id = deputy_id.map(|d| d.0).unwrap_or(0);
    let mut tx = db.begin_write().await?;
    let (overlap,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM delegations WHERE user_id = $1 AND ended_at IS NULL AND starts_at < $2 AND ends_at > $3",
    )
    .bind(user_id)
    .bind(ends_at)
    .bind(starts_at)
    .fetch_one(&mut *tx)
    .await?;
    if overlap > 0 {
        return Err(AppError::conflict(
            "delegation_overlaps",
            "这段时间已有一项委托，请先结束它",
        ));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO delegations (user_id, deputy_id, starts_at, ends_at, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(user_id)
    .bind(deputy_id)
    .bind(starts_at)
    .bind(ends_at)
    .bind(reason.trim())
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// End the user's delegation now: new tasks go to the user again.
pub async fn end_delegation(db: &Db, user_id: i64, id: i64, now: i64) -> Result<()> {
    let done = crate::store::WriteQuery::write(
        sqlx::query("UPDATE delegations SET ended_at = $1 WHERE id = $2 AND user_id = $3 AND ended_at IS NULL")
            .bind(now)
            .bind(id)
            .bind(user_id),
        db,
    )
    .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}

/// The deputy in force for `user_id` at `now`, if any.
async fn deputy_of(conn: &mut crate::store::Conn, user_id: i64, now: i64) -> Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT d.deputy_id FROM delegations d JOIN users u ON u.id = d.deputy_id \
         WHERE d.user_id = $1 AND d.ended_at IS NULL AND d.starts_at <= $2 AND d.ends_at > $2 AND u.is_active = 1 ORDER BY d.id DESC LIMIT 1",
    )
    .bind(user_id)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| r.0))
}

/// The step's assignees after delegation: (assignee, whom the task is for).
pub(super) async fn substitute(
    conn: &mut crate::store::Conn,
    users: Vec<i64>,
    who: &def::Assignees,
    distinct_from: &[String],
    inst: &Instance,
    now: i64,
) -> Result<Vec<(i64, Option<i64>)>> {
    let mut out: Vec<(i64, Option<i64>)> = Vec::with_capacity(users.len());
    // The applicant's own steps are never delegated.
    let delegable = !matches!(who, def::Assignees::Applicant(_));
    for uid in &users {
        let deputy = if delegable {
            deputy_of(conn, *uid, now).await?
        } else {
            None
        };
        match deputy {
            Some(d)
                if !users.contains(&d)
                    && !out.iter().any(|(a, _)| *a == d)
                    && !eligible_only(conn, who, distinct_from, inst, vec![d])
                        .await?
                        .is_empty() =>
            {
                out.push((d, Some(*uid)));
            }
            _ => out.push((*uid, None)),
        }
    }
    Ok(out)
}

/// Record whom a task is for.
pub(super) async fn mark(
    conn: &mut crate::store::Conn,
    task_id: i64,
    principal: i64,
) -> Result<()> {
    sqlx::query("UPDATE workflow_tasks SET on_behalf_of = $1 WHERE id = $2")
        .bind(principal)
        .bind(task_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
