//! Information reporting (信息上报): batches of instruments or service records a managing unit
//! reports upward, mapped to the national fields (`national`), reviewed by the platform in the
//! `information_report` flow and pushed to the upstream platform (`push`). Docking clients and
//! the docking reads for systems that pull are in `docking`.

pub mod docking;
pub mod national;
pub mod push;

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, TimeZone};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::Row;

use crate::{
    error::{AppError, Result},
    store::{Db, WriteQuery},
};

pub use national::Problem;

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

impl Batch {
    /// The contract's JSON of a batch.
    pub fn to_json(&self) -> Value {
        let problems: Vec<Value> = self
            .items
            .iter()
            .flat_map(|i| {
                i.problems.iter().map(move |p| {
                    json!({"record_id": i.record_id, "field": p.field, "message": p.message})
                })
            })
            .collect();
        json!({
            "id": self.id, "unit_id": self.unit_id, "kind": self.kind, "period": self.period,
            "status": self.status, "instance_id": self.instance_id, "attempts": self.attempts,
            "last_error": self.last_error,
            "pushed_at": self.pushed_at.map(crate::clock::rfc3339),
            "items": self.items.iter().map(|i| json!({
                "record_id": i.record_id, "national": i.national,
                "upstream": {"status": i.upstream_status,
                    "reason": if i.upstream_reason.is_empty() { Value::Null } else { json!(i.upstream_reason) }},
            })).collect::<Vec<_>>(),
            "problems": problems,
        })
    }

