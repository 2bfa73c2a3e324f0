//! Deciding a task (审批决定): `Engine::act` as named steps — open the step, check the action,
//! close the task (the compare-and-swap), run the step's `on_decision` hooks, check the
//! transition's requirement, find where the instance goes, then audit and move.

#[allow(unused_imports)]
use super::*;

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

/// The open task being decided, its instance and the definition version it runs.
struct OpenStep {
    task_id: i64,
    task: TaskRow,
    inst: Instance,
    def: Arc<Definition>,
}

impl OpenStep {
    fn spec(&self) -> Result<&def::Task> {
        let st = self
            .def
            .state(&self.inst.state)
            .ok_or_else(|| anyhow::anyhow!("state {} missing from definition", self.inst.state))?;
        Ok(st
            .task
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no task in state {}", self.inst.state))?)
    }
}

impl Engine {
    /// Act on a task as `actor` (None: the engine itself, e.g. at a deadline).
    pub async fn act(
        &self,
        actor: Option<&CurrentUser>,
        task_id: i64,
        decision: Decision,
    ) -> Result<Outcome> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let mut step = self.open_step(&mut tx, actor, task_id).await?;
        let spec = step.spec()?.clone();
        let action = permitted_action(&spec, actor, &decision.action)?;
        if let Some(u) = actor {
            // A deputy decides under the assignee rule of whom the task is for (委托代理).
            check_decider(&mut tx, &spec, &step.inst, u, step.task.on_behalf_of).await?;
        }
        let form = if decision.data.is_null() {
            json!({})
        } else {
            decision.data.clone()
        };
        let actor_id = actor.map(|u| u.id);
        close_task(&mut tx, task_id, &action, &decision.comment, &form, now).await?;
        run_decision_hooks(
            self.definitions.catalog(),
            &mut tx,
            &step,
            &spec,
            actor_id,
            &action,
            &decision,
            &form,
            now,
        )
        .await?;
        let cat = self.definitions.catalog();
        let mut ctx = expr_ctx(cat, &mut tx, &step.def, &step.inst, &form).await?;
        // The deciding task, for rules like "only after the notice period" (公示期满).
        ctx["task"] = json!({
            "due_at": step.task.due_at,
            "deadline_passed": step.task.due_at.is_some_and(|d| d <= now),
        });
        check_requirement(&spec, &action, &ctx)?;
        let target = match action.as_str() {
            "comment" => None,
            "transfer" | "add_signer" => {
                add_assignee(&mut tx, &step, &spec, &action, &form, now).await?;
                None
            }
            "reject" => reject_target(&mut tx, &spec, &step.inst).await?,
            "withdraw" => Some(transition_to(&spec, "withdraw")?),
            "return" => Some(return_target(&spec, &step.inst)?),
            "approve" => approve_target(&mut tx, &step, &spec, &ctx, now).await?,
            other => {
                return Err(AppError::unprocessable(
                    "action_not_allowed",
                    format!("未知操作 {other}"),
                ));
            }
        };
        let from_state = step.inst.state.clone();
        let to_state = target.clone().unwrap_or_else(|| from_state.clone());
        if let Some(to) = target {
            let d = step.def.clone();
            move_to(
                cat,
                &mut tx,
                &d,
                &mut step.inst,
                &to,
                Some(task_id),
                now,
                &ctx,
                actor_id,
                &action,
            )
            .await?;
        }
        // The audit head is the one row every decision writes: appended last, it is held
        // only for the append and the commit (on PostgreSQL only inside COMMIT: `audit`).
        audit::append(
            &mut tx,
            audit::Entry {
                instance_id: step.inst.id,
                at: now,
                actor_id,
                workflow_key: &step.def.key,
                version: step.def.version,
                state: &from_state,
                action: &action,
                to_state: &to_state,
                comment: &decision.comment,
                data: &form.to_string(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Outcome {
            instance_id: step.inst.id,
            state: step.inst.state,
            status: step.inst.status,
        })
    }

    /// Lock the instance, load the task, and check it is the actor's and still open in the
    /// instance's current round.
    async fn open_step(
        &self,
        tx: &mut crate::store::Conn,
        actor: Option<&CurrentUser>,
        task_id: i64,
    ) -> Result<OpenStep> {
        // Lock order, everywhere: the instance row, then its tasks, then the audit head. Two
        // reviewers deciding sibling tasks at once then queue instead of deadlocking.
        let (task, inst) = lock_task_and_instance(tx, task_id)
            .await?
            .ok_or(AppError::NotFound)?;
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
        if inst.status != "running" || inst.round != task.round {
            return Err(task_closed());
        }
        let def = self
            .definitions
            .version(&self.db, &inst.workflow_key, inst.version)
            .await?;
        Ok(OpenStep {
            task_id,
            task,
            inst,
            def,
        })
    }
}

/// The trimmed action, if the step offers it. Only the engine (at a deadline) withdraws
/// through a task; applicants use `withdraw`.
fn permitted_action(spec: &def::Task, actor: Option<&CurrentUser>, action: &str) -> Result<String> {
    let action = action.trim().to_string();
    if (action == "withdraw" && actor.is_some()) || !spec.actions.contains(&action) {
        return Err(AppError::unprocessable(
            "action_not_allowed",
            format!("此环节不允许“{}”操作", def::action_label(&action)),
        ));
    }
    Ok(action)
}

/// Separation of duties at decision time, also for email links (they come through `act`):
/// the actor must still satisfy the step's assignee rule (a revoked permission or a
/// deactivated account → 403 `not_eligible`), must not be the applicant outside the
/// applicant's own step (`not_eligible`), and must not have approved a `distinct_from` state
/// of this instance (403 `same_decider`).
async fn check_decider(
    tx: &mut crate::store::Conn,
    spec: &def::Task,
    inst: &Instance,
    user: &CurrentUser,
    on_behalf_of: Option<i64>,
) -> Result<()> {
    let user_id = user.id;
    let own_step = matches!(spec.assignees, def::Assignees::Applicant(_));
    // A rule on the decider's own global roles or permissions is read from the account as
    // this request loaded it (`auth::load_user`: active accounts only, roles and grants read
    // fresh for every request), which is what the rule's query would find; other rules, and a
    // deputy's principal, are asked of the database.
    let satisfied = match (&spec.assignees, on_behalf_of) {
        (def::Assignees::Permission(p), None) => user.global_permissions.contains(p),
        (def::Assignees::Role(r), None) => user.roles.contains(r),
        (rule, principal) => satisfies_rule(tx, rule, inst, principal.unwrap_or(user_id)).await?,
    };
    if (!own_step && user_id == inst.applicant_id) || !satisfied {
        return Err(AppError::Forbidden {
            code: "not_eligible",
        });
    }
    if approvers_in(tx, inst.id, &spec.distinct_from)
        .await?
        .contains(&user_id)
    {
        return Err(AppError::Forbidden {
            code: "same_decider",
        });
    }
    Ok(())
}

/// Close the task with the decision first: this UPDATE is the compare-and-swap for
/// concurrent deciders. Comments and add-signer leave it open.
async fn close_task(
    conn: &mut crate::store::Conn,
    task_id: i64,
    action: &str,
    comment: &str,
    form: &Value,
    now: i64,
) -> Result<()> {
    let closing_status = match action {
        "approve" => "approved",
        "reject" => "rejected",
        "return" => "returned",
        "transfer" => "transferred",
        "withdraw" => "withdrawn",
        _ => return Ok(()),
    };
    // Held back on PostgreSQL (`Conn::defer`): a lost race aborts the decision as `task_closed`
    // when the transaction next speaks to the database.
    let close = sqlx::query("UPDATE workflow_tasks SET status = $1, action = $2, comment = $3, form = $4, decided_at = $5 WHERE id = $6 AND status = 'open'")
        .bind(closing_status)
        .bind(action)
        .bind(comment)
        .bind(form.to_string())
        .bind(now)
        .bind(task_id);
    conn.defer(
        close,
        &[Touch::Row("workflow_tasks", task_id)],
        Some(STILL_OPEN),
    )
    .await?;
    Ok(())
}

/// The step's `on_decision` hooks, in order, inside the decision's transaction.
#[allow(clippy::too_many_arguments)]
async fn run_decision_hooks(
    cat: &Catalog,
    conn: &mut crate::store::Conn,
    step: &OpenStep,
    spec: &def::Task,
    actor_id: Option<i64>,
    action: &str,
    decision: &Decision,
    form: &Value,
    now: i64,
) -> Result<()> {
    for e in &spec.on_decision {
        let hook = cat
            .hook(&e.hook)
            .ok_or_else(|| anyhow::anyhow!("unknown hook {}", e.hook))?;
        let mut hc = hooks::HookCtx {
            conn: &mut *conn,
            instance_id: step.inst.id,
            subject_type: step.inst.subject_type.clone(),
            subject: cat.subject(&step.inst.subject_type),
            subject_id: step.inst.subject_id,
            applicant_id: step.inst.applicant_id,
            state: step.inst.state.clone(),
            with: e.with.clone(),
            now,
            today: today(now),
            dry_run: false,
            decision: Some(hooks::DecisionInfo {
                task_id: step.task_id,
                round: step.inst.round,
                assignee_id: step.task.assignee_id,
                actor_id,
                action: action.to_string(),
                comment: decision.comment.clone(),
                form: form.clone(),
            }),
        };
        (hook.run)(&mut hc).await?;
    }
    Ok(())
}

/// The transition's `require` expression, refused with its message when false.
fn check_requirement(spec: &def::Task, action: &str, ctx: &Value) -> Result<()> {
    if let Some(tr) = spec.on.get(action)
        && let Some(req) = &tr.require
        && !eval(req, ctx)?.is_true()
    {
        return Err(AppError::unprocessable(
            "form_incomplete",
            tr.require_message
                .clone()
                .unwrap_or_else(|| format!("填写的内容不满足要求：{req}")),
        ));
    }
    Ok(())
}

/// 转办 / 加签: a new task for the named user (recusal and duplicates checked). In a
/// sequence an added signer comes right after the current one.
async fn add_assignee(
    tx: &mut crate::store::Conn,
    step: &OpenStep,
    spec: &def::Task,
    action: &str,
    form: &Value,
    now: i64,
) -> Result<()> {
    let inst = &step.inst;
    let uid = user_by_ref(tx, form).await?;
    if uid == inst.applicant_id && !matches!(spec.assignees, def::Assignees::Applicant(_)) {
        return Err(AppError::field(
            "user",
            "该用户是本事项的申请人，不能审核自己的申请",
        ));
    }
    if recuse(tx, vec![uid], inst.unit_id, inst.created_at)
        .await?
        .is_empty()
    {
        return Err(AppError::field(
            "user",
            "该用户是本单位成员，按回避规则不能审核",
        ));
    }
    if !satisfies_rule(tx, &spec.assignees, inst, uid).await? {
        return Err(AppError::field("user", "该用户不具备办理此环节的权限"));
    }
    if approvers_in(tx, inst.id, &spec.distinct_from)
        .await?
        .contains(&uid)
    {
        return Err(AppError::field(
            "user",
            "该用户已审核过前一环节，此环节须由另一人办理",
        ));
    }
    let open: Option<(i64,)> = sqlx::query_as("SELECT id FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND assignee_id = $3 AND status IN ('open', 'waiting')")
        .bind(inst.id).bind(inst.round).bind(uid).fetch_optional(&mut *tx).await?;
    if open.is_some() {
        return Err(AppError::field("user", "该用户已有此事项的待办"));
    }
    let seq = if action == "transfer" {
        step.task.seq
    } else {
        step.task.seq + 1
    };
    let (status, due) = if action == "add_signer" && spec.mode == def::Mode::Sequential {
        sqlx::query("UPDATE workflow_tasks SET seq = seq + 1 WHERE instance_id = $1 AND round = $2 AND status = 'waiting'")
            .bind(inst.id).bind(inst.round).execute(&mut *tx).await?;
        ("waiting", None)
    } else {
        ("open", step.task.due_at)
    };
    let new_id = insert_task(
        tx,
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
            tx,
            "task_assigned",
            inst.id,
            Some(new_id),
            Some(uid),
            json!({"state": inst.state, "workflow": step.def.key}),
            now,
        )
        .await?;
    }
    Ok(())
}

/// A rejection ends the step unless a quorum step can still reach its approvals.
async fn reject_target(
    tx: &mut crate::store::Conn,
    spec: &def::Task,
    inst: &Instance,
) -> Result<Option<String>> {
    match quorum_needed(tx, spec, inst).await? {
        Some(n) => {
            let (approved, open) = counts(tx, inst).await?;
            if approved + open < n {
                Ok(Some(transition_to(spec, "reject")?))
            } else {
                Ok(None)
            }
        }
        None => Ok(Some(transition_to(spec, "reject")?)),
    }
}

/// 退回: the transition's target, else the previous state.
fn return_target(spec: &def::Task, inst: &Instance) -> Result<String> {
    match spec.on.get("return") {
        Some(t) => Ok(t.to.clone()),
        None => inst.prev_state.clone().ok_or_else(|| {
            AppError::unprocessable("nowhere_to_return", "这是第一个环节，无处退回")
        }),
    }
}

/// An approval finishes the step when the step's mode says so (any / all / sequential /
/// quorum); a sequence opens its next signer; a quorum that can no longer be reached rejects.
async fn approve_target(
    tx: &mut crate::store::Conn,
    step: &OpenStep,
    spec: &def::Task,
    ctx: &Value,
    now: i64,
) -> Result<Option<String>> {
    let inst = &step.inst;
    let tr = spec
        .on
        .get("approve")
        .ok_or_else(|| anyhow::anyhow!("approve without target"))?;
    // One approval finishes an `any` step: nothing to count.
    let (approved, open, waiting) = if spec.mode == def::Mode::Any {
        (0, 0, (0,))
    } else {
        let (approved, open) = counts(tx, inst).await?;
        let waiting: (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND status = 'waiting'")
            .bind(inst.id).bind(inst.round).fetch_one(&mut *tx).await?;
        (approved, open, waiting)
    };
    let finished = match spec.mode {
        def::Mode::Any => true,
        def::Mode::All => open == 0 && waiting.0 == 0,
        def::Mode::Sequential => {
            if waiting.0 > 0 {
                open_next_signer(tx, step, spec, now).await?;
                false
            } else {
                open == 0
            }
        }
        def::Mode::MinApprovals(_) | def::Mode::Ratio(_) => {
            let n = quorum_needed(tx, spec, inst).await?.unwrap_or(1);
            approved >= n
        }
    };
    if finished {
        check_guard(tr, ctx)?;
        Ok(Some(tr.to.clone()))
    } else if matches!(spec.mode, def::Mode::MinApprovals(_) | def::Mode::Ratio(_)) && open == 0 {
        // Everyone decided and the quorum was not reached.
        Ok(Some(transition_to(spec, "reject")?))
    } else {
        Ok(None)
    }
}

/// In a sequential step, open the next waiting signer's task.
async fn open_next_signer(
    tx: &mut crate::store::Conn,
    step: &OpenStep,
    spec: &def::Task,
    now: i64,
) -> Result<()> {
    let inst = &step.inst;
    let due = match spec.deadline {
        Some(dl) => Some(dl.after_in(&mut *tx, now).await?),
        None => None,
    };
    let next: (i64, i64) = sqlx::query_as("SELECT id, assignee_id FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND status = 'waiting' ORDER BY seq, id LIMIT 1")
        .bind(inst.id).bind(inst.round).fetch_one(&mut *tx).await?;
    sqlx::query("UPDATE workflow_tasks SET status = 'open', due_at = $1 WHERE id = $2")
        .bind(due)
        .bind(next.0)
        .execute(&mut *tx)
        .await?;
    hooks::emit(
        tx,
        "task_assigned",
        inst.id,
        Some(next.0),
        Some(next.1),
        json!({"state": inst.state, "workflow": step.def.key}),
        now,
    )
    .await
}

pub(super) fn transition_to(spec: &def::Task, action: &str) -> Result<String> {
    spec.on
        .get(action)
        .map(|t| t.to.clone())
        .ok_or_else(|| anyhow::anyhow!("no transition for {action}").into())
}
