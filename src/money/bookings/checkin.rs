//! Check-in, check-out and no-shows (签到、签退与爽约). The booking unit checks in from 15
//! minutes before the start; a confirmed booking not checked in `no_show_after_minutes` after
//! its start becomes `no_show` (job `booking-no-shows`), its slot is released and offered to
//! the waitlist, and the policy's no-show rule may suspend the unit's booking rights.

use chrono::DateTime;
use chrono_tz::Asia::Shanghai;
use serde::{Deserialize, Serialize};

use super::{load, wrong_state};
use crate::{
    auth::CurrentUser,
    domain::Yuan,
    error::{AppError, Result},
    mail::Mailer,
    money::vouchers,
    notify,
    store::Db,
};

/// How early the booking unit may check in.
pub const CHECK_IN_EARLY_MINUTES: i64 = 15;

/// The booking section of the money policy.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BookingRules {
    pub no_show_after_minutes: i64,
    pub no_show: NoShowRule,
    pub offer_minutes: i64,
}

/// `count` no-shows within `within_days` suspend booking for `suspend_days`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NoShowRule {
    pub count: i64,
    pub within_days: i64,
    pub suspend_days: i64,
}

impl Default for BookingRules {
    fn default() -> Self {
        BookingRules {
            no_show_after_minutes: 30,
            no_show: NoShowRule {
                count: 3,
                within_days: 90,
                suspend_days: 30,
            },
            offer_minutes: 120,
        }
    }
}

impl BookingRules {
    /// Validation messages (Chinese) for the policy editor.
    pub fn problems(&self) -> Vec<String> {
        let mut e = Vec::new();
        if !(1..=1440).contains(&self.no_show_after_minutes) {
            e.push("booking.no_show_after_minutes 应在 1 到 1440 之间".into());
        }
        let r = &self.no_show;
        if r.count < 1 || r.within_days < 1 || r.suspend_days < 0 {
            e.push("booking.no_show 的 count、within_days 须大于 0，suspend_days 不能为负".into());
        }
        if !(1..=10080).contains(&self.offer_minutes) {
            e.push("booking.offer_minutes 应在 1 到 10080 之间".into());
        }
        e
    }
}

fn booker(user: &CurrentUser, unit_id: i64) -> Result<()> {
    if user.acts_for(unit_id, false) {
        Ok(())
    } else {
        Err(AppError::Forbidden {
            code: "not_unit_member",
        })
    }
}

