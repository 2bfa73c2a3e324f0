//! 工作台 (the console's first page): what waits for the user; for a managing unit's manager the
//! live self-check of each unit they manage; for the platform admin open work by flow, overdue
//! tasks and this month against last month.

use axum::{extract::State, response::IntoResponse};
use chrono::Datelike;
use serde_json::json;

use super::{
    AppState,
    page::{Page, PageResult},
    session::SignedIn,
};
use crate::{auth::Permission, money::bookings, statistics};

/// 工作台: what waits for the user, each with the page where it is done.
pub async fn dashboard(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::ConsoleAccess)?;
    let mut todo = Vec::new();
    let mut push = |n: i64, label: &str, href: &str| {
        if n > 0 {
            todo.push(serde_json::json!({"n": n, "label": label, "href": href}));
        }
    };
    let tasks = state.engine.tasks_for(user.id, false).await?.len() as i64;
    push(tasks, "待办任务", "/console/tasks");
    push(
        crate::notify::unread_count(&state.db, user.id).await?,
        "未读消息",
        "/console/notifications",
    );
    if user.can(Permission::BookingHandle) {
        push(
            bookings::count_incoming(&state.db, user.id, "requested").await?,
            "预约待报价",
            "/console/bookings",
        );
        push(
            bookings::count_incoming(&state.db, user.id, "confirmed").await?,
            "服务待登记完成",
            "/console/bookings",
        );
    }
    if user.can(Permission::BookingCreate) {
        push(
            bookings::count_outgoing(&state.db, user.id, "quoted").await?,
            "报价待确认",
            "/console/my-bookings",
        );
    }
    let year = state.clock.today().year() as i64;
    // The live self-check of every managing unit the user manages.
    let mut checks = Vec::new();
    let managed: Vec<_> = user
        .units
        .iter()
        .filter(|m| m.role == "manager" && m.kind == "managing")
        .collect();
    if !managed.is_empty() {
        let (_, policy) = crate::money::current(&state.db).await?;
        for m in managed {
            let c = statistics::self_check(&state.db, &policy, year, m.id).await?;
            checks.push(json!({"unit_id": m.id, "unit_name": m.name, "check": c}));
        }
    }
    // The platform admin's figures.
    let admin = if user.can(Permission::StatsView) {
        let now = state.now();
        let title = |key: &str| {
            state
                .engine
                .definitions
                .get(key)
                .map(|d| d.title.clone())
                .unwrap_or_else(|| key.to_string())
        };
        let pending: Vec<_> = statistics::dashboard::pending_by_flow(&state.db, now)
            .await?
            .into_iter()
            .map(|p| json!({"title": title(&p.workflow_key), "p": p}))
            .collect();
        let overdue: Vec<_> = statistics::dashboard::overdue_tasks(&state.db, now)
            .await?
            .into_iter()
            .map(|t| json!({"title": title(&t.workflow_key), "t": t}))
            .collect();
        let months = statistics::dashboard::month_on_month(&state.db, state.clock.today()).await?;
        // 信息上报: the units that owe the national platform something, most overdue first.
        let reporting: Vec<_> =
            crate::reporting::completeness_by_unit(&state.db, state.clock.today())
                .await?
                .into_iter()
                .filter(|u| {
                    u.instruments_owed + u.service_records_owed + u.service_records_overdue > 0
                })
                .take(10)
                .collect();
        Some(
            json!({"pending": pending, "overdue": overdue, "months": months, "reporting": reporting}),
        )
    } else {
        None
    };
    Ok(Page::new(
        "console/dashboard.html",
        crate::ctx! { todo => todo, checks => checks, admin => admin, year => year },
    )
    .into_response())
}
