//! 信息上报 (information reporting) and 数据对接 (data docking): the `/api/v1/reports`,
//! `/api/v1/api-clients` and `/api/v1/docking/…` endpoints of the contract, and the console
//! pages for units (信息上报), the platform (all batches) and the system admin (数据对接).

use std::collections::BTreeMap;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    AppState,
    api::ApiResult,
    extract::{ApiJson, ApiPath, ApiQuery, CsrfForm, PagePath, PageQuery},
    page::{Page, PageResult, redirect_with_flash, refusal},
    routes::{Access, Route},
    session::{ApiUser, SignedIn},
};
use crate::{
    auth::{CurrentUser, Permission},
    error::{AppError, Result},
    reporting::{self, Batch, push},
};

const PER_PAGE: i64 = 20;
const READERS: &[Permission] = &[
    Permission::InstrumentManage,
    Permission::ResourceReview,
    Permission::SystemConfig,
];

pub fn routes() -> Vec<Route> {
    use Permission::*;
    let readers = Access::AnyOf(READERS);
    vec![
        Route::post("/api/v1/reports", InstrumentManage, api_create),
        Route::get("/api/v1/reports", readers, api_list),
        Route::get("/api/v1/reports/{id}", readers, api_get),
        Route::delete("/api/v1/reports/{id}", InstrumentManage, api_delete),
        Route::post(
            "/api/v1/reports/{id}/refresh",
            InstrumentManage,
            api_refresh,
        ),
        Route::post("/api/v1/reports/{id}/submit", InstrumentManage, api_submit),
        Route::post("/api/v1/reports/{id}/retry", SystemConfig, api_retry),
        Route::get("/api/v1/reports/{id}/export.xlsx", readers, api_export),
        Route::get(
            "/api/v1/instruments/{id}/national",
            InstrumentManage,
            api_national_get,
        ),
        Route::put(
            "/api/v1/instruments/{id}/national",
            InstrumentManage,
            api_national_put,
        ),
        Route::get("/console/reports", readers, list_page).nav("信息上报", 95),
        Route::post("/console/reports", InstrumentManage, create_page),
        Route::get("/console/reports/{id}", readers, batch_page),
        Route::post(
            "/console/reports/{id}/refresh",
            InstrumentManage,
            refresh_page,
        ),
        Route::post(
            "/console/reports/{id}/submit",
            InstrumentManage,
            submit_page,
        ),
        Route::post(
            "/console/reports/{id}/delete",
            InstrumentManage,
            delete_page,
        ),
        Route::post("/console/reports/{id}/retry", SystemConfig, retry_page),
        Route::get("/console/reports/{id}/export.xlsx", readers, export_page),
        Route::get(
            "/console/instruments/{id}/national",
            InstrumentManage,
            national_page,
        ),
        Route::post(
            "/console/instruments/{id}/national",
            InstrumentManage,
            national_save,
        ),
    ]
}

// ---- access --------------------------------------------------------------------------------

fn managed_units(user: &CurrentUser) -> Vec<(i64, String)> {
    user.units
        .iter()
        .filter(|m| m.kind == "managing" && user.can_for(Permission::InstrumentManage, m.id))
        .map(|m| (m.id, m.name.clone()))
        .collect()
}

/// Platform reviewers and the system admin see every batch; units their own.
fn sees_all(user: &CurrentUser) -> bool {
    user.can(Permission::ResourceReview) || user.can(Permission::SystemConfig)
}

async fn readable(state: &AppState, user: &CurrentUser, id: i64) -> Result<Batch> {
    if !READERS.iter().any(|p| user.can(*p)) {
        return Err(AppError::forbidden());
    }
    let b = reporting::get(&state.db, id).await?;
    if !sees_all(user) {
        user.require_unit(b.unit_id)?;
    }
    Ok(b)
}

async fn owned(state: &AppState, user: &CurrentUser, id: i64) -> Result<Batch> {
    user.require(Permission::InstrumentManage)?;
    let b = reporting::get(&state.db, id).await?;
    user.require_for(Permission::InstrumentManage, b.unit_id)?;
    Ok(b)
}

