//! Instrument records for unit managers (仪器管理): the JSON API (`/api/v1/instruments`) and
//! the console list and form. Reviews happen in the workflow engine's task pages, not here.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState,
    api::ApiResult,
    extract::{ApiJson, ApiPath, CsrfForm, PagePath, PageQuery},
    page::{Page, PageResult, redirect_with_flash},
    routes::{Access, Route},
    session::{ApiUser, Auth, SignedIn, Via},
};
use crate::{
    auth::{CurrentUser, Permission},
    catalog,
    changes::Target,
    error::{AppError, Result},
    instruments::{self, InstrumentInput},
};

const PER_PAGE: i64 = 20;

/// The instrument API and the console's instrument pages (a unit's own instruments).
pub fn routes() -> Vec<Route> {
    let manage = Permission::InstrumentManage;
    vec![
        Route::post("/api/v1/instruments", manage, api_create),
        // Approved instruments are public; drafts only to their unit and reviewers.
        Route::get("/api/v1/instruments/{id}", Access::Public, api_get),
        Route::patch("/api/v1/instruments/{id}", manage, api_update),
        Route::post("/api/v1/instruments/{id}/submit", manage, api_submit),
        Route::get("/console/instruments", manage, list_page).nav("仪器管理", 30),
        Route::post("/console/instruments", manage, create_page),
        Route::get("/console/instruments/new", manage, new_page),
        Route::get("/console/instruments/{id}", manage, edit_page),
        Route::post("/console/instruments/{id}", manage, update_page),
        Route::post("/console/instruments/{id}/submit", manage, submit_page),
        Route::get("/console/instruments/template.xlsx", manage, template_xlsx),
        Route::get("/console/instruments/export.xlsx", manage, export_xlsx),
        Route::get("/console/instruments/import", manage, import_page),
        Route::post("/console/instruments/import", manage, import)
            .body_limit(crate::uploads::MAX_PDF_BYTES),
    ]
}

/// The record as the API returns it: value in yuan, booking rules included.
pub(super) async fn record_json(state: &AppState, id: i64) -> Result<Value> {
    let i = instruments::get(&state.db, id).await?;
    let extra = instruments::extras(&state.db, id).await?;
    let mut v = serde_json::to_value(&i).map_err(anyhow::Error::from)?;
    v["value"] = json!(crate::domain::Yuan::from_fen(i.value_fen).to_string());
    v["value_wan"] = json!(crate::domain::Yuan::from_fen(i.value_fen).wan());
    v["customs_declaration_no"] = json!(extra.customs_declaration_no);
    v["customs_release_date"] = json!(extra.customs_release_date);
    let op = instruments::operation::get(&state.db, id).await?;
    v["bookable"] = json!(op.bookable);
    v["retired_at"] = json!(op.retired_at.map(crate::clock::rfc3339));
    v["retired_reason"] = json!(op.retired_reason);
    v["booking_rules"] = json!({
        "slot_minutes": extra.booking[0], "min_lead_hours": extra.booking[1],
        "max_days_ahead": extra.booking[2], "max_duration_hours": extra.booking[3],
    });
    Ok(v)
}

/// Load an instrument the caller may edit: `instrument.manage` and a manager of its unit.
async fn owned(state: &AppState, user: &CurrentUser, id: i64) -> Result<instruments::Instrument> {
    user.require(Permission::InstrumentManage)?;
    let i = instruments::get(&state.db, id).await?;
    user.require_for(Permission::InstrumentManage, i.unit_id)?;
    Ok(i)
}

async fn api_create(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult {
    user.require(Permission::InstrumentManage)?;
    let input: InstrumentInput = serde_json::from_value(body.clone())
        .map_err(|e| AppError::unprocessable("invalid_body", format!("请求字段不正确：{e}")))?;
    if let Some(unit) = input.unit_id {
        user.require_for(Permission::InstrumentManage, unit)?;
    }
    let valid = input
        .with_booking_defaults(&state.db.published.settings())
        .validate()?;
    // The national fields (name_en, technical, …) are kept with the record, checked when reporting.
    let national = body
        .as_object()
        .map(crate::reporting::national_supplements)
        .unwrap_or_default();
    let id =
        crate::reporting::create_instrument_with(&state.db, &valid, &national, state.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "review_status": "draft"})),
    )
        .into_response())
}

