//! Grades, subsidy settlements (compute, confirm or object, export) and the money policy.

#[allow(unused_imports)]
use super::*;

#[derive(Deserialize)]
pub(super) struct GradeBody {
    grade: String,
    #[serde(default)]
    reason: String,
    /// Needed to change a grade a published evaluation gave (409 `grade_published` otherwise).
    #[serde(default)]
    override_reason: String,
}

pub(super) async fn set_grade(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath((unit_id, year)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<GradeBody>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::EvaluationManage)?;
    if !money::GRADES.iter().any(|(g, _)| *g == body.grade) {
        return Err(AppError::field(
            "grade",
            "等级应为 excellent、good、qualified 或 unqualified",
        )
        .into());
    }
    // An override reason is reason enough.
    let reason = match body.reason.trim() {
        "" => body.override_reason.trim(),
        r => r,
    };
    if reason.is_empty() {
        return Err(AppError::field("reason", "请说明等级来源或理由").into());
    }
    crate::units::get(&state.db, unit_id).await?;
    let year = year_or_now(&state, Some(year))?;
    money::set_grade_by_hand(
        &state.db,
        money::UnitGrade {
            unit_id,
            year,
            grade: &body.grade,
            reason,
            source: "manual",
            decided_by: user.id,
            override_reason: &body.override_reason,
        },
        state.now(),
    )
    .await?;
    Ok(Json(
        json!({"unit_id": unit_id, "year": year, "grade": body.grade}),
    ))
}

#[derive(Deserialize)]
pub(super) struct SettlementBody {
    year: i64,
}

pub(super) async fn create_settlement(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<SettlementBody>,
) -> ApiResult {
    user.require(Permission::SubsidyManage)?;
    let year = year_or_now(&state, Some(body.year))?;
    let id = start_settlement(&state, user.id, year).await?;
    let s = settlement::get(&state.db, id).await?;
    Ok((StatusCode::CREATED, Json(settlement_json(&s))).into_response())
}

/// Compute and store a year's settlement and start `subsidy_settlement` on it (the API and
/// the 补贴结算 page), in one transaction.
pub(crate) async fn start_settlement(
    state: &AppState,
    user_id: i64,
    year: i64,
) -> Result<i64, ApiError> {
    Ok(settlement::create(&state.engine, year, user_id, state.now()).await?)
}

