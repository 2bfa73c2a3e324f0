//! Working-day calendar (工作日历): Chinese public holidays and adjusted working days. The
//! built-in years come from `catalog/holidays.yaml` (compiled in); a year the system admin
//! publishes from the State Council's notice (`calendar_years`) replaces the built-in one at
//! once on every node (see [`crate::published`]). Deadlines in working days, 公示 periods and
//! booking grids ask a [`Calendar`]; the free functions use the process's published calendar.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::OnceLock,
};

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::{
    error::{AppError, FieldErrors, Result},
    store::Db,
};

/// One year of the notice: days off and weekend days that are working days (调休上班).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Year {
    #[serde(default)]
    pub holidays: BTreeSet<NaiveDate>,
    #[serde(default)]
    pub workdays: BTreeSet<NaiveDate>,
}

/// Where a year's days come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `catalog/holidays.yaml`, or weekends only for a year it does not list.
    Builtin,
    /// Published by the system admin.
    Published,
}

fn builtin_years() -> &'static BTreeMap<i32, Year> {
    static YEARS: OnceLock<BTreeMap<i32, Year>> = OnceLock::new();
    YEARS.get_or_init(|| {
        serde_saphyr::from_str(include_str!("catalog/holidays.yaml"))
            .expect("holidays.yaml is valid (checked by a unit test)")
    })
}

/// The built-in years and the published ones; published years win.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    published: BTreeMap<i32, Year>,
}

impl Calendar {
    /// Only the built-in file.
    pub fn builtin() -> Calendar {
        Calendar::default()
    }

    pub fn with_published(published: BTreeMap<i32, Year>) -> Calendar {
        Calendar { published }
    }

    fn year_of(&self, y: i32) -> Option<&Year> {
        self.published.get(&y).or_else(|| builtin_years().get(&y))
    }

    /// A year's days and where they come from.
    pub fn year(&self, y: i32) -> (Year, Source) {
        match self.published.get(&y) {
            Some(year) => (year.clone(), Source::Published),
            None => (
                builtin_years().get(&y).cloned().unwrap_or_default(),
                Source::Builtin,
            ),
        }
    }

    pub fn is_published(&self, y: i32) -> bool {
        self.published.contains_key(&y)
    }

    /// Whether a date is a working day: a weekday that is not a holiday, or an adjusted
    /// working weekend day.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        let year = self.year_of(d.year());
        if year.is_some_and(|y| y.workdays.contains(&d)) {
            return true;
        }
        if year.is_some_and(|y| y.holidays.contains(&d)) {
            return false;
        }
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// The date `n` working days after `from` (`from` itself does not count).
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut d = from;
        let mut left = n;
        while left > 0 {
            let Some(next) = d.succ_opt() else { return d };
            d = next;
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }
}

/// Whether a date is a working day in the process's published calendar (the calendar of the
/// database this process serves; see [`crate::published::install_default`]).
pub fn is_working_day(d: NaiveDate) -> bool {
    crate::published::default_calendar().is_working_day(d)
}

/// The date `n` working days after `from` in the process's published calendar.
pub fn add_working_days(from: NaiveDate, n: u32) -> NaiveDate {
    crate::published::default_calendar().add_working_days(from, n)
}

/// The published years, as stored.
pub async fn load_published(db: &Db) -> Result<BTreeMap<i32, Year>> {
    let rows = sqlx::query("SELECT year, holidays, workdays FROM calendar_years")
        .fetch_all(&db.pool)
        .await?;
    Ok(years_of(rows))
}

/// The calendar as the transaction `conn` sees it (deadlines computed inside a decision).
pub async fn in_transaction(conn: &mut crate::store::Conn) -> Result<Calendar> {
    let rows = sqlx::query("SELECT year, holidays, workdays FROM calendar_years")
        .fetch_all(&mut *conn)
        .await?;
    Ok(Calendar::with_published(years_of(rows)))
}

fn years_of(rows: Vec<sqlx::any::AnyRow>) -> BTreeMap<i32, Year> {
    let mut out = BTreeMap::new();
    for r in rows {
        let y: i64 = r.get("year");
        let parse = |col: &str| -> BTreeSet<NaiveDate> {
            serde_json::from_str(&r.get::<String, _>(col)).unwrap_or_default()
        };
        out.insert(
            y as i32,
            Year {
                holidays: parse("holidays"),
                workdays: parse("workdays"),
            },
        );
    }
    out
}

/// The first and last year anyone may publish (the platform's date bounds).
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2099;

