//! Booking pages (预约): the instrument's week calendar and booking form on the portal, the
//! booking unit's 我的预约 and 创新券 pages, the managing unit's 预约管理, and ICS feeds.

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Weekday};
use chrono_tz::Asia::Shanghai;
use serde::Deserialize;

use super::{
    AppState,
    extract::{CsrfForm, PagePath, PageQuery},
    page::{Page, PageResult, redirect_with_flash, refusal},
    routes::{Access, Route},
    session::{Auth, SignedIn},
};
use crate::{
    auth::{CurrentUser, Permission},
    domain::Yuan,
    error::{AppError, Result},
    instruments,
    money::{self, bookings, vouchers},
};

/// Booking pages, calendars and the voucher pages.
pub fn routes() -> Vec<Route> {
    use Permission::*;
    let p = Access::Public;
    vec![
        Route::get("/instruments/{id}/book", p, book_page),
        Route::post("/instruments/{id}/book", BookingCreate, book),
        Route::get("/instruments/{id}/calendar.ics", p, instrument_ics),
        Route::get("/console/my-bookings", BookingCreate, my_bookings).nav("我的预约", 100),
        Route::post(
            "/console/my-bookings/calendar",
            BookingCreate,
            regenerate_calendar,
        ),
        // The file name carries the calendar's secret token.
        Route::get("/calendar/{file}", p, personal_ics),
        Route::get("/console/bookings", BookingHandle, incoming).nav("预约管理", 80),
        // The action decides: quoting and completing are the provider's, confirming the booker's.
        Route::post("/console/bookings/{id}/{action}", Access::SignedIn, act),
        Route::get("/console/vouchers", VoucherApply, my_vouchers).nav("创新券", 110),
        Route::get("/console/voucher-admin", VoucherManage, voucher_admin).nav("创新券管理", 200),
    ]
}

#[derive(Deserialize, Default)]
struct WeekQuery {
    week: Option<NaiveDate>,
    /// Prefill from the availability search.
    #[serde(default)]
    date: String,
    #[serde(default)]
    start_time: String,
    #[serde(default)]
    end_time: String,
}

/// A Monday–Friday (plus adjusted working weekend days) × opening-hours grid of 30-minute cells: free, busy, closed or past.
async fn week_grid(
    state: &AppState,
    instrument: i64,
    monday: NaiveDate,
) -> Result<serde_json::Value> {
    let start = Shanghai
        .from_local_datetime(&monday.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map(|t| t.timestamp())
        .unwrap_or(0);
    let busy = bookings::busy(&state.db, instrument, start, start + 7 * 86_400).await?;
    let now = state.now();
    // The published calendar and opening hours (工作日历, 平台配置); a weekend day that is a
    // working day this week (调休上班) gets its column.
    let cal = state.db.published.calendar();
    let settings = state.db.published.settings();
    let days: Vec<NaiveDate> = (0..7)
        .map(|i| monday + Duration::days(i))
        .filter(|d| d.weekday().num_days_from_monday() < 5 || cal.is_working_day(*d))
        .collect();
    let mut rows = Vec::new();
    let (open, close) = (settings.booking_open_hour, settings.booking_close_hour);
    for slot in 0..(close.saturating_sub(open) * 2) {
        let (h, m) = (open + slot / 2, (slot % 2) * 30);
        let cells: Vec<&str> = days
            .iter()
            .map(|d| {
                let t = Shanghai
                    .from_local_datetime(&d.and_hms_opt(h, m, 0).unwrap_or_default())
                    .single()
                    .map(|t| t.timestamp())
                    .unwrap_or(0);
                if !cal.is_working_day(*d) {
                    "closed"
                } else if t < now + 3600 {
                    "past"
                } else if busy.iter().any(|(s, e)| *s < t + 1800 && *e > t) {
                    "busy"
                } else {
                    "free"
                }
            })
            .collect();
        rows.push(serde_json::json!({"time": format!("{h:02}:{m:02}"), "cells": cells}));
    }
    let labels: Vec<String> = days
        .iter()
        .map(|d| {
            let wd = ["一", "二", "三", "四", "五", "六", "日"]
                [d.weekday().num_days_from_monday() as usize];
            format!("{}（周{wd}）", d.format("%m-%d"))
        })
        .collect();
    Ok(serde_json::json!({
        "monday": monday.to_string(), "days": labels, "rows": rows,
        "prev": (monday - Duration::days(7)).to_string(), "next": (monday + Duration::days(7)).to_string(),
    }))
}

/// Dates a booking page may show: week arithmetic (±7 days, the grid's timestamps) stays far
/// from chrono's limits, so a forged `?week=+262142-12-31` is a clear 422, not an overflow.
fn bookable_date(d: NaiveDate) -> bool {
    (2000..=2099).contains(&d.year())
}

/// The Monday of `d`'s week.
fn monday_of(d: NaiveDate) -> NaiveDate {
    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
}

fn this_monday(state: &AppState) -> NaiveDate {
    let today = state.clock.today();
    let mut d = today;
    while d.weekday() != Weekday::Mon {
        d = d.pred_opt().unwrap_or(d);
    }
    d
}

async fn my_units_for_booking(
    state: &AppState,
    user: &CurrentUser,
) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    for m in &user.units {
        let status = crate::units::certification_status(&state.db, m.id).await?;
        out.push(
            serde_json::json!({"id": m.id, "name": m.name, "certified": status == "certified"}),
        );
    }
    Ok(out)
}

