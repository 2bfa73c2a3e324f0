//! Personal calendar feeds (日程订阅): a secret URL per user lists their own bookings and,
//! for unit managers, the bookings of their units' instruments; regenerating it makes the
//! old URL a 404.

use serde_json::json;

use crate::common::{TestApp, certified_unit, spawn_app_with};

const NOW: &str = "2026-12-01T08:00:00+08:00";

async fn instrument(app: &TestApp, unit: i64, name: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, model, category_code, value_fen, review_status, location, created_at, updated_at) \
         VALUES ($1, $2, 'Sigma 300', '010100', 380000000, 'approved', '许昌学院理工楼 101', 0, 0) RETURNING id",
    )
    .bind(unit)
    .bind(name)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

async fn book(
    app: &TestApp,
    token: &str,
    instrument: i64,
    unit: i64,
    start: &str,
    end: &str,
) -> i64 {
    let (status, b) = app
        .api(
            "POST",
            "/api/v1/bookings",
            Some(token),
            Some(json!({"instrument_id": instrument, "unit_id": unit, "start": start, "end": end, "purpose": "材料形貌表征"})),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    b["id"].as_i64().unwrap()
}

/// The path of the feed URL shown on 我的预约 after (re)generating it.
fn feed_path(html: &str) -> String {
    let html = &html.replace("&#x2f;", "/");
    let start = html
        .find("/calendar/")
        .unwrap_or_else(|| panic!("a feed URL on the page: {html}"));
    let end = html[start..].find(".ics").unwrap() + start + 4;
    html[start..end].to_string()
}

async fn generate(app: &TestApp, client: &reqwest::Client, confirmed: bool) -> reqwest::Response {
    let fields: &[(&str, &str)] = if confirmed {
        &[("confirmed", "1")]
    } else {
        &[]
    };
    app.post_form(
        client,
        "/console/my-bookings",
        "/console/my-bookings/calendar",
        fields,
    )
    .await
}

#[tokio::test]
async fn a_secret_url_shows_my_bookings_and_my_units_incoming_ones_until_regenerated() {
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    app.create_user("cal_owner", "unit_manager").await;
    app.create_user("cal_buyer", "user").await;
    app.create_user("cal_other", "user").await;
    let owner = app.token("cal_owner").await;
    let buyer = app.token("cal_buyer").await;
    let other = app.token("cal_other").await;
    let owner_unit = certified_unit(
        &app,
        &owner,
        "许昌日程测试大学",
        401,
        "managing",
        "high_tech",
    )
    .await;
    let buyer_unit =
        certified_unit(&app, &buyer, "许昌日程测试企业", 402, "user", "high_tech").await;
    let other_unit = certified_unit(&app, &other, "许昌另一家企业", 403, "user", "high_tech").await;
    let sem = instrument(&app, owner_unit, "场发射扫描电子显微镜").await;

    // The buyer's booking (09:00–11:00 in Xuchang is 01:00–03:00 UTC), a cancelled one, and
    // another unit's booking of the same instrument.
    let mine = book(
        &app,
        &buyer,
        sem,
        buyer_unit,
        "2026-12-02T09:00:00+08:00",
        "2026-12-02T11:00:00+08:00",
    )
    .await;
    let cancelled = book(
        &app,
        &buyer,
        sem,
        buyer_unit,
        "2026-12-03T09:00:00+08:00",
        "2026-12-03T10:00:00+08:00",
    )
    .await;
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/bookings/{cancelled}/cancel"),
            Some(&buyer),
            Some(json!({"reason": "样品未到"})),
        )
        .await;
    assert_eq!(status, 200);
    let others = book(
        &app,
        &other,
        sem,
        other_unit,
        "2026-12-04T14:00:00+08:00",
        "2026-12-04T15:30:00+08:00",
    )
    .await;

    // 我的预约 offers the feed; generating shows the URL once.
    let browser = app.browser_login("cal_buyer").await;
    let (status, html) = app.get_page(&browser, "/console/my-bookings").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("日程订阅")
            && html.contains("尚未生成订阅地址")
            && html.contains("生成订阅地址")
    );
    let res = generate(&app, &browser, false).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("已生成订阅地址"), "{html}");
    let first = feed_path(&html);
    let token = first
        .trim_start_matches("/calendar/")
        .trim_end_matches(".ics")
        .to_string();
    assert!(token.len() >= 43, "256 random bits: {token}");
    let stored: Vec<(String,)> = sqlx::query_as("SELECT token_hash FROM calendar_feeds")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].0, token, "only the hash is stored");
    let (_, html) = app.get_page(&browser, "/console/my-bookings").await;
    assert!(!html.contains(&token), "the URL is shown only once");
    assert!(html.contains("重新生成订阅地址"));

    // The feed: no login, the buyer's live booking with the right times, nothing else.
    let res = app.client.get(app.url(&first)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    let ics = res.text().await.unwrap();
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.ends_with("END:VCALENDAR\r\n"));
    assert!(
        ics.contains(&format!("UID:booking-{mine}@labshare")),
        "{ics}"
    );
    assert!(
        ics.contains("DTSTART:20261202T010000Z") && ics.contains("DTEND:20261202T030000Z"),
        "{ics}"
    );
    assert!(
        ics.contains("SUMMARY:仪器预约：场发射扫描电子显微镜（待议价）"),
        "{ics}"
    );
    assert!(ics.contains("LOCATION:许昌学院理工楼 101") && ics.contains("STATUS:TENTATIVE"));
    assert!(
        !ics.contains(&format!("booking-{cancelled}@")),
        "cancelled bookings are left out"
    );
    assert!(
        !ics.contains(&format!("booking-{others}@")),
        "other units' bookings are private"
    );
    assert_eq!(ics.matches("BEGIN:VEVENT").count(), 1);
    for line in ics.split("\r\n") {
        assert!(line.len() <= 75, "folded: {line:?}");
    }

    // The managing unit's manager sees the incoming bookings of its instrument.
    let owner_browser = app.browser_login("cal_owner").await;
    let html = generate(&app, &owner_browser, false)
        .await
        .text()
        .await
        .unwrap();
    let owner_feed = feed_path(&html);
    let raw = app
        .client
        .get(app.url(&owner_feed))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Long lines are folded at 75 octets (CRLF + space); unfold to read them.
    let ics = raw.replace("\r\n ", "");
    assert!(
        ics.contains(&format!("UID:booking-{mine}@labshare"))
            && ics.contains(&format!("UID:booking-{others}@labshare")),
        "{ics}"
    );
    assert!(
        ics.contains("来访预约：场发射扫描电子显微镜 · 许昌另一家企业"),
        "{ics}"
    );
    assert!(ics.contains("DTSTART:20261204T060000Z") && ics.contains("DTEND:20261204T073000Z"));
    assert!(!ics.contains(&format!("booking-{cancelled}@")));

    // Wrong or malformed tokens are 404.
    for path in [
        "/calendar/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.ics".to_string(),
        "/calendar/abc.ics".to_string(),
        first.trim_end_matches(".ics").to_string(),
    ] {
        let res = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }

    // Regenerating asks first; once confirmed, the old URL stops working.
    let res = generate(&app, &browser, false).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("确定重新生成") && html.contains("旧地址立即失效"),
        "{html}"
    );
    assert_eq!(
        app.client
            .get(app.url(&first))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "not yet replaced"
    );
    let html = generate(&app, &browser, true).await.text().await.unwrap();
    assert!(html.contains("已重新生成订阅地址"), "{html}");
    let second = feed_path(&html);
    assert_ne!(second, first);
    assert_eq!(
        app.client
            .get(app.url(&first))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let res = app.client.get(app.url(&second)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains(&format!("UID:booking-{mine}@labshare"))
    );
    assert_eq!(
        app.client
            .get(app.url(&owner_feed))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "another user's feed is unaffected"
    );
}
