//! 数据对接 (data docking): the system admin's API clients (`/api/v1/api-clients`, console
//! 数据对接), and the calls other systems make with a client token (`/api/v1/docking/…`):
//! scoped reads in national field names, and report batches of a `write:reports` client's
//! unit. Every docking call — refused, limited or answered — is written to the access log.

use std::collections::BTreeMap;

use axum::{
    Json,
    body::Bytes,
    extract::{OriginalUri, Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState, JsonError,
    api::ApiResult,
    extract::{ApiJson, ApiPath, ApiQuery, CsrfForm, PagePath, PageQuery},
    page::{Page, PageResult, redirect_with_flash},
    routes::{Access, Route},
    session::{ApiUser, SignedIn},
};
use crate::{
    auth::Permission,
    error::{AppError, Result},
    reporting::{self, docking},
};

const PER_PAGE: i64 = 20;

pub fn routes() -> Vec<Route> {
    use Permission::*;
    vec![
        Route::post("/api/v1/api-clients", SystemConfig, api_client_create),
        Route::get("/api/v1/api-clients", SystemConfig, api_client_list),
        Route::delete("/api/v1/api-clients/{id}", SystemConfig, api_client_delete),
        // Docking calls: the client's token, scope and rate are checked by `docking_call`.
        Route::get(
            "/api/v1/docking/instruments",
            Access::Public,
            read_instruments,
        ),
        Route::get(
            "/api/v1/docking/service-records",
            Access::Public,
            read_service_records,
        ),
        Route::get(
            "/api/v1/docking/statistics",
            Access::Public,
            read_statistics,
        ),
        Route::post("/api/v1/docking/reports", Access::Public, report_create),
        Route::get("/api/v1/docking/reports/{id}", Access::Public, report_get),
        Route::post(
            "/api/v1/docking/reports/{id}/submit",
            Access::Public,
            report_submit,
        ),
        Route::get("/console/docking", SystemConfig, docking_page).nav("数据对接", 285),
        Route::post("/console/docking/clients", SystemConfig, client_create_page),
        Route::post(
            "/console/docking/clients/{id}/revoke",
            SystemConfig,
            client_revoke_page,
        ),
    ]
}

// ---- API clients (system admin) -------------------------------------------------------------

/// `POST /api-clients`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct NewClient {
    #[serde(default)]
    name: String,
    /// `read:instruments`, `read:service_records`, `read:statistics`, `write:reports`.
    #[serde(default)]
    scopes: Vec<String>,
    /// RFC 3339 or `YYYY-MM-DD`; absent: no expiry.
    #[serde(default)]
    expires_at: Option<String>,
    /// The managing unit a `write:reports` client reports for (required with that scope).
    #[serde(default)]
    unit_id: Option<i64>,
}

async fn api_client_create(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<NewClient>,
) -> ApiResult {
    user.require(Permission::SystemConfig)?;
    let (id, token) = docking::create(
        &state.db,
        &body.name,
        &body.scopes,
        body.expires_at.as_deref().unwrap_or(""),
        body.unit_id,
        user.id,
        state.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "token": token}))).into_response())
}

#[derive(Deserialize, Default)]
struct ListQuery {
    page: Option<i64>,
    per_page: Option<i64>,
}

async fn api_client_list(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::SystemConfig)?;
    let page = q.page.unwrap_or(1).max(1);
    let per = q.per_page.unwrap_or(20).clamp(1, 100);
    let (items, total) = docking::list(&state.db, per, (page - 1) * per).await?;
    let items: Vec<Value> = items.iter().map(|c| c.to_json()).collect();
    Ok(Json(
        json!({"items": items, "total": total, "page": page, "per_page": per}),
    ))
}

