//! The money API (`/api/v1`): bookings, voucher balances, grades, subsidy settlements and
//! the policy, as `api-contract.md` says.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState,
    api::{ApiError, ApiResult},
    extract::{ApiJson, ApiMultipart, ApiPath, ApiQuery},
    routes::{Access, Route},
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

/// Bookings, vouchers, redemptions, grades, settlements and the policy.
pub fn routes() -> Vec<Route> {
    use Permission::*;
    let s = Access::SignedIn;
    vec![
        Route::post("/api/v1/bookings", BookingCreate, create_booking),
        Route::get("/api/v1/bookings/{id}", s, get_booking),
        Route::post("/api/v1/bookings/{id}/quote", BookingHandle, quote),
        Route::post("/api/v1/bookings/{id}/confirm", BookingCreate, confirm),
        Route::post("/api/v1/bookings/{id}/complete", BookingHandle, complete),
        Route::post("/api/v1/bookings/{id}/cancel", s, cancel),
        Route::post("/api/v1/bookings/{id}/rating", BookingCreate, rate),
        // The platform's decision on a self-dealing booking (关联交易).
        Route::post(
            "/api/v1/bookings/{id}/voucher-exception",
            VoucherManage,
            voucher_exception,
        ),
        Route::get("/api/v1/units/{id}/vouchers", s, voucher_balance),
        Route::get("/api/v1/units/{id}/voucher-ledger", s, voucher_ledger),
        Route::put(
            "/api/v1/units/{id}/grades/{year}",
            EvaluationManage,
            set_grade,
        ),
        Route::post(
            "/api/v1/subsidy-settlements",
            SubsidyManage,
            create_settlement,
        ),
        // Administrators, and the unit whose line it is.
        Route::get("/api/v1/subsidy-settlements/{id}", s, get_settlement),
        Route::post(
            "/api/v1/subsidy-settlements/{id}/confirm",
            s,
            confirm_settlement,
        ),
        Route::post(
            "/api/v1/subsidy-settlements/{id}/objection",
            s,
            object_settlement,
        ),
        Route::get(
            "/api/v1/subsidy-settlements/{id}/export.xlsx",
            SubsidyManage,
            export_settlement,
        ),
        Route::get("/api/v1/policy", SubsidyManage, get_policy),
        Route::put("/api/v1/policy", SubsidyManage, put_policy),
        Route::post("/api/v1/voucher-applications", VoucherApply, apply_vouchers),
        Route::post("/api/v1/redemptions", RedemptionApply, create_redemption),
        Route::get("/api/v1/redemptions/{id}", s, get_redemption),
        Route::post("/api/v1/redemptions/{id}/files", s, add_redemption_file)
            .body_limit(super::uploads::BODY_LIMIT),
        Route::get(
            "/api/v1/redemptions/{id}/files/{file_id}",
            s,
            redemption_file,
        ),
    ]
}

fn year_or_now(state: &AppState, y: Option<i64>) -> Result<i64, ApiError> {
    use chrono::Datelike;
    let year = y.unwrap_or_else(|| state.clock.today().year() as i64);
    if !(2000..=2100).contains(&year) {
        return Err(AppError::field("year", "年份不正确").into());
    }
    Ok(year)
}
