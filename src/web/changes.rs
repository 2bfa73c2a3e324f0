//! Change requests, retirements and operational fields of approved records (变更申请、
//! 下线报废、运行信息) for their units: the API and the console forms. The domain is
//! `crate::changes` and `crate::instruments::operation`; reviews happen in the task pages.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    AppState,
    api::ApiResult,
    extract::{ApiJson, ApiPath, CsrfForm, PagePath},
    page::{PageResult, redirect_with_flash},
    routes::Route,
    session::{ApiUser, SignedIn},
};
use crate::{
    auth::{CurrentUser, Permission},
    changes::{self, Target},
    error::{AppError, Result},
    instruments::{self, InstrumentInput, operation::OperationPatch},
    records,
    resources::Kind,
};

/// Who may read a record's requests: its unit's members and the reviewers (checked per record).
const READERS: super::routes::Access = super::routes::Access::AnyOf(&[
    Permission::InstrumentManage,
    Permission::InstrumentReview,
    Permission::ResourceReview,
]);

pub fn routes() -> Vec<Route> {
    let manage = Permission::InstrumentManage;
    let mut r = vec![
        Route::patch("/api/v1/instruments/{id}/operation", manage, api_operation),
        Route::post("/api/v1/instruments/{id}/retire", manage, |s, u, p, j| {
            api_retire(Target::Instrument, s, u, p, j)
        }),
        Route::get("/api/v1/instruments/{id}/changes", READERS, |s, u, p| {
            api_list(Target::Instrument, s, u, p)
        }),
        Route::get(
            "/api/v1/changes/{id}",
            super::routes::Access::SignedIn,
            api_get,
        ),
        Route::post(
            "/console/instruments/{id}/operation",
            manage,
            operation_page,
        ),
        Route::post("/console/instruments/{id}/retire", manage, retire_page),
    ];
    for kind in [Kind::Platform, Kind::Service, Kind::Achievement] {
        let target = Target::Record(kind);
        let api = format!("/api/v1/{}/{{id}}", records::slug(kind));
        r.push(Route::post(
            format!("{api}/retire"),
            manage,
            move |s, u, p, j| api_retire(target, s, u, p, j),
        ));
        r.push(Route::get(
            format!("{api}/changes"),
            READERS,
            move |s, u, p| api_list(target, s, u, p),
        ));
    }
    r
}

/// The unit of a record, or 404.
async fn unit_of(state: &AppState, target: Target, id: i64) -> Result<i64> {
    Ok(match target {
        Target::Instrument => instruments::get(&state.db, id).await?.unit_id,
        Target::Record(k) => records::get(&state.db, k, id).await?.unit_id,
    })
}

/// `PATCH` on an approved record: a change request (202), or — when no reviewed field
/// changes — the record as it is (instruments: national reporting fields saved at once).
pub(super) async fn request_response(
    state: &AppState,
    user: &CurrentUser,
    target: Target,
    id: i64,
    patch: &Map<String, Value>,
) -> ApiResult {
    let national = match target {
        Target::Instrument => crate::reporting::national_supplements(patch),
        Target::Record(_) => Default::default(),
    };
    let started =
        changes::request_change(&state.engine, user, target, id, patch, state.now()).await?;
    if !national.is_empty() {
        crate::reporting::save_supplements(&state.db, id, &national, state.now()).await?;
    }
    if let Some(c) = started {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"change_id": c.change_id, "instance_id": c.instance_id, "state": c.state})),
        )
            .into_response());
    }
    let body = match target {
        Target::Instrument => super::instruments::record_json(state, id).await?,
        Target::Record(k) => super::records::record_json(&records::get(&state.db, k, id).await?),
    };
    Ok(Json(body).into_response())
}

