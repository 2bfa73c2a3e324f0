//! Console pages for the expert pool (专家库, `unit.review`) and unit management rules
//! (单位管理制度, `unit.manage`, own units only).

use std::collections::BTreeMap;

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use serde_json::json;

use super::{
    AppState,
    extract::{CsrfForm, CsrfMultipart, PagePath, PageQuery},
    page::{Page, PageResult, redirect_with_flash},
    routes::Route,
    session::SignedIn,
};
use crate::{
    auth::{CurrentUser, Permission},
    error::AppError,
    experts::{self, STATUSES, TITLES},
    uploads::{self, Purpose},
};

const PER_PAGE: i64 = 20;

/// The expert pool and the units' rules (管理制度).
pub fn routes() -> Vec<Route> {
    let review = Permission::UnitReview;
    let unit = Permission::UnitManage;
    vec![
        Route::get("/console/experts", review, pool_page).nav("专家库", 170),
        Route::post("/console/experts", review, create),
        Route::get("/console/experts/new", review, new_page),
        Route::get("/console/experts/{id}", review, edit_page),
        Route::post("/console/experts/{id}", review, update),
        Route::post("/console/experts/{id}/certify", review, certify),
        Route::get("/console/rules", unit, rules_page).nav("管理制度", 40),
        Route::post("/console/rules", unit, create_rule)
            .body_limit(uploads::MAX_PDF_BYTES + 512 * 1024),
    ]
}

async fn pool_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<BTreeMap<String, String>>,
) -> PageResult {
    user.require(Permission::UnitReview)?;
    let field = q.get("field").cloned().unwrap_or_default();
    let status = q.get("status").cloned().unwrap_or_default();
    let page = q
        .get("page")
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=10_000).contains(p))
        .unwrap_or(1);
    let (items, total) =
        experts::pool(&state.db, &field, &status, (page - 1) * PER_PAGE, PER_PAGE).await?;
    Ok(Page::new(
        "console/experts.html",
        crate::ctx! { items => items, field => field, status => status, statuses => STATUSES,
        pager => super::page::pager(page, total, PER_PAGE),
        query => crate::ctx!{ field => field, status => status } },
    )
    .into_response())
}

fn form(
    expert: Option<&experts::Expert>,
    values: &BTreeMap<String, String>,
    errors: serde_json::Value,
) -> Page {
    Page::new(
        "console/expert_form.html",
        crate::ctx! { expert => expert, values => values, errors => errors, titles => TITLES,
        statuses => STATUSES },
    )
}

async fn new_page(SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::UnitReview)?;
    Ok(form(None, &BTreeMap::new(), json!({})).into_response())
}

fn invalid(
    expert: Option<&experts::Expert>,
    values: &BTreeMap<String, String>,
    e: AppError,
) -> PageResult {
    match e {
        AppError::Validation { fields, .. } => Ok(form(
            expert,
            values,
            serde_json::to_value(fields).unwrap_or_default(),
        )
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .into_response()),
        e => Err(e.into()),
    }
}

async fn create(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(raw): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    user.require(Permission::UnitReview)?;
    match experts::create_expert(&state.db, &raw, state.now()).await {
        Ok(id) => Ok(redirect_with_flash(
            &format!("/console/experts/{id}"),
            "专家信息已入库（未认证）",
        )),
        Err(e) => invalid(None, &raw, e),
    }
}

fn values_of(e: &experts::Expert) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("name".into(), e.name.clone()),
        ("unit_name".into(), e.unit_name.clone()),
        ("title".into(), e.title.clone()),
        ("fields".into(), e.fields.clone()),
        ("joined_on".into(), e.joined_on.clone().unwrap_or_default()),
        ("status".into(), e.status.clone()),
    ])
}

async fn edit_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    user.require(Permission::UnitReview)?;
    let e = experts::get_expert(&state.db, id).await?;
    Ok(form(Some(&e), &values_of(&e), json!({})).into_response())
}

async fn update(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(raw): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    user.require(Permission::UnitReview)?;
    let e = experts::get_expert(&state.db, id).await?;
    match experts::update_expert(&state.db, id, &raw, state.now()).await {
        Ok(()) => Ok(redirect_with_flash(
            &format!("/console/experts/{id}"),
            "已保存",
        )),
        Err(err) => invalid(Some(&e), &raw, err),
    }
}

async fn certify(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    user.require(Permission::UnitReview)?;
    let back = format!("/console/experts/{id}");
    match experts::submit_certification(&state.engine, &user, id).await {
        Ok(_) => Ok(redirect_with_flash(&back, "已提交专家认证")),
        Err(e @ (AppError::Conflict { .. } | AppError::Unprocessable { .. })) => {
            Ok(redirect_with_flash(&back, &e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

// ---- unit management rules ----------------------------------------------------------------

fn my_units(user: &CurrentUser) -> Vec<(i64, String)> {
    user.units
        .iter()
        .filter(|m| m.role == "manager")
        .map(|m| (m.id, m.name.clone()))
        .collect()
}

async fn rules_view(
    state: &AppState,
    user: &CurrentUser,
    values: &BTreeMap<String, String>,
    errors: serde_json::Value,
) -> Result<Page, AppError> {
    let units = my_units(user);
    let ids: Vec<i64> = units.iter().map(|(i, _)| *i).collect();
    let rules = experts::rules_for_units(&state.db, &ids).await?;
    Ok(Page::new(
        "console/rules.html",
        crate::ctx! { rules => rules, units => units, values => values, errors => errors },
    ))
}

async fn rules_page(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::UnitManage)?;
    Ok(rules_view(&state, &user, &BTreeMap::new(), json!({}))
        .await?
        .into_response())
}

async fn create_rule(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    form: CsrfMultipart,
) -> PageResult {
    user.require(Permission::UnitManage)?;
    let raw: BTreeMap<String, String> = form
        .fields
        .iter()
        .filter(|(k, _)| k.as_str() != "csrf_token")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let Some(unit_id) = raw.get("unit_id").and_then(|u| u.parse::<i64>().ok()) else {
        return Ok(
            rules_view(&state, &user, &raw, json!({"unit_id": "请选择单位"}))
                .await?
                .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                .into_response(),
        );
    };
    user.require_for(Permission::UnitManage, unit_id)?;
    let now = state.now();
    let attachment = match form.file("attachment") {
        None => None,
        Some(f) => match uploads::store(
            &state.db,
            &state.config.data_dir,
            &f.file_name,
            &f.bytes,
            Purpose::Document,
            user.id,
            now,
        )
        .await
        {
            Ok(u) => Some(u.id),
            Err(AppError::Validation { message, .. }) => {
                return Ok(
                    rules_view(&state, &user, &raw, json!({ "attachment": message }))
                        .await?
                        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                        .into_response(),
                );
            }
            Err(e) => return Err(e.into()),
        },
    };
    match experts::create_rule(&state.db, unit_id, &raw, attachment, now).await {
        Ok(_) => Ok(redirect_with_flash("/console/rules", "管理制度已登记")),
        Err(AppError::Validation { fields, .. }) => Ok(rules_view(
            &state,
            &user,
            &raw,
            serde_json::to_value(fields).unwrap_or_default(),
        )
        .await?
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .into_response()),
        Err(e) => Err(e.into()),
    }
}
