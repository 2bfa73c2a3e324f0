//! Working-day calendar (工作日历): Chinese public holidays and adjusted working days for
//! 2025–2027 from `catalog/holidays.yaml`, used for deadlines given in working days.

use std::{collections::BTreeMap, sync::OnceLock};

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
struct Year {
    #[serde(default)]
    holidays: Vec<NaiveDate>,
    #[serde(default)]
    workdays: Vec<NaiveDate>,
}

fn years() -> &'static BTreeMap<i32, Year> {
    static YEARS: OnceLock<BTreeMap<i32, Year>> = OnceLock::new();
    YEARS.get_or_init(|| {
        serde_saphyr::from_str(include_str!("catalog/holidays.yaml"))
            .expect("holidays.yaml is valid (checked by a unit test)")
    })
}

/// Whether a date is a working day: a weekday that is not a holiday, or an adjusted
/// working weekend day.
pub fn is_working_day(d: NaiveDate) -> bool {
    let year = years().get(&d.year());
    if year.is_some_and(|y| y.workdays.contains(&d)) {
        return true;
    }
    if year.is_some_and(|y| y.holidays.contains(&d)) {
        return false;
    }
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The date `n` working days after `from` (`from` itself does not count).
pub fn add_working_days(from: NaiveDate, n: u32) -> NaiveDate {
    let mut d = from;
    let mut left = n;
    while left > 0 {
        d = d.succ_opt().unwrap_or(d);
        if is_working_day(d) {
            left -= 1;
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn national_day_week_is_not_working_but_its_adjusted_saturday_is() {
        assert!(!is_working_day(d("2026-10-05")));
        assert!(
            is_working_day(d("2026-10-10")),
            "Saturday 10 October 2026 is a working day"
        );
        assert!(!is_working_day(d("2026-11-28")), "an ordinary Saturday");
        assert!(is_working_day(d("2026-11-27")));
    }

    #[test]
    fn three_working_days_skip_the_spring_festival() {
        // Friday 13 Feb 2026 + 3 working days: Sat 14 Feb is a working day, then the
        // holiday runs to 23 Feb, so the deadline is Wed 25 Feb.
        assert_eq!(add_working_days(d("2026-02-13"), 3), d("2026-02-25"));
        assert_eq!(add_working_days(d("2026-11-26"), 3), d("2026-12-01"));
    }

    #[test]
    fn every_year_2025_to_2027_is_present() {
        for y in 2025..=2027 {
            assert!(years().contains_key(&y), "{y}");
        }
    }
}