async fn api_client_delete(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    user.require(Permission::SystemConfig)?;
    docking::revoke(&state.db, id, state.now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- docking calls (client tokens) ----------------------------------------------------------

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

/// One docking call to `route` (its table path): the token must be live and hold the route's
/// scope, and the client within its rate limit (429 with `Retry-After` beyond it); then `f`
/// answers. Every call, refused or not, goes to the access log with its status.
async fn docking_call(
    state: &AppState,
    headers: &HeaderMap,
    uri: &OriginalUri,
    method: &str,
    route: &str,
    f: impl AsyncFnOnce(docking::Client) -> Result<(StatusCode, Value)>,
) -> Response {
    let scope = docking::scope_of(method, route).unwrap_or("docking");
    let now = state.now();
    let token = bearer(headers);
    let limit = state.config.docking_rate_limit;
    let mut retry_after = None;
    let result: Result<(StatusCode, Value)> = async {
        let client = docking::authorize(&state.db, token.as_deref(), scope, now).await?;
        if let Err(secs) = docking::rate_check(&state.db, client.id, limit, now).await? {
            retry_after = Some(secs);
            return Err(AppError::TooManyRequests {
                message: format!(
                    "调用过于频繁：每个对接客户端每分钟最多调用 {limit} 次，请 {secs} 秒后再试"
                ),
            });
        }
        f(client).await
    }
    .await;
    let logged: Result<()> = async {
        let client = match token.as_deref() {
            Some(t) => docking::client_of(&state.db, t).await?,
            None => None,
        };
        let status = result
            .as_ref()
            .map_or_else(|e| e.http_status(), |(s, _)| s.as_u16());
        docking::log_call(&state.db, client, method, uri.0.path(), status, now).await
    }
    .await;
    if let Err(e) = logged {
        return e.into_json_response();
    }
    match result {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(e) => {
            let mut res = e.into_json_response();
            if let Some(secs) = retry_after {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1) as u64));
            }
            res
        }
    }
}

#[derive(Deserialize, Default)]
struct DockingQuery {
    updated_since: Option<String>,
    page: Option<i64>,
    per_page: Option<i64>,
}

fn query_of(uri: &OriginalUri) -> Result<DockingQuery> {
    Query::<DockingQuery>::try_from_uri(&uri.0)
        .map(|q| q.0)
        .map_err(|_| AppError::BadRequest("查询参数有误：page、per_page 应为整数".into()))
}

async fn docking_read(
    kind: &'static str,
    route: &'static str,
    state: AppState,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    docking_call(&state, &headers, &uri, "GET", route, async |_| {
        let q = query_of(&uri)?;
        let page = q.page.unwrap_or(1).max(1);
        let per = q.per_page.unwrap_or(20).clamp(1, 100);
        let since = match q.updated_since.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| AppError::field("updated_since", "updated_since 应为 RFC 3339 时间"))?
                .timestamp(),
        };
        let (items, total) = docking::read(
            &state.db,
            kind,
            since,
            per,
            (page - 1) * per,
            &reporting::Site::of(&state.config),
        )
        .await?;
        Ok((
            StatusCode::OK,
            json!({"items": items, "total": total, "page": page, "per_page": per}),
        ))
    })
    .await
}

async fn read_instruments(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    docking_read(
        "instruments",
        "/api/v1/docking/instruments",
        state,
        headers,
        uri,
    )
    .await
}

async fn read_service_records(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    docking_read(
        "service_records",
        "/api/v1/docking/service-records",
        state,
        headers,
        uri,
    )
    .await
}

#[derive(Deserialize, Default)]
struct YearQuery {
    year: Option<i64>,
}

