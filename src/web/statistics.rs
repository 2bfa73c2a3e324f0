//! 统计分析: the statistics page with its charts, filters and drill-down (platform → unit →
//! instrument), every chart's data as xlsx, the year's figures and the national indicators
//! as JSON.

use axum::{Json, extract::State, response::IntoResponse};
use chrono::Datelike;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState,
    api::ApiResult,
    charts,
    extract::{ApiQuery, PagePath, PageQuery},
    page::{Page, PageResult, xlsx_download},
    routes::{Access, Route},
    session::{ApiUser, SignedIn},
};
use crate::{
    auth::{CurrentUser, Permission},
    error::{AppError, Result},
    statistics::{self, Scope, series},
};

/// Statistics: the page, its exports and the API.
pub fn routes() -> Vec<Route> {
    let stats = Permission::StatsView;
    vec![
        Route::get("/console/statistics", stats, page).nav("统计分析", 230),
        Route::get("/console/statistics/export.xlsx", stats, export),
        Route::get("/console/statistics/charts/{file}", stats, chart_xlsx),
        Route::get("/api/v1/statistics", stats, api),
        // stats.view, or the manager of the unit asked about: the handler decides.
        Route::get(
            "/api/v1/statistics/indicators",
            Access::SignedIn,
            indicators_api,
        ),
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

/// The page's filters; empty strings mean "all".
#[derive(Deserialize, Default, Clone)]
struct Filters {
    year: Option<String>,
    quarter: Option<String>,
    category: Option<String>,
    city: Option<String>,
    unit_id: Option<String>,
    instrument_id: Option<String>,
}

fn opt<T: std::str::FromStr>(v: &Option<String>) -> Option<T> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
}

impl Filters {
    fn scope(&self, state: &AppState) -> Result<Scope> {
        let year = match opt::<i64>(&self.year) {
            None if self.year.as_deref().is_some_and(|s| !s.trim().is_empty()) => {
                return Err(AppError::field(
                    "year",
                    "年度应为 2000 到 2099 之间的四位数字",
                ));
            }
            None => state.clock.today().year() as i64,
            Some(y) if (2000..=2099).contains(&y) => y,
            Some(_) => {
                return Err(AppError::field(
                    "year",
                    "年度应为 2000 到 2099 之间的四位数字",
                ));
            }
        };
        let quarter = opt::<u32>(&self.quarter);
        if quarter.is_some_and(|q| !(1..=4).contains(&q)) {
            return Err(AppError::field("quarter", "季度应为 1 到 4"));
        }
        let category = opt::<String>(&self.category).filter(|c| crate::catalog::is_known_code(c));
        Ok(Scope {
            year,
            unit_id: opt(&self.unit_id),
            category: category.map(|c| crate::catalog::major_code(&c)),
            city: opt(&self.city),
            quarter,
            instrument_id: opt(&self.instrument_id),
        })
    }
}

/// The query string of a scope, with overrides (`None` removes a key).
fn query_of(scope: &Scope, set: &[(&str, Option<String>)]) -> String {
    let mut pairs: Vec<(String, String)> = vec![("year".into(), scope.year.to_string())];
    let mut push = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            pairs.push((k.into(), v));
        }
    };
    let cur = [
        ("quarter", scope.quarter.map(|q| q.to_string())),
        ("category", scope.category.clone()),
        ("city", scope.city.clone()),
        ("unit_id", scope.unit_id.map(|u| u.to_string())),
        ("instrument_id", scope.instrument_id.map(|u| u.to_string())),
    ];
    for (k, v) in cur {
        match set.iter().find(|(s, _)| *s == k) {
            Some((_, over)) => push(k, over.clone()),
            None => push(k, v),
        }
    }
    for (k, v) in set {
        if k == &"year" {
            pairs[0].1 = v.clone().unwrap_or_default();
        }
    }
    serde_urlencoded::to_string(&pairs).unwrap_or_default()
}

/// A chart as the template shows it: the SVG, the table rows (formatted), drill-down links.
fn chart_view(c: &series::Chart, scope: &Scope) -> Value {
    let money = c.unit == "元";
    let rows: Vec<Value> = c
        .labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let href = match (c.drill, c.ids.get(i).copied().flatten()) {
                // The query only: the template writes the path (autoescape would turn `/` into
                // an entity in a computed URL).
                (Some(series::Drill::Unit), Some(id)) => Some(query_of(
                    scope,
                    &[("unit_id", Some(id.to_string())), ("instrument_id", None)],
                )),
                (Some(series::Drill::Instrument), Some(id)) => {
                    Some(query_of(scope, &[("instrument_id", Some(id.to_string()))]))
                }
                _ => None,
            };
            let cells: Vec<String> = c
                .series
                .iter()
                .map(|s| {
                    let v = s.values.get(i).copied().unwrap_or_default();
                    let places = if money
                        || s.name.contains("元")
                        || s.name.contains("小时")
                        || s.name.contains("万元")
                    {
                        2
                    } else {
                        v.scale()
                    };
                    crate::templating::grouped(v, places)
                })
                .collect();
            json!({"label": label, "href": href, "cells": cells})
        })
        .collect();
    json!({
        "key": c.key, "title": c.title, "description": c.description, "unit": c.unit,
        "label_header": c.label_header,
        "headers": c.series.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "rows": rows, "empty": c.is_empty(),
        "svg": charts::svg(c),
        "query": query_of(scope, &[]),
    })
}

