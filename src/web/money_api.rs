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
            let sql = format!("UPDATE {table} SET instance_id = $1 WHERE id = $2");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(started.instance_id)
                .bind(id)
                .execute(&state.db.pool)
                .await?;
            Ok(started)
        }
        Err(e) => {
            for sql in cleanup {
                sqlx::query(*sql).bind(id).execute(&state.db.pool).await?;
            }
            Err(e.into())
        }
    }
}

#[derive(Deserialize)]
struct ApplyBody {
    unit_id: i64,
    year: i64,
}

/// A certified user unit applies for its yearly quota (`voucher_application`).
async fn apply_vouchers(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<ApplyBody>,
) -> ApiResult {
    user.require(Permission::VoucherApply)?;
    let unit = crate::units::get(&state.db, body.unit_id).await?;
    user.require_unit(unit.id)?;
    let year = year_or_now(&state, Some(body.year))?;
    if unit.kind != "user" {
        return Err(
            AppError::unprocessable("unit_not_eligible", "只有用户单位可以申领创新券").into(),
        );
    }
    if unit.certification_status != "certified" || unit.dishonest || unit.abnormal_operation {
        return Err(AppError::unprocessable(
            "unit_not_eligible",
            "单位须已通过认证，且未被列入失信名单或经营异常名录，才能申领创新券",
        )
        .into());
    }
    let now = state.now();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO voucher_applications (unit_id, year, applicant_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(unit.id)
    .bind(year)
    .bind(user.id)
    .bind(now)
    .fetch_one(&state.db.pool)
    .await
    .map_err(|e| {
        if crate::store::is_unique_violation(&e) {
            AppError::conflict("already_applied", format!("本单位已申领过 {year} 年度创新券"))
        } else {
            AppError::Database(e)
        }
    })?;
    let started = start_flow(
        &state,
        (
            "voucher_application",
            "voucher_application",
            "voucher_applications",
        ),
        id,
        user.id,
        json!({"year": year}),
        &["DELETE FROM voucher_applications WHERE id = $1"],
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "instance_id": started.instance_id, "state": started.state})),
    )
        .into_response())
}

#[derive(Deserialize)]
struct RedemptionBody {
    unit_id: i64,
    booking_ids: Vec<i64>,
}

/// A managing unit bundles completed bookings paid with vouchers (`voucher_redemption`).
/// Its contract and invoice files follow at `POST /redemptions/{id}/files`; review cannot
/// approve before both are there.
async fn create_redemption(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<RedemptionBody>,
) -> ApiResult {
    let (id, total) = redemptions::create(
        &state.db,
        &user,
        body.unit_id,
        &body.booking_ids,
        state.now(),
    )
    .await?;
    let started = start_redemption(&state, &user, id, total).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "instance_id": started.instance_id, "total": total})),
    )
        .into_response())
}

/// Start `voucher_redemption` for a redemption just created (shared with the console).
pub async fn start_redemption(
    state: &AppState,
    user: &crate::auth::CurrentUser,
    id: i64,
    total: Yuan,
) -> Result<crate::workflow::Started, ApiError> {
    start_flow(
        state,
        ("voucher_redemption", "redemption", "redemptions"),
        id,
        user.id,
        json!({"total": total}),
        &redemptions::CLEANUP,
    )
    .await
}

pub fn redemption_json(r: &redemptions::Redemption) -> Value {
    json!({
        "id": r.id, "unit_id": r.managing_unit_id, "unit_name": r.unit_name, "status": r.status,
        "total": r.total, "instance_id": r.instance_id, "created_at": crate::clock::rfc3339(r.created_at),
        "booking_ids": r.items.iter().map(|i| i.booking_id).collect::<Vec<_>>(),
        "contract_count": r.contract_count, "invoice_count": r.invoice_count,
        "files": r.files.iter().map(|f| json!({
            "id": f.id, "kind": f.kind, "name": f.name, "content_type": f.content_type,
            "size_bytes": f.size_bytes, "url": format!("/api/v1/redemptions/{}/files/{}", r.id, f.id),
        })).collect::<Vec<_>>(),
    })
}

async fn get_redemption(
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
async fn add_redemption_file(
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

async fn redemption_file(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath((id, file_id)): ApiPath<(i64, i64)>,
) -> ApiResult {
    let (upload, bytes) =
        redemptions::read_file(&state.db, &state.config.data_dir, &user, id, file_id).await?;
    Ok(super::uploads::file_response(&upload, bytes))
}

async fn create_booking(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(new): ApiJson<bookings::NewBooking>,
) -> ApiResult {
    user.require(Permission::BookingCreate)?;
    let id = bookings::create(&state.db, &user, new, state.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "status": "requested"})),
    )
        .into_response())
}

