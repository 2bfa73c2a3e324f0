//! Bookings (预约): request → quote (议价) → confirm with vouchers → complete (service record)
//! or cancel. No double booking, ever: on SQLite the overlap check and the insert are one
//! statement under the write lock; on PostgreSQL an exclusion constraint backs it.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Asia::Shanghai;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Policy, vouchers};
use crate::store::WriteQuery;
use crate::{
    auth::CurrentUser,
    calendar,
    domain::Yuan,
    error::{AppError, FieldErrors, Result},
    store::Db,
};

/// Opening hours in Asia/Shanghai (contract default for new instruments).
const OPEN_HOUR: u32 = 8;
const CLOSE_HOUR: u32 = 18;

pub const RATINGS: [&str; 5] = ["非常满意", "基本满意", "一般", "不满意", "极差"];

#[derive(Debug, Clone, Deserialize)]
pub struct NewBooking {
    pub instrument_id: i64,
    pub unit_id: i64,
    pub start: String,
    pub end: String,
    #[serde(default)]
    pub purpose: String,
    #[serde(default)]
    pub sample_info: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Booking {
    pub id: i64,
    pub instrument_id: i64,
    pub instrument_name: String,
    pub managing_unit_id: i64,
    pub unit_id: i64,
    pub start: String,
    pub end: String,
    pub purpose: String,
    pub status: String,
    pub price: Option<Yuan>,
    pub voucher_amount: Yuan,
    pub cancel_reason: String,
}

fn parse_time(raw: &str, field: &str, errors: &mut FieldErrors) -> Option<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(raw.trim()) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            errors.insert(
                field.into(),
                "时间格式应为 RFC 3339，例如 2026-12-01T09:00:00+08:00".into(),
            );
            None
        }
    }
}

#[derive(sqlx::FromRow)]
struct InstrumentRules {
    unit_id: i64,
    review_status: String,
    #[sqlx(rename = "open_to_public", try_from = "crate::store::Flag")]
    open: bool,
    slot_minutes: i64,
    min_lead_hours: i64,
    max_days_ahead: i64,
    max_duration_hours: i64,
    #[sqlx(try_from = "crate::store::Flag")]
    customs_supervised: bool,
}

