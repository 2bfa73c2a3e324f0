//! Weekly repeats (每周重复预约): the same slot in N consecutive weeks. Each week is its own
//! booking request; weeks on a holiday, taken by someone else or outside the booking rules are
//! skipped with the reason in Chinese, the others are created (one series).

use chrono::DateTime;
use chrono_tz::Asia::Shanghai;
use serde::{Deserialize, Serialize};

use super::{NewBooking, Placement, create_as};
use crate::{
    auth::CurrentUser,
    error::{AppError, Result},
    store::Db,
};

/// The most weeks one request may repeat.
pub const MAX_WEEKS: i64 = 26;

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    /// How many weeks, the first included.
    pub weekly: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Created {
    pub id: i64,
    pub start: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Skipped {
    pub start: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub created: Vec<Created>,
    pub skipped: Vec<Skipped>,
}

fn shifted(raw: &str, weeks: i64) -> Option<(String, chrono::NaiveDate)> {
    let t = DateTime::parse_from_rfc3339(raw.trim()).ok()?;
    let t = t.with_timezone(&Shanghai) + chrono::Duration::weeks(weeks);
    Some((t.to_rfc3339(), t.date_naive()))
}

/// Why one week could not be booked, for the list of skipped dates; `None` for errors that
/// concern the whole request (not allowed, unit not eligible, suspended, unqualified).
fn skip_reason(e: &AppError) -> Option<String> {
    match e {
        AppError::Conflict {
            code: "slot_taken", ..
        } => Some("该时段已被预约".into()),
        AppError::Conflict { message, .. } => Some(message.clone()),
        // Only the week's time can make one week fail and another pass.
        AppError::Validation { fields, .. }
            if !fields.is_empty() && fields.keys().all(|k| k == "start" || k == "end") =>
        {
            Some(fields.values().cloned().collect::<Vec<String>>().join("；"))
        }
        _ => None,
    }
}

/// Book `new`'s slot in `repeat.weekly` consecutive weeks.
pub async fn create_weekly(
    db: &Db,
    user: &CurrentUser,
    new: NewBooking,
    repeat: Repeat,
    now: i64,
) -> Result<Outcome> {
    if !(1..=MAX_WEEKS).contains(&repeat.weekly) {
        return Err(AppError::field(
            "repeat",
            format!("每周重复的周数应在 1 到 {MAX_WEEKS} 之间"),
        ));
    }
    if DateTime::parse_from_rfc3339(new.start.trim()).is_err()
        || DateTime::parse_from_rfc3339(new.end.trim()).is_err()
    {
        // The single booking's own messages.
        return create_as(db, user, new, now, Placement::default())
            .await
            .map(|_| Outcome::default());
    }
    let mut out = Outcome::default();
    let mut series = None;
    let calendar = db.published.calendar();
    for week in 0..repeat.weekly {
        let (Some((start, day)), Some((end, _))) =
            (shifted(&new.start, week), shifted(&new.end, week))
        else {
            continue;
        };
        if !calendar.is_working_day(day) {
            out.skipped.push(Skipped {
                start,
                reason: "法定节假日或周末，不开放预约".into(),
            });
            continue;
        }
        let one = NewBooking {
            start: start.clone(),
            end,
            repeat: None,
            ..new.clone()
        };
        let how = Placement {
            series_id: series,
            ..Placement::default()
        };
        match create_as(db, user, one, now, how).await {
            Ok(id) => {
                if series.is_none() {
                    series = Some(id);
                    super::set_series(db, id, id).await?;
                }
                out.created.push(Created { id, start });
            }
            Err(e) => match skip_reason(&e) {
                Some(reason) => out.skipped.push(Skipped { start, reason }),
                None => return Err(e),
            },
        }
    }
    Ok(out)
}
