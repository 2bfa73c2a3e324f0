//! The evaluation pages: 绩效评价申报, 绩效评价管理, 绩效评审, one evaluation's page with the
//! forms its viewer may use, and the public results.

#[allow(unused_imports)]
use super::*;

#[derive(Deserialize, Default)]
pub(super) struct PageQ {
    year: Option<i64>,
    page: Option<i64>,
}

/// The managing unit's declarations and the declaration form.
pub(super) async fn declare_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
) -> PageResult {
    user.require(Permission::EvaluationDeclare)?;
    render_declare(&state, &user, json!({}), json!({}), StatusCode::OK).await
}

pub(super) async fn render_declare(
    state: &AppState,
    user: &CurrentUser,
    form: Value,
    errors: Value,
    status: StatusCode,
) -> PageResult {
    let (items, _) = evaluations::list(&state.db, user, None, 0, 100).await?;
    let items: Vec<_> = items
        .into_iter()
        .filter(|e| user.acts_for(e.unit_id, false))
        .collect();
    let mut units = Vec::new();
    for m in user.units.iter().filter(|m| m.role == "manager") {
        let u = crate::units::get(&state.db, m.id).await?;
        if u.kind == "managing" {
            units.push(u);
        }
    }
    // Declarations usually look back: early in the year the year just closed comes first.
    let year = this_year(state);
    let mut years: Vec<i64> = (year - 2..=year).rev().collect();
    if state.clock.today().month() <= 3 {
        years.swap(0, 1);
    }
    Ok(Page::new(
        "console/evaluations.html",
        crate::ctx! { items => items, units => units, years => years, form => form, errors => errors },
    )
    .with_status(status)
    .into_response())
}

#[derive(Deserialize)]
pub(super) struct DeclareForm {
    #[serde(default)]
    unit_id: String,
    #[serde(default)]
    year: String,
    #[serde(default)]
    self_report: String,
}

