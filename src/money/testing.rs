//! Testing-service orders (送样检测). An enterprise sends samples for one of a unit's approved
//! testing services; the order is a booking of kind `testing` on the instrument the test runs
//! on, so it follows the same money path — quote → confirm with vouchers → complete → redeem —
//! and its income counts for that instrument. It holds no time slot (it never blocks the
//! calendar) and can be completed only once the managing unit has uploaded the report.

use serde::Deserialize;
use sqlx::Row;

use crate::store::WriteQuery;
use crate::{
    auth::CurrentUser,
    error::{AppError, FieldErrors, Result},
    store::Db,
};

#[derive(Debug, Clone, Deserialize)]
pub struct NewOrder {
    pub service_id: i64,
    pub unit_id: i64,
    pub instrument_id: i64,
    #[serde(default)]
    pub sample_info: String,
    #[serde(default)]
    pub sample_count: i64,
    #[serde(default)]
    pub purpose: String,
}

/// The approved instruments of the unit offering `service_id`, for the order form.
pub async fn instruments_for(db: &Db, service_id: i64) -> Result<Vec<(i64, String)>> {
    let rows = sqlx::query(
        "SELECT i.id, i.name, i.model FROM instruments i JOIN services s ON s.unit_id = i.unit_id \
         WHERE s.id = $1 AND i.review_status = 'approved' ORDER BY i.id LIMIT 200",
    )
    .bind(service_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let model: Option<String> = r.get("model");
            let name: String = r.get("name");
            let label = match model.filter(|m| !m.is_empty()) {
                Some(m) => format!("{name}（{m}）"),
                None => name,
            };
            (r.get("id"), label)
        })
        .collect())
}

/// Place an order: checks the service, the instrument (same unit, approved), the ordering
/// unit (certified, the caller a member) and the sample details.
pub async fn create(db: &Db, user: &CurrentUser, new: NewOrder, now: i64) -> Result<i64> {
    if !user.acts_for(new.unit_id, false) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    let service = sqlx::query(
        "SELECT review_status, service_status, turnaround_days FROM services WHERE id = $1",
    )
    .bind(new.service_id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| AppError::field("service_id", "检测项目不存在"))?;
    if service.get::<String, _>("review_status") != "approved" {
        return Err(AppError::field(
            "service_id",
            "该检测项目尚未通过审核，不能委托",
        ));
    }
    if service.get::<String, _>("service_status") != "服务中" {
        return Err(AppError::field("service_id", "该检测项目暂停服务"));
    }
    let mut errors = FieldErrors::new();
    let ok_instrument = instruments_for(db, new.service_id)
        .await?
        .iter()
        .any(|(id, _)| *id == new.instrument_id);
    if !ok_instrument {
        errors.insert(
            "instrument_id".into(),
            "请选择该检测机构已入网的检测仪器".into(),
        );
    }
    if new.sample_info.trim().is_empty() {
        errors.insert(
            "sample_info".into(),
            "请填写样品名称、状态和检测要求".into(),
        );
    }
    if !(1..=10_000).contains(&new.sample_count) {
        errors.insert("sample_count".into(), "样品数量应为 1 到 10000".into());
    }
    if let Some(e) = AppError::fields(errors) {
        return Err(e);
    }
    let cert: Option<String> =
        sqlx::query_scalar("SELECT certification_status FROM units WHERE id = $1")
            .bind(new.unit_id)
            .fetch_optional(&db.pool)
            .await?;
    if cert.as_deref() != Some("certified") {
        return Err(AppError::unprocessable(
            "unit_not_eligible",
            "委托单位尚未通过认证，认证通过后才能委托检测",
        ));
    }
    let due = now + service.get::<i64, _>("turnaround_days").max(1) * 86_400;
    let purpose = match new.purpose.trim() {
        "" => "送样检测",
        p => p,
    };
    Ok(sqlx::query_scalar(
        "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, sample_info, live, kind, service_id, \
         sample_count, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 'testing', $8, $9, $4, $4) RETURNING id",
    )
    .bind(new.instrument_id)
    .bind(new.unit_id)
    .bind(user.id)
    .bind(now)
    .bind(due)
    .bind(purpose)
    .bind(new.sample_info.trim())
    .bind(new.service_id)
    .bind(new.sample_count)
    .fetch_one(&db.pool)
    .await?)
}

/// The managing unit attaches the test report (a stored upload) to a confirmed order.
pub async fn attach_report(
    db: &Db,
    user: &CurrentUser,
    id: i64,
    upload_id: i64,
    now: i64,
) -> Result<()> {
    may_attach_report(db, user, id).await?;
    sqlx::query("UPDATE bookings SET report_upload_id = $1, updated_at = $2 WHERE id = $3")
        .bind(upload_id)
        .bind(now)
        .bind(id)
        .write(db)
        .await?;
    Ok(())
}

/// Whether `user` may attach a report to order `id` now: the testing unit's manager, on a
/// confirmed testing order. Checked before the file is stored, so strangers fill no disk.
pub async fn may_attach_report(db: &Db, user: &CurrentUser, id: i64) -> Result<()> {
    let r = sqlx::query(
        "SELECT b.kind, b.status, i.unit_id AS owner FROM bookings b JOIN instruments i ON i.id = b.instrument_id WHERE b.id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    user.require_for(crate::auth::Permission::BookingHandle, r.get("owner"))?;
    if r.get::<String, _>("kind") != "testing" {
        return Err(AppError::unprocessable(
            "not_testing_order",
            "只有送样检测委托需要上传检测报告",
        ));
    }
    if r.get::<String, _>("status") != "confirmed" {
        return Err(AppError::conflict(
            "invalid_state",
            "委托确认后、登记完成前才能上传检测报告",
        ));
    }
    Ok(())
}

/// The report of an order, for its two parties only: (upload id) or `NotFound`.
pub async fn report_for(db: &Db, user: &CurrentUser, id: i64) -> Result<i64> {
    let r = sqlx::query(
        "SELECT b.unit_id, b.report_upload_id, i.unit_id AS owner FROM bookings b JOIN instruments i ON i.id = b.instrument_id WHERE b.id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    if !user.acts_for(r.get("unit_id"), false) && !user.acts_for(r.get("owner"), false) {
        return Err(AppError::forbidden());
    }
    r.get::<Option<i64>, _>("report_upload_id")
        .ok_or(AppError::NotFound)
}
