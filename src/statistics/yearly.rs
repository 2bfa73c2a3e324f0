//! The year's figures (`GET /api/v1/statistics`) for the provincial data docking: how much was
//! shared, paid with vouchers, redeemed, graded and subsidised in a year. Service figures come
//! from the pre-aggregated tables; the rest are small aggregates computed when asked.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::Row;

use crate::{domain::Yuan, error::Result, store::Db};

#[derive(Debug, Clone, Serialize)]
pub struct TopInstrument {
    pub id: i64,
    pub name: String,
    pub unit_name: String,
    pub services: i64,
    pub hours: Decimal,
    pub income: Yuan,
}

#[derive(Debug, Clone, Serialize)]
pub struct Statistics {
    pub year: i64,
    /// Approved instruments and their value (all time, as of now).
    pub instruments: i64,
    pub instrument_value: Yuan,
    pub managing_units: i64,
    pub user_units: i64,
    /// Bookings that start in the year, by status.
    pub bookings: BTreeMap<String, i64>,
    /// Service records completed in the year.
    pub services: i64,
    pub external_services: i64,
    pub service_hours: Decimal,
    pub service_income: Yuan,
    /// Ratings by label.
    pub ratings: BTreeMap<String, i64>,
    /// Voucher ledger sums of the year by kind (grant, reserve, release, redeem, expire).
    pub vouchers: BTreeMap<String, Yuan>,
    pub voucher_units: i64,
    /// Redemptions created in the year, by status: (count, total).
    pub redemptions: BTreeMap<String, (i64, Yuan)>,
    /// Evaluations of the year by grade (published ones) and how many are still open.
    pub grades: BTreeMap<String, i64>,
    pub evaluations_open: i64,
    /// The year's latest published settlement total, if any.
    pub subsidy_published: Option<Yuan>,
    pub top_instruments: Vec<TopInstrument>,
}

/// Unix seconds of 1 January `year`, 00:00 in Asia/Shanghai.
fn year_start(year: i64) -> i64 {
    use chrono::TimeZone;
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(year as i32, 1, 1, 0, 0, 0)
        .single()
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

async fn counts(db: &Db, sql: &str, binds: &[i64]) -> Result<BTreeMap<String, i64>> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
    for b in binds {
        q = q.bind(*b);
    }
    Ok(q.fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
        .collect())
}

pub async fn for_year(db: &Db, year: i64) -> Result<Statistics> {
    let (from, to) = (year_start(year), year_start(year + 1));
    let inst = sqlx::query(
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n, CAST(COALESCE(SUM(value_fen), 0) AS BIGINT) AS v FROM stat_instrument_counts",
    )
    .fetch_one(&db.pool)
    .await?;
    let units = counts(
        db,
        "SELECT kind, CAST(COUNT(*) AS BIGINT) FROM units WHERE certification_status = 'certified' GROUP BY kind",
        &[],
    )
    .await?;
    let bookings: BTreeMap<String, i64> = counts(
        db,
        "SELECT status, CAST(SUM(n) AS BIGINT) FROM stat_booking_months WHERE year = $1 GROUP BY status",
        &[year],
    )
    .await?
    .into_iter()
    .filter(|(_, n)| *n != 0)
    .collect();
    let sr = sqlx::query(
        "SELECT CAST(COALESCE(SUM(services), 0) AS BIGINT) AS n, CAST(COALESCE(SUM(external_services), 0) AS BIGINT) AS ext, \
         CAST(COALESCE(SUM(hours_x100), 0) AS BIGINT) AS hours, CAST(COALESCE(SUM(income_fen), 0) AS BIGINT) AS income, \
         CAST(COALESCE(SUM(rating_1), 0) AS BIGINT) AS r1, CAST(COALESCE(SUM(rating_2), 0) AS BIGINT) AS r2, \
         CAST(COALESCE(SUM(rating_3), 0) AS BIGINT) AS r3, CAST(COALESCE(SUM(rating_4), 0) AS BIGINT) AS r4, \
         CAST(COALESCE(SUM(rating_5), 0) AS BIGINT) AS r5 FROM stat_service_months WHERE year = $1",
    )
    .bind(year)
    .fetch_one(&db.pool)
    .await?;
    let ratings: BTreeMap<String, i64> = crate::money::bookings::RATINGS
        .iter()
        .zip(["r1", "r2", "r3", "r4", "r5"])
        .map(|(l, c)| (l.to_string(), sr.get::<i64, _>(c)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let vouchers = counts(
        db,
        "SELECT kind, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM voucher_ledger WHERE year = $1 GROUP BY kind",
        &[year],
    )
    .await?
    .into_iter()
    .map(|(k, v)| (k, Yuan::from_fen(v)))
    .collect();
    let (voucher_units,): (i64,) =
        sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM voucher_accounts WHERE year = $1")
            .bind(year)
            .fetch_one(&db.pool)
            .await?;
    let redemptions = sqlx::query(
        "SELECT status, CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(total_fen), 0) AS BIGINT) AS total \
         FROM redemptions WHERE created_at >= $1 AND created_at < $2 GROUP BY status",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(|r| {
        (
            r.get::<String, _>("status"),
            (r.get("n"), Yuan::from_fen(r.get("total"))),
        )
    })
    .collect();
    let grades = counts(
        db,
        "SELECT grade, CAST(COUNT(*) AS BIGINT) FROM evaluations WHERE year = $1 AND status = 'published' GROUP BY grade",
        &[year],
    )
    .await?;
    let (evaluations_open,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM evaluations WHERE year = $1 AND status NOT IN ('published', 'rejected', 'withdrawn')",
    )
    .bind(year)
    .fetch_one(&db.pool)
    .await?;
    let subsidy: Option<i64> = sqlx::query_scalar(
        "SELECT total_fen FROM settlements WHERE year = $1 AND status = 'published' ORDER BY id DESC LIMIT 1",
    )
    .bind(year)
    .fetch_optional(&db.pool)
    .await?;
    let top = sqlx::query(
        "SELECT i.id, i.name, u.name AS unit_name, s.services AS n, s.hours_x100 AS hours, s.income_fen AS income \
         FROM stat_instrument_years s JOIN instruments i ON i.id = s.instrument_id JOIN units u ON u.id = i.unit_id \
         WHERE s.year = $1 AND s.services > 0 ORDER BY s.hours_x100 DESC, s.services DESC, s.instrument_id DESC LIMIT 10",
    )
    .bind(year)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(|r| TopInstrument {
        id: r.get("id"),
        name: r.get("name"),
        unit_name: r.get("unit_name"),
        services: r.get("n"),
        hours: Decimal::new(r.get("hours"), 2),
        income: Yuan::from_fen(r.get("income")),
    })
    .collect();
    Ok(Statistics {
        year,
        instruments: inst.get("n"),
        instrument_value: Yuan::from_fen(inst.get("v")),
        managing_units: units.get("managing").copied().unwrap_or(0),
        user_units: units.get("user").copied().unwrap_or(0),
        bookings,
        services: sr.get("n"),
        external_services: sr.get("ext"),
        service_hours: Decimal::new(sr.get("hours"), 2),
        service_income: Yuan::from_fen(sr.get("income")),
        ratings,
        vouchers,
        voucher_units,
        redemptions,
        grades,
        evaluations_open,
        subsidy_published: subsidy.map(Yuan::from_fen),
        top_instruments: top,
    })
}
