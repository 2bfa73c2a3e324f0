//! Testing-service orders (送样检测) on the web: the order form on a testing service's page,
//! the report upload at 预约管理, the report download for both parties, and the API
//! (`POST /api/v1/testing-orders`, `PUT /api/v1/bookings/{id}/report`). Quote, confirm,
//! complete, cancel and rating are the booking endpoints and pages.

use axum::{Json, body::Bytes, extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState,
    api::ApiResult,
    extract::{ApiJson, ApiPath, ApiQuery, CsrfForm, CsrfMultipart, PagePath},
    page::{Page, PageResult, redirect_with_flash, refusal},
    routes::{Access, Route},
    session::{ApiUser, SignedIn},
};
use crate::{
    auth::{CurrentUser, Permission},
    error::{AppError, Result},
    money::testing::{self, NewOrder},
    resources::{self, Kind},
    uploads::{self, Purpose},
};

/// Testing orders and their reports, pages and API.
pub fn routes() -> Vec<Route> {
    use Permission::*;
    let report_limit = uploads::MAX_PDF_BYTES + 512 * 1024;
    vec![
        Route::get("/services/{id}/order", BookingCreate, order_page),
        Route::post("/services/{id}/order", BookingCreate, order),
        Route::post(
            "/console/bookings/{id}/report",
            BookingHandle,
            upload_report,
        )
        .body_limit(report_limit),
        // The provider and the booker may download it.
        Route::get(
            "/console/bookings/{id}/report",
            Access::SignedIn,
            download_report,
        ),
        Route::post("/api/v1/testing-orders", BookingCreate, api_order),
        Route::put("/api/v1/bookings/{id}/report", BookingHandle, api_report)
            .body_limit(report_limit),
    ]
}

async fn api_order(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<NewOrder>,
) -> ApiResult {
    user.require(Permission::BookingCreate)?;
    let id = testing::create(&state.db, &user, body, state.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "status": "requested", "kind": "testing"})),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
struct ReportQuery {
    #[serde(default)]
    name: String,
}

/// Store a report (PDF) and attach it to the order.
async fn store_report(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    name: &str,
    bytes: &[u8],
) -> Result<uploads::Upload> {
    user.require(Permission::BookingHandle)?;
    testing::may_attach_report(&state.db, user, id).await?;
    if bytes.is_empty() {
        return Err(AppError::field("report", "请选择检测报告文件（PDF）"));
    }
    let name = if name.trim().is_empty() {
        "检测报告.pdf"
    } else {
        name
    };
    let upload = uploads::store(
        &state.db,
        &state.config.data_dir,
        name,
        bytes,
        Purpose::Document,
        user.id,
        state.now(),
    )
    .await
    .map_err(|e| match e {
        AppError::Validation { message, .. } => AppError::field("report", message),
        other => other,
    })?;
    testing::attach_report(&state.db, user, id, upload.id, state.now()).await?;
    Ok(upload)
}

/// `PUT /api/v1/bookings/{id}/report?name=报告.pdf` with the PDF as the body.
async fn api_report(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ReportQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let up = store_report(&state, &user, id, &q.name, &body).await?;
    Ok(Json(
        json!({"booking_id": id, "report": {"id": up.id, "name": up.original_name}}),
    ))
}

async fn upload_report(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    form: CsrfMultipart,
) -> PageResult {
    let back = "/console/bookings";
    let Some(file) = form.file("report") else {
        return Ok(redirect_with_flash(back, "请选择检测报告文件（PDF）"));
    };
    match store_report(&state, &user, id, &file.file_name, &file.bytes).await {
        Ok(_) => Ok(redirect_with_flash(back, "检测报告已上传，可以登记完成")),
        Err(e) => match refusal(&e) {
            Some(msg) => Ok(redirect_with_flash(back, &format!("上传未完成：{msg}"))),
            None => Err(e.into()),
        },
    }
}

/// The report, for the ordering unit and the testing unit only.
async fn download_report(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let upload_id = testing::report_for(&state.db, &user, id).await?;
    let up = uploads::get(&state.db, upload_id).await?;
    let (_, bytes) = uploads::read(&state.db, &state.config.data_dir, &up.stored_name).await?;
    Ok(super::uploads::file_response(&up, bytes))
}

/// The order form on a testing service: the caller's certified units and the instruments the
/// test may run on.
async fn order_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    render_order(&state, &user, id, json!({}), json!({}), StatusCode::OK).await
}

async fn render_order(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    form: Value,
    errors: Value,
    status: StatusCode,
) -> PageResult {
    user.require(Permission::BookingCreate)?;
    let service = resources::get_public(&state.db, Kind::Service, id).await?;
    let instruments = testing::instruments_for(&state.db, id).await?;
    let units: Vec<_> = user.units.iter().collect();
    Ok(Page::new(
        "portal/order.html",
        crate::ctx! { service => service, instruments => instruments, units => units, form => form, errors => errors },
    )
    .with_status(status)
    .into_response())
}

#[derive(Deserialize)]
struct OrderForm {
    #[serde(default)]
    unit_id: String,
    #[serde(default)]
    instrument_id: String,
    #[serde(default)]
    sample_info: String,
    #[serde(default)]
    sample_count: String,
    #[serde(default)]
    purpose: String,
}

async fn order(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<OrderForm>,
) -> PageResult {
    user.require(Permission::BookingCreate)?;
    let kept = json!({"unit_id": form.unit_id, "instrument_id": form.instrument_id,
        "sample_info": form.sample_info, "sample_count": form.sample_count, "purpose": form.purpose});
    let new = NewOrder {
        service_id: id,
        unit_id: form.unit_id.parse().unwrap_or(0),
        instrument_id: form.instrument_id.parse().unwrap_or(0),
        sample_info: form.sample_info.clone(),
        sample_count: form.sample_count.trim().parse().unwrap_or(0),
        purpose: form.purpose.clone(),
    };
    if new.unit_id == 0 {
        return render_order(
            &state,
            &user,
            id,
            kept,
            json!({"unit_id": "请选择委托单位"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    match testing::create(&state.db, &user, new, state.now()).await {
        Ok(_) => Ok(redirect_with_flash(
            "/console/my-bookings",
            "检测委托已提交，等待检测机构报价",
        )),
        Err(AppError::Validation { fields, .. }) => {
            render_order(
                &state,
                &user,
                id,
                kept,
                json!(fields),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e @ (AppError::Unprocessable { .. } | AppError::Forbidden { .. })) => {
            render_order(
                &state,
                &user,
                id,
                kept,
                json!({"_": e.to_string()}),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
