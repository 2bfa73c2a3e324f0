//! The approval engine (审批流程引擎): definitions as data in `workflows/*.yaml`, versioned in
//! the database, run as instances with tasks; every decision is one transaction with a
//! compare-and-swap on the instance and an entry in the hash-chained audit log.

pub mod audit;
pub mod bench;
pub mod cli;
pub mod def;
pub mod diagram;
pub mod hooks;
mod queries;
mod registry;
pub mod simulate;

pub use queries::*;
pub use registry::*;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
    sync::{Arc, OnceLock, RwLock},
};

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{Column, Row};

pub use def::{Definition, Problem};

use crate::{
    auth::CurrentUser,
    error::{AppError, Result},
    store::{Backend, Db},
    web::AppState,
};

/// The shared expression environment for guards and assignee expressions.
pub fn expr_env() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        env
    })
}

/// Evaluate an expression against a JSON context.
pub fn eval(expr: &str, ctx: &Value) -> Result<minijinja::Value> {
    let e = expr_env()
        .compile_expression(expr)
        .map_err(|e| anyhow::anyhow!("expression {expr}: {e}"))?;
    e.eval(minijinja::Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| AppError::unprocessable("guard_failed", format!("条件表达式无法求值：{e}")))
}

// ---- runtime -----------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct Started {
    pub instance_id: i64,
    pub state: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub instance_id: i64,
    pub state: String,
    pub status: String,
}

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

const INSTANCE_COLS: &str = "id, workflow_key, version, subject_type, subject_id, unit_id, applicant_id, state, prev_state, status, round, data, created_at";

fn instance_from(r: &sqlx::any::AnyRow) -> Instance {
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

async fn load_instance(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Instance> {
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
    let mut conn = db.pool.acquire().await?;
    load_instance(&mut conn, id).await
}

/// Writers queue on this lock on SQLite instead of spinning in SQLite's busy handler, whose
/// sleeps dominate under concurrency; PostgreSQL needs no such lock.
static SQLITE_WRITER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A write transaction (on SQLite: taken up front with `BEGIN IMMEDIATE`, so a
/// read-then-write never fails on a stale snapshot).
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::MutexGuard<'static, ()>>,
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

async fn begin(db: &Db) -> Result<WriteTx> {
    Ok(match db.backend {
        Backend::Sqlite => {
            let turn = SQLITE_WRITER.lock().await;
            WriteTx {
                tx: db.pool.begin_with("BEGIN IMMEDIATE").await?,
                _turn: Some(turn),
            }
        }
        Backend::Postgres => WriteTx {
            tx: db.pool.begin().await?,
            _turn: None,
        },
    })
}

/// The subject's row as JSON (any column), for guards and expressions.
async fn load_subject(
    conn: &mut sqlx::AnyConnection,
    subject_type: &str,
    id: i64,
) -> Result<Value> {
    let Some(s) = hooks::subject(subject_type) else {
        return Ok(json!({"id": id}));
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM {} WHERE id = $1",
        s.table
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(AppError::NotFound)?;
    let mut map = serde_json::Map::new();
    for c in row.columns() {
        let name = c.name();
        let v = if let Ok(v) = row.try_get::<Option<i64>, _>(name) {
            json!(v)
        } else if let Ok(v) = row.try_get::<Option<String>, _>(name) {
            json!(v)
        } else if let Ok(v) = row.try_get::<Option<f64>, _>(name) {
            json!(v)
        } else {
            Value::Null
        };
        map.insert(name.to_string(), v);
    }
    Ok(Value::Object(map))
}

fn today(now: i64) -> String {
    use chrono::TimeZone;
    chrono_tz::Asia::Shanghai
        .timestamp_opt(now, 0)
        .single()
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Resolve a task's assignees to user ids, never a member of the subject's unit (回避)
/// except for the applicant and unit-role assignments, which are the unit by design.
async fn resolve_assignees(
    conn: &mut sqlx::AnyConnection,
    who: &def::Assignees,
    inst: &Instance,
    ctx: &Value,
) -> Result<Vec<i64>> {
    use def::Assignees as A;
    let mut ids: Vec<i64> = match who {
        A::Role(r) => sqlx::query_as::<_, (i64,)>(
            "SELECT DISTINCT u.id FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id \
             WHERE r.key = $1 AND u.is_active = 1 ORDER BY u.id",
        )
        .bind(r)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| r.0)
        .collect(),
        A::Permission(p) => sqlx::query_as::<_, (i64,)>(
            "SELECT DISTINCT u.id FROM users u JOIN user_roles ur ON ur.user_id = u.id \
             JOIN role_permissions rp ON rp.role_id = ur.role_id WHERE rp.permission = $1 AND u.is_active = 1 ORDER BY u.id",
        )
        .bind(p)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| r.0)
        .collect(),
        A::UnitRole(role) => sqlx::query_as::<_, (i64,)>("SELECT user_id FROM unit_members WHERE unit_id = $1 AND role = $2 ORDER BY user_id")
            .bind(inst.unit_id.unwrap_or(0))
            .bind(role)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| r.0)
            .collect(),
        A::User(name) => sqlx::query_as::<_, (i64,)>("SELECT id FROM users WHERE username = $1 AND is_active = 1")
            .bind(name)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| r.0)
            .collect(),
        A::Applicant(_) => vec![inst.applicant_id],
        A::Expr(e) => {
            let v = eval(e, ctx)?;
            let items: Vec<minijinja::Value> = match v.try_iter() {
                Ok(it) if v.kind() == minijinja::value::ValueKind::Seq => it.collect(),
                _ => vec![v],
            };
            let mut out = Vec::new();
            for item in items {
                if let Some(id) = item.as_i64() {
                    out.push(id);
                } else if let Some(name) = item.as_str()
                    && let Some((id,)) = sqlx::query_as::<_, (i64,)>("SELECT id FROM users WHERE username = $1").bind(name).fetch_optional(&mut *conn).await?
                {
                    out.push(id);
                }
            }
            out
        }
    };
    if !matches!(who, A::Applicant(_) | A::UnitRole(_)) {
        ids = recuse(conn, ids, inst.unit_id).await?;
    }
    ids.dedup();
    if ids.is_empty() {
        return Err(AppError::unprocessable(
            "no_assignee",
            "没有可指派的审核人（本单位成员按回避规则不能审核本单位事项）",
        ));
    }
    Ok(ids)
}

/// Drop members of the subject's unit (回避).
async fn recuse(
    conn: &mut sqlx::AnyConnection,
    ids: Vec<i64>,
    unit_id: Option<i64>,
) -> Result<Vec<i64>> {
    let Some(unit) = unit_id else { return Ok(ids) };
    let members: BTreeSet<i64> =
        sqlx::query_as::<_, (i64,)>("SELECT user_id FROM unit_members WHERE unit_id = $1")
            .bind(unit)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| r.0)
            .collect();
    Ok(ids.into_iter().filter(|i| !members.contains(i)).collect())
}

