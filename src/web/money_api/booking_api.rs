//! The booking and voucher API: bookings (quote, confirm, complete, cancel, rating), voucher
//! applications, balances and ledgers, and redemptions with their files.

#[allow(unused_imports)]
use super::*;

#[derive(Deserialize)]
pub(super) struct ApplyBody {
    unit_id: i64,
    year: i64,
}

/// A certified user unit applies for its yearly quota (`voucher_application`).
pub(super) async fn apply_vouchers(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<ApplyBody>,
) -> ApiResult {
    let year = year_or_now(&state, Some(body.year))?;
    let (id, started) =
        vouchers::apply(&state.engine, &user, body.unit_id, year, state.now()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "instance_id": started.instance_id, "state": started.state})),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct RedemptionBody {
    unit_id: i64,
    booking_ids: Vec<i64>,
}

/// A managing unit bundles completed bookings paid with vouchers (`voucher_redemption`).
/// Its contract and invoice files follow at `POST /redemptions/{id}/files`; review cannot
/// approve before both are there.
pub(super) async fn create_redemption(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<RedemptionBody>,
) -> ApiResult {
    let (id, total, started) = redemptions::create(
        &state.engine,
        &state.config.data_dir,
        &user,
        body.unit_id,
        &body.booking_ids,
        &[],
        state.now(),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "instance_id": started.instance_id, "total": total})),
    )
        .into_response())
}

pub fn redemption_json(r: &redemptions::Redemption) -> Value {
    json!({
        "id": r.id, "unit_id": r.managing_unit_id, "unit_name": r.unit_name, "status": r.status,
        "total": r.total, "instance_id": r.instance_id, "created_at": crate::clock::rfc3339(r.created_at),
        "booking_ids": r.items.iter().map(|i| i.booking_id).collect::<Vec<_>>(),
        // Released when the redemption was withdrawn or rejected (the booking may be redeemed anew).
        "released_booking_ids": r.items.iter().filter(|i| i.released_at.is_some()).map(|i| i.booking_id).collect::<Vec<_>>(),
        "contract_count": r.contract_count, "invoice_count": r.invoice_count,
        "files": r.files.iter().map(|f| json!({
            "id": f.id, "kind": f.kind, "name": f.name, "content_type": f.content_type,
            "size_bytes": f.size_bytes, "url": format!("/api/v1/redemptions/{}/files/{}", r.id, f.id),
        })).collect::<Vec<_>>(),
    })
}

pub(super) async fn get_redemption(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let r = redemptions::get(&state.db, id).await?;
    if !r.visible_to(&user) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        }
        .into());
    }
    Ok(Json(redemption_json(&r)))
}

/// `POST /redemptions/{id}/files`: multipart with `kind` (`contract` or `invoice`) and `file`.
pub(super) async fn add_redemption_file(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    form: ApiMultipart,
) -> ApiResult {
    let kind = form.fields.get("kind").map(|k| k.trim()).unwrap_or("");
    let Some(file) = form.file("file") else {
        return Err(AppError::field("file", "请选择要上传的文件").into());
    };
    let f = redemptions::attach(
        &state.db,
        &state.config.data_dir,
        &user,
        id,
        kind,
        &file.file_name,
        &file.bytes,
        state.now(),
    )
    .await?;
    let r = redemptions::get(&state.db, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": f.id, "kind": f.kind, "name": f.name, "content_type": f.content_type, "size_bytes": f.size_bytes,
            "url": format!("/api/v1/redemptions/{id}/files/{}", f.id),
            "contract_count": r.contract_count, "invoice_count": r.invoice_count,
        })),
    )
        .into_response())
}

pub(super) async fn redemption_file(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath((id, file_id)): ApiPath<(i64, i64)>,
) -> ApiResult {
    let (upload, bytes) =
        redemptions::read_file(&state.db, &state.config.data_dir, &user, id, file_id).await?;
    Ok(crate::web::uploads::file_response(&upload, bytes))
}

pub(super) async fn create_booking(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(new): ApiJson<bookings::NewBooking>,
) -> ApiResult {
    user.require(Permission::BookingCreate)?;
    if let Some(repeat) = new.repeat {
        let out =
            bookings::repeats::create_weekly(&state.db, &user, new, repeat, state.now()).await?;
        return Ok((StatusCode::CREATED, Json(json!(out))).into_response());
    }
    let id = bookings::create(&state.db, &user, new, state.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "status": "requested"})),
    )
        .into_response())
}