async fn book_page(
    State(state): State<AppState>,
    auth: Auth,
    PagePath(id): PagePath<i64>,
    PageQuery(q): PageQuery<WeekQuery>,
) -> PageResult {
    let item = instruments::get(&state.db, id).await?;
    if item.review_status != "approved" {
        return Err(AppError::NotFound.into());
    }
    let week = q.week.unwrap_or_else(|| this_monday(&state));
    if !bookable_date(week) {
        return Err(AppError::field("week", "所选周次超出可查看范围（2000–2099 年）").into());
    }
    let grid = week_grid(&state, id, monday_of(week)).await?;
    let monday = monday_of(week);
    let units = match &auth.user {
        Some(u) => my_units_for_booking(&state, u).await?,
        None => vec![],
    };
    let settings = bookings::qualifications::settings(&state.db, id).await?;
    let date = NaiveDate::parse_from_str(q.date.trim(), "%Y-%m-%d")
        .ok()
        .filter(|d| bookable_date(*d))
        .unwrap_or(monday);
    Ok(Page::new(
        "portal/book.html",
        crate::ctx! { item => item, grid => grid, units => units, settings => settings,
                      form => crate::ctx!{ date => date.to_string(), start_time => q.start_time, end_time => q.end_time },
                      errors => crate::ctx!{} },
    )
    .into_response())
}

#[derive(Deserialize, Clone, serde::Serialize)]
struct BookForm {
    #[serde(default)]
    unit_id: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    start_time: String,
    #[serde(default)]
    end_time: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    sample_info: String,
    /// A multi-day booking's last day (instruments that allow them).
    #[serde(default)]
    end_date: Option<String>,
    /// 每周重复：how many weeks (1 = once).
    #[serde(default)]
    repeat_weeks: String,
    /// "1": a training request (培训申请) for an instrument that requires a qualification.
    #[serde(default)]
    training: String,
}

fn local_rfc3339(date: &str, time: &str) -> String {
    format!("{}T{}:00+08:00", date.trim(), time.trim())
}

