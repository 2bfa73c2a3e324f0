//! 平台配置 and 工作日历 (system admin, `system.config`): the site settings and the
//! working-day calendar by year, as pages and as the API; plus the layer that keeps this
//! node's published snapshot current on every request.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::Datelike;
use serde_json::{Value, json};

use super::{
    AppState,
    api::ApiResult,
    extract::{ApiJson, ApiPath, CsrfForm, PageQuery},
    page::{Page, PageResult, redirect_with_flash},
    routes::{Access, Route},
    session::{ApiUser, SignedIn},
};
use crate::{
    auth::Permission,
    calendar::{self, YearInput},
    error::AppError,
    published,
    settings::{self, Settings},
};

pub fn routes() -> Vec<Route> {
    let sys = Permission::SystemConfig;
    vec![
        Route::get("/api/v1/settings", Access::Public, api_get_settings),
        Route::put("/api/v1/settings", sys, api_put_settings),
        Route::get("/api/v1/calendar/{year}", Access::Public, api_get_calendar),
        Route::put("/api/v1/calendar/{year}", sys, api_put_calendar),
        Route::get("/console/settings", sys, settings_page).nav("平台配置", 281),
        Route::post("/console/settings", sys, settings_save),
        Route::get("/console/calendar", sys, calendar_page).nav("工作日历", 282),
        Route::post("/console/calendar", sys, calendar_post),
    ]
}

/// Before each routed request: bring this node's published calendar and settings up to the
/// database's revision (a publication through another node counts from the next request).
pub async fn keep_published_fresh(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if let Err(e) = published::refresh(&state.db).await {
        tracing::warn!(error = %e, "could not check the published settings and calendar");
    }
    next.run(req).await
}

async fn api_get_settings(State(state): State<AppState>) -> Json<Value> {
    Json(state.db.published.settings().public())
}

async fn api_put_settings(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::SystemConfig)?;
    let Value::Object(patch) = body else {
        return Err(AppError::BadRequest("请求体应为 JSON 对象".into()).into());
    };
    let current = settings::load(&state.db).await?;
    let new = settings::merged(&current, &patch)?;
    let saved = settings::update(&state.db, &new, user.id, state.now()).await?;
    Ok(Json(
        serde_json::to_value(saved).map_err(anyhow::Error::from)?,
    ))
}

fn year_json(state: &AppState, year: i32) -> Value {
    let (days, source) = state.db.published.calendar().year(year);
    json!({"year": year, "holidays": days.holidays, "workdays": days.workdays, "source": source})
}

fn year_param(raw: &str) -> Result<i32, AppError> {
    raw.parse::<i32>()
        .ok()
        .filter(|y| calendar::YEARS.contains(y))
        .ok_or_else(|| AppError::field("year", "年份应在 2000–2099 之间"))
}

async fn api_get_calendar(
    State(state): State<AppState>,
    ApiPath(year): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let year = year_param(&year)?;
    Ok(Json(year_json(&state, year)))
}

async fn api_put_calendar(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(year): ApiPath<String>,
    ApiJson(input): ApiJson<YearInput>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::SystemConfig)?;
    let year = year_param(&year)?;
    let days = calendar::validate(year, &input)?;
    calendar::publish(&state.db, year, &days, user.id, state.now()).await?;
    Ok(Json(year_json(&state, year)))
}

fn settings_form(s: &Settings, errors: Value, changes: Vec<published::Change>) -> Page {
    Page::new(
        "console/settings.html",
        crate::ctx! { s => s, errors => errors, slot_choices => settings::SLOT_MINUTES,
        changes => changes },
    )
}

async fn settings_page(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::SystemConfig)?;
    let s = settings::load(&state.db).await?;
    let changes = published::changes(&state.db, "settings", 10).await?;
    Ok(settings_form(&s, json!({}), changes).into_response())
}

/// The form's values as the API's JSON: numbers where the settings hold numbers. A number
/// field that is not a number stays text, so `merged` reports it on its field.
fn form_patch(form: &BTreeMap<String, String>) -> serde_json::Map<String, Value> {
    let numeric = serde_json::to_value(Settings::default()).unwrap_or_default();
    form.iter()
        .filter(|(k, _)| k.as_str() != "csrf_token")
        .map(|(k, v)| {
            let value = match numeric.get(k) {
                Some(Value::Number(_)) => v
                    .trim()
                    .parse::<u64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::String(v.clone())),
                _ => Value::String(v.clone()),
            };
            (k.clone(), value)
        })
        .collect()
}

