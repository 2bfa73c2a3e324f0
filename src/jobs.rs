//! Scheduled jobs (定时任务). A job is a plain function of the platform state and an
//! "as of" date; each run is recorded in `job_runs` keyed by job and period, so a second
//! run for the same period does nothing — and with several nodes only one runs it (the
//! unique key is the lease). The scheduler in `serve` only decides when.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Asia::Shanghai;
use serde::Serialize;
use sqlx::Row;

use crate::store::WriteQuery;
use crate::{
    app::App,
    error::{AppError, Result},
    mail, notify,
};

/// The jobs: name, cron schedule (sec min hour day month weekday, Asia/Shanghai), label.
pub const JOBS: &[(&str, &str, &str)] = &[
    (
        "yearly-close",
        "0 5 0 1 1 *",
        "年度结转：关闭上一年度额度、开启新年度、启动年度绩效评价",
    ),
    (
        "mail-outbox",
        "0 */10 * * * *",
        "邮件发送（补发到期重试的邮件）",
    ),
    ("daily-digest", "0 0 8 * * *", "每日通知汇总邮件"),
    (
        "task-reminders",
        "0 */5 * * * *",
        "办理时限：到期提醒、逾期升级和到期自动处理（如公示期满自动通过）",
    ),
    (
        "report-reminders",
        "0 0 9 25 3,6,9,12 *",
        "季末信息上报提醒：提醒各管理单位上报新入网仪器和本季度服务记录（每季度一次）",
    ),
    (
        "calendar-reminder",
        "0 0 9 * 12 *",
        "工作日历提醒：12 月下一年节假日安排尚未发布时，每周提醒系统管理员录入（工作日历）",
    ),
    (
        "booking-no-shows",
        "0 */5 * * * *",
        "预约签到巡检：开始后未签到的预约记为爽约并释放时段，按规则暂停预约权限；候补保留期满顺延给下一位",
    ),
    (
        "index-check",
        "0 30 * * * *",
        "检索索引巡检：索引为空或过期时重建，报告待处理的索引变更",
    ),
];

/// What a run did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub enum Outcome {
    /// The job ran for this period; the text says what it did.
    Done(String),
    /// The period was already handled (by this node or another).
    AlreadyDone,
}

/// The period key of a job for an instant.
pub fn period(job: &str, at: DateTime<Utc>) -> Result<String> {
    let local = at.with_timezone(&Shanghai);
    Ok(match job {
        "yearly-close" => (local.year() - 1).to_string(),
        "mail-outbox" => format!(
            "{}-{:02}",
            local.format("%Y-%m-%dT%H"),
            local.minute() / 10 * 10
        ),
        "daily-digest" => local.format("%Y-%m-%d").to_string(),
        "task-reminders" => format!(
            "{}:{:02}",
            local.format("%Y-%m-%dT%H"),
            local.minute() / 5 * 5
        ),
        "index-check" => local.format("%Y-%m-%dT%H").to_string(),
        "calendar-reminder" => local.format("%G-W%V").to_string(),
        "booking-no-shows" => format!(
            "{}:{:02}",
            local.format("%Y-%m-%dT%H"),
            local.minute() / 5 * 5
        ),
        "report-reminders" => crate::reporting::period_of(local.date_naive()),
        _ => return Err(unknown(job)),
    })
}

fn unknown(job: &str) -> AppError {
    let names: Vec<_> = JOBS.iter().map(|(n, _, _)| *n).collect();
    AppError::BadRequest(format!("未知任务 {job}，可用：{}", names.join("、")))
}

/// The instant a `--as-of YYYY-MM-DD` date stands for: 00:05 that day in Shanghai.
pub fn as_of_date(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 5, 0)
        .and_then(|t| t.and_local_timezone(Shanghai).single())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Claim the (job, period) lease; false when it is taken or done.
async fn claim(state: &App, job: &str, period: &str) -> Result<bool> {
    let now = state.now();
    let inserted = sqlx::query(
        "INSERT INTO job_runs (job, period, status, started_at) VALUES ($1, $2, 'running', $3)",
    )
    .bind(job)
    .bind(period)
    .bind(now)
    .write(&state.db)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if crate::store::is_unique_violation(&e) => {
            // Retry a failed run, or take over one whose node died an hour ago.
            let n = sqlx::query(
                "UPDATE job_runs SET status = 'running', started_at = $1, outcome = '' \
                 WHERE job = $2 AND period = $3 AND (status = 'failed' OR (status = 'running' AND started_at < $4))",
            )
            .bind(now)
            .bind(job)
            .bind(period)
            .bind(now - 3600)
            .write(&state.db)
            .await?
            .rows_affected();
            Ok(n == 1)
        }
        Err(e) => Err(e.into()),
    }
}

