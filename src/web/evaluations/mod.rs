//! Performance evaluation (绩效评价) on the web: the managing unit's declaration
//! (绩效评价申报), the platform admin's list with expert assignment and grading
//! (绩效评价管理), the expert's scoring (绩效评审), the public results (绩效评价结果), and the
//! API (`POST /api/v1/evaluations` as the contract says, and the rest beside it).

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post, put},
};
use chrono::Datelike;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState,
    api::ApiResult,
    extract::{ApiJson, ApiPath, ApiQuery, CsrfForm, PagePath, PageQuery},
    page::{Page, PageResult, redirect_with_flash},
    session::{ApiUser, SignedIn},
};
use crate::{
    auth::{CurrentUser, Permission},
    error::{AppError, Result},
    evaluations::{self, Access, Evaluation},
    money::{self, GRADES},
    workflow::{self, Decision},
};

const PER_PAGE: i64 = 20;

mod api;
mod pages;

use api::*;
use pages::*;

/// Console pages and the permission each needs.
pub const ROUTES: &[(&str, &str, Option<Permission>)] = &[
    (
        "GET",
        "/console/evaluations",
        Some(Permission::EvaluationDeclare),
    ),
    (
        "GET",
        "/console/evaluation-admin",
        Some(Permission::EvaluationManage),
    ),
    (
        "GET",
        "/console/expert-reviews",
        Some(Permission::EvaluationReview),
    ),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/evaluations", get(public_results))
        .route("/console/evaluations", get(declare_page).post(declare))
        .route("/console/evaluation-admin", get(admin_page))
        .route("/console/expert-reviews", get(reviews_page))
        .route("/console/evaluations/{id}", get(detail_page))
        .route("/console/evaluations/{id}/experts", post(assign_form))
        .route("/console/evaluations/{id}/scores", post(score_form))
        .route("/console/evaluations/{id}/grade", post(grade_form))
        .route("/console/evaluations/{id}/report", post(report_form))
}

pub fn api_router() -> Router<AppState> {
    Router::new()
        .route("/evaluations", post(api_declare).get(api_list))
        .route("/evaluations/{id}", get(api_get))
        .route("/evaluations/{id}/experts", put(api_assign))
        .route("/evaluations/{id}/scores", post(api_score))
        .route("/evaluations/{id}/report", put(api_report))
}

fn this_year(state: &AppState) -> i64 {
    state.clock.today().year() as i64
}

/// Store a declaration and start `expert_evaluation`; the record goes again if the flow
/// refuses to start, so nothing is left half-submitted.
async fn declare_and_start(
    state: &AppState,
    user: &CurrentUser,
    unit_id: i64,
    year: i64,
    self_report: &str,
) -> Result<(i64, workflow::Started)> {
    let id = evaluations::declare(
        &state.db,
        user,
        unit_id,
        year,
        self_report,
        state.now(),
        this_year(state),
    )
    .await?;
    let started = super::money_api::start_flow(
        state,
        ("expert_evaluation", "evaluation", "evaluations"),
        id,
        user.id,
        json!({"year": year}),
        &["DELETE FROM evaluations WHERE id = $1"],
    )
    .await
    .map_err(|e| e.0)?;
    Ok((id, started))
}

/// What the viewer may see of an evaluation: managers everything, experts their own sheet,
/// the unit the aggregate once published.
async fn view_json(state: &AppState, user: &CurrentUser, e: &Evaluation) -> Result<Value> {
    let access = evaluations::access(&state.db, user, e).await?;
    let mut conn = state.db.pool.acquire().await?;
    let scores = evaluations::expert_scores(&mut conn, e.instance_id).await?;
    drop(conn);
    let mut v = serde_json::to_value(e).map_err(anyhow::Error::from)?;
    let scores: Vec<_> = match access {
        Access::Manager => scores,
        Access::Expert => scores
            .into_iter()
            .filter(|s| s.user_id == user.id)
            .collect(),
        Access::Unit => Vec::new(),
    };
    // Until publication only the platform sees the aggregate: experts score unswayed.
    if access != Access::Manager && e.status != "published" {
        v["score"] = Value::Null;
        v["suggested_grade"] = Value::Null;
    }
    if access != Access::Manager {
        // Experts stay anonymous to the unit and to each other.
        v["experts"] = json!(
            e.experts
                .iter()
                .filter(|x| access == Access::Expert && x.user_id == user.id)
                .collect::<Vec<_>>()
        );
    }
    v["access"] = json!(access);
    v["scores"] = json!(scores);
    if access == Access::Manager && e.status == "assigning" {
        v["candidates"] = json!(evaluations::candidates(&state.db, e.id).await?);
    }
    Ok(v)
}

// ---- API ---------------------------------------------------------------------------------

/// An expert submits their scoring sheet: it is checked against the policy and becomes the
/// approval of their review task.
async fn submit_scores(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    sheet: &BTreeMap<String, String>,
    comment: &str,
) -> Result<workflow::Outcome> {
    let (_, policy) = money::current(&state.db).await?;
    let (items, total) = evaluations::check_sheet(&policy, sheet)?;
    decide(
        state,
        user,
        id,
        "expert_review",
        Decision {
            action: "approve".into(),
            comment: comment.trim().to_string(),
            data: evaluations::score_form(&items, total),
        },
    )
    .await
}

/// Decide the user's own open task on the evaluation at `step` (403 when they have none).
async fn decide(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    step: &str,
    decision: Decision,
) -> Result<workflow::Outcome> {
    let (_, policy) = money::current(&state.db).await?;
    let e = evaluations::get(&state.db, &policy, id).await?;
    let task = evaluations::open_task(&state.db, &e, user.id, step)
        .await?
        .ok_or(AppError::Forbidden {
            code: "not_assignee",
        })?;
    state.engine.act(Some(user), task, decision).await
}

// ---- pages -------------------------------------------------------------------------------