/// Approved instruments are public; others only for the unit's members and reviewers.
async fn api_get(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let i = instruments::get(&state.db, id).await?;
    if i.review_status != "approved" {
        let user = match (&auth.user, auth.via) {
            (Some(u), Via::Bearer) => u.clone(),
            _ => return Err(AppError::Unauthenticated.into()),
        };
        if !(user.acts_for(i.unit_id, false) || user.can(Permission::InstrumentReview)) {
            return Err(AppError::Forbidden {
                code: "not_unit_member",
            }
            .into());
        }
    }
    Ok(Json(record_json(&state, id).await?))
}

/// Partial update: the given fields over the stored record, validated as a whole. On an
/// approved instrument it is a change request (202 `{change_id, instance_id}`): the public
/// record keeps its values until the change is approved (flow `record_change`).
async fn api_update(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult {
    let current = owned(&state, &user, id).await?;
    let Value::Object(patch) = patch else {
        return Err(AppError::BadRequest("请求体应为 JSON 对象".into()).into());
    };
    if current.review_status == "approved" {
        return super::changes::request_response(&state, &user, Target::Instrument, id, &patch)
            .await;
    }
    instruments::ensure_editable(&current.review_status)?;
    let extra = instruments::extras(&state.db, id).await?;
    let mut merged = serde_json::to_value(InstrumentInput::from_record(&current, &extra))
        .map_err(anyhow::Error::from)?;
    for (k, v) in &patch {
        // `annual_run_hours` is the contract's name of `annual_running_hours`.
        let k = if k == "annual_run_hours" {
            "annual_running_hours"
        } else {
            k.as_str()
        };
        if k != "unit_id" {
            merged[k] = v.clone();
        }
    }
    let national = crate::reporting::national_supplements(&patch);
    let input: InstrumentInput = serde_json::from_value(merged)
        .map_err(|e| AppError::unprocessable("invalid_body", format!("请求字段不正确：{e}")))?;
    let valid = input.validate()?;
    instruments::update(&state.db, id, &valid, state.now()).await?;
    if !national.is_empty() {
        crate::reporting::save_supplements(&state.db, id, &national, state.now()).await?;
    }
    Ok(Json(record_json(&state, id).await?).into_response())
}

async fn api_submit(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    owned(&state, &user, id).await?;
    let s = instruments::submit(&state.engine, &user, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"instance_id": s.instance_id, "state": s.state})),
    )
        .into_response())
}

// ---- console ------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    page: Option<String>,
}

fn managed_units(user: &CurrentUser) -> Vec<i64> {
    user.units
        .iter()
        .filter(|m| m.kind == "managing" && user.can_for(Permission::InstrumentManage, m.id))
        .map(|m| m.id)
        .collect()
}

async fn list_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<ListQuery>,
) -> PageResult {
    user.require(Permission::InstrumentManage)?;
    let page = q
        .page
        .as_deref()
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=10_000).contains(p))
        .unwrap_or(1);
    let (items, total) = instruments::list_for_units(
        &state.db,
        &managed_units(&user),
        &q.status,
        (page - 1) * PER_PAGE,
        PER_PAGE,
    )
    .await?;
    Ok(Page::new(
        "console/instruments.html",
        crate::ctx! { items => items, status => q.status, has_units => !managed_units(&user).is_empty(),
        pager => super::page::pager(page, total, PER_PAGE),
        query => crate::ctx!{ status => q.status } },
    )
    .into_response())
}

