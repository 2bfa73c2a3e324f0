//! Workflow pages and API (流程与待办): the contract's `/workflows`, `/tasks`,
//! `/workflow-instances`, unit certification, and the console's 流程定义, 我的待办, 我的已办,
//! 我发起的 and instance pages. The engine itself lives in `crate::workflow`.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod definitions;
mod delegations;
mod designer;
mod tasks;
mod versions;

pub use definitions::line_diff;

use super::{
    AppState,
    api::ApiResult,
    extract::{ApiJson, ApiPath, CsrfForm, PagePath, PageQuery},
    page::{Page, PageResult, redirect_with_flash},
    routes::{Access, Route},
    session::{ApiUser, SignedIn},
};
use crate::{
    auth::{CurrentUser, Permission},
    error::{AppError, Result},
    units,
    workflow::{self, Decision, ReloadError, def, diagram},
};

/// Workflow API and pages. Tasks and instances are visible per record (assignee, starter).
pub fn routes() -> Vec<Route> {
    use Permission::*;
    let s = Access::SignedIn;
    vec![
        Route::get("/api/v1/workflows", s, api_workflows),
        Route::post("/api/v1/workflows/reload", WorkflowEdit, api_reload),
        Route::get("/api/v1/tasks", s, api_tasks),
        Route::post("/api/v1/tasks/{id}/actions", s, api_act),
        Route::get("/api/v1/workflow-instances/{id}", s, api_instance),
        Route::post("/api/v1/workflow-instances/{id}/withdraw", s, api_withdraw),
        Route::post(
            "/api/v1/units/{id}/certification",
            UnitManage,
            api_certify_unit,
        ),
        // Reviewers reach their review tasks from their own entries.
        Route::get("/console/tasks", s, tasks::my_tasks)
            .nav("待办任务", 140)
            .nav_query("单位认证审核", 160, UnitReview, "flow=unit_certification")
            .nav_query(
                "仪器入网审核",
                180,
                InstrumentReview,
                "flow=instrument_onboarding",
            ),
        Route::get("/console/tasks/done", s, tasks::done_tasks),
        Route::post("/console/tasks/batch-approve", s, tasks::batch_approve),
        Route::get("/console/tasks/started", s, tasks::started),
        Route::get("/console/delegations", s, delegations::delegations_page),
        Route::post("/console/delegations", s, delegations::create),
        Route::post("/console/delegations/{id}/end", s, delegations::end),
        Route::get("/console/tasks/{id}", s, tasks::task_page),
        Route::post("/console/tasks/{id}", s, tasks::task_act),
        Route::get("/console/workflow-instances/{id}", s, tasks::instance_page),
        Route::post(
            "/console/workflow-instances/{id}/withdraw",
            s,
            tasks::instance_withdraw,
        ),
        Route::get(
            "/console/workflow-instances/{id}/diagram.svg",
            s,
            tasks::instance_svg,
        ),
        Route::get(
            "/console/workflows",
            WorkflowEdit,
            definitions::workflows_page,
        )
        .nav("流程定义", 270),
        Route::post("/console/workflows", WorkflowEdit, definitions::reload_page),
        Route::get(
            "/console/workflows/{key}",
            WorkflowEdit,
            definitions::workflow_page,
        ),
        Route::post(
            "/console/workflows/{key}",
            WorkflowEdit,
            definitions::workflow_save,
        ),
        Route::get(
            "/console/workflows/{key}/diagram.svg",
            s,
            definitions::workflow_svg,
        ),
        Route::get(
            "/console/workflows/{key}/designer",
            WorkflowEdit,
            designer::designer_page,
        ),
        Route::post(
            "/console/workflows/{key}/designer",
            WorkflowEdit,
            designer::designer_submit,
        ),
        Route::get(
            "/console/workflows/{key}/versions",
            WorkflowEdit,
            versions::versions_page,
        ),
        Route::post(
            "/console/workflows/{key}/versions/rollback",
            WorkflowEdit,
            versions::rollback,
        ),
        Route::post(
            "/console/workflows/{key}/versions/migrate",
            WorkflowEdit,
            versions::migrate,
        ),
        Route::post(
            "/console/workflows/{key}/simulate",
            WorkflowEdit,
            definitions::workflow_simulate,
        ),
        Route::post(
            "/console/units/{id}/certification",
            UnitManage,
            tasks::certify_unit_page,
        ),
    ]
}