/// The console form on an approved instrument: a change request.
pub(super) async fn request_page(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    form: &InstrumentInput,
) -> PageResult {
    let back = format!("/console/instruments/{id}");
    let patch = match serde_json::to_value(form).map_err(anyhow::Error::from)? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    match changes::request_change(
        &state.engine,
        user,
        Target::Instrument,
        id,
        &patch,
        state.now(),
    )
    .await
    {
        Ok(Some(c)) => Ok(redirect_with_flash(
            &back,
            &format!(
                "变更申请 #{} 已提交平台审核；审核通过前门户仍显示原内容",
                c.change_id
            ),
        )),
        Ok(None) => Ok(redirect_with_flash(&back, "没有修改任何需要审核的内容")),
        Err(AppError::Validation { fields, message }) => {
            let detail: Vec<String> = fields.values().cloned().collect();
            Ok(redirect_with_flash(
                &back,
                &format!("{message}：{}", detail.join("；")),
            ))
        }
        Err(e @ AppError::Conflict { .. }) => Ok(redirect_with_flash(&back, &e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// What an instrument's console page shows beside its form: operational fields, its change
/// requests (with the field-by-field difference) and the operation log.
pub(super) async fn instrument_ops(state: &AppState, id: i64) -> Result<minijinja::Value> {
    let op = instruments::operation::get(&state.db, id).await?;
    let history = changes::for_record(&state.db, Target::Instrument, id).await?;
    let log = instruments::operation::log(&state.db, id).await?;
    let log: Vec<Value> = log
        .iter()
        .map(|l| {
            json!({"field": if l.field == "bookable" { "接受预约" } else { "运行状态" },
                "before": l.before_value, "after": l.after_value, "by": l.user_name,
                "at": crate::clock::display(l.at)})
        })
        .collect();
    let pending = history.iter().any(|c| c.status == "pending");
    Ok(
        crate::ctx! { operation => op, changes => history, log => log, pending => pending,
        usage_statuses => crate::catalog::USAGE_STATUSES },
    )
}

async fn api_operation(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    let Value::Object(mut body) = body else {
        return Err(AppError::BadRequest("请求体应为 JSON 对象".into()).into());
    };
    // 培训资质 (issue 17) shares the route with the operational fields (issue 13).
    let qualification = match body.remove("requires_qualification") {
        None => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => {
            return Err(AppError::field(
                "requires_qualification",
                "是否需要培训资质应为 true 或 false",
            )
            .into());
        }
    };
    let patch: OperationPatch = serde_json::from_value(Value::Object(body))
        .map_err(|e| AppError::unprocessable("invalid_body", format!("请求字段不正确：{e}")))?;
    let ops_given = patch.usage_status.is_some() || patch.bookable.is_some();
    if let Some(required) = qualification {
        crate::money::bookings::qualifications::set_required(
            &state.db,
            &user,
            id,
            required,
            state.now(),
        )
        .await?;
    }
    let (op, notified) = if ops_given || qualification.is_none() {
        instruments::operation::update(&state.app, &user, id, &patch).await?
    } else {
        (instruments::operation::get(&state.db, id).await?, 0)
    };
    let mut v = serde_json::to_value(&op).map_err(anyhow::Error::from)?;
    v["notified"] = json!(notified);
    v["requires_qualification"] =
        json!(crate::money::bookings::qualifications::is_required(&state.db, id).await?);
    Ok(Json(v))
}

#[derive(Deserialize, Default)]
struct RetireBody {
    #[serde(default)]
    reason: String,
}

async fn api_retire(
    target: Target,
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<RetireBody>,
) -> ApiResult {
    let c =
        changes::request_retirement(&state.engine, &user, target, id, &body.reason, state.now())
            .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"change_id": c.change_id, "instance_id": c.instance_id, "state": c.state})),
    )
        .into_response())
}

/// A record's change history: its unit's members.
async fn api_list(
    target: Target,
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let unit = unit_of(&state, target, id).await?;
    if !(user.acts_for(unit, false) || may_review(&user)) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        }
        .into());
    }
    let items = changes::for_record(&state.db, target, id).await?;
    Ok(Json(json!({"items": items, "total": items.len()})))
}

fn may_review(user: &CurrentUser) -> bool {
    user.can(Permission::InstrumentReview) || user.can(Permission::ResourceReview)
}

/// One request with its field-by-field difference: the unit's members and reviewers.
async fn api_get(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let c = changes::get(&state.db, id).await?;
    if !(user.acts_for(c.unit_id, false) || may_review(&user)) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        }
        .into());
    }
    Ok(Json(serde_json::to_value(&c).map_err(anyhow::Error::from)?))
}

#[derive(Deserialize, Default)]
struct OperationForm {
    #[serde(default)]
    usage_status: String,
    /// The checkbox: present when ticked.
    #[serde(default)]
    bookable: Option<String>,
}

async fn operation_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<OperationForm>,
) -> PageResult {
    let back = format!("/console/instruments/{id}");
    let patch = OperationPatch {
        usage_status: Some(form.usage_status),
        bookable: Some(form.bookable.is_some()),
    };
    match instruments::operation::update(&state.app, &user, id, &patch).await {
        Ok((_, told)) => Ok(redirect_with_flash(
            &back,
            &if told > 0 {
                format!("运行信息已更新，已通知 {told} 位有后续预约的用户")
            } else {
                "运行信息已更新".to_string()
            },
        )),
        Err(e @ (AppError::Validation { .. } | AppError::Conflict { .. })) => {
            Ok(redirect_with_flash(&back, &e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
struct RetireForm {
    #[serde(default)]
    reason: String,
}

async fn retire_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<RetireForm>,
) -> PageResult {
    let back = format!("/console/instruments/{id}");
    match changes::request_retirement(
        &state.engine,
        &user,
        Target::Instrument,
        id,
        &form.reason,
        state.now(),
    )
    .await
    {
        Ok(c) => Ok(redirect_with_flash(
            &back,
            &format!("下线申请 #{} 已提交平台审核", c.change_id),
        )),
        Err(AppError::Validation { fields, .. }) => Ok(redirect_with_flash(
            &back,
            fields
                .values()
                .next()
                .map(String::as_str)
                .unwrap_or("请填写下线原因"),
        )),
        Err(e @ AppError::Conflict { .. }) => Ok(redirect_with_flash(&back, &e.to_string())),
        Err(e) => Err(e.into()),
    }
}
