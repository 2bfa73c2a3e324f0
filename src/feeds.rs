//! Personal calendar feeds (日程订阅): a secret per-user URL `/calendar/{token}.ics` that
//! calendar apps poll without logging in. It lists the user's own bookings and, for unit
//! managers, the bookings of their units' instruments. Only the token's SHA-256 is stored.

use chrono::DateTime;
use sqlx::Row;

use crate::{
    auth::{random_token, token_hash},
    error::Result,
    money::bookings::status_label,
    store::Db,
};

/// When the user's feed was created, if they have one.
pub async fn created_at(db: &Db, user_id: i64) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT created_at FROM calendar_feeds WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&db.pool)
            .await?,
    )
}

/// A new secret token for the user (256 random bits); the previous one stops working.
pub async fn regenerate(db: &Db, user_id: i64, now: i64) -> Result<String> {
    let token = random_token();
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM calendar_feeds WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO calendar_feeds (user_id, token_hash, created_at) VALUES ($1, $2, $3)")
        .bind(user_id)
        .bind(token_hash(&token))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(token)
}

/// The active user a token belongs to.
pub async fn user_for(db: &Db, token: &str) -> Result<Option<(i64, String)>> {
    if token.len() < 40
        || token.len() > 64
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT u.id, u.display_name FROM calendar_feeds f JOIN users u ON u.id = f.user_id \
         WHERE f.token_hash = $1 AND u.is_active = 1",
    )
    .bind(token_hash(token))
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|r| (r.get("id"), r.get("display_name"))))
}

/// Escape a TEXT value (RFC 5545 §3.3.11).
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            // CR and every other control character would break or forge content lines.
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Fold a content line at 75 octets, never inside a UTF-8 character (RFC 5545 §3.1).
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut width = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
    out
}

/// An instrument's busy slots as a public iCalendar feed (no personal data): the name is
/// escaped as TEXT and every line folded.
pub fn instrument_calendar(id: i64, name: &str, slots: &[(i64, i64)], now: i64) -> String {
    let mut out = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//labshare//instrument bookings//ZH\r\nCALSCALE:GREGORIAN\r\n",
    );
    out.push_str(&fold(&format!("X-WR-CALNAME:{} 预约占用", text(name))));
    for (s, e) in slots {
        out.push_str("BEGIN:VEVENT\r\n");
        out.push_str(&format!("UID:booking-{id}-{s}@labshare\r\n"));
        out.push_str(&format!("DTSTAMP:{}\r\n", utc(now)));
        out.push_str(&format!("DTSTART:{}\r\nDTEND:{}\r\n", utc(*s), utc(*e)));
        out.push_str(&fold(&format!("SUMMARY:已预约（{}）", text(name))));
        out.push_str("END:VEVENT\r\n");
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}