/// A year as entered: date strings, checked.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct YearInput {
    #[serde(default)]
    pub holidays: Vec<String>,
    #[serde(default)]
    pub workdays: Vec<String>,
}

/// Check a year's notice: dates `YYYY-MM-DD` inside the year, none both off and working,
/// adjusted working days only on Saturdays and Sundays. Messages in Chinese by field.
pub fn validate(year: i32, input: &YearInput) -> Result<Year> {
    let mut e = FieldErrors::new();
    if !YEARS.contains(&year) {
        e.insert("year".into(), "年份应在 2000–2099 之间".into());
        return Err(AppError::Validation {
            message: "输入有误".into(),
            fields: e,
        });
    }
    let mut parse = |field: &str, list: &[String]| -> BTreeSet<NaiveDate> {
        let mut out = BTreeSet::new();
        if list.len() > 120 {
            e.insert(field.into(), "日期过多（每年最多 120 个）".into());
            return out;
        }
        for raw in list {
            match NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d") {
                Ok(d) if d.year() == year => {
                    out.insert(d);
                }
                Ok(d) => {
                    e.insert(field.into(), format!("{d} 不在 {year} 年内"));
                }
                Err(_) => {
                    e.insert(
                        field.into(),
                        format!("“{}”不是有效日期，格式应为 YYYY-MM-DD", raw.trim()),
                    );
                }
            }
        }
        out
    };
    let holidays = parse("holidays", &input.holidays);
    let workdays = parse("workdays", &input.workdays);
    if let Some(d) = holidays.intersection(&workdays).next() {
        e.insert(
            "workdays".into(),
            format!("{d} 不能既是放假日又是调休上班日"),
        );
    }
    if let Some(d) = workdays
        .iter()
        .find(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
    {
        e.insert(
            "workdays".into(),
            format!("{d} 是工作日，调休上班日应为周六或周日"),
        );
    }
    if !e.is_empty() {
        return Err(AppError::Validation {
            message: "日历填写有误".into(),
            fields: e,
        });
    }
    Ok(Year { holidays, workdays })
}

/// Publish a year (replacing an earlier publication of it), audited, effective at once on
/// every node (the published revision moves in the same transaction).
pub async fn publish(db: &Db, year: i32, days: &Year, by: i64, now: i64) -> Result<()> {
    let holidays = serde_json::to_string(&days.holidays).map_err(anyhow::Error::from)?;
    let workdays = serde_json::to_string(&days.workdays).map_err(anyhow::Error::from)?;
    let mut tx = db.begin_write().await?;
    let before: Option<(String, String)> =
        sqlx::query_as("SELECT holidays, workdays FROM calendar_years WHERE year = $1")
            .bind(year as i64)
            .fetch_optional(&mut *tx)
            .await?;
    sqlx::query("DELETE FROM calendar_years WHERE year = $1")
        .bind(year as i64)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO calendar_years (year, holidays, workdays, published_by, published_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(year as i64)
    .bind(&holidays)
    .bind(&workdays)
    .bind(by)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let before = match before {
        Some((h, w)) => format!("{{\"holidays\":{h},\"workdays\":{w}}}"),
        None => "\"builtin\"".to_string(),
    };
    let after = format!("{{\"holidays\":{holidays},\"workdays\":{workdays}}}");
    crate::published::record_change(
        &mut tx,
        "calendar",
        &year.to_string(),
        &before,
        &after,
        by,
        now,
    )
    .await?;
    tx.commit().await?;
    crate::published::refresh(db).await?;
    Ok(())
}

/// Active users holding a permission (e.g. `system.config`).
pub async fn holders_of(conn: &mut crate::store::Conn, permission: &str) -> Result<Vec<i64>> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT DISTINCT u.id FROM users u JOIN user_roles ur ON ur.user_id = u.id \
         JOIN role_permissions rp ON rp.role_id = ur.role_id \
         WHERE rp.permission = $1 AND u.is_active = 1 ORDER BY u.id",
    )
    .bind(permission)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// The December reminder (job `calendar-reminder`): when next year's calendar is not
