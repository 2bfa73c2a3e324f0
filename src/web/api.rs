//! JSON API v1 (`/api/v1`), exactly as `api-contract.md` says. Bearer tokens only: a browser
//! cookie never authorises an API call, so the API needs no CSRF token.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState, JsonError,
    extract::{ApiJson, ApiPath, ClientIp},
    routes::{Access, Route},
    session::{ApiUser, Auth},
};
use crate::{
    auth::{self, NewUser, Permission},
    error::AppError,
    units::{self, NewUnit},
};

/// An error rendered as the contract's JSON.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.into_json_response()
    }
}

pub type ApiResult<T = Response> = Result<T, ApiError>;

/// Accounts, sessions and units. Per-record checks (members of the unit) are the handlers'.
pub fn routes() -> Vec<Route> {
    use Permission::*;
    let (p, s) = (Access::Public, Access::SignedIn);
    vec![
        Route::post("/api/v1/users", p, register),
        Route::post("/api/v1/session", p, login),
        Route::delete("/api/v1/session", s, logout),
        Route::get("/api/v1/me", s, me),
        Route::get("/api/v1/roles", RoleManage, roles),
        Route::post("/api/v1/units", UnitManage, create_unit),
        Route::get("/api/v1/units/{id}", s, get_unit),
        Route::patch("/api/v1/units/{id}", UnitManage, update_unit),
    ]
}

async fn register(
    state: axum::extract::State<AppState>,
    ApiJson(new): ApiJson<NewUser>,
) -> ApiResult {
    let id = auth::create_user(&state.db, new.clone(), &["user"], state.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "username": new.username.trim()})),
    )
        .into_response())
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(
    state: axum::extract::State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult {
    let now = state.now();
    let user_id = auth::authenticate(&state.db, &body.username, &body.password, &ip, now).await?;
    let token = auth::create_api_token(&state.db, user_id, "api-session", now).await?;
    let user = auth::load_user(&state.db, user_id)
        .await?
        .ok_or(AppError::InvalidCredentials)?;
    Ok(Json(json!({
        "token": token,
        "expires_at": crate::clock::rfc3339(now + auth::API_TOKEN_SECS),
        "user": {"id": user.id, "username": user.username, "roles": user.roles},
    }))
    .into_response())
}

async fn logout(
    state: axum::extract::State<AppState>,
    auth: Auth,
    ApiUser(_): ApiUser,
) -> ApiResult {
    if let Some(token) = &auth.token {
        auth::delete_api_token(&state.db, token).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn me(
    state: axum::extract::State<AppState>,
    ApiUser(user): ApiUser,
) -> ApiResult<Json<Value>> {
    let invitations = units::invitations::pending_for_user(&state.db, user.id).await?;
    Ok(Json(json!({
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "roles": user.roles,
        "permissions": user.permissions,
        "units": user.units.iter().map(|u| json!({"id": u.id, "name": u.name, "kind": u.kind, "role": u.role})).collect::<Vec<_>>(),
        "unit_permissions": user.unit_permissions,
        "invitations": invitations,
    })))
}

async fn roles(
    state: axum::extract::State<AppState>,
    ApiUser(user): ApiUser,
) -> ApiResult<Json<Value>> {
    user.require(Permission::RoleManage)?;
    let roles = crate::auth::list_roles(&state.db).await?;
    Ok(Json(json!({ "items": roles })))
}

async fn create_unit(
    state: axum::extract::State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(new): ApiJson<NewUnit>,
) -> ApiResult {
    user.require(Permission::UnitManage)?;
    let id = units::create(&state.db, new, user.id, state.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "certification_status": "draft"})),
    )
        .into_response())
}

/// A unit is visible to its members and to platform reviewers; certified managing units
/// are public anyway.
async fn get_unit(
    state: axum::extract::State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let unit = units::get(&state.db, id).await?;
    let public = unit.kind == "managing" && unit.certification_status == "certified";
    if !(public || user.acts_for(id, false) || user.can(Permission::UnitReview)) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        }
        .into());
    }
    Ok(Json(
        serde_json::to_value(unit).map_err(anyhow::Error::from)?,
    ))
}

async fn update_unit(
    state: axum::extract::State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(upd): ApiJson<units::ContactUpdate>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::UnitManage)?;
    units::get(&state.db, id).await?;
    user.require_for(Permission::UnitManage, id)?;
    units::update_contact(&state.db, id, upd, state.now()).await?;
    let unit = units::get(&state.db, id).await?;
    Ok(Json(
        serde_json::to_value(unit).map_err(anyhow::Error::from)?,
    ))
}
