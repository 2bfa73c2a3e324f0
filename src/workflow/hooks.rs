//! Effect hooks (效果钩子) and subjects (审批对象): named functions a definition's `effects`
//! and `on_decision` call, each inside the decision's transaction, and the record types a
//! flow can run on. The engine brings `set_status` and `notify`; domain modules declare
//! their own hooks and subjects, and the top (`server::workflow_catalog`) assembles them into
//! the `Catalog` that `workflows check` validates against. A name not registered is a
//! definition error.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::{
    error::{AppError, Result},
    store::Touch,
};

/// How a subject's unit is found (回避 uses it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitOf {
    /// The subject is a unit.
    Itself,
    /// A column of the subject's table holds its unit id (NULL: no unit, nobody recused).
    Column(&'static str),
    /// The subject belongs to no unit (an expert records their unit by name only).
    Nothing,
}

/// The subject's name for people (task lists, mails); `None` when the row is gone.
pub type LabelFn =
    for<'c> fn(&'c mut crate::store::Conn, i64) -> BoxFuture<'c, Result<Option<String>>>;

/// A subject type a flow can run on, declared by the domain module that owns the table:
/// where its status lives, how its unit is found and how it is named. The engine reads
/// these, it does not know them.
pub struct Subject {
    pub kind: &'static str,
    pub table: &'static str,
    pub status_column: &'static str,
    pub unit: UnitOf,
    pub has_joined_on: bool,
    /// A status change re-indexes the record (it may become public or stop being so).
    pub searchable: bool,
    pub label: LabelFn,
}

impl Subject {
    /// The subject's unit, or NotFound when the row does not exist.
    pub(super) async fn unit_of(
        &self,
        conn: &mut crate::store::Conn,
        id: i64,
    ) -> Result<Option<i64>> {
        let sql = match self.unit {
            UnitOf::Itself => format!("SELECT id FROM {} WHERE id = $1", self.table),
            UnitOf::Column(c) => format!("SELECT {c} FROM {} WHERE id = $1", self.table),
            UnitOf::Nothing => {
                let found: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT id FROM {} WHERE id = $1",
                    self.table
                )))
                .bind(id)
                .fetch_optional(conn)
                .await?;
                return found.map(|_| None).ok_or(AppError::NotFound);
            }
        };
        let (u,): (Option<i64>,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(conn)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok(u)
    }
}

/// A label read by one query of the owning module (`SELECT <text> … WHERE id = $1`).
pub async fn label_by(
    conn: &mut crate::store::Conn,
    sql: &'static str,
    id: i64,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// What `workflows check` and the engine know: every hook and every subject, assembled
/// once at the top (`server::workflow_catalog`) from the modules that declare them.
pub struct Catalog {
    hooks: Vec<&'static Hook>,
    subjects: Vec<&'static Subject>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::engine()
    }
}

impl Catalog {
    /// The engine's own hooks (`set_status`, `notify`) and no subjects.
    pub fn engine() -> Catalog {
        Catalog {
            hooks: ENGINE_HOOKS.iter().collect(),
            subjects: vec![],
        }
    }

    /// Add a module's hooks. Panics on a duplicate name: a programming error found at start-up.
    pub fn hooks(mut self, hooks: &'static [Hook]) -> Catalog {
        for h in hooks {
            assert!(
                self.hook(h.name).is_none(),
                "workflow hook {} registered twice",
                h.name
            );
            self.hooks.push(h);
        }
        self
    }

    /// Add a module's subjects. Panics on a duplicate kind or a table or column name that
    /// is not a plain identifier (they are written into SQL).
    pub fn subjects(mut self, subjects: &'static [Subject]) -> Catalog {
        for s in subjects {
            assert!(
                self.subject(s.kind).is_none(),
                "workflow subject {} registered twice",
                s.kind
            );
            let column = match s.unit {
                UnitOf::Column(c) => c,
                _ => "id",
            };
            for ident in [s.table, s.status_column, column] {
                assert!(
                    !ident.is_empty()
                        && ident
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                    "workflow subject {}: `{ident}` is not an identifier",
                    s.kind
                );
            }
            self.subjects.push(s);
        }
        self
    }

    pub fn hook(&self, name: &str) -> Option<&'static Hook> {
        self.hooks.iter().copied().find(|h| h.name == name)
    }

    pub fn hook_names(&self) -> Vec<&'static str> {
        self.hooks.iter().map(|h| h.name).collect()
    }

    pub fn subject(&self, kind: &str) -> Option<&'static Subject> {
        self.subjects.iter().copied().find(|s| s.kind == kind)
    }

    /// The subject's name for people, `#id` when unknown.
    pub async fn label(
        &self,
        conn: &mut crate::store::Conn,
        kind: &str,
        id: i64,
    ) -> Result<String> {
        let name = match self.subject(kind) {
            Some(s) => (s.label)(conn, id).await?,
            None => None,
        };
        Ok(name.unwrap_or_else(|| format!("#{id}")))
    }
}

/// What a hook sees.
pub struct HookCtx<'c> {
    pub conn: &'c mut crate::store::Conn,
    pub instance_id: i64,
    pub subject_type: String,
    /// The subject's declaration, when its module registered one.
    pub subject: Option<&'static Subject>,
    pub subject_id: i64,
    pub applicant_id: i64,
    pub state: String,
    pub with: BTreeMap<String, Value>,
    pub now: i64,
    /// Today in the platform's zone, `YYYY-MM-DD`.
    pub today: String,
    /// Set by the dry run: hooks must not write.
    pub dry_run: bool,
    /// For an `on_decision` hook: the decision being made (None for state effects).
    pub decision: Option<DecisionInfo>,
}

