//! Console pages of tasks and instances: 我的待办 (the reviewer queue), 我的已办, 我发起的,
//! the task page and the instance page with its diagram.

#[allow(unused_imports)]
use super::*;

#[derive(Deserialize, Default, Serialize)]
pub(super) struct QueueQuery {
    /// A workflow key; empty: every flow.
    #[serde(default)]
    flow: String,
    /// `overdue`, `3` (working days), `none`; empty: all.
    #[serde(default)]
    due: String,
    /// `due` (default) or `new`.
    #[serde(default)]
    sort: String,
    #[serde(default)]
    page: Option<String>,
}

const QUEUE_PER_PAGE: i64 = 20;

/// 我的待办: the reviewer queue with its filters, remaining working days and batch approval.
pub(super) async fn my_tasks(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<QueueQuery>,
) -> PageResult {
    let page = q
        .page
        .as_deref()
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=10_000).contains(p))
        .unwrap_or(1);
    let filter = workflow::QueueFilter {
        workflow: q.flow.clone(),
        due: workflow::DueFilter::parse(&q.due),
        sort: if q.sort == "new" {
            workflow::QueueSort::Newest
        } else {
            workflow::QueueSort::Due
        },
        page,
        per_page: QUEUE_PER_PAGE,
    };
    let queue = state.engine.queue(user.id, &filter).await?;
    let batchable = queue.items.iter().any(|i| i.batch);
    Ok(Page::new(
        "console/tasks.html",
        crate::ctx! { items => queue.items, flows => queue.flows, tab => "open", title => "我的待办",
            batchable => batchable,
            pager => crate::web::page::pager(page, queue.total, QUEUE_PER_PAGE),
            query => crate::ctx!{ flow => q.flow, due => q.due, sort => q.sort } },
    )
    .into_response())
}

/// 批量同意: the ticked tasks approved with one comment, each through the engine.
pub(super) async fn batch_approve(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let ids: Vec<i64> = form
        .iter()
        .filter(|(k, _)| k == "task")
        .filter_map(|(_, v)| v.parse().ok())
        .take(100)
        .collect();
    let comment = form
        .iter()
        .find(|(k, _)| k == "comment")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let back = form
        .iter()
        .find(|(k, _)| k == "back")
        .map(|(_, v)| v.as_str())
        .filter(|b| b.starts_with("/console/tasks") && !b.contains("//"))
        .unwrap_or("/console/tasks");
    if ids.is_empty() {
        return Ok(redirect_with_flash(back, "请先勾选要同意的待办"));
    }
    let out = state.engine.batch_approve(&user, &ids, &comment).await?;
    let mut msg = format!("已批量同意 {} 项", out.approved.len());
    if !out.skipped.is_empty() {
        let reasons: Vec<String> = out
            .skipped
            .iter()
            .map(|(id, why)| format!("#{id}：{why}"))
            .collect();
        msg.push_str(&format!(
            "；{} 项未处理（{}）",
            out.skipped.len(),
            reasons.join("；")
        ));
    }
    Ok(redirect_with_flash(back, &msg))
}

pub(super) async fn done_tasks(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
) -> PageResult {
    let tasks: Vec<Value> = state
        .engine
        .tasks_for(user.id, true)
        .await?
        .into_iter()
        .map(|t| {
            let mut v = json!(t);
            v["action"] = json!(t.action.as_deref().map(def::action_label).unwrap_or(""));
            v["decided_label"] = json!(t.decided_at.as_deref().map(workflow::chinese_rfc3339));
            v
        })
        .collect();
    Ok(Page::new(
        "console/tasks.html",
        crate::ctx! { tasks => tasks, tab => "done", title => "我的已办" },
    )
    .into_response())
}

pub(super) async fn started(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    let mut rows = Vec::new();
    for inst in workflow::started_by(&state.db, user.id).await? {
        let d = state
            .engine
            .definitions
            .version(&state.db, &inst.workflow_key, inst.version)
            .await?;
        rows.push(json!({"id": inst.id, "title": d.title, "version": inst.version, "state_title": d.state_title(&inst.state), "status": inst.status,
            "subject_type": inst.subject_type, "subject_id": inst.subject_id, "created_at": workflow::chinese_datetime(inst.created_at)}));
    }
    Ok(Page::new("console/started.html", crate::ctx! { instances => rows }).into_response())
}