pub(super) async fn get_booking(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let b = bookings::get(&state.db, id).await?;
    if !(user.acts_for(b.unit_id, false)
        || user.acts_for(b.managing_unit_id, false)
        || user.can(Permission::VoucherManage))
    {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        }
        .into());
    }
    Ok(Json(serde_json::to_value(b).map_err(anyhow::Error::from)?))
}

#[derive(Deserialize)]
pub(super) struct QuoteBody {
    price: Yuan,
}

pub(super) async fn quote(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<QuoteBody>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::BookingHandle)?;
    bookings::quote(&state.db, &user, id, body.price, state.now()).await?;
    Ok(Json(json!({"status": "quoted"})))
}

#[derive(Deserialize)]
pub(super) struct ConfirmBody {
    #[serde(default)]
    voucher_amount: Option<Yuan>,
    #[serde(default)]
    customs_notice_no: Option<String>,
}

pub(super) async fn confirm(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::BookingCreate)?;
    let (_, policy) = money::current(&state.db).await?;
    bookings::confirm(
        &state.db,
        &policy,
        &user,
        id,
        body.voucher_amount.unwrap_or(Yuan::ZERO),
        body.customs_notice_no.as_deref(),
        state.now(),
    )
    .await?;
    Ok(Json(json!({"status": "confirmed"})))
}

#[derive(Deserialize)]
pub(super) struct ExceptionBody {
    #[serde(default)]
    reason: String,
}

/// `POST /bookings/{id}/voucher-exception {reason}`: allow vouchers on a booking whose units
/// share a member (voucher.manage).
pub(super) async fn voucher_exception(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ExceptionBody>,
) -> ApiResult<Json<Value>> {
    bookings::allow_vouchers_despite_shared_member(&state.db, &user, id, &body.reason, state.now())
        .await?;
    Ok(Json(json!({"id": id, "voucher_exception": true})))
}

pub(super) async fn complete(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::BookingHandle)?;
    let (record_id, order_no) = bookings::complete(&state.db, &user, id, state.now()).await?;
    Ok(Json(
        json!({"status": "completed", "service_record": {"id": record_id, "order_no": order_no}}),
    ))
}

#[derive(Deserialize)]
pub(super) struct CancelBody {
    #[serde(default)]
    reason: String,
}

pub(super) async fn cancel(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CancelBody>,
) -> ApiResult<Json<Value>> {
    bookings::waitlist::cancel_and_offer(
        &state.db,
        &state.mailer,
        &state.config.public_url,
        &user,
        id,
        &body.reason,
        state.now(),
    )
    .await?;
    Ok(Json(json!({"status": "cancelled"})))
}

#[derive(Deserialize)]
pub(super) struct RatingBody {
    rating: String,
    #[serde(default)]
    comment: String,
}

pub(super) async fn rate(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<RatingBody>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::BookingCreate)?;
    bookings::rate(&state.db, &user, id, &body.rating, &body.comment).await?;
    Ok(Json(json!({"id": id, "rating": body.rating})))
}

#[derive(Deserialize)]
pub(super) struct YearQuery {
    year: Option<i64>,
}

pub(super) async fn voucher_balance(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(unit_id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<YearQuery>,
) -> ApiResult<Json<Value>> {
    if !(user.acts_for(unit_id, false) || user.can(Permission::VoucherManage)) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        }
        .into());
    }
    let year = year_or_now(&state, q.year)?;
    let b = vouchers::balance(&state.db, unit_id, year).await?;
    Ok(Json(serde_json::to_value(b).map_err(anyhow::Error::from)?))
}

pub(super) async fn voucher_ledger(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(unit_id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<YearQuery>,
) -> ApiResult<Json<Value>> {
    if !(user.acts_for(unit_id, false) || user.can(Permission::VoucherManage)) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        }
        .into());
    }
    let year = year_or_now(&state, q.year)?;
    let items = vouchers::ledger(&state.db, unit_id, year).await?;
    let balance = vouchers::balance(&state.db, unit_id, year).await?;
    Ok(Json(
        json!({"year": year, "items": items, "balance": balance}),
    ))
}
