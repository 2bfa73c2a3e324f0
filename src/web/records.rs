//! Platforms, services and achievements for unit managers: the API under `/api/v1/{platforms,
//! services,achievements}` and console pages, one set of handlers for the three kinds.

use std::collections::BTreeMap;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
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
    error::{AppError, Result},
    records::{self, Record},
    resources::Kind,
};

const KINDS: [Kind; 3] = [Kind::Platform, Kind::Service, Kind::Achievement];
const PER_PAGE: i64 = 20;

/// The API and the console pages of the three kinds, and a platform's instruments.
pub fn routes() -> Vec<Route> {
    let manage = Permission::InstrumentManage;
    let mut r = Vec::new();
    for kind in KINDS {
        let api = format!("/api/v1/{}", records::slug(kind));
        let base = format!("/console/{}", records::slug(kind));
        let (label, order) = match kind {
            Kind::Platform => ("科研平台", 50),
            Kind::Service => ("检测项目", 60),
            _ => ("科技成果", 70),
        };
        r.extend([
            Route::post(&api, manage, move |s, u, j| api_create(kind, s, u, j)),
            // Approved records are public; drafts only to their unit and reviewers.
            Route::get(format!("{api}/{{id}}"), Access::Public, move |s, a, p| {
                api_get(kind, s, a, p)
            }),
            Route::patch(format!("{api}/{{id}}"), manage, move |s, u, p, j| {
                api_update(kind, s, u, p, j)
            }),
            Route::post(format!("{api}/{{id}}/submit"), manage, move |s, u, p| {
                api_submit(kind, s, u, p)
            }),
            Route::get(&base, manage, move |s, u, q| list_page(kind, s, u, q)).nav(label, order),
            Route::post(&base, manage, move |s, u, f| create_page(kind, s, u, f)),
            Route::get(format!("{base}/new"), manage, move |u| new_page(kind, u)),
            Route::get(format!("{base}/export.xlsx"), manage, move |s, u| {
                export(kind, s, u)
            }),
            Route::get(format!("{base}/{{id}}"), manage, move |s, u, p| {
                edit_page(kind, s, u, p)
            }),
            Route::post(format!("{base}/{{id}}"), manage, move |s, u, p, f| {
                update_page(kind, s, u, p, f)
            }),
            Route::post(
                format!("{base}/{{id}}/submit"),
                manage,
                move |s, u, p, f| submit_page(kind, s, u, p, f),
            ),
        ]);
    }
    r.push(Route::post(
        "/console/platforms/{id}/instruments",
        manage,
        attach,
    ));
    r.push(Route::post(
        "/console/platforms/{id}/instruments/{instrument_id}/remove",
        manage,
        detach,
    ));
    r
}

pub(super) fn record_json(r: &Record) -> Value {
    let mut v = json!({
        "id": r.id, "unit_id": r.unit_id, "unit_name": r.unit_name, "title": r.title,
        "review_status": r.review_status, "updated_at": crate::clock::rfc3339(r.updated_at),
    });
    for (k, val) in &r.values {
        v[k] = json!(val);
    }
    v
}

async fn owned(state: &AppState, user: &CurrentUser, kind: Kind, id: i64) -> Result<Record> {
    user.require(Permission::InstrumentManage)?;
    let r = records::get(&state.db, kind, id).await?;
    user.require_for(Permission::InstrumentManage, r.unit_id)?;
    Ok(r)
}

async fn api_create(
    kind: Kind,
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult {
    user.require(Permission::InstrumentManage)?;
    let unit_id = match &body["unit_id"] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| AppError::field("unit_id", "请选择所属单位"))?;
    user.require_for(Permission::InstrumentManage, unit_id)?;
    let id = records::create(
        &state.db,
        kind,
        unit_id,
        &records::raw_from_json(&body),
        state.now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "review_status": "draft"})),
    )
        .into_response())
}

async fn api_get(
    kind: Kind,
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let r = records::get(&state.db, kind, id).await?;
    if r.review_status != "approved" {
        let user = match (&auth.user, auth.via) {
            (Some(u), Via::Bearer) => u.clone(),
            _ => return Err(AppError::Unauthenticated.into()),
        };
        if !(user.acts_for(r.unit_id, false) || user.can(Permission::ResourceReview)) {
            return Err(AppError::Forbidden {
                code: "not_unit_member",
            }
            .into());
        }
    }
    let mut v = record_json(&r);
    if kind == Kind::Platform {
        let public_only = r.review_status == "approved"
            && !auth
                .user
                .as_ref()
                .is_some_and(|u| u.acts_for(r.unit_id, false));
        let attached = records::platform_instruments(&state.db, id, public_only).await?;
        v["instrument_ids"] = json!(attached.iter().map(|i| i.id).collect::<Vec<_>>());
    }
    Ok(Json(v))
}