async fn instrument_rules(conn: &mut sqlx::AnyConnection, id: i64) -> Result<InstrumentRules> {
    sqlx::query_as(
        "SELECT unit_id, review_status, open_to_public, slot_minutes, min_lead_hours, max_days_ahead, \
         max_duration_hours, customs_supervised FROM instruments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::field("instrument_id", "仪器不存在"))
}

/// Check the time slot against the instrument's booking rules; Chinese messages per field.
fn check_slot(
    rules: &InstrumentRules,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> FieldErrors {
    let mut e = FieldErrors::new();
    let (ls, le) = (start.with_timezone(&Shanghai), end.with_timezone(&Shanghai));
    if end <= start {
        e.insert("end".into(), "结束时间必须晚于开始时间".into());
        return e;
    }
    let step = rules.slot_minutes.max(1);
    if (ls.minute() as i64) % step != 0
        || ls.second() != 0
        || (le.minute() as i64) % step != 0
        || le.second() != 0
    {
        e.insert("start".into(), format!("预约时间需按 {step} 分钟为单位"));
    }
    if start < now + chrono::Duration::hours(rules.min_lead_hours) {
        e.insert(
            "start".into(),
            format!("需至少提前 {} 小时预约", rules.min_lead_hours),
        );
    }
    if start > now + chrono::Duration::days(rules.max_days_ahead) {
        e.insert(
            "start".into(),
            format!("最多可预约 {} 天内的时段", rules.max_days_ahead),
        );
    }
    if end - start > chrono::Duration::hours(rules.max_duration_hours) {
        e.insert(
            "end".into(),
            format!("单次预约不能超过 {} 小时", rules.max_duration_hours),
        );
    }
    if ls.date_naive() != le.date_naive()
        || ls.hour() < OPEN_HOUR
        || (le.hour() > CLOSE_HOUR || (le.hour() == CLOSE_HOUR && le.minute() > 0))
    {
        e.insert(
            "start".into(),
            format!("开放时间为工作日 {OPEN_HOUR:02}:00–{CLOSE_HOUR:02}:00（北京时间），不可跨日"),
        );
    } else if !calendar::is_working_day(ls.date_naive()) {
        e.insert(
            "start".into(),
            "所选日期为周末或法定节假日，不开放预约".into(),
        );
    }
    e
}

/// Request a booking.
pub async fn create(db: &Db, user: &CurrentUser, new: NewBooking, now_ts: i64) -> Result<i64> {
    let mut errors = FieldErrors::new();
    if !user.acts_for(new.unit_id, false) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    let start = parse_time(&new.start, "start", &mut errors);
    let end = parse_time(&new.end, "end", &mut errors);
    let purpose = new.purpose.trim().to_string();
    if purpose.is_empty() {
        errors.insert("purpose".into(), "请填写使用目的".into());
    }
    let mut conn = db.pool.acquire().await?;
    let rules = instrument_rules(&mut conn, new.instrument_id).await?;
    if rules.review_status != "approved" {
        return Err(AppError::field(
            "instrument_id",
            "该仪器尚未通过入网审核，不能预约",
        ));
    }
    if !rules.open && rules.unit_id != new.unit_id {
        return Err(AppError::field("instrument_id", "该仪器暂不对外开放"));
    }
    let cert: Option<String> =
        sqlx::query_scalar("SELECT certification_status FROM units WHERE id = $1")
            .bind(new.unit_id)
            .fetch_optional(&mut *conn)
            .await?;
    if cert.as_deref() != Some("certified") {
        return Err(AppError::unprocessable(
            "unit_not_eligible",
            "预约单位尚未通过认证，认证通过后才能预约",
        ));
    }
    let (Some(start), Some(end)) = (start, end) else {
        return Err(AppError::fields(errors).unwrap_or(AppError::BadRequest("时间".into())));
    };
    let now = DateTime::from_timestamp(now_ts, 0).unwrap_or_default();
    errors.extend(check_slot(&rules, start, end, now));
    if let Some(e) = AppError::fields(errors) {
        return Err(e);
    }
    let (s, e) = (start.timestamp(), end.timestamp());
    drop(conn);
    let mut tx = db.begin_write().await?;
    let inserted: std::result::Result<Option<i64>, sqlx::Error> = sqlx::query_scalar(
        "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, sample_info, created_at, updated_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $8 WHERE NOT EXISTS (SELECT 1 FROM bookings \
         WHERE instrument_id = $1 AND live = 1 AND start_at < $5 AND end_at > $4) RETURNING id",
    )
    .bind(new.instrument_id)
    .bind(new.unit_id)
    .bind(user.id)
    .bind(s)
    .bind(e)
    .bind(&purpose)
    .bind(new.sample_info.trim())
    .bind(now_ts)
    .fetch_optional(&mut *tx)
    .await;
    match inserted {
        Ok(Some(id)) => {
            tx.commit().await?;
            Ok(id)
        }
        Ok(None) => Err(slot_taken()),
        Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("23P01") => Err(slot_taken()),
        Err(e) => Err(e.into()),
    }
}

fn slot_taken() -> AppError {
    AppError::conflict("slot_taken", "该时段已被预约，请选择其他时间")
}

#[derive(sqlx::FromRow)]
struct Row_ {
    unit_id: i64,
    instrument_id: i64,
    managing_unit_id: i64,
    status: String,
    start_at: i64,
    end_at: i64,
    price_fen: Option<i64>,
    voucher_fen: i64,
    voucher_year: Option<i64>,
    user_id: i64,
    kind: String,
    report_upload_id: Option<i64>,
}

/// Lock the booking row for the transaction before reading it: a no-op write takes the row
/// lock on PostgreSQL and the write lock on SQLite (so no stale snapshot can be upgraded).
/// Self-dealing (关联交易): when the booking unit and the instrument's unit share a member,
/// vouchers need a platform decision on the booking (`allow_vouchers_despite_shared_member`);
/// otherwise 422 `self_dealing`.
async fn refuse_self_dealing(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    unit_id: i64,
    managing_unit_id: i64,
) -> Result<()> {
    let shared: Option<(i64,)> = sqlx::query_as(
        "SELECT a.user_id FROM unit_members a JOIN unit_members m ON m.user_id = a.user_id \
         WHERE a.unit_id = $1 AND m.unit_id = $2 LIMIT 1",
    )
    .bind(unit_id)
    .bind(managing_unit_id)
    .fetch_optional(&mut *conn)
    .await?;
    if shared.is_none() {
        return Ok(());
    }
    let allowed: Option<i64> =
        sqlx::query_scalar("SELECT voucher_exception_by FROM bookings WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    if allowed.is_some() {
        return Ok(());
    }
    Err(AppError::unprocessable(
        "self_dealing",
        "预约单位与仪器所属单位有共同成员（关联交易），须经平台管理员审核同意后才能使用创新券",
    ))
}

/// The platform's decision (创新券管理员, `voucher.manage`) that a booking whose units share a
/// member may still be paid with vouchers; the reason is kept on the booking. Only before
/// the booking is confirmed.
pub async fn allow_vouchers_despite_shared_member(
    db: &Db,
    user: &CurrentUser,
    id: i64,
    reason: &str,
    now: i64,
) -> Result<()> {
    user.require(crate::auth::Permission::VoucherManage)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AppError::field("reason", "请说明允许使用创新券的理由"));
    }
    let mut tx = db.begin_write().await?;
    let b = load(&mut tx, id).await?;
    if !matches!(b.status.as_str(), "requested" | "quoted") {
        return Err(wrong_state(&b.status, "审核关联交易"));
    }
    sqlx::query("UPDATE bookings SET voucher_exception_by = $1, voucher_exception_reason = $2, voucher_exception_at = $3 WHERE id = $4")
        .bind(user.id)
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn load(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Row_> {
    sqlx::query("UPDATE bookings SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query_as(
        "SELECT b.unit_id, b.instrument_id, i.unit_id AS managing_unit_id, b.status, b.start_at, b.end_at, \
         b.price_fen, b.voucher_fen, b.voucher_year, b.user_id, b.kind, b.report_upload_id \
         FROM bookings b JOIN instruments i ON i.id = b.instrument_id WHERE b.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AppError::NotFound)
}

fn wrong_state(status: &str, wanted: &str) -> AppError {
    AppError::conflict(
        "invalid_state",
        format!("预约当前状态为“{}”，不能{wanted}", status_label(status)),
    )
}

pub fn status_label(s: &str) -> &'static str {
    match s {
        "requested" => "待议价",
        "quoted" => "待确认",
        "confirmed" => "已确认",
        "completed" => "已完成",
        "cancelled" => "已取消",
        _ => "未知",
    }
}

/// Compare-and-swap the status; false when someone else changed it first.
async fn transition(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    from: &str,
    to: &str,
    now: i64,
) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE bookings SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4",
    )
    .bind(to)
    .bind(now)
    .bind(id)
    .bind(from)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// The managing unit quotes a negotiated price.
pub async fn quote(db: &Db, user: &CurrentUser, id: i64, price: Yuan, now: i64) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let b = load(&mut tx, id).await?;
    user.require_unit(b.managing_unit_id)?;
    if price == Yuan::ZERO {
        return Err(AppError::field("price", "议定价格必须大于 0"));
    }
    if !transition(&mut tx, id, "requested", "quoted", now).await? {
        return Err(wrong_state(&b.status, "报价"));
    }
    sqlx::query("UPDATE bookings SET price_fen = $1 WHERE id = $2")
        .bind(price.fen())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The booking unit confirms, paying up to the policy's ratio with vouchers.
pub async fn confirm(
    db: &Db,
    policy: &Policy,
    user: &CurrentUser,
    id: i64,
    voucher: Yuan,
    customs_notice_no: Option<&str>,
    now: i64,
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let b = load(&mut tx, id).await?;
    if !user.acts_for(b.unit_id, false) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    // Lock the booking first: concurrent confirmations of it serialise here.
    if !transition(&mut tx, id, "quoted", "confirmed", now).await? {
        return Err(wrong_state(&b.status, "确认"));
    }
    #[derive(sqlx::FromRow)]
    struct Eligibility {
        certification_status: String,
        #[sqlx(try_from = "crate::store::Flag")]
        dishonest: bool,
        #[sqlx(try_from = "crate::store::Flag")]
        abnormal_operation: bool,
    }
    let unit: Eligibility = sqlx::query_as(
        "SELECT certification_status, dishonest, abnormal_operation FROM units WHERE id = $1",
    )
    .bind(b.unit_id)
    .fetch_one(&mut *tx)
    .await?;
    if unit.certification_status != "certified" {
        return Err(AppError::unprocessable(
            "unit_not_eligible",
            "预约单位尚未通过认证，不能使用创新券",
        ));
    }
    if unit.dishonest || unit.abnormal_operation {
        return Err(AppError::unprocessable(
            "unit_not_eligible",
            "预约单位被列入失信名单或经营异常名录，不能使用创新券",
        ));
    }
    if voucher > Yuan::ZERO {
        refuse_self_dealing(&mut tx, id, b.unit_id, b.managing_unit_id).await?;
    }
    let price = Yuan::from_fen(b.price_fen.unwrap_or(0));
    let max = price.decimal() * policy.voucher.max_ratio;
    if voucher.decimal() > max {
        return Err(AppError::unprocessable(
            "voucher_over_ratio",
            format!(
                "创新券最多抵扣议定价格的 {}%：本次最多 {} 元",
                (policy.voucher.max_ratio * Decimal::from(100)).normalize(),
                Yuan::new(max.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero))
            ),
        ));
    }
    let rules = instrument_rules(&mut tx, b.instrument_id).await?;
    let notice = customs_notice_no.map(str::trim).unwrap_or("");
    if rules.customs_supervised && b.unit_id != b.managing_unit_id && notice.is_empty() {
        return Err(AppError::field(
            "customs_notice_no",
            "该仪器为海关监管仪器，外单位使用须填写海关监管通知书编号",
        ));
    }
    let year = DateTime::from_timestamp(b.start_at, 0)
        .unwrap_or_default()
        .with_timezone(&Shanghai)
        .year() as i64;
    vouchers::reserve(&mut tx, b.unit_id, year, voucher, id, now).await?;
    sqlx::query("UPDATE bookings SET voucher_fen = $1, voucher_year = $2, customs_notice_no = $3 WHERE id = $4")
        .bind(voucher.fen())
        .bind(year)
        .bind(notice)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The managing unit completes the service; this creates the service record (服务记录).
pub async fn complete(db: &Db, user: &CurrentUser, id: i64, now: i64) -> Result<(i64, String)> {
    let mut tx = db.begin_write().await?;
    let b = load(&mut tx, id).await?;
    user.require_unit(b.managing_unit_id)?;
    if now < b.start_at {
        return Err(AppError::unprocessable(
            "too_early",
            "预约开始之后才能登记完成",
        ));
    }
    let testing = b.kind == "testing";
    if testing && b.status == "confirmed" && b.report_upload_id.is_none() {
        return Err(AppError::unprocessable(
            "report_required",
            "送样检测须先上传检测报告，才能登记完成",
        ));
    }
    if !transition(&mut tx, id, "confirmed", "completed", now).await? {
        return Err(wrong_state(&b.status, "登记完成"));
    }
    let local = DateTime::from_timestamp(now, 0)
        .unwrap_or_default()
        .with_timezone(&Shanghai);
    let order_no = format!("FW{}{:06}", local.format("%Y%m%d"), id);
    let (applicant_name, applicant_phone): (String, Option<String>) =
        sqlx::query_as("SELECT display_name, phone FROM users WHERE id = $1")
            .bind(b.user_id)
            .fetch_one(&mut *tx)
            .await?;
    let record_id: i64 = sqlx::query_scalar(
        "INSERT INTO service_records (booking_id, order_no, instrument_id, managing_unit_id, user_unit_id, applicant_name, \
         applicant_phone, amount_fen, voucher_fen, service_hours_x100, started_at, ended_at, completed_at, year, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $13) RETURNING id",
    )
    .bind(id)
    .bind(&order_no)
    .bind(b.instrument_id)
    .bind(b.managing_unit_id)
    .bind(b.unit_id)
    .bind(applicant_name)
    .bind(applicant_phone.unwrap_or_default())
    .bind(b.price_fen.unwrap_or(0))
    .bind(b.voucher_fen)
    // A testing order occupies no booked time: its machine hours are not known here.
    .bind(if testing {
        0
    } else {
        (b.end_at - b.start_at) * 100 / 3600
    })
    .bind(b.start_at)
    .bind(if testing { now } else { b.end_at })
    .bind(now)
    .bind(local.year() as i64)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE instruments SET service_count = service_count + 1 WHERE id = $1")
        .bind(b.instrument_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((record_id, order_no))
}

/// Either side cancels with a reason; the slot and any reserved vouchers are released.
pub async fn cancel(db: &Db, user: &CurrentUser, id: i64, reason: &str, now: i64) -> Result<()> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AppError::field("reason", "请填写取消原因"));
    }
    let mut tx = db.begin_write().await?;
    let b = load(&mut tx, id).await?;
    if !(user.acts_for(b.unit_id, false) || user.acts_for(b.managing_unit_id, true)) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    let n = sqlx::query(
        "UPDATE bookings SET status = 'cancelled', live = 0, cancel_reason = $1, updated_at = $2 \
         WHERE id = $3 AND status IN ('requested', 'quoted', 'confirmed')",
    )
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(wrong_state(&b.status, "取消"));
    }
    if b.status == "confirmed"
        && let Some(year) = b.voucher_year
    {
        vouchers::release(
            &mut tx,
            b.unit_id,
            year,
            Yuan::from_fen(b.voucher_fen),
            id,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A booking row as [`get`] reads it.
#[derive(sqlx::FromRow)]
struct BookingRow {
    id: i64,
    instrument_id: i64,
    instrument_name: String,
    managing_unit_id: i64,
    unit_id: i64,
    start_at: i64,
    end_at: i64,
    purpose: String,
    status: String,
    price_fen: Option<i64>,
    voucher_fen: i64,
    cancel_reason: String,
}

pub async fn get(db: &Db, id: i64) -> Result<Booking> {
    let r: BookingRow = sqlx::query_as(
        "SELECT b.id, b.instrument_id, i.name AS instrument_name, i.unit_id AS managing_unit_id, b.unit_id, b.start_at, \
         b.end_at, b.purpose, b.status, b.price_fen, b.voucher_fen, b.cancel_reason FROM bookings b \
         JOIN instruments i ON i.id = b.instrument_id WHERE b.id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(Booking {
        id: r.id,
        instrument_id: r.instrument_id,
        instrument_name: r.instrument_name,
        managing_unit_id: r.managing_unit_id,
        unit_id: r.unit_id,
        start: crate::clock::rfc3339(r.start_at),
        end: crate::clock::rfc3339(r.end_at),
        purpose: r.purpose,
        status: r.status,
        price: r.price_fen.map(Yuan::from_fen),
        voucher_amount: Yuan::from_fen(r.voucher_fen),
        cancel_reason: r.cancel_reason,
    })
}

/// Busy slots `(start_at, end_at)` of an instrument between two instants, by start.
pub async fn busy(db: &Db, instrument_id: i64, from: i64, to: i64) -> Result<Vec<(i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT start_at, end_at FROM bookings WHERE instrument_id = $1 AND live = 1 AND start_at < $3 AND end_at > $2 ORDER BY start_at",
    )
    .bind(instrument_id)
    .bind(from)
    .bind(to)
    .fetch_all(&db.pool)
    .await?)
}

