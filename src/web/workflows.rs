//! Workflow pages and API (流程与待办): the contract's `/workflows`, `/tasks`,
//! `/workflow-instances`, unit certification, and the console's 流程定义, 我的待办, 我的已办,
//! 我发起的 and instance pages. The engine itself lives in `crate::workflow`.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState,
    api::ApiResult,
    extract::{ApiJson, ApiPath, CsrfForm, PagePath},
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
        Route::get("/console/tasks", s, my_tasks)
            .nav("待办任务", 140)
            .nav_for("单位认证审核", 160, UnitReview)
            .nav_for("仪器入网审核", 180, InstrumentReview),
        Route::get("/console/tasks/done", s, done_tasks),
        Route::get("/console/tasks/started", s, started),
        Route::get("/console/tasks/{id}", s, task_page),
        Route::post("/console/tasks/{id}", s, task_act),
        Route::get("/console/workflow-instances/{id}", s, instance_page),
        Route::post(
            "/console/workflow-instances/{id}/withdraw",
            s,
            instance_withdraw,
        ),
        Route::get(
            "/console/workflow-instances/{id}/diagram.svg",
            s,
            instance_svg,
        ),
        Route::get("/console/workflows", WorkflowEdit, workflows_page).nav("流程定义", 270),
        Route::post("/console/workflows", WorkflowEdit, reload_page),
        Route::get("/console/workflows/{key}", WorkflowEdit, workflow_page),
        Route::post("/console/workflows/{key}", WorkflowEdit, workflow_save),
        Route::get("/console/workflows/{key}/diagram.svg", s, workflow_svg),
        Route::post(
            "/console/workflows/{key}/simulate",
            WorkflowEdit,
            workflow_simulate,
        ),
        Route::post(
            "/console/units/{id}/certification",
            UnitManage,
            certify_unit_page,
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

// ---- console: tasks ----------------------------------------------------------------------

async fn my_tasks(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    let tasks = state.engine.tasks_for(user.id, false).await?;
    Ok(Page::new(
        "console/tasks.html",
        crate::ctx! { tasks => tasks, tab => "open", title => "我的待办" },
    )
    .into_response())
}

async fn done_tasks(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    let tasks = state.engine.tasks_for(user.id, true).await?;
    Ok(Page::new(
        "console/tasks.html",
        crate::ctx! { tasks => tasks, tab => "done", title => "我的已办" },
    )
    .into_response())
}

async fn started(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    let mut rows = Vec::new();
    for inst in workflow::started_by(&state.db, user.id).await? {
        let d = state
            .engine
            .definitions
            .version(&state.db, &inst.workflow_key, inst.version)
            .await?;
        rows.push(json!({"id": inst.id, "title": d.title, "version": inst.version, "state_title": d.state_title(&inst.state), "status": inst.status,
            "subject_type": inst.subject_type, "subject_id": inst.subject_id, "created_at": crate::clock::display(inst.created_at)}));
    }
    Ok(Page::new("console/started.html", crate::ctx! { instances => rows }).into_response())
}

async fn instance_context(
    state: &AppState,
    inst: &workflow::Instance,
    viewer: &CurrentUser,
) -> Result<minijinja::Value> {
    let d = state
        .engine
        .definitions
        .version(&state.db, &inst.workflow_key, inst.version)
        .await?;
    let history: Vec<Value> = state.engine.history_for(inst, viewer)
        .await?
        .into_iter()
        .map(|h| json!({"step": d.state_title(&h.step), "action": if h.action == "start" { "提交".to_string() } else { def::action_label(&h.action).to_string() },
            "actor": h.actor.unwrap_or_else(|| "系统".into()), "at": h.at.replace('T', " "), "comment": h.comment, "to": d.state_title(&h.to_state)}))
        .collect();
    Ok(
        crate::ctx! { instance => inst, title => d.title, state_title => d.state_title(&inst.state), history => history },
    )
}

async fn instance_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let inst = visible_instance(&state, &user, id).await?;
    let ctx = instance_context(&state, &inst, &user).await?;
    let can_withdraw = inst.applicant_id == user.id && inst.status == "running";
    Ok(Page::new(
        "console/instance.html",
        crate::ctx! { ctx => ctx, can_withdraw => can_withdraw },
    )
    .into_response())
}

