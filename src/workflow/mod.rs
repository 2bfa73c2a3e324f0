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

mod context;
mod deadlines;
mod store;
mod transitions;

pub use context::*;
pub use deadlines::*;
pub use store::*;
pub use transitions::*;

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
