//! The indicators a declaration carries, computed from the platform's own data.

use sqlx::Row;

#[allow(unused_imports)]
use super::*;

/// The indicators computed from the platform's data for a unit and year.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Indicators {
    /// Approved instruments of the unit.
    pub instruments: i64,
    /// Service hours of all service records completed in the year.
    pub effective_hours: Decimal,
    /// Service hours for other units (对外服务机时).
    pub external_hours: Decimal,
    /// External hours ÷ effective hours, in percent, two places.
    pub sharing_rate: Decimal,
    pub services: i64,
    pub external_services: i64,
    /// The service records' amounts.
    pub service_income: Yuan,
    /// Voucher amounts whose redemption was approved (the sharing-service income).
    pub voucher_income: Yuan,
    pub ratings: i64,
    /// Ratings of 非常满意 or 基本满意.
    pub satisfied: i64,
    /// Satisfied ÷ ratings, in percent, two places.
    pub satisfaction_rate: Decimal,
}

fn percent(part: Decimal, whole: Decimal) -> Decimal {
    if whole.is_zero() {
        two_places(Decimal::ZERO)
    } else {
        two_places(part * Decimal::ONE_HUNDRED / whole)
    }
}

/// Half-up to two places, always shown with two (80 → 80.00).
pub(super) fn two_places(v: Decimal) -> Decimal {
    let mut v = v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    v.rescale(2);
    v
}

fn hours(x100: i64) -> Decimal {
    Decimal::new(x100, 2)
}

/// Compute a unit's indicators for `year` from service records, redemptions and ratings.
pub async fn indicators(
    conn: &mut crate::store::Conn,
    unit_id: i64,
    year: i64,
) -> Result<Indicators> {
    let (instruments,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM instruments WHERE unit_id = $1 AND review_status = 'approved'",
    )
    .bind(unit_id)
    .fetch_one(&mut *conn)
    .await?;
    let r = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS services, \
         CAST(COALESCE(SUM(service_hours_x100), 0) AS BIGINT) AS hours, \
         CAST(COALESCE(SUM(CASE WHEN user_unit_id <> managing_unit_id THEN service_hours_x100 ELSE 0 END), 0) AS BIGINT) AS ext_hours, \
         CAST(COALESCE(SUM(CASE WHEN user_unit_id <> managing_unit_id THEN 1 ELSE 0 END), 0) AS BIGINT) AS ext_services, \
         CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS income, \
         CAST(COALESCE(SUM(CASE WHEN rating IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS ratings, \
         CAST(COALESCE(SUM(CASE WHEN rating IN ('非常满意', '基本满意') THEN 1 ELSE 0 END), 0) AS BIGINT) AS satisfied \
         FROM service_records WHERE managing_unit_id = $1 AND year = $2 AND review_status = 'approved'",
    )
    .bind(unit_id)
    .bind(year)
    .fetch_one(&mut *conn)
    .await?;
    let (voucher,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(sr.voucher_fen), 0) AS BIGINT) FROM service_records sr \
         JOIN redemption_items ri ON ri.booking_id = sr.booking_id JOIN redemptions rd ON rd.id = ri.redemption_id \
         WHERE sr.managing_unit_id = $1 AND sr.year = $2 AND rd.status = 'approved'",
    )
    .bind(unit_id)
    .bind(year)
    .fetch_one(&mut *conn)
    .await?;
    let effective = hours(r.get("hours"));
    let external = hours(r.get("ext_hours"));
    let ratings: i64 = r.get("ratings");
    let satisfied: i64 = r.get("satisfied");
    Ok(Indicators {
        instruments,
        effective_hours: effective,
        external_hours: external,
        sharing_rate: percent(external, effective),
        services: r.get("services"),
        external_services: r.get("ext_services"),
        service_income: Yuan::from_fen(r.get("income")),
        voucher_income: Yuan::from_fen(voucher),
        ratings,
        satisfied,
        satisfaction_rate: percent(Decimal::from(satisfied), Decimal::from(ratings)),
    })
}
