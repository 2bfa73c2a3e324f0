//! The evaluation API: declare (the contract's `POST /evaluations`), list, read, assign
//! experts, score, and rewrite the report when returned.

#[allow(unused_imports)]
use super::*;

#[derive(Deserialize)]
pub(super) struct DeclareBody {
    unit_id: i64,
    year: i64,
    #[serde(default)]
    self_report: String,
}

pub(super) async fn api_declare(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<DeclareBody>,
) -> ApiResult {
    let (id, started) =
        declare_and_start(&state, &user, body.unit_id, body.year, &body.self_report).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "instance_id": started.instance_id, "state": started.state})),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
pub(super) struct ListQuery {
    year: Option<i64>,
    page: Option<i64>,
    per_page: Option<i64>,
}

pub(super) async fn api_list(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let page = q.page.unwrap_or(1).clamp(1, 100_000);
    let per_page = q.per_page.unwrap_or(20).clamp(1, 100);
    let (items, total) =
        evaluations::list(&state.db, &user, q.year, (page - 1) * per_page, per_page).await?;
    let items: Vec<Value> = items
        .iter()
        .map(|e| {
            json!({"id": e.id, "unit_id": e.unit_id, "unit_name": e.unit_name, "year": e.year,
                   "status": e.status, "grade": e.grade, "instance_id": e.instance_id})
        })
        .collect();
    Ok(Json(
        json!({"items": items, "total": total, "page": page, "per_page": per_page}),
    ))
}

pub(super) async fn api_get(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let (_, policy) = money::current(&state.db).await?;
    let e = evaluations::get(&state.db, &policy, id).await?;
    Ok(Json(view_json(&state, &user, &e).await?))
}

#[derive(Deserialize)]
pub(super) struct AssignBody {
    expert_ids: Vec<i64>,
}

pub(super) async fn api_assign(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<AssignBody>,
) -> ApiResult<Json<Value>> {
    evaluations::assign_experts(&state.db, &user, id, &body.expert_ids, state.now()).await?;
    let (_, policy) = money::current(&state.db).await?;
    let e = evaluations::get(&state.db, &policy, id).await?;
    Ok(Json(view_json(&state, &user, &e).await?))
}

#[derive(Deserialize)]
pub(super) struct ScoreBody {
    scores: BTreeMap<String, Value>,
    #[serde(default)]
    comment: String,
}

pub(super) async fn api_score(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ScoreBody>,
) -> ApiResult<Json<Value>> {
    let sheet: BTreeMap<String, String> = body
        .scores
        .into_iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, s)
        })
        .collect();
    let out = submit_scores(&state, &user, id, &sheet, &body.comment).await?;
    Ok(Json(
        json!({"instance_id": out.instance_id, "state": out.state, "status": out.status}),
    ))
}

#[derive(Deserialize)]
pub(super) struct ReportBody {
    self_report: String,
}

pub(super) async fn api_report(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ReportBody>,
) -> ApiResult<Json<Value>> {
    evaluations::revise(&state.db, &user, id, &body.self_report, state.now()).await?;
    Ok(Json(json!({"id": id, "updated": true})))
}
