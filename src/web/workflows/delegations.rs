//! 委托代理: a user names a deputy for a period (their new tasks go to the deputy) and ends
//! it early; both sides see the delegations they are part of.

#[allow(unused_imports)]
use super::*;

use chrono::{NaiveDate, TimeZone};

#[derive(Deserialize, Serialize, Default, Clone)]
pub(super) struct DelegationForm {
    #[serde(default)]
    deputy: String,
    #[serde(default)]
    starts_on: String,
    #[serde(default)]
    ends_on: String,
    #[serde(default)]
    reason: String,
}

/// Midnight at the start of `d` in Asia/Shanghai.
fn day_start(d: NaiveDate) -> i64 {
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .filter(|d| (2000..=2099).contains(&chrono::Datelike::year(d)))
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    form: DelegationForm,
    errors: crate::error::FieldErrors,
    status: StatusCode,
) -> Result<Response> {
    let now = state.now();
    let rows: Vec<Value> = workflow::delegations_of(&state.db, user.id)
        .await?
        .into_iter()
        .map(|d| {
            let status = if d.ended_at.is_some() {
                "已结束"
            } else if d.active_at(now) {
                "生效中"
            } else if d.starts_at > now {
                "未开始"
            } else {
                "已到期"
            };
            json!({"id": d.id, "mine": d.user_id == user.id, "user": d.user_name, "deputy": d.deputy_name,
                "from": workflow::chinese_datetime(d.starts_at), "to": workflow::chinese_datetime(d.ends_at),
                "reason": d.reason, "status": status, "can_end": d.user_id == user.id && d.ended_at.is_none() && d.ends_at > now})
        })
        .collect();
    Ok(Page::new(
        "console/delegations.html",
        crate::ctx! { delegations => rows, form => form, errors => errors },
    )
    .with_status(status)
    .into_response())
}

pub(super) async fn delegations_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
) -> PageResult {
    let today = state.engine.now();
    let today = chrono_tz::Asia::Shanghai
        .timestamp_opt(today, 0)
        .single()
        .map(|t| t.date_naive().to_string())
        .unwrap_or_default();
    let form = DelegationForm {
        starts_on: today.clone(),
        ends_on: today,
        ..Default::default()
    };
    Ok(page(&state, &user, form, Default::default(), StatusCode::OK).await?)
}

pub(super) async fn create(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<DelegationForm>,
) -> PageResult {
    let mut errors = crate::error::FieldErrors::new();
    let starts = parse_day(&form.starts_on);
    let ends = parse_day(&form.ends_on);
    if starts.is_none() {
        errors.insert("starts_on".into(), "请填写开始日期（如 2026-12-01）".into());
    }
    if ends.is_none() {
        errors.insert("ends_on".into(), "请填写结束日期（如 2026-12-05）".into());
    }
    if form.deputy.trim().is_empty() {
        errors.insert("deputy".into(), "请填写代理人的用户名".into());
    }
    if let (Some(s), Some(e), true) = (starts, ends, errors.is_empty()) {
        // The end date is included: the delegation runs until midnight after it.
        let ends_at = day_start(e.succ_opt().unwrap_or(e));
        match workflow::create_delegation(
            &state.db,
            user.id,
            &form.deputy,
            day_start(s),
            ends_at,
            &form.reason,
            state.now(),
        )
        .await
        {
            Ok(_) => {
                return Ok(redirect_with_flash(
                    "/console/delegations",
                    &format!(
                        "已委托 {} 代为审批，期间新的待办将交给代理人",
                        form.deputy.trim()
                    ),
                ));
            }
            Err(AppError::Validation { fields, .. }) => errors.extend(fields),
            Err(AppError::Conflict { message, .. }) => {
                errors.insert("starts_on".into(), message);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(page(
        &state,
        &user,
        form,
        errors,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await?)
}

pub(super) async fn end(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<Value>,
) -> PageResult {
    match workflow::end_delegation(&state.db, user.id, id, state.now()).await {
        Ok(()) => Ok(redirect_with_flash(
            "/console/delegations",
            "委托已结束，新的待办将交还给您本人",
        )),
        Err(AppError::NotFound) => Ok(redirect_with_flash(
            "/console/delegations",
            "该委托不存在或已结束",
        )),
        Err(e) => Err(e.into()),
    }
}
