//! Deadlines (办理时限): reminders, overdue notices, escalation and automatic actions, run by
//! the `task-reminders` job; running it twice does nothing twice.

#[allow(unused_imports)]
use super::*;

impl Engine {
    /// Deadlines (时限): remind a day ahead, then at the deadline remind, escalate or act.
    /// Running it twice does nothing twice (`reminded` marks what was done).
    pub async fn process_deadlines(&self) -> Result<usize> {
        let rerouted = self.reroute_ineligible().await?;
        Ok(rerouted + self.process_due().await?)
    }

    /// Re-route (改派) open tasks whose assignee no longer satisfies the step's rule (a role or
    /// permission taken away, a deactivated account): the task is cancelled and the users
    /// currently eligible who hold no task in the step get one. A task nobody else could take
    /// stays where it is (deciding it is still refused, `not_eligible`).
    pub async fn reroute_ineligible(&self) -> Result<usize> {
        let now = self.now();
        let open: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT t.id, t.instance_id FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id \
             WHERE t.status = 'open' AND i.status = 'running' AND t.round = i.round ORDER BY t.id",
        )
        .fetch_all(&self.db.pool)
        .await?;
        let mut moved = 0;
        for (task_id, instance_id) in open {
            // Cheap check on a read connection; only a stale task takes the write path.
            {
                let mut conn = self.db.acquire().await?;
                if self.still_eligible(&mut conn, task_id, instance_id).await? != Some(false) {
                    continue;
                }
            }
            let mut tx = self.db.begin_write().await?;
            lock_instance(&mut tx, instance_id).await?;
            if self.still_eligible(&mut tx, task_id, instance_id).await? != Some(false) {
                continue;
            }
            let task = load_task(&mut tx, task_id).await?;
            let inst = load_instance(&mut tx, instance_id).await?;
            let d = self
                .definitions
                .version(&self.db, &inst.workflow_key, inst.version)
                .await?;
            let Some(spec) = d.state(&inst.state).and_then(|s| s.task.clone()) else {
                continue;
            };
            let ctx =
                expr_ctx(self.definitions.catalog(), &mut tx, &d, &inst, &Value::Null).await?;
            let holders: BTreeSet<i64> = sqlx::query_as::<_, (i64,)>(
                "SELECT assignee_id FROM workflow_tasks WHERE instance_id = $1 AND round = $2",
            )
            .bind(inst.id)
            .bind(inst.round)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|r| r.0)
            .collect();
            let mut fresh: Vec<i64> =
                resolve_step_assignees(&mut tx, &spec.assignees, &spec.distinct_from, &inst, &ctx)
                    .await
                    .or_else(nobody_is_empty)?
                    .into_iter()
                    .filter(|u| !holders.contains(u))
                    .collect();
            if spec.mode == def::Mode::Sequential {
                fresh.truncate(1);
            }
            let (others,): (i64,) = sqlx::query_as(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND status = 'open' AND id <> $3",
            )
            .bind(inst.id)
            .bind(inst.round)
            .bind(task_id)
            .fetch_one(&mut *tx)
            .await?;
            let (waiting,): (i64,) = sqlx::query_as(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND status = 'waiting'",
            )
            .bind(inst.id)
            .bind(inst.round)
            .fetch_one(&mut *tx)
            .await?;
            let next_signer = fresh.is_empty()
                && others == 0
                && spec.mode == def::Mode::Sequential
                && waiting > 0;
            if fresh.is_empty() && others == 0 && !next_signer {
                tracing::warn!(
                    task_id,
                    instance_id,
                    "task's assignee is no longer eligible and nobody else can take it"
                );
                continue;
            }
            sqlx::query("UPDATE workflow_tasks SET status = 'cancelled', action = 'reroute', comment = $1, decided_at = $2 WHERE id = $3 AND status = 'open'")
                .bind("处理人已不具备办理资格，系统已改派")
                .bind(now)
                .bind(task_id)
                .execute(&mut *tx)
                .await?;
            for uid in fresh {
                let id = insert_task(
                    &mut tx,
                    inst.id,
                    &inst.state,
                    inst.round,
                    uid,
                    task.seq,
                    "open",
                    task.due_at,
                    now,
                )
                .await?;
                hooks::emit(
                    &mut tx,
                    "task_assigned",
                    inst.id,
                    Some(id),
                    Some(uid),
                    json!({"state": inst.state, "workflow": d.key, "rerouted_from": task_id}),
                    now,
                )
                .await?;
            }
            if next_signer {
                let next: (i64, i64) = sqlx::query_as("SELECT id, assignee_id FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND status = 'waiting' ORDER BY seq, id LIMIT 1")
                    .bind(inst.id).bind(inst.round).fetch_one(&mut *tx).await?;
                let due = match spec.deadline {
                    Some(dl) => Some(dl.after_in(&mut tx, now).await?),
                    None => None,
                };
                sqlx::query("UPDATE workflow_tasks SET status = 'open', due_at = $1 WHERE id = $2")
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
            }
            audit::append(
                &mut tx,
                audit::Entry {
                    instance_id: inst.id,
                    at: now,
                    actor_id: None,
                    workflow_key: &d.key,
                    version: d.version,
                    state: &inst.state,
                    action: "reroute",
                    to_state: &inst.state,
                    comment: "处理人已不具备办理资格，系统已改派",
                    data: &json!({"task_id": task_id, "from": task.assignee_id}).to_string(),
                },
            )
            .await?;
            tx.commit().await?;
            moved += 1;
        }
        Ok(moved)
    }

    /// Whether the open task's assignee may still decide it (`None`: the task or its step is
    /// gone).
    async fn still_eligible(
        &self,
        conn: &mut crate::store::Conn,
        task_id: i64,
        instance_id: i64,
    ) -> Result<Option<bool>> {
        let task = load_task(conn, task_id).await?;
        let inst = load_instance(conn, instance_id).await?;
        if task.status != "open" || inst.status != "running" || inst.round != task.round {
            return Ok(None);
        }
        let d = self
            .definitions
            .version(&self.db, &inst.workflow_key, inst.version)
            .await?;
        let Some(spec) = d.state(&inst.state).and_then(|s| s.task.as_ref()) else {
            return Ok(None);
        };
        let rule_user = task.on_behalf_of.unwrap_or(task.assignee_id);
        let ok = satisfies_rule(conn, &spec.assignees, &inst, rule_user).await?
            && !eligible_only(
                conn,
                &spec.assignees,
                &spec.distinct_from,
                &inst,
                vec![task.assignee_id],
            )
            .await?
            .is_empty();
        Ok(Some(ok))
    }

    /// Deadlines proper: reminders, overdue notices, escalation and automatic actions.
    async fn process_due(&self) -> Result<usize> {
        let now = self.now();
        let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT id, instance_id, due_at, reminded FROM workflow_tasks WHERE status = 'open' AND due_at IS NOT NULL AND due_at <= $1 AND reminded < 2 ORDER BY due_at, id",
        )
        .bind(now + 86_400)
        .fetch_all(&self.db.pool)
        .await?;
        let mut handled = 0;
        for (task_id, instance_id, due_at, reminded) in rows {
            let inst = get_instance(&self.db, instance_id).await?;
            let d = self
                .definitions
                .version(&self.db, &inst.workflow_key, inst.version)
                .await?;
            let Some(spec) = d.state(&inst.state).and_then(|s| s.task.clone()) else {
                continue;
            };
            let user: (i64,) =
                sqlx::query_as("SELECT assignee_id FROM workflow_tasks WHERE id = $1")
                    .bind(task_id)
                    .fetch_one(&self.db.pool)
                    .await?;
            if due_at > now {
                if reminded == 0 {
                    let mut tx = self.db.begin_write().await?;
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
                let mut tx = self.db.begin_write().await?;
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
                    let ctx =
                        expr_ctx(self.definitions.catalog(), &mut tx, &d, &inst, &Value::Null)
                            .await?;
                    // The applicant and a `distinct_from` state's approvers are left out here too.
                    let users = resolve_step_assignees(
                        &mut tx,
                        &def::Assignees::Role(role.clone()),
                        &spec.distinct_from,
                        &inst,
                        &ctx,
                    )
                    .await
                    .or_else(nobody_is_empty)?;
                    let due = match spec.deadline {
                        Some(dl) => Some(dl.after_in(&mut tx, now).await?),
                        None => None,
                    };
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
                self.act(
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
}

/// `no_assignee` as an empty list: a re-route or an escalation with nobody eligible leaves
/// the task as it is instead of failing the job.
fn nobody_is_empty(e: AppError) -> Result<Vec<i64>> {
    match e {
        AppError::Unprocessable {
            code: "no_assignee",
            ..
        } => Ok(Vec::new()),
        e => Err(e),
    }
}