pub(super) async fn declare(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<DeclareForm>,
) -> PageResult {
    user.require(Permission::EvaluationDeclare)?;
    let kept = json!({"unit_id": form.unit_id, "year": form.year, "self_report": form.self_report});
    let (Ok(unit_id), Ok(year)) = (form.unit_id.parse::<i64>(), form.year.parse::<i64>()) else {
        return render_declare(
            &state,
            &user,
            kept,
            json!({"unit_id": "请选择申报单位和年度"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    match declare_and_start(&state, &user, unit_id, year, &form.self_report).await {
        Ok((id, _)) => Ok(redirect_with_flash(
            &format!("/console/evaluations/{id}"),
            "申报已提交，等待平台指派专家评审",
        )),
        Err(e) => match form_errors(&e) {
            Some(errors) => {
                render_declare(
                    &state,
                    &user,
                    kept,
                    errors,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            None => Err(e.into()),
        },
    }
}

/// A refusal to show on the form (field messages, or the whole message under `_`).
pub(super) fn form_errors(e: &AppError) -> Option<Value> {
    match e {
        AppError::Validation { fields, .. } => Some(json!(fields)),
        AppError::Conflict { .. } | AppError::Unprocessable { .. } => {
            Some(json!({"_": e.to_string()}))
        }
        _ => None,
    }
}

pub(super) async fn admin_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<PageQ>,
) -> PageResult {
    user.require(Permission::EvaluationManage)?;
    list_page(&state, &user, q, "console/evaluation_admin.html").await
}

pub(super) async fn reviews_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<PageQ>,
) -> PageResult {
    user.require(Permission::EvaluationReview)?;
    list_page(&state, &user, q, "console/expert_reviews.html").await
}

pub(super) async fn list_page(
    state: &AppState,
    user: &CurrentUser,
    q: PageQ,
    template: &'static str,
) -> PageResult {
    let page = q.page.unwrap_or(1).clamp(1, 100_000);
    let (items, total) =
        evaluations::list(&state.db, user, q.year, (page - 1) * PER_PAGE, PER_PAGE).await?;
    let mut rows = Vec::new();
    for e in items {
        let open = match (e.status.as_str(), template) {
            ("reviewing", "console/expert_reviews.html") => {
                evaluations::open_task(&state.db, &e, user.id, "expert_review")
                    .await?
                    .is_some()
            }
            _ => false,
        };
        rows.push(json!({"e": e, "my_turn": open}));
    }
    let query = match q.year {
        Some(y) => json!({"year": y}),
        None => json!({}),
    };
    Ok(Page::new(
        template,
        crate::ctx! { items => rows, pager => crate::web::page::pager(page, total, PER_PAGE), year => q.year, query => query },
    )
    .into_response())
}

pub(super) async fn detail_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    render_detail(&state, &user, id, json!({}), json!({}), StatusCode::OK).await
}

pub(super) async fn render_detail(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    form: Value,
    errors: Value,
    status: StatusCode,
) -> PageResult {
    let (_, policy) = money::current(&state.db).await?;
    let e = evaluations::get(&state.db, &policy, id).await?;
    let view = view_json(state, user, &e).await?;
    let my_task = |st: &'static str| evaluations::open_task(&state.db, &e, user.id, st);
    let can_score = my_task("expert_review").await?.is_some();
    let can_assign = my_task("assign").await?.is_some();
    let can_grade = my_task("grading").await?.is_some();
    let can_revise = my_task("revise").await?.is_some();
    let flow = state.engine.definitions.get("expert_evaluation");
    let step = |key: &str| match (&flow, key) {
        (_, "") => "申报".to_string(),
        (Some(d), k) => d.state_title(k),
        (None, k) => k.to_string(),
    };
    let history: Vec<Value> = match e.instance_id {
        Some(i) => {
            let inst = workflow::get_instance(&state.db, i).await?;
            state.engine.history_for(&inst, user).await?
        }
        None => Vec::new(),
    }
    .into_iter()
    .map(|h| {
        let action = match h.action.as_str() {
            "start" => "提交申报",
            a => workflow::def::action_label(a),
        };
        json!({"actor": h.actor, "at": h.at, "comment": h.comment, "action": action,
               "from": step(&h.step), "to": step(&h.to_state)})
    })
    .collect();
    let grades: Vec<Value> = GRADES
        .iter()
        .map(|(k, l)| json!({"key": k, "label": l}))
        .collect();
    Ok(Page::new(
        "console/evaluation.html",
        crate::ctx! { ev => view, sheet => policy.evaluation.indicators, thresholds => policy.evaluation.thresholds,
            aggregate => policy.evaluation.aggregate, grades => grades, can_score => can_score,
            can_assign => can_assign, can_grade => can_grade, can_revise => can_revise,
            history => history, form => form, errors => errors },
    )
    .with_status(status)
    .into_response())
}

/// Run a page action on the evaluation: success goes back to the page with a notice;
/// a refusal re-renders it with the messages and what was typed.
pub(super) async fn after(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    kept: Value,
    result: Result<String>,
) -> PageResult {
    match result {
        Ok(msg) => Ok(redirect_with_flash(
            &format!("/console/evaluations/{id}"),
            &msg,
        )),
        Err(e) => match form_errors(&e) {
            Some(errors) => {
                render_detail(
                    state,
                    user,
                    id,
                    kept,
                    errors,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            None => Err(e.into()),
        },
    }
}

pub(super) async fn assign_form(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    user.require(Permission::EvaluationManage)?;
    let ids: Vec<i64> = pairs
        .iter()
        .filter(|(k, _)| k == "expert_id")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let submit = pairs.iter().any(|(k, v)| k == "submit" && v == "1");
    let result = async {
        evaluations::assign_experts(&state.db, &user, id, &ids, state.now()).await?;
        if !submit {
            return Ok(format!("已保存 {} 位评审专家", ids.len()));
        }
        decide(
            &state,
            &user,
            id,
            "assign",
            Decision {
                action: "approve".into(),
                comment: String::new(),
                data: json!({}),
            },
        )
        .await?;
        Ok(format!("已指派 {} 位专家，评审任务已发出", ids.len()))
    }
    .await;
    after(&state, &user, id, json!({"expert_ids": ids}), result).await
}

pub(super) async fn score_form(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let sheet: BTreeMap<String, String> = pairs
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("score_").map(|k| (k.to_string(), v.clone())))
        .collect();
    let comment = pairs
        .iter()
        .find(|(k, _)| k == "comment")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let result = submit_scores(&state, &user, id, &sheet, &comment)
        .await
        .map(|_| "评分已提交，感谢您的评审".to_string());
    after(
        &state,
        &user,
        id,
        json!({"scores": sheet, "comment": comment}),
        result,
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct GradeForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    grade: String,
    #[serde(default)]
    reason: String,
}

/// The platform admin's decision at 平台定级: approve with a grade (and a reason when it
/// departs from the score), return to the experts, or reject.
pub(super) async fn grade_form(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<GradeForm>,
) -> PageResult {
    user.require(Permission::EvaluationManage)?;
    let result = async {
        let action = match form.action.as_str() {
            "return" | "reject" => form.action.clone(),
            _ => "approve".to_string(),
        };
        if action != "approve" && form.reason.trim().is_empty() {
            return Err(AppError::field("reason", "退回或不予通过时请填写理由"));
        }
        decide(
            &state,
            &user,
            id,
            "grading",
            Decision {
                action: action.clone(),
                comment: form.reason.trim().to_string(),
                data: json!({"grade": form.grade, "reason": form.reason.trim()}),
            },
        )
        .await?;
        Ok(match action.as_str() {
            "approve" => format!("已定级为“{}”并公示", evaluations::grade_label(&form.grade)),
            "return" => "已退回专家重新评审".to_string(),
            _ => "已不予通过".to_string(),
        })
    }
    .await;
    after(
        &state,
        &user,
        id,
        json!({"grade": form.grade, "reason": form.reason}),
        result,
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct ReportForm {
    #[serde(default)]
    self_report: String,
}

/// The unit rewrites its self report after 退回补充 and sends it back to the platform.
pub(super) async fn report_form(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<ReportForm>,
) -> PageResult {
    let result = async {
        evaluations::revise(&state.db, &user, id, &form.self_report, state.now()).await?;
        decide(
            &state,
            &user,
            id,
            "revise",
            Decision {
                action: "approve".into(),
                comment: "已补充材料".into(),
                data: json!({}),
            },
        )
        .await?;
        Ok("已补充材料并重新提交".to_string())
    }
    .await;
    after(
        &state,
        &user,
        id,
        json!({"self_report": form.self_report}),
        result,
    )
    .await
}

/// 绩效评价结果公示: published grades, by year.
pub(super) async fn public_results(
    State(state): State<AppState>,
    PageQuery(q): PageQuery<PageQ>,
) -> PageResult {
    let items = evaluations::published(&state.db, q.year).await?;
    let years = evaluations::published_years(&state.db).await?;
    Ok(Page::new(
        "portal/evaluations.html",
        crate::ctx! { items => items, year => q.year, years => years },
    )
    .into_response())
}
