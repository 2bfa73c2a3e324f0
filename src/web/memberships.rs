//! Unit membership with consent (成员邀请与退出): invitations, acceptance, leaving a unit,
//! handing the manager role over — the API and the console forms. The domain is
//! `crate::units::invitations`.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState,
    api::ApiResult,
    extract::{ApiJson, ApiPath, CsrfForm, PagePath},
    page::{PageResult, redirect_with_flash},
    routes::{Access, Route},
    session::{ApiUser, SignedIn},
};
use crate::{
    auth::Permission,
    error::AppError,
    units::{self, invitations},
};

pub fn routes() -> Vec<Route> {
    let s = Access::SignedIn;
    vec![
        Route::post(
            "/api/v1/units/{id}/invitations",
            Permission::UnitManage,
            api_invite,
        ),
        Route::get(
            "/api/v1/units/{id}/invitations",
            Permission::UnitManage,
            api_unit_invitations,
        ),
        Route::get("/api/v1/units/{id}/members", s, api_members),
        Route::post("/api/v1/invitations/{id}/accept", s, |st, u, p| {
            api_answer(true, st, u, p)
        }),
        Route::post("/api/v1/invitations/{id}/decline", s, |st, u, p| {
            api_answer(false, st, u, p)
        }),
        Route::post("/api/v1/units/{id}/leave", s, api_leave),
        Route::post(
            "/api/v1/units/{id}/handover",
            Permission::UnitManage,
            api_handover,
        ),
        Route::post("/console/invitations/{id}/accept", s, |st, u, p, f| {
            answer_page(true, st, u, p, f)
        }),
        Route::post("/console/invitations/{id}/decline", s, |st, u, p, f| {
            answer_page(false, st, u, p, f)
        }),
        Route::post("/console/units/{id}/leave", s, leave_page),
        Route::post(
            "/console/units/{id}/handover",
            Permission::UnitManage,
            handover_page,
        ),
        Route::post(
            "/api/v1/units/{id}/revoke-certification",
            Permission::UnitReview,
            api_revoke,
        ),
        Route::post(
            "/console/units/{id}/revoke-certification",
            Permission::UnitReview,
            revoke_page,
        ),
    ]
}

#[derive(Deserialize, Default)]
pub(super) struct InviteBody {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub role: String,
}

async fn api_invite(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<InviteBody>,
) -> ApiResult {
    let inv = invitations::invite(&state.app, &user, id, &body.username, &body.role).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": inv.id, "status": inv.status, "user_id": inv.user_id, "role": inv.role})),
    )
        .into_response())
}

async fn api_unit_invitations(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    units::get(&state.db, id).await?;
    user.require_unit(id)?;
    let items = invitations::pending_for_unit(&state.db, id).await?;
    Ok(Json(json!({"items": items, "total": items.len()})))
}

/// A unit's members and its membership history: its own members only.
async fn api_members(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    units::get(&state.db, id).await?;
    if !(user.acts_for(id, false) || user.can(Permission::UnitReview)) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        }
        .into());
    }
    let members = units::members(&state.db, id).await?;
    let history = invitations::history(&state.db, id).await?;
    Ok(Json(json!({"items": members, "history": history})))
}

async fn api_answer(
    accept: bool,
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let inv = invitations::answer(&state.db, &user, id, accept, state.now()).await?;
    Ok(Json(
        json!({"id": inv.id, "status": inv.status, "unit_id": inv.unit_id, "role": inv.role}),
    ))
}

async fn api_leave(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    units::get(&state.db, id).await?;
    invitations::leave(&state.db, &user, id, state.now()).await?;
    Ok(Json(json!({"unit_id": id, "left": true})))
}

#[derive(Deserialize, Default)]
struct HandoverBody {
    #[serde(default)]
    user_id: i64,
}

async fn api_handover(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<HandoverBody>,
) -> ApiResult<Json<Value>> {
    invitations::hand_over(&state.db, &user, id, body.user_id, state.now()).await?;
    Ok(Json(
        json!({"unit_id": id, "manager_id": body.user_id, "role": "member"}),
    ))
}

#[derive(Deserialize, Default)]
struct Empty {}

async fn answer_page(
    accept: bool,
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    match invitations::answer(&state.db, &user, id, accept, state.now()).await {
        Ok(inv) if accept => Ok(redirect_with_flash(
            &format!("/console/units/{}", inv.unit_id),
            &format!("您已加入“{}”", inv.unit_name),
        )),
        Ok(inv) => Ok(redirect_with_flash(
            "/console/units",
            &format!("已拒绝“{}”的邀请", inv.unit_name),
        )),
        Err(e @ AppError::Conflict { .. }) => {
            Ok(redirect_with_flash("/console/units", &e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

async fn leave_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let unit = units::get(&state.db, id).await?;
    match invitations::leave(&state.db, &user, id, state.now()).await {
        Ok(()) => Ok(redirect_with_flash(
            "/console/units",
            &format!("您已退出“{}”", unit.name),
        )),
        Err(e @ AppError::Conflict { .. }) => Ok(redirect_with_flash(
            &format!("/console/units/{id}"),
            &e.to_string(),
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
struct HandoverForm {
    #[serde(default)]
    user_id: String,
}

async fn handover_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<HandoverForm>,
) -> PageResult {
    let back = format!("/console/units/{id}");
    let to = form.user_id.trim().parse::<i64>().unwrap_or(0);
    match invitations::hand_over(&state.db, &user, id, to, state.now()).await {
        Ok(()) => Ok(redirect_with_flash(
            &back,
            "管理员身份已移交，您现为本单位成员",
        )),
        Err(e @ (AppError::Conflict { .. } | AppError::Validation { .. })) => {
            let msg = match &e {
                AppError::Validation { fields, .. } => fields
                    .values()
                    .next()
                    .cloned()
                    .unwrap_or_else(|| e.to_string()),
                _ => e.to_string(),
            };
            Ok(redirect_with_flash(&back, &msg))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
struct ReasonBody {
    #[serde(default)]
    reason: String,
}

async fn api_revoke(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> ApiResult<Json<Value>> {
    units::revoke_certification(&state.db, &user, id, &body.reason, state.now()).await?;
    let unit = units::get(&state.db, id).await?;
    Ok(Json(
        json!({"id": id, "certification_status": unit.certification_status}),
    ))
}

async fn revoke_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<ReasonBody>,
) -> PageResult {
    let back = format!("/console/units/{id}");
    match units::revoke_certification(&state.db, &user, id, &form.reason, state.now()).await {
        Ok(()) => Ok(redirect_with_flash(&back, "已撤销该单位的认证")),
        Err(AppError::Validation { fields, message }) => Ok(redirect_with_flash(
            &back,
            fields.values().next().unwrap_or(&message),
        )),
        Err(e @ AppError::Conflict { .. }) => Ok(redirect_with_flash(&back, &e.to_string())),
        Err(e) => Err(e.into()),
    }
}
