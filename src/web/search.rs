//! Search over HTTP (检索接口): `GET /api/v1/search`, `GET /api/v1/search/suggest` (public, no
//! sign-in) and the portal page `/search` (in `portal.rs`, which calls [`run`]).

use axum::{Json, extract::State, response::IntoResponse};
use serde::Deserialize;
use serde_json::json;

use super::{
    AppState,
    api::ApiResult,
    extract::ApiQuery,
    routes::{Access, Route},
};
use crate::search::{SearchParams, SearchResult};

/// The search API (public).
pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/api/v1/search", Access::Public, api_search),
        Route::get("/api/v1/search/suggest", Access::Public, api_suggest),
    ]
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(flatten)]
    pub params: SearchParams,
    #[serde(default)]
    pub page: String,
    #[serde(default)]
    pub per_page: String,
}

/// A page number or size from the query; anything odd falls back.
pub fn number(raw: &str, default: usize, max: usize) -> usize {
    raw.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= 1 && *n <= max)
        .unwrap_or(default)
}

/// Run a search for a page of results (on the blocking pool: it is CPU work).
pub async fn run(
    state: &AppState,
    q: &SearchQuery,
    per_page: usize,
) -> crate::error::Result<(SearchResult, usize)> {
    let page = number(&q.page, 1, 500);
    let index = state.search.clone();
    let params = q.params.clone();
    let result =
        tokio::task::spawn_blocking(move || index.search(&params, (page - 1) * per_page, per_page))
            .await
            .map_err(|e| crate::error::AppError::Internal(e.into()))??;
    Ok((result, page))
}

async fn api_search(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult {
    let per_page = number(&q.per_page, 20, 100);
    let (result, page) = run(&state, &q, per_page).await?;
    let items: Vec<_> = result
        .items
        .iter()
        .map(|h| {
            json!({"type": h.doc_type, "id": h.id, "title": h.title, "snippet": h.snippet,
                   "score": h.score, "url": h.url})
        })
        .collect();
    Ok(Json(json!({
        "total": result.total, "took_ms": result.took_ms, "items": items,
        "facets": result.facets, "page": page, "per_page": per_page,
    }))
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
struct SuggestQuery {
    #[serde(default)]
    q: String,
}

async fn api_suggest(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SuggestQuery>,
) -> ApiResult {
    let index = state.search.clone();
    let items = tokio::task::spawn_blocking(move || index.suggest(&q.q, 8))
        .await
        .map_err(|e| crate::error::AppError::Internal(e.into()))??;
    Ok(Json(json!({ "items": items })).into_response())
}