fn svg_response(svg: String) -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")],
        svg,
    )
        .into_response()
}

async fn instance_svg(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let inst = visible_instance(&state, &user, id).await?;
    let d = state
        .engine
        .definitions
        .version(&state.db, &inst.workflow_key, inst.version)
        .await?;
    Ok(svg_response(diagram::svg(&d, Some(&inst.state))))
}

async fn instance_withdraw(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<CommentBody>,
) -> PageResult {
    let to = format!("/console/workflow-instances/{id}");
    match state.engine.withdraw(&user, id, &form.comment).await {
        Ok(_) => Ok(redirect_with_flash(&to, "已撤回申请")),
        Err(e @ (AppError::Conflict { .. } | AppError::Unprocessable { .. })) => {
            Ok(redirect_with_flash(&to, &e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

async fn task_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let tasks = state.engine.tasks_for(user.id, false).await?;
    let Some(task) = tasks.into_iter().find(|t| t.id == id) else {
        return Ok(redirect_with_flash(
            "/console/tasks",
            "该待办已处理或不属于您",
        ));
    };
    let inst = workflow::get_instance(&state.db, task.instance_id).await?;
    let ctx = instance_context(&state, &inst, &user).await?;
    let actions: Vec<(String, &str)> = task
        .actions
        .iter()
        .map(|a| (a.clone(), def::action_label(a)))
        .collect();
    let detail = subject_detail(&state, &user, &task).await?;
    Ok(Page::new("console/task.html", crate::ctx! { task => task, ctx => ctx, actions => actions, detail => detail, errors => crate::ctx!{}, form => crate::ctx!{} }).into_response())
}

/// What a reviewer needs to see of the subject beside the generic task: a settlement's
/// per-unit confirmations and objections, a redemption's contract and invoice files.
async fn subject_detail(
    state: &AppState,
    user: &CurrentUser,
    task: &workflow::TaskView,
) -> Result<Value> {
    let id = task.subject["id"].as_i64().unwrap_or(0);
    Ok(match task.subject["type"].as_str().unwrap_or("") {
        "subsidy_settlement" => {
            let mut summary = super::settlements::summary(state, id).await?;
            let mine = |v: &Value| {
                v["unit_id"]
                    .as_i64()
                    .is_some_and(|u| user.acts_for(u, true))
            };
            let manages_unit = summary["confirmations"]
                .as_array()
                .into_iter()
                .flatten()
                .any(mine);
            if !user.can(Permission::SubsidyManage) {
                // A unit's manager sees their own units only, not the others' figures.
                for key in ["confirmations", "unit_totals"] {
                    if let Some(list) = summary[key].as_array_mut() {
                        list.retain(mine);
                    }
                }
                summary["total"] = Value::Null;
            }
            json!({"settlement": summary, "manages_unit": manages_unit})
        }
        "redemption" => {
            let r = crate::money::redemptions::get(&state.db, id).await?;
            json!({"redemption": r})
        }
        // A change request or retirement: the field-by-field before/after.
        "record_change" => json!({"change": crate::changes::get(&state.db, id).await?}),
        _ => Value::Null,
    })
}

#[derive(Deserialize, Clone, serde::Serialize)]
struct ActForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    score: String,
    #[serde(default)]
    grade: String,
}

async fn task_act(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<ActForm>,
) -> PageResult {
    let mut data = serde_json::Map::new();
    if !form.user.trim().is_empty() {
        data.insert("user".into(), json!(form.user.trim()));
    }
    if let Ok(score) = form.score.trim().parse::<f64>() {
        data.insert("score".into(), json!(score));
    }
    if !form.grade.is_empty() {
        data.insert("grade".into(), json!(form.grade));
    }
    let decision = Decision {
        action: form.action.clone(),
        comment: form.comment.clone(),
        data: Value::Object(data),
    };
    match state.engine.act(Some(&user), id, decision).await {
        Ok(out) => Ok(redirect_with_flash(
            &format!("/console/workflow-instances/{}", out.instance_id),
            &format!("已{}", def::action_label(&form.action)),
        )),
        Err(AppError::Conflict { message, .. }) => {
            Ok(redirect_with_flash("/console/tasks", &message))
        }
        Err(e @ (AppError::Validation { .. } | AppError::Unprocessable { .. })) => {
            let tasks = state.engine.tasks_for(user.id, false).await?;
            let Some(task) = tasks.into_iter().find(|t| t.id == id) else {
                return Ok(redirect_with_flash("/console/tasks", &e.to_string()));
            };
            let inst = workflow::get_instance(&state.db, task.instance_id).await?;
            let ctx = instance_context(&state, &inst, &user).await?;
            let actions: Vec<(String, &str)> = task
                .actions
                .iter()
                .map(|a| (a.clone(), def::action_label(a)))
                .collect();
            let mut errors = e.field_errors().cloned().unwrap_or_default();
            if errors.is_empty() {
                errors.insert("action".into(), e.to_string());
            }
            let detail = subject_detail(&state, &user, &task).await?;
            Ok(Page::new("console/task.html", crate::ctx! { task => task, ctx => ctx, actions => actions, detail => detail, errors => errors, form => form })
                .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn certify_unit_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<Value>,
) -> PageResult {
    let to = format!("/console/units/{id}");
    match certify_unit(&state, &user, id).await {
        Ok(_) => Ok(redirect_with_flash(&to, "已提交认证，等待平台审核")),
        Err(e @ (AppError::Conflict { .. } | AppError::Unprocessable { .. })) => {
            Ok(redirect_with_flash(&to, &e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

// ---- console: definitions ----------------------------------------------------------------

async fn workflows_page(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    let defs: Vec<Value> = state
        .engine.definitions
        .list()
        .iter()
        .map(|d| json!({"key": d.key, "title": d.title, "version": d.version, "subject": d.subject, "states": d.states.len()}))
        .collect();
    Ok(Page::new(
        "console/workflows.html",
        crate::ctx! { defs => defs, problems => Vec::<def::Problem>::new() },
    )
    .into_response())
}

async fn reload_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(_): CsrfForm<Value>,
) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    match state
        .engine
        .definitions
        .reload(&state.db, state.now())
        .await
    {
        Ok(loaded) => Ok(redirect_with_flash(
            "/console/workflows",
            &format!("已重新加载 {} 个流程定义", loaded.len()),
        )),
        Err(ReloadError::Invalid(problems)) => {
            let defs: Vec<Value> = state.engine.definitions.list().iter().map(|d| json!({"key": d.key, "title": d.title, "version": d.version, "subject": d.subject, "states": d.states.len()})).collect();
            Ok(Page::new(
                "console/workflows.html",
                crate::ctx! { defs => defs, problems => problems },
            )
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .into_response())
        }
        Err(ReloadError::Failed(e)) => Err(e.into()),
    }
}

/// A line diff (LCS) of two texts: (`+`/`-`/` `, line).
pub fn line_diff(old: &str, new: &str) -> Vec<(char, String)> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push((' ', a[i].to_string()));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(('+', b[j].to_string()));
            j += 1;
        } else {
            out.push(('-', a[i].to_string()));
            i += 1;
        }
    }
    out
}

async fn workflow_context(
    state: &AppState,
    key: &str,
) -> Result<(std::sync::Arc<def::Definition>, Vec<Value>)> {
    let d = state
        .engine
        .definitions
        .get(key)
        .ok_or(AppError::NotFound)?;
    let versions = workflow::versions(&state.db, key)
        .await?
        .into_iter()
        .map(|(v, at, _)| json!({"version": v, "at": crate::clock::display(at)}))
        .collect();
    Ok((d, versions))
}

async fn workflow_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(key): PagePath<String>,
) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    let (d, versions) = workflow_context(&state, &key).await?;
    Ok(Page::new(
        "console/workflow.html",
        crate::ctx! { def => crate::ctx!{ key => d.key, title => d.title, version => d.version }, source => d.source, versions => versions,
                   problems => Vec::<def::Problem>::new(), diff => Vec::<(char, String)>::new(), checked => false },
    )
    .into_response())
}

#[derive(Deserialize)]
struct SimForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    script: String,
}

/// Dry run from the console: nothing is written.
async fn workflow_simulate(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(key): PagePath<String>,
    CsrfForm(form): CsrfForm<SimForm>,
) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    let (d, versions) = workflow_context(&state, &key).await?;
    let subject_text = if form.subject.trim().is_empty() {
        "{}".to_string()
    } else {
        form.subject.clone()
    };
    let (report, sim_error) = match serde_json::from_str::<Value>(&subject_text) {
        Ok(subject) => {
            let lines: Vec<String> = form.script.lines().map(|l| l.trim().to_string()).collect();
            (
                workflow::simulate::render(&workflow::simulate::run(&d, &subject, &lines)),
                None,
            )
        }
        Err(e) => (String::new(), Some(format!("样例数据不是合法的 JSON：{e}"))),
    };
    let status = if sim_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(Page::new(
        "console/workflow.html",
        crate::ctx! { def => crate::ctx!{ key => d.key, title => d.title, version => d.version }, source => d.source, versions => versions,
                   problems => Vec::<def::Problem>::new(), diff => Vec::<(char, String)>::new(), checked => false,
                   sim => crate::ctx!{ subject => form.subject, script => form.script, report => report, error => sim_error } },
    )
    .with_status(status)
    .into_response())
}

#[derive(Deserialize)]
struct SaveForm {
    #[serde(default)]
    source: String,
    /// `validate` shows problems and the diff; `publish` also records and loads it.
    #[serde(default)]
    intent: String,
}

async fn workflow_save(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(key): PagePath<String>,
    CsrfForm(form): CsrfForm<SaveForm>,
) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    let (d, versions) = workflow_context(&state, &key).await?;
    let source = form.source.replace("\r\n", "\n");
    let roles = workflow::known_roles(&state.db).await?;
    let problems = match def::parse(
        &format!("{key}.yaml"),
        &source,
        &roles,
        state.engine.definitions.catalog(),
    ) {
        Ok(_) => vec![],
        Err(p) => p,
    };
    if problems.is_empty() && form.intent == "publish" {
        return match state
            .engine
            .definitions
            .publish(&state.db, &key, &source, state.now())
            .await
        {
            Ok(v) => Ok(redirect_with_flash(
                &format!("/console/workflows/{key}"),
                &format!("已发布版本 {v}，新发起的流程将使用新版本"),
            )),
            Err(ReloadError::Invalid(problems)) => Ok(editor(&d, versions, source, problems, true)),
            Err(ReloadError::Failed(e)) => Err(e.into()),
        };
    }
    Ok(editor(&d, versions, source, problems, true))
}

fn editor(
    d: &def::Definition,
    versions: Vec<Value>,
    source: String,
    problems: Vec<def::Problem>,
    checked: bool,
) -> Response {
    let diff = line_diff(&d.source, &source);
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Page::new(
        "console/workflow.html",
        crate::ctx! { def => crate::ctx!{ key => d.key, title => d.title, version => d.version }, source => source, versions => versions,
                   problems => problems, diff => diff, checked => checked },
    )
    .with_status(status)
    .into_response()
}

async fn workflow_svg(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(key): PagePath<String>,
) -> PageResult {
    let _ = user;
    let d = state
        .engine
        .definitions
        .get(&key)
        .ok_or(AppError::NotFound)?;
    Ok(svg_response(diagram::svg(&d, None)))
}