/// `GET /docking/statistics?year=` (`read:statistics`): the year's figures, as
/// `GET /statistics` gives them to the platform.
async fn read_statistics(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    docking_call(
        &state,
        &headers,
        &uri,
        "GET",
        "/api/v1/docking/statistics",
        async |_| {
            let q = Query::<YearQuery>::try_from_uri(&uri.0)
                .map(|q| q.0)
                .map_err(|_| AppError::BadRequest("查询参数有误：year 应为年份".into()))?;
            let year = q
                .year
                .filter(|y| (2000..=2100).contains(y))
                .unwrap_or_else(|| chrono::Datelike::year(&state.clock.today()) as i64);
            let stats = crate::statistics::for_year(&state.db, year).await?;
            Ok((
                StatusCode::OK,
                serde_json::to_value(stats).map_err(anyhow::Error::from)?,
            ))
        },
    )
    .await
}

/// The unit a `write:reports` client reports for.
fn client_unit(c: &docking::Client) -> Result<i64> {
    c.unit_id.ok_or(AppError::Forbidden {
        code: "insufficient_scope",
    })
}

/// A batch of the client's unit (404 for any other, so ids of other units stay unknown).
async fn client_batch(
    state: &AppState,
    c: &docking::Client,
    raw: &str,
) -> Result<reporting::Batch> {
    let id: i64 = raw.trim().parse().map_err(|_| AppError::NotFound)?;
    let b = reporting::get(&state.db, id).await?;
    if Some(b.unit_id) != c.unit_id {
        return Err(AppError::NotFound);
    }
    Ok(b)
}

/// `POST /docking/reports`: the batch of the client's unit.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub(super) struct ClientBatch {
    /// `instruments` or `service_records`.
    #[serde(default)]
    kind: String,
    /// The quarter, `YYYYQn`.
    #[serde(default)]
    period: String,
}

/// `POST /docking/reports {kind, period}` → 201 the draft batch of the client's unit, with
/// its national records and problems (as `POST /reports`).
async fn report_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: OriginalUri,
    body: Bytes,
) -> Response {
    docking_call(
        &state,
        &headers,
        &uri,
        "POST",
        "/api/v1/docking/reports",
        async |c| {
            let unit = client_unit(&c)?;
            let body: ClientBatch = serde_json::from_slice(&body)
                .map_err(|_| AppError::BadRequest("请求体应为 JSON：{kind, period}".into()))?;
            let user = docking::reporting_user(&state.db, unit).await?;
            let id = reporting::create(
                &state.db,
                unit,
                body.kind.trim(),
                &body.period,
                user,
                &reporting::Site::of(&state.config),
                state.now(),
            )
            .await?;
            let b = reporting::get(&state.db, id).await?;
            Ok((StatusCode::CREATED, b.to_json()))
        },
    )
    .await
}

async fn report_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: OriginalUri,
    Path(id): Path<String>,
) -> Response {
    docking_call(
        &state,
        &headers,
        &uri,
        "GET",
        "/api/v1/docking/reports/{id}",
        async |c| {
            Ok((
                StatusCode::OK,
                client_batch(&state, &c, &id).await?.to_json(),
            ))
        },
    )
    .await
}

/// `POST /docking/reports/{id}/submit` → 202 `{instance_id, state}` (the platform reviews it
/// in `information_report`), or 422 `report_invalid` with the problems.
async fn report_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: OriginalUri,
    Path(id): Path<String>,
) -> Response {
    docking_call(
        &state,
        &headers,
        &uri,
        "POST",
        "/api/v1/docking/reports/{id}/submit",
        async |c| {
            let b = client_batch(&state, &c, &id).await?;
            let user = docking::reporting_user(&state.db, b.unit_id).await?;
            let s = reporting::submit(
                &state.engine,
                user,
                b.id,
                &reporting::Site::of(&state.config),
            )
            .await?;
            Ok((
                StatusCode::ACCEPTED,
                json!({"instance_id": s.instance_id, "state": s.state}),
            ))
        },
    )
    .await
}

// ---- console: 数据对接 ---------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct PageQ {
    page: Option<i64>,
}

async fn docking_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<PageQ>,
) -> PageResult {
    user.require(Permission::SystemConfig)?;
    Ok(
        docking_view(&state, q.page.unwrap_or(1), None, json!({}), json!({}))
            .await?
            .into_response(),
    )
}