/// The booking unit checks in (from 15 minutes before the start until the end); returns the
/// check-in time. Checking in twice keeps the first time.
pub async fn check_in(db: &Db, user: &CurrentUser, id: i64, now: i64) -> Result<i64> {
    let mut tx = db.begin_write().await?;
    let b = load(&mut tx, id).await?;
    booker(user, b.unit_id)?;
    if b.status != "confirmed" {
        return Err(wrong_state(&b.status, "签到"));
    }
    if now < b.start_at - CHECK_IN_EARLY_MINUTES * 60 {
        return Err(AppError::unprocessable(
            "too_early",
            format!("预约开始前 {CHECK_IN_EARLY_MINUTES} 分钟起才能签到"),
        ));
    }
    if now >= b.end_at {
        return Err(AppError::unprocessable(
            "too_late",
            "预约时段已结束，不能签到",
        ));
    }
    sqlx::query("UPDATE bookings SET checked_in_at = $1, updated_at = $1 WHERE id = $2 AND checked_in_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let at: Option<i64> = sqlx::query_scalar("SELECT checked_in_at FROM bookings WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(at.unwrap_or(now))
}

/// The booking unit checks out after checking in; returns the check-out time.
pub async fn check_out(db: &Db, user: &CurrentUser, id: i64, now: i64) -> Result<i64> {
    let mut tx = db.begin_write().await?;
    let b = load(&mut tx, id).await?;
    booker(user, b.unit_id)?;
    let (checked_in, checked_out): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT checked_in_at, checked_out_at FROM bookings WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if checked_in.is_none() {
        return Err(AppError::unprocessable(
            "not_checked_in",
            "尚未签到，不能签退",
        ));
    }
    if let Some(out) = checked_out {
        return Ok(out);
    }
    sqlx::query("UPDATE bookings SET checked_out_at = $1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(now)
}

/// 422 `booking_suspended` while the unit serves a no-show suspension.
pub async fn ensure_not_suspended(
    conn: &mut crate::store::Conn,
    unit_id: i64,
    now: i64,
) -> Result<()> {
    let until: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(until_at) FROM booking_suspensions WHERE unit_id = $1 AND until_at > $2",
    )
    .bind(unit_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    match until {
        Some(until) => Err(AppError::unprocessable(
            "booking_suspended",
            format!(
                "本单位因多次预约爽约，预约权限暂停至 {}",
                local(until).format("%Y-%m-%d %H:%M")
            ),
        )),
        None => Ok(()),
    }
}

fn local(ts: i64) -> chrono::DateTime<chrono_tz::Tz> {
    DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .with_timezone(&Shanghai)
}

/// What one no-show pass did.
#[derive(Debug, Default)]
pub struct NoShows {
    pub marked: usize,
    pub suspended: usize,
    /// Instruments whose slots were released (their waitlists are offered next).
    pub instruments: Vec<i64>,
}

/// Mark confirmed, not checked-in bookings `no_show` once the grace period is over, release
/// their slots and vouchers, and apply the suspension rule. Each booking changes once (a
/// compare-and-swap on its status) and a suspension is keyed by the booking that triggered
/// it, so passes on several nodes or repeated runs change nothing twice.
pub async fn mark_no_shows(
    db: &Db,
    rules: &BookingRules,
    mailer: &Mailer,
    public_url: &str,
    now: i64,
) -> Result<NoShows> {
    let cutoff = now - rules.no_show_after_minutes * 60;
    let due: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM bookings WHERE status = 'confirmed' AND kind <> 'testing' \
         AND checked_in_at IS NULL AND start_at <= $1 ORDER BY start_at, id LIMIT 500",
    )
    .bind(cutoff)
    .fetch_all(&db.pool)
    .await?;
    let mut out = NoShows::default();
    for (id,) in due {
        let mut tx = db.begin_write().await?;
        let b = load(&mut tx, id).await?;
        let n = sqlx::query(
            "UPDATE bookings SET status = 'no_show', live = 0, no_show_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = 'confirmed' AND checked_in_at IS NULL AND start_at <= $3",
        )
        .bind(now)
        .bind(id)
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            continue;
        }
        if let Some(year) = b.voucher_year {
            vouchers::release(
                &mut tx,
                b.unit_id,
                year,
                Yuan::from_fen(b.voucher_fen),
                id,
                now,
            )
            .await?;
        }
        out.marked += 1;
        if !out.instruments.contains(&b.instrument_id) {
            out.instruments.push(b.instrument_id);
        }
        let r = &rules.no_show;
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM bookings WHERE unit_id = $1 AND status = 'no_show' AND start_at >= $2",
        )
        .bind(b.unit_id)
        .bind(b.start_at - r.within_days * 86_400)
        .fetch_one(&mut *tx)
        .await?;
        let suspend = count >= r.count && r.suspend_days > 0;
        if suspend {
            let until = now + r.suspend_days * 86_400;
            sqlx::query(
                "INSERT INTO booking_suspensions (unit_id, until_at, reason, trigger_booking_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(b.unit_id)
            .bind(until)
            .bind(format!(
                "{} 天内爽约 {count} 次（规则：{} 次暂停 {} 天）",
                r.within_days, r.count, r.suspend_days
            ))
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            out.suspended += 1;
        }
        let start = local(b.start_at).format("%Y-%m-%d %H:%M");
        notify::notify(
            &mut tx,
            mailer,
            public_url,
            b.user_id,
            &notify::Notice {
                kind: "decided",
                title: format!("预约未签到，已记为爽约（{start}）"),
                body: if suspend {
                    format!(
                        "您 {start} 开始的预约在开始后 {} 分钟内未签到，已记为爽约，时段已释放。本单位近 {} 天爽约 {count} 次，预约权限暂停 {} 天。",
                        rules.no_show_after_minutes, r.within_days, r.suspend_days
                    )
                } else {
                    format!(
                        "您 {start} 开始的预约在开始后 {} 分钟内未签到，已记为爽约，时段已释放。",
                        rules.no_show_after_minutes
                    )
                },
                link: "/console/my-bookings".into(),
            },
            None,
            now,
        )
        .await?;
        tx.commit().await?;
    }
    Ok(out)
}