async fn owned_instrument(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<Map<String, Value>> {
    user.require(Permission::InstrumentManage)?;
    let (unit, national) = reporting::instrument_supplements(&state.db, id).await?;
    user.require_for(Permission::InstrumentManage, unit)?;
    Ok(national)
}

// ---- API ---------------------------------------------------------------------------------

/// `POST /reports`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct NewBatch {
    #[serde(default)]
    unit_id: Option<i64>,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    period: String,
}

async fn api_create(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<NewBatch>,
) -> ApiResult {
    user.require(Permission::InstrumentManage)?;
    let unit_id = body
        .unit_id
        .ok_or_else(|| AppError::field("unit_id", "请选择上报单位"))?;
    user.require_for(Permission::InstrumentManage, unit_id)?;
    let id = reporting::create(
        &state.db,
        unit_id,
        body.kind.trim(),
        &body.period,
        user.id,
        &reporting::Site::of(&state.config),
        state.now(),
    )
    .await?;
    let b = reporting::get(&state.db, id).await?;
    Ok((StatusCode::CREATED, Json(b.to_json())).into_response())
}

#[derive(Deserialize, Default)]
struct ListQuery {
    page: Option<i64>,
    per_page: Option<i64>,
}

async fn api_list(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    if !READERS.iter().any(|p| user.can(*p)) {
        return Err(AppError::forbidden().into());
    }
    let page = q.page.unwrap_or(1).max(1);
    let per = q.per_page.unwrap_or(20).clamp(1, 100);
    let units: Vec<i64> = user.units.iter().map(|m| m.id).collect();
    let scope = (!sees_all(&user)).then_some(units.as_slice());
    let (items, total) = reporting::list(&state.db, scope, per, (page - 1) * per).await?;
    let items: Vec<Value> = items
        .iter()
        .map(|b| {
            json!({"id": b.id, "unit_id": b.unit_id, "kind": b.kind, "period": b.period,
            "status": b.status, "attempts": b.attempts})
        })
        .collect();
    Ok(Json(
        json!({"items": items, "total": total, "page": page, "per_page": per}),
    ))
}

async fn api_get(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    Ok(Json(readable(&state, &user, id).await?.to_json()))
}

async fn api_delete(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    owned(&state, &user, id).await?;
    reporting::delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn api_refresh(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    owned(&state, &user, id).await?;
    reporting::refresh(
        &state.db,
        id,
        &reporting::Site::of(&state.config),
        state.now(),
    )
    .await?;
    Ok(Json(reporting::get(&state.db, id).await?.to_json()))
}

async fn api_submit(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    owned(&state, &user, id).await?;
    let s = reporting::submit(
        &state.engine,
        user.id,
        id,
        &reporting::Site::of(&state.config),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"instance_id": s.instance_id, "state": s.state})),
    )
        .into_response())
}

async fn api_retry(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::SystemConfig)?;
    push::retry(&state.db, id, state.now()).await?;
    Ok(Json(reporting::get(&state.db, id).await?.to_json()))
}

fn export(b: &Batch) -> Result<axum::response::Response> {
    let kind = if b.kind == "instruments" {
        "instruments"
    } else {
        "service_records"
    };
    let headers: Vec<&str> = reporting::national::schema()
        .records
        .get(kind)
        .map(|specs| specs.iter().map(|s| s.field.as_str()).collect())
        .unwrap_or_default();
    let mut all = vec!["insCode"];
    all.extend(headers.iter().copied());
    let rows: Vec<Vec<String>> = b
        .items
        .iter()
        .map(|i| {
            let mut row = vec![b.credit_code.clone()];
            row.extend(headers.iter().map(|h| {
                i.national
                    .get(*h)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            }));
            row
        })
        .collect();
    let bytes = crate::spreadsheets::export(reporting::kind_label(&b.kind), &all, &rows)?;
    Ok(super::page::xlsx_download(
        bytes,
        &format!("report-{}.xlsx", b.id),
        &format!(
            "{}{}{}.xlsx",
            b.unit_name,
            b.period,
            reporting::kind_label(&b.kind)
        ),
    ))
}

async fn api_export(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    Ok(export(&readable(&state, &user, id).await?)?)
}