/// Run a job for the period containing `as_of`.
pub async fn run(state: &App, job: &str, as_of: DateTime<Utc>) -> Result<Outcome> {
    let period = period(job, as_of)?;
    // Jobs compute with what is published now (calendar, settings), whichever node published it.
    crate::published::refresh(&state.db).await?;
    if !claim(state, job, &period).await? {
        return Ok(Outcome::AlreadyDone);
    }
    let result = match job {
        "calendar-reminder" => {
            crate::calendar::remind_unpublished(state, as_of.with_timezone(&Shanghai).date_naive())
                .await
        }
        "yearly-close" => yearly_close(state, &period).await,
        "task-reminders" => task_reminders(state).await,
        "index-check" => index_check(state).await,
        "booking-no-shows" => booking_no_shows(state).await,
        "report-reminders" => {
            crate::reporting::remind_owed(state, as_of.with_timezone(&Shanghai).date_naive()).await
        }
        "mail-outbox" => mail::deliver_due(&state.db, &state.mailer, state.now(), 500)
            .await
            .map(|d| {
                format!(
                    "已发送 {} 封，待重试 {} 封，失败 {} 封",
                    d.sent, d.retried, d.failed
                )
            }),
        "daily-digest" => notify::send_digests(
            &state.db,
            &state.mailer,
            &state.config.public_url,
            state.now(),
        )
        .await
        .map(|n| format!("已生成 {n} 封汇总邮件")),
        _ => Err(unknown(job)),
    };
    let (status, text) = match &result {
        Ok(text) => ("succeeded", text.clone()),
        Err(e) => ("failed", e.to_string()),
    };
    metrics::counter!("labshare_job_runs_total", "job" => job.to_string(), "status" => status)
        .increment(1);
    sqlx::query("UPDATE job_runs SET status = $1, outcome = $2, finished_at = $3 WHERE job = $4 AND period = $5")
        .bind(status)
        .bind(&text)
        .bind(state.now())
        .bind(job)
        .bind(&period)
        .write(&state.db)
        .await?;
    result.map(Outcome::Done)
}

/// No-shows, then the waitlists: lapsed offers move on, released slots are offered.
async fn booking_no_shows(state: &App) -> Result<String> {
    use crate::money::bookings::{checkin, waitlist};
    let (_, policy) = crate::money::current(&state.db).await?;
    let rules = &policy.booking;
    let url = &state.config.public_url;
    let now = state.now();
    let n = checkin::mark_no_shows(&state.db, rules, &state.mailer, url, now).await?;
    let (expired, offered) = waitlist::process(&state.db, rules, &state.mailer, url, now).await?;
    Ok(format!(
        "记为爽约 {} 个预约，暂停 {} 个单位的预约权限；候补过期 {expired} 条，新发出候补通知 {offered} 条",
        n.marked, n.suspended
    ))
}

/// Rebuild the search index when it is empty or built with another configuration; report
/// the outbox backlog (the indexer applies it within a second while the server runs).
async fn index_check(state: &App) -> Result<String> {
    let rebuilt = state.search.rebuild_if_stale(&state.db).await?;
    let backlog = state.search.backlog(&state.db).await?;
    Ok(format!(
        "{}；待处理的索引变更 {backlog} 条",
        if rebuilt {
            "索引已重建"
        } else {
            "索引正常"
        }
    ))
}

/// Deadlines from the workflow definitions, then deliver the events they raised.
async fn task_reminders(state: &App) -> Result<String> {
    let handled = state.engine.process_deadlines().await?;
    let delivered = notify::deliver_workflow_events(state, 1000).await?;
    Ok(format!(
        "处理到期待办 {handled} 项，发出通知 {delivered} 条"
    ))
}

