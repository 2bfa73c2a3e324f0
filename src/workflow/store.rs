//! The engine's rows: instances and tasks, row locks, and the vote counts of a step.

#[allow(unused_imports)]
use super::*;

#[derive(Clone, Debug, Serialize)]
pub struct Instance {
    pub id: i64,
    pub workflow_key: String,
    pub version: i64,
    pub subject_type: String,
    pub subject_id: i64,
    pub unit_id: Option<i64>,
    pub applicant_id: i64,
    pub state: String,
    pub prev_state: Option<String>,
    pub status: String,
    pub round: i64,
    pub data: Value,
    pub created_at: i64,
}

pub(super) const INSTANCE_COLS: &str = "id, workflow_key, version, subject_type, subject_id, unit_id, applicant_id, state, prev_state, status, round, data, created_at";

pub(super) fn instance_from(r: &sqlx::any::AnyRow) -> Instance {
    Instance {
        id: r.get("id"),
        workflow_key: r.get("workflow_key"),
        version: r.get("version"),
        subject_type: r.get("subject_type"),
        subject_id: r.get("subject_id"),
        unit_id: r.get("unit_id"),
        applicant_id: r.get("applicant_id"),
        state: r.get("state"),
        prev_state: r.get("prev_state"),
        status: r.get("status"),
        round: r.get("round"),
        data: serde_json::from_str(&r.get::<String, _>("data")).unwrap_or(Value::Null),
        created_at: r.get("created_at"),
    }
}

pub(super) async fn load_instance(conn: &mut crate::store::Conn, id: i64) -> Result<Instance> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INSTANCE_COLS} FROM workflow_instances WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(instance_from(&r))
}

pub async fn get_instance(db: &Db, id: i64) -> Result<Instance> {
    let mut conn = db.acquire().await?;
    load_instance(&mut conn, id).await
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_task(
    conn: &mut crate::store::Conn,
    instance: i64,
    state: &str,
    round: i64,
    user: i64,
    seq: i64,
    status: &str,
    due: Option<i64>,
    now: i64,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO workflow_tasks (instance_id, state, round, assignee_id, seq, status, due_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(instance)
    .bind(state)
    .bind(round)
    .bind(user)
    .bind(seq)
    .bind(status)
    .bind(due)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// Take the instance's row lock (a no-op update: portable, unlike `FOR UPDATE`).
pub(super) async fn lock_instance(conn: &mut crate::store::Conn, id: i64) -> Result<()> {
    sqlx::query("UPDATE workflow_instances SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Read a task with its instance, locking the instance, in one statement (none: no such
/// task). On PostgreSQL `FOR UPDATE OF i` takes the instance's row lock: after waiting for it
/// the instance is read as the other decider left it, while the task row may be the one read
/// before the wait, so a task closed meanwhile is caught by the close's compare-and-swap.
/// SQLite write transactions are serial (`BEGIN IMMEDIATE`) and need no row lock.
pub(super) async fn lock_task_and_instance(
    conn: &mut crate::store::Conn,
    task_id: i64,
) -> Result<Option<(TaskRow, Instance)>> {
    let cols = INSTANCE_COLS
        .split(", ")
        .map(|c| format!("i.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let lock = if conn.backend_name() == "PostgreSQL" {
        " FOR UPDATE OF i"
    } else {
        ""
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {cols}, {TASK_COLS} FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id WHERE t.id = $1{lock}"
    )))
    .bind(task_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (task_from(&r), instance_from(&r))))
}

/// The task's columns, each read as `t_<column>`.
const TASK_COLS: &str = "t.round AS t_round, t.assignee_id AS t_assignee_id, t.seq AS t_seq, \
     t.due_at AS t_due_at, t.status AS t_status, t.on_behalf_of AS t_on_behalf_of";

fn task_from(r: &sqlx::any::AnyRow) -> TaskRow {
    TaskRow {
        round: r.get("t_round"),
        assignee_id: r.get("t_assignee_id"),
        seq: r.get("t_seq"),
        due_at: r.get("t_due_at"),
        status: r.get("t_status"),
        on_behalf_of: r.get("t_on_behalf_of"),
    }
}

pub(super) struct TaskRow {
    pub(super) round: i64,
    pub(super) assignee_id: i64,
    pub(super) seq: i64,
    pub(super) due_at: Option<i64>,
    pub(super) status: String,
    /// Whom the task is for when a deputy holds it (委托代理).
    pub(super) on_behalf_of: Option<i64>,
}

pub(super) async fn load_task(conn: &mut crate::store::Conn, id: i64) -> Result<TaskRow> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLS} FROM workflow_tasks t WHERE t.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(task_from(&r))
}

/// The compare-and-swap on a task or its instance lost its race: someone else decided first.
pub(super) const STILL_OPEN: crate::store::Expect = crate::store::Expect {
    rows: 1,
    code: "task_closed",
    message: "该待办已被处理，请刷新后查看最新状态",
};

pub(super) fn task_closed() -> AppError {
    AppError::conflict(STILL_OPEN.code, STILL_OPEN.message)
}

/// (approved, open) in the current round.
pub(super) async fn counts(conn: &mut crate::store::Conn, inst: &Instance) -> Result<(i64, i64)> {
    let r = sqlx::query(
        "SELECT CAST(SUM(CASE WHEN status = 'approved' THEN 1 ELSE 0 END) AS BIGINT) AS a, \
         CAST(SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END) AS BIGINT) AS o FROM workflow_tasks WHERE instance_id = $1 AND round = $2",
    )
    .bind(inst.id)
    .bind(inst.round)
    .fetch_one(conn)
    .await?;
    Ok((
        r.get::<Option<i64>, _>("a").unwrap_or(0),
        r.get::<Option<i64>, _>("o").unwrap_or(0),
    ))
}

/// Approvals a quorum step needs; `None` for other modes.
pub(super) async fn quorum_needed(
    conn: &mut crate::store::Conn,
    spec: &def::Task,
    inst: &Instance,
) -> Result<Option<i64>> {
    Ok(match spec.mode {
        def::Mode::MinApprovals(n) => Some(n as i64),
        def::Mode::Ratio(r) => {
            let (total,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND status NOT IN ('transferred', 'cancelled')")
                .bind(inst.id)
                .bind(inst.round)
                .fetch_one(conn)
                .await?;
            Some(((total as f64) * r).ceil().max(1.0) as i64)
        }
        _ => None,
    })
}