async fn book(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<BookForm>,
) -> PageResult {
    user.require(Permission::BookingCreate)?;
    let item = instruments::get(&state.db, id).await?;
    let unit_id = form.unit_id.parse::<i64>().unwrap_or(0);
    let new = bookings::NewBooking {
        instrument_id: id,
        unit_id,
        start: local_rfc3339(&form.date, &form.start_time),
        end: local_rfc3339(&form.date, &form.end_time),
        purpose: form.purpose.clone(),
        sample_info: form.sample_info.clone(),
        repeat: None,
    };
    let new = match form
        .end_date
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        Some(end_date) => bookings::NewBooking {
            end: local_rfc3339(end_date, &form.end_time),
            ..new
        },
        None => new,
    };
    let weeks = form.repeat_weeks.trim().parse::<i64>().unwrap_or(1);
    let result = if weeks > 1 || form.training == "1" {
        let how = bookings::Placement {
            training: form.training == "1",
            ..Default::default()
        };
        if how.training {
            bookings::create_as(&state.db, &user, new, state.now(), how)
                .await
                .map(|_| "培训申请已提交，请等待仪器管理单位确认".to_string())
        } else {
            bookings::repeats::create_weekly(
                &state.db,
                &user,
                new,
                bookings::repeats::Repeat { weekly: weeks },
                state.now(),
            )
            .await
            .map(|out| {
                let mut msg = format!("已提交 {} 个每周重复预约", out.created.len());
                for s in &out.skipped {
                    msg.push_str(&format!("；{} 未预约：{}", &s.start[..10], s.reason));
                }
                msg
            })
        }
    } else {
        bookings::create(&state.db, &user, new, state.now())
            .await
            .map(|_| "预约申请已提交，请等待仪器管理单位报价（议价）后确认".to_string())
    };
    let errors = match result {
        Ok(msg) => {
            return Ok(redirect_with_flash("/console/my-bookings", &msg));
        }
        Err(AppError::Validation { fields, .. }) => fields,
        Err(
            e @ (AppError::Conflict { .. }
            | AppError::Unprocessable { .. }
            | AppError::Forbidden { .. }),
        ) => [("start".to_string(), e.to_string())].into(),
        Err(e) => return Err(e.into()),
    };
    let date = NaiveDate::parse_from_str(form.date.trim(), "%Y-%m-%d")
        .ok()
        .filter(|d| bookable_date(*d))
        .unwrap_or_else(|| this_monday(&state));
    let monday = monday_of(date);
    let grid = week_grid(&state, id, monday).await?;
    let units = my_units_for_booking(&state, &user).await?;
    let settings = bookings::qualifications::settings(&state.db, id).await?;
    Ok(Page::new(
        "portal/book.html",
        crate::ctx! { item => item, grid => grid, units => units, form => form, errors => errors, settings => settings },
    )
    .with_status(StatusCode::UNPROCESSABLE_ENTITY)
    .into_response())
}

fn booking_rows(rows: Vec<bookings::BookingListRow>) -> Vec<serde_json::Value> {
    rows.into_iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id, "instrument_id": r.instrument_id,
                "instrument_name": r.instrument_name, "unit_name": r.unit_name,
                "owner_name": r.owner_name,
                "start": crate::clock::display(r.start_at), "end": crate::clock::display(r.end_at).chars().skip(11).collect::<String>(),
                "purpose": r.purpose, "status_label": bookings::status_label(&r.status), "status": r.status,
                "price": r.price_fen.map(Yuan::from_fen),
                "max_voucher": r.price_fen.map(|p| Yuan::from_fen(p * 40 / 100)),
                "voucher": Yuan::from_fen(r.voucher_fen),
                "customs": r.customs_supervised,
                "cancel_reason": r.cancel_reason,
                "rating": r.rating,
                "testing": r.kind == "testing",
                "service_name": r.service_name,
                "sample_count": r.sample_count,
                "has_report": r.report_upload_id.is_some(),
                "training": r.kind == "training",
                "checked_in": r.checked_in_at.map(crate::clock::display),
                "checked_out": r.checked_out_at.map(crate::clock::display),
            })
        })
        .collect()
}

async fn my_bookings(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::BookingCreate)?;
    render_my_bookings(&state, &user, crate::ctx! {}).await
}

/// 我的预约, with the personal calendar feed's state (`calendar` adds to it).
async fn render_my_bookings(
    state: &AppState,
    user: &CurrentUser,
    calendar: minijinja::Value,
) -> PageResult {
    let rows = bookings::list_made(&state.db, user.id).await?;
    let feed_since = crate::feeds::created_at(&state.db, user.id).await?;
    Ok(Page::new(
        "console/my_bookings.html",
        crate::ctx! { items => booking_rows(rows),
                      calendar => minijinja::context! { since => feed_since, handles => user.can(Permission::BookingHandle), ..calendar } },
    )
    .into_response())
}

#[derive(Deserialize)]
struct CalendarForm {
    #[serde(default)]
    confirmed: String,
}

