//! Information reporting (信息上报): batches of instruments or service records a managing unit
//! reports upward, mapped to the national fields (`national`), reviewed by the platform in the
//! `information_report` flow and pushed to the upstream platform (`push`). Docking clients and
//! the docking reads for systems that pull are in `docking`.

pub mod docking;
pub mod national;
pub mod push;

mod flow;
mod items;
mod supplements;

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, TimeZone};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::Row;

use crate::{
    error::{AppError, Result},
    store::{Db, WriteQuery},
};

pub use flow::*;
use items::*;
pub use national::Problem;
pub use supplements::*;

/// What the national records need of the platform's configuration: the base of booking
/// links (`serviceUrl`) and the province (`LABSHARE_REPORT_PROVINCE`).
#[derive(Debug, Clone)]
pub struct Site {
    pub public_url: String,
    pub province: String,
}

impl Site {
    pub fn of(config: &crate::config::Config) -> Site {
        Site {
            public_url: config.public_url.clone(),
            province: config.report_province.clone(),
        }
    }
}

/// What a batch reports.
pub const KINDS: [&str; 2] = ["instruments", "service_records"];

/// Batch statuses as the console shows them.
pub fn status_label(status: &str) -> &'static str {
    match status {
        "draft" => "草稿",
        "pending" => "平台审核中",
        "approved" => "已通过，待推送",
        "pushing" => "推送中",
        "pushed" => "已推送",
        "failed" => "推送失败",
        "withdrawn" => "已撤回",
        _ => "未知",
    }
}

pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "instruments" => "仪器信息",
        "service_records" => "服务记录",
        _ => "未知",
    }
}

/// A quarter (`2026Q4`): its first day and the first day of the next.
pub fn quarter(period: &str) -> Result<(NaiveDate, NaiveDate)> {
    let bad = || AppError::field("period", "报送周期格式应为 YYYYQn，例如 2026Q4");
    let (y, q) = period.trim().split_once('Q').ok_or_else(bad)?;
    let y: i32 = y.parse().map_err(|_| bad())?;
    let q: u32 = q.parse().map_err(|_| bad())?;
    if !(2000..=2100).contains(&y) || !(1..=4).contains(&q) {
        return Err(bad());
    }
    let start = NaiveDate::from_ymd_opt(y, 3 * q - 2, 1).ok_or_else(bad)?;
    let end = if q == 4 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, 3 * q + 1, 1)
    }
    .ok_or_else(bad)?;
    Ok((start, end))
}

/// The quarter a day falls in.
pub fn period_of(d: NaiveDate) -> String {
    format!("{}Q{}", d.year(), d.month0() / 3 + 1)
}

fn midnight_ts(d: NaiveDate) -> i64 {
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

/// A batch with its items as last built.
#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    pub id: i64,
    pub unit_id: i64,
    pub unit_name: String,
    pub credit_code: String,
    pub kind: String,
    pub period: String,
    pub status: String,
    pub instance_id: Option<i64>,
    pub attempts: i64,
    pub last_error: String,
    pub pushed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub record_id: i64,
    pub national: Map<String, Value>,
    pub problems: Vec<Problem>,
    pub upstream_status: String,
    pub upstream_reason: String,
}

/// A batch as the API returns it (`GET /reports/{id}`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchView {
    pub id: i64,
    pub unit_id: i64,
    /// `instruments` or `service_records`.
    pub kind: String,
    /// The quarter, `YYYYQn`.
    pub period: String,
    /// `draft|pending|approved|pushing|pushed|failed|withdrawn`.
    pub status: String,
    pub instance_id: Option<i64>,
    /// Push attempts so far.
    pub attempts: i64,
    pub last_error: String,
    /// RFC 3339.
    pub pushed_at: Option<String>,
    pub items: Vec<ItemView>,
    pub problems: Vec<ProblemView>,
}

/// One record of a batch in national field names, and what the upstream said of it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ItemView {
    pub record_id: i64,
    /// The national record (`cname`, `ename`, `instrCategory`, …).
    #[schema(value_type = Object)]
    pub national: Map<String, Value>,
    pub upstream: UpstreamView,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UpstreamView {
    /// `pending|accepted|rejected`.
    pub status: String,
    pub reason: Option<String>,
}

/// A problem of one record against the national rules, in Chinese.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProblemView {
    pub record_id: i64,
    /// The national field.
    pub field: String,
    pub message: String,
}

