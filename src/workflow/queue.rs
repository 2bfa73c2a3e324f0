//! The reviewer queue (我的待办): open tasks filtered by flow and due date, sorted by due
//! date, paged; remaining time in working days; dates in Chinese; batch approval (批量同意)
//! of the tasks whose approval needs no form, each through `Engine::act`.

#[allow(unused_imports)]
use super::*;

use chrono::{DateTime, NaiveDate, TimeZone};
use chrono_tz::Asia::Shanghai;

/// Which open tasks by their deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DueFilter {
    #[default]
    All,
    /// Past their deadline.
    Overdue,
    /// Due within this many working days (overdue ones included).
    Within(i64),
    /// Without a deadline.
    None,
}

impl DueFilter {
    /// From the query parameter: `overdue`, `3` (working days), `none`, anything else: all.
    pub fn parse(s: &str) -> DueFilter {
        match s.trim() {
            "overdue" => DueFilter::Overdue,
            "none" => DueFilter::None,
            n => match n.parse::<i64>() {
                Ok(n) if (1..=60).contains(&n) => DueFilter::Within(n),
                _ => DueFilter::All,
            },
        }
    }
}

/// Order of the queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QueueSort {
    /// Earliest deadline first, tasks without one last.
    #[default]
    Due,
    Newest,
}

#[derive(Clone, Debug, Default)]
pub struct QueueFilter {
    /// A workflow key; empty: every flow.
    pub workflow: String,
    pub due: DueFilter,
    pub sort: QueueSort,
    /// 1-based.
    pub page: i64,
    pub per_page: i64,
}

/// What is left until a deadline, for people.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Remaining {
    /// `剩 3 个工作日`, `今日到期`, `已逾期 2 个工作日`.
    pub label: String,
    pub overdue: bool,
}

/// One row of the queue.
#[derive(Clone, Debug, Serialize)]
pub struct QueueItem {
    #[serde(flatten)]
    pub task: TaskView,
    /// The deadline in Chinese (`2026年12月8日 15:30`).
    pub due_label: Option<String>,
    pub remaining: Option<Remaining>,
    pub received_label: String,
    /// Approving needs no form (no `require`, no guard reading `form.`): it may be batch-approved.
    pub batch: bool,
}

/// A page of the queue and what its filters may choose from.
#[derive(Clone, Debug, Serialize)]
pub struct Queue {
    pub items: Vec<QueueItem>,
    pub total: i64,
    /// (key, title) of the flows the user has open tasks in.
    pub flows: Vec<(String, String)>,
}

/// `2026年12月8日 15:30` in Asia/Shanghai.
pub fn chinese_datetime(ts: i64) -> String {
    Shanghai
        .timestamp_opt(ts, 0)
        .single()
        .map(|t| t.format("%Y年%-m月%-d日 %H:%M").to_string())
        .unwrap_or_default()
}

/// An RFC 3339 instant as `chinese_datetime`; text that is not one is returned unchanged.
pub fn chinese_rfc3339(s: &str) -> String {
    DateTime::parse_from_rfc3339(s)
        .map(|t| chinese_datetime(t.timestamp()))
        .unwrap_or_else(|_| s.to_string())
}