/// Close year `period` (the year before `as_of`): mark it closed, open the next, and start
/// the annual performance-evaluation round by notifying every certified managing unit.
async fn yearly_close(state: &App, period: &str) -> Result<String> {
    let year: i64 = period
        .parse()
        .map_err(|_| AppError::BadRequest(period.into()))?;
    let now = state.now();
    let mut tx = state.db.begin_write().await?;
    let existing: Option<String> =
        sqlx::query_scalar("SELECT status FROM fiscal_years WHERE year = $1")
            .bind(year)
            .fetch_optional(&mut *tx)
            .await?;
    match existing {
        Some(_) => {
            sqlx::query(
                "UPDATE fiscal_years SET status = 'closed', closed_at = $1 WHERE year = $2",
            )
            .bind(now)
            .bind(year)
            .execute(&mut *tx)
            .await?;
        }
        None => {
            sqlx::query("INSERT INTO fiscal_years (year, status, opened_at, closed_at) VALUES ($1, 'closed', $2, $2)")
                .bind(year)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
    }
    let next_exists: Option<String> =
        sqlx::query_scalar("SELECT status FROM fiscal_years WHERE year = $1")
            .bind(year + 1)
            .fetch_optional(&mut *tx)
            .await?;
    if next_exists.is_none() {
        sqlx::query("INSERT INTO fiscal_years (year, status, opened_at) VALUES ($1, 'open', $2)")
            .bind(year + 1)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    // Close the year's voucher accounts: what is still available expires, as a ledger entry.
    let accounts: Vec<(i64,)> =
        sqlx::query_as("SELECT unit_id FROM voucher_accounts WHERE year = $1 ORDER BY unit_id")
            .bind(year)
            .fetch_all(&mut *tx)
            .await?;
    let mut expired_fen = 0i64;
    for (unit_id,) in &accounts {
        expired_fen += crate::money::vouchers::expire(&mut tx, *unit_id, year, now).await?;
    }
    let managers = sqlx::query(
        "SELECT DISTINCT m.user_id FROM unit_members m JOIN units u ON u.id = m.unit_id \
         WHERE u.kind = 'managing' AND u.certification_status = 'certified' AND m.role = 'manager'",
    )
    .fetch_all(&mut *tx)
    .await?;
    for r in &managers {
        notify::notify(
            &mut tx,
            &state.mailer,
            &state.config.public_url,
            r.get("user_id"),
            &notify::Notice {
                kind: "published",
                title: format!("{year} 年度大型科研仪器开放共享绩效评价申报已开始"),
                body: format!(
                    "{year} 年度已结转。请在规定时间内提交本单位 {year} 年度绩效评价申报（自评报告与服务数据），评价结果将作为后补助的依据。"
                ),
                link: "/console/evaluations".into(),
            },
            None,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(format!(
        "{year} 年度已关闭（{} 个创新券账户结转，未使用额度 {} 元作废），{} 年度已开启，已通知 {} 位管理单位用户开展年度绩效评价申报",
        accounts.len(),
        crate::domain::Yuan::from_fen(expired_fen),
        year + 1,
        managers.len()
    ))
}

/// Recent runs for the console.
pub async fn recent_runs(state: &App, limit: i64) -> Result<Vec<serde_json::Value>> {
    let rows = sqlx::query(
        "SELECT job, period, status, outcome, started_at, finished_at FROM job_runs ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| serde_json::json!({
            "job": r.get::<String, _>("job"), "period": r.get::<String, _>("period"),
            "status": r.get::<String, _>("status"), "outcome": r.get::<String, _>("outcome"),
            "started_at": r.get::<i64, _>("started_at"), "finished_at": r.get::<Option<i64>, _>("finished_at"),
        }))
        .collect())
}

/// Start the cron scheduler (Asia/Shanghai) and the mail sender loop for `serve`.
pub async fn start_scheduler(state: App) -> anyhow::Result<tokio_cron_scheduler::JobScheduler> {
    use tokio_cron_scheduler::{Job, JobScheduler};
    let sched = JobScheduler::new().await?;
    let state = Arc::new(state);
    for (name, cron, _) in JOBS {
        let st = state.clone();
        let job = Job::new_async_tz(*cron, Shanghai, move |_id, _lock| {
            let st = st.clone();
            Box::pin(async move {
                let at = st.clock.now();
                match run(&st, name, at).await {
                    Ok(Outcome::Done(text)) => tracing::info!(job = name, %text, "job ran"),
                    Ok(Outcome::AlreadyDone) => {
                        tracing::debug!(job = name, "job period already done")
                    }
                    Err(e) => tracing::error!(job = name, error = %e, "job failed"),
                }
            })
        })?;
        sched.add(job).await?;
    }
    sched.start().await?;
    // Deliver queued mail within seconds of a decision; the cron job is the safety net.
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = notify::deliver_workflow_events(&st, 200).await {
                tracing::warn!(error = %e, "workflow event delivery failed");
            }
            if let Err(e) = mail::deliver_due(&st.db, &st.mailer, st.now(), 100).await {
                tracing::warn!(error = %e, "mail sender pass failed");
            }
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        }
    });
    Ok(sched)
}