pub(super) async fn instance_context(
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
        .map(|h| json!({"step": d.state_title(&h.step), "action": match h.action.as_str() { "start" => "提交".to_string(), "migrate" => "迁移版本".to_string(), a => def::action_label(a).to_string() },
            "actor": match (&h.actor, &h.on_behalf_of) { (Some(a), Some(p)) => format!("{a}（代 {p} 审批）"), (Some(a), None) => a.clone(), _ => "系统".into() }, "at": workflow::chinese_rfc3339(&h.at), "comment": h.comment, "to": d.state_title(&h.to_state)}))
        .collect();
    Ok(
        crate::ctx! { instance => inst, title => d.title, state_title => d.state_title(&inst.state), history => history },
    )
}

pub(super) async fn instance_page(
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

pub(super) fn svg_response(svg: String) -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")],
        svg,
    )
        .into_response()
}

pub(super) async fn instance_svg(
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
    let path: Vec<String> = workflow::history(&state.db, inst.id)
        .await?
        .into_iter()
        .map(|h| h.to_state)
        .fold(Vec::new(), |mut acc: Vec<String>, s| {
            if acc.last() != Some(&s) && !s.is_empty() {
                acc.push(s);
            }
            acc
        });
    Ok(svg_response(diagram::svg_with_path(
        &d,
        Some(&inst.state),
        &path,
    )))
}

pub(super) async fn instance_withdraw(
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

pub(super) async fn task_page(
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
    let ctx = task_context(&state, &user, task, crate::ctx! {}, crate::ctx! {}).await?;
    Ok(Page::new("console/task.html", ctx).into_response())
}

/// The task page's context: the task, its instance's history, the subject's key fields and
/// its details, the deadline in Chinese with the working days left.
async fn task_context(
    state: &AppState,
    user: &CurrentUser,
    task: workflow::TaskView,
    errors: minijinja::Value,
    form: minijinja::Value,
) -> Result<minijinja::Value> {
    let inst = workflow::get_instance(&state.db, task.instance_id).await?;
    let ctx = instance_context(state, &inst, user).await?;
    let actions: Vec<(String, &str)> = task
        .actions
        .iter()
        .map(|a| (a.clone(), def::action_label(a)))
        .collect();
    let detail = subject_detail(state, user, &task).await?;
    let summary = state.engine.subject_summary(&inst).await?;
    let due = task
        .due_at
        .as_deref()
        .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
        .map(|d| d.timestamp());
    let due_label = due.map(workflow::chinese_datetime);
    let remaining = due.map(|d| workflow::remaining(d, state.now()));
    Ok(
        crate::ctx! { task => task, ctx => ctx, actions => actions, detail => detail, summary => summary,
        due_label => due_label, remaining => remaining, errors => errors, form => form },
    )
}

/// What a reviewer needs to see of the subject beside the generic task: a settlement's
/// per-unit confirmations and objections, a redemption's contract and invoice files.
pub(super) async fn subject_detail(
    state: &AppState,
    user: &CurrentUser,
    task: &workflow::TaskView,
) -> Result<Value> {
    let id = task.subject["id"].as_i64().unwrap_or(0);
    Ok(match task.subject["type"].as_str().unwrap_or("") {
        "subsidy_settlement" => {
            let mut summary = crate::web::settlements::summary(state, id).await?;
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
pub(super) struct ActForm {
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

pub(super) async fn task_act(
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
            let mut errors = e.field_errors().cloned().unwrap_or_default();
            if errors.is_empty() {
                errors.insert("action".into(), e.to_string());
            }
            let ctx = task_context(
                &state,
                &user,
                task,
                minijinja::Value::from(minijinja::value::Serde(&errors)),
                minijinja::Value::from(minijinja::value::Serde(&form)),
            )
            .await?;
            Ok(Page::new("console/task.html", ctx)
                .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn certify_unit_page(
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
