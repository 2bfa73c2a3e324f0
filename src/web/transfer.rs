//! 成果转化对接: the interest form on an achievement's page, the console page where the owning
//! unit answers and tracks interests (and the platform sees the pipeline with the agreements
//! per unit), and the API.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState,
    api::ApiResult,
    extract::{ApiJson, ApiPath, CsrfForm, PagePath, PageQuery},
    page::{Page, PageResult, pager, redirect_with_flash, refusal},
    routes::{Access, Route},
    session::{ApiUser, SignedIn},
};
use crate::transfer::{self, STATUSES};

const PER_PAGE: i64 = 20;

pub fn routes() -> Vec<Route> {
    let s = Access::SignedIn;
    vec![
        Route::post("/achievements/{id}/interest", s, interest_form),
        Route::get("/console/transfer", s, console_page).nav("成果转化对接", 125),
        Route::post("/console/transfer/{id}", s, update_form),
        Route::post("/api/v1/achievements/{id}/interest", s, api_interest),
        Route::get("/api/v1/achievement-interests", s, api_list),
        Route::patch("/api/v1/achievement-interests/{id}", s, api_update),
        Route::get(
            "/api/v1/statistics/transfer-agreements",
            transfer::ADMIN,
            api_agreements,
        ),
    ]
}

async fn interest_form(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    let unit = form.get("unit_id").and_then(|u| u.parse().ok());
    let message = form.get("message").cloned().unwrap_or_default();
    match transfer::express(&state, &user, id, unit, &message).await {
        Ok(_) => Ok(redirect_with_flash(
            &format!("/achievements/{id}"),
            "合作意向已提交，成果单位将与您联系",
        )),
        Err(e) => match refusal(&e) {
            Some(msg) => Ok(redirect_with_flash(
                &format!("/achievements/{id}"),
                &format!("未能提交：{msg}"),
            )),
            None => Err(e.into()),
        },
    }
}

async fn console_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<BTreeMap<String, String>>,
) -> PageResult {
    let incoming = transfer::incoming(&state.db, &user).await?;
    let sent = transfer::sent(&state.db, &user).await?;
    let admin = user.can(transfer::ADMIN);
    let page = q
        .get("page")
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=10_000).contains(p))
        .unwrap_or(1);
    let (pipeline, total, agreements) = if admin {
        let (items, total) = transfer::all(&state.db, (page - 1) * PER_PAGE, PER_PAGE).await?;
        let agreements = transfer::agreements_per_unit(&state.db, None).await?;
        (items, total, agreements)
    } else {
        (vec![], 0, vec![])
    };
    Ok(Page::new(
        "console/transfer.html",
        crate::ctx! { incoming => incoming, sent => sent, admin => admin, pipeline => pipeline,
        pager => pager(page, total, PER_PAGE), agreements => agreements, statuses => STATUSES,
        query => crate::ctx!{} },
    )
    .into_response())
}

async fn update_form(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    match transfer::update(&state, &user, id, &get("status"), &get("reply")).await {
        Ok(i) => Ok(redirect_with_flash(
            "/console/transfer",
            &format!("意向已更新为“{}”", i.status_label),
        )),
        Err(e) => match refusal(&e) {
            Some(msg) => Ok(redirect_with_flash("/console/transfer", &msg)),
            None => Err(e.into()),
        },
    }
}

#[derive(Deserialize)]
struct InterestBody {
    unit_id: Option<i64>,
    #[serde(default)]
    message: String,
}

async fn api_interest(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<InterestBody>,
) -> ApiResult<Response> {
    let iid = transfer::express(&state, &user, id, b.unit_id, &b.message).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": iid, "status": "new"})),
    )
        .into_response())
}

/// `{incoming, sent}` for units; the platform also gets `all`.
async fn api_list(State(state): State<AppState>, ApiUser(user): ApiUser) -> ApiResult<Json<Value>> {
    let incoming = transfer::incoming(&state.db, &user).await?;
    let sent = transfer::sent(&state.db, &user).await?;
    let mut out = json!({"incoming": incoming, "sent": sent});
    if user.can(transfer::ADMIN) {
        let (all, total) = transfer::all(&state.db, 0, 100).await?;
        out["all"] = json!({"items": all, "total": total, "page": 1, "per_page": 100});
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
struct UpdateBody {
    #[serde(default)]
    status: String,
    #[serde(default)]
    reply: String,
}

async fn api_update(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<UpdateBody>,
) -> ApiResult<Json<Value>> {
    let i = transfer::update(&state, &user, id, &b.status, &b.reply).await?;
    Ok(Json(serde_json::to_value(i).map_err(anyhow::Error::from)?))
}

async fn api_agreements(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
) -> ApiResult<Json<Value>> {
    user.require(transfer::ADMIN)?;
    let items = transfer::agreements_per_unit(&state.db, None).await?;
    Ok(Json(json!({"items": items})))
}