impl Batch {
    pub fn view(&self) -> BatchView {
        BatchView {
            id: self.id,
            unit_id: self.unit_id,
            kind: self.kind.clone(),
            period: self.period.clone(),
            status: self.status.clone(),
            instance_id: self.instance_id,
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            pushed_at: self.pushed_at.map(crate::clock::rfc3339),
            items: self
                .items
                .iter()
                .map(|i| ItemView {
                    record_id: i.record_id,
                    national: i.national.clone(),
                    upstream: UpstreamView {
                        status: i.upstream_status.clone(),
                        reason: (!i.upstream_reason.is_empty()).then(|| i.upstream_reason.clone()),
                    },
                })
                .collect(),
            problems: self
                .items
                .iter()
                .flat_map(|i| {
                    i.problems.iter().map(move |p| ProblemView {
                        record_id: i.record_id,
                        field: p.field.clone(),
                        message: p.message.clone(),
                    })
                })
                .collect(),
        }
    }

    /// The contract's JSON of a batch.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or_default()
    }

    pub fn problem_details(&self) -> Vec<Value> {
        self.to_json()["problems"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Create a draft batch for a unit the caller manages (checked by the caller) and build it.
pub async fn create(
    db: &Db,
    unit_id: i64,
    kind: &str,
    period: &str,
    user_id: i64,
    site: &Site,
    now: i64,
) -> Result<i64> {
    if !KINDS.contains(&kind) {
        return Err(AppError::field(
            "kind",
            "报送类型应为 instruments（仪器信息）或 service_records（服务记录）",
        ));
    }
    quarter(period)?;
    let mut tx = db.begin_write().await?;
    let open: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM report_batches WHERE unit_id = $1 AND kind = $2 AND period = $3 \
         AND status IN ('draft', 'pending', 'approved', 'pushing')",
    )
    .bind(unit_id)
    .bind(kind)
    .bind(period.trim())
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = open {
        return Err(AppError::conflict(
            "report_exists",
            format!("该单位本周期已有未完成的同类上报批次（编号 {id}）"),
        ));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO report_batches (unit_id, kind, period, status, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, 'draft', $4, $5, $5) RETURNING id",
    )
    .bind(unit_id)
    .bind(kind)
    .bind(period.trim())
    .bind(user_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    build_items(&mut tx, id, site).await?;
    tx.commit().await?;
    Ok(id)
}

fn ensure_draft(status: &str) -> Result<()> {
    if status == "draft" {
        Ok(())
    } else {
        Err(AppError::conflict(
            "not_editable",
            format!("该批次{}，不能再修改", status_label(status)),
        ))
    }
}

/// Rebuild a draft batch after its records were corrected.
pub async fn refresh(db: &Db, id: i64, site: &Site, now: i64) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let status: String = sqlx::query_scalar("SELECT status FROM report_batches WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(AppError::NotFound)?;
    ensure_draft(&status)?;
    build_items(&mut tx, id, site).await?;
    sqlx::query("UPDATE report_batches SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Delete a draft batch.
pub async fn delete(db: &Db, id: i64) -> Result<()> {
    let n = sqlx::query("DELETE FROM report_batches WHERE id = $1 AND status = 'draft'")
        .bind(id)
        .write(db)
        .await?
        .rows_affected();
    if n == 0 {
        let b = get(db, id).await?;
        ensure_draft(&b.status)?;
    }
    Ok(())
}

/// Rebuild and submit a draft batch for the platform's review (flow `information_report`),
/// in one transaction; refused with every problem while it has any, or when it is empty.
pub async fn submit(
    engine: &crate::workflow::Engine,
    user_id: i64,
    id: i64,
    site: &Site,
) -> Result<crate::workflow::Started> {
    let mut tx = engine.db().begin_write().await?;
    let status: String = sqlx::query_scalar("SELECT status FROM report_batches WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(AppError::NotFound)?;
    ensure_draft(&status)?;
    build_items(&mut tx, id, site).await?;
    let items = read_items(&mut tx, id).await?;
    if items.is_empty() {
        return Err(AppError::unprocessable(
            "report_empty",
            "该批次没有需要上报的记录",
        ));
    }
    let details: Vec<Value> = items
        .iter()
        .flat_map(|i| {
            i.problems.iter().map(
                move |p| json!({"record_id": i.record_id, "field": p.field, "message": p.message}),
            )
        })
        .collect();
    if !details.is_empty() {
        // The rebuilt items are kept, so the page shows the same problems.
        tx.commit().await?;
        return Err(AppError::Problems {
            code: "report_invalid",
            message: format!("有 {} 处不符合国家上报要求，请修改后再提交", details.len()),
            details: Value::Array(details),
        });
    }
    let started = engine
        .start_in(
            &mut tx,
            "information_report",
            "report_batch",
            id,
            user_id,
            json!({"records": items.len()}),
        )
        .await?;
    sqlx::query("UPDATE report_batches SET instance_id = $1 WHERE id = $2")
        .bind(started.instance_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(started)
}

async fn read_items(conn: &mut crate::store::Conn, id: i64) -> Result<Vec<Item>> {
    let rows = sqlx::query(
        "SELECT record_id, national_json, problems_json, upstream_status, upstream_reason \
         FROM report_items WHERE batch_id = $1 ORDER BY record_id",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Item {
            record_id: r.get("record_id"),
            national: serde_json::from_str(&r.get::<String, _>("national_json"))
                .unwrap_or_default(),
            problems: serde_json::from_str(&r.get::<String, _>("problems_json"))
                .unwrap_or_default(),
            upstream_status: r.get("upstream_status"),
            upstream_reason: r.get("upstream_reason"),
        })
        .collect())
}

const BATCH_COLUMNS: &str = "b.id, b.unit_id, u.name AS unit_name, u.credit_code, b.kind, b.period, \
    b.status, b.instance_id, b.attempts, b.last_error, b.pushed_at, b.created_at, b.updated_at";

fn batch_from(r: &sqlx::any::AnyRow) -> Batch {
    Batch {
        id: r.get("id"),
        unit_id: r.get("unit_id"),
        unit_name: r.get("unit_name"),
        credit_code: r.get("credit_code"),
        kind: r.get("kind"),
        period: r.get("period"),
        status: r.get("status"),
        instance_id: r.get("instance_id"),
        attempts: r.get("attempts"),
        last_error: r.get("last_error"),
        pushed_at: r.get("pushed_at"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        items: vec![],
    }
}

pub async fn get(db: &Db, id: i64) -> Result<Batch> {
    let mut conn = db.acquire().await?;
    get_in(&mut conn, id).await
}

pub(crate) async fn get_in(conn: &mut crate::store::Conn, id: i64) -> Result<Batch> {
    let sql = format!(
        "SELECT {BATCH_COLUMNS} FROM report_batches b JOIN units u ON u.id = b.unit_id WHERE b.id = $1"
    );
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut b = batch_from(&r);
    b.items = read_items(conn, id).await?;
    Ok(b)
}

/// Batches of the given units (all units when `None`), newest first; (page, total).
pub async fn list(
    db: &Db,
    unit_ids: Option<&[i64]>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Batch>, i64)> {
    // Unit ids are integers from the session, inlined safely.
    let wh = match unit_ids {
        Some([]) => return Ok((vec![], 0)),
        Some(ids) => format!(
            "WHERE b.unit_id IN ({})",
            ids.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    };
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM report_batches b {wh}"
    )))
    .fetch_one(&db.pool)
    .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {BATCH_COLUMNS}, (SELECT COUNT(*) FROM report_items ri WHERE ri.batch_id = b.id) AS n \
         FROM report_batches b JOIN units u ON u.id = b.unit_id {wh} ORDER BY b.id DESC LIMIT $1 OFFSET $2"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows.iter().map(batch_from).collect(), total))
}

/// What a unit owes (待上报): reportable instruments not yet accepted upstream with their
/// due date (30 working days after 入网), and the quarter's service records not yet reported.
#[derive(Debug, Clone, Serialize)]
pub struct Owed {
    pub instruments: Vec<OwedInstrument>,
    pub service_records: i64,
    pub period: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OwedInstrument {
    pub id: i64,
    pub name: String,
    pub joined_on: Option<String>,
    pub due_on: Option<String>,
    pub overdue: bool,
}

pub async fn owed(db: &Db, unit_id: i64, today: NaiveDate) -> Result<Owed> {
    let rows = sqlx::query(
        "SELECT i.id, i.name, i.joined_on FROM instruments i WHERE i.unit_id = $1 \
         AND i.review_status = 'approved' AND i.value_fen >= $2 AND NOT EXISTS (SELECT 1 FROM report_items ri \
         JOIN report_batches rb ON rb.id = ri.batch_id WHERE rb.kind = 'instruments' AND ri.record_id = i.id \
         AND ri.upstream_status = 'accepted') ORDER BY i.joined_on, i.id",
    )
    .bind(unit_id)
    .bind(national::reportable_min_fen())
    .fetch_all(&db.pool)
    .await?;
    let calendar = db.published.calendar();
    let instruments = rows
        .iter()
        .map(|r| {
            let joined: Option<String> = r.get("joined_on");
            let due = joined
                .as_deref()
                .and_then(|j| NaiveDate::parse_from_str(j, "%Y-%m-%d").ok())
                .map(|d| calendar.add_working_days(d, 30));
            OwedInstrument {
                id: r.get("id"),
                name: r.get("name"),
                joined_on: joined,
                due_on: due.map(|d| d.to_string()),
                overdue: due.is_some_and(|d| d < today),
            }
        })
        .collect();
    let period = period_of(today);
    let (from, to) = quarter(&period)?;
    let service_records: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM service_records sr WHERE sr.managing_unit_id = $1 AND sr.completed_at >= $2 \
         AND sr.completed_at < $3 AND NOT EXISTS (SELECT 1 FROM report_items ri JOIN report_batches rb \
         ON rb.id = ri.batch_id WHERE rb.kind = 'service_records' AND ri.record_id = sr.id \
         AND ri.upstream_status = 'accepted')",
    )
    .bind(unit_id)
    .bind(midnight_ts(from))
    .bind(midnight_ts(to))
    .fetch_one(&db.pool)
    .await?;
    Ok(Owed {
        instruments,
        service_records,
        period,
    })
}

/// One unit's reporting completeness (上报完成情况), for the platform.
#[derive(Debug, Clone, Serialize)]
pub struct UnitCompleteness {
    pub unit_id: i64,
    pub unit_name: String,
    /// Approved instruments at or above the national threshold.
    pub reportable: i64,
    /// Of those, accepted upstream.
    pub reported: i64,
    /// Reportable instruments not yet accepted upstream, and how many are past their due
    /// date (30 working days after 入网).
    pub instruments_owed: i64,
    pub instruments_overdue: i64,
    /// This quarter's service records not yet accepted upstream.
    pub service_records_owed: i64,
    /// Service records of this year's earlier quarters not yet accepted upstream (overdue:
    /// their quarter has ended).
    pub service_records_overdue: i64,
    /// Batches not yet pushed (draft, under review, approved, pushing or failed).
    pub open_batches: i64,
    pub last_pushed_at: Option<i64>,
    pub period: String,
}

impl UnitCompleteness {
    pub fn is_complete(&self) -> bool {
        self.instruments_owed == 0
            && self.service_records_owed == 0
            && self.service_records_overdue == 0
    }

    pub fn overdue(&self) -> i64 {
        self.instruments_overdue + self.service_records_overdue
    }
}

/// Reporting completeness of every certified managing unit as of `today`: what each owes
/// and what is overdue; the units with the most overdue first.
pub async fn completeness_by_unit(db: &Db, today: NaiveDate) -> Result<Vec<UnitCompleteness>> {
    let units: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, name FROM units WHERE kind = 'managing' AND certification_status = 'certified' ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await?;
    let period = period_of(today);
    let (quarter_start, _) = quarter(&period)?;
    let year_start = NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(quarter_start);
    let mut out = Vec::with_capacity(units.len());
    for (unit_id, unit_name) in units {
        let o = owed(db, unit_id, today).await?;
        let reportable: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM instruments WHERE unit_id = $1 AND review_status = 'approved' AND value_fen >= $2",
        )
        .bind(unit_id)
        .bind(national::reportable_min_fen())
        .fetch_one(&db.pool)
        .await?;
        let overdue_records: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM service_records sr WHERE sr.managing_unit_id = $1 AND sr.completed_at >= $2 \
             AND sr.completed_at < $3 AND NOT EXISTS (SELECT 1 FROM report_items ri JOIN report_batches rb \
             ON rb.id = ri.batch_id WHERE rb.kind = 'service_records' AND ri.record_id = sr.id \
             AND ri.upstream_status = 'accepted')",
        )
        .bind(unit_id)
        .bind(midnight_ts(year_start))
        .bind(midnight_ts(quarter_start))
        .fetch_one(&db.pool)
        .await?;
        let (open, last): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN status IN ('draft', 'pending', 'approved', 'pushing', 'failed') \
             THEN 1 ELSE 0 END), 0), MAX(pushed_at) FROM report_batches WHERE unit_id = $1",
        )
        .bind(unit_id)
        .fetch_one(&db.pool)
        .await?;
        let owed_n = o.instruments.len() as i64;
        out.push(UnitCompleteness {
            unit_id,
            unit_name,
            reportable,
            reported: reportable - owed_n,
            instruments_owed: owed_n,
            instruments_overdue: o.instruments.iter().filter(|i| i.overdue).count() as i64,
            service_records_owed: o.service_records,
            service_records_overdue: overdue_records,
            open_batches: open,
            last_pushed_at: last,
            period: o.period,
        });
    }
    out.sort_by_key(|u| {
        (
            std::cmp::Reverse(u.overdue()),
            std::cmp::Reverse(u.instruments_owed + u.service_records_owed),
            u.unit_id,
        )
    });
    Ok(out)
}
