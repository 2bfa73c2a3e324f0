//! Reading bookings: one booking, busy slots, counts and lists for the console, ratings and
//! the service records (服务记录) with their yearly sums.

#[allow(unused_imports)]
use super::*;

/// A booking row as [`get`] reads it.
#[derive(sqlx::FromRow)]
pub(super) struct BookingRow {
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
    pub checked_in_at: Option<i64>,
    pub checked_out_at: Option<i64>,
}

pub(super) const LIST_SELECT: &str = "SELECT b.id, b.instrument_id, i.name AS instrument_name, u.name AS unit_name, o.name AS owner_name, \
    b.start_at, b.end_at, b.purpose, b.status, b.price_fen, b.voucher_fen, i.customs_supervised, b.cancel_reason, \
    (SELECT sr.rating FROM service_records sr WHERE sr.booking_id = b.id) AS rating, \
    b.kind, b.sample_count, b.report_upload_id, (SELECT s.name FROM services s WHERE s.id = b.service_id) AS service_name, \
    b.checked_in_at, b.checked_out_at \
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
