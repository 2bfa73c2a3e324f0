//! Read-side queries of the engine for the API and the console (待办、已办、我发起的).

#[allow(unused_imports)]
use super::*;
// ---- queries for the API and the console -------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct TaskView {
    pub id: i64,
    pub instance_id: i64,
    pub workflow: String,
    pub workflow_title: String,
    pub step: String,
    pub step_title: String,
    pub subject: Value,
    /// The subject's name for people (单位名称, 仪器名称 型号 …).
    pub subject_label: String,
    pub actions: Vec<String>,
    pub due_at: Option<String>,
    pub status: String,
    pub action: Option<String>,
    pub comment: String,
    pub decided_at: Option<String>,
    pub instance_state: String,
}

impl Engine {
    /// The user's tasks: open ones (`done = false`) or the ones they decided.
    pub async fn tasks_for(&self, user_id: i64, done: bool) -> Result<Vec<TaskView>> {
        let filter = if done {
            "t.status IN ('approved', 'rejected', 'returned', 'transferred')"
        } else {
            "t.status = 'open'"
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t.id, t.instance_id, t.state, t.due_at, t.status, t.action, t.comment, t.decided_at, i.workflow_key, i.version, i.subject_type, i.subject_id, i.state AS istate \
             FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id WHERE t.assignee_id = $1 AND {filter} ORDER BY t.id DESC LIMIT 200"
        )))
        .bind(user_id)
        .fetch_all(&self.db.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            out.push(self.task_view(&r).await?);
        }
        Ok(out)
    }

    /// One task row (the columns `tasks_for` selects) as a `TaskView`.
    pub(super) async fn task_view(&self, r: &sqlx::any::AnyRow) -> Result<TaskView> {
        let key: String = r.get("workflow_key");
        let d = self
            .definitions
            .version(&self.db, &key, r.get("version"))
            .await?;
        let step: String = r.get("state");
        let actions = d
            .state(&step)
            .and_then(|s| s.task.as_ref())
            .map(|t| {
                t.actions
                    .iter()
                    .filter(|a| *a != "withdraw")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let subject_type: String = r.get("subject_type");
        let subject_id: i64 = r.get("subject_id");
        let mut conn = self.db.acquire().await?;
        let subject_label = self
            .definitions
            .catalog()
            .label(&mut conn, &subject_type, subject_id)
            .await?;
        drop(conn);
        Ok(TaskView {
            subject_label,
            id: r.get("id"),
            instance_id: r.get("instance_id"),
            workflow_title: d.title.clone(),
            step_title: d.state_title(&step),
            workflow: key,
            step,
            subject: json!({"type": r.get::<String, _>("subject_type"), "id": r.get::<i64, _>("subject_id")}),
            actions,
            due_at: r.get::<Option<i64>, _>("due_at").map(crate::clock::rfc3339),
            status: r.get("status"),
            action: r.get("action"),
            comment: r.get("comment"),
            decided_at: r
                .get::<Option<i64>, _>("decided_at")
                .map(crate::clock::rfc3339),
            instance_state: r.get("istate"),
        })
    }
}

/// Instances a user started, newest first.
pub async fn started_by(db: &Db, user_id: i64) -> Result<Vec<Instance>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {INSTANCE_COLS} FROM workflow_instances WHERE applicant_id = $1 ORDER BY id DESC LIMIT 200")))
        .bind(user_id)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(instance_from).collect())
}

#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    pub step: String,
    pub action: String,
    pub actor: Option<String>,
    #[serde(skip)]
    pub actor_id: Option<i64>,
    pub at: String,
    pub comment: String,
    pub to_state: String,
    /// The user a deputy decided for (委托代理: "代 X 审批").
    pub on_behalf_of: Option<String>,
}

/// The instance's decisions, oldest first (from the audit log).
pub async fn history(db: &Db, instance_id: i64) -> Result<Vec<HistoryEntry>> {
    let rows = sqlx::query(
        "SELECT a.state, a.action, a.at, a.comment, a.to_state, a.actor_id, u.display_name, \
         (SELECT MIN(p.display_name) FROM workflow_tasks t JOIN users p ON p.id = t.on_behalf_of \
          WHERE t.instance_id = a.instance_id AND t.state = a.state AND t.assignee_id = a.actor_id AND t.decided_at = a.at) AS on_behalf \
         FROM workflow_audit a LEFT JOIN users u ON u.id = a.actor_id \
         WHERE a.instance_id = $1 ORDER BY a.seq",
    )
    .bind(instance_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| HistoryEntry {
            step: r.get("state"),
            action: r.get("action"),
            actor: r.get("display_name"),
            actor_id: r.get("actor_id"),
            at: crate::clock::rfc3339(r.get("at")),
            comment: r.get("comment"),
            to_state: r.get("to_state"),
            on_behalf_of: r.get("on_behalf"),
        })
        .collect())
}

impl Engine {
    /// The history as `viewer` may see it: on steps whose tasks are `anonymous` (experts'
    /// reviews) a decider's name is shown only to the decider and to auditors.
    pub async fn history_for(
        &self,
        inst: &Instance,
        viewer: &CurrentUser,
    ) -> Result<Vec<HistoryEntry>> {
        let d = self
            .definitions
            .version(&self.db, &inst.workflow_key, inst.version)
            .await?;
        let mut entries = history(&self.db, inst.id).await?;
        if !viewer.can(crate::auth::Permission::AuditView) {
            for e in &mut entries {
                let anonymous = d
                    .state(&e.step)
                    .and_then(|s| s.task.as_ref())
                    .is_some_and(|t| t.anonymous);
                if anonymous && e.actor_id != Some(viewer.id) {
                    e.actor = Some("评审专家".into());
                }
            }
        }
        Ok(entries)
    }
}

/// Whether the user may look at an instance: applicant, anyone with a task on it, members
/// of its unit, or auditors.
pub async fn may_view(db: &Db, user: &CurrentUser, inst: &Instance) -> Result<bool> {
    if inst.applicant_id == user.id
        || user.can(crate::auth::Permission::AuditView)
        || inst.unit_id.is_some_and(|u| user.acts_for(u, false))
    {
        return Ok(true);
    }
    let (n,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_tasks WHERE instance_id = $1 AND assignee_id = $2")
        .bind(inst.id)
        .bind(user.id)
        .fetch_one(&db.pool)
        .await?;
    Ok(n > 0)
}
