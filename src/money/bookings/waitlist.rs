//! Waitlists (候补): a unit joins for a taken slot; when the slot is released (a cancellation
//! or a no-show) the first waiter is offered it — a notification and a mail — and the slot is
//! held for them for the policy's `offer_minutes`, then offered to the next. Accepting books
//! it through the same guarded insert as every booking, so only one waiter can ever win.

use chrono::DateTime;
use chrono_tz::Asia::Shanghai;
use serde::Serialize;

use super::{BookingRules, NewBooking, Placement, create_as};
use crate::{
    auth::CurrentUser,
    error::{AppError, Result},
    mail::Mailer,
    notify,
    store::{Backend, Db},
};

/// A waitlist entry.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Entry {
    pub id: i64,
    pub instrument_id: i64,
    pub instrument_name: String,
    pub unit_id: i64,
    pub user_id: i64,
    pub start_at: i64,
    pub end_at: i64,
    pub status: String,
    pub offer_expires_at: Option<i64>,
    pub booking_id: Option<i64>,
}

pub fn status_label(s: &str) -> &'static str {
    match s {
        "waiting" => "候补中",
        "offered" => "待接受",
        "accepted" => "已转为预约",
        "expired" => "已过期",
        "declined" => "已放弃",
        "cancelled" => "已退出",
        _ => "未知",
    }
}

pub(crate) fn offer_gone() -> AppError {
    AppError::conflict("offer_expired", "该候补时段的保留期已过或已被他人接受")
}

const SELECT: &str = "SELECT w.id, w.instrument_id, i.name AS instrument_name, w.unit_id, w.user_id, \
     w.start_at, w.end_at, w.status, w.offer_expires_at, w.booking_id \
     FROM booking_waitlist w JOIN instruments i ON i.id = w.instrument_id";

pub async fn get(db: &Db, id: i64) -> Result<Entry> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE w.id = $1")))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)
}

/// The entries of the units the user acts for, newest first.
pub async fn mine(db: &Db, user: &CurrentUser) -> Result<Vec<Entry>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE w.unit_id IN (SELECT unit_id FROM unit_members WHERE user_id = $1) \
         ORDER BY w.id DESC LIMIT 100"
    )))
    .bind(user.id)
    .fetch_all(&db.pool)
    .await?)
}

fn parse(raw: &str, field: &str) -> Result<i64> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.timestamp())
        .map_err(|_| {
            AppError::field(
                field,
                "时间格式应为 RFC 3339，例如 2026-12-08T14:00:00+08:00",
            )
        })
}

/// Join the waitlist for a taken slot; returns the entry.
pub async fn join(
    db: &Db,
    user: &CurrentUser,
    instrument_id: i64,
    unit_id: i64,
    start: &str,
    end: &str,
    now: i64,
) -> Result<Entry> {
    if !user.acts_for(unit_id, false) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    let (s, e) = (parse(start, "start")?, parse(end, "end")?);
    if e <= s {
        return Err(AppError::field("end", "结束时间必须晚于开始时间"));
    }
    if s <= now {
        return Err(AppError::field("start", "该时段已开始，不能候补"));
    }
    let mut tx = db.begin_write().await?;
    let approved: Option<String> =
        sqlx::query_scalar("SELECT review_status FROM instruments WHERE id = $1")
            .bind(instrument_id)
            .fetch_optional(&mut *tx)
            .await?;
    match approved.as_deref() {
        None => return Err(AppError::NotFound),
        Some("approved") => {}
        Some(_) => {
            return Err(AppError::field(
                "instrument_id",
                "该仪器尚未通过入网审核，不能预约",
            ));
        }
    }
    super::checkin::ensure_not_suspended(&mut tx, unit_id, now).await?;
    let taken: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM bookings WHERE instrument_id = $1 AND live = 1 AND start_at < $3 AND end_at > $2 LIMIT 1",
    )
    .bind(instrument_id)
    .bind(s)
    .bind(e)
    .fetch_optional(&mut *tx)
    .await?;
    if taken.is_none() {
        return Err(AppError::unprocessable(
            "slot_free",
            "该时段尚未被预约，可以直接预约",
        ));
    }
    let dup: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM booking_waitlist WHERE instrument_id = $1 AND unit_id = $2 AND start_at = $3 \
         AND end_at = $4 AND status IN ('waiting', 'offered')",
    )
    .bind(instrument_id)
    .bind(unit_id)
    .bind(s)
    .bind(e)
    .fetch_optional(&mut *tx)
    .await?;
    if dup.is_some() {
        return Err(AppError::conflict(
            "already_waiting",
            "本单位已在该时段的候补名单中",
        ));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO booking_waitlist (instrument_id, unit_id, user_id, start_at, end_at, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'waiting', $6, $6) RETURNING id",
    )
    .bind(instrument_id)
    .bind(unit_id)
    .bind(user.id)
    .bind(s)
    .bind(e)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    get(db, id).await
}

