//! Performance evaluation (绩效评价) on the web: the managing unit's declaration
//! (绩效评价申报), the platform admin's list with expert assignment and grading
//! (绩效评价管理), the expert's scoring (绩效评审), the public results (绩效评价结果), and the
//! API (`POST /api/v1/evaluations` as the contract says, and the rest beside it).

use std::collections::BTreeMap;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use chrono::Datelike;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState,
    api::ApiResult,
    extract::{ApiJson, ApiPath, ApiQuery, CsrfForm, PagePath, PageQuery},
    page::{Page, PageResult, redirect_with_flash},
    routes::{self, Route},
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

/// Evaluation pages and API. The permission checks of the API's writes are the domain's
/// (`evaluations::declare` and the like), after the body has been read.
pub fn routes() -> Vec<Route> {
    use Permission::*;
    let s = routes::Access::SignedIn;
    vec![
        Route::get("/evaluations", routes::Access::Public, public_results),
        Route::get("/console/evaluations", EvaluationDeclare, declare_page)
            .nav("绩效评价申报", 130),
        Route::post("/console/evaluations", EvaluationDeclare, declare),
        Route::get("/console/evaluation-admin", EvaluationManage, admin_page)
            .nav("绩效评价管理", 240),
        Route::get("/console/expert-reviews", EvaluationReview, reviews_page).nav("绩效评审", 220),
        Route::get("/console/evaluations/{id}", s, detail_page),
        Route::post(
            "/console/evaluations/{id}/experts",
            EvaluationManage,
            assign_form,
        ),
        Route::post("/console/evaluations/{id}/scores", s, score_form),
        Route::post(
            "/console/evaluations/{id}/grade",
            EvaluationManage,
            grade_form,
        ),
        Route::post("/console/evaluations/{id}/report", s, report_form),
        Route::post("/api/v1/evaluations", EvaluationDeclare, api_declare),
        Route::get("/api/v1/evaluations", s, api_list),
        Route::get("/api/v1/evaluations/{id}", s, api_get),
        Route::put(
            "/api/v1/evaluations/{id}/experts",
            EvaluationManage,
            api_assign,
        ),
        Route::post("/api/v1/evaluations/{id}/scores", s, api_score),
        Route::put("/api/v1/evaluations/{id}/report", s, api_report),
    ]
}

fn this_year(state: &AppState) -> i64 {
    state.clock.today().year() as i64
}

/// Store a declaration and start `expert_evaluation` (one transaction).
async fn declare_and_start(
    state: &AppState,
    user: &CurrentUser,
    unit_id: i64,
    year: i64,
    self_report: &str,
) -> Result<(i64, workflow::Started)> {
    evaluations::declare(
        &state.engine,
        user,
        unit_id,
        year,
        self_report,
        state.now(),
        this_year(state),
    )
    .await
}

/// What the viewer may see of an evaluation: managers everything, experts their own sheet,
/// the unit the aggregate once published.
async fn view_json(state: &AppState, user: &CurrentUser, e: &Evaluation) -> Result<Value> {
    let access = evaluations::access(&state.db, user, e).await?;
    let mut conn = state.db.acquire().await?;
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
