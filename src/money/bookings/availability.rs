//! Availability (空闲时段查询): which instruments of a class and city are free between two
//! instants for at least a given length. Two queries whatever the number of instruments —
//! the candidates, then every live booking and held waitlist offer of all of them in the
//! window, by instrument and start — and a merge in memory against opening hours, the
//! working-day calendar and each instrument's booking rules (lead time, days ahead, slot size).

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone};
use chrono_tz::Asia::Shanghai;
use serde::Serialize;

use crate::{
    calendar::Calendar,
    error::{AppError, Result},
    published::Published,
    store::Db,
};

/// The longest window one search may cover.
pub const MAX_WINDOW_DAYS: i64 = 31;

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// A national class code or its prefix (`01`, `0101`, `010100`).
    pub category: Option<String>,
    pub city: Option<String>,
    pub from: i64,
    pub to: i64,
    pub min_minutes: i64,
}

/// One free interval, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Free {
    pub start: i64,
    pub end: i64,
}

/// An instrument and its free intervals of at least the requested length.
#[derive(Debug, Clone, Serialize)]
pub struct Available {
    pub instrument_id: i64,
    pub name: String,
    pub unit_name: String,
    pub city: String,
    pub free: Vec<Free>,
}

/// The booking rules that shape an instrument's free time.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Candidate {
    pub id: i64,
    pub name: String,
    pub unit_name: String,
    pub city: String,
    pub slot_minutes: i64,
    pub min_lead_hours: i64,
    pub max_days_ahead: i64,
}

/// Parse and check a search; Chinese messages.
pub fn parse_window(from: &str, to: &str, min_minutes: Option<i64>) -> Result<(i64, i64, i64)> {
    let p = |raw: &str, field: &str| {
        DateTime::parse_from_rfc3339(raw.trim())
            .map(|t| t.timestamp())
            .map_err(|_| {
                AppError::field(
                    field,
                    "时间格式应为 RFC 3339，例如 2026-12-08T14:00:00+08:00",
                )
            })
    };
    let (from, to) = (p(from, "from")?, p(to, "to")?);
    let year_ok = |t: i64| {
        DateTime::from_timestamp(t, 0)
            .map(|d| (2000..=2099).contains(&chrono::Datelike::year(&d)))
            .unwrap_or(false)
    };
    if !year_ok(from) || !year_ok(to) {
        return Err(AppError::field("from", "日期须在 2000–2099 年之间"));
    }
    if to <= from {
        return Err(AppError::field("to", "结束时间必须晚于开始时间"));
    }
    if to - from > MAX_WINDOW_DAYS * 86_400 {
        return Err(AppError::field(
            "to",
            format!("一次最多查询 {MAX_WINDOW_DAYS} 天"),
        ));
    }
    let min = min_minutes.unwrap_or(30);
    if !(1..=24 * 60 * 7).contains(&min) {
        return Err(AppError::field(
            "min_minutes",
            "最短时长应在 1 到 10080 分钟之间",
        ));
    }
    Ok((from, to, min))
}

/// The opening hours and working days in force: the published 平台配置 and 工作日历, the
/// same ones a booking is checked against.
#[derive(Debug, Clone)]
pub struct Hours {
    pub open_hour: u32,
    pub close_hour: u32,
    pub calendar: std::sync::Arc<Calendar>,
}

impl Hours {
    pub fn published(p: &Published) -> Self {
        let settings = p.settings();
        Hours {
            open_hour: settings.booking_open_hour,
            close_hour: settings.booking_close_hour,
            calendar: p.calendar(),
        }
    }
}

/// Opening windows `[open, close)` of the working days touching `[from, to)`, by day.
pub fn opening_windows(hours: &Hours, from: i64, to: i64) -> Vec<(i64, i64)> {
    let day = |t: i64| {
        DateTime::from_timestamp(t, 0)
            .unwrap_or_default()
            .with_timezone(&Shanghai)
            .date_naive()
    };
    let at = |d: NaiveDate, h: u32| {
        Shanghai
            .from_local_datetime(&d.and_hms_opt(h, 0, 0).unwrap_or_default())
            .single()
            .map(|t| t.timestamp())
            .unwrap_or(0)
    };
    let (mut d, last) = (day(from), day(to));
    let mut out = Vec::new();
    while d <= last {
        if hours.calendar.is_working_day(d) {
            out.push((at(d, hours.open_hour), at(d, hours.close_hour)));
        }
        d += Duration::days(1);
    }
    out
}

