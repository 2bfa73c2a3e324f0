//! The measures (统计量) the indicator formulas name, counted for a year and a scope (the
//! platform, a unit; optionally one class, city or quarter). `aggregated` reads the tables the
//! triggers of migration 0017 keep current; `raw` counts the same from the source tables —
//! the tests compare the two and the benchmark times both.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use sqlx::Row;

use super::formulas::IndicatorRules;
use crate::{error::Result, money::bookings::RATINGS, store::Db};

/// What to count: a year, and optionally a unit, a major class (`010000`), a city, a quarter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    pub year: i64,
    pub unit_id: Option<i64>,
    pub category: Option<String>,
    pub city: Option<String>,
    pub quarter: Option<u32>,
    pub instrument_id: Option<i64>,
}

impl Scope {
    pub fn year(year: i64) -> Scope {
        Scope {
            year,
            ..Default::default()
        }
    }

    pub fn months(&self) -> (i64, i64) {
        match self.quarter {
            Some(q @ 1..=4) => (i64::from(q) * 3 - 2, i64::from(q) * 3),
            _ => (1, 12),
        }
    }
}

/// Measure name → value (hours and yuan as decimals with two places, counts as integers).
pub type Measures = BTreeMap<String, Decimal>;

/// Bind values of a dynamically assembled query.
pub(super) enum Bind {
    I(i64),
    S(String),
}

/// `AND …` conditions for the scope's filters on an instruments alias `i` (class, city, unit,
/// instrument) starting at placeholder `$n`.
pub(super) fn instrument_conds(scope: &Scope, alias: &str, first: usize) -> (String, Vec<Bind>) {
    let mut sql = String::new();
    let mut binds = Vec::new();
    let mut n = first;
    if let Some(u) = scope.unit_id {
        sql.push_str(&format!(" AND {alias}.unit_id = ${n}"));
        binds.push(Bind::I(u));
        n += 1;
    }
    if let Some(c) = &scope.category {
        sql.push_str(&format!(" AND {alias}.category_code LIKE ${n}"));
        binds.push(Bind::S(format!("{}%", c.get(..2).unwrap_or(c))));
        n += 1;
    }
    if let Some(c) = &scope.city {
        sql.push_str(&format!(" AND {alias}.city = ${n}"));
        binds.push(Bind::S(c.clone()));
        n += 1;
    }
    if let Some(id) = scope.instrument_id {
        sql.push_str(&format!(" AND {alias}.id = ${n}"));
        binds.push(Bind::I(id));
    }
    (sql, binds)
}

pub(super) async fn fetch_all(
    db: &Db,
    sql: String,
    binds: Vec<Bind>,
) -> Result<Vec<sqlx::any::AnyRow>> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = match b {
            Bind::I(v) => q.bind(v),
            Bind::S(v) => q.bind(v),
        };
    }
    Ok(q.fetch_all(&db.pool).await?)
}

fn dec(v: i64) -> Decimal {
    Decimal::from(v)
}

fn cents(v: i64) -> Decimal {
    Decimal::new(v, 2)
}

/// `AND …` conditions for the scope's unit, class and city on a pre-aggregated table keyed by
/// `unit_id`, `category` (the major code) and `city` (`prefix`: its alias and a dot, or
/// nothing), from placeholder `$first`.
pub(super) fn stat_conds(scope: &Scope, prefix: &str, first: usize) -> (String, Vec<Bind>) {
    let mut sql = String::new();
    let mut binds = Vec::new();
    if let Some(u) = scope.unit_id {
        binds.push(Bind::I(u));
        sql.push_str(&format!(
            " AND {prefix}unit_id = ${}",
            first + binds.len() - 1
        ));
    }
    if let Some(c) = &scope.category {
        binds.push(Bind::S(crate::catalog::major_code(c)));
        sql.push_str(&format!(
            " AND {prefix}category = ${}",
            first + binds.len() - 1
        ));
    }
    if let Some(c) = &scope.city {
        binds.push(Bind::S(c.clone()));
        sql.push_str(&format!(" AND {prefix}city = ${}", first + binds.len() - 1));
    }
    (sql, binds)
}

