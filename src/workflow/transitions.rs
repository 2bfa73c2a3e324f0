//! Moving an instance: entering a state (effects, new tasks, copies) and the compare-and-
//! swap move, and the applicant's withdrawal.

#[allow(unused_imports)]
use super::*;

/// Run the state's effects and, for a human step, create its tasks.
#[allow(clippy::too_many_arguments)]
pub(super) async fn enter_state(
    cat: &Catalog,
    conn: &mut crate::store::Conn,
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
        let hook = cat
            .hook(&e.hook)
            .ok_or_else(|| anyhow::anyhow!("unknown hook {}", e.hook))?;
        let mut hc = hooks::HookCtx {
            conn: &mut *conn,
            instance_id: inst.id,
            subject_type: inst.subject_type.clone(),
            subject: cat.subject(&inst.subject_type),
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
        fresh["subject"] = load_subject(cat, conn, &inst.subject_type, inst.subject_id).await?;
        refreshed = fresh;
        &refreshed
    };
    if let Some(task) = &st.task {
        let users =
            resolve_step_assignees(conn, &task.assignees, &task.distinct_from, inst, ctx).await?;
        // 委托代理: a user's deputy in force takes the task for them.
        let users =
            delegation::substitute(conn, users, &task.assignees, &task.distinct_from, inst, now)
                .await?;
        let due = match task.deadline {
            Some(dl) => Some(dl.after_in(&mut *conn, now).await?),
            None => None,
        };
        for (i, (uid, principal)) in users.iter().enumerate() {
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
            if let Some(p) = principal {
                delegation::mark(conn, id, *p).await?;
            }
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

/// Move the instance to `to`: compare-and-swap on (state, round), close the round's other
/// tasks, run the new state's effects and open its tasks.
#[allow(clippy::too_many_arguments)]
pub(super) async fn move_to(
    cat: &Catalog,
    conn: &mut crate::store::Conn,
    d: &Definition,
    inst: &mut Instance,
    to: &str,
    decided: Option<i64>,
    now: i64,
    ctx: &Value,
    actor_id: Option<i64>,
    action: &str,
) -> Result<()> {
    let terminal = d.state(to).is_some_and(|s| s.terminal);
    let status = if terminal { "completed" } else { "running" };
    // Both held back on PostgreSQL (`Conn::defer`); the instance's compare-and-swap still
    // aborts the move as `task_closed` if it lost.
    let advance = sqlx::query(
        "UPDATE workflow_instances SET state = $1, prev_state = $2, status = $3, round = round + 1, updated_at = $4 \
         WHERE id = $5 AND round = $6 AND state = $2",
    )
    .bind(to)
    .bind(&inst.state)
    .bind(status)
    .bind(now)
    .bind(inst.id)
    .bind(inst.round);
    conn.defer(
        advance,
        &[Touch::Update("workflow_instances")],
        Some(STILL_OPEN),
    )
    .await?;
    // The round's other open tasks are cancelled. The task just decided (`decided`, closed by
    // the decision) is left out by id, so the cancel can travel with its close.
    let decided = decided.unwrap_or(0);
    let cancel = sqlx::query("UPDATE workflow_tasks SET status = 'cancelled', decided_at = $1 WHERE instance_id = $2 AND round = $3 AND status IN ('open', 'waiting') AND id <> $4")
        .bind(now)
        .bind(inst.id)
        .bind(inst.round)
        .bind(decided);
    conn.defer(cancel, &[Touch::AllBut("workflow_tasks", decided)], None)
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
    // The applicant hears of the move once: a state whose effects already notify them of
    // this kind (`notify` with `event: decided`) is not told twice.
    let declared = d.state(to).is_some_and(|s| {
        s.effects.iter().any(|e| {
            e.hook == "notify" && e.with.get("event").and_then(Value::as_str) == Some(kind)
        })
    });
    if !declared {
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
    }
    enter_state(cat, conn, d, inst, to, inst.round, now, ctx).await
}

impl Engine {
    /// Withdraw (撤回) by the applicant, allowed while no one has decided in the current step.
    pub async fn withdraw(
        &self,
        user: &CurrentUser,
        instance_id: i64,
        comment: &str,
    ) -> Result<Outcome> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
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
        let d = self
            .definitions
            .version(&self.db, &inst.workflow_key, inst.version)
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
        let to = decide::transition_to(&spec, "withdraw")?;
        let ctx = expr_ctx(self.definitions.catalog(), &mut tx, &d, &inst, &Value::Null).await?;
        let from_state = inst.state.clone();
        move_to(
            self.definitions.catalog(),
            &mut tx,
            &d,
            &mut inst,
            &to,
            None,
            now,
            &ctx,
            Some(user.id),
            "withdraw",
        )
        .await?;
        audit::append(
            &mut tx,
            audit::Entry {
                instance_id: inst.id,
                at: now,
                actor_id: Some(user.id),
                workflow_key: &d.key,
                version: d.version,
                state: &from_state,
                action: "withdraw",
                to_state: &to,
                comment,
                data: "{}",
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Outcome {
            instance_id: inst.id,
            state: inst.state,
            status: inst.status,
        })
    }
}