/// A decision on a task, as `on_decision` hooks see it. The task is already closed with
/// this decision; the step has not yet counted it.
#[derive(Clone, Debug)]
pub struct DecisionInfo {
    pub task_id: i64,
    pub round: i64,
    pub assignee_id: i64,
    /// None when the engine acts (a deadline's automatic action).
    pub actor_id: Option<i64>,
    pub action: String,
    pub comment: String,
    pub form: Value,
}

pub type RunFn = for<'a, 'c> fn(&'a mut HookCtx<'c>) -> BoxFuture<'a, Result<()>>;
/// Checks a hook's parameters for a flow on `subject_type` (`subject`: its declaration, if
/// registered); the message becomes a `workflows check` problem.
pub type CheckFn = fn(
    subject_type: &str,
    subject: Option<&Subject>,
    with: &BTreeMap<String, Value>,
) -> std::result::Result<(), String>;

pub struct Hook {
    pub name: &'static str,
    pub check: CheckFn,
    pub run: RunFn,
}

/// The engine's own hooks.
const ENGINE_HOOKS: &[Hook] = &[
    Hook {
        name: "set_status",
        check: check_set_status,
        run: run_set_status,
    },
    Hook {
        name: "notify",
        check: check_notify,
        run: run_notify,
    },
];

// ---- set_status --------------------------------------------------------------------------

fn check_set_status(
    subject_type: &str,
    subject: Option<&Subject>,
    with: &BTreeMap<String, Value>,
) -> std::result::Result<(), String> {
    let Some(s) = subject else {
        return Err(format!(
            "set_status：主体类型 `{subject_type}` 没有登记状态字段（由其所属模块登记 workflow::Subject）"
        ));
    };
    match with.get("status") {
        Some(Value::String(v)) if !v.is_empty() => {}
        _ => return Err("set_status 需要 with.status（字符串）".into()),
    }
    if with
        .get("joined_on")
        .is_some_and(|v| v == &Value::Bool(true))
        && !s.has_joined_on
    {
        return Err(format!("set_status：`{}` 没有 joined_on 字段", s.table));
    }
    for k in with.keys() {
        if k != "status" && k != "joined_on" {
            return Err(format!("set_status 不认识参数 `{k}`"));
        }
    }
    Ok(())
}

fn run_set_status<'a, 'c>(ctx: &'a mut HookCtx<'c>) -> BoxFuture<'a, Result<()>> {
    Box::pin(set_status(ctx))
}

async fn set_status(ctx: &mut HookCtx<'_>) -> Result<()> {
    let s = ctx
        .subject
        .ok_or_else(|| anyhow::anyhow!("no subject mapping for {}", ctx.subject_type))?;
    let status = ctx
        .with
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if ctx.dry_run {
        return Ok(());
    }
    let joined = ctx.with.get("joined_on") == Some(&Value::Bool(true));
    let sql = if joined {
        format!(
            "UPDATE {} SET {} = $1, joined_on = $3, updated_at = $4 WHERE id = $2",
            s.table, s.status_column
        )
    } else {
        format!(
            "UPDATE {} SET {} = $1, updated_at = $3 WHERE id = $2",
            s.table, s.status_column
        )
    };
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(status)
        .bind(ctx.subject_id);
    if joined {
        q = q.bind(ctx.today.clone());
    }
    let done = q.bind(ctx.now).execute(&mut *ctx.conn).await?;
    if done.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    // A status change can make a record public or take it off: re-index it in the same
    // transaction (the search outbox).
    if s.searchable {
        crate::search::enqueue(ctx.conn, &ctx.subject_type, ctx.subject_id).await?;
    }
    Ok(())
}

// ---- notify ------------------------------------------------------------------------------

pub const EVENT_KINDS: [&str; 7] = [
    "task_assigned",
    "decided",
    "returned",
    "withdrawn",
    "due_soon",
    "overdue",
    "escalated",
];

fn check_notify(
    _: &str,
    _: Option<&Subject>,
    with: &BTreeMap<String, Value>,
) -> std::result::Result<(), String> {
    match with.get("event").and_then(Value::as_str) {
        Some(e) if EVENT_KINDS.contains(&e) => Ok(()),
        _ => Err(format!(
            "notify 需要 with.event，取值：{}",
            EVENT_KINDS.join("、")
        )),
    }
}

fn run_notify<'a, 'c>(ctx: &'a mut HookCtx<'c>) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        if ctx.dry_run {
            return Ok(());
        }
        let kind = ctx
            .with
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or("decided")
            .to_string();
        let payload = serde_json::json!({"state": ctx.state, "subject_type": ctx.subject_type, "subject_id": ctx.subject_id});
        emit(
            ctx.conn,
            &kind,
            ctx.instance_id,
            None,
            Some(ctx.applicant_id),
            payload,
            ctx.now,
        )
        .await
    })
}

/// Write one event row for the notifications module.
pub async fn emit(
    conn: &mut crate::store::Conn,
    kind: &str,
    instance_id: i64,
    task_id: Option<i64>,
    user_id: Option<i64>,
    payload: Value,
    now: i64,
) -> Result<()> {
    // Nothing in the transaction needs the row back: held back on PostgreSQL (`Conn::defer`).
    let insert = sqlx::query("INSERT INTO workflow_events (kind, instance_id, task_id, user_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(kind)
        .bind(instance_id)
        .bind(task_id)
        .bind(user_id)
        .bind(payload.to_string())
        .bind(now);
    conn.defer(insert, &[Touch::Insert("workflow_events")], None)
        .await?;
    Ok(())
}
