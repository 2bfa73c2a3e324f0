//! Content publishing for platform admins (资讯发布, `content.manage`): news, notices and
//! policies; rich text is sanitised on save (see `content::ArticleInput::validate`).

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;

use super::{
    AppState,
    extract::{CsrfForm, PagePath, PageQuery},
    page::{Page, PageResult, redirect_with_flash},
    routes::Route,
    session::SignedIn,
};
use crate::{
    auth::Permission,
    content::{self, ArticleInput, KINDS},
    error::AppError,
};

const PER_PAGE: i64 = 20;

/// The content editor's pages.
pub fn routes() -> Vec<Route> {
    let c = Permission::ContentManage;
    vec![
        Route::get("/console/content", c, list_page).nav("资讯发布", 190),
        Route::post("/console/content", c, create_page),
        Route::get("/console/content/new", c, new_page),
        Route::get("/console/content/{id}", c, edit_page),
        Route::post("/console/content/{id}", c, update_page),
        Route::post("/console/content/{id}/publish", c, publish),
        Route::post("/console/content/{id}/unpublish", c, unpublish),
    ]
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    page: Option<String>,
}

async fn list_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<ListQuery>,
) -> PageResult {
    user.require(Permission::ContentManage)?;
    let page = q
        .page
        .as_deref()
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=10_000).contains(p))
        .unwrap_or(1);
    let (items, total) =
        content::list_all(&state.db, &q.kind, (page - 1) * PER_PAGE, PER_PAGE).await?;
    Ok(Page::new(
        "console/content.html",
        crate::ctx! { items => items, kind => q.kind, kinds => KINDS,
        pager => super::page::pager(page, total, PER_PAGE),
        query => crate::ctx!{ kind => q.kind } },
    )
    .into_response())
}

fn form(
    id: Option<i64>,
    status: &str,
    form: &ArticleInput,
    errors: minijinja::Value,
    attachments: &[crate::uploads::Upload],
) -> Page {
    Page::new(
        "console/article_form.html",
        crate::ctx! { id => id, status => status, form => form, errors => errors, kinds => KINDS,
        attachments => attachments },
    )
}

async fn new_page(SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::ContentManage)?;
    let input = ArticleInput {
        kind: "news".into(),
        ..Default::default()
    };
    Ok(form(None, "draft", &input, crate::ctx! {}, &[]).into_response())
}

fn invalid(id: Option<i64>, status: &str, input: &ArticleInput, e: AppError) -> PageResult {
    match e {
        AppError::Validation { fields, .. } => Ok(form(
            id,
            status,
            input,
            minijinja::Value::from(minijinja::value::Serde(&fields)),
            &[],
        )
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .into_response()),
        e => Err(e.into()),
    }
}

async fn create_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(input): CsrfForm<ArticleInput>,
) -> PageResult {
    user.require(Permission::ContentManage)?;
    match content::create(&state.db, input.clone(), user.id, state.now()).await {
        Ok(id) => Ok(redirect_with_flash(
            &format!("/console/content/{id}"),
            "已保存为草稿，发布后在门户显示",
        )),
        Err(e) => invalid(None, "draft", &input, e),
    }
}

async fn edit_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    user.require(Permission::ContentManage)?;
    let (input, status) = content::get_any(&state.db, id).await?;
    let attachments = crate::uploads::article_attachments(&state.db, id).await?;
    Ok(form(Some(id), &status, &input, crate::ctx! {}, &attachments).into_response())
}

async fn update_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(input): CsrfForm<ArticleInput>,
) -> PageResult {
    user.require(Permission::ContentManage)?;
    let (_, status) = content::get_any(&state.db, id).await?;
    match content::update(&state.db, id, input.clone(), state.now()).await {
        Ok(()) => Ok(redirect_with_flash(
            &format!("/console/content/{id}"),
            "已保存",
        )),
        Err(e) => invalid(Some(id), &status, &input, e),
    }
}

#[derive(Deserialize)]
struct Empty {}

async fn publish(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    user.require(Permission::ContentManage)?;
    content::set_published(&state.db, id, true, state.now()).await?;
    Ok(redirect_with_flash(
        &format!("/console/content/{id}"),
        "已发布",
    ))
}

async fn unpublish(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    user.require(Permission::ContentManage)?;
    content::set_published(&state.db, id, false, state.now()).await?;
    Ok(redirect_with_flash(
        &format!("/console/content/{id}"),
        "已撤回，门户不再显示",
    ))
}