/// The contract's settlement shape, plus each unit's confirmation (单位确认) and the list of
/// confirmations.
pub(super) fn settlement_json(s: &settlement::Settlement) -> Value {
    let confirmation = |unit_id: i64| match s.confirmation(unit_id) {
        Some(c) => json!({"status": c.status, "reason": c.reason, "decided_by": c.decided_by,
            "decided_at": c.decided_at.map(crate::clock::rfc3339)}),
        None => Value::Null,
    };
    json!({
        "id": s.id, "year": s.year, "status": s.status, "policy_version": s.policy_version_id,
        "instance_id": s.instance_id, "total": s.total,
        "computed_at": (s.computed_at > 0).then(|| crate::clock::rfc3339(s.computed_at)),
        "computations": s.computations,
        "units": s.units.iter().map(|u| json!({
            "unit_id": u.unit_id, "grade": u.grade, "coefficient": u.coefficient.to_string(),
            "total": u.total, "unit_cap_applied": u.unit_cap_applied,
            "confirmation": confirmation(u.unit_id),
            "instruments": u.instruments.iter().map(|l| json!({
                "instrument_id": l.instrument_id, "income": l.income, "uncapped": l.uncapped, "amount": l.amount,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "confirmations": s.confirmations.iter().map(|c| json!({
            "unit_id": c.unit_id, "unit_name": c.unit_name, "status": c.status, "reason": c.reason,
            "decided_by": c.decided_by, "decided_at": c.decided_at.map(crate::clock::rfc3339),
        })).collect::<Vec<_>>(),
    })
}

/// Subsidy managers see the whole settlement; a unit's managers see their own units' lines.
pub(super) async fn get_settlement(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let mut s = settlement::get(&state.db, id).await?;
    if !user.can(Permission::SubsidyManage) {
        s.units.retain(|u| user.acts_for(u.unit_id, true));
        s.confirmations.retain(|c| user.acts_for(c.unit_id, true));
        if s.units.is_empty() {
            user.require(Permission::SubsidyManage)?;
        }
    }
    Ok(Json(settlement_json(&s)))
}

/// A unit manager's answer to settlement `id`: `approve` confirms their units' figures,
/// `reject` objects with `comment` as the reason. It decides the manager's open task of the
/// confirmation step (shared by the API and the console).
pub async fn decide_settlement(
    state: &AppState,
    user: &crate::auth::CurrentUser,
    id: i64,
    action: &str,
    comment: &str,
) -> crate::error::Result<crate::workflow::Outcome> {
    let s = settlement::get(&state.db, id).await?;
    if !s.units.iter().any(|u| user.acts_for(u.unit_id, true)) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    let task = settlement::open_task(&state.db, s.instance_id, user.id).await?;
    let Some(task) = task else {
        return Err(AppError::conflict(
            "not_awaiting_confirmation",
            "该结算当前不需要您确认（已处理，或不在单位确认环节）",
        ));
    };
    state
        .engine
        .act(
            Some(user),
            task,
            crate::workflow::Decision {
                action: action.into(),
                comment: comment.into(),
                data: json!({}),
            },
        )
        .await
}

/// `POST /subsidy-settlements/{id}/confirm`: the unit manager confirms their units' lines.
pub(super) async fn confirm_settlement(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    decide_settlement(&state, &user, id, "approve", "确认本单位结算明细").await?;
    get_settlement(State(state), ApiUser(user), ApiPath(id)).await
}

#[derive(Deserialize)]
pub(super) struct ObjectionBody {
    #[serde(default)]
    reason: String,
}

/// `POST /subsidy-settlements/{id}/objection {reason}`: the unit manager objects (异议).
pub(super) async fn object_settlement(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ObjectionBody>,
) -> ApiResult<Json<Value>> {
    if body.reason.trim().is_empty() {
        return Err(AppError::field("reason", "请写明异议理由").into());
    }
    decide_settlement(&state, &user, id, "reject", body.reason.trim()).await?;
    get_settlement(State(state), ApiUser(user), ApiPath(id)).await
}

/// The settlement line by line as xlsx: unit, grade, coefficient, instrument, income,
/// income × coefficient, amount after the caps, and the totals.
pub(super) async fn export_settlement(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    user.require(Permission::SubsidyManage)?;
    Ok(settlement_xlsx(&state, id).await?)
}

/// The xlsx download of a settlement (shared by the API and the console).
pub async fn settlement_xlsx(
    state: &AppState,
    id: i64,
) -> crate::error::Result<axum::response::Response> {
    let s = settlement::get(&state.db, id).await?;
    let mut rows = Vec::new();
    for u in &s.units {
        let unit_name = crate::units::name(&state.db, u.unit_id).await?;
        let grade = money::grade_label(&u.grade);
        for l in &u.instruments {
            let (name, model) =
                crate::instruments::name_and_model(&state.db, l.instrument_id).await?;
            let name = format!("{name} {model}");
            rows.push(vec![
                unit_name.clone(),
                grade.to_string(),
                u.coefficient.to_string(),
                name,
                l.income.to_string(),
                l.uncapped.to_string(),
                l.amount.to_string(),
            ]);
        }
        rows.push(vec![
            format!("{unit_name} 小计"),
            grade.to_string(),
            String::new(),
            if u.unit_cap_applied {
                "已按单位上限等比例调减".into()
            } else {
                String::new()
            },
            String::new(),
            String::new(),
            u.total.to_string(),
        ]);
    }
    rows.push(vec![
        "合计".into(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        s.total.to_string(),
    ]);
    let bytes = crate::spreadsheets::export(
        &format!("{} 年度补贴结算", s.year),
        &[
            "单位",
            "绩效等级",
            "补贴系数",
            "仪器",
            "共享服务收入（元）",
            "收入×系数（元）",
            "补贴金额（元）",
        ],
        &rows,
    )?;
    Ok(crate::web::page::xlsx_download(
        bytes,
        &format!("settlement-{}-{}.xlsx", s.year, s.id),
        &format!("{} 年度补贴结算-{}.xlsx", s.year, s.id),
    ))
}

pub(super) async fn get_policy(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
) -> ApiResult<Json<Value>> {
    user.require(Permission::SubsidyManage)?;
    let (id, policy) = money::current(&state.db).await?;
    Ok(Json(json!({"version": id, "policy": policy})))
}

#[derive(Deserialize)]
pub(super) struct PolicyBody {
    yaml: String,
}

pub(super) async fn put_policy(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<PolicyBody>,
) -> ApiResult<Json<Value>> {
    user.require(Permission::SubsidyManage)?;
    let id = money::publish(&state.db, &body.yaml, Some(user.id), state.now()).await?;
    Ok(Json(json!({"version": id})))
}
