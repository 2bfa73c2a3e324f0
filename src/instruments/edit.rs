//! Editing and submission (登记与提交) of instruments by unit managers: create/update,
//! completeness and the onboarding submission, and the console list (the input and its
//! validation are in `input.rs`).

use serde::Serialize;
use sqlx::Row;

use super::{Instrument, ValidInstrument, get};
use crate::{
    catalog,
    error::{AppError, Result},
    store::Db,
};

// ---- editing and submission (unit managers) ----------------------------------------------

/// Columns the portal record does not carry: customs details and booking rules.
#[derive(Debug, Clone, Serialize)]
pub struct EditExtras {
    pub customs_declaration_no: String,
    pub customs_release_date: Option<String>,
    /// slot_minutes, min_lead_hours, max_days_ahead, max_duration_hours.
    pub booking: [i64; 4],
    /// The national reporting fields (`national_json`).
    pub national: serde_json::Map<String, serde_json::Value>,
}

impl EditExtras {
    /// One national field as text (a list joined with commas).
    pub fn national_text(&self, key: &str) -> String {
        match self.national.get(key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    }
}

pub async fn extras(db: &Db, id: i64) -> Result<EditExtras> {
    let r = sqlx::query(
        "SELECT customs_declaration_no, customs_release_date, slot_minutes, min_lead_hours, \
         max_days_ahead, max_duration_hours, national_json FROM instruments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(EditExtras {
        customs_declaration_no: r.get("customs_declaration_no"),
        customs_release_date: r.get("customs_release_date"),
        booking: [
            r.get("slot_minutes"),
            r.get("min_lead_hours"),
            r.get("max_days_ahead"),
            r.get("max_duration_hours"),
        ],
        national: serde_json::from_str(&r.get::<String, _>("national_json")).unwrap_or_default(),
    })
}

/// Review states as the console shows them.
pub fn review_label(status: &str) -> &'static str {
    match status {
        "draft" => "草稿",
        "pending" => "审核中",
        "approved" => "已入网",
        "rejected" => "已退回",
        "retired" => "已下线",
        _ => "未知",
    }
}

/// Only drafts and returned records may be edited. A pending record is under review; an
/// approved one is public and bookable, so changing it in place would bypass the review —
/// it stays as approved until a change goes through the onboarding flow again.
pub fn ensure_editable(review_status: &str) -> Result<()> {
    match review_status {
        "draft" | "rejected" => Ok(()),
        "pending" => Err(AppError::conflict(
            "not_editable",
            "该仪器正在审核中，审核结束前不能修改",
        )),
        "retired" => Err(AppError::conflict(
            "instrument_retired",
            "该仪器已下线，不能修改",
        )),
        _ => Err(AppError::conflict(
            "not_editable",
            "该仪器已审核入网，请提交变更申请，审核通过后生效",
        )),
    }
}

/// Create an instrument in `draft` for a unit the caller manages (checked by the caller).
pub async fn create<'e, E>(ex: E, v: &ValidInstrument, now: i64) -> Result<i64>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let i = &v.input;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, model, manufacturer, country, category_code, \
         department, value_fen, open_to_public, city, customs_supervised, customs_declaration_no, \
         customs_release_date, usage_status, sharing_mode, source, funding, instrument_type, \
         description, service_content, typical_achievements, location, fee_standard, \
         data_source, review_status, purchase_date, slot_minutes, min_lead_hours, max_days_ahead, \
         max_duration_hours, annual_running_hours, annual_service_hours, created_at, updated_at, \
         national_json) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22, $23, '单位填报', 'draft', $24, $25, $26, $27, $28, $29, $30, $31, $31, \
         $32) RETURNING id",
    )
    .bind(v.unit_id)
    .bind(&i.name)
    .bind(&i.model)
    .bind(&i.manufacturer)
    .bind(&i.country)
    .bind(&i.category_code)
    .bind(&i.department)
    .bind(v.value_fen)
    .bind(i.open_to_public as i64)
    .bind(&i.city)
    .bind(i.customs_supervised as i64)
    .bind(&i.customs_declaration_no)
    .bind(v.customs_release_date.clone())
    .bind(&i.usage_status)
    .bind(&i.sharing_mode)
    .bind(&i.source)
    .bind(&i.funding)
    .bind(&i.instrument_type)
    .bind(&i.description)
    .bind(&i.service_content)
    .bind(&i.typical_achievements)
    .bind(&i.location)
    .bind(&i.fee_standard)
    .bind(v.purchase_date.clone())
    .bind(v.booking[0])
    .bind(v.booking[1])
    .bind(v.booking[2])
    .bind(v.booking[3])
    .bind(v.booking[4])
    .bind(v.booking[5])
    .bind(now)
    .bind(i.national_json())
    .fetch_one(ex)
    .await?;
    Ok(id)
}

