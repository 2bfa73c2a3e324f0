//! 统计分析: the year's figures for the platform admin (page) and for data docking (API).

use axum::{Json, extract::State, response::IntoResponse};
use chrono::Datelike;
use serde::Deserialize;
use serde_json::Value;

use super::{
    AppState,
    api::ApiResult,
    extract::{ApiQuery, PageQuery},
    page::{Page, PageResult, xlsx_download},
    routes::Route,
    session::{ApiUser, SignedIn},
};
use crate::{auth::Permission, statistics};

/// Statistics: the page, its export and the API.
pub fn routes() -> Vec<Route> {
    let stats = Permission::StatsView;
    vec![
        Route::get("/console/statistics", stats, page).nav("统计分析", 230),
        Route::get("/console/statistics/export.xlsx", stats, export),
        Route::get("/api/v1/statistics", stats, api),
    ]
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

/// The page's figures as a spreadsheet: one row per figure, then the top instruments.
async fn export(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<YearQuery>,
) -> PageResult {
    user.require(Permission::StatsView)?;
    let s = statistics::for_year(&state.db, year(&state, &q)).await?;
    let row = |a: &str, b: String| vec![a.to_string(), b, String::new(), String::new()];
    let yuan = |m: &std::collections::BTreeMap<String, crate::domain::Yuan>, k: &str| {
        m.get(k)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "0.00".into())
    };
    let mut rows = vec![
        row("入网仪器（台/套）", s.instruments.to_string()),
        row("仪器原值（元）", s.instrument_value.to_string()),
        row("认证管理单位", s.managing_units.to_string()),
        row("认证用户单位", s.user_units.to_string()),
        row("服务记录", s.services.to_string()),
        row("其中对外服务", s.external_services.to_string()),
        row("服务机时（小时）", s.service_hours.to_string()),
        row("服务金额（元）", s.service_income.to_string()),
        row("获得创新券额度的单位", s.voucher_units.to_string()),
        row("创新券发放（元）", yuan(&s.vouchers, "grant")),
        row("创新券冻结（元）", yuan(&s.vouchers, "reserve")),
        row("创新券释放（元）", yuan(&s.vouchers, "release")),
        row("创新券兑付（元）", yuan(&s.vouchers, "redeem")),
        row("创新券过期（元）", yuan(&s.vouchers, "expire")),
        row(
            "已下达补贴（元）",
            s.subsidy_published
                .map(|y| y.to_string())
                .unwrap_or_default(),
        ),
    ];
    for (k, l) in crate::money::GRADES {
        rows.push(row(
            &format!("绩效评价：{l}"),
            s.grades.get(k).copied().unwrap_or(0).to_string(),
        ));
    }
    rows.push(row("", String::new()));
    rows.push(vec![
        "服务机时前十的仪器".into(),
        "管理单位".into(),
        "机时（小时）".into(),
        "金额（元）".into(),
    ]);
    for t in &s.top_instruments {
        rows.push(vec![
            t.name.clone(),
            t.unit_name.clone(),
            t.hours.to_string(),
            t.income.to_string(),
        ]);
    }
    let bytes = crate::spreadsheets::export(
        &format!("{} 年度统计", s.year),
        &["指标", "数值", "", ""],
        &rows,
    )?;
    Ok(xlsx_download(
        bytes,
        &format!("statistics-{}.xlsx", s.year),
        &format!("{} 年度统计分析.xlsx", s.year),
    ))
}