fn shanghai_date(ts: i64) -> NaiveDate {
    Shanghai
        .timestamp_opt(ts, 0)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// Working days in `(from, to]`.
fn working_days_between(from: NaiveDate, to: NaiveDate) -> i64 {
    let mut n = 0;
    let mut d = from;
    // Bounded: deadlines lie within a few years at most.
    while d < to && n < 5_000 {
        d = d.succ_opt().unwrap_or(to);
        if crate::calendar::is_working_day(d) {
            n += 1;
        }
    }
    n
}

/// The time left until `due` at `now`, in working days of the Chinese calendar.
pub fn remaining(due: i64, now: i64) -> Remaining {
    let (today, due_day) = (shanghai_date(now), shanghai_date(due));
    if due < now {
        let late = working_days_between(due_day, today);
        let label = if late == 0 {
            "已逾期".to_string()
        } else {
            format!("已逾期 {late} 个工作日")
        };
        return Remaining {
            label,
            overdue: true,
        };
    }
    if due_day == today {
        let hours = (due - now) / 3600;
        let label = if hours >= 1 {
            format!("今日到期（剩 {hours} 小时）")
        } else {
            "今日到期（不足 1 小时）".to_string()
        };
        return Remaining {
            label,
            overdue: false,
        };
    }
    let left = working_days_between(today, due_day);
    let label = if left == 0 {
        "剩不足 1 个工作日".to_string()
    } else {
        format!("剩 {left} 个工作日")
    };
    Remaining {
        label,
        overdue: false,
    }
}

const TASK_COLS: &str = "t.id, t.instance_id, t.state, t.due_at, t.status, t.action, t.comment, t.decided_at, t.created_at, i.workflow_key, i.version, i.subject_type, i.subject_id, i.state AS istate";

impl Engine {
    /// A page of the user's open tasks.
    pub async fn queue(&self, user_id: i64, f: &QueueFilter) -> Result<Queue> {
        let now = self.now();
        let mut conds = vec!["t.assignee_id = $1".to_string(), "t.status = 'open'".into()];
        let bound = match f.due {
            DueFilter::All => None,
            DueFilter::Overdue => {
                conds.push("t.due_at IS NOT NULL AND t.due_at < $3".into());
                Some(now)
            }
            DueFilter::Within(n) => {
                conds.push("t.due_at IS NOT NULL AND t.due_at <= $3".into());
                Some(def::Duration::WorkingDays(n).after(now))
            }
            DueFilter::None => {
                conds.push("t.due_at IS NULL".into());
                None
            }
        };
        let flow = f.workflow.trim();
        if !flow.is_empty() {
            conds.push("i.workflow_key = $2".into());
        } else {
            // Keeps $2 bound on both backends.
            conds.push("$2 = $2".into());
        }
        if bound.is_none() {
            conds.push("$3 = $3".into());
        }
        let filter = conds.join(" AND ");
        let order = match f.sort {
            QueueSort::Due => "CASE WHEN t.due_at IS NULL THEN 1 ELSE 0 END, t.due_at, t.id",
            QueueSort::Newest => "t.id DESC",
        };
        let per_page = f.per_page.clamp(1, 100);
        let page = f.page.clamp(1, 10_000);
        let from = "FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id";
        let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(COUNT(*) AS BIGINT) {from} WHERE {filter}"
        )))
        .bind(user_id)
        .bind(flow)
        .bind(bound.unwrap_or(0))
        .fetch_one(&self.db.pool)
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLS} {from} WHERE {filter} ORDER BY {order} LIMIT {per_page} OFFSET {}",
            (page - 1) * per_page
        )))
        .bind(user_id)
        .bind(flow)
        .bind(bound.unwrap_or(0))
        .fetch_all(&self.db.pool)
        .await?;
        let mut items = Vec::new();
        for r in &rows {
            let task = self.task_view(r).await?;
            let due: Option<i64> = r.get("due_at");
            let created: i64 = r.get("created_at");
            let batch = self.approve_needs_no_form(&task).await?;
            items.push(QueueItem {
                due_label: due.map(chinese_datetime),
                remaining: due.map(|d| remaining(d, now)),
                received_label: chinese_datetime(created),
                batch,
                task,
            });
        }
        let keys: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT i.workflow_key FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id \
             WHERE t.assignee_id = $1 AND t.status = 'open' ORDER BY i.workflow_key",
        )
        .bind(user_id)
        .fetch_all(&self.db.pool)
        .await?;
        let flows = keys
            .into_iter()
            .map(|(k,)| {
                let title = self
                    .definitions
                    .get(&k)
                    .map(|d| d.title.clone())
                    .unwrap_or_else(|| k.clone());
                (k, title)
            })
            .collect();
        Ok(Queue {
            items,
            total,
            flows,
        })
    }

    /// Whether the task offers 同意 and approving needs no form data.
    async fn approve_needs_no_form(&self, task: &TaskView) -> Result<bool> {
        if !task.actions.iter().any(|a| a == "approve") {
            return Ok(false);
        }
        let inst = get_instance(&self.db, task.instance_id).await?;
        let d = self
            .definitions
            .version(&self.db, &inst.workflow_key, inst.version)
            .await?;
        Ok(d.state(&task.step)
            .and_then(|s| s.task.as_ref())
            .is_some_and(|t| {
                t.on_decision.is_empty() && t.on.get("approve").is_some_and(|tr| !tr.needs_form())
            }))
    }

    /// 批量同意: approve each of the user's `task_ids` with one comment, each through
    /// `act` (its own transaction, guards and checks). Tasks that are not the user's, not
    /// open or need a form are skipped with a reason; one failing never undoes the others.
    pub async fn batch_approve(
        &self,
        user: &CurrentUser,
        task_ids: &[i64],
        comment: &str,
    ) -> Result<BatchResult> {
        let mut out = BatchResult::default();
        let mine = self.tasks_for(user.id, false).await?;
        for id in task_ids {
            let Some(task) = mine.iter().find(|t| t.id == *id) else {
                out.skipped.push((*id, "该待办已处理或不属于您".into()));
                continue;
            };
            if !self.approve_needs_no_form(task).await? {
                out.skipped
                    .push((*id, "此事项须在办理页填写表单，不能批量同意".into()));
                continue;
            }
            let decision = Decision {
                action: "approve".into(),
                comment: comment.to_string(),
                data: json!({}),
            };
            match self.act(Some(user), *id, decision).await {
                Ok(_) => out.approved.push(*id),
                Err(
                    e @ (AppError::Conflict { .. }
                    | AppError::Unprocessable { .. }
                    | AppError::Validation { .. }
                    | AppError::Forbidden { .. }),
                ) => out.skipped.push((*id, e.to_string())),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// What a batch approval did: approved task ids, and skipped ones with the reason.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BatchResult {
    pub approved: Vec<i64>,
    pub skipped: Vec<(i64, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    #[test]
    fn remaining_time_counts_working_days_and_marks_overdue() {
        // Friday 27 Nov 2026 10:00 → Wednesday 2 Dec: Mon, Tue, Wed.
        let now = at("2026-11-27T10:00:00+08:00");
        let r = remaining(at("2026-12-02T10:00:00+08:00"), now);
        assert_eq!(r.label, "剩 3 个工作日");
        assert!(!r.overdue);
        let r = remaining(at("2026-11-27T15:30:00+08:00"), now);
        assert_eq!(r.label, "今日到期（剩 5 小时）");
        // Due Wednesday 25 Nov, now Friday 27: Thu and Fri late.
        let r = remaining(at("2026-11-25T10:00:00+08:00"), now);
        assert_eq!(r.label, "已逾期 2 个工作日");
        assert!(r.overdue);
        assert_eq!(
            chinese_datetime(at("2026-12-08T15:30:42+08:00")),
            "2026年12月8日 15:30"
        );
        assert_eq!(
            chinese_rfc3339("2026-12-08T15:30:42+08:00"),
            "2026年12月8日 15:30"
        );
        assert_eq!(DueFilter::parse("3"), DueFilter::Within(3));
        assert_eq!(DueFilter::parse("overdue"), DueFilter::Overdue);
        assert_eq!(DueFilter::parse("x"), DueFilter::All);
    }
}