/// Overwrite an editable record; the unit never changes. Refused unless draft or rejected
/// (checked again inside the UPDATE so a concurrent submit cannot be overwritten).
pub async fn update(db: &Db, id: i64, v: &ValidInstrument, now: i64) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let n = write_fields(&mut tx, id, v, now, "('draft', 'rejected')").await?;
    tx.commit().await?;
    if n == 0 {
        let current = get(db, id).await?;
        ensure_editable(&current.review_status)?;
    }
    Ok(())
}

/// Write an approved change request's values over an approved record (变更审核通过), inside
/// the deciding transaction; 0 when the record is no longer approved.
pub async fn apply_approved(
    conn: &mut crate::store::Conn,
    id: i64,
    v: &ValidInstrument,
    now: i64,
) -> Result<u64> {
    write_fields(conn, id, v, now, "('approved')").await
}

/// The one UPDATE of an instrument's reviewed fields, for records in `statuses` (a constant
/// SQL list); returns the rows changed.
async fn write_fields(
    conn: &mut crate::store::Conn,
    id: i64,
    v: &ValidInstrument,
    now: i64,
    statuses: &'static str,
) -> Result<u64> {
    let i = &v.input;
    let sql = format!(
        "UPDATE instruments SET name = $1, model = $2, manufacturer = $3, country = $4, \
         category_code = $5, department = $6, value_fen = $7, open_to_public = $8, city = $9, \
         customs_supervised = $10, customs_declaration_no = $11, customs_release_date = $12, \
         usage_status = $13, sharing_mode = $14, source = $15, funding = $16, \
         instrument_type = $17, description = $18, service_content = $19, \
         typical_achievements = $20, location = $21, fee_standard = $22, purchase_date = $23, \
         slot_minutes = $24, min_lead_hours = $25, max_days_ahead = $26, \
         max_duration_hours = $27, annual_running_hours = $28, annual_service_hours = $29, \
         updated_at = $30, national_json = $32 WHERE id = $31 AND review_status IN {statuses}"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&i.name)
        .bind(&i.model)
        .bind(&i.manufacturer)
        .bind(&i.country)
        .bind(&i.category_code)
        .bind(&i.department)
        .bind(v.value_fen)
        .bind(i.open_to_public as i64)
        .bind(&i.city)
        .bind(i.customs_supervised as i64)
        .bind(&i.customs_declaration_no)
        .bind(v.customs_release_date.clone())
        .bind(&i.usage_status)
        .bind(&i.sharing_mode)
        .bind(&i.source)
        .bind(&i.funding)
        .bind(&i.instrument_type)
        .bind(&i.description)
        .bind(&i.service_content)
        .bind(&i.typical_achievements)
        .bind(&i.location)
        .bind(&i.fee_standard)
        .bind(v.purchase_date.clone())
        .bind(v.booking[0])
        .bind(v.booking[1])
        .bind(v.booking[2])
        .bind(v.booking[3])
        .bind(v.booking[4])
        .bind(v.booking[5])
        .bind(now)
        .bind(id)
        .bind(i.national_json())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// What a submission returns: the workflow instance (none until the engine is wired) and
/// the record's review state.
#[derive(Debug, Clone, Serialize)]
pub struct Submission {
    pub instance_id: Option<i64>,
    pub state: String,
}

/// Fields a record must have before it can be reviewed, beyond what a draft needs.
fn completeness(i: &Instrument) -> crate::error::FieldErrors {
    let mut e = crate::error::FieldErrors::new();
    let required = [
        ("model", &i.model, "请填写规格型号"),
        ("manufacturer", &i.manufacturer, "请填写生产厂商"),
        ("location", &i.location, "请填写安放地点"),
        ("description", &i.description, "请填写主要技术指标与功能"),
        ("service_content", &i.service_content, "请填写服务内容"),
        ("fee_standard", &i.fee_standard, "请填写收费标准"),
    ];
    for (field, value, msg) in required {
        if value.trim().is_empty() {
            e.insert(field.into(), msg.into());
        }
    }
    e
}

/// Submit an instrument for onboarding review (仪器入网审核): the record must be complete
/// and in draft or rejected; it becomes `pending`. The caller has checked the unit scope.
pub async fn submit(
    engine: &crate::workflow::Engine,
    user: &crate::auth::CurrentUser,
    id: i64,
) -> Result<Submission> {
    let db = engine.db();
    let record = get(db, id).await?;
    ensure_editable(&record.review_status)?;
    if let Some(mut err) = AppError::fields(completeness(&record)) {
        if let AppError::Validation { message, .. } = &mut err {
            *message = "仪器信息不完整，请补充后再提交审核".into();
        }
        return Err(err);
    }
    // The flow's first state sets the record `pending` in the same transaction; a second
    // submission while one is running is refused by the engine (409 already_running).
    let data = serde_json::json!({"name": record.name, "unit_id": record.unit_id, "submitted_by": user.id});
    let started = engine
        .start("instrument_onboarding", "instrument", id, user.id, data)
        .await?;
    Ok(Submission {
        instance_id: Some(started.instance_id),
        state: started.state,
    })
}

/// One row of the console list.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleRow {
    pub id: i64,
    pub unit_name: String,
    pub name: String,
    pub model: String,
    pub category_label: String,
    pub value_fen: i64,
    pub usage_status: String,
    pub review_status: String,
    pub review_label: &'static str,
    pub updated_at: i64,
}