/// published yet, every system admin is told (in-app and by mail) to enter it.
pub async fn remind_unpublished(app: &crate::app::App, today: NaiveDate) -> Result<String> {
    if today.month() != 12 {
        return Ok("不在 12 月，无需提醒".into());
    }
    let next = today.year() + 1;
    let published: Option<i64> =
        sqlx::query_scalar("SELECT year FROM calendar_years WHERE year = $1")
            .bind(next as i64)
            .fetch_optional(&app.db.pool)
            .await?;
    if published.is_some() {
        return Ok(format!("{next} 年工作日历已发布"));
    }
    let mut tx = app.db.begin_write().await?;
    let admins = holders_of(&mut tx, crate::auth::Permission::SystemConfig.key()).await?;
    for user_id in &admins {
        crate::notify::notify(
            &mut tx,
            &app.mailer,
            &app.config.public_url,
            *user_id,
            &crate::notify::Notice {
                kind: "due_soon",
                title: format!("请发布 {next} 年工作日历"),
                body: format!(
                    "{next} 年的节假日安排尚未发布到平台，按工作日计算的办理时限、公示期和预约日历目前只按法定节假日计算（没有调休）。请在国务院办公厅通知发布后，到“工作日历”录入或导入并发布。"
                ),
                link: format!("/console/calendar?year={next}"),
            },
            None,
            app.now(),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(format!(
        "{next} 年工作日历未发布，已提醒 {} 位系统管理员",
        admins.len()
    ))
}

/// What a day looks like in the year preview.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewDay {
    pub day: u32,
    /// `work`, `weekend`, `holiday` (day off) or `adjusted` (weekend working day).
    pub kind: &'static str,
}

/// A month of the year preview: leading blanks (Monday first) and its days.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewMonth {
    pub month: u32,
    pub blanks: u32,
    pub days: Vec<PreviewDay>,
    pub working_days: u32,
}

/// The twelve month grids of a year as `days` would make it.
pub fn preview(year: i32, days: &Year) -> Vec<PreviewMonth> {
    let cal = Calendar::with_published(BTreeMap::from([(year, days.clone())]));
    (1..=12)
        .filter_map(|m| {
            let first = NaiveDate::from_ymd_opt(year, m, 1)?;
            let mut out = Vec::new();
            let mut d = first;
            let mut working = 0;
            while d.month() == m {
                let weekend = matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
                let kind = if days.holidays.contains(&d) {
                    "holiday"
                } else if days.workdays.contains(&d) {
                    "adjusted"
                } else if weekend {
                    "weekend"
                } else {
                    "work"
                };
                if cal.is_working_day(d) {
                    working += 1;
                }
                out.push(PreviewDay { day: d.day(), kind });
                d = d.succ_opt()?;
            }
            Some(PreviewMonth {
                month: m,
                blanks: first.weekday().num_days_from_monday(),
                days: out,
                working_days: working,
            })
        })
        .collect()
}

/// Read a pasted State Council notice (国务院办公厅关于…部分节假日安排的通知): every
/// “X月Y日至Z日放假” (or “X月Y日至X月Z日”, or one day “X月Y日放假”) becomes days off, every
/// date in a sentence part that says 上班 a working day. Returns what it found.
pub fn parse_notice(year: i32, text: &str) -> YearInput {
    let mut input = YearInput::default();
    let date = |m: u32, d: u32| NaiveDate::from_ymd_opt(year, m, d);
    for clause in text.split(['。', '；', ';', '\n']) {
        // Split a clause into its 放假 part and its 上班 part.
        for part in clause.split(['，', ',']) {
            let dates = dates_in(part);
            if part.contains("上班") {
                for (m, d) in dates.iter().flatten() {
                    if let Some(x) = date(*m, *d) {
                        input.workdays.push(x.to_string());
                    }
                }
            } else if part.contains("放假") || part.contains("休") {
                let mut i = 0;
                while i < dates.len() {
                    match (dates[i], dates.get(i + 1).copied().flatten()) {
                        (Some((m, d)), Some((m2, d2))) if part.contains('至') => {
                            if let (Some(a), Some(b)) = (date(m, d), date(m2, d2)) {
                                let mut x = a;
                                while x <= b && (b - a).num_days() < 40 {
                                    input.holidays.push(x.to_string());
                                    let Some(n) = x.succ_opt() else { break };
                                    x = n;
                                }
                            }
                            i += 2;
                        }
                        (Some((m, d)), _) => {
                            if let Some(x) = date(m, d) {
                                input.holidays.push(x.to_string());
                            }
                            i += 1;
                        }
                        _ => i += 1,
                    }
                }
            }
        }
    }
    input.holidays.dedup();
    input.workdays.dedup();
    input
}