/// Expression context: subject, instance data, form data, scores.
async fn expr_ctx(conn: &mut sqlx::AnyConnection, inst: &Instance, form: &Value) -> Result<Value> {
    let subject = load_subject(conn, &inst.subject_type, inst.subject_id).await?;
    let forms: Vec<(String,)> = sqlx::query_as("SELECT form FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND status = 'approved'")
        .bind(inst.id)
        .bind(inst.round)
        .fetch_all(&mut *conn)
        .await?;
    let mut scores: Vec<f64> = forms
        .iter()
        .filter_map(|(f,)| serde_json::from_str::<Value>(f).ok())
        .filter_map(|v| v.get("score").and_then(Value::as_f64))
        .collect();
    if let Some(s) = form.get("score").and_then(Value::as_f64) {
        scores.push(s);
    }
    Ok(json!({
        "subject": subject, "data": inst.data, "form": form, "scores": score_summary(&scores),
        "applicant_id": inst.applicant_id, "unit_id": inst.unit_id,
    }))
}

/// count, mean, min, max and the trimmed mean (drop one highest and one lowest when ≥ 3).
pub fn score_summary(scores: &[f64]) -> Value {
    if scores.is_empty() {
        return json!({"count": 0, "mean": 0, "trimmed_mean": 0, "min": 0, "max": 0});
    }
    let mut s = scores.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let mean = s.iter().sum::<f64>() / s.len() as f64;
    let trimmed = if s.len() >= 3 {
        &s[1..s.len() - 1]
    } else {
        &s[..]
    };
    let tmean = trimmed.iter().sum::<f64>() / trimmed.len() as f64;
    json!({"count": s.len(), "mean": mean, "trimmed_mean": tmean, "min": s[0], "max": s[s.len() - 1]})
}