fn form_options(user: &CurrentUser) -> minijinja::Value {
    let units: Vec<(i64, String)> = user
        .units_for(Permission::InstrumentManage)
        .into_iter()
        .filter(|(id, _)| managed_units(user).contains(id))
        .collect();
    crate::ctx! { units => units, classes => catalog::classes(), sources => catalog::SOURCES,
    types => catalog::TYPES, usage_statuses => catalog::USAGE_STATUSES,
    sharing_modes => catalog::SHARING_MODES, funding => catalog::FUNDING }
}

fn form_page(
    user: &CurrentUser,
    photos: &[crate::uploads::Upload],
    id: Option<i64>,
    review_status: &str,
    form: &InstrumentInput,
    errors: minijinja::Value,
) -> Page {
    form_page_with(
        user,
        photos,
        id,
        review_status,
        form,
        errors,
        crate::ctx! {},
    )
}

/// The form with what an approved instrument's page adds (`ops`: its operational fields,
/// change requests and operation log).
fn form_page_with(
    user: &CurrentUser,
    photos: &[crate::uploads::Upload],
    id: Option<i64>,
    review_status: &str,
    form: &InstrumentInput,
    errors: minijinja::Value,
    ops: minijinja::Value,
) -> Page {
    Page::new(
        "console/instrument_form.html",
        crate::ctx! { id => id, form => form, errors => errors, options => form_options(user), photos => photos,
        review_status => review_status, review_label => instruments::review_label(review_status),
        editable => matches!(review_status, "draft" | "rejected"),
        changeable => review_status == "approved", ops => ops },
    )
}

async fn new_page(SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::InstrumentManage)?;
    let form = InstrumentInput {
        unit_id: managed_units(&user).first().copied(),
        open_to_public: true,
        city: "许昌市".into(),
        slot_minutes: "30".into(),
        min_lead_hours: "1".into(),
        max_days_ahead: "90".into(),
        max_duration_hours: "10".into(),
        ..Default::default()
    };
    Ok(form_page(&user, &[], None, "draft", &form, crate::ctx! {}).into_response())
}

fn invalid(
    user: &CurrentUser,
    id: Option<i64>,
    status: &str,
    form: &InstrumentInput,
    e: AppError,
) -> PageResult {
    match e {
        AppError::Validation { fields, .. } => Ok(form_page(
            user,
            &[],
            id,
            status,
            form,
            minijinja::Value::from(minijinja::value::Serde(&fields)),
        )
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .into_response()),
        e => Err(e.into()),
    }
}

async fn create_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<InstrumentInput>,
) -> PageResult {
    user.require(Permission::InstrumentManage)?;
    if let Some(unit) = form.unit_id {
        user.require_for(Permission::InstrumentManage, unit)?;
    }
    let form = form.with_booking_defaults(&state.db.published.settings());
    match form.clone().validate() {
        Ok(valid) => {
            let id = instruments::create(&state.db.pool, &valid, state.now()).await?;
            Ok(redirect_with_flash(
                &format!("/console/instruments/{id}"),
                "仪器信息已保存为草稿，信息完整后可提交入网审核",
            ))
        }
        Err(e) => invalid(&user, None, "draft", &form, e),
    }
}

async fn edit_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let i = owned(&state, &user, id).await?;
    let extra = instruments::extras(&state.db, id).await?;
    let form = InstrumentInput::from_record(&i, &extra);
    let photos = crate::uploads::instrument_photos(&state.db, id).await?;
    let ops = super::changes::instrument_ops(&state, id).await?;
    Ok(form_page_with(
        &user,
        &photos,
        Some(id),
        &i.review_status,
        &form,
        crate::ctx! {},
        ops,
    )
    .into_response())
}

async fn update_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(mut form): CsrfForm<InstrumentInput>,
) -> PageResult {
    let i = owned(&state, &user, id).await?;
    form.unit_id = Some(i.unit_id);
    if i.review_status == "approved" {
        return super::changes::request_page(&state, &user, id, &form).await;
    }
    if let Err(e) = instruments::ensure_editable(&i.review_status) {
        return Ok(redirect_with_flash(
            &format!("/console/instruments/{id}"),
            &e.to_string(),
        ));
    }
    form.unit_id = Some(i.unit_id);
    match form.clone().validate() {
        Ok(valid) => {
            instruments::update(&state.db, id, &valid, state.now()).await?;
            Ok(redirect_with_flash(
                &format!("/console/instruments/{id}"),
                "仪器信息已保存",
            ))
        }
        Err(e) => invalid(&user, Some(id), &i.review_status, &form, e),
    }
}