/// How many bookings in `status` wait at instruments of units the user manages.
pub async fn count_incoming(db: &Db, user_id: i64, status: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM bookings b JOIN instruments i ON i.id = b.instrument_id \
         WHERE b.status = $2 AND i.unit_id IN (SELECT unit_id FROM unit_members WHERE user_id = $1 AND role = 'manager')",
    )
    .bind(user_id)
    .bind(status)
    .fetch_one(&db.pool)
    .await?)
}

/// How many bookings in `status` the units the user belongs to have made.
pub async fn count_outgoing(db: &Db, user_id: i64, status: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM bookings WHERE status = $2 \
         AND unit_id IN (SELECT unit_id FROM unit_members WHERE user_id = $1)",
    )
    .bind(user_id)
    .bind(status)
    .fetch_one(&db.pool)
    .await?)
}

/// A booking as the console's booking lists show it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BookingListRow {
    pub id: i64,
    pub instrument_id: i64,
    pub instrument_name: String,
    pub unit_name: String,
    pub owner_name: String,
    pub start_at: i64,
    pub end_at: i64,
    pub purpose: String,
    pub status: String,
    pub price_fen: Option<i64>,
    pub voucher_fen: i64,
    #[sqlx(try_from = "crate::store::Flag")]
    pub customs_supervised: bool,
    pub cancel_reason: String,
    pub rating: Option<String>,
    pub kind: String,
    pub sample_count: i64,
    pub report_upload_id: Option<i64>,
    pub service_name: Option<String>,
}