async fn get_booking(
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
struct QuoteBody {
    price: Yuan,
}

async fn quote(
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
struct ConfirmBody {
    #[serde(default)]
    voucher_amount: Option<Yuan>,
    #[serde(default)]
    customs_notice_no: Option<String>,
}

async fn confirm(
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

async fn complete(
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
struct CancelBody {
    #[serde(default)]
    reason: String,
}

async fn cancel(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CancelBody>,
) -> ApiResult<Json<Value>> {
    bookings::cancel(&state.db, &user, id, &body.reason, state.now()).await?;
    Ok(Json(json!({"status": "cancelled"})))
}

#[derive(Deserialize)]
struct RatingBody {
    rating: String,
    #[serde(default)]
    comment: String,
}

async fn rate(
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
struct YearQuery {
    year: Option<i64>,
}

fn year_or_now(state: &AppState, y: Option<i64>) -> Result<i64, ApiError> {
    use chrono::Datelike;
    let year = y.unwrap_or_else(|| state.clock.today().year() as i64);
    if !(2000..=2100).contains(&year) {
        return Err(AppError::field("year", "年份不正确").into());
    }
    Ok(year)
}

async fn voucher_balance(
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

async fn voucher_ledger(
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

#[derive(Deserialize)]
struct GradeBody {
    grade: String,
    #[serde(default)]
    reason: String,
}

async fn set_grade(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath((unit_id, year)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<GradeBody>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::EvaluationManage)?;
    if !money::GRADES.iter().any(|(g, _)| *g == body.grade) {
        return Err(AppError::field(
            "grade",
            "等级应为 excellent、good、qualified 或 unqualified",
        )
        .into());
    }
    if body.reason.trim().is_empty() {
        return Err(AppError::field("reason", "请说明等级来源或理由").into());
    }
    crate::units::get(&state.db, unit_id).await?;
    let year = year_or_now(&state, Some(year))?;
    let mut tx = state.db.pool.begin().await?;
    money::record_grade(
        &mut tx,
        money::UnitGrade {
            unit_id,
            year,
            grade: &body.grade,
            reason: body.reason.trim(),
            source: "manual",
            decided_by: user.id,
        },
        state.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(
        json!({"unit_id": unit_id, "year": year, "grade": body.grade}),
    ))
}

#[derive(Deserialize)]
struct SettlementBody {
    year: i64,
}

async fn create_settlement(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<SettlementBody>,
) -> ApiResult {
    user.require(Permission::SubsidyManage)?;
    let year = year_or_now(&state, Some(body.year))?;
    let id = start_settlement(&state, user.id, year).await?;
    let s = settlement::get(&state.db, id).await?;
    Ok((StatusCode::CREATED, Json(settlement_json(&s))).into_response())
}

/// Compute and store a year's settlement and start `subsidy_settlement` on it (the API and
/// the 补贴结算 page); nothing is left behind if the flow refuses to start.
pub(super) async fn start_settlement(
    state: &AppState,
    user_id: i64,
    year: i64,
) -> Result<i64, ApiError> {
    let id = settlement::create(&state.db, year, user_id, state.now()).await?;
    // The flow's first step computes the figures and asks the units to confirm them.
    start_flow(
        state,
        ("subsidy_settlement", "subsidy_settlement", "settlements"),
        id,
        user_id,
        json!({"year": year}),
        &[
            "DELETE FROM settlement_units WHERE settlement_id = $1",
            "DELETE FROM settlement_lines WHERE settlement_id = $1",
            "DELETE FROM settlements WHERE id = $1",
        ],
    )
    .await?;
    Ok(id)
}

/// The contract's settlement shape, plus each unit's confirmation (单位确认) and the list of
/// confirmations.
fn settlement_json(s: &settlement::Settlement) -> Value {
    let confirmation = |unit_id: i64| match s.confirmation(unit_id) {
        Some(c) => json!({"status": c.status, "reason": c.reason, "decided_by": c.decided_by,
            "decided_at": c.decided_at.map(crate::clock::rfc3339)}),
        None => Value::Null,
    };
    json!({
        "id": s.id, "year": s.year, "status": s.status, "policy_version": s.policy_version_id,
        "instance_id": s.instance_id, "total": s.total,
        "computed_at": (s.computed_at > 0).then(|| crate::clock::rfc3339(s.computed_at)),
        "computations": s.computations,
        "units": s.units.iter().map(|u| json!({
            "unit_id": u.unit_id, "grade": u.grade, "coefficient": u.coefficient.to_string(),
            "total": u.total, "unit_cap_applied": u.unit_cap_applied,
            "confirmation": confirmation(u.unit_id),
            "instruments": u.instruments.iter().map(|l| json!({
                "instrument_id": l.instrument_id, "income": l.income, "uncapped": l.uncapped, "amount": l.amount,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "confirmations": s.confirmations.iter().map(|c| json!({
            "unit_id": c.unit_id, "unit_name": c.unit_name, "status": c.status, "reason": c.reason,
            "decided_by": c.decided_by, "decided_at": c.decided_at.map(crate::clock::rfc3339),
        })).collect::<Vec<_>>(),
    })
}

/// Subsidy managers see the whole settlement; a unit's managers see their own units' lines.
async fn get_settlement(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let mut s = settlement::get(&state.db, id).await?;
    if !user.can(Permission::SubsidyManage) {
        s.units.retain(|u| user.acts_for(u.unit_id, true));
        s.confirmations.retain(|c| user.acts_for(c.unit_id, true));
        if s.units.is_empty() {
            user.require(Permission::SubsidyManage)?;
        }
    }
    Ok(Json(settlement_json(&s)))
}

/// A unit manager's answer to settlement `id`: `approve` confirms their units' figures,
/// `reject` objects with `comment` as the reason. It decides the manager's open task of the
/// confirmation step (shared by the API and the console).
pub async fn decide_settlement(
    state: &AppState,
    user: &crate::auth::CurrentUser,
    id: i64,
    action: &str,
    comment: &str,
) -> crate::error::Result<crate::workflow::Outcome> {
    let s = settlement::get(&state.db, id).await?;
    if !s.units.iter().any(|u| user.acts_for(u.unit_id, true)) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    let task: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM workflow_tasks WHERE instance_id = $1 AND assignee_id = $2 AND status = 'open' ORDER BY id LIMIT 1",
    )
    .bind(s.instance_id.unwrap_or(0))
    .bind(user.id)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(task) = task else {
        return Err(AppError::conflict(
            "not_awaiting_confirmation",
            "该结算当前不需要您确认（已处理，或不在单位确认环节）",
        ));
    };
    crate::workflow::act(
        state,
        Some(user),
        task,
        crate::workflow::Decision {
            action: action.into(),
            comment: comment.into(),
            data: json!({}),
        },
    )
    .await
}

/// `POST /subsidy-settlements/{id}/confirm`: the unit manager confirms their units' lines.
async fn confirm_settlement(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    decide_settlement(&state, &user, id, "approve", "确认本单位结算明细").await?;
    get_settlement(State(state), ApiUser(user), ApiPath(id)).await
}

#[derive(Deserialize)]
struct ObjectionBody {
    #[serde(default)]
    reason: String,
}

/// `POST /subsidy-settlements/{id}/objection {reason}`: the unit manager objects (异议).
async fn object_settlement(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ObjectionBody>,
) -> ApiResult<Json<Value>> {
    if body.reason.trim().is_empty() {
        return Err(AppError::field("reason", "请写明异议理由").into());
    }
    decide_settlement(&state, &user, id, "reject", body.reason.trim()).await?;
    get_settlement(State(state), ApiUser(user), ApiPath(id)).await
}

/// The settlement line by line as xlsx: unit, grade, coefficient, instrument, income,
/// income × coefficient, amount after the caps, and the totals.
async fn export_settlement(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    user.require(Permission::SubsidyManage)?;
    Ok(settlement_xlsx(&state, id).await?)
}

/// The xlsx download of a settlement (shared by the API and the console).
pub async fn settlement_xlsx(
    state: &AppState,
    id: i64,
) -> crate::error::Result<axum::response::Response> {
    let s = settlement::get(&state.db, id).await?;
    let mut rows = Vec::new();
    for u in &s.units {
        let unit_name: String = sqlx::query_scalar("SELECT name FROM units WHERE id = $1")
            .bind(u.unit_id)
            .fetch_one(&state.db.pool)
            .await?;
        let grade = money::grade_label(&u.grade);
        for l in &u.instruments {
            let name: String =
                sqlx::query_scalar("SELECT name || ' ' || model FROM instruments WHERE id = $1")
                    .bind(l.instrument_id)
                    .fetch_one(&state.db.pool)
                    .await?;
            rows.push(vec![
                unit_name.clone(),
                grade.to_string(),
                u.coefficient.to_string(),
                name,
                l.income.to_string(),
                l.uncapped.to_string(),
                l.amount.to_string(),
            ]);
        }
        rows.push(vec![
            format!("{unit_name} 小计"),
            grade.to_string(),
            String::new(),
            if u.unit_cap_applied {
                "已按单位上限等比例调减".into()
            } else {
                String::new()
            },
            String::new(),
            String::new(),
            u.total.to_string(),
        ]);
    }
    rows.push(vec![
        "合计".into(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        s.total.to_string(),
    ]);
    let bytes = crate::spreadsheets::export(
        &format!("{} 年度补贴结算", s.year),
        &[
            "单位",
            "绩效等级",
            "补贴系数",
            "仪器",
            "共享服务收入（元）",
            "收入×系数（元）",
            "补贴金额（元）",
        ],
        &rows,
    )?;
    Ok(super::page::xlsx_download(
        bytes,
        &format!("settlement-{}-{}.xlsx", s.year, s.id),
        &format!("{} 年度补贴结算-{}.xlsx", s.year, s.id),
    ))
}

async fn get_policy(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
) -> ApiResult<Json<Value>> {
    user.require(Permission::SubsidyManage)?;
    let (id, policy) = money::current(&state.db).await?;
    Ok(Json(json!({"version": id, "policy": policy})))
}

#[derive(Deserialize)]
struct PolicyBody {
    yaml: String,
}

async fn put_policy(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<PolicyBody>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::SubsidyManage)?;
    let id = money::publish(&state.db, &body.yaml, Some(user.id), state.now()).await?;
    Ok(Json(json!({"version": id})))
}
