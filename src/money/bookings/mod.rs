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
    domain::Yuan,
    error::{AppError, FieldErrors, Result},
    store::Db,
};

/// Opening hours in Asia/Shanghai (contract default for new instruments).
pub mod availability;
pub mod availability_bench;
pub mod checkin;
pub mod qualifications;
mod queries;
pub mod repeats;
mod self_dealing;
pub mod waitlist;

pub use checkin::BookingRules;

pub use queries::*;
pub use self_dealing::*;

/// The contract's default opening hours (Asia/Shanghai); 平台配置 may change them
/// (`Settings::booking_open_hour`, `booking_close_hour`), which bookings follow.
pub const OPEN_HOUR: u32 = 8;
pub const CLOSE_HOUR: u32 = 18;

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
    /// `{weekly: N}`: the same slot in N consecutive weeks (see [`repeats`]).
    #[serde(default)]
    pub repeat: Option<repeats::Repeat>,
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
    #[sqlx(try_from = "crate::store::Flag")]
    multi_day: bool,
}

async fn instrument_rules(conn: &mut crate::store::Conn, id: i64) -> Result<InstrumentRules> {
    sqlx::query_as(
        "SELECT unit_id, review_status, open_to_public, slot_minutes, min_lead_hours, max_days_ahead, \
         max_duration_hours, customs_supervised, multi_day FROM instruments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::field("instrument_id", "仪器不存在"))
}

/// Check the time slot against the instrument's booking rules; Chinese messages per field.
/// The opening hours and working days are the ones published (平台配置, 工作日历).
fn check_slot(
    rules: &InstrumentRules,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
    published: &crate::published::Published,
) -> FieldErrors {
    let hours = availability::Hours::published(published);
    let (open_hour, close_hour) = (hours.open_hour, hours.close_hour);
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
    let out_of_hours = ls.hour() < open_hour
        || ls.hour() >= close_hour
        || le.hour() < open_hour
        || (le.hour() > close_hour || (le.hour() == close_hour && le.minute() > 0))
        || (le.hour() == open_hour && le.minute() == 0 && ls.date_naive() != le.date_naive());
    if (ls.date_naive() != le.date_naive() && !rules.multi_day) || out_of_hours {
        e.insert(
            "start".into(),
            if rules.multi_day {
                format!(
                    "开始和结束时间须在工作日 {open_hour:02}:00–{close_hour:02}:00（北京时间）之内"
                )
            } else {
                format!(
                    "开放时间为工作日 {open_hour:02}:00–{close_hour:02}:00（北京时间），不可跨日"
                )
            },
        );
    } else if !hours.calendar.is_working_day(ls.date_naive())
        || !hours.calendar.is_working_day(le.date_naive())
    {
        e.insert(
            "start".into(),
            "所选日期为周末或法定节假日，不开放预约".into(),
        );
    }
    e
}

/// Request a booking.
pub async fn create(db: &Db, user: &CurrentUser, new: NewBooking, now_ts: i64) -> Result<i64> {
    create_as(db, user, new, now_ts, Placement::default()).await
}

/// How a booking is placed: its kind, its repeat series, the waitlist offer it takes up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Placement {
    /// A training booking (培训预约): allowed without the qualification, confirmed by the unit.
    pub training: bool,
    pub series_id: Option<i64>,
    /// The waitlist entry whose held offer this booking takes (its hold does not block it).
    pub waitlist_id: Option<i64>,
}