/// Instruments of the given units (the caller's), optionally one review status; newest
/// change first. Returns (page, total).
pub async fn list_for_units(
    db: &Db,
    unit_ids: &[i64],
    status: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ConsoleRow>, i64)> {
    if unit_ids.is_empty() {
        return Ok((vec![], 0));
    }
    // Unit ids are integers from the session, so they can be inlined safely.
    let ids = unit_ids
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut wh = format!("i.unit_id IN ({ids})");
    let status = status.trim();
    let has_status = ["draft", "pending", "approved", "rejected"].contains(&status);
    if has_status {
        wh.push_str(" AND i.review_status = $1");
    }
    let base = format!("FROM instruments i JOIN units u ON u.id = i.unit_id WHERE {wh}");
    let mut count =
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) {base}")));
    if has_status {
        count = count.bind(status.to_string());
    }
    let total = count.fetch_one(&db.pool).await?;
    let (l, o) = if has_status { (2, 3) } else { (1, 2) };
    let sql = format!(
        "SELECT i.id, u.name AS unit_name, i.name, i.model, i.category_code, i.value_fen, \
         i.usage_status, i.review_status, i.updated_at {base} \
         ORDER BY i.updated_at DESC, i.id DESC LIMIT ${l} OFFSET ${o}"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if has_status {
        q = q.bind(status.to_string());
    }
    let rows = q.bind(limit).bind(offset).fetch_all(&db.pool).await?;
    Ok((
        rows.iter()
            .map(|r| {
                let code: String = r.get("category_code");
                let st: String = r.get("review_status");
                ConsoleRow {
                    id: r.get("id"),
                    unit_name: r.get("unit_name"),
                    name: r.get("name"),
                    model: r.get("model"),
                    category_label: catalog::class_label(&code),
                    value_fen: r.get("value_fen"),
                    usage_status: r.get("usage_status"),
                    review_label: review_label(&st),
                    review_status: st,
                    updated_at: r.get("updated_at"),
                }
            })
            .collect(),
        total,
    ))
}
