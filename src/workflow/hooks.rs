//! Effect hooks (效果钩子): named functions a definition's `effects` call on entering a state.
//! Each runs inside the decision's transaction. Adding one is one function plus one line in
//! `HOOKS`; a name not listed here is a definition error found by `workflows check`.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::error::{AppError, Result};

/// Where a subject type's status lives and how to find its unit (回避 uses the unit).
pub struct Subject {
    pub kind: &'static str,
    pub table: &'static str,
    pub status_column: &'static str,
    /// Column holding the subject's unit id (`id` for a unit itself).
    pub unit_column: &'static str,
    pub has_joined_on: bool,
}

/// The single subject mapping. Other modules add their lines here.
pub const SUBJECTS: &[Subject] = &[
    Subject {
        kind: "unit",
        table: "units",
        status_column: "certification_status",
        unit_column: "id",
        has_joined_on: true,
    },
    Subject {
        kind: "instrument",
        table: "instruments",
        status_column: "review_status",
        unit_column: "unit_id",
        has_joined_on: true,
    },
    Subject {
        kind: "platform",
        table: "platforms",
        status_column: "review_status",
        unit_column: "unit_id",
        has_joined_on: true,
    },
    Subject {
        kind: "service",
        table: "services",
        status_column: "review_status",
        unit_column: "unit_id",
        has_joined_on: false,
    },
    Subject {
        kind: "achievement",
        table: "achievements",
        status_column: "review_status",
        unit_column: "unit_id",
        has_joined_on: false,
    },
    Subject {
        kind: "expert",
        table: "experts",
        status_column: "certification_status",
        // Experts record their unit by name only: nobody is recused by unit.
        unit_column: "NULL",
        has_joined_on: true,
    },
    Subject {
        kind: "voucher_application",
        table: "voucher_applications",
        status_column: "status",
        unit_column: "unit_id",
        has_joined_on: false,
    },
    Subject {
        kind: "redemption",
        table: "redemptions",
        status_column: "status",
        unit_column: "managing_unit_id",
        has_joined_on: false,
    },
    Subject {
        kind: "evaluation",
        table: "evaluations",
        status_column: "status",
        unit_column: "unit_id",
        has_joined_on: false,
    },
    Subject {
        kind: "subsidy_settlement",
        table: "settlements",
        status_column: "status",
        unit_column: "unit_id",
        has_joined_on: false,
    },
];

pub fn subject(kind: &str) -> Option<&'static Subject> {
    SUBJECTS.iter().find(|s| s.kind == kind)
}

/// What a hook sees.
pub struct HookCtx<'c> {
    pub conn: &'c mut sqlx::AnyConnection,
    pub instance_id: i64,
    pub subject_type: String,
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
pub type CheckFn = fn(&str, &BTreeMap<String, Value>) -> std::result::Result<(), String>;

pub struct Hook {
    pub name: &'static str,
    pub check: CheckFn,
    pub run: RunFn,
}

/// Every hook, by name.
pub const HOOKS: &[Hook] = &[
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
    Hook {
        name: "grant_voucher_quota",
        check: crate::money::hooks::check_grant,
        run: crate::money::hooks::run_grant,
    },
    Hook {
        name: "redeem_vouchers",
        check: crate::money::hooks::check_redeem,
        run: crate::money::hooks::run_redeem,
    },
    Hook {
        name: "finalise_evaluation",
        check: crate::evaluations::check_finalise_hook,
        run: crate::evaluations::run_finalise_hook,
    },
    Hook {
        name: "compute_settlement",
        check: crate::money::hooks::check_compute_settlement,
        run: crate::money::hooks::run_compute_settlement,
    },
    Hook {
        name: "record_unit_confirmation",
        check: crate::money::hooks::check_record_unit_confirmation,
        run: crate::money::hooks::run_record_unit_confirmation,
    },
];

pub fn find(name: &str) -> Option<&'static Hook> {
    HOOKS.iter().find(|h| h.name == name)
}

pub fn names() -> Vec<&'static str> {
    HOOKS.iter().map(|h| h.name).collect()
}

// ---- set_status --------------------------------------------------------------------------

fn check_set_status(
    subject_type: &str,
    with: &BTreeMap<String, Value>,
) -> std::result::Result<(), String> {
    let Some(s) = subject(subject_type) else {
        return Err(format!(
            "set_status：主体类型 `{subject_type}` 没有状态映射（hooks::SUBJECTS）"
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
    let s = subject(&ctx.subject_type)
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
    if matches!(
        ctx.subject_type.as_str(),
        "instrument" | "platform" | "service" | "achievement" | "unit"
    ) {
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

fn check_notify(_: &str, with: &BTreeMap<String, Value>) -> std::result::Result<(), String> {
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
    conn: &mut sqlx::AnyConnection,
    kind: &str,
    instance_id: i64,
    task_id: Option<i64>,
    user_id: Option<i64>,
    payload: Value,
    now: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO workflow_events (kind, instance_id, task_id, user_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(kind)
        .bind(instance_id)
        .bind(task_id)
        .bind(user_id)
        .bind(payload.to_string())
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}