fn check_guard(tr: &def::Transition, ctx: &Value) -> Result<()> {
    if let Some(g) = &tr.guard
        && !eval(g, ctx)?.is_true()
    {
        return Err(AppError::unprocessable(
            "guard_refused",
            tr.message
                .clone()
                .unwrap_or_else(|| format!("不满足流转条件：{g}")),
        ));
    }
    Ok(())
}

/// Run the state's effects and, for a human step, create its tasks.
async fn enter_state(
    conn: &mut sqlx::AnyConnection,
    d: &Definition,
    inst: &Instance,
    state: &str,
    round: i64,
    now: i64,
    ctx: &Value,
) -> Result<()> {
    let st = d
        .state(state)
        .ok_or_else(|| anyhow::anyhow!("unknown state {state}"))?;
    for e in &st.effects {
        let hook =
            hooks::find(&e.hook).ok_or_else(|| anyhow::anyhow!("unknown hook {}", e.hook))?;
        let mut hc = hooks::HookCtx {
            conn: &mut *conn,
            instance_id: inst.id,
            subject_type: inst.subject_type.clone(),
            subject_id: inst.subject_id,
            applicant_id: inst.applicant_id,
            state: state.to_string(),
            with: e.with.clone(),
            now,
            today: today(now),
            dry_run: false,
            decision: None,
        };
        (hook.run)(&mut hc).await?;
    }
    // Effects may prepare the step (e.g. compute who must confirm): assignee expressions see
    // the subject as the effects left it.
    let refreshed;
    let ctx = if st.effects.is_empty() {
        ctx
    } else {
        let mut fresh = ctx.clone();
        fresh["subject"] = load_subject(conn, &inst.subject_type, inst.subject_id).await?;
        refreshed = fresh;
        &refreshed
    };
    if let Some(task) = &st.task {
        let users = resolve_assignees(conn, &task.assignees, inst, ctx).await?;
        let due = task.deadline.map(|dl| dl.after(now));
        for (i, uid) in users.iter().enumerate() {
            let open = task.mode != def::Mode::Sequential || i == 0;
            let id = insert_task(
                conn,
                inst.id,
                state,
                round,
                *uid,
                i as i64,
                if open { "open" } else { "waiting" },
                if open { due } else { None },
                now,
            )
            .await?;
            if open {
                hooks::emit(
                    conn,
                    "task_assigned",
                    inst.id,
                    Some(id),
                    Some(*uid),
                    json!({"state": state, "workflow": d.key}),
                    now,
                )
                .await?;
            }
        }
        for role in &task.cc {
            let cc = resolve_assignees(conn, &def::Assignees::Role(role.clone()), inst, ctx)
                .await
                .unwrap_or_default();
            for uid in cc {
                hooks::emit(
                    conn,
                    "cc",
                    inst.id,
                    None,
                    Some(uid),
                    json!({"state": state, "workflow": d.key}),
                    now,
                )
                .await?;
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_task(
    conn: &mut sqlx::AnyConnection,
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

/// Start an instance of flow `key` for a subject; usable from any handler.
pub async fn start(
    state: &AppState,
    key: &str,
    subject_type: &str,
    subject_id: i64,
    applicant_user_id: i64,
    data: Value,
) -> Result<Started> {
    let d = state.workflows.get(key).ok_or_else(|| {
        AppError::unprocessable("unknown_workflow", format!("流程 `{key}` 不存在或未发布"))
    })?;
    if d.subject != subject_type {
        return Err(AppError::unprocessable(
            "wrong_subject",
            format!(
                "流程 `{key}` 的审批对象是 {}，不是 {subject_type}",
                d.subject
            ),
        ));
    }
    let now = state.now();
    let mut tx = begin(&state.db).await?;
    let running: Option<(i64,)> = sqlx::query_as("SELECT id FROM workflow_instances WHERE workflow_key = $1 AND subject_type = $2 AND subject_id = $3 AND status = 'running'")
        .bind(key)
        .bind(subject_type)
        .bind(subject_id)
        .fetch_optional(&mut *tx)
        .await?;
    if running.is_some() {
        return Err(AppError::conflict(
            "already_running",
            "该事项已在审批中，请勿重复提交",
        ));
    }
    let unit_id = match hooks::subject(subject_type) {
        Some(s) => {
            // A subject may belong to no unit (a settlement): then nobody is recused.
            let (u,): (Option<i64>,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM {} WHERE id = $1",
                s.unit_column, s.table
            )))
            .bind(subject_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(AppError::NotFound)?;
            u
        }
        None => data.get("unit_id").and_then(Value::as_i64),
    };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO workflow_instances (workflow_key, version, subject_type, subject_id, unit_id, applicant_id, state, status, round, data, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', 1, $8, $9, $9) RETURNING id",
    )
    .bind(key)
    .bind(d.version)
    .bind(subject_type)
    .bind(subject_id)
    .bind(unit_id)
    .bind(applicant_user_id)
    .bind(&d.initial)
    .bind(data.to_string())
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let inst = load_instance(&mut tx, id).await?;
    let ctx = expr_ctx(&mut tx, &inst, &Value::Null).await?;
    if let Some(g) = &d.guard {
        check_guard(g, &ctx)?;
    }
    enter_state(&mut tx, &d, &inst, &d.initial, 1, now, &ctx).await?;
    audit::append(
        &mut tx,
        audit::Entry {
            instance_id: id,
            at: now,
            actor_id: Some(applicant_user_id),
            workflow_key: key,
            version: d.version,
            state: "",
            action: "start",
            to_state: &d.initial,
            comment: "",
            data: &data.to_string(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Started {
        instance_id: id,
        state: d.initial.clone(),
    })
}

/// A decision on a task (`POST /tasks/{id}/actions`).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Decision {
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub data: Value,
}

/// Take the instance's row lock (a no-op update: portable, unlike `FOR UPDATE`).
async fn lock_instance(conn: &mut sqlx::AnyConnection, id: i64) -> Result<()> {
    sqlx::query("UPDATE workflow_instances SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

async fn lock_instance_of_task(conn: &mut sqlx::AnyConnection, task_id: i64) -> Result<()> {
    sqlx::query("UPDATE workflow_instances SET updated_at = updated_at WHERE id = (SELECT instance_id FROM workflow_tasks WHERE id = $1)")
        .bind(task_id)
        .execute(conn)
        .await?;
    Ok(())
}

struct TaskRow {
    instance_id: i64,
    round: i64,
    assignee_id: i64,
    seq: i64,
    due_at: Option<i64>,
    status: String,
}

async fn load_task(conn: &mut sqlx::AnyConnection, id: i64) -> Result<TaskRow> {
    let r = sqlx::query("SELECT instance_id, state, round, assignee_id, seq, due_at, status FROM workflow_tasks WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(TaskRow {
        instance_id: r.get("instance_id"),
        round: r.get("round"),
        assignee_id: r.get("assignee_id"),
        seq: r.get("seq"),
        due_at: r.get("due_at"),
        status: r.get("status"),
    })
}

fn task_closed() -> AppError {
    AppError::conflict("task_closed", "该待办已被处理，请刷新后查看最新状态")
}

async fn user_by_ref(conn: &mut sqlx::AnyConnection, data: &Value) -> Result<i64> {
    if let Some(id) = data.get("user_id").and_then(Value::as_i64) {
        let found: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM users WHERE id = $1 AND is_active = 1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        return found
            .map(|r| r.0)
            .ok_or_else(|| AppError::field("user", "找不到该用户"));
    }
    let name = data
        .get("user")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    if name.is_empty() {
        return Err(AppError::field("user", "请填写转办或加签的用户名"));
    }
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM users WHERE username = $1 AND is_active = 1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    found
        .map(|r| r.0)
        .ok_or_else(|| AppError::field("user", format!("找不到用户 {name}")))
}

/// Act on a task as `actor` (None: the engine itself, e.g. at a deadline).
pub async fn act(
    state: &AppState,
    actor: Option<&CurrentUser>,
    task_id: i64,
    decision: Decision,
) -> Result<Outcome> {
    let now = state.now();
    let db = &state.db;
    let mut tx = begin(db).await?;
    // Lock order, everywhere: the instance row, then its tasks, then the audit head. Two
    // reviewers deciding sibling tasks at once then queue instead of deadlocking.
    lock_instance_of_task(&mut tx, task_id).await?;
    let task = load_task(&mut tx, task_id).await?;
    if let Some(u) = actor
        && u.id != task.assignee_id
    {
        return Err(AppError::Forbidden {
            code: "not_assignee",
        });
    }
    if task.status != "open" {
        return Err(task_closed());
    }
    let mut inst = load_instance(&mut tx, task.instance_id).await?;
    if inst.status != "running" || inst.round != task.round {
        return Err(task_closed());
    }
    let d = state
        .workflows
        .version(db, &inst.workflow_key, inst.version)
        .await?;
    let st = d
        .state(&inst.state)
        .ok_or_else(|| anyhow::anyhow!("state {} missing from definition", inst.state))?;
    let spec = st
        .task
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no task in state {}", inst.state))?;
    let action = decision.action.trim().to_string();
    // Only the engine (at a deadline) withdraws through a task; applicants use `withdraw`.
    if (action == "withdraw" && actor.is_some()) || !spec.actions.contains(&action) {
        return Err(AppError::unprocessable(
            "action_not_allowed",
            format!("此环节不允许“{}”操作", def::action_label(&action)),
        ));
    }
    let form = if decision.data.is_null() {
        json!({})
    } else {
        decision.data.clone()
    };
    let actor_id = actor.map(|u| u.id);
    // Close the task first: this UPDATE is the compare-and-swap for concurrent deciders.
    let closing_status = match action.as_str() {
        "approve" => "approved",
        "reject" => "rejected",
        "return" => "returned",
        "transfer" => "transferred",
        "withdraw" => "withdrawn",
        _ => "open",
    };
    if closing_status != "open" {
        let done = sqlx::query("UPDATE workflow_tasks SET status = $1, action = $2, comment = $3, form = $4, decided_at = $5 WHERE id = $6 AND status = 'open'")
            .bind(closing_status)
            .bind(&action)
            .bind(&decision.comment)
            .bind(form.to_string())
            .bind(now)
            .bind(task_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(task_closed());
        }
    }
    for e in &spec.on_decision {
        let hook =
            hooks::find(&e.hook).ok_or_else(|| anyhow::anyhow!("unknown hook {}", e.hook))?;
        let mut hc = hooks::HookCtx {
            conn: &mut tx,
            instance_id: inst.id,
            subject_type: inst.subject_type.clone(),
            subject_id: inst.subject_id,
            applicant_id: inst.applicant_id,
            state: inst.state.clone(),
            with: e.with.clone(),
            now,
            today: today(now),
            dry_run: false,
            decision: Some(hooks::DecisionInfo {
                task_id,
                round: inst.round,
                assignee_id: task.assignee_id,
                actor_id,
                action: action.clone(),
                comment: decision.comment.clone(),
                form: form.clone(),
            }),
        };
        (hook.run)(&mut hc).await?;
    }
    let mut ctx = expr_ctx(&mut tx, &inst, &form).await?;
    // The deciding task, for rules like "only after the notice period" (公示期满).
    ctx["task"] = json!({
        "due_at": task.due_at,
        "deadline_passed": task.due_at.is_some_and(|d| d <= now),
    });
    if let Some(tr) = spec.on.get(&action)
        && let Some(req) = &tr.require
        && !eval(req, &ctx)?.is_true()
    {
        return Err(AppError::unprocessable(
            "form_incomplete",
            tr.require_message
                .clone()
                .unwrap_or_else(|| format!("填写的内容不满足要求：{req}")),
        ));
    }
    let mut target: Option<String> = None;
    match action.as_str() {
        "comment" => {}
        "transfer" | "add_signer" => {
            let uid = user_by_ref(&mut tx, &form).await?;
            if recuse(&mut tx, vec![uid], inst.unit_id).await?.is_empty() {
                return Err(AppError::field(
                    "user",
                    "该用户是本单位成员，按回避规则不能审核",
                ));
            }
            let open: Option<(i64,)> = sqlx::query_as("SELECT id FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND assignee_id = $3 AND status IN ('open', 'waiting')")
                .bind(inst.id).bind(inst.round).bind(uid).fetch_optional(&mut *tx).await?;
            if open.is_some() {
                return Err(AppError::field("user", "该用户已有此事项的待办"));
            }
            let seq = if action == "transfer" {
                task.seq
            } else {
                task.seq + 1
            };
            let (status, due) = if action == "add_signer" && spec.mode == def::Mode::Sequential {
                // 加签 in a sequence: the new signer comes right after the current one.
                sqlx::query("UPDATE workflow_tasks SET seq = seq + 1 WHERE instance_id = $1 AND round = $2 AND status = 'waiting'")
                    .bind(inst.id).bind(inst.round).execute(&mut *tx).await?;
                ("waiting", None)
            } else {
                ("open", task.due_at)
            };
            let new_id = insert_task(
                &mut tx,
                inst.id,
                &inst.state,
                inst.round,
                uid,
                seq,
                status,
                due,
                now,
            )
            .await?;
            if status == "open" {
                hooks::emit(
                    &mut tx,
                    "task_assigned",
                    inst.id,
                    Some(new_id),
                    Some(uid),
                    json!({"state": inst.state, "workflow": d.key}),
                    now,
                )
                .await?;
            }
        }
        "reject" => {
            let needed = quorum_needed(&mut tx, spec, &inst).await?;
            match needed {
                Some(n) => {
                    let (approved, open) = counts(&mut tx, &inst).await?;
                    if approved + open < n {
                        target = Some(transition_to(spec, "reject")?);
                    }
                }
                None => target = Some(transition_to(spec, "reject")?),
            }
        }
        "withdraw" => target = Some(transition_to(spec, "withdraw")?),
        "return" => {
            target = Some(match spec.on.get("return") {
                Some(t) => t.to.clone(),
                None => inst.prev_state.clone().ok_or_else(|| {
                    AppError::unprocessable("nowhere_to_return", "这是第一个环节，无处退回")
                })?,
            });
        }
        "approve" => {
            let tr = spec
                .on
                .get("approve")
                .ok_or_else(|| anyhow::anyhow!("approve without target"))?;
            let (approved, open) = counts(&mut tx, &inst).await?;
            let waiting: (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND status = 'waiting'")
                .bind(inst.id).bind(inst.round).fetch_one(&mut *tx).await?;
            let finished = match spec.mode {
                def::Mode::Any => true,
                def::Mode::All => open == 0 && waiting.0 == 0,
                def::Mode::Sequential => {
                    if waiting.0 > 0 {
                        let due = spec.deadline.map(|dl| dl.after(now));
                        let next: (i64, i64) = sqlx::query_as("SELECT id, assignee_id FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND status = 'waiting' ORDER BY seq, id LIMIT 1")
                            .bind(inst.id).bind(inst.round).fetch_one(&mut *tx).await?;
                        sqlx::query(
                            "UPDATE workflow_tasks SET status = 'open', due_at = $1 WHERE id = $2",
                        )
                        .bind(due)
                        .bind(next.0)
                        .execute(&mut *tx)
                        .await?;
                        hooks::emit(
                            &mut tx,
                            "task_assigned",
                            inst.id,
                            Some(next.0),
                            Some(next.1),
                            json!({"state": inst.state, "workflow": d.key}),
                            now,
                        )
                        .await?;
                        false
                    } else {
                        open == 0
                    }
                }
                def::Mode::MinApprovals(_) | def::Mode::Ratio(_) => {
                    let n = quorum_needed(&mut tx, spec, &inst).await?.unwrap_or(1);
                    approved >= n
                }
            };
            if finished {
                check_guard(tr, &ctx)?;
                target = Some(tr.to.clone());
            } else if matches!(spec.mode, def::Mode::MinApprovals(_) | def::Mode::Ratio(_))
                && open == 0
            {
                // Everyone decided and the quorum was not reached.
                target = Some(transition_to(spec, "reject")?);
            }
        }
        other => {
            return Err(AppError::unprocessable(
                "action_not_allowed",
                format!("未知操作 {other}"),
            ));
        }
    }
    let to_state = target.clone().unwrap_or_else(|| inst.state.clone());
    audit::append(
        &mut tx,
        audit::Entry {
            instance_id: inst.id,
            at: now,
            actor_id,
            workflow_key: &d.key,
            version: d.version,
            state: &inst.state,
            action: &action,
            to_state: &to_state,
            comment: &decision.comment,
            data: &form.to_string(),
        },
    )
    .await?;
    if let Some(to) = target {
        move_to(&mut tx, &d, &mut inst, &to, now, &ctx, actor_id, &action).await?;
    }
    tx.commit().await?;
    Ok(Outcome {
        instance_id: inst.id,
        state: inst.state,
        status: inst.status,
    })
}

fn transition_to(spec: &def::Task, action: &str) -> Result<String> {
    spec.on
        .get(action)
        .map(|t| t.to.clone())
        .ok_or_else(|| anyhow::anyhow!("no transition for {action}").into())
}

/// (approved, open) in the current round.
async fn counts(conn: &mut sqlx::AnyConnection, inst: &Instance) -> Result<(i64, i64)> {
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
async fn quorum_needed(
    conn: &mut sqlx::AnyConnection,
    spec: &def::Task,
    inst: &Instance,
) -> Result<Option<i64>> {
    Ok(match spec.mode {
        def::Mode::MinApprovals(n) => Some(n as i64),
        def::Mode::Ratio(r) => {
            let (total,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND status <> 'transferred'")
                .bind(inst.id)
                .bind(inst.round)
                .fetch_one(conn)
                .await?;
            Some(((total as f64) * r).ceil().max(1.0) as i64)
        }
        _ => None,
    })
}

/// Move the instance to `to`: compare-and-swap on (state, round), close the round's other
/// tasks, run the new state's effects and open its tasks.
#[allow(clippy::too_many_arguments)]
async fn move_to(
    conn: &mut sqlx::AnyConnection,
    d: &Definition,
    inst: &mut Instance,
    to: &str,
    now: i64,
    ctx: &Value,
    actor_id: Option<i64>,
    action: &str,
) -> Result<()> {
    let terminal = d.state(to).is_some_and(|s| s.terminal);
    let status = if terminal { "completed" } else { "running" };
    let done = sqlx::query(
        "UPDATE workflow_instances SET state = $1, prev_state = $2, status = $3, round = round + 1, updated_at = $4 \
         WHERE id = $5 AND round = $6 AND state = $2",
    )
    .bind(to)
    .bind(&inst.state)
    .bind(status)
    .bind(now)
    .bind(inst.id)
    .bind(inst.round)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Err(task_closed());
    }
    sqlx::query("UPDATE workflow_tasks SET status = 'cancelled', decided_at = $1 WHERE instance_id = $2 AND round = $3 AND status IN ('open', 'waiting')")
        .bind(now)
        .bind(inst.id)
        .bind(inst.round)
        .execute(&mut *conn)
        .await?;
    inst.prev_state = Some(inst.state.clone());
    inst.state = to.to_string();
    inst.round += 1;
    inst.status = status.to_string();
    let kind = match action {
        "return" => "returned",
        "withdraw" => "withdrawn",
        _ => "decided",
    };
    hooks::emit(
        conn,
        kind,
        inst.id,
        None,
        Some(inst.applicant_id),
        json!({"state": to, "action": action, "actor_id": actor_id, "workflow": d.key}),
        now,
    )
    .await?;
    enter_state(conn, d, inst, to, inst.round, now, ctx).await
}

/// Withdraw (撤回) by the applicant, allowed while no one has decided in the current step.
pub async fn withdraw(
    state: &AppState,
    user: &CurrentUser,
    instance_id: i64,
    comment: &str,
) -> Result<Outcome> {
    let now = state.now();
    let mut tx = begin(&state.db).await?;
    lock_instance(&mut tx, instance_id).await?;
    let mut inst = load_instance(&mut tx, instance_id).await?;
    if inst.applicant_id != user.id {
        return Err(AppError::Forbidden {
            code: "not_applicant",
        });
    }
    if inst.status != "running" {
        return Err(task_closed());
    }
    let d = state
        .workflows
        .version(&state.db, &inst.workflow_key, inst.version)
        .await?;
    let spec = d
        .state(&inst.state)
        .and_then(|s| s.task.clone())
        .ok_or_else(|| anyhow::anyhow!("no task"))?;
    if !spec.actions.iter().any(|a| a == "withdraw") {
        return Err(AppError::unprocessable(
            "action_not_allowed",
            "此环节不允许撤回",
        ));
    }
    let (decided,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND status IN ('approved', 'rejected', 'returned')")
        .bind(inst.id)
        .bind(inst.round)
        .fetch_one(&mut *tx)
        .await?;
    if decided > 0 {
        return Err(AppError::conflict(
            "already_decided",
            "审核人已经处理，不能撤回",
        ));
    }
    let to = transition_to(&spec, "withdraw")?;
    let ctx = expr_ctx(&mut tx, &inst, &Value::Null).await?;
    audit::append(
        &mut tx,
        audit::Entry {
            instance_id: inst.id,
            at: now,
            actor_id: Some(user.id),
            workflow_key: &d.key,
            version: d.version,
            state: &inst.state,
            action: "withdraw",
            to_state: &to,
            comment,
            data: "{}",
        },
    )
    .await?;
    move_to(
        &mut tx,
        &d,
        &mut inst,
        &to,
        now,
        &ctx,
        Some(user.id),
        "withdraw",
    )
    .await?;
    tx.commit().await?;
    Ok(Outcome {
        instance_id: inst.id,
        state: inst.state,
        status: inst.status,
    })
}

/// Deadlines (时限): remind a day ahead, then at the deadline remind, escalate or act.
/// Running it twice does nothing twice (`reminded` marks what was done).
pub async fn process_deadlines(state: &AppState) -> Result<usize> {
    let now = state.now();
    let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT id, instance_id, due_at, reminded FROM workflow_tasks WHERE status = 'open' AND due_at IS NOT NULL AND due_at <= $1 AND reminded < 2 ORDER BY due_at, id",
    )
    .bind(now + 86_400)
    .fetch_all(&state.db.pool)
    .await?;
    let mut handled = 0;
    for (task_id, instance_id, due_at, reminded) in rows {
        let inst = get_instance(&state.db, instance_id).await?;
        let d = state
            .workflows
            .version(&state.db, &inst.workflow_key, inst.version)
            .await?;
        let Some(spec) = d.state(&inst.state).and_then(|s| s.task.clone()) else {
            continue;
        };
        let user: (i64,) = sqlx::query_as("SELECT assignee_id FROM workflow_tasks WHERE id = $1")
            .bind(task_id)
            .fetch_one(&state.db.pool)
            .await?;
        if due_at > now {
            if reminded == 0 {
                let mut tx = begin(&state.db).await?;
                let done = sqlx::query(
                    "UPDATE workflow_tasks SET reminded = 1 WHERE id = $1 AND reminded = 0",
                )
                .bind(task_id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 1 {
                    hooks::emit(
                        &mut tx,
                        "due_soon",
                        instance_id,
                        Some(task_id),
                        Some(user.0),
                        json!({"due_at": due_at}),
                        now,
                    )
                    .await?;
                    handled += 1;
                }
                tx.commit().await?;
            }
            continue;
        }
        {
            let mut tx = begin(&state.db).await?;
            lock_instance(&mut tx, instance_id).await?;
            let done = sqlx::query("UPDATE workflow_tasks SET reminded = 2 WHERE id = $1 AND reminded < 2 AND status = 'open'").bind(task_id).execute(&mut *tx).await?;
            if done.rows_affected() != 1 {
                continue;
            }
            hooks::emit(
                &mut tx,
                "overdue",
                instance_id,
                Some(task_id),
                Some(user.0),
                json!({"due_at": due_at}),
                now,
            )
            .await?;
            if let Some(def::AtDeadline::Escalate(role)) = &spec.at_deadline {
                let ctx = expr_ctx(&mut tx, &inst, &Value::Null).await?;
                let users =
                    resolve_assignees(&mut tx, &def::Assignees::Role(role.clone()), &inst, &ctx)
                        .await?;
                let due = spec.deadline.map(|dl| dl.after(now));
                let holding: BTreeSet<i64> = sqlx::query_as::<_, (i64,)>(
                    "SELECT assignee_id FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND status = 'open'",
                )
                .bind(inst.id)
                .bind(inst.round)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|r| r.0)
                .collect();
                for uid in users.into_iter().filter(|u| !holding.contains(u)) {
                    let id = insert_task(
                        &mut tx,
                        inst.id,
                        &inst.state,
                        inst.round,
                        uid,
                        0,
                        "open",
                        due,
                        now,
                    )
                    .await?;
                    hooks::emit(
                        &mut tx,
                        "escalated",
                        inst.id,
                        Some(id),
                        Some(uid),
                        json!({"from_task": task_id}),
                        now,
                    )
                    .await?;
                }
            }
            tx.commit().await?;
        }
        if let Some(def::AtDeadline::Action(a)) = &spec.at_deadline {
            act(
                state,
                None,
                task_id,
                Decision {
                    action: a.clone(),
                    comment: "超过办理时限，系统自动处理".into(),
                    data: json!({}),
                },
            )
            .await?;
        }
        handled += 1;
    }
    Ok(handled)
}
