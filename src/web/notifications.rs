//! The notification centre (消息通知), notification settings, and the operator's view of
//! scheduled jobs and the mail outbox (定时任务与邮件).

use axum::{extract::State, response::IntoResponse};
use serde::Deserialize;

use super::{
    AppState,
    extract::{CsrfForm, PagePath, PageQuery},
    page::{Page, PageResult, redirect_with_flash, safe_next},
    routes::{Access, Route},
    session::SignedIn,
};
use crate::{
    auth::Permission,
    error::AppError,
    jobs::{self, JOBS, Outcome},
    mail, notify,
};

/// Notification pages (any signed-in user) and the jobs and mail page.
pub fn routes() -> Vec<Route> {
    let s = Access::SignedIn;
    let jobs = Permission::JobManage;
    vec![
        Route::get("/console/notifications", s, list).nav("消息通知", 150),
        Route::post("/console/notifications/read-all", s, read_all),
        Route::post("/console/notifications/{id}/open", s, open),
        Route::get("/console/notifications/settings", s, settings),
        Route::post("/console/notifications/settings", s, save_settings),
        Route::get("/console/jobs", jobs, jobs_page).nav("定时任务与邮件", 280),
        Route::post("/console/jobs/{name}/run", jobs, run_job),
        Route::post("/console/mail/{id}/resend", jobs, resend_mail),
    ]
}

const PER_PAGE: i64 = 20;

#[derive(Deserialize)]
struct PageNo {
    page: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<PageNo>,
) -> PageResult {
    let page = q.page.unwrap_or(1).clamp(1, 10_000);
    let (total, rows) = notify::list(&state.db, user.id, PER_PAGE, (page - 1) * PER_PAGE).await?;
    let items: Vec<_> = rows
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id, "kind_label": notify::kind_label(&r.kind),
                "title": r.title, "body": r.body,
                "link": r.link, "unread": r.read_at.is_none(),
                "created_at": r.created_at,
            })
        })
        .collect();
    Ok(Page::new(
        "console/notifications.html",
        crate::ctx! { items => items, pager => super::page::pager(page, total, PER_PAGE) },
    )
    .into_response())
}

#[derive(Deserialize)]
struct Empty {}

async fn read_all(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    notify::mark_all_read(&state.db, user.id, state.now()).await?;
    Ok(redirect_with_flash(
        "/console/notifications",
        "已全部标记为已读",
    ))
}

async fn open(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let link = notify::open(&state.db, user.id, id, state.now()).await?;
    Ok(axum::response::Redirect::to(&safe_next(Some(&link))).into_response())
}

async fn settings(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    let mut kinds = Vec::new();
    let mut conn = state.db.acquire().await?;
    for (key, label, mandatory) in notify::KINDS {
        let mode = notify::mode(&mut conn, user.id, key).await?;
        kinds.push(
            serde_json::json!({"key": key, "label": label, "mandatory": mandatory, "mode": mode}),
        );
    }
    Ok(Page::new(
        "console/notification_settings.html",
        crate::ctx! { kinds => kinds },
    )
    .into_response())
}

async fn save_settings(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    notify::save_modes(&state.db, user.id, &pairs).await?;
    Ok(redirect_with_flash(
        "/console/notifications/settings",
        "通知设置已保存",
    ))
}

async fn jobs_page(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::JobManage)?;
    let runs = jobs::recent_runs(&state, 50).await?;
    let mails: Vec<_> = mail::unsent(&state.db, 100)
        .await?
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id, "to_addr": r.to_addr,
                "subject": r.subject, "status": r.status,
                "attempts": r.attempts, "last_error": r.last_error,
                "created_at": r.created_at, "next_attempt_at": r.next_attempt_at,
            })
        })
        .collect();
    let sent = mail::sent_count(&state.db).await?;
    let jobs: Vec<_> = JOBS
        .iter()
        .map(|(n, c, l)| serde_json::json!({"name": n, "cron": c, "label": l}))
        .collect();
    Ok(Page::new(
        "console/jobs.html",
        crate::ctx! { jobs => jobs, runs => runs, mails => mails, sent => sent },
    )
    .into_response())
}

async fn run_job(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(name): PagePath<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    user.require(Permission::JobManage)?;
    if !JOBS.iter().any(|(n, _, _)| *n == name) {
        return Err(AppError::NotFound.into());
    }
    let msg = match jobs::run(&state, &name, state.clock.now()).await? {
        Outcome::Done(text) => format!("任务 {name} 已执行：{text}"),
        Outcome::AlreadyDone => format!("任务 {name} 本周期已执行过，未重复执行"),
    };
    Ok(redirect_with_flash("/console/jobs", &msg))
}

async fn resend_mail(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    user.require(Permission::JobManage)?;
    mail::resend(&state.db, id, state.now()).await?;
    Ok(redirect_with_flash(
        "/console/jobs",
        "邮件已重新加入发送队列",
    ))
}
