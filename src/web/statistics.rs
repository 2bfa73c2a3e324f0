//! 统计分析: the year's figures for the platform admin (page) and for data docking (API).

use axum::{Json, Router, extract::State, response::IntoResponse, routing::get};
use chrono::Datelike;
use serde::Deserialize;
use serde_json::Value;

use super::{
    AppState,
    api::ApiResult,
    extract::{ApiQuery, PageQuery},
    page::{Page, PageResult},
    session::{ApiUser, SignedIn},
};
use crate::{auth::Permission, statistics};

pub const ROUTES: &[(&str, &str, Option<Permission>)] =
    &[("GET", "/console/statistics", Some(Permission::StatsView))];

pub fn router() -> Router<AppState> {
    Router::new().route("/console/statistics", get(page))
}

pub fn api_router() -> Router<AppState> {
    Router::new().route("/statistics", get(api))
}

#[derive(Deserialize, Default)]
struct YearQuery {
    year: Option<i64>,
}

fn year(state: &AppState, q: &YearQuery) -> i64 {
    q.year
        .unwrap_or_else(|| state.clock.today().year() as i64)
        .clamp(2000, 2100)
}

async fn page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<YearQuery>,
) -> PageResult {
    user.require(Permission::StatsView)?;
    let stats = statistics::for_year(&state.db, year(&state, &q)).await?;
    Ok(Page::new("console/statistics.html", crate::ctx! { s => stats }).into_response())
}

/// `GET /api/v1/statistics?year=YYYY` → the same figures as JSON.
async fn api(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiQuery(q): ApiQuery<YearQuery>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::StatsView)?;
    let stats = statistics::for_year(&state.db, year(&state, &q)).await?;
    Ok(Json(
        serde_json::to_value(stats).map_err(anyhow::Error::from)?,
    ))
}