async fn api_national_get(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    Ok(Json(Value::Object(
        owned_instrument(&state, &user, id).await?,
    )))
}

async fn api_national_put(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    owned_instrument(&state, &user, id).await?;
    let saved = reporting::save_supplements(&state.db, id, &body, state.now()).await?;
    Ok(Json(Value::Object(saved)))
}

// ---- console: 信息上报 ---------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct PageQ {
    page: Option<i64>,
}

async fn list_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<PageQ>,
) -> PageResult {
    if !READERS.iter().any(|p| user.can(*p)) {
        return Err(AppError::forbidden().into());
    }
    let page = q.page.unwrap_or(1).clamp(1, 100_000);
    let units = managed_units(&user);
    let ids: Vec<i64> = user.units.iter().map(|m| m.id).collect();
    let all = sees_all(&user);
    let (batches, total) = reporting::list(
        &state.db,
        (!all).then_some(ids.as_slice()),
        PER_PAGE,
        (page - 1) * PER_PAGE,
    )
    .await?;
    let today = state.clock.today();
    let mut owed = Vec::new();
    if user.can(Permission::InstrumentManage) {
        for (id, name) in &units {
            let o = reporting::owed(&state.db, *id, today).await?;
            owed.push(json!({"unit_id": id, "unit_name": name, "owed": o}));
        }
    }
    let rows: Vec<Value> = batches
        .iter()
        .map(|b| {
            json!({"id": b.id, "unit_name": b.unit_name, "kind": reporting::kind_label(&b.kind),
            "period": b.period, "status": b.status, "status_label": reporting::status_label(&b.status),
            "attempts": b.attempts, "updated": crate::clock::display(b.updated_at)})
        })
        .collect();
    let completeness: Vec<Value> = if all {
        reporting::completeness_by_unit(&state.db, today)
            .await?
            .iter()
            .map(|u| {
                let mut v = json!(u);
                v["overdue"] = json!(u.overdue());
                v["complete"] = json!(u.is_complete());
                v["last_pushed"] = json!(u.last_pushed_at.map(crate::clock::display));
                v
            })
            .collect()
    } else {
        Vec::new()
    };
    let period = reporting::period_of(today);
    let periods: Vec<String> = (0..4)
        .map(|k| {
            let d = today
                .checked_sub_months(chrono::Months::new(3 * k))
                .unwrap_or(today);
            reporting::period_of(d)
        })
        .collect();
    Ok(Page::new(
        "console/reports.html",
        crate::ctx! {
            batches => rows, owed => owed, units => units, periods => periods, period => period,
            can_create => user.can(Permission::InstrumentManage) && !units.is_empty(),
            sees_all => all, completeness => completeness,
            pager => super::page::pager(page, total, PER_PAGE), query => json!({}),
        },
    )
    .into_response())
}

async fn create_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    user.require(Permission::InstrumentManage)?;
    let unit_id: i64 = form
        .get("unit_id")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if user
        .require_for(Permission::InstrumentManage, unit_id)
        .is_err()
    {
        return Ok(redirect_with_flash("/console/reports", "请选择本单位"));
    }
    let kind = form.get("kind").map(String::as_str).unwrap_or("");
    let period = form.get("period").map(String::as_str).unwrap_or("");
    match reporting::create(
        &state.db,
        unit_id,
        kind,
        period,
        user.id,
        &reporting::Site::of(&state.config),
        state.now(),
    )
    .await
    {
        Ok(id) => Ok(redirect_with_flash(
            &format!("/console/reports/{id}"),
            "上报批次已生成，请核对国家字段与问题清单",
        )),
        Err(e) => match refusal(&e) {
            Some(msg) => Ok(redirect_with_flash("/console/reports", &msg)),
            None => Err(e.into()),
        },
    }
}