/// Request a booking placed as `how` says.
pub async fn create_as(
    db: &Db,
    user: &CurrentUser,
    new: NewBooking,
    now_ts: i64,
    how: Placement,
) -> Result<i64> {
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
    let mut conn = db.acquire().await?;
    let rules = instrument_rules(&mut conn, new.instrument_id).await?;
    crate::instruments::operation::refuse_booking(&mut conn, new.instrument_id).await?;
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
            .fetch_optional(&mut conn)
            .await?;
    if cert.as_deref() != Some("certified") {
        return Err(AppError::unprocessable(
            "unit_not_eligible",
            "预约单位尚未通过认证，认证通过后才能预约",
        ));
    }
    checkin::ensure_not_suspended(&mut conn, new.unit_id, now_ts).await?;
    let (Some(start), Some(end)) = (start, end) else {
        return Err(AppError::fields(errors).unwrap_or(AppError::BadRequest("时间".into())));
    };
    if !how.training {
        qualifications::ensure_qualified(
            &mut conn,
            new.instrument_id,
            user.id,
            start.with_timezone(&Shanghai).date_naive(),
        )
        .await?;
    }
    let now = DateTime::from_timestamp(now_ts, 0).unwrap_or_default();
    errors.extend(check_slot(&rules, start, end, now, &db.published));
    if let Some(e) = AppError::fields(errors) {
        return Err(e);
    }
    let (s, e) = (start.timestamp(), end.timestamp());
    drop(conn);
    let mut tx = db.begin_write().await?;
    // A slot held for a waiter (an open waitlist offer) is not free for anyone else.
    let inserted: std::result::Result<Option<i64>, sqlx::Error> = sqlx::query_scalar(
        "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, sample_info, created_at, updated_at, kind, series_id) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10 WHERE NOT EXISTS (SELECT 1 FROM bookings \
         WHERE instrument_id = $1 AND live = 1 AND start_at < $5 AND end_at > $4) \
         AND NOT EXISTS (SELECT 1 FROM booking_waitlist WHERE instrument_id = $1 AND status = 'offered' \
         AND offer_expires_at > $8 AND start_at < $5 AND end_at > $4 AND id <> $11) RETURNING id",
    )
    .bind(new.instrument_id)
    .bind(new.unit_id)
    .bind(user.id)
    .bind(s)
    .bind(e)
    .bind(&purpose)
    .bind(new.sample_info.trim())
    .bind(now_ts)
    .bind(if how.training { "training" } else { "slot" })
    .bind(how.series_id)
    .bind(how.waitlist_id.unwrap_or(0))
    .fetch_optional(&mut *tx)
    .await;
    match inserted {
        Ok(Some(id)) => {
            if let Some(w) = how.waitlist_id {
                let n = sqlx::query(
                    "UPDATE booking_waitlist SET status = 'accepted', booking_id = $1, updated_at = $2 \
                     WHERE id = $3 AND status = 'offered' AND offer_expires_at > $2",
                )
                .bind(id)
                .bind(now_ts)
                .bind(w)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    return Err(waitlist::offer_gone());
                }
            }
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
pub(crate) struct Row_ {
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
    checked_in_at: Option<i64>,
    checked_out_at: Option<i64>,
}

/// Lock the booking row for the transaction before reading it: a no-op write takes the row
/// lock on PostgreSQL and the write lock on SQLite (so no stale snapshot can be upgraded).
pub(crate) async fn load(conn: &mut crate::store::Conn, id: i64) -> Result<Row_> {
    sqlx::query("UPDATE bookings SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query_as(
        "SELECT b.unit_id, b.instrument_id, i.unit_id AS managing_unit_id, b.status, b.start_at, b.end_at, \
         b.price_fen, b.voucher_fen, b.voucher_year, b.user_id, b.kind, b.report_upload_id, \
         b.checked_in_at, b.checked_out_at FROM bookings b JOIN instruments i ON i.id = b.instrument_id WHERE b.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AppError::NotFound)
}

pub(crate) fn wrong_state(status: &str, wanted: &str) -> AppError {
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
        "no_show" => "爽约",
        _ => "未知",
    }
}

/// Compare-and-swap the status; false when someone else changed it first.
pub(crate) async fn transition(
    conn: &mut crate::store::Conn,
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
    user.require_for(crate::auth::Permission::BookingHandle, b.managing_unit_id)?;
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
    user.require_for(crate::auth::Permission::BookingHandle, b.managing_unit_id)?;
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
    let (started, ended) = match (b.checked_in_at, b.checked_out_at) {
        (Some(i), Some(o)) if o > i => (i, o),
        _ => (b.start_at, b.end_at),
    };
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
    // A testing order occupies no booked time: its machine hours are not known here. A
    // checked-in and checked-out booking gives the measured hours (实际机时).
    .bind(if testing {
        0
    } else {
        (ended - started) * 100 / 3600
    })
    .bind(started)
    .bind(if testing { now } else { ended })
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

/// Mark the booking as part of a repeat series (the series is its first booking's id).
pub(crate) async fn set_series(db: &Db, id: i64, series: i64) -> Result<()> {
    sqlx::query("UPDATE bookings SET series_id = $1 WHERE id = $2")
        .bind(series)
        .bind(id)
        .write(db)
        .await?;
    Ok(())
}
