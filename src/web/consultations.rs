//! 专家咨询: asking, answering, following up, closing with a rating and reassigning in the
//! console and the API; the public Q&A (专家问答) at `/qa`.

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
    AppState, ErrorStatus,
    api::ApiResult,
    extract::{ApiJson, ApiPath, ApiQuery, CsrfForm, PagePath, PageQuery},
    page::{Page, PageResult, pager, redirect_with_flash, refusal},
    routes::{Access, Route},
    session::{ApiUser, SignedIn},
};
use crate::{
    auth::CurrentUser,
    consultations::{self, Consultation, Message, NewConsultation, Rights},
    error::AppError,
};

const PER_PAGE: i64 = 20;

pub fn routes() -> Vec<Route> {
    let s = Access::SignedIn;
    let p = Access::Public;
    vec![
        Route::get("/qa", p, public_list),
        Route::get("/qa/{id}", p, public_detail),
        Route::get("/console/consultations", s, list_page).nav("专家咨询", 122),
        Route::get("/console/consultations/new", s, new_page),
        Route::post("/console/consultations", s, create_form),
        Route::get("/console/consultations/{id}", s, detail_page),
        Route::post("/console/consultations/{id}/{action}", s, act_form),
        Route::post("/api/v1/consultations", s, api_create),
        Route::get("/api/v1/consultations", s, api_list),
        Route::get("/api/v1/consultations/{id}", s, api_get),
        Route::post("/api/v1/consultations/{id}/answers", s, api_answer),
        Route::post("/api/v1/consultations/{id}/followups", s, api_follow_up),
        Route::post("/api/v1/consultations/{id}/close", s, api_close),
        Route::post(
            "/api/v1/consultations/{id}/reassign",
            consultations::ADMIN,
            api_reassign,
        ),
    ]
}

fn page_no(q: &BTreeMap<String, String>) -> i64 {
    q.get("page")
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=10_000).contains(p))
        .unwrap_or(1)
}

fn json_of(c: &Consultation) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    v["status_label"] = json!(consultations::status_label(&c.status));
    v
}

fn detail_json(c: &Consultation, messages: &[Message]) -> Value {
    let mut v = json_of(c);
    v["answers"] = json!(
        messages
            .iter()
            .filter(|m| m.kind == "answer")
            .collect::<Vec<_>>()
    );
    v["messages"] = json!(messages);
    v
}

async fn public_list(
    State(state): State<AppState>,
    PageQuery(q): PageQuery<BTreeMap<String, String>>,
) -> PageResult {
    let page = page_no(&q);
    let (items, total) =
        consultations::public_list(&state.db, (page - 1) * PER_PAGE, PER_PAGE).await?;
    let items: Vec<Value> = items.iter().map(json_of).collect();
    Ok(Page::new(
        "portal/qa_list.html",
        crate::ctx! { items => items, pager => pager(page, total, PER_PAGE) },
    )
    .into_response())
}

async fn public_detail(State(state): State<AppState>, PagePath(id): PagePath<i64>) -> PageResult {
    let (c, messages, _) = consultations::get(&state.db, None, id).await?;
    Ok(Page::new(
        "portal/qa.html",
        crate::ctx! { c => json_of(&c), messages => messages },
    )
    .into_response())
}

async fn list_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<BTreeMap<String, String>>,
) -> PageResult {
    let page = page_no(&q);
    let all = q.get("all").is_some_and(|v| v == "1") && user.can(consultations::ADMIN);
    let (items, total) =
        consultations::list(&state.db, &user, !all, (page - 1) * PER_PAGE, PER_PAGE).await?;
    let items: Vec<Value> = items.iter().map(json_of).collect();
    Ok(Page::new(
        "console/consultations.html",
        crate::ctx! { items => items, pager => pager(page, total, PER_PAGE), all => all,
        is_admin => user.can(consultations::ADMIN),
        query => crate::ctx!{ all => if all { "1" } else { "" } } },
    )
    .into_response())
}

fn new_form(user: &CurrentUser, values: &BTreeMap<String, String>, errors: Value) -> Page {
    Page::new(
        "console/consultation_new.html",
        crate::ctx! { units => user.units, values => values, errors => errors },
    )
}

async fn new_page(SignedIn(user): SignedIn) -> PageResult {
    Ok(new_form(&user, &BTreeMap::new(), json!({})).into_response())
}

async fn create_form(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let new = NewConsultation {
        field: get("field"),
        title: get("title"),
        question: get("question"),
        unit_id: get("unit_id").parse().ok(),
    };
    match consultations::create(&state, &user, &new).await {
        Ok(id) => Ok(redirect_with_flash(
            &format!("/console/consultations/{id}"),
            "咨询已提交，已通知该领域的专家",
        )),
        Err(AppError::Validation { fields, .. }) => Ok(new_form(
            &user,
            &form,
            serde_json::to_value(fields).unwrap_or_default(),
        )
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .into_response()),
        Err(e) => Err(e.into()),
    }
}