fn utc(ts: i64) -> String {
    DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// The user's feed: bookings they made and, where they manage the instrument's unit, the
/// bookings of their units' instruments; from 90 days ago to a year ahead, cancelled ones
/// left out. Times are UTC (`…Z`); calendar apps show them in the reader's zone.
pub async fn ics(db: &Db, user_id: i64, display_name: &str, now: i64) -> Result<String> {
    let rows = sqlx::query(
        "SELECT b.id, b.start_at, b.end_at, b.purpose, b.status, b.user_id, b.updated_at, b.kind, \
         (SELECT s.name FROM services s WHERE s.id = b.service_id) AS service, i.name AS instrument, i.model, i.location, \
         u.name AS booking_unit, o.name AS owner, \
         CASE WHEN i.unit_id IN (SELECT unit_id FROM unit_members WHERE user_id = $1 AND role = 'manager') THEN 1 ELSE 0 END AS managed \
         FROM bookings b JOIN instruments i ON i.id = b.instrument_id JOIN units u ON u.id = b.unit_id JOIN units o ON o.id = i.unit_id \
         WHERE b.status <> 'cancelled' AND b.end_at > $2 AND b.start_at < $3 \
         AND (b.user_id = $1 OR i.unit_id IN (SELECT unit_id FROM unit_members WHERE user_id = $1 AND role = 'manager')) \
         ORDER BY b.start_at, b.id",
    )
    .bind(user_id)
    .bind(now - 90 * 86_400)
    .bind(now + 365 * 86_400)
    .fetch_all(&db.pool)
    .await?;
    let mut out = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//labshare//personal bookings//ZH\r\nCALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\n",
    );
    out.push_str(&fold(&format!(
        "X-WR-CALNAME:{}",
        text(&format!("{display_name}的仪器预约"))
    )));
    out.push_str("X-WR-TIMEZONE:Asia/Shanghai\r\n");
    for r in rows {
        let id: i64 = r.get("id");
        let status: String = r.get("status");
        let instrument: String = r.get("instrument");
        let mine = r.get::<i64, _>("user_id") == user_id;
        let managed = r.get::<i64, _>("managed") == 1;
        // A testing order (送样检测) holds no time: it shows as an all-day event on the day its
        // report is due.
        let testing = r.get::<String, _>("kind") == "testing";
        let service: Option<String> = r.get("service");
        let summary = if testing {
            format!(
                "送样检测：{}（{}，预计出具报告）",
                service.as_deref().unwrap_or(&instrument),
                status_label(&status)
            )
        } else if mine {
            format!("仪器预约：{instrument}（{}）", status_label(&status))
        } else {
            format!(
                "来访预约：{instrument} · {}（{}）",
                r.get::<String, _>("booking_unit"),
                status_label(&status)
            )
        };
        let mut description = format!(
            "预约单号 #{id}\n仪器：{instrument} {}\n管理单位：{}\n预约单位：{}\n用途：{}\n状态：{}",
            r.get::<String, _>("model"),
            r.get::<String, _>("owner"),
            r.get::<String, _>("booking_unit"),
            r.get::<String, _>("purpose"),
            status_label(&status)
        );
        if mine && managed {
            description.push_str("\n（本人预约本单位仪器）");
        }
        out.push_str("BEGIN:VEVENT\r\n");
        out.push_str(&format!("UID:booking-{id}@labshare\r\n"));
        out.push_str(&format!("DTSTAMP:{}\r\n", utc(r.get("updated_at"))));
        if testing {
            let due =
                chrono::TimeZone::timestamp_opt(&chrono_tz::Asia::Shanghai, r.get("end_at"), 0)
                    .single()
                    .map(|t| t.date_naive())
                    .unwrap_or_default();
            out.push_str(&format!("DTSTART;VALUE=DATE:{}\r\n", due.format("%Y%m%d")));
            out.push_str(&format!(
                "DTEND;VALUE=DATE:{}\r\n",
                (due + chrono::Duration::days(1)).format("%Y%m%d")
            ));
        } else {
            out.push_str(&format!("DTSTART:{}\r\n", utc(r.get("start_at"))));
            out.push_str(&format!("DTEND:{}\r\n", utc(r.get("end_at"))));
        }
        out.push_str(&fold(&format!("SUMMARY:{}", text(&summary))));
        out.push_str(&fold(&format!("DESCRIPTION:{}", text(&description))));
        let location: String = r.get("location");
        if !location.is_empty() {
            out.push_str(&fold(&format!("LOCATION:{}", text(&location))));
        }
        out.push_str(if status == "requested" || status == "quoted" {
            "STATUS:TENTATIVE\r\n"
        } else {
            "STATUS:CONFIRMED\r\n"
        });
        out.push_str("END:VEVENT\r\n");
    }
    out.push_str("END:VCALENDAR\r\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_chinese_lines_fold_at_75_octets_between_characters() {
        let line = format!("SUMMARY:{}", "扫描电子显微镜".repeat(6));
        let folded = fold(&line);
        for part in folded.trim_end_matches("\r\n").split("\r\n") {
            assert!(part.len() <= 75, "{part:?} is {} octets", part.len());
        }
        assert_eq!(folded.replace("\r\n ", "").trim_end(), line);
    }

    #[test]
    fn an_instrument_name_cannot_forge_lines_in_the_public_feed() {
        let name = "显微镜\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:假的;a,b\\c\u{7}";
        let ics = instrument_calendar(7, name, &[(0, 3600)], 0);
        let lines = || ics.split("\r\n");
        assert_eq!(lines().filter(|l| *l == "BEGIN:VEVENT").count(), 1, "{ics}");
        assert!(
            ics.replace("\r\n ", "")
                .contains("显微镜\\nEND:VEVENT\\nBEGIN:VEVENT\\nSUMMARY:假的\\;a\\,b\\\\c"),
            "{ics}"
        );
        assert!(!ics.contains('\u{7}'));
        for line in lines() {
            assert!(line.len() <= 75, "{line:?}");
            assert!(!line.contains(['\r', '\n']));
        }
    }

    #[test]
    fn text_values_escape_separators() {
        assert_eq!(text("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
    }
}