async fn docking_view(
    state: &AppState,
    page: i64,
    new_token: Option<(String, String)>,
    errors: Value,
    input: Value,
) -> Result<Page> {
    let page = page.clamp(1, 100_000);
    let (clients, total) = docking::list(&state.db, PER_PAGE, 0).await?;
    let (calls, calls_total) = docking::calls(&state.db, PER_PAGE, (page - 1) * PER_PAGE).await?;
    let units = docking::reporting_units(&state.db).await?;
    let unit_name = |id: Option<i64>| {
        id.and_then(|id| units.iter().find(|(u, _)| *u == id))
            .map(|(_, n)| n.clone())
    };
    let clients: Vec<Value> = clients
        .iter()
        .map(|c| {
            json!({"id": c.id, "name": c.name, "scopes": c.scopes,
            "unit": unit_name(c.unit_id),
            "expires": c.expires_at.map(crate::clock::display),
            "revoked": c.revoked_at.map(crate::clock::display),
            "last_used": c.last_used_at.map(crate::clock::display),
            "created": crate::clock::display(c.created_at)})
        })
        .collect();
    let calls: Vec<Value> = calls
        .iter()
        .map(|c| {
            json!({"client": c.client_name, "method": c.method, "path": c.path,
            "status": c.status, "at": crate::clock::display(c.at)})
        })
        .collect();
    let (batches, _) = reporting::list(&state.db, None, PER_PAGE, 0).await?;
    let batches: Vec<Value> = batches
        .iter()
        .filter(|b| ["approved", "pushing", "pushed", "failed"].contains(&b.status.as_str()))
        .map(|b| {
            json!({"id": b.id, "unit_name": b.unit_name, "kind": reporting::kind_label(&b.kind),
            "period": b.period, "status_label": reporting::status_label(&b.status),
            "attempts": b.attempts, "last_error": b.last_error})
        })
        .collect();
    let scopes: Vec<Value> = docking::SCOPES
        .iter()
        .map(|(k, l)| json!({"key": k, "label": l}))
        .collect();
    Ok(Page::new(
        "console/docking.html",
        crate::ctx! {
            clients => clients, client_total => total, calls => calls, scopes => scopes,
            batches => batches, new_token => new_token, errors => errors, input => input,
            units => units, rate_limit => state.config.docking_rate_limit,
            upstream => state.config.upstream.as_ref().map(|u| u.url.clone()),
            pager => super::page::pager(page, calls_total, PER_PAGE), query => json!({}),
        },
    ))
}

async fn client_create_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    user.require(Permission::SystemConfig)?;
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let scopes: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "scopes")
        .map(|(_, v)| v.clone())
        .collect();
    let name = get("name");
    let unit_id = get("unit_id").trim().parse::<i64>().ok();
    match docking::create(
        &state.db,
        &name,
        &scopes,
        &get("expires_at"),
        unit_id,
        user.id,
        state.now(),
    )
    .await
    {
        // The token is shown on this response only; it is never stored in clear.
        Ok((_, token)) => Ok(
            docking_view(&state, 1, Some((name, token)), json!({}), json!({}))
                .await?
                .into_response(),
        ),
        Err(e) => match e.field_errors() {
            Some(fields) => {
                let input = json!({"name": name, "expires_at": get("expires_at"),
                    "scopes": scopes, "unit_id": unit_id});
                Ok(docking_view(&state, 1, None, json!(fields), input)
                    .await?
                    .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                    .into_response())
            }
            None => Err(e.into()),
        },
    }
}

async fn client_revoke_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    user.require(Permission::SystemConfig)?;
    docking::revoke(&state.db, id, state.now()).await?;
    Ok(redirect_with_flash(
        "/console/docking",
        "客户端已吊销，其令牌立即失效",
    ))
}
