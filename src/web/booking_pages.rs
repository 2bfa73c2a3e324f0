//! Booking pages of issue 17: find a free instrument (空闲时段查询) and the class/city week
//! grid, waitlists (我的候补), the cancellation confirmation, check-in at the lab door (QR
//! code), and the managing unit's qualification page (培训资质).

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use chrono::{DateTime, Datelike, Duration, NaiveDate};
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
    auth::Permission,
    catalog,
    error::{AppError, Result},
    instruments,
    money::{
        self,
        bookings::{self, availability, qualifications, waitlist},
    },
};

pub fn routes() -> Vec<Route> {
    use Permission::*;
    let p = Access::Public;
    let s = Access::SignedIn;
    vec![
        Route::get("/availability", p, find_free),
        Route::get("/availability/grid", p, grid),
        Route::post("/instruments/{id}/waitlist", BookingCreate, join),
        Route::get("/console/waitlist", BookingCreate, my_waitlist).nav("我的候补", 101),
        Route::get("/console/waitlist/{id}", BookingCreate, waitlist_entry),
        Route::post(
            "/console/waitlist/{id}/{action}",
            BookingCreate,
            waitlist_act,
        ),
        Route::get("/console/bookings/{id}/cancellation", s, cancel_confirm),
        Route::get("/instruments/{id}/check-in", p, check_in_page),
        Route::get("/instruments/{id}/checkin-qr.svg", p, qr_svg),
        Route::get(
            "/console/instruments/{id}/qualifications",
            s,
            qualifications_page,
        ),
        Route::post(
            "/console/instruments/{id}/qualifications",
            s,
            qualifications_act,
        ),
    ]
}

fn local(ts: i64) -> chrono::DateTime<chrono_tz::Tz> {
    DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .with_timezone(&Shanghai)
}

fn hm(ts: i64) -> String {
    local(ts).format("%H:%M").to_string()
}

#[derive(Deserialize, Default, serde::Serialize, Clone)]
struct FindQuery {
    #[serde(default)]
    category: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    start_time: String,
    #[serde(default)]
    end_time: String,
    #[serde(default)]
    min_minutes: String,
}

fn time_ok(t: &str) -> bool {
    chrono::NaiveTime::parse_from_str(t, "%H:%M").is_ok()
}

/// 空闲时段查询: a day and a time window, a minimum length, a class and a city.
async fn find_free(
    State(state): State<AppState>,
    PageQuery(q): PageQuery<FindQuery>,
) -> PageResult {
    let cities = instruments::cities(&state.db).await?;
    let mut error = None;
    let mut results = Vec::new();
    let searched = !q.date.trim().is_empty();
    if searched {
        let start_time = if q.start_time.is_empty() {
            "08:00"
        } else {
            q.start_time.as_str()
        };
        let end_time = if q.end_time.is_empty() {
            "18:00"
        } else {
            q.end_time.as_str()
        };
        let min = q.min_minutes.trim().parse::<i64>().ok();
        let parsed = if NaiveDate::parse_from_str(q.date.trim(), "%Y-%m-%d").is_err()
            || !time_ok(start_time)
            || !time_ok(end_time)
        {
            Err(AppError::field(
                "date",
                "请选择日期和时间（如 2026-12-08、14:00）",
            ))
        } else {
            availability::parse_window(
                &format!("{}T{start_time}:00+08:00", q.date.trim()),
                &format!("{}T{end_time}:00+08:00", q.date.trim()),
                Some(min.unwrap_or(60)),
            )
        };
        match parsed {
            Ok((from, to, min_minutes)) => {
                let s = availability::Search {
                    category: Some(q.category.clone()),
                    city: Some(q.city.clone()),
                    from,
                    to,
                    min_minutes,
                };
                for a in availability::search(&state.db, &s, state.now())
                    .await?
                    .into_iter()
                    .take(200)
                {
                    results.push(crate::ctx! {
                        id => a.instrument_id, name => a.name, unit_name => a.unit_name, city => a.city,
                        free => a.free.iter().map(|f| crate::ctx!{ start => hm(f.start), end => hm(f.end) }).collect::<Vec<_>>(),
                        first_start => a.free.first().map(|f| hm(f.start)),
                        first_end => a.free.first().map(|f| hm(f.end)),
                    });
                }
            }
            Err(e) => error = refusal(&e).or(Some(e.to_string())),
        }
    }
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(Page::new(
        "portal/availability.html",
        crate::ctx! { q => q, classes => catalog::classes(), cities => cities, results => results,
        searched => searched, error => error },
    )
    .with_status(status)
    .into_response())
}

