//! 公示 (open data): the public page listing approved voucher redemptions, published
//! subsidies and published evaluation grades, each also at a stable URL as CSV and JSON
//! (`/open-data/{kind}.csv`, `/open-data/{kind}.json`; kind: redemptions | subsidies | grades).

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{
    AppState,
    extract::PagePath,
    page::{Page, PageResult},
    routes::{Access, Route},
};
use crate::{error::AppError, statistics::open_data};

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/open-data", Access::Public, page),
        Route::get("/open-data/{file}", Access::Public, file),
    ]
}

async fn page(State(state): State<AppState>) -> PageResult {
    let mut sets = Vec::new();
    for (kind, _) in open_data::KINDS {
        if let Some(d) = open_data::dataset(&state.db, kind).await? {
            sets.push(d);
        }
    }
    Ok(Page::new("portal/open_data.html", crate::ctx! { sets => sets }).into_response())
}

/// `{kind}.csv` or `{kind}.json`; anything else is 404.
async fn file(
    State(state): State<AppState>,
    PagePath(name): PagePath<String>,
) -> Result<Response, super::page::PageError> {
    let (kind, ext) = name.rsplit_once('.').ok_or(AppError::NotFound)?;
    if ext != "csv" && ext != "json" {
        return Err(AppError::NotFound.into());
    }
    let d = open_data::dataset(&state.db, kind)
        .await?
        .ok_or(AppError::NotFound)?;
    let disposition = format!("inline; filename=\"{kind}.{ext}\"");
    Ok(if ext == "csv" {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            d.csv(),
        )
            .into_response()
    } else {
        (
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            json!(d.json()).to_string(),
        )
            .into_response()
    })
}