async fn detail_view(state: &AppState, user: &CurrentUser, id: i64) -> PageResult<Page> {
    let (c, messages, rights): (Consultation, Vec<Message>, Rights) =
        consultations::get(&state.db, Some(user), id).await?;
    let experts = if rights.admin {
        consultations::pool_experts(&state.db).await?
    } else {
        vec![]
    };
    Ok(Page::new(
        "console/consultation.html",
        crate::ctx! { c => json_of(&c), messages => messages, rights => rights, experts => experts },
    ))
}

async fn detail_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    Ok(detail_view(&state, &user, id).await?.into_response())
}

async fn act_form(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath((id, action)): PagePath<(i64, String)>,
    CsrfForm(form): CsrfForm<BTreeMap<String, String>>,
) -> PageResult {
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let result = match action.as_str() {
        "answer" => consultations::answer(&state, &user, id, &get("body"))
            .await
            .map(|_| "解答已发送给提问人"),
        "followup" => consultations::follow_up(&state, &user, id, &get("body"))
            .await
            .map(|_| "追问已发送给专家"),
        "close" => consultations::close(
            &state.db,
            &user,
            id,
            get("rating").parse().ok(),
            get("public") == "1",
            state.now(),
        )
        .await
        .map(|_| {
            if get("public") == "1" {
                "咨询已关闭并公开为专家问答"
            } else {
                "咨询已关闭，感谢评价"
            }
        }),
        "reassign" => match get("expert_user_id").parse::<i64>() {
            Ok(expert) => consultations::reassign(&state, &user, id, expert)
                .await
                .map(|_| "已转交给所选专家"),
            Err(_) => Err(AppError::field("expert_user_id", "请选择专家")),
        },
        _ => return Err(AppError::NotFound.into()),
    };
    match result {
        Ok(msg) => Ok(redirect_with_flash(
            &format!("/console/consultations/{id}"),
            msg,
        )),
        Err(e) => match refusal(&e) {
            Some(msg) => {
                let page = detail_view(&state, &user, id).await?;
                Ok(Page::new(
                    page.template,
                    minijinja::context! { error => msg, values => form, ..page.context },
                )
                .with_status(e.status())
                .into_response())
            }
            None => Err(e.into()),
        },
    }
}

async fn api_create(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(new): ApiJson<NewConsultation>,
) -> ApiResult<Response> {
    let id = consultations::create(&state, &user, &new).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "status": "open"})),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
struct ListQuery {
    mine: Option<String>,
    page: Option<i64>,
    per_page: Option<i64>,
}

async fn api_list(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let page = q.page.unwrap_or(1).clamp(1, 10_000);
    let per_page = q.per_page.unwrap_or(20).clamp(1, 100);
    let mine = q.mine.as_deref().is_some_and(|m| m == "1" || m == "true");
    let (items, total) =
        consultations::list(&state.db, &user, mine, (page - 1) * per_page, per_page).await?;
    Ok(Json(json!({
        "items": items.iter().map(json_of).collect::<Vec<_>>(),
        "total": total, "page": page, "per_page": per_page,
    })))
}

async fn api_get(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let (c, messages, _) = consultations::get(&state.db, Some(&user), id).await?;
    Ok(Json(detail_json(&c, &messages)))
}

#[derive(Deserialize)]
struct AnswerBody {
    #[serde(default)]
    answer: String,
}

async fn api_answer(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<AnswerBody>,
) -> ApiResult<Response> {
    let mid = consultations::answer(&state, &user, id, &b.answer).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": mid, "status": "answered"})),
    )
        .into_response())
}

#[derive(Deserialize)]
struct FollowUpBody {
    #[serde(default)]
    body: String,
}

async fn api_follow_up(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<FollowUpBody>,
) -> ApiResult<Response> {
    let mid = consultations::follow_up(&state, &user, id, &b.body).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": mid, "status": "open"})),
    )
        .into_response())
}

#[derive(Deserialize)]
struct CloseBody {
    rating: Option<i64>,
    #[serde(default)]
    public: bool,
}

async fn api_close(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<CloseBody>,
) -> ApiResult<Json<Value>> {
    consultations::close(&state.db, &user, id, b.rating, b.public, state.now()).await?;
    let (c, messages, _) = consultations::get(&state.db, Some(&user), id).await?;
    Ok(Json(detail_json(&c, &messages)))
}

#[derive(Deserialize)]
struct ReassignBody {
    expert_user_id: Option<i64>,
}

async fn api_reassign(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<ReassignBody>,
) -> ApiResult<Json<Value>> {
    user.require(consultations::ADMIN)?;
    let Some(expert) = b.expert_user_id else {
        return Err(AppError::field("expert_user_id", "请选择专家").into());
    };
    consultations::reassign(&state, &user, id, expert).await?;
    let (c, messages, _) = consultations::get(&state.db, Some(&user), id).await?;
    Ok(Json(detail_json(&c, &messages)))
}