const LIST_SELECT: &str = "SELECT b.id, b.instrument_id, i.name AS instrument_name, u.name AS unit_name, o.name AS owner_name, \
    b.start_at, b.end_at, b.purpose, b.status, b.price_fen, b.voucher_fen, i.customs_supervised, b.cancel_reason, \
    (SELECT sr.rating FROM service_records sr WHERE sr.booking_id = b.id) AS rating, \
    b.kind, b.sample_count, b.report_upload_id, (SELECT s.name FROM services s WHERE s.id = b.service_id) AS service_name \
    FROM bookings b JOIN instruments i ON i.id = b.instrument_id JOIN units u ON u.id = b.unit_id JOIN units o ON o.id = i.unit_id";

/// The newest 200 bookings made by the units the user belongs to (我的预约).
pub async fn list_made(db: &Db, user_id: i64) -> Result<Vec<BookingListRow>> {
    let sql = format!(
        "{LIST_SELECT} WHERE b.unit_id IN (SELECT unit_id FROM unit_members WHERE user_id = $1) ORDER BY b.id DESC LIMIT 200"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user_id)
        .fetch_all(&db.pool)
        .await?)
}

/// The newest 200 bookings of instruments of the units the user manages (预约管理).
pub async fn list_incoming(db: &Db, user_id: i64) -> Result<Vec<BookingListRow>> {
    let sql = format!(
        "{LIST_SELECT} WHERE i.unit_id IN (SELECT unit_id FROM unit_members WHERE user_id = $1 AND role = 'manager') \
         ORDER BY b.id DESC LIMIT 200"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user_id)
        .fetch_all(&db.pool)
        .await?)
}