async fn api_update(
    kind: Kind,
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult {
    let current = owned(&state, &user, kind, id).await?;
    if current.review_status == "approved" {
        let Value::Object(patch) = patch else {
            return Err(AppError::BadRequest("请求体应为 JSON 对象".into()).into());
        };
        let target = crate::changes::Target::Record(kind);
        return super::changes::request_response(&state, &user, target, id, &patch).await;
    }
    records::ensure_editable(&current.review_status)?;
    let mut raw = current.values.clone();
    raw.extend(records::raw_from_json(&patch));
    records::update(&state.db, kind, id, &raw, state.now()).await?;
    Ok(Json(record_json(&records::get(&state.db, kind, id).await?)).into_response())
}

async fn api_submit(
    kind: Kind,
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    owned(&state, &user, kind, id).await?;
    let s = records::submit(&state.engine, &user, kind, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"instance_id": s.instance_id, "state": s.state})),
    )
        .into_response())
}

// ---- console ------------------------------------------------------------------------------

fn managed_units(user: &CurrentUser) -> Vec<(i64, String)> {
    user.units
        .iter()
        .filter(|m| m.kind == "managing" && user.can_for(Permission::InstrumentManage, m.id))
        .map(|m| (m.id, m.name.clone()))
        .collect()
}

fn meta(kind: Kind) -> Value {
    json!({"label": match kind {
        Kind::Platform => "科研平台", Kind::Service => "检测项目", Kind::Achievement => "科技成果",
    }, "slug": records::slug(kind)})
}

async fn list_page(
    kind: Kind,
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<BTreeMap<String, String>>,
) -> PageResult {
    user.require(Permission::InstrumentManage)?;
    let page = q
        .get("page")
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=10_000).contains(p))
        .unwrap_or(1);
    let units: Vec<i64> = managed_units(&user).iter().map(|(i, _)| *i).collect();
    let (items, total) =
        records::list_for_units(&state.db, kind, &units, (page - 1) * PER_PAGE, PER_PAGE).await?;
    Ok(Page::new(
        "console/records.html",
        crate::ctx! { items => items, kind => meta(kind), has_units => !units.is_empty(),
        pager => super::page::pager(page, total, PER_PAGE),
        query => crate::ctx!{} },
    )
    .into_response())
}

fn form_page(
    kind: Kind,
    user: &CurrentUser,
    record: Option<&Record>,
    values: &BTreeMap<String, String>,
    errors: Value,
) -> Page {
    let status = record.map(|r| r.review_status.as_str()).unwrap_or("draft");
    Page::new(
        "console/record_form.html",
        crate::ctx! { kind => meta(kind), fields => records::fields(kind), values => values,
        errors => errors, record => record, units => managed_units(user),
        editable => matches!(status, "draft" | "rejected"),
        changeable => status == "approved" },
    )
}

async fn new_page(kind: Kind, SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::InstrumentManage)?;
    Ok(form_page(kind, &user, None, &BTreeMap::new(), json!({})).into_response())
}

fn invalid(
    kind: Kind,
    user: &CurrentUser,
    record: Option<&Record>,
    values: &BTreeMap<String, String>,
    e: AppError,
) -> PageResult {
    match e {
        AppError::Validation { fields, .. } => Ok(form_page(
            kind,
            user,
            record,
            values,
            serde_json::to_value(fields).unwrap_or_default(),
        )
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .into_response()),
        e => Err(e.into()),
    }
}

async fn create_page(
    kind: Kind,
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    user.require(Permission::InstrumentManage)?;
    let Some(unit_id) = form.get("unit_id").and_then(|u| u.parse::<i64>().ok()) else {
        return invalid(
            kind,
            &user,
            None,
            &form,
            AppError::field("unit_id", "请选择所属单位"),
        );
    };
    user.require_for(Permission::InstrumentManage, unit_id)?;
    match records::create(&state.db, kind, unit_id, &form, state.now()).await {
        Ok(id) => Ok(redirect_with_flash(
            &format!("/console/{}/{id}", records::slug(kind)),
            "已保存为草稿，信息完整后可提交审核",
        )),
        Err(e) => invalid(kind, &user, None, &form, e),
    }
}

