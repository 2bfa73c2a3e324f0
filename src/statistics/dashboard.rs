//! The platform admin's 工作台 figures: open tasks by flow, overdue tasks, and this month
//! against last month.

use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::Row;

use crate::{error::Result, store::Db};

#[derive(Debug, Clone, Serialize)]
pub struct FlowPending {
    pub workflow_key: String,
    pub open: i64,
    pub overdue: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverdueTask {
    pub task_id: i64,
    pub instance_id: i64,
    pub workflow_key: String,
    pub state: String,
    pub assignee: String,
    pub due_at: i64,
}

/// One figure of this month against last month.
#[derive(Debug, Clone, Serialize)]
pub struct MonthFigure {
    pub label: &'static str,
    pub unit: &'static str,
    pub this_month: Decimal,
    pub last_month: Decimal,
    /// Change in percent, one place; `None` when last month was 0.
    pub change: Option<Decimal>,
}

/// Open tasks of running instances by flow, with how many are past their deadline.
pub async fn pending_by_flow(db: &Db, now: i64) -> Result<Vec<FlowPending>> {
    let rows = sqlx::query(
        "SELECT i.workflow_key, CAST(COUNT(*) AS BIGINT) AS n, \
         CAST(COALESCE(SUM(CASE WHEN t.due_at IS NOT NULL AND t.due_at < $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS late \
         FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id \
         WHERE t.status = 'open' AND i.status = 'running' AND t.round = i.round GROUP BY i.workflow_key ORDER BY n DESC, i.workflow_key",
    )
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| FlowPending {
            workflow_key: r.get("workflow_key"),
            open: r.get("n"),
            overdue: r.get("late"),
        })
        .collect())
}

/// The 20 open tasks longest past their deadline.
pub async fn overdue_tasks(db: &Db, now: i64) -> Result<Vec<OverdueTask>> {
    let rows = sqlx::query(
        "SELECT t.id, t.instance_id, i.workflow_key, t.state, u.display_name, t.due_at FROM workflow_tasks t \
         JOIN workflow_instances i ON i.id = t.instance_id JOIN users u ON u.id = t.assignee_id \
         WHERE t.status = 'open' AND i.status = 'running' AND t.round = i.round AND t.due_at IS NOT NULL AND t.due_at < $1 \
         ORDER BY t.due_at, t.id LIMIT 20",
    )
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| OverdueTask {
            task_id: r.get("id"),
            instance_id: r.get("instance_id"),
            workflow_key: r.get("workflow_key"),
            state: r.get("state"),
            assignee: r.get("display_name"),
            due_at: r.get("due_at"),
        })
        .collect())
}

/// Unix seconds of the first day of a month in Asia/Shanghai.
fn month_start(year: i32, month: u32) -> i64 {
    use chrono::TimeZone;
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

/// Bookings made, services completed, their hours and income, instruments joined and
/// vouchers redeemed: this month so far against the whole of last month.
pub async fn month_on_month(db: &Db, today: chrono::NaiveDate) -> Result<Vec<MonthFigure>> {
    use chrono::Datelike;
    let (y, m) = (today.year(), today.month());
    let (py, pm) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let (last, this, next) = (month_start(py, pm), month_start(y, m), month_start(ny, nm));
    let (ld, td, nd) = (
        format!("{py:04}-{pm:02}-01"),
        format!("{y:04}-{m:02}-01"),
        format!("{ny:04}-{nm:02}-01"),
    );
    async fn ts_sum(db: &Db, sql: &'static str, a: i64, b: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(sql)
            .bind(a)
            .bind(b)
            .fetch_one(&db.pool)
            .await?)
    }
    let specs: [(&'static str, &'static str, &'static str, i64); 5] = [
        (
            "新增预约",
            "次",
            "SELECT CAST(COUNT(*) AS BIGINT) FROM bookings WHERE created_at >= $1 AND created_at < $2",
            1,
        ),
        (
            "完成服务",
            "次",
            "SELECT CAST(COUNT(*) AS BIGINT) FROM service_records WHERE completed_at >= $1 AND completed_at < $2 AND review_status = 'approved'",
            1,
        ),
        (
            "服务机时",
            "小时",
            "SELECT CAST(COALESCE(SUM(service_hours_x100), 0) AS BIGINT) FROM service_records WHERE completed_at >= $1 AND completed_at < $2 AND review_status = 'approved'",
            100,
        ),
        (
            "服务收入",
            "元",
            "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM service_records WHERE completed_at >= $1 AND completed_at < $2 AND review_status = 'approved'",
            100,
        ),
        (
            "创新券兑付",
            "元",
            "SELECT CAST(COALESCE(SUM(total_fen), 0) AS BIGINT) FROM redemptions WHERE status = 'approved' AND decided_at >= $1 AND decided_at < $2",
            100,
        ),
    ];
    let mut out = Vec::new();
    let fig = |label, unit, t: Decimal, l: Decimal| MonthFigure {
        label,
        unit,
        this_month: t,
        last_month: l,
        change: (!l.is_zero()).then(|| ((t - l) * Decimal::ONE_HUNDRED / l).round_dp(1)),
    };
    for (label, unit, sql, scale) in specs {
        let t = ts_sum(db, sql, this, next).await?;
        let l = ts_sum(db, sql, last, this).await?;
        let d = |v: i64| {
            if scale == 100 {
                Decimal::new(v, 2)
            } else {
                Decimal::from(v)
            }
        };
        out.push(fig(label, unit, d(t), d(l)));
    }
    let joined = |a: String, b: String| async move {
        let n: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM instruments WHERE review_status = 'approved' AND joined_on >= $1 AND joined_on < $2",
        )
        .bind(a)
        .bind(b)
        .fetch_one(&db.pool)
        .await?;
        Ok::<_, crate::error::AppError>(n)
    };
    let t = joined(td.clone(), nd).await?;
    let l = joined(ld, td).await?;
    out.push(fig(
        "新入网仪器",
        "台/套",
        Decimal::from(t),
        Decimal::from(l),
    ));
    Ok(out)
}