#[derive(Deserialize)]
struct Empty {}

async fn submit_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let i = owned(&state, &user, id).await?;
    match instruments::submit(&state.engine, &user, id).await {
        Ok(_) => Ok(redirect_with_flash(
            "/console/instruments",
            &format!("“{}”已提交入网审核", i.name),
        )),
        Err(AppError::Validation { fields, .. }) => {
            let extra = instruments::extras(&state.db, id).await?;
            let form = InstrumentInput::from_record(&i, &extra);
            Ok(form_page(
                &user,
                &[],
                Some(id),
                &i.review_status,
                &form,
                minijinja::Value::from(minijinja::value::Serde(&fields)),
            )
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .into_response())
        }
        Err(e @ AppError::Conflict { .. }) => Ok(redirect_with_flash(
            &format!("/console/instruments/{id}"),
            &e.to_string(),
        )),
        Err(e) => Err(e.into()),
    }
}

// ---- xlsx template, import and export ------------------------------------------------------

async fn template_xlsx(SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::InstrumentManage)?;
    let bytes = crate::spreadsheets::instrument_template()?;
    Ok(super::page::xlsx_download(
        bytes,
        "instrument-template.xlsx",
        "仪器导入模板.xlsx",
    ))
}

async fn export_xlsx(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<ListQuery>,
) -> PageResult {
    user.require(Permission::InstrumentManage)?;
    let (items, _) =
        instruments::list_for_units(&state.db, &managed_units(&user), &q.status, 0, 100_000)
            .await?;
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                i.model.clone(),
                i.category_label.clone(),
                crate::domain::Yuan::from_fen(i.value_fen).wan(),
                i.usage_status.clone(),
                i.unit_name.clone(),
                i.review_label.to_string(),
                crate::clock::display(i.updated_at),
            ]
        })
        .collect();
    let bytes = crate::spreadsheets::export(
        "仪器",
        &[
            "仪器名称",
            "规格型号",
            "分类",
            "原值（万元）",
            "运行状态",
            "所属单位",
            "审核状态",
            "更新时间",
        ],
        &rows,
    )?;
    Ok(super::page::xlsx_download(
        bytes,
        "instruments.xlsx",
        "仪器列表.xlsx",
    ))
}

fn import_view(user: &CurrentUser, report: &[crate::spreadsheets::RowError]) -> Page {
    Page::new(
        "console/instrument_import.html",
        crate::ctx! { options => form_options(user), report => report },
    )
}

async fn import_page(SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::InstrumentManage)?;
    Ok(import_view(&user, &[]).into_response())
}

async fn import(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    form: super::extract::CsrfMultipart,
) -> PageResult {
    user.require(Permission::InstrumentManage)?;
    let unit_id = form
        .fields
        .get("unit_id")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .ok_or_else(|| AppError::field("unit_id", "请选择所属单位"))?;
    user.require_for(Permission::InstrumentManage, unit_id)?;
    let Some(file) = form.file("file") else {
        let report = [crate::spreadsheets::RowError {
            row: 0,
            message: "请选择要导入的 .xlsx 文件".into(),
        }];
        return Ok(import_view(&user, &report)
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .into_response());
    };
    match crate::spreadsheets::import_instruments(&state.db, &file.bytes, unit_id, state.now())
        .await?
    {
        crate::spreadsheets::ImportOutcome::Imported(n) => Ok(redirect_with_flash(
            "/console/instruments?status=draft",
            &format!("已导入 {n} 台仪器（草稿），请逐台补充信息后提交审核"),
        )),
        crate::spreadsheets::ImportOutcome::Rejected(report) => Ok(import_view(&user, &report)
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .into_response()),
    }
}