/// 生成 / 重新生成 the personal calendar URL. Replacing an existing one first asks for
/// confirmation; the new URL is shown once, on this response (only its hash is kept).
async fn regenerate_calendar(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<CalendarForm>,
) -> PageResult {
    user.require(Permission::BookingCreate)?;
    let exists = crate::feeds::created_at(&state.db, user.id)
        .await?
        .is_some();
    if exists && form.confirmed != "1" {
        return render_my_bookings(&state, &user, crate::ctx! { confirm => true }).await;
    }
    let token = crate::feeds::regenerate(&state.db, user.id, state.now()).await?;
    let url = format!(
        "{}/calendar/{token}.ics",
        state.config.public_url.trim_end_matches('/')
    );
    render_my_bookings(
        &state,
        &user,
        crate::ctx! { url => url, regenerated => exists },
    )
    .await
}

/// `/calendar/{token}.ics`: the personal feed; an unknown or replaced token is 404.
async fn personal_ics(
    State(state): State<AppState>,
    PagePath(file): PagePath<String>,
) -> PageResult {
    let Some(token) = file.strip_suffix(".ics") else {
        return Err(AppError::NotFound.into());
    };
    let Some((user_id, name)) = crate::feeds::user_for(&state.db, token).await? else {
        return Err(AppError::NotFound.into());
    };
    let ics = crate::feeds::ics(&state.db, user_id, &name, state.now()).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
            (header::HeaderName::from_static("x-robots-tag"), "noindex"),
        ],
        ics,
    )
        .into_response())
}

async fn incoming(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::BookingHandle)?;
    let rows = bookings::list_incoming(&state.db, user.id).await?;
    Ok(Page::new(
        "console/bookings.html",
        crate::ctx! { items => booking_rows(rows) },
    )
    .into_response())
}

#[derive(Deserialize)]
struct ActForm {
    #[serde(default)]
    price: String,
    #[serde(default)]
    voucher_amount: String,
    #[serde(default)]
    customs_notice_no: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
    #[serde(default)]
    rating: String,
}

async fn act(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath((id, action)): PagePath<(i64, String)>,
    CsrfForm(form): CsrfForm<ActForm>,
) -> PageResult {
    let back = if form.back == "incoming" {
        "/console/bookings"
    } else {
        "/console/my-bookings"
    };
    let now = state.now();
    let result = match action.as_str() {
        "quote" => match Yuan::parse(&form.price) {
            Ok(price) => {
                user.require(Permission::BookingHandle)?;
                bookings::quote(&state.db, &user, id, price, now)
                    .await
                    .map(|_| "已报价，等待对方确认".to_string())
            }
            Err(msg) => Err(AppError::field("price", msg)),
        },
        "confirm" => {
            user.require(Permission::BookingCreate)?;
            let voucher = if form.voucher_amount.trim().is_empty() {
                Ok(Yuan::ZERO)
            } else {
                Yuan::parse(&form.voucher_amount)
            };
            match voucher {
                Ok(v) => {
                    let (_, policy) = money::current(&state.db).await?;
                    let notice =
                        Some(form.customs_notice_no.as_str()).filter(|s| !s.trim().is_empty());
                    bookings::confirm(&state.db, &policy, &user, id, v, notice, now)
                        .await
                        .map(|_| format!("预约已确认，使用创新券 {v} 元"))
                }
                Err(msg) => Err(AppError::field("voucher_amount", msg)),
            }
        }
        "check-in" => {
            user.require(Permission::BookingCreate)?;
            bookings::checkin::check_in(&state.db, &user, id, now)
                .await
                .map(|_| "已签到，祝实验顺利".to_string())
        }
        "check-out" => {
            user.require(Permission::BookingCreate)?;
            bookings::checkin::check_out(&state.db, &user, id, now)
                .await
                .map(|_| "已签退，实际使用机时已记录".to_string())
        }
        "confirm-training" => {
            user.require(Permission::BookingHandle)?;
            bookings::qualifications::confirm_training(&state.db, &user, id, now)
                .await
                .map(|_| "培训预约已确认".to_string())
        }
        "complete" => {
            user.require(Permission::BookingHandle)?;
            bookings::complete(&state.db, &user, id, now)
                .await
                .map(|(_, order)| format!("服务已完成，服务记录单号 {order}"))
        }
        "cancel" => bookings::waitlist::cancel_and_offer(
            &state.db,
            &state.mailer,
            &state.config.public_url,
            &user,
            id,
            &form.reason,
            now,
        )
        .await
        .map(|_| "预约已取消".to_string()),
        "rate" => bookings::rate(&state.db, &user, id, &form.rating, &form.reason)
            .await
            .map(|_| "感谢您的评价".to_string()),
        _ => return Err(AppError::NotFound.into()),
    };
    match result {
        Ok(msg) => Ok(redirect_with_flash(back, &msg)),
        Err(e) => match refusal(&e) {
            Some(msg) => Ok(redirect_with_flash(back, &format!("操作未完成：{msg}"))),
            None => Err(e.into()),
        },
    }
}

