//! 服务记录: the service records of the signed-in user's units — as the provider (the managing
//! unit's record of its services) or as the customer (what was used, and how it was rated).

use axum::{extract::State, response::IntoResponse};
use chrono::Datelike;
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use super::{
    AppState,
    extract::PageQuery,
    page::{Page, PageResult},
    routes::Route,
    session::SignedIn,
};
use crate::{auth::Permission, domain::Yuan, money::bookings::RATINGS};

const PER_PAGE: i64 = 20;

/// The service-record page.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/console/service-records", Permission::ConsoleAccess, page).nav("服务记录", 90),
    ]
}

#[derive(Deserialize, Default)]
struct Query {
    side: Option<String>,
    year: Option<i64>,
    page: Option<i64>,
}

async fn page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<Query>,
) -> PageResult {
    user.require(Permission::ConsoleAccess)?;
    let provider = match q.side.as_deref() {
        Some("provider") => true,
        Some(_) => false,
        None => user.can(Permission::BookingHandle),
    };
    let year = q
        .year
        .unwrap_or_else(|| state.clock.today().year() as i64)
        .clamp(2000, 2100);
    let page = q.page.unwrap_or(1).clamp(1, 100_000);
    // Providers see their managed units' records; customers those of the units they belong to.
    let scope = if provider {
        "sr.managing_unit_id IN (SELECT unit_id FROM unit_members WHERE user_id = $1 AND role = 'manager')"
    } else {
        "sr.user_unit_id IN (SELECT unit_id FROM unit_members WHERE user_id = $1)"
    };
    let filter = format!("WHERE {scope} AND sr.year = $2");
    let sums = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(sr.service_hours_x100), 0) AS BIGINT) AS hours, \
         CAST(COALESCE(SUM(sr.amount_fen), 0) AS BIGINT) AS amount, CAST(COALESCE(SUM(sr.voucher_fen), 0) AS BIGINT) AS voucher \
         FROM service_records sr {filter}"
    )))
    .bind(user.id)
    .bind(year)
    .fetch_one(&state.db.pool)
    .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT sr.order_no, sr.instrument_id, i.name AS instrument_name, m.name AS managing_name, c.name AS user_name, \
         sr.applicant_name, sr.started_at, sr.completed_at, sr.service_hours_x100, sr.amount_fen, sr.voucher_fen, \
         sr.data_source, sr.rating, sr.rating_text \
         FROM service_records sr JOIN instruments i ON i.id = sr.instrument_id JOIN units m ON m.id = sr.managing_unit_id \
         JOIN units c ON c.id = sr.user_unit_id {filter} ORDER BY sr.completed_at DESC, sr.id DESC LIMIT $3 OFFSET $4"
    )))
    .bind(user.id)
    .bind(year)
    .bind(PER_PAGE)
    .bind((page - 1) * PER_PAGE)
    .fetch_all(&state.db.pool)
    .await?;
    let items: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "order_no": r.get::<String, _>("order_no"),
                "instrument_id": r.get::<i64, _>("instrument_id"),
                "instrument_name": r.get::<String, _>("instrument_name"),
                "managing_name": r.get::<String, _>("managing_name"),
                "user_name": r.get::<String, _>("user_name"),
                "applicant": r.get::<String, _>("applicant_name"),
                "started": crate::clock::display(r.get("started_at")),
                "completed": crate::clock::display(r.get("completed_at")),
                "hours": rust_decimal::Decimal::new(r.get("service_hours_x100"), 2),
                "amount": Yuan::from_fen(r.get("amount_fen")),
                "voucher": Yuan::from_fen(r.get("voucher_fen")),
                "source": r.get::<String, _>("data_source"),
                "rating": r.get::<Option<String>, _>("rating"),
                "rating_text": r.get::<String, _>("rating_text"),
            })
        })
        .collect();
    let total: i64 = sums.get("n");
    let side = if provider { "provider" } else { "consumer" };
    Ok(Page::new(
        "console/service_records.html",
        crate::ctx! {
            items => items, side => side, year => year, ratings => RATINGS,
            can_provide => user.can(Permission::BookingHandle),
            sums => json!({"count": total, "hours": rust_decimal::Decimal::new(sums.get("hours"), 2),
                "amount": Yuan::from_fen(sums.get("amount")), "voucher": Yuan::from_fen(sums.get("voucher"))}),
            pager => super::page::pager(page, total, PER_PAGE),
            query => json!({"side": side, "year": year}),
        },
    )
    .into_response())
}