/// The free intervals of one instrument: opening windows clipped to the search window and
/// the instrument's lead time and horizon, minus `busy` (sorted by start), aligned to its slot
/// size, at least `min_minutes` long.
pub fn free_intervals(
    c: &Candidate,
    windows: &[(i64, i64)],
    busy: &[(i64, i64)],
    s: &Search,
    now: i64,
) -> Vec<Free> {
    let step = c.slot_minutes.max(1) * 60;
    let earliest = s.from.max(now + c.min_lead_hours * 3600);
    let latest = s.to.min(now + c.max_days_ahead * 86_400);
    let min = s.min_minutes * 60;
    let mut out = Vec::new();
    let mut b = 0;
    for &(open, close) in windows {
        let (lo, hi) = (open.max(earliest), close.min(latest));
        if hi <= lo {
            continue;
        }
        // Slots are counted from the opening hour.
        let mut cur = open + (lo - open + step - 1) / step * step;
        while b < busy.len() && busy[b].1 <= cur {
            b += 1;
        }
        let mut k = b;
        loop {
            let next_busy = busy.get(k).filter(|x| x.0 < hi);
            let end = next_busy.map_or(hi, |x| x.0.max(cur));
            let end = open + (end - open) / step * step;
            if end - cur >= min && end > cur {
                out.push(Free { start: cur, end });
            }
            match next_busy {
                Some(x) => {
                    let resume = x.1.max(cur);
                    cur = open + (resume - open + step - 1) / step * step;
                    k += 1;
                    if cur >= hi {
                        break;
                    }
                }
                None => break,
            }
        }
    }
    out
}

/// The class code as a `LIKE` prefix (`010000` → `01%`, `010100` → `0101%`) and the city.
fn filters(s: &Search) -> (String, String) {
    let code = s.category.clone().unwrap_or_default();
    let code = code.trim();
    let prefix = if code.len() == 6 && code.ends_with("0000") {
        &code[..2]
    } else if code.len() == 6 && code.ends_with("00") {
        &code[..4]
    } else {
        code
    };
    let prefix: String = prefix.chars().filter(char::is_ascii_digit).collect();
    (
        format!("{prefix}%"),
        s.city.clone().unwrap_or_default().trim().to_string(),
    )
}

/// The candidates of a search: approved instruments open to the public, by id.
pub async fn candidates(db: &Db, s: &Search) -> Result<Vec<Candidate>> {
    let (category, city) = filters(s);
    Ok(sqlx::query_as(
        "SELECT i.id, i.name, u.name AS unit_name, i.city, i.slot_minutes, i.min_lead_hours, i.max_days_ahead \
         FROM instruments i JOIN units u ON u.id = i.unit_id \
         WHERE i.review_status = 'approved' AND i.open_to_public = 1 AND i.category_code LIKE $1 \
         AND ($2 = '' OR i.city = $2) ORDER BY i.id",
    )
    .bind(category)
    .bind(city)
    .fetch_all(&db.pool)
    .await?)
}

/// Every instrument of the search with at least one free interval (two queries).
pub async fn search(db: &Db, s: &Search, now: i64) -> Result<Vec<Available>> {
    Ok(week(db, s, now)
        .await?
        .into_iter()
        .filter(|a| !a.free.is_empty())
        .collect())
}

/// Every candidate of the search with its free intervals, none included (the grid page).
pub async fn week(db: &Db, s: &Search, now: i64) -> Result<Vec<Available>> {
    let cands = candidates(db, s).await?;
    let (category, city) = filters(s);
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT x.instrument_id, x.start_at, x.end_at FROM ( \
           SELECT instrument_id, start_at, end_at FROM bookings WHERE live = 1 AND start_at < $2 AND end_at > $1 \
           UNION ALL SELECT instrument_id, start_at, end_at FROM booking_waitlist \
             WHERE status = 'offered' AND offer_expires_at > $3 AND start_at < $2 AND end_at > $1 \
         ) x JOIN instruments i ON i.id = x.instrument_id \
         WHERE i.review_status = 'approved' AND i.open_to_public = 1 AND i.category_code LIKE $4 \
         AND ($5 = '' OR i.city = $5) ORDER BY x.instrument_id, x.start_at",
    )
    .bind(s.from)
    .bind(s.to)
    .bind(now)
    .bind(category)
    .bind(city)
    .fetch_all(&db.pool)
    .await?;
    let mut busy: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    for (id, a, b) in rows {
        busy.entry(id).or_default().push((a, b));
    }
    let windows = opening_windows(&Hours::published(&db.published), s.from, s.to);
    Ok(cands
        .into_iter()
        .map(|c| {
            let free = free_intervals(
                &c,
                &windows,
                busy.get(&c.id).map_or(&[][..], |v| v.as_slice()),
                s,
                now,
            );
            Available {
                instrument_id: c.id,
                name: c.name,
                unit_name: c.unit_name,
                city: c.city,
                free,
            }
        })
        .collect())
}

