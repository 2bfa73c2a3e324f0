//! Subsidy settlement pages (补贴结算): the platform's list with each unit's confirmation,
//! and a managing unit's view of its own lines, line by line, where its manager confirms
//! them or objects (异议) after a confirmation step.

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use serde::{Deserialize, Serialize};

use super::{
    AppState,
    extract::{CsrfForm, PagePath},
    page::{Page, PageResult, redirect_with_flash, refusal},
    routes::{Access, Route},
    session::SignedIn,
};
use crate::{
    auth::{CurrentUser, Permission},
    domain::Yuan,
    error::{AppError, Result},
    money::{self, settlement},
};

/// Subsidy settlement pages. `/console/subsidies` also opens to managing units
/// (`redemption.apply`) for their own settlement lines.
pub fn routes() -> Vec<Route> {
    use Permission::*;
    vec![
        Route::get(
            "/console/subsidies",
            Access::AnyOf(&[SubsidyManage, RedemptionApply]),
            subsidies,
        )
        .nav("补贴结算", 210),
        Route::post("/console/subsidies", SubsidyManage, start),
        Route::get("/console/subsidies/{id}", SubsidyManage, detail),
        Route::get(
            "/console/subsidies/{id}/export.xlsx",
            SubsidyManage,
            subsidy_xlsx,
        ),
        Route::get(
            "/console/subsidies/{id}/confirm",
            RedemptionApply,
            confirm_page,
        ),
        Route::post("/console/subsidies/{id}/confirm", RedemptionApply, decide),
    ]
}

pub fn status_label(status: &str) -> &'static str {
    match status {
        "computed" => "核算中",
        "confirming" => "单位确认中",
        "objection" => "异议处理中",
        "review" => "审核中",
        "published" => "已下达",
        "cancelled" => "已作废",
        _ => "—",
    }
}

pub fn confirmation_label(status: &str) -> &'static str {
    match status {
        "confirmed" => "已确认",
        "objected" => "有异议",
        _ => "待确认",
    }
}

#[derive(Serialize)]
struct ConfirmationView {
    unit_id: i64,
    unit_name: String,
    status: String,
    label: &'static str,
    reason: String,
    decided_by: Option<String>,
    decided_at: Option<i64>,
}

fn confirmation_views(s: &settlement::Settlement) -> Vec<ConfirmationView> {
    s.confirmations
        .iter()
        .map(|c| ConfirmationView {
            unit_id: c.unit_id,
            unit_name: c.unit_name.clone(),
            label: confirmation_label(&c.status),
            status: c.status.clone(),
            reason: c.reason.clone(),
            decided_by: c.decided_by.clone(),
            decided_at: c.decided_at,
        })
        .collect()
}

/// The settlement as the task page and the list show it: figures and each unit's answer.
pub async fn summary(state: &AppState, id: i64) -> Result<serde_json::Value> {
    let s = settlement::get(&state.db, id).await?;
    let confirmations = confirmation_views(&s);
    let count = |st: &str| confirmations.iter().filter(|c| c.status == st).count();
    Ok(serde_json::json!({
        "id": s.id, "year": s.year, "status": s.status, "status_label": status_label(&s.status),
        "total": s.total, "policy_version": s.policy_version_id, "instance_id": s.instance_id,
        "computations": s.computations, "computed_at": s.computed_at,
        "confirmed": count("confirmed"), "objected": count("objected"), "pending": count("pending"),
        "confirmations": confirmations,
        "unit_totals": s.units.iter().map(|u| serde_json::json!({"unit_id": u.unit_id, "total": u.total, "grade": money::grade_label(&u.grade)})).collect::<Vec<_>>(),
    }))
}

/// Whether `user` holds an open task on the settlement's flow (i.e. must still answer).
async fn awaiting(state: &AppState, user: &CurrentUser, instance_id: Option<i64>) -> Result<bool> {
    Ok(settlement::open_task(&state.db, instance_id, user.id)
        .await?
        .is_some())
}

