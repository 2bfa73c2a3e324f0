//! The money API (`/api/v1`): bookings, voucher balances, grades, subsidy settlements and
//! the policy, as `api-contract.md` says.

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post, put},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState,
    api::{ApiError, ApiResult},
    extract::{ApiJson, ApiMultipart, ApiPath, ApiQuery},
    session::ApiUser,
};
use crate::{
    auth::Permission,
    domain::Yuan,
    error::AppError,
    money::{self, bookings, redemptions, settlement, vouchers},
};

/// Routes and the permission each needs.
mod booking_api;
mod settlement_api;

pub use booking_api::*;
pub use settlement_api::*;

pub const ROUTES: &[(&str, &str, Option<Permission>)] = &[
    ("POST", "/api/v1/bookings", Some(Permission::BookingCreate)),
    (
        "POST",
        "/api/v1/subsidy-settlements",
        Some(Permission::SubsidyManage),
    ),
    ("GET", "/api/v1/policy", Some(Permission::SubsidyManage)),
    ("PUT", "/api/v1/policy", Some(Permission::SubsidyManage)),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/bookings", post(create_booking))
        .route("/bookings/{id}", get(get_booking))
        .route("/bookings/{id}/quote", post(quote))
        .route("/bookings/{id}/confirm", post(confirm))
        .route("/bookings/{id}/complete", post(complete))
        .route("/bookings/{id}/cancel", post(cancel))
        .route("/bookings/{id}/rating", post(rate))
        .route("/units/{id}/vouchers", get(voucher_balance))
        .route("/units/{id}/voucher-ledger", get(voucher_ledger))
        .route("/units/{id}/grades/{year}", put(set_grade))
        .route("/subsidy-settlements", post(create_settlement))
        .route("/subsidy-settlements/{id}", get(get_settlement))
        .route(
            "/subsidy-settlements/{id}/confirm",
            post(confirm_settlement),
        )
        .route(
            "/subsidy-settlements/{id}/objection",
            post(object_settlement),
        )
        .route(
            "/subsidy-settlements/{id}/export.xlsx",
            get(export_settlement),
        )
        .route("/policy", get(get_policy).put(put_policy))
        .route("/voucher-applications", post(apply_vouchers))
        .route("/redemptions", post(create_redemption))
        .route("/redemptions/{id}", get(get_redemption))
        .route(
            "/redemptions/{id}/files",
            post(add_redemption_file).layer(DefaultBodyLimit::max(super::uploads::BODY_LIMIT)),
        )
        .route("/redemptions/{id}/files/{file_id}", get(redemption_file))
}

/// Start `flow` (key, subject type, table) for a record just created, and remember the
/// instance on the record. If the flow refuses to start, `cleanup` (statements binding the
/// id) removes the record again, so nothing is left half-submitted.
pub(super) async fn start_flow(
    state: &AppState,
    (key, subject_type, table): (&str, &str, &'static str),
    id: i64,
    applicant: i64,
    data: Value,
    cleanup: &[&'static str],
) -> Result<crate::workflow::Started, ApiError> {
    match crate::workflow::start(state, key, subject_type, id, applicant, data).await {
        Ok(started) => {
            crate::money::set_instance(&state.db, table, id, started.instance_id).await?;
            Ok(started)
        }
        Err(e) => {
            crate::money::run_cleanup(&state.db, cleanup, id).await?;
            Err(e.into())
        }
    }
}

fn year_or_now(state: &AppState, y: Option<i64>) -> Result<i64, ApiError> {
    use chrono::Datelike;
    let year = y.unwrap_or_else(|| state.clock.today().year() as i64);
    if !(2000..=2100).contains(&year) {
        return Err(AppError::field("year", "年份不正确").into());
    }
    Ok(year)
}