fn local(ts: i64) -> String {
    DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .with_timezone(&Shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Offer released slots of the instrument to the first waiter each: a waiting entry whose
/// slot is free of live bookings and of other held offers. Returns how many were offered.
pub async fn offer_released(
    db: &Db,
    rules: &BookingRules,
    mailer: &Mailer,
    public_url: &str,
    instrument_id: i64,
    now: i64,
) -> Result<usize> {
    let mut tx = db.begin_write().await?;
    if db.backend == Backend::Postgres {
        // One offering pass per instrument at a time, across nodes.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("waitlist:{instrument_id}"))
            .execute(&mut *tx)
            .await?;
    }
    let waiting: Vec<(i64, i64, i64, i64, String)> = sqlx::query_as(
        "SELECT w.id, w.user_id, w.start_at, w.end_at, i.name FROM booking_waitlist w \
         JOIN instruments i ON i.id = w.instrument_id \
         WHERE w.instrument_id = $1 AND w.status = 'waiting' AND w.start_at > $2 \
         AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.instrument_id = w.instrument_id AND b.live = 1 \
           AND b.start_at < w.end_at AND b.end_at > w.start_at) \
         ORDER BY w.id LIMIT 200",
    )
    .bind(instrument_id)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let mut offered = 0;
    for (id, user_id, s, e, name) in waiting {
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM booking_waitlist WHERE instrument_id = $1 AND status = 'offered' \
             AND offer_expires_at > $2 AND start_at < $4 AND end_at > $3 LIMIT 1",
        )
        .bind(instrument_id)
        .bind(now)
        .bind(s)
        .bind(e)
        .fetch_optional(&mut *tx)
        .await?;
        if held.is_some() {
            continue;
        }
        // The hold never outlasts the slot's start.
        let until = (now + rules.offer_minutes * 60).min(s);
        let n = sqlx::query(
            "UPDATE booking_waitlist SET status = 'offered', offered_at = $1, offer_expires_at = $2, updated_at = $1 \
             WHERE id = $3 AND status = 'waiting'",
        )
        .bind(now)
        .bind(until)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            continue;
        }
        offered += 1;
        notify::notify(
            &mut tx,
            mailer,
            public_url,
            user_id,
            &notify::Notice {
                kind: "assigned",
                title: format!("候补时段已空出：{name} {}", local(s)),
                body: format!(
                    "您候补的 {name} {} – {} 时段已空出，为您保留至 {}。请在此之前接受，逾期将顺延给下一位候补。",
                    local(s),
                    local(e),
                    local(until)
                ),
                link: format!("/console/waitlist/{id}"),
            },
            None,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(offered)
}

/// Expire lapsed offers and waits for slots that have begun, then offer what is free again on
/// every instrument with waiters. Returns (expired offers, new offers).
pub async fn process(
    db: &Db,
    rules: &BookingRules,
    mailer: &Mailer,
    public_url: &str,
    now: i64,
) -> Result<(u64, usize)> {
    let mut tx = db.begin_write().await?;
    let expired = sqlx::query(
        "UPDATE booking_waitlist SET status = 'expired', updated_at = $1 \
         WHERE (status = 'offered' AND offer_expires_at <= $1) OR (status = 'waiting' AND start_at <= $1)",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    let instruments: Vec<(i64,)> = sqlx::query_as(
        "SELECT DISTINCT instrument_id FROM booking_waitlist WHERE status = 'waiting' ORDER BY instrument_id",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut offered = 0;
    for (id,) in instruments {
        offered += offer_released(db, rules, mailer, public_url, id, now).await?;
    }
    Ok((expired, offered))
}

/// The waiter accepts the offer: the slot is booked for their unit (a booking request like
/// any other, then quoted and confirmed as usual). Returns the booking's id.
pub async fn accept(
    db: &Db,
    user: &CurrentUser,
    id: i64,
    purpose: Option<&str>,
    now: i64,
) -> Result<i64> {
    let w = get(db, id).await?;
    if !user.acts_for(w.unit_id, false) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    if w.status != "offered" || w.offer_expires_at.is_none_or(|t| t <= now) {
        return Err(match w.status.as_str() {
            "offered" | "accepted" | "expired" => offer_gone(),
            s => AppError::conflict(
                "invalid_state",
                format!("候补当前状态为“{}”，不能接受", status_label(s)),
            ),
        });
    }
    let new = NewBooking {
        instrument_id: w.instrument_id,
        unit_id: w.unit_id,
        start: crate::clock::rfc3339(w.start_at),
        end: crate::clock::rfc3339(w.end_at),
        purpose: purpose
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .unwrap_or("候补转预约")
            .to_string(),
        sample_info: String::new(),
        repeat: None,
    };
    let how = Placement {
        waitlist_id: Some(id),
        ..Placement::default()
    };
    match create_as(db, user, new, now, how).await {
        // The held slot went to someone else after all: the offer is over.
        Err(AppError::Conflict {
            code: "slot_taken", ..
        }) => Err(offer_gone()),
        other => other,
    }
}

/// The waiter gives up (an offer or the wait); an offered slot goes to the next waiter.
pub async fn decline(
    db: &Db,
    rules: &BookingRules,
    mailer: &Mailer,
    public_url: &str,
    user: &CurrentUser,
    id: i64,
    now: i64,
) -> Result<()> {
    let w = get(db, id).await?;
    if !user.acts_for(w.unit_id, false) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    let to = if w.status == "offered" {
        "declined"
    } else {
        "cancelled"
    };
    let mut tx = db.begin_write().await?;
    let n = sqlx::query(
        "UPDATE booking_waitlist SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4 \
         AND status IN ('waiting', 'offered')",
    )
    .bind(to)
    .bind(now)
    .bind(id)
    .bind(&w.status)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if n == 0 {
        return Err(AppError::conflict(
            "invalid_state",
            format!("候补当前状态为“{}”，不能放弃", status_label(&w.status)),
        ));
    }
    if to == "declined" {
        offer_released(db, rules, mailer, public_url, w.instrument_id, now).await?;
    }
    Ok(())
}

/// Cancel a booking (see [`super::cancel`]) and offer its slot to the first waiter. The
/// cancellation stands even if offering fails: the `booking-no-shows` job offers it then.
#[allow(clippy::too_many_arguments)]
pub async fn cancel_and_offer(
    db: &Db,
    mailer: &Mailer,
    public_url: &str,
    user: &CurrentUser,
    id: i64,
    reason: &str,
    now: i64,
) -> Result<()> {
    super::cancel(db, user, id, reason, now).await?;
    let offered = async {
        let (_, policy) = crate::money::current(db).await?;
        let b = super::get(db, id).await?;
        offer_released(
            db,
            &policy.booking,
            mailer,
            public_url,
            b.instrument_id,
            now,
        )
        .await
    }
    .await;
    if let Err(e) = offered {
        tracing::warn!(booking = id, error = %e, "offering a released slot failed; the job retries");
    }
    Ok(())
}
