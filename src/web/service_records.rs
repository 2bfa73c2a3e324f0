//! 服务记录: the service records of the signed-in user's units — as the provider (the managing
//! unit's record of its services) or as the customer (what was used, and how it was rated).

use axum::{extract::State, response::IntoResponse};
use chrono::Datelike;
use serde::Deserialize;
use serde_json::json;

use super::{
    AppState,
    extract::PageQuery,
    page::{Page, PageResult},
    routes::Route,
    session::SignedIn,
};
use crate::{
    auth::Permission,
    domain::Yuan,
    money::bookings::{self, RATINGS, RecordSide},
};

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
    let (sums, rows) = bookings::service_records(
        &state.db,
        user.id,
        if provider {
            RecordSide::Provider
        } else {
            RecordSide::Customer
        },
        year,
        PER_PAGE,
        (page - 1) * PER_PAGE,
    )
    .await?;
    let items: Vec<_> = rows
        .into_iter()
        .map(|r| {
            json!({
                "order_no": r.order_no,
                "instrument_id": r.instrument_id,
                "instrument_name": r.instrument_name,
                "managing_name": r.managing_name,
                "user_name": r.user_name,
                "applicant": r.applicant_name,
                "started": crate::clock::display(r.started_at),
                "completed": crate::clock::display(r.completed_at),
                "hours": rust_decimal::Decimal::new(r.service_hours_x100, 2),
                "amount": Yuan::from_fen(r.amount_fen),
                "voucher": Yuan::from_fen(r.voucher_fen),
                "source": r.data_source,
                "rating": r.rating,
                "rating_text": r.rating_text,
            })
        })
        .collect();
    let total = sums.n;
    let side = if provider { "provider" } else { "consumer" };
    Ok(Page::new(
        "console/service_records.html",
        crate::ctx! {
            items => items, side => side, year => year, ratings => RATINGS,
            can_provide => user.can(Permission::BookingHandle),
            sums => json!({"count": total, "hours": rust_decimal::Decimal::new(sums.hours, 2),
                "amount": Yuan::from_fen(sums.amount), "voucher": Yuan::from_fen(sums.voucher)}),
            pager => super::page::pager(page, total, PER_PAGE),
            query => json!({"side": side, "year": year}),
        },
    )
    .into_response())
}