/// The dates in a piece of text, in order: “2月15日”, and “23日” after a month was named
/// (then it takes that month). A leading year (“2027年”) is skipped.
fn dates_in(text: &str) -> Vec<Option<(u32, u32)>> {
    let mut out = Vec::new();
    let mut month: Option<u32> = None;
    let mut num = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n = num.parse::<u32>().ok();
        num.clear();
        match (c, n) {
            ('年', _) => {}
            ('月', Some(m)) if (1..=12).contains(&m) => month = Some(m),
            ('日' | '号', Some(d)) if (1..=31).contains(&d) => {
                out.push(month.map(|m| (m, d)));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn national_day_week_is_not_working_but_its_adjusted_saturday_is() {
        let cal = Calendar::builtin();
        assert!(!cal.is_working_day(d("2026-10-05")));
        assert!(
            cal.is_working_day(d("2026-10-10")),
            "Saturday 10 October 2026 is a working day"
        );
        assert!(!cal.is_working_day(d("2026-11-28")), "an ordinary Saturday");
        assert!(cal.is_working_day(d("2026-11-27")));
    }

    #[test]
    fn three_working_days_skip_the_spring_festival() {
        // Friday 13 Feb 2026 + 3 working days: Sat 14 Feb is a working day, then the
        // holiday runs to 23 Feb, so the deadline is Wed 25 Feb.
        let cal = Calendar::builtin();
        assert_eq!(cal.add_working_days(d("2026-02-13"), 3), d("2026-02-25"));
        assert_eq!(cal.add_working_days(d("2026-11-26"), 3), d("2026-12-01"));
    }

    #[test]
    fn every_year_2025_to_2027_is_present() {
        for y in 2025..=2027 {
            assert!(builtin_years().contains_key(&y), "{y}");
        }
    }

    #[test]
    fn a_published_year_replaces_the_builtin_one() {
        let year = Year {
            holidays: [d("2027-02-09"), d("2027-02-10")].into(),
            workdays: [d("2027-02-20")].into(),
        };
        let cal = Calendar::with_published(BTreeMap::from([(2027, year)]));
        assert!(!cal.is_working_day(d("2027-02-09")));
        assert!(
            cal.is_working_day(d("2027-02-20")),
            "a Saturday made working"
        );
        assert!(
            cal.is_working_day(d("2027-02-08")),
            "the built-in holiday is gone once the year is published"
        );
        assert!(
            !cal.is_working_day(d("2026-10-05")),
            "other years keep the file"
        );
    }

    #[test]
    fn an_adjusted_working_day_on_a_weekday_is_refused_in_chinese() {
        let input = YearInput {
            holidays: vec!["2027-02-09".into()],
            workdays: vec!["2027-02-10".into(), "2028-01-01".into()],
        };
        let Err(AppError::Validation { fields, .. }) = validate(2027, &input) else {
            panic!("refused")
        };
        assert!(
            fields["workdays"].contains("不在 2027 年内")
                || fields["workdays"].contains("周六或周日")
        );
        assert!(validate(1999, &YearInput::default()).is_err());
        assert!(
            validate(
                2027,
                &YearInput {
                    holidays: vec!["2027-13-01".into()],
                    workdays: vec![]
                }
            )
            .is_err()
        );
    }

    #[test]
    fn a_pasted_notice_yields_its_days_off_and_working_days() {
        let text = "一、元旦：1月1日（周五）至3日（周日）放假，共3天。\n\
                    二、春节：2月6日（周六）至2月14日（周日）放假调休，共9天。2月20日（周六）上班。\n\
                    三、清明节：4月5日（周一）放假，共1天。";
        let got = parse_notice(2027, text);
        assert!(got.holidays.contains(&"2027-01-02".to_string()));
        assert!(got.holidays.contains(&"2027-02-10".to_string()));
        assert!(got.holidays.contains(&"2027-02-14".to_string()));
        assert!(got.holidays.contains(&"2027-04-05".to_string()));
        assert_eq!(got.workdays, vec!["2027-02-20".to_string()]);
        assert_eq!(got.holidays.len(), 3 + 9 + 1);
    }

    #[test]
    fn the_preview_counts_working_days_per_month() {
        let months = preview(2026, &builtin_years()[&2026]);
        assert_eq!(months.len(), 12);
        // October 2026: 22 weekdays, 5 of them off (1–7 Oct minus the weekend), 10 Oct worked.
        assert_eq!(months[9].working_days, 22 - 5 + 1);
        assert_eq!(months[9].blanks, 3, "1 October 2026 is a Thursday");
    }
}