/// 补贴结算: for subsidy managers every settlement with each unit's confirmation state; for
/// managing units the settlements that pay them.
/// The whole computation, line by line (platform admin): per unit its grade, coefficient and
/// confirmation; per instrument its income, income × coefficient, and the amount after the caps.
async fn detail(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    user.require(Permission::SubsidyManage)?;
    let s = settlement::get(&state.db, id).await?;
    let (_, policy) = money::current(&state.db).await?;
    let mut units = Vec::new();
    for u in &s.units {
        let mut lines = Vec::new();
        for l in &u.instruments {
            let name = crate::instruments::name(&state.db, l.instrument_id).await?;
            lines.push(serde_json::json!({"line": l, "name": name.unwrap_or_default()}));
        }
        units.push(serde_json::json!({
            "unit": u, "grade_label": money::grade_label(&u.grade),
            "confirmation": s.confirmation(u.unit_id).map(|c| serde_json::json!({"label": confirmation_label(&c.status), "c": c})),
            "lines": lines,
        }));
    }
    Ok(Page::new(
        "console/settlement.html",
        crate::ctx! { s => s, status_label => status_label(&s.status), units => units,
            cap_instrument => policy.subsidy.cap_per_instrument, cap_unit => policy.subsidy.cap_per_unit },
    )
    .into_response())
}

#[derive(Deserialize)]
struct StartForm {
    #[serde(default)]
    year: String,
}

/// 发起年度结算 from the page: the same computation and flow as the API.
async fn start(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<StartForm>,
) -> PageResult {
    user.require(Permission::SubsidyManage)?;
    let Ok(year) = form.year.trim().parse::<i64>() else {
        return Ok(redirect_with_flash("/console/subsidies", "请选择结算年度"));
    };
    match super::money_api::start_settlement(&state, user.id, year).await {
        Ok(_) => Ok(redirect_with_flash(
            "/console/subsidies",
            &format!("{year} 年度补贴已核算，等待各单位确认"),
        )),
        Err(e) => match refusal(&e.0) {
            Some(msg) => Ok(redirect_with_flash(
                "/console/subsidies",
                &format!("未能发起结算：{msg}"),
            )),
            None => Err(e.0.into()),
        },
    }
}

async fn subsidies(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    let admin = user.can(Permission::SubsidyManage);
    if !admin {
        user.require(Permission::RedemptionApply)?;
    }
    let mut items = Vec::new();
    if admin {
        let ids = settlement::recent_ids(&state.db).await?;
        for id in ids {
            items.push(summary(&state, id).await?);
        }
    }
    let mine_ids = settlement::ids_for_manager(&state.db, user.id).await?;
    let mut mine = Vec::new();
    for id in mine_ids {
        let s = settlement::get(&state.db, id).await?;
        let units: Vec<_> = confirmation_views(&s)
            .into_iter()
            .filter(|c| user.acts_for(c.unit_id, true))
            .map(|c| {
                let total = s
                    .units
                    .iter()
                    .find(|u| u.unit_id == c.unit_id)
                    .map(|u| u.total)
                    .unwrap_or(Yuan::ZERO);
                serde_json::json!({"confirmation": c, "total": total})
            })
            .collect();
        mine.push(serde_json::json!({
            "id": s.id, "year": s.year, "status": s.status, "status_label": status_label(&s.status),
            "units": units, "awaiting": awaiting(&state, &user, s.instance_id).await?,
        }));
    }
    // Settlements usually close the previous year; the current one is offered too.
    let this_year = chrono::Datelike::year(&state.clock.today()) as i64;
    let years = [this_year - 1, this_year, this_year - 2];
    Ok(Page::new(
        "console/subsidies.html",
        crate::ctx! { admin => admin, items => items, mine => mine, years => years },
    )
    .into_response())
}

async fn subsidy_xlsx(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    user.require(Permission::SubsidyManage)?;
    Ok(super::money_api::settlement_xlsx(&state, id).await?)
}

