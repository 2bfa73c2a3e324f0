//! One-click decisions from email (邮件审批). `GET /email-actions/{token}` only shows a
//! confirmation page — mail scanners and link previews open links — and its POST decides,
//! recorded in the audit log as the assignee, via email.

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;

use super::{
    AppState,
    extract::{ClientIp, CsrfForm, PagePath},
    page::{Page, PageResult},
    routes::{Access, Route},
};
use crate::{
    auth,
    email_actions::{self, Invalid, Link},
    error::AppError,
    workflow,
};

/// Decisions taken from a mail's link: the token in the path is the credential.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/email-actions/{token}", Access::Public, confirm_page),
        Route::post("/email-actions/{token}", Access::Public, decide),
    ]
}

fn invalid_page(why: Invalid) -> axum::response::Response {
    let (title, text) = match why {
        Invalid::Handled => (
            "该任务已处理",
            "这项待办已经处理、撤回或转办，邮件中的链接已不再有效。",
        ),
        Invalid::Expired => (
            "链接已失效",
            "该链接无效或已过期。请登录平台，在“待办任务”中处理。",
        ),
    };
    Page::new(
        "email_action.html",
        crate::ctx! { invalid => true, title => title, text => text },
    )
    .with_status(StatusCode::GONE)
    .into_response()
}

async fn describe(state: &AppState, link: &Link) -> Result<serde_json::Value, AppError> {
    let inst = workflow::get_instance(&state.db, link.instance_id).await?;
    let def = state
        .engine
        .definitions
        .version(&state.db, &inst.workflow_key, inst.version)
        .await?;
    let mut conn = state.db.acquire().await?;
    let subject = state
        .engine
        .definitions
        .catalog()
        .label(&mut conn, &inst.subject_type, inst.subject_id)
        .await?;
    Ok(serde_json::json!({
        "workflow": def.title, "step": def.state_title(&inst.state), "subject": subject,
        "action": link.action, "action_label": if link.action == "approve" { "同意" } else { "驳回" },
    }))
}

async fn confirm_page(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    PagePath(token): PagePath<String>,
) -> PageResult {
    let link = match email_actions::resolve(&state.db, &token, &ip, state.now()).await? {
        Ok(l) => l,
        Err(why) => return Ok(invalid_page(why)),
    };
    let info = describe(&state, &link).await?;
    Ok(Page::new(
        "email_action.html",
        crate::ctx! { invalid => false, info => info, token => token },
    )
    .into_response())
}

#[derive(Deserialize)]
struct DecideForm {
    #[serde(default)]
    comment: String,
}

async fn decide(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    PagePath(token): PagePath<String>,
    CsrfForm(form): CsrfForm<DecideForm>,
) -> PageResult {
    let now = state.now();
    let link = match email_actions::resolve(&state.db, &token, &ip, now).await? {
        Ok(l) => l,
        Err(why) => return Ok(invalid_page(why)),
    };
    let user = auth::load_user(&state.db, link.user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let info = describe(&state, &link).await?;
    let decision = workflow::Decision {
        action: link.action.clone(),
        comment: form.comment.trim().to_string(),
        data: serde_json::json!({"via": "email"}),
    };
    match state.engine.act(Some(&user), link.task_id, decision).await {
        Ok(outcome) => {
            email_actions::consume(&state.db, link.task_id, now).await?;
            Ok(Page::new(
                "email_action.html",
                crate::ctx! { invalid => false, done => true, info => info, outcome => outcome },
            )
            .into_response())
        }
        Err(AppError::Conflict { code: "task_closed", .. }) => Ok(invalid_page(Invalid::Handled)),
        Err(e @ (AppError::Validation { .. } | AppError::Unprocessable { .. })) => Ok(Page::new(
            "email_action.html",
            crate::ctx! { invalid => false, info => info, token => token, error => e.to_string(), comment => form.comment },
        )
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .into_response()),
        Err(e) => Err(e.into()),
    }
}