/// The managing unit of the instrument a booking is for.
pub async fn managing_unit(db: &Db, booking_id: i64) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT i.unit_id FROM bookings b JOIN instruments i ON i.id = b.instrument_id WHERE b.id = $1",
    )
    .bind(booking_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// The booking unit rates a completed service once (非常满意 … 极差), with an optional text.
pub async fn rate(db: &Db, user: &CurrentUser, id: i64, rating: &str, text: &str) -> Result<()> {
    if !RATINGS.contains(&rating) {
        return Err(AppError::field(
            "rating",
            "请选择评价：非常满意、基本满意、一般、不满意或极差",
        ));
    }
    if text.chars().count() > 500 {
        return Err(AppError::field("comment", "评价内容不能超过 500 字"));
    }
    let b = get(db, id).await?;
    if !user.acts_for(b.unit_id, false) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    if b.status != "completed" {
        return Err(wrong_state(&b.status, "评价"));
    }
    let n = sqlx::query("UPDATE service_records SET rating = $1, rating_text = $2 WHERE booking_id = $3 AND rating IS NULL")
        .bind(rating)
        .bind(text.trim())
        .bind(id)
        .write(db)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(AppError::conflict("already_rated", "该服务已评价过"));
    }
    Ok(())
}

/// Which service records (服务记录) a user sees: as the provider, those of the units they
/// manage; as the customer, those of the units they belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordSide {
    Provider,
    Customer,
}