async fn batch_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let b = readable(&state, &user, id).await?;
    let kind = if b.kind == "instruments" {
        "instruments"
    } else {
        "service_records"
    };
    let columns: Vec<Value> = reporting::national::schema()
        .records
        .get(kind)
        .map(|specs| {
            specs
                .iter()
                .map(|s| json!({"field": s.field, "label": s.label}))
                .collect()
        })
        .unwrap_or_default();
    let problems: usize = b.items.iter().map(|i| i.problems.len()).sum();
    let can_edit = b.status == "draft"
        && user.can(Permission::InstrumentManage)
        && user.acts_for(b.unit_id, true);
    Ok(Page::new(
        "console/report.html",
        crate::ctx! {
            b => b, kind_label => reporting::kind_label(&b.kind),
            status_label => reporting::status_label(&b.status), columns => columns,
            problem_count => problems, can_edit => can_edit,
            is_instruments => b.kind == "instruments",
            can_retry => user.can(Permission::SystemConfig) && b.status == "failed",
            pushed => b.pushed_at.map(crate::clock::display),
        },
    )
    .into_response())
}

async fn refresh_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    owned(&state, &user, id).await?;
    let back = format!("/console/reports/{id}");
    match reporting::refresh(
        &state.db,
        id,
        &reporting::Site::of(&state.config),
        state.now(),
    )
    .await
    {
        Ok(()) => Ok(redirect_with_flash(&back, "已按最新数据重新生成")),
        Err(e) => match refusal(&e) {
            Some(msg) => Ok(redirect_with_flash(&back, &msg)),
            None => Err(e.into()),
        },
    }
}

async fn submit_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    owned(&state, &user, id).await?;
    let back = format!("/console/reports/{id}");
    match reporting::submit(
        &state.engine,
        user.id,
        id,
        &reporting::Site::of(&state.config),
    )
    .await
    {
        Ok(_) => Ok(redirect_with_flash(&back, "已提交平台审核")),
        Err(e) => match refusal(&e) {
            Some(msg) => Ok(redirect_with_flash(&back, &msg)),
            None => Err(e.into()),
        },
    }
}

async fn delete_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    owned(&state, &user, id).await?;
    match reporting::delete(&state.db, id).await {
        Ok(()) => Ok(redirect_with_flash("/console/reports", "草稿批次已删除")),
        Err(e) => match refusal(&e) {
            Some(msg) => Ok(redirect_with_flash(&format!("/console/reports/{id}"), &msg)),
            None => Err(e.into()),
        },
    }
}

async fn retry_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    user.require(Permission::SystemConfig)?;
    let back = format!("/console/reports/{id}");
    match push::retry(&state.db, id, state.now()).await {
        Ok(()) => Ok(redirect_with_flash(&back, "已重新排队推送")),
        Err(e) => match refusal(&e) {
            Some(msg) => Ok(redirect_with_flash(&back, &msg)),
            None => Err(e.into()),
        },
    }
}

async fn export_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    Ok(export(&readable(&state, &user, id).await?)?)
}

/// The national supplements form of one instrument (英文名称、主要技术指标、主要功能 …).
fn national_form(id: i64, values: &Map<String, Value>, errors: Value, back: &str) -> Page {
    let mut shown = values.clone();
    if let Some(Value::Array(codes)) = values.get("subject_codes") {
        let joined: Vec<String> = codes
            .iter()
            .filter_map(|c| c.as_str().map(String::from))
            .collect();
        shown.insert("subject_codes".into(), json!(joined.join(",")));
    }
    Page::new(
        "console/instrument_national.html",
        crate::ctx! { id => id, v => shown, errors => errors, back => back },
    )
}

#[derive(Deserialize, Default)]
struct BackQ {
    back: Option<String>,
}

async fn national_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    PageQuery(q): PageQuery<BackQ>,
) -> PageResult {
    let national = owned_instrument(&state, &user, id).await?;
    let back = super::page::safe_next(q.back.as_deref());
    Ok(national_form(id, &national, json!({}), &back).into_response())
}

async fn national_save(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    owned_instrument(&state, &user, id).await?;
    let back = super::page::safe_next(form.get("back").map(String::as_str));
    let patch: Map<String, Value> = form
        .iter()
        .filter(|(k, _)| reporting::INSTRUMENT_NATIONAL_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    reporting::save_supplements(&state.db, id, &patch, state.now()).await?;
    Ok(redirect_with_flash(
        &back,
        "国家上报补充信息已保存，请重新生成批次",
    ))
}
