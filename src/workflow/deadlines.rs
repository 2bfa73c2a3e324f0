//! Deadlines (办理时限): reminders, overdue notices, escalation and automatic actions, run by
//! the `task-reminders` job; running it twice does nothing twice.

#[allow(unused_imports)]
use super::*;

impl Engine {
    /// Deadlines (时限): remind a day ahead, then at the deadline remind, escalate or act.
    /// Running it twice does nothing twice (`reminded` marks what was done).
    pub async fn process_deadlines(&self) -> Result<usize> {
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
                        expr_ctx(self.definitions.catalog(), &mut tx, &inst, &Value::Null).await?;
                    let users = resolve_assignees(
                        &mut tx,
                        &def::Assignees::Role(role.clone()),
                        &inst,
                        &ctx,
                    )
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