#[derive(Deserialize, Default, serde::Serialize)]
struct GridQuery {
    #[serde(default)]
    category: String,
    #[serde(default)]
    city: String,
    week: Option<NaiveDate>,
    #[serde(default)]
    page: Option<usize>,
}

const GRID_PAGE: usize = 30;

/// 一周空闲总览: every instrument of a class and city, Monday–Friday, 30-minute cells.
async fn grid(State(state): State<AppState>, PageQuery(q): PageQuery<GridQuery>) -> PageResult {
    let today = state.clock.today();
    let week = q.week.unwrap_or(today);
    if !(2000..=2099).contains(&week.year()) {
        return Err(AppError::field("week", "所选周次超出可查看范围（2000–2099 年）").into());
    }
    let monday = week - Duration::days(i64::from(week.weekday().num_days_from_monday()));
    let at = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(Shanghai).single())
            .map(|t| t.timestamp())
            .unwrap_or(0)
    };
    let s = availability::Search {
        category: Some(q.category.clone()),
        city: Some(q.city.clone()),
        from: at(monday),
        to: at(monday + Duration::days(5)),
        min_minutes: 30,
    };
    let all = availability::week(&state.db, &s, state.now()).await?;
    let total = all.len();
    let pages = total.div_ceil(GRID_PAGE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let days: Vec<NaiveDate> = (0..5).map(|i| monday + Duration::days(i)).collect();
    let hours = availability::Hours::published(&state.db.published);
    let (open, close) = (i64::from(hours.open_hour), i64::from(hours.close_hour));
    let rows: Vec<minijinja::Value> = all
        .into_iter()
        .skip((page - 1) * GRID_PAGE)
        .take(GRID_PAGE)
        .map(|a| {
            let cells: Vec<minijinja::Value> = days
                .iter()
                .map(|d| {
                    let day0 = at(*d);
                    let slots: Vec<bool> = (0..(close - open) * 2)
                        .map(|k| {
                            let t = day0 + open * 3600 + k * 1800;
                            a.free.iter().any(|f| f.start <= t && f.end >= t + 1800)
                        })
                        .collect();
                    let hours = slots.iter().filter(|x| **x).count() as f64 / 2.0;
                    crate::ctx! { date => d.to_string(), slots => slots, hours => format!("{hours}") }
                })
                .collect();
            crate::ctx! { id => a.instrument_id, name => a.name, unit_name => a.unit_name, city => a.city, cells => cells }
        })
        .collect();
    let labels: Vec<String> = days
        .iter()
        .map(|d| {
            let wd = ["一", "二", "三", "四", "五", "六", "日"]
                [d.weekday().num_days_from_monday() as usize];
            format!("{}（周{wd}）", d.format("%m-%d"))
        })
        .collect();
    let cities = instruments::cities(&state.db).await?;
    Ok(Page::new(
        "portal/availability_grid.html",
        crate::ctx! { q => q, classes => catalog::classes(), cities => cities, rows => rows, days => labels,
                      monday => monday.to_string(), prev => (monday - Duration::days(7)).to_string(),
                      next => (monday + Duration::days(7)).to_string(), page => page, pages => pages, total => total,
                      hours => format!("{open:02}:00–{close:02}:00") },
    )
    .into_response())
}

#[derive(Deserialize)]
struct JoinForm {
    #[serde(default)]
    unit_id: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    start_time: String,
    #[serde(default)]
    end_time: String,
}