/// The national reporting threshold `stat_instrument_counts.reportable` was counted with
/// (migration 0022). Should `reporting::national` ever say otherwise, the instrument measures
/// are counted from the rows instead, and the test below fails as a reminder to migrate.
pub const AGGREGATED_REPORTABLE_MIN_FEN: i64 = 50_000_000;

/// The instrument measures (counts, value, status, type, reported). Pre-aggregated: the
/// counts by status and type, and their reportable part, from `stat_instrument_counts`;
/// from the rows: the same grouped read of the covering index.
async fn instrument_measures(
    db: &Db,
    rules: &IndicatorRules,
    scope: &Scope,
    m: &mut Measures,
    pre_aggregated: bool,
) -> Result<()> {
    let min = crate::reporting::national::reportable_min_fen();
    // One row per status and type, with how many of them are reportable (`r`).
    let sum = |c: &str| format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT)");
    let rows = if pre_aggregated && min == AGGREGATED_REPORTABLE_MIN_FEN {
        let (conds, binds) = stat_conds(scope, "", 1);
        fetch_all(
            db,
            format!(
                "SELECT usage_status, instrument_type, {} AS n, {} AS v, {} AS r \
                 FROM stat_instrument_counts WHERE n <> 0{conds} GROUP BY usage_status, instrument_type",
                sum("n"),
                sum("value_fen"),
                sum("reportable"),
            ),
            binds,
        )
        .await?
    } else {
        let (conds, mut binds) = instrument_conds(scope, "i", 2);
        binds.insert(0, Bind::I(min));
        fetch_all(
            db,
            format!(
                "SELECT i.usage_status, i.instrument_type, CAST(COUNT(*) AS BIGINT) AS n, {} AS v, {} AS r \
                 FROM instruments i WHERE i.review_status = 'approved'{conds} GROUP BY i.usage_status, i.instrument_type",
                sum("i.value_fen"),
                sum("CASE WHEN i.value_fen >= $1 THEN 1 ELSE 0 END"),
            ),
            binds,
        )
        .await?
    };
    let mut add = |k: &str, v: Decimal| *m.entry(k.to_string()).or_default() += v;
    for r in &rows {
        let n = dec(r.get("n"));
        let status: String = r.get("usage_status");
        let kind: String = r.get("instrument_type");
        add("instruments", n);
        add("instrument_value", cents(r.get("v")));
        add("instruments_reportable", dec(r.get("r")));
        if rules.normal_statuses.contains(&status) {
            add("instruments_normal", n);
        }
        if kind == "专用" {
            add("special_instruments", n);
        } else {
            add("general_instruments", n);
        }
    }
    let (conds, mut binds) = instrument_conds(scope, "i", 2);
    binds.insert(0, Bind::I(min));
    let rows = fetch_all(
        db,
        format!(
            "SELECT CAST(COUNT(DISTINCT ri.record_id) AS BIGINT) AS n FROM report_items ri JOIN report_batches rb ON rb.id = ri.batch_id \
             JOIN instruments i ON i.id = ri.record_id WHERE rb.kind = 'instruments' AND ri.upstream_status = 'accepted' \
             AND i.review_status = 'approved' AND i.value_fen >= $1{conds}"
        ),
        binds,
    )
    .await?;
    add("instruments_reported", dec(rows[0].get("n")));
    Ok(())
}

