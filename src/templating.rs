//! Template environments (模板环境) shared by pages and mails: files under the templates
//! directory, loaded on first use, with the platform's Chinese-friendly filters. The web
//! layer adds its page helpers on top; the mailer keeps its own environment.
//!
//! One set of display filters for every page, so the portal, the console and the statistics
//! agree: money with thousands separators (`yuan` → `435,958,200.00`, `wan` → `43,595.82`),
//! numbers (`num`), ratios (`percent`: `"0.0612"` → `6.12%`) and dates in Chinese (`date` →
//! `2026年12月1日`, `datetime` → `2026年12月1日 09:30`).

use std::{path::Path, str::FromStr};

use chrono::{DateTime, NaiveDate};
use minijinja::{Environment, Value, value::ValueKind};
use rust_decimal::{Decimal, RoundingStrategy};

/// Files under `dir` with the filters every template may use (see the module comment). Money
/// filters take an integer as fen and a string (a serialised `Yuan`) as yuan.
pub fn base_env(dir: &Path) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_loader(minijinja::path_loader(dir));
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    env.add_filter("datetime", |v: Value| {
        if v.is_none() || v.is_undefined() {
            return String::new();
        }
        timestamp(&v)
            .map(datetime_zh)
            .unwrap_or_else(|| v.to_string())
    });
    env.add_filter("date", |v: Value| match timestamp(&v) {
        _ if v.is_none() || v.is_undefined() => String::new(),
        Some(ts) => date_zh(ts),
        None => NaiveDate::parse_from_str(
            &v.to_string().chars().take(10).collect::<String>(),
            "%Y-%m-%d",
        )
        .map(naive_date_zh)
        .unwrap_or_else(|_| v.to_string()),
    });
    env.add_filter("wan", |v: Value| {
        yuan_of(&v)
            .map(|y| grouped(y / Decimal::from(10_000), 2))
            .unwrap_or_default()
    });
    env.add_filter("yuan", |v: Value| {
        yuan_of(&v).map(|y| grouped(y, 2)).unwrap_or_default()
    });
    env.add_filter("num", |v: Value, places: Option<u32>| {
        decimal_of(&v)
            .map(|d| grouped(d, places.unwrap_or(d.scale())))
            .unwrap_or_default()
    });
    env.add_filter("percent", |v: Value, places: Option<u32>| {
        decimal_of(&v)
            .map(|d| {
                format!(
                    "{}%",
                    grouped(d * Decimal::ONE_HUNDRED, places.unwrap_or(1))
                )
            })
            .unwrap_or_default()
    });
    env
}

/// A unix timestamp (integer) or an RFC 3339 string (`2026-12-01T09:30:00+08:00`).
fn timestamp(v: &Value) -> Option<i64> {
    match v.kind() {
        ValueKind::Number => i64::try_from(v.clone()).ok(),
        ValueKind::String => DateTime::parse_from_rfc3339(v.as_str()?.trim())
            .ok()
            .map(|t| t.timestamp()),
        _ => None,
    }
}

fn decimal_of(v: &Value) -> Option<Decimal> {
    match v.kind() {
        ValueKind::Number => i64::try_from(v.clone())
            .map(Decimal::from)
            .ok()
            .or_else(|| {
                f64::try_from(v.clone())
                    .ok()
                    .and_then(|f| Decimal::try_from(f).ok())
            }),
        ValueKind::String => Decimal::from_str(v.as_str()?.trim()).ok(),
        _ => None,
    }
}

/// An integer is fen, a string is yuan; nothing (none, undefined, "") gives `None`.
fn yuan_of(v: &Value) -> Option<Decimal> {
    match v.kind() {
        ValueKind::Number => i64::try_from(v.clone()).ok().map(|f| Decimal::new(f, 2)),
        ValueKind::String => Decimal::from_str(v.as_str()?.trim()).ok(),
        _ => None,
    }
}

/// `1234567.891` with 2 places → `1,234,567.89` (half-up).
pub fn grouped(d: Decimal, places: u32) -> String {
    let mut r = d.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(places);
    let s = r.abs().to_string();
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if r.is_sign_negative() && !r.is_zero() {
        out.insert(0, '-');
    }
    out
}

fn local(ts: i64) -> DateTime<chrono_tz::Tz> {
    DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .with_timezone(&chrono_tz::Asia::Shanghai)
}

/// `2026年12月1日`.
pub fn date_zh(ts: i64) -> String {
    local(ts).format("%Y年%-m月%-d日").to_string()
}

pub fn naive_date_zh(d: NaiveDate) -> String {
    d.format("%Y年%-m月%-d日").to_string()
}

/// `2026年12月1日 09:30`.
pub fn datetime_zh(ts: i64) -> String {
    local(ts).format("%Y年%-m月%-d日 %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, ctx: Value) -> String {
        let mut env = base_env(Path::new("."));
        env.add_template_owned("t", src.to_string()).unwrap();
        env.get_template("t").unwrap().render(ctx).unwrap()
    }

    #[test]
    fn money_is_grouped_in_yuan_and_wan_from_fen_or_yuan_strings() {
        let ctx =
            minijinja::context! { fen => 43595820000_i64, y => "435958200.00", small => "7.5" };
        assert_eq!(
            render(
                "{{ fen | yuan }}|{{ y | yuan }}|{{ fen | wan }}|{{ y | wan }}|{{ small | yuan }}",
                ctx
            ),
            "435,958,200.00|435,958,200.00|43,595.82|43,595.82|7.50"
        );
        assert_eq!(
            render("{{ none | yuan }}", minijinja::context! { none => () }),
            ""
        );
    }

    #[test]
    fn dates_are_written_in_chinese_in_shanghai_time() {
        // 2026-12-01 01:30 UTC is 09:30 in Xuchang.
        let ctx = minijinja::context! { ts => 1764552600_i64, d => "2026-03-05" };
        assert_eq!(
            render("{{ ts | date }}|{{ ts | datetime }}|{{ d | date }}", ctx),
            "2025年12月1日|2025年12月1日 09:30|2026年3月5日"
        );
    }

    #[test]
    fn ratios_become_percentages_and_numbers_are_grouped() {
        let ctx = minijinja::context! { r => "0.0612", n => 1234567, h => "1400.50" };
        assert_eq!(
            render(
                "{{ r | percent }}|{{ r | percent(2) }}|{{ n | num }}|{{ h | num }}",
                ctx
            ),
            "6.1%|6.12%|1,234,567|1,400.50"
        );
        assert_eq!(grouped(Decimal::new(-123456, 2), 2), "-1,234.56");
    }
}