    pub fn problem_details(&self) -> Vec<Value> {
        self.to_json()["problems"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// The source values of the unit's reportable records of `kind`: approved instruments of at
/// least the national threshold, or service records completed in the quarter; records already
/// accepted upstream, or in another batch under review or push, are left out.
async fn sources(
    conn: &mut sqlx::AnyConnection,
    batch_id: i64,
    unit_id: i64,
    kind: &str,
    period: &str,
    public_url: &str,
) -> Result<Vec<(i64, Map<String, Value>)>> {
    let taken = "NOT EXISTS (SELECT 1 FROM report_items ri JOIN report_batches rb ON rb.id = ri.batch_id \
        WHERE rb.kind = $2 AND ri.record_id = {ID} AND rb.id <> $3 AND \
        (ri.upstream_status = 'accepted' OR rb.status IN ('pending', 'approved', 'pushing')))";
    let mut out = Vec::new();
    if kind == "instruments" {
        let sql = format!(
            "SELECT {INSTRUMENT_SOURCE} FROM instruments i WHERE i.unit_id = $1 AND i.review_status = 'approved' \
             AND i.value_fen >= $4 AND {} ORDER BY i.id",
            taken.replace("{ID}", "i.id")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(unit_id)
            .bind(kind)
            .bind(batch_id)
            .bind(national::reportable_min_fen())
            .fetch_all(&mut *conn)
            .await?;
        for r in rows {
            out.push((r.get("id"), instrument_source(&r, public_url)));
        }
    } else {
        let (from, to) = quarter(period)?;
        let sql = format!(
            "SELECT {SERVICE_SOURCE} FROM {SERVICE_FROM} \
             WHERE sr.managing_unit_id = $1 AND sr.completed_at >= $4 AND sr.completed_at < $5 AND {} \
             ORDER BY sr.id",
            taken.replace("{ID}", "sr.id")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(unit_id)
            .bind(kind)
            .bind(batch_id)
            .bind(midnight_ts(from))
            .bind(midnight_ts(to))
            .fetch_all(&mut *conn)
            .await?;
        for r in rows {
            out.push((r.get("id"), service_source(&r)));
        }
    }
    Ok(out)
}

/// The instrument columns the national mapping reads (`i` = instruments).
pub(crate) const INSTRUMENT_SOURCE: &str = "i.id, i.name, i.category_code, i.source, i.instrument_type, \
    i.value_fen, i.country, i.model, i.manufacturer, i.purchase_date, i.fee_standard, i.service_content, \
    i.customs_supervised, i.customs_declaration_no, i.customs_release_date, i.annual_running_hours, \
    i.annual_service_hours, i.funding, i.department, i.usage_status, i.sharing_mode, i.city, i.national_json";

/// An instrument row as the mapping's source values.
pub(crate) fn instrument_source(r: &sqlx::any::AnyRow, public_url: &str) -> Map<String, Value> {
    let id: i64 = r.get("id");
    let extra: Map<String, Value> =
        serde_json::from_str(&r.get::<String, _>("national_json")).unwrap_or_default();
    let mut m = Map::new();
    for c in [
        "name",
        "category_code",
        "source",
        "instrument_type",
        "country",
        "model",
        "manufacturer",
        "fee_standard",
        "service_content",
        "customs_declaration_no",
        "funding",
        "department",
        "usage_status",
        "sharing_mode",
        "city",
    ] {
        m.insert(c.into(), json!(r.get::<String, _>(c)));
    }
    for c in ["value_fen", "annual_running_hours", "annual_service_hours"] {
        m.insert(c.into(), json!(r.get::<i64, _>(c)));
    }
    m.insert("id".into(), json!(id.to_string()));
    m.insert(
        "customs_supervised".into(),
        json!(r.get::<i64, _>("customs_supervised") != 0),
    );
    m.insert(
        "customs_release_date".into(),
        json!(r.get::<Option<String>, _>("customs_release_date")),
    );
    m.insert(
        "service_url".into(),
        json!(format!("{public_url}/instruments/{id}")),
    );
    m.insert("province".into(), json!("河南省"));
    // The national supplements; `begin_date` falls back to the purchase date.
    for (k, v) in extra {
        m.insert(k, v);
    }
    if m.get("begin_date")
        .is_none_or(|v| v.as_str().is_none_or(str::is_empty))
    {
        m.insert(
            "begin_date".into(),
            json!(r.get::<Option<String>, _>("purchase_date")),
        );
    }
    m
}

/// The service-record columns the national mapping reads, and their joins.
pub(crate) const SERVICE_SOURCE: &str = "sr.id, sr.instrument_id, sr.amount_fen, sr.started_at, sr.ended_at, \
    sr.service_hours_x100, sr.applicant_name, sr.applicant_phone, sr.rating, sr.user_unit_id, \
    sr.managing_unit_id, b.kind, b.purpose, b.customs_notice_no, i.service_content, \
    uu.name AS user_unit_name, us.email AS applicant_email";
pub(crate) const SERVICE_FROM: &str = "service_records sr JOIN bookings b ON b.id = sr.booking_id \
    JOIN instruments i ON i.id = sr.instrument_id JOIN units uu ON uu.id = sr.user_unit_id \
    LEFT JOIN users us ON us.id = b.user_id";

/// A service-record row as the mapping's source values.
pub(crate) fn service_source(r: &sqlx::any::AnyRow) -> Map<String, Value> {
    let purpose: String = r.get("purpose");
    let content = if purpose.trim().is_empty() {
        r.get::<String, _>("service_content")
    } else {
        purpose
    };
    let internal = r.get::<i64, _>("user_unit_id") == r.get::<i64, _>("managing_unit_id");
    let m = json!({
        "id": r.get::<i64, _>("id").to_string(),
        "instrument_id": r.get::<i64, _>("instrument_id").to_string(),
        "amount_fen": r.get::<i64, _>("amount_fen"),
        "started_at": r.get::<i64, _>("started_at"),
        "ended_at": r.get::<i64, _>("ended_at"),
        "service_hours_x100": r.get::<i64, _>("service_hours_x100"),
        "service_content": content,
        "kind": r.get::<String, _>("kind"),
        "applicant_name": r.get::<String, _>("applicant_name"),
        "applicant_phone": r.get::<String, _>("applicant_phone"),
        "applicant_email": r.get::<Option<String>, _>("applicant_email"),
        "user_unit_name": r.get::<String, _>("user_unit_name"),
        "rating": r.get::<Option<String>, _>("rating"),
        "user_kind": if internal { "internal" } else { "external" },
        "customs_notice_no": r.get::<String, _>("customs_notice_no"),
    });
    m.as_object().cloned().unwrap_or_default()
}

/// (Re)build a draft batch's items from the records as they are now.
async fn build_items(
    conn: &mut sqlx::AnyConnection,
    batch_id: i64,
    public_url: &str,
) -> Result<()> {
    let b = sqlx::query("SELECT unit_id, kind, period FROM report_batches WHERE id = $1")
        .bind(batch_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(AppError::NotFound)?;
    let kind: String = b.get("kind");
    let recs = sources(
        conn,
        batch_id,
        b.get("unit_id"),
        &kind,
        &b.get::<String, _>("period"),
        public_url,
    )
    .await?;
    sqlx::query("DELETE FROM report_items WHERE batch_id = $1")
        .bind(batch_id)
        .execute(&mut *conn)
        .await?;
    for (id, source) in recs {
        let (national, problems) = national::map(&kind, &source);
        sqlx::query(
            "INSERT INTO report_items (batch_id, record_id, national_json, problems_json) VALUES ($1, $2, $3, $4)",
        )
        .bind(batch_id)
        .bind(id)
        .bind(Value::Object(national).to_string())
        .bind(serde_json::to_string(&problems).unwrap_or_else(|_| "[]".into()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Create a draft batch for a unit the caller manages (checked by the caller) and build it.
pub async fn create(
    db: &Db,
    unit_id: i64,
    kind: &str,
    period: &str,
    user_id: i64,
    public_url: &str,
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
    build_items(&mut tx, id, public_url).await?;
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
pub async fn refresh(db: &Db, id: i64, public_url: &str, now: i64) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let status: String = sqlx::query_scalar("SELECT status FROM report_batches WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(AppError::NotFound)?;
    ensure_draft(&status)?;
    build_items(&mut tx, id, public_url).await?;
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
    public_url: &str,
) -> Result<crate::workflow::Started> {
    let mut tx = engine.db().begin_write().await?;
    let status: String = sqlx::query_scalar("SELECT status FROM report_batches WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(AppError::NotFound)?;
    ensure_draft(&status)?;
    build_items(&mut tx, id, public_url).await?;
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

async fn read_items(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Vec<Item>> {
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
    let mut conn = db.pool.acquire().await?;
    get_in(&mut conn, id).await
}

pub(crate) async fn get_in(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Batch> {
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
    let instruments = rows
        .iter()
        .map(|r| {
            let joined: Option<String> = r.get("joined_on");
            let due = joined
                .as_deref()
                .and_then(|j| NaiveDate::parse_from_str(j, "%Y-%m-%d").ok())
                .map(|d| crate::calendar::add_working_days(d, 30));
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

// ---- national supplements of an instrument ------------------------------------------------

/// The national fields an instrument lacked (contract: `name_en`, `technical`, …), kept as
/// one JSON object. Optional on the platform, checked when reporting.
pub const INSTRUMENT_NATIONAL_FIELDS: [&str; 13] = [
    "name_en",
    "technical",
    "functions",
    "requirements",
    "subject_codes",
    "begin_date",
    "county",
    "address",
    "postal_code",
    "contact_name",
    "contact_phone",
    "contact_email",
    "affiliation",
];

/// Keep only the national supplement fields of `input` (strings; `subject_codes` a list, or
/// a string split at commas).
pub fn national_supplements(input: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for f in INSTRUMENT_NATIONAL_FIELDS {
        let Some(v) = input.get(f) else { continue };
        let v = match (f, v) {
            ("subject_codes", Value::Array(a)) => Value::Array(
                a.iter()
                    .map(|x| json!(national_text(x)))
                    .filter(|x| x.as_str() != Some(""))
                    .collect(),
            ),
            ("subject_codes", other) => Value::Array(
                national_text(other)
                    .split([',', '，', ' '])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| json!(s))
                    .collect(),
            ),
            (_, other) => json!(national_text(other)),
        };
        out.insert(f.to_string(), v);
    }
    out
}

fn national_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// An instrument's national supplements.
pub async fn instrument_supplements(db: &Db, id: i64) -> Result<(i64, Map<String, Value>)> {
    let r = sqlx::query("SELECT unit_id, national_json FROM instruments WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((
        r.get("unit_id"),
        serde_json::from_str(&r.get::<String, _>("national_json")).unwrap_or_default(),
    ))
}

/// Create an instrument (`POST /instruments`) with its national supplements, in one transaction.
pub async fn create_instrument_with(
    db: &Db,
    valid: &crate::instruments::ValidInstrument,
    national: &Map<String, Value>,
    now: i64,
) -> Result<i64> {
    let mut tx = db.begin_write().await?;
    let id = crate::instruments::create(&mut *tx, valid, now).await?;
    sqlx::query("UPDATE instruments SET national_json = $1 WHERE id = $2")
        .bind(Value::Object(national.clone()).to_string())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// Merge national supplements into an instrument (any review state: they are reporting
/// data, not the reviewed public record).
pub async fn save_supplements(
    db: &Db,
    id: i64,
    patch: &Map<String, Value>,
    now: i64,
) -> Result<Map<String, Value>> {
    let (_, mut current) = instrument_supplements(db, id).await?;
    for (k, v) in national_supplements(patch) {
        current.insert(k, v);
    }
    sqlx::query("UPDATE instruments SET national_json = $1, updated_at = $2 WHERE id = $3")
        .bind(Value::Object(current.clone()).to_string())
        .bind(now)
        .bind(id)
        .write(db)
        .await?;
    Ok(current)
}

// ---- as a workflow subject ---------------------------------------------------------------

/// Report batches under the platform's review (信息上报审核).
pub const WORKFLOW_SUBJECTS: &[crate::workflow::hooks::Subject] =
    &[crate::workflow::hooks::Subject {
        kind: "report_batch",
        table: "report_batches",
        status_column: "status",
        unit: crate::workflow::hooks::UnitOf::Column("unit_id"),
        has_joined_on: false,
        searchable: false,
        label: workflow_label,
    }];

fn workflow_label(
    conn: &mut sqlx::AnyConnection,
    id: i64,
) -> futures::future::BoxFuture<'_, Result<Option<String>>> {
    Box::pin(crate::workflow::hooks::label_by(
        conn,
        "SELECT u.name || ' ' || b.period || CASE b.kind WHEN 'instruments' THEN ' 仪器信息上报' \
         ELSE ' 服务记录上报' END FROM report_batches b JOIN units u ON u.id = b.unit_id WHERE b.id = $1",
        id,
    ))
}

/// `queue_upstream_push`: on approval the batch becomes due for the upstream push in the
/// deciding transaction (the batch row is its own outbox entry).
pub const WORKFLOW_HOOKS: &[crate::workflow::hooks::Hook] = &[crate::workflow::hooks::Hook {
    name: "queue_upstream_push",
    check: check_queue,
    run: run_queue,
}];

fn check_queue(
    subject_type: &str,
    _subject: Option<&crate::workflow::hooks::Subject>,
    with: &BTreeMap<String, Value>,
) -> std::result::Result<(), String> {
    if subject_type != "report_batch" {
        return Err("queue_upstream_push 只能用于 report_batch 流程".into());
    }
    if !with.is_empty() {
        return Err("queue_upstream_push 不需要参数".into());
    }
    Ok(())
}

fn run_queue<'a, 'c>(
    ctx: &'a mut crate::workflow::hooks::HookCtx<'c>,
) -> futures::future::BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        if ctx.dry_run {
            return Ok(());
        }
        sqlx::query(
            "UPDATE report_batches SET next_attempt_at = $1, attempts = 0, last_error = '' WHERE id = $2",
        )
        .bind(ctx.now)
        .bind(ctx.subject_id)
        .execute(&mut *ctx.conn)
        .await?;
        Ok(())
    })
}

// ---- quarter-end reminders ----------------------------------------------------------------

/// Remind the managers of every certified managing unit of what it still owes this quarter
/// (instruments due or overdue, the quarter's service records); one notification per manager,
/// in one transaction. The `report-reminders` job runs it once per quarter.
pub async fn remind_owed(app: &crate::app::App, today: NaiveDate) -> Result<String> {
    let units: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, name FROM units WHERE kind = 'managing' AND certification_status = 'certified' ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await?;
    let now = app.now();
    let mut owing = Vec::new();
    for (id, name) in units {
        let o = owed(&app.db, id, today).await?;
        if !o.instruments.is_empty() || o.service_records > 0 {
            owing.push((id, name, o));
        }
    }
    let mut tx = app.db.begin_write().await?;
    let mut sent = 0;
    for (id, name, o) in &owing {
        let overdue = o.instruments.iter().filter(|i| i.overdue).count();
        let managers: Vec<(i64,)> = sqlx::query_as(
            "SELECT user_id FROM unit_members WHERE unit_id = $1 AND role = 'manager' ORDER BY user_id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for (user_id,) in managers {
            crate::notify::notify(
                &mut tx,
                &app.mailer,
                &app.config.public_url,
                user_id,
                &crate::notify::Notice {
                    kind: if overdue > 0 { "overdue" } else { "due_soon" },
                    title: format!("{name}：{} 季度信息上报提醒", o.period),
                    body: format!(
                        "本单位尚有 {} 台（套）50 万元及以上仪器未上报（其中 {overdue} 台已超过入网后 30 个工作日），{} 季度服务记录 {} 条未上报。请在信息上报中生成批次并提交。",
                        o.instruments.len(),
                        o.period,
                        o.service_records
                    ),
                    link: "/console/reports".into(),
                },
                None,
                now,
            )
            .await?;
            sent += 1;
        }
    }
    tx.commit().await?;
    Ok(format!(
        "{} 个单位有待上报信息，已提醒 {sent} 位管理员",
        owing.len()
    ))
}