/// Approved redemptions' voucher amounts of the scope's year (the sharing-service income).
/// Read from the redemptions, far fewer than the service records (`CROSS JOIN` keeps
/// SQLite's join order; PostgreSQL plans it as an inner join either way).
async fn voucher_income(db: &Db, scope: &Scope, m: &mut Measures) -> Result<()> {
    let (conds, mut binds) = instrument_conds(scope, "i", 2);
    binds.insert(0, Bind::I(scope.year));
    let rows = fetch_all(
        db,
        format!(
            "SELECT CAST(COALESCE(SUM(sr.voucher_fen), 0) AS BIGINT) AS v FROM redemptions rd \
             CROSS JOIN redemption_items ri CROSS JOIN service_records sr CROSS JOIN instruments i \
             WHERE ri.redemption_id = rd.id AND sr.booking_id = ri.booking_id AND i.id = sr.instrument_id \
             AND rd.status = 'approved' AND ri.released_at IS NULL AND sr.year = $1{conds}"
        ),
        binds,
    )
    .await?;
    m.insert("voucher_income".into(), cents(rows[0].get("v")));
    Ok(())
}

fn finish(rules: &IndicatorRules, m: &mut Measures, ratings: [i64; 5]) {
    let total: i64 = ratings.iter().sum();
    let satisfied: i64 = RATINGS
        .iter()
        .zip(ratings)
        .filter(|(l, _)| rules.satisfied_ratings.iter().any(|s| s == *l))
        .map(|(_, n)| n)
        .sum();
    m.insert("ratings".into(), dec(total));
    m.insert("ratings_satisfied".into(), dec(satisfied));
    let get = |m: &Measures, k: &str| m.get(k).copied().unwrap_or_default();
    let internal_hours = get(m, "effective_hours") - get(m, "external_hours");
    let internal_income = get(m, "service_income") - get(m, "external_income");
    m.insert("internal_hours".into(), internal_hours);
    m.insert("internal_income".into(), internal_income);
    for (k, _) in super::formulas::MEASURES {
        m.entry(k.to_string()).or_default();
    }
}

fn service_sums(m: &mut Measures, r: &sqlx::any::AnyRow) -> [i64; 5] {
    m.insert("services".into(), dec(r.get("services")));
    m.insert("external_services".into(), dec(r.get("external_services")));
    m.insert("effective_hours".into(), cents(r.get("hours")));
    m.insert("external_hours".into(), cents(r.get("ext_hours")));
    m.insert("service_income".into(), cents(r.get("income")));
    m.insert("external_income".into(), cents(r.get("ext_income")));
    [
        r.get("r1"),
        r.get("r2"),
        r.get("r3"),
        r.get("r4"),
        r.get("r5"),
    ]
}

/// The measures from the pre-aggregated tables.
pub async fn aggregated(db: &Db, rules: &IndicatorRules, scope: &Scope) -> Result<Measures> {
    if scope.instrument_id.is_some() {
        // One instrument's records are few: count them directly.
        return raw(db, rules, scope).await;
    }
    let mut m = Measures::new();
    instrument_measures(db, rules, scope, &mut m, true).await?;
    voucher_income(db, scope, &mut m).await?;
    let (from, to) = scope.months();
    let (conds, more) = stat_conds(scope, "", 4);
    let mut binds = vec![Bind::I(scope.year), Bind::I(from), Bind::I(to)];
    binds.extend(more);
    let sum = |c: &str, a: &str| format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT) AS {a}");
    let rows = fetch_all(
        db,
        format!(
            "SELECT {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {} FROM stat_service_months \
             WHERE year = $1 AND month >= $2 AND month <= $3{conds}",
            sum("services", "services"),
            sum("external_services", "external_services"),
            sum("hours_x100", "hours"),
            sum("external_hours_x100", "ext_hours"),
            sum("income_fen", "income"),
            sum("external_income_fen", "ext_income"),
            sum("rating_1", "r1"),
            sum("rating_2", "r2"),
            sum("rating_3", "r3"),
            sum("rating_4", "r4"),
            sum("rating_5", "r5"),
        ),
        binds,
    )
    .await?;
    let ratings = service_sums(&mut m, &rows[0]);
    // Shared instruments are counted per year (a quarter filter does not narrow them).
    let (iconds, mut ibinds) = instrument_conds(scope, "i", 2);
    ibinds.insert(0, Bind::I(scope.year));
    let join = if scope.category.is_some() || scope.city.is_some() {
        " JOIN instruments i ON i.id = s.instrument_id"
    } else {
        ""
    };
    let iconds = if join.is_empty() {
        iconds.replace("i.unit_id", "s.unit_id")
    } else {
        iconds
    };
    let rows = fetch_all(
        db,
        format!(
            "SELECT CAST(COALESCE(SUM(CASE WHEN s.services > 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS shared, \
             CAST(COALESCE(SUM(CASE WHEN s.external_services > 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS ext \
             FROM stat_instrument_years s{join} WHERE s.year = $1{iconds}"
        ),
        ibinds,
    )
    .await?;
    m.insert("instruments_shared".into(), dec(rows[0].get("shared")));
    m.insert(
        "instruments_shared_external".into(),
        dec(rows[0].get("ext")),
    );
    finish(rules, &mut m, ratings);
    Ok(m)
}