/// 加入候补 from the booking page.
async fn join(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<JoinForm>,
) -> PageResult {
    user.require(Permission::BookingCreate)?;
    let back = format!("/instruments/{id}/book");
    let result = waitlist::join(
        &state.db,
        &user,
        id,
        form.unit_id.parse().unwrap_or(0),
        &format!("{}T{}:00+08:00", form.date.trim(), form.start_time.trim()),
        &format!("{}T{}:00+08:00", form.date.trim(), form.end_time.trim()),
        state.now(),
    )
    .await;
    match result {
        Ok(_) => Ok(redirect_with_flash(
            "/console/waitlist",
            "已加入候补：该时段空出时将第一时间通知您",
        )),
        Err(e) => match refusal(&e) {
            Some(msg) => Ok(redirect_with_flash(&back, &format!("未能加入候补：{msg}"))),
            None => Err(e.into()),
        },
    }
}

fn entry_ctx(w: &waitlist::Entry, now: i64) -> minijinja::Value {
    crate::ctx! {
        id => w.id, instrument_id => w.instrument_id, instrument_name => w.instrument_name,
        start => local(w.start_at).format("%Y-%m-%d %H:%M").to_string(), end => hm(w.end_at),
        status => w.status, status_label => waitlist::status_label(&w.status),
        open_offer => w.status == "offered" && w.offer_expires_at.is_some_and(|t| t > now),
        expires => w.offer_expires_at.map(|t| local(t).format("%Y-%m-%d %H:%M").to_string()),
        booking_id => w.booking_id,
    }
}

async fn my_waitlist(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::BookingCreate)?;
    let now = state.now();
    let items: Vec<_> = waitlist::mine(&state.db, &user)
        .await?
        .iter()
        .map(|w| entry_ctx(w, now))
        .collect();
    Ok(Page::new("console/waitlist.html", crate::ctx! { items => items }).into_response())
}

async fn waitlist_entry(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    user.require(Permission::BookingCreate)?;
    let w = waitlist::get(&state.db, id).await?;
    if !user.acts_for(w.unit_id, false) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        }
        .into());
    }
    Ok(Page::new(
        "console/waitlist_entry.html",
        crate::ctx! { w => entry_ctx(&w, state.now()) },
    )
    .into_response())
}

#[derive(Deserialize, Default)]
struct PurposeForm {
    #[serde(default)]
    purpose: String,
}

async fn waitlist_act(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath((id, action)): PagePath<(i64, String)>,
    CsrfForm(form): CsrfForm<PurposeForm>,
) -> PageResult {
    user.require(Permission::BookingCreate)?;
    let now = state.now();
    let back = format!("/console/waitlist/{id}");
    let result = match action.as_str() {
        "accept" => waitlist::accept(&state.db, &user, id, Some(&form.purpose), now)
            .await
            .map(|b| format!("已接受候补时段，生成预约 #{b}，请等待管理单位报价后确认")),
        "decline" => {
            let (_, policy) = money::current(&state.db).await?;
            waitlist::decline(
                &state.db,
                &policy.booking,
                &state.mailer,
                &state.config.public_url,
                &user,
                id,
                now,
            )
            .await
            .map(|_| "已放弃该候补".to_string())
        }
        _ => return Err(AppError::NotFound.into()),
    };
    match result {
        Ok(msg) if action == "accept" => Ok(redirect_with_flash("/console/my-bookings", &msg)),
        Ok(msg) => Ok(redirect_with_flash("/console/waitlist", &msg)),
        Err(e) => match refusal(&e) {
            Some(msg) => Ok(redirect_with_flash(&back, &format!("操作未完成：{msg}"))),
            None => Err(e.into()),
        },
    }
}

#[derive(Deserialize, Default)]
struct BackQuery {
    #[serde(default)]
    back: String,
}

/// 取消预约 — what cancelling means, a reason, then the cancel action.
async fn cancel_confirm(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    PageQuery(q): PageQuery<BackQuery>,
) -> PageResult {
    let b = bookings::get(&state.db, id).await?;
    if !(user.acts_for(b.unit_id, false) || user.acts_for(b.managing_unit_id, true)) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        }
        .into());
    }
    let back = if q.back == "incoming" {
        "incoming"
    } else {
        "mine"
    };
    Ok(Page::new(
        "console/booking_cancel.html",
        crate::ctx! { b => b, status_label => bookings::status_label(&b.status), back => back,
        cancellable => ["requested", "quoted", "confirmed"].contains(&b.status.as_str()) },
    )
    .into_response())
}