// ---- API ---------------------------------------------------------------------------------

async fn api_workflows(
    State(state): State<AppState>,
    ApiUser(_): ApiUser,
) -> ApiResult<Json<Value>> {
    let items: Vec<Value> = state
        .engine.definitions
        .list()
        .iter()
        .map(|d| json!({"key": d.key, "version": d.version, "title": d.title, "subject": d.subject, "states": d.states.keys().collect::<Vec<_>>()}))
        .collect();
    Ok(Json(Value::Array(items)))
}

fn invalid_workflow(problems: &[def::Problem]) -> Response {
    let first = problems.first().map(|p| p.to_string()).unwrap_or_default();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"error": {"code": "invalid_workflow", "message": format!("流程定义有误：{first}"), "details": problems}})),
    )
        .into_response()
}

async fn api_reload(State(state): State<AppState>, ApiUser(user): ApiUser) -> ApiResult {
    user.require(Permission::WorkflowEdit)?;
    match state.engine.definitions.reload(&state.db, state.now()).await {
        Ok(loaded) => Ok(Json(json!({"loaded": loaded.iter().map(|(k, v)| json!({"key": k, "version": v})).collect::<Vec<_>>()})).into_response()),
        Err(ReloadError::Invalid(p)) => Ok(invalid_workflow(&p)),
        Err(ReloadError::Failed(e)) => Err(e.into()),
    }
}

async fn api_tasks(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
) -> ApiResult<Json<Value>> {
    let tasks = state.engine.tasks_for(user.id, false).await?;
    let items: Vec<Value> = tasks
        .iter()
        .map(|t| json!({"id": t.id, "instance_id": t.instance_id, "workflow": t.workflow, "step": t.step, "subject": t.subject, "actions": t.actions, "due_at": t.due_at}))
        .collect();
    let total = items.len();
    Ok(Json(json!({"items": items, "total": total})))
}

async fn api_act(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(d): ApiJson<Decision>,
) -> ApiResult<Json<Value>> {
    let out = state.engine.act(Some(&user), id, d).await?;
    Ok(Json(json!(out)))
}

async fn visible_instance(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<workflow::Instance> {
    let inst = workflow::get_instance(&state.db, id).await?;
    if !workflow::may_view(&state.db, user, &inst).await? {
        return Err(AppError::forbidden());
    }
    Ok(inst)
}

async fn api_instance(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let inst = visible_instance(&state, &user, id).await?;
    let history = state.engine.history_for(&inst, &user).await?;
    Ok(Json(json!({
        "id": inst.id, "workflow": inst.workflow_key, "version": inst.version, "state": inst.state, "status": inst.status,
        "subject": {"type": inst.subject_type, "id": inst.subject_id},
        "history": history,
    })))
}

#[derive(Deserialize, Default)]
struct CommentBody {
    #[serde(default)]
    comment: String,
}

async fn api_withdraw(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    // The body is optional: `{}` or nothing at all.
    let comment = serde_json::from_slice::<CommentBody>(&body)
        .map(|b| b.comment)
        .unwrap_or_default();
    let out = state.engine.withdraw(&user, id, &comment).await?;
    Ok(Json(json!(out)))
}

/// Submit a unit for certification (单位认证): the caller must act for the unit.
pub async fn certify_unit(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<workflow::Started> {
    user.require(Permission::UnitManage)?;
    let unit = units::get(&state.db, id).await?;
    user.require_unit(id)?;
    if unit.certification_status == "certified" {
        return Err(AppError::conflict("already_certified", "该单位已通过认证"));
    }
    state
        .engine
        .start(
            "unit_certification",
            "unit",
            id,
            user.id,
            json!({"unit_id": id}),
        )
        .await
}

async fn api_certify_unit(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    let started = certify_unit(&state, &user, id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!(started))).into_response())
}