/// Totals over a year's service records.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecordSums {
    pub n: i64,
    pub hours: i64,
    pub amount: i64,
    pub voucher: i64,
}

/// A service record as the console lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServiceRecordRow {
    pub order_no: String,
    pub instrument_id: i64,
    pub instrument_name: String,
    pub managing_name: String,
    pub user_name: String,
    pub applicant_name: String,
    pub started_at: i64,
    pub completed_at: i64,
    pub service_hours_x100: i64,
    pub amount_fen: i64,
    pub voucher_fen: i64,
    pub data_source: String,
    pub rating: Option<String>,
    pub rating_text: String,
}

/// A year's service records seen from `side`, newest completed first: the totals and one page.
pub async fn service_records(
    db: &Db,
    user_id: i64,
    side: RecordSide,
    year: i64,
    limit: i64,
    offset: i64,
) -> Result<(RecordSums, Vec<ServiceRecordRow>)> {
    let scope = match side {
        RecordSide::Provider => {
            "sr.managing_unit_id IN (SELECT unit_id FROM unit_members WHERE user_id = $1 AND role = 'manager')"
        }
        RecordSide::Customer => {
            "sr.user_unit_id IN (SELECT unit_id FROM unit_members WHERE user_id = $1)"
        }
    };
    let filter = format!("WHERE {scope} AND sr.year = $2");
    let sums: RecordSums = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(sr.service_hours_x100), 0) AS BIGINT) AS hours, \
         CAST(COALESCE(SUM(sr.amount_fen), 0) AS BIGINT) AS amount, CAST(COALESCE(SUM(sr.voucher_fen), 0) AS BIGINT) AS voucher \
         FROM service_records sr {filter}"
    )))
    .bind(user_id)
    .bind(year)
    .fetch_one(&db.pool)
    .await?;
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT sr.order_no, sr.instrument_id, i.name AS instrument_name, m.name AS managing_name, c.name AS user_name, \
         sr.applicant_name, sr.started_at, sr.completed_at, sr.service_hours_x100, sr.amount_fen, sr.voucher_fen, \
         sr.data_source, sr.rating, sr.rating_text \
         FROM service_records sr JOIN instruments i ON i.id = sr.instrument_id JOIN units m ON m.id = sr.managing_unit_id \
         JOIN units c ON c.id = sr.user_unit_id {filter} ORDER BY sr.completed_at DESC, sr.id DESC LIMIT $3 OFFSET $4"
    )))
    .bind(user_id)
    .bind(year)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok((sums, rows))
}