async fn settings_save(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    user.require(Permission::SystemConfig)?;
    let current = settings::load(&state.db).await?;
    let attempt = settings::merged(&current, &form_patch(&form));
    let result = match attempt {
        Ok(new) => settings::update(&state.db, &new, user.id, state.now())
            .await
            .map_err(|e| (e, new)),
        Err(e) => Err((e, current.clone())),
    };
    match result {
        Ok(_) => Ok(redirect_with_flash(
            "/console/settings",
            "平台配置已保存，各页面即时生效",
        )),
        Err((AppError::Validation { fields, .. }, shown)) => {
            // Show what was typed, with the messages beside the fields.
            let mut typed = serde_json::to_value(&shown).unwrap_or_default();
            if let Value::Object(o) = &mut typed {
                for (k, v) in &form {
                    if o.contains_key(k) {
                        o.insert(k.clone(), Value::String(v.clone()));
                    }
                }
            }
            let changes = published::changes(&state.db, "settings", 10).await?;
            Ok(Page::new(
                "console/settings.html",
                crate::ctx! { s => typed, errors => fields, slot_choices => settings::SLOT_MINUTES,
                changes => changes },
            )
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .into_response())
        }
        Err((e, _)) => Err(e.into()),
    }
}

fn dates_text(days: &std::collections::BTreeSet<chrono::NaiveDate>) -> String {
    days.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn split_dates(raw: &str) -> Vec<String> {
    raw.split(|c: char| c.is_whitespace() || ",，、;；".contains(c))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn calendar_view(
    state: &AppState,
    year: i32,
    holidays: &str,
    workdays: &str,
    notice: &str,
    preview: Option<Vec<calendar::PreviewMonth>>,
    errors: Value,
    changes: Vec<published::Change>,
) -> Page {
    let cal = state.db.published.calendar();
    let (_, source) = cal.year(year);
    let this_year = state.clock.today().year();
    let years: Vec<Value> = (this_year - 1..=this_year + 2)
        .map(|y| json!({"year": y, "published": cal.is_published(y)}))
        .collect();
    Page::new(
        "console/calendar.html",
        crate::ctx! { year => year, source => source, holidays => holidays, workdays => workdays,
        notice => notice, preview => preview, errors => errors, years => years, changes => changes },
    )
}

async fn calendar_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<BTreeMap<String, String>>,
) -> PageResult {
    user.require(Permission::SystemConfig)?;
    let year = match q.get("year") {
        Some(y) => year_param(y)?,
        None => state.clock.today().year() + 1,
    };
    let (days, _) = state.db.published.calendar().year(year);
    let changes = published::changes(&state.db, "calendar", 10).await?;
    Ok(calendar_view(
        &state,
        year,
        &dates_text(&days.holidays),
        &dates_text(&days.workdays),
        "",
        Some(calendar::preview(year, &days)),
        json!({}),
        changes,
    )
    .into_response())
}

/// `action`: `import` reads a pasted notice into the two lists, `preview` shows the year
/// as entered, `publish` validates and publishes it.
async fn calendar_post(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    user.require(Permission::SystemConfig)?;
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let year = year_param(get("year").trim())?;
    let notice = get("notice");
    let mut input = YearInput {
        holidays: split_dates(&get("holidays")),
        workdays: split_dates(&get("workdays")),
    };
    let action = get("action");
    if action == "import" {
        input = calendar::parse_notice(year, &notice);
    }
    let changes = published::changes(&state.db, "calendar", 10).await?;
    match calendar::validate(year, &input) {
        Ok(days) if action == "publish" => {
            calendar::publish(&state.db, year, &days, user.id, state.now()).await?;
            Ok(redirect_with_flash(
                &format!("/console/calendar?year={year}"),
                &format!("{year} 年工作日历已发布，办理时限、公示期和预约日历即时按新日历计算"),
            ))
        }
        Ok(days) => Ok(calendar_view(
            &state,
            year,
            &dates_text(&days.holidays),
            &dates_text(&days.workdays),
            &notice,
            Some(calendar::preview(year, &days)),
            json!({}),
            changes,
        )
        .into_response()),
        Err(AppError::Validation { fields, .. }) => Ok(calendar_view(
            &state,
            year,
            &input.holidays.join("\n"),
            &input.workdays.join("\n"),
            &notice,
            None,
            serde_json::to_value(fields).unwrap_or_default(),
            changes,
        )
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .into_response()),
        Err(e) => Err(e.into()),
    }
}