/// The naive way, for the benchmark: per instrument one query for its bookings, then every
/// slot checked against the calendar and the bookings one by one.
pub async fn search_naive(db: &Db, s: &Search, now: i64) -> Result<Vec<Available>> {
    let cands = candidates(db, s).await?;
    let hours = Hours::published(&db.published);
    let mut out = Vec::new();
    for c in cands {
        let busy = super::busy(db, c.id, s.from, s.to).await?;
        let step = c.slot_minutes.max(1) * 60;
        let mut free = Vec::new();
        let mut run: Option<(i64, i64)> = None;
        let mut t = s.from - s.from.rem_euclid(step);
        while t < s.to {
            let local = DateTime::from_timestamp(t, 0)
                .unwrap_or_default()
                .with_timezone(&Shanghai);
            let h = chrono::Timelike::hour(&local);
            let ok = t >= s.from
                && t + step <= s.to
                && t >= now + c.min_lead_hours * 3600
                && t + step <= now + c.max_days_ahead * 86_400
                && hours.calendar.is_working_day(local.date_naive())
                && (hours.open_hour..hours.close_hour).contains(&h)
                && !busy.iter().any(|(a, b)| *a < t + step && *b > t);
            run = match (ok, run) {
                (true, Some((a, b))) if b == t => Some((a, t + step)),
                (true, prev) => {
                    if let Some((a, b)) = prev
                        && b - a >= s.min_minutes * 60
                    {
                        free.push(Free { start: a, end: b });
                    }
                    Some((t, t + step))
                }
                (false, prev) => {
                    if let Some((a, b)) = prev
                        && b - a >= s.min_minutes * 60
                    {
                        free.push(Free { start: a, end: b });
                    }
                    None
                }
            };
            t += step;
        }
        if let Some((a, b)) = run
            && b - a >= s.min_minutes * 60
        {
            free.push(Free { start: a, end: b });
        }
        if !free.is_empty() {
            out.push(Available {
                instrument_id: c.id,
                name: c.name,
                unit_name: c.unit_name,
                city: c.city,
                free,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    fn hours() -> Hours {
        Hours {
            open_hour: 8,
            close_hour: 18,
            calendar: std::sync::Arc::new(Calendar::builtin()),
        }
    }

    fn cand() -> Candidate {
        Candidate {
            id: 1,
            name: "SEM".into(),
            unit_name: String::new(),
            city: String::new(),
            slot_minutes: 30,
            min_lead_hours: 1,
            max_days_ahead: 90,
        }
    }

    #[test]
    fn bookings_split_a_day_and_short_gaps_are_dropped() {
        let s = Search {
            from: ts("2026-12-08T00:00:00+08:00"),
            to: ts("2026-12-09T00:00:00+08:00"),
            min_minutes: 120,
            ..Default::default()
        };
        let w = opening_windows(&hours(), s.from, s.to);
        let busy = [
            (
                ts("2026-12-08T09:00:00+08:00"),
                ts("2026-12-08T10:00:00+08:00"),
            ),
            (
                ts("2026-12-08T11:30:00+08:00"),
                ts("2026-12-08T14:00:00+08:00"),
            ),
        ];
        let now = ts("2026-12-01T08:00:00+08:00");
        let free = free_intervals(&cand(), &w, &busy, &s, now);
        assert_eq!(
            free,
            vec![Free {
                start: ts("2026-12-08T14:00:00+08:00"),
                end: ts("2026-12-08T18:00:00+08:00")
            }]
        );
    }

    #[test]
    fn holidays_and_weekends_have_no_free_time() {
        // 2026-10-05 is in the National Day holiday, 2026-11-28 a Saturday.
        for day in ["2026-10-05", "2026-11-28"] {
            let s = Search {
                from: ts(&format!("{day}T00:00:00+08:00")),
                to: ts(&format!("{day}T23:59:00+08:00")),
                min_minutes: 30,
                ..Default::default()
            };
            let w = opening_windows(&hours(), s.from, s.to);
            assert!(free_intervals(&cand(), &w, &[], &s, 0).is_empty(), "{day}");
        }
    }
}