/// The lab door's page (the QR code points here): today's bookings of the signed-in user on
/// this instrument, with check-in and check-out.
async fn check_in_page(
    State(state): State<AppState>,
    auth: Auth,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let item = instruments::get(&state.db, id).await?;
    let Some(user) = auth.user else {
        return Ok(axum::response::Redirect::to(&format!(
            "/login?next=/instruments/{id}/check-in"
        ))
        .into_response());
    };
    let now = state.now();
    let rows = bookings::list_made(&state.db, user.id).await?;
    let items: Vec<minijinja::Value> = rows
        .into_iter()
        .filter(|r| {
            r.instrument_id == id
                && r.status == "confirmed"
                && r.end_at > now
                && r.start_at < now + 86_400
        })
        .map(|r| {
            crate::ctx! { id => r.id, start => local(r.start_at).format("%Y-%m-%d %H:%M").to_string(),
                          end => hm(r.end_at), can_check_in => now >= r.start_at - bookings::checkin::CHECK_IN_EARLY_MINUTES * 60 }
        })
        .collect();
    Ok(Page::new(
        "portal/check_in.html",
        crate::ctx! { item => item, items => items },
    )
    .into_response())
}

/// The QR code (SVG) of the instrument's check-in page, for the lab door.
async fn qr_svg(State(state): State<AppState>, PagePath(id): PagePath<i64>) -> PageResult {
    let item = instruments::get(&state.db, id).await?;
    let url = format!(
        "{}/instruments/{}/check-in",
        state.config.public_url.trim_end_matches('/'),
        item.id
    );
    let code = qrcode::QrCode::new(url.as_bytes()).map_err(|e| AppError::Internal(e.into()))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        svg,
    )
        .into_response())
}

async fn qualifications_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let item = instruments::get(&state.db, id).await?;
    let list = qualifications::list(&state.db, &user, id).await?;
    let settings = qualifications::settings(&state.db, id).await?;
    Ok(Page::new(
        "console/qualifications.html",
        crate::ctx! { item => item, items => list, settings => settings, today => state.clock.today().to_string() },
    )
    .into_response())
}

#[derive(Deserialize, Default)]
struct QualificationForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    expires_on: String,
    #[serde(default)]
    requires_qualification: String,
    #[serde(default)]
    multi_day: String,
}

async fn qualifications_act(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<QualificationForm>,
) -> PageResult {
    let back = format!("/console/instruments/{id}/qualifications");
    let now = state.now();
    qualifications::ensure_manages(&state.db, &user, id).await?;
    let result: Result<String> = match form.action.as_str() {
        "settings" => {
            async {
                qualifications::set_required(
                    &state.db,
                    &user,
                    id,
                    form.requires_qualification == "1",
                    now,
                )
                .await?;
                qualifications::set_multi_day(&state.db, &user, id, form.multi_day == "1", now)
                    .await?;
                Ok("预约设置已保存".to_string())
            }
            .await
        }
        "grant" => {
            async {
                let Some(uid) =
                    crate::auth::user_id_by_username(&state.db, form.username.trim()).await?
                else {
                    return Err(AppError::field("username", "没有这个用户名"));
                };
                let q = qualifications::grant(
                    &state.db,
                    &user,
                    id,
                    uid,
                    &form.expires_on,
                    state.clock.today(),
                    now,
                )
                .await?;
                Ok(format!(
                    "已登记 {} 的使用资质，有效期至 {}",
                    q.display_name, q.expires_on
                ))
            }
            .await
        }
        _ => Err(AppError::field("action", "未知操作")),
    };
    match result {
        Ok(msg) => Ok(redirect_with_flash(&back, &msg)),
        Err(e) => match refusal(&e) {
            Some(msg) => Ok(redirect_with_flash(&back, &format!("操作未完成：{msg}"))),
            None => Err(e.into()),
        },
    }
}