#[derive(Deserialize, Default)]
struct YearQuery {
    year: Option<i64>,
}

async fn my_vouchers(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<YearQuery>,
) -> PageResult {
    user.require(Permission::VoucherApply)?;
    let year = q
        .year
        .unwrap_or_else(|| state.clock.today().year() as i64)
        .clamp(2000, 2100);
    let mut accounts = Vec::new();
    for m in &user.units {
        let balance = vouchers::balance(&state.db, m.id, year).await?;
        let ledger = vouchers::ledger(&state.db, m.id, year).await?;
        accounts.push(serde_json::json!({"unit": m, "balance": balance, "ledger": ledger}));
    }
    Ok(Page::new(
        "console/vouchers.html",
        crate::ctx! { year => year, accounts => accounts },
    )
    .into_response())
}

/// Busy slots of an instrument as an iCalendar feed (no personal data).
async fn instrument_ics(State(state): State<AppState>, PagePath(id): PagePath<i64>) -> PageResult {
    let item = instruments::get(&state.db, id).await?;
    if item.review_status != "approved" {
        return Err(AppError::NotFound.into());
    }
    let now = state.now();
    let slots = bookings::busy(&state.db, id, now - 30 * 86_400, now + 120 * 86_400).await?;
    let ics = crate::feeds::instrument_calendar(id, &item.name, &slots, now);
    Ok((
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        ics,
    )
        .into_response())
}

/// 创新券管理: a year's vouchers granted, in use and redeemed, the applications and the
/// redemptions, for the platform admin.
async fn voucher_admin(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<YearQuery>,
) -> PageResult {
    user.require(Permission::VoucherManage)?;
    let year = q
        .year
        .unwrap_or_else(|| state.clock.today().year() as i64)
        .clamp(2000, 2100);
    let sum = |kind: &'static str| vouchers::year_total(&state.db, year, kind);
    let (granted, reserved, released, redeemed, expired) = (
        sum("grant").await?,
        sum("reserve").await?,
        sum("release").await?,
        sum("redeem").await?,
        sum("expire").await?,
    );
    let applications = vouchers::applications(&state.db, year)
        .await?
        .into_iter()
        .map(|a| serde_json::json!({
            "id": a.id, "unit": a.unit_name,
            "enterprise_type": crate::units::ENTERPRISE_TYPES.iter().find(|(k, _)| *k == a.enterprise_type).map(|(_, l)| *l).unwrap_or(""),
            "status": a.status, "instance_id": a.instance_id,
            "created_at": a.created_at,
        }))
        .collect::<Vec<_>>();
    let redemptions = money::redemptions::recent(&state.db, 200)
        .await?
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id, "unit": r.unit_name, "status": r.status,
                "total": Yuan::from_fen(r.total_fen), "instance_id": r.instance_id,
                "created_at": r.created_at,
            })
        })
        .collect::<Vec<_>>();
    Ok(Page::new(
        "console/voucher_admin.html",
        crate::ctx! {
            year => year,
            figures => crate::ctx! {
                granted => Yuan::from_fen(granted), in_use => Yuan::from_fen(reserved - released - redeemed),
                redeemed => Yuan::from_fen(redeemed), expired => Yuan::from_fen(expired),
            },
            applications => applications, redemptions => redemptions,
        },
    )
    .into_response())
}