async fn page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(f): PageQuery<Filters>,
) -> PageResult {
    user.require(Permission::StatsView)?;
    let scope = f.scope(&state)?;
    let (_, policy) = crate::money::current(&state.db).await?;
    let mut crumbs = vec![
        json!({"label": "全平台", "q": query_of(&scope, &[("unit_id", None), ("instrument_id", None)])}),
    ];
    let mut level = "platform";
    if let Some(u) = scope.unit_id {
        let unit = crate::units::get(&state.db, u).await?;
        crumbs.push(json!({"label": unit.name, "q": query_of(&scope, &[("instrument_id", None)])}));
        level = "unit";
    }
    if let Some(i) = scope.instrument_id {
        let name = statistics::series::instrument_name(&state.db, i)
            .await?
            .ok_or(AppError::NotFound)?;
        crumbs.push(json!({"label": name, "q": null}));
        level = "instrument";
    }
    // The charts, the indicators, the filters' choices and the year's figures are
    // independent reads: they run at once.
    let db = &state.db;
    let (charts, ind, (cities, units), s) = futures::try_join!(
        series::charts(db, &scope),
        async {
            if scope.instrument_id.is_some() {
                return Ok(None);
            }
            let m = statistics::measures::aggregated(db, &policy.indicators, &scope).await?;
            Ok::<_, AppError>(Some(statistics::indicators::from_measures(
                &policy,
                scope.year,
                scope.unit_id,
                &m,
            )))
        },
        series::filter_options(db),
        async {
            // The year's platform-wide figures (as `GET /api/v1/statistics`) on the platform level.
            if level == "platform" {
                Ok(Some(statistics::for_year(db, scope.year).await?))
            } else {
                Ok::<_, AppError>(None)
            }
        },
    )?;
    let charts: Vec<Value> = charts.iter().map(|c| chart_view(c, &scope)).collect();
    let today = state.clock.today().year() as i64;
    Ok(Page::new(
        "console/statistics.html",
        crate::ctx! {
            scope => json!({"year": scope.year, "quarter": scope.quarter, "category": scope.category, "city": scope.city,
                            "unit_id": scope.unit_id, "instrument_id": scope.instrument_id}),
            s => s, level => level, crumbs => crumbs, charts => charts, ind => ind,
            years => ((today - 5)..=today).rev().collect::<Vec<_>>(),
            classes => crate::catalog::classes().iter().map(|c| json!({"code": c.code, "name": c.name})).collect::<Vec<_>>(),
            cities => cities, units => units,
            export_query => query_of(&scope, &[]),
        },
    )
    .into_response())
}

/// `/console/statistics/charts/{key}.xlsx?filters`: one chart's table.
async fn chart_xlsx(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(file): PagePath<String>,
    PageQuery(f): PageQuery<Filters>,
) -> PageResult {
    user.require(Permission::StatsView)?;
    let key = file.strip_suffix(".xlsx").ok_or(AppError::NotFound)?;
    let scope = f.scope(&state)?;
    let chart = series::charts(&state.db, &scope)
        .await?
        .into_iter()
        .find(|c| c.key == key)
        .ok_or(AppError::NotFound)?;
    let mut headers: Vec<&str> = vec![chart.label_header.as_str()];
    headers.extend(chart.series.iter().map(|s| s.name.as_str()));
    let rows: Vec<Vec<String>> = chart
        .labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut r = vec![l.clone()];
            r.extend(
                chart
                    .series
                    .iter()
                    .map(|s| s.values.get(i).map(|v| v.to_string()).unwrap_or_default()),
            );
            r
        })
        .collect();
    let bytes = crate::spreadsheets::export(&chart.title, &headers, &rows)?;
    Ok(xlsx_download(
        bytes,
        &format!("chart-{key}-{}.xlsx", scope.year),
        &format!("{} {}.xlsx", scope.year, chart.title),
    ))
}

/// `GET /api/v1/statistics?year=YYYY` → the year's figures as JSON.
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

#[derive(Deserialize, Default)]
struct IndicatorQuery {
    year: Option<String>,
    unit_id: Option<String>,
}

fn may_see_unit(user: &CurrentUser, unit_id: Option<i64>) -> bool {
    user.can(Permission::StatsView) || unit_id.is_some_and(|u| user.acts_for(u, true))
}

/// `GET /api/v1/statistics/indicators?year=&unit_id=` → the national indicators of a unit, or
/// of the platform without `unit_id` (stats.view, or the unit's own manager).
async fn indicators_api(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiQuery(q): ApiQuery<IndicatorQuery>,
) -> ApiResult<Json<Value>> {
    let mut errors = crate::error::FieldErrors::new();
    let year = match q.year.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => state.clock.today().year() as i64,
        Some(s) => match s.parse::<i64>() {
            Ok(y) if (2000..=2099).contains(&y) => y,
            _ => {
                errors.insert("year".into(), "年度应为 2000 到 2099 之间的四位数字".into());
                0
            }
        },
    };
    let unit_id = match q
        .unit_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(u) => Some(u),
            Err(_) => {
                errors.insert("unit_id".into(), "unit_id 应为单位编号".into());
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(AppError::Validation {
            message: "查询参数有误".into(),
            fields: errors,
        }
        .into());
    }
    if !may_see_unit(&user, unit_id) {
        return Err(AppError::forbidden().into());
    }
    if let Some(u) = unit_id {
        crate::units::get(&state.db, u).await?;
    }
    let (_, policy) = crate::money::current(&state.db).await?;
    let ind = statistics::national(&state.db, &policy, year, unit_id).await?;
    Ok(Json(
        serde_json::to_value(ind).map_err(anyhow::Error::from)?,
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