/// The user's units in settlement `id`, line by line with instrument names.
async fn my_lines(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<(settlement::Settlement, Vec<serde_json::Value>)> {
    let s = settlement::get(&state.db, id).await?;
    let mut units = Vec::new();
    for u in s.units.iter().filter(|u| user.acts_for(u.unit_id, true)) {
        let unit_name = crate::units::name(&state.db, u.unit_id).await?;
        let mut lines = Vec::new();
        for l in &u.instruments {
            let (name, model) =
                crate::instruments::name_and_model(&state.db, l.instrument_id).await?;
            lines.push(serde_json::json!({
                "instrument_id": l.instrument_id, "name": name, "model": model,
                "income": l.income, "uncapped": l.uncapped, "amount": l.amount,
                "capped": l.amount != l.uncapped,
            }));
        }
        let confirmation = s.confirmation(u.unit_id).map(|c| {
            serde_json::json!({"status": c.status, "label": confirmation_label(&c.status), "reason": c.reason,
                "decided_by": c.decided_by, "decided_at": c.decided_at})
        });
        units.push(serde_json::json!({
            "unit_id": u.unit_id, "name": unit_name, "grade": money::grade_label(&u.grade),
            "coefficient": u.coefficient.to_string(), "total": u.total, "unit_cap_applied": u.unit_cap_applied,
            "lines": lines, "confirmation": confirmation,
        }));
    }
    if units.is_empty() {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    Ok((s, units))
}

#[derive(Deserialize, Serialize, Default, Clone)]
struct DecideForm {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirmed: String,
}

async fn render_confirm(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    step: &str,
    form: DecideForm,
    errors: crate::error::FieldErrors,
) -> PageResult {
    let (s, units) = my_lines(state, user, id).await?;
    let total = Yuan::from_fen(
        units
            .iter()
            .filter_map(|u| u["total"].as_str().and_then(|t| Yuan::parse(t).ok()))
            .map(|y| y.fen())
            .sum(),
    );
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(Page::new(
        "console/settlement_confirm.html",
        crate::ctx! {
            settlement => crate::ctx!{ id => s.id, year => s.year, status => s.status, status_label => status_label(&s.status),
                                       computations => s.computations, computed_at => s.computed_at },
            units => units, total => total, awaiting => awaiting(state, user, s.instance_id).await?,
            step => step, form => form, errors => errors,
        },
    )
    .with_status(status)
    .into_response())
}

/// A managing unit's view of a settlement: its lines, its confirmation, and the forms.
async fn confirm_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    user.require(Permission::RedemptionApply)?;
    render_confirm(
        &state,
        &user,
        id,
        "view",
        DecideForm::default(),
        Default::default(),
    )
    .await
}

/// 确认 or 提出异议: the first post shows a confirmation step, the second (`confirmed=1`)
/// decides the manager's task.
async fn decide(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(mut form): CsrfForm<DecideForm>,
) -> PageResult {
    user.require(Permission::RedemptionApply)?;
    form.reason = form.reason.trim().to_string();
    let action = match form.decision.as_str() {
        "confirm" => "approve",
        "object" => "reject",
        _ => {
            let errors = [("decision".to_string(), "请选择确认或提出异议".to_string())].into();
            return render_confirm(&state, &user, id, "view", form, errors).await;
        }
    };
    if action == "reject" && form.reason.is_empty() {
        let errors = [(
            "reason".to_string(),
            "请写明异议理由（哪一条不对、应当是多少）".to_string(),
        )]
        .into();
        return render_confirm(&state, &user, id, "view", form, errors).await;
    }
    if form.confirmed != "1" {
        return render_confirm(&state, &user, id, "check", form, Default::default()).await;
    }
    let comment = if action == "approve" {
        "确认本单位结算明细".to_string()
    } else {
        form.reason.clone()
    };
    let back = format!("/console/subsidies/{id}/confirm");
    match super::money_api::decide_settlement(&state, &user, id, action, &comment).await {
        Ok(_) => Ok(redirect_with_flash(
            &back,
            if action == "approve" {
                "已确认本单位结算明细"
            } else {
                "异议已提交，平台管理员处理后会通知您"
            },
        )),
        Err(e @ (AppError::Conflict { .. } | AppError::Unprocessable { .. })) => {
            Ok(redirect_with_flash(&back, &e.to_string()))
        }
        Err(AppError::Validation { fields, .. }) => {
            let msg = fields.values().cloned().collect::<Vec<_>>().join("；");
            Ok(redirect_with_flash(&back, &msg))
        }
        Err(e) => Err(e.into()),
    }
}