async fn edit_page(
    kind: Kind,
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let r = owned(&state, &user, kind, id).await?;
    let mut page = form_page(kind, &user, Some(&r), &r.values, json!({}));
    if kind == Kind::Platform {
        let attached = records::platform_instruments(&state.db, id, false).await?;
        let choices = records::unit_instruments(&state.db, r.unit_id).await?;
        page.context = minijinja::context! { attached => minijinja::Value::from(minijinja::value::Serde(&attached)), instrument_choices => minijinja::Value::from(minijinja::value::Serde(&choices)), ..page.context };
    }
    Ok(page.into_response())
}

async fn attach(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    owned(&state, &user, Kind::Platform, id).await?;
    let back = format!("/console/platforms/{id}");
    let Some(instrument_id) = form
        .get("instrument_id")
        .and_then(|v| v.parse::<i64>().ok())
    else {
        return Ok(redirect_with_flash(&back, "请选择要关联的仪器"));
    };
    match records::attach_instrument(&state.db, id, instrument_id, state.now()).await {
        Ok(()) => Ok(redirect_with_flash(&back, "已关联仪器")),
        Err(AppError::Validation { message, .. }) => Ok(redirect_with_flash(&back, &message)),
        Err(AppError::NotFound) => Ok(redirect_with_flash(&back, "未找到该仪器")),
        Err(e) => Err(e.into()),
    }
}

async fn detach(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath((id, instrument_id)): PagePath<(i64, i64)>,
    CsrfForm(_): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    owned(&state, &user, Kind::Platform, id).await?;
    records::detach_instrument(&state.db, id, instrument_id).await?;
    Ok(redirect_with_flash(
        &format!("/console/platforms/{id}"),
        "已取消关联",
    ))
}

async fn update_page(
    kind: Kind,
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    let r = owned(&state, &user, kind, id).await?;
    let back = format!("/console/{}/{id}", records::slug(kind));
    if r.review_status == "approved" {
        let patch = form
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let target = crate::changes::Target::Record(kind);
        return match crate::changes::request_change(
            &state.engine,
            &user,
            target,
            id,
            &patch,
            state.now(),
        )
        .await
        {
            Ok(Some(c)) => Ok(redirect_with_flash(
                &back,
                &format!(
                    "变更申请 #{} 已提交，平台审核通过后门户显示新内容",
                    c.change_id
                ),
            )),
            Ok(None) => Ok(redirect_with_flash(&back, "没有修改任何内容")),
            Err(e @ AppError::Conflict { .. }) => Ok(redirect_with_flash(&back, &e.to_string())),
            Err(e) => invalid(kind, &user, Some(&r), &form, e),
        };
    }
    match records::update(&state.db, kind, id, &form, state.now()).await {
        Ok(()) => Ok(redirect_with_flash(&back, "已保存")),
        Err(e @ AppError::Conflict { .. }) => Ok(redirect_with_flash(&back, &e.to_string())),
        Err(e) => invalid(kind, &user, Some(&r), &form, e),
    }
}

async fn submit_page(
    kind: Kind,
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    let r = owned(&state, &user, kind, id).await?;
    let back = format!("/console/{}/{id}", records::slug(kind));
    match records::submit(&state.engine, &user, kind, id).await {
        Ok(_) => Ok(redirect_with_flash(
            &format!("/console/{}", records::slug(kind)),
            &format!("“{}”已提交审核", r.title),
        )),
        Err(e @ AppError::Conflict { .. }) => Ok(redirect_with_flash(&back, &e.to_string())),
        Err(e) => invalid(kind, &user, Some(&r), &r.values, e),
    }
}

async fn export(kind: Kind, State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::InstrumentManage)?;
    let units: Vec<i64> = managed_units(&user).iter().map(|(i, _)| *i).collect();
    let (items, _) = records::list_for_units(&state.db, kind, &units, 0, 100_000).await?;
    let fields = records::fields(kind);
    let mut headers: Vec<&str> = fields.iter().map(|f| f.label).collect();
    headers.extend(["所属单位", "审核状态"]);
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|r| {
            let mut row: Vec<String> = fields
                .iter()
                .map(|f| r.values.get(f.name).cloned().unwrap_or_default())
                .collect();
            row.push(r.unit_name.clone());
            row.push(r.review_label.to_string());
            row
        })
        .collect();
    let label = meta(kind)["label"].as_str().unwrap_or("列表").to_string();
    let bytes = crate::spreadsheets::export(&label, &headers, &rows)?;
    let ascii = format!("{}.xlsx", records::slug(kind));
    Ok(super::page::xlsx_download(
        bytes,
        &ascii,
        &format!("{label}.xlsx"),
    ))
}
