//! The booking API of issue 17 (`/api/v1`): availability, waitlists, qualifications and
//! training, check-in and check-out. Weekly repeats are `POST /bookings` with `repeat`.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState,
    api::ApiResult,
    extract::{ApiJson, ApiPath, ApiQuery},
    routes::{Access, Route},
    session::ApiUser,
};
use crate::{
    auth::Permission,
    clock::rfc3339,
    error::AppError,
    money::{
        self,
        bookings::{self, availability, checkin, qualifications, waitlist},
    },
};

pub fn routes() -> Vec<Route> {
    use Permission::*;
    let s = Access::SignedIn;
    vec![
        Route::get("/api/v1/availability", Access::Public, availability_api),
        Route::post(
            "/api/v1/instruments/{id}/waitlist",
            BookingCreate,
            join_waitlist,
        ),
        Route::get("/api/v1/waitlist/{id}", s, get_waitlist),
        Route::post("/api/v1/waitlist/{id}/accept", BookingCreate, accept),
        Route::post("/api/v1/waitlist/{id}/decline", BookingCreate, decline),
        // The managing unit's switch (the handler checks it manages the instrument). Issue 13
        // adds usage_status and bookable to the same route: the integrator fuses the two.
        Route::post(
            "/api/v1/instruments/{id}/qualifications",
            s,
            grant_qualification,
        ),
        Route::get(
            "/api/v1/instruments/{id}/qualifications",
            s,
            list_qualifications,
        ),
        Route::post("/api/v1/instruments/{id}/training", BookingCreate, training),
        Route::post(
            "/api/v1/bookings/{id}/confirm-training",
            BookingHandle,
            confirm_training,
        ),
        Route::post("/api/v1/bookings/{id}/check-in", BookingCreate, check_in),
        Route::post("/api/v1/bookings/{id}/check-out", BookingCreate, check_out),
    ]
}

#[derive(Deserialize, Default)]
pub(super) struct AvailabilityQuery {
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    min_minutes: Option<i64>,
    #[serde(default)]
    page: Option<i64>,
}

const PAGE: usize = 100;

/// `GET /availability?category=&city=&from=&to=&min_minutes=` (100 instruments a page).
async fn availability_api(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AvailabilityQuery>,
) -> ApiResult<Json<Value>> {
    let (from, to, min_minutes) = availability::parse_window(&q.from, &q.to, q.min_minutes)?;
    let search = availability::Search {
        category: q.category,
        city: q.city,
        from,
        to,
        min_minutes,
    };
    let all = availability::search(&state.db, &search, state.now()).await?;
    let total = all.len();
    let page = q.page.unwrap_or(1).clamp(1, 100_000) as usize;
    let items: Vec<Value> = all
        .into_iter()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .map(|a| {
            json!({
                "instrument_id": a.instrument_id, "name": a.name, "unit_name": a.unit_name, "city": a.city,
                "free": a.free.iter().map(|f| json!({"start": rfc3339(f.start), "end": rfc3339(f.end)})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(
        json!({"items": items, "total": total, "page": page, "per_page": PAGE}),
    ))
}

fn entry_json(w: &waitlist::Entry) -> Value {
    json!({
        "id": w.id, "instrument_id": w.instrument_id, "unit_id": w.unit_id,
        "start": rfc3339(w.start_at), "end": rfc3339(w.end_at), "status": w.status,
        "offer_expires_at": w.offer_expires_at.map(rfc3339), "booking_id": w.booking_id,
    })
}

#[derive(Deserialize)]
pub(super) struct JoinBody {
    start: String,
    end: String,
    unit_id: i64,
}

async fn join_waitlist(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<JoinBody>,
) -> ApiResult {
    user.require(Permission::BookingCreate)?;
    let w = waitlist::join(
        &state.db,
        &user,
        id,
        b.unit_id,
        &b.start,
        &b.end,
        state.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(entry_json(&w))).into_response())
}

async fn get_waitlist(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let w = waitlist::get(&state.db, id).await?;
    if !user.acts_for(w.unit_id, false) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        }
        .into());
    }
    Ok(Json(entry_json(&w)))
}

#[derive(Deserialize, Default)]
pub(super) struct AcceptBody {
    #[serde(default)]
    purpose: Option<String>,
}

async fn accept(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    body: axum::body::Bytes,
) -> ApiResult {
    user.require(Permission::BookingCreate)?;
    // The body is optional: `{purpose}` names the use, else "候补转预约".
    let purpose = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<AcceptBody>(&body)
            .map_err(|e| AppError::unprocessable("invalid_body", format!("请求字段不正确：{e}")))?
            .purpose
            .filter(|p| !p.contains('\0'))
    };
    let booking = waitlist::accept(&state.db, &user, id, purpose.as_deref(), state.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "status": "accepted", "booking_id": booking})),
    )
        .into_response())
}

async fn decline(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::BookingCreate)?;
    let (_, policy) = money::current(&state.db).await?;
    waitlist::decline(
        &state.db,
        &policy.booking,
        &state.mailer,
        &state.config.public_url,
        &user,
        id,
        state.now(),
    )
    .await?;
    let w = waitlist::get(&state.db, id).await?;
    Ok(Json(entry_json(&w)))
}

#[derive(Deserialize)]
pub(super) struct GrantBody {
    user_id: i64,
    expires_on: String,
}

async fn grant_qualification(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<GrantBody>,
) -> ApiResult {
    let q = qualifications::grant(
        &state.db,
        &user,
        id,
        b.user_id,
        &b.expires_on,
        state.clock.today(),
        state.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!(q))).into_response())
}

async fn list_qualifications(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let items = qualifications::list(&state.db, &user, id).await?;
    Ok(Json(json!({"items": items})))
}

#[derive(Deserialize)]
pub(super) struct TrainingBody {
    unit_id: i64,
    start: String,
    end: String,
    #[serde(default)]
    purpose: String,
}

/// An unqualified user asks for training: a booking of kind `training` the unit confirms.
async fn training(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<TrainingBody>,
) -> ApiResult {
    user.require(Permission::BookingCreate)?;
    let purpose = if b.purpose.trim().is_empty() {
        "上机培训".to_string()
    } else {
        b.purpose
    };
    let new = bookings::NewBooking {
        instrument_id: id,
        unit_id: b.unit_id,
        start: b.start,
        end: b.end,
        purpose,
        sample_info: String::new(),
        repeat: None,
    };
    let how = bookings::Placement {
        training: true,
        ..Default::default()
    };
    let booking = bookings::create_as(&state.db, &user, new, state.now(), how).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": booking, "kind": "training", "status": "requested"})),
    )
        .into_response())
}

async fn confirm_training(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    qualifications::confirm_training(&state.db, &user, id, state.now()).await?;
    Ok(Json(json!({"id": id, "status": "confirmed"})))
}

async fn check_in(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let at = checkin::check_in(&state.db, &user, id, state.now()).await?;
    Ok(Json(json!({"id": id, "checked_in_at": rfc3339(at)})))
}

async fn check_out(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let at = checkin::check_out(&state.db, &user, id, state.now()).await?;
    Ok(Json(json!({"id": id, "checked_out_at": rfc3339(at)})))
}