/// The same measures counted from `service_records` (no pre-aggregation).
pub async fn raw(db: &Db, rules: &IndicatorRules, scope: &Scope) -> Result<Measures> {
    let mut m = Measures::new();
    instrument_measures(db, rules, scope, &mut m, false).await?;
    voucher_income(db, scope, &mut m).await?;
    let (from, to) = scope.months();
    let (conds, mut binds) = instrument_conds(scope, "i", 4);
    binds.splice(0..0, [Bind::I(scope.year), Bind::I(from), Bind::I(to)]);
    let month = match db.backend {
        crate::store::Backend::Sqlite => {
            "CAST(strftime('%m', sr.completed_at + 28800, 'unixepoch') AS BIGINT)"
        }
        crate::store::Backend::Postgres => {
            "CAST(to_char(to_timestamp(sr.completed_at + 28800) AT TIME ZONE 'UTC', 'MM') AS BIGINT)"
        }
    };
    let ext = "(CASE WHEN sr.user_unit_id <> sr.managing_unit_id THEN 1 ELSE 0 END)";
    let sum = |c: String, a: &str| format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT) AS {a}");
    let rating = |i: usize| format!("(CASE WHEN sr.rating = '{}' THEN 1 ELSE 0 END)", RATINGS[i]);
    let rows = fetch_all(
        db,
        format!(
            "SELECT {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, \
             CAST(COUNT(DISTINCT sr.instrument_id) AS BIGINT) AS shared, \
             CAST(COUNT(DISTINCT CASE WHEN sr.user_unit_id <> sr.managing_unit_id THEN sr.instrument_id END) AS BIGINT) AS ext \
             FROM service_records sr JOIN instruments i ON i.id = sr.instrument_id \
             WHERE sr.review_status = 'approved' AND sr.year = $1 AND {month} >= $2 AND {month} <= $3{conds}",
            sum("1".into(), "services"),
            sum(ext.into(), "external_services"),
            sum("sr.service_hours_x100".into(), "hours"),
            sum(format!("{ext} * sr.service_hours_x100"), "ext_hours"),
            sum("sr.amount_fen".into(), "income"),
            sum(format!("{ext} * sr.amount_fen"), "ext_income"),
            sum(rating(0), "r1"),
            sum(rating(1), "r2"),
            sum(rating(2), "r3"),
            sum(rating(3), "r4"),
            sum(rating(4), "r5"),
        ),
        binds,
    )
    .await?;
    let ratings = service_sums(&mut m, &rows[0]);
    m.insert("instruments_shared".into(), dec(rows[0].get("shared")));
    m.insert(
        "instruments_shared_external".into(),
        dec(rows[0].get("ext")),
    );
    finish(rules, &mut m, ratings);
    Ok(m)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_aggregated_reportable_threshold_is_the_national_one() {
        assert_eq!(
            crate::reporting::national::reportable_min_fen(),
            super::AGGREGATED_REPORTABLE_MIN_FEN
        );
    }
}
