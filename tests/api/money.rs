use labshare::money;
use serde_json::{Value, json};

use crate::common::{TestApp, certified_unit, spawn_app_with};

/// Tuesday 1 December 2026, 08:00 in Xuchang: a working day.
const NOW: &str = "2026-12-01T08:00:00+08:00";

pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) owner: String,
    pub(crate) user: String,
    pub(crate) user_unit: i64,
    pub(crate) instrument: i64,
}

async fn instrument(app: &TestApp, unit: i64, customs: bool) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, category_code, value_fen, review_status, customs_supervised, created_at, updated_at) \
         VALUES ($1, '场发射扫描电子显微镜', '010100', 380000000, 'approved', $2, 0, 0) RETURNING id",
    )
    .bind(unit).bind(customs as i64).fetch_one(&app.db.pool).await.unwrap()
}

pub(crate) async fn world(etype: &str) -> World {
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    app.create_user("owner", "unit_manager").await;
    app.create_user("buyer", "user").await;
    let owner = app.token("owner").await;
    let user = app.token("buyer").await;
    let owner_unit = certified_unit(&app, &owner, "许昌测试大学", 101, "managing", "other").await;
    let user_unit = certified_unit(&app, &user, "许昌测试企业", 102, "user", etype).await;
    let instrument = instrument(&app, owner_unit, false).await;
    World {
        app,
        owner,
        user,
        user_unit,
        instrument,
    }
}

/// The service took place (Arrange: move the booking two days into the past) and the owner
/// completes it; returns the completion's body.
pub(crate) async fn complete_after_service(w: &World, id: i64) -> Value {
    sqlx::query(
        "UPDATE bookings SET start_at = start_at - 172800, end_at = end_at - 172800 WHERE id = $1",
    )
    .bind(id)
    .execute(&w.app.db.pool)
    .await
    .unwrap();
    let (status, body) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{id}/complete"),
            Some(&w.owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

pub(crate) async fn grant(w: &World, year: i64) {
    let (pid, policy) = money::current(&w.app.db).await.unwrap();
    let et: String = sqlx::query_scalar("SELECT enterprise_type FROM units WHERE id = $1")
        .bind(w.user_unit)
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap();
    let mut conn = w.app.db.acquire().await.unwrap();
    money::vouchers::grant(
        &mut conn,
        w.user_unit,
        year,
        policy.quota_for(&et),
        pid,
        w.app.now(),
    )
    .await
    .unwrap();
}

async fn book(w: &World, start: &str, end: &str) -> (u16, Value) {
    w.app
        .api("POST", "/api/v1/bookings", Some(&w.user), Some(json!({
            "instrument_id": w.instrument, "unit_id": w.user_unit, "start": start, "end": end, "purpose": "材料形貌表征"
        })))
        .await
}

pub(crate) async fn quoted(w: &World, start: &str, end: &str, price: &str) -> i64 {
    let (status, b) = book(w, start, end).await;
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_i64().unwrap();
    let (status, q) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{id}/quote"),
            Some(&w.owner),
            Some(json!({"price": price})),
        )
        .await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["status"], "quoted");
    id
}

async fn available(w: &World) -> String {
    let (_, b) = w
        .app
        .api(
            "GET",
            &format!("/api/v1/units/{}/vouchers?year=2026", w.user_unit),
            Some(&w.user),
            None,
        )
        .await;
    b["available"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn vouchers_may_pay_exactly_40_percent_and_not_a_fen_more() {
    let w = world("high_tech").await;
    grant(&w, 2026).await;
    let a = quoted(
        &w,
        "2026-12-02T09:00:00+08:00",
        "2026-12-02T11:00:00+08:00",
        "10000.00",
    )
    .await;
    let (status, body) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{a}/confirm"),
            Some(&w.user),
            Some(json!({"voucher_amount": "4000.01"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "voucher_over_ratio");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4000.00")
    );
    let (status, body) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{a}/confirm"),
            Some(&w.user),
            Some(json!({"voucher_amount": "4000.00"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "confirmed");
    let (_, bal) = w
        .app
        .api(
            "GET",
            &format!("/api/v1/units/{}/vouchers?year=2026", w.user_unit),
            Some(&w.user),
            None,
        )
        .await;
    assert_eq!(
        bal,
        json!({"year": 2026, "quota": "50000.00", "used": "4000.00", "expired": "0.00", "available": "46000.00"})
    );
}

#[tokio::test]
async fn the_quota_boundary_and_ineligible_units_are_refused() {
    let w = world("tech_sme").await;
    // No quota granted yet.
    let a = quoted(
        &w,
        "2026-12-02T09:00:00+08:00",
        "2026-12-02T10:00:00+08:00",
        "75000.00",
    )
    .await;
    let (status, body) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{a}/confirm"),
            Some(&w.user),
            Some(json!({"voucher_amount": "1.00"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("voucher_quota_exceeded"))
    );
    grant(&w, 2026).await;
    let b = quoted(
        &w,
        "2026-12-03T09:00:00+08:00",
        "2026-12-03T10:00:00+08:00",
        "75000.03",
    )
    .await;
    let (status, body) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{b}/confirm"),
            Some(&w.user),
            Some(json!({"voucher_amount": "30000.01"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("voucher_quota_exceeded")),
        "{body}"
    );
    let (status, _) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{b}/confirm"),
            Some(&w.user),
            Some(json!({"voucher_amount": "30000.00"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(available(&w).await, "0.00");

    sqlx::query("UPDATE units SET dishonest = 1 WHERE id = $1")
        .bind(w.user_unit)
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let c = quoted(
        &w,
        "2026-12-04T09:00:00+08:00",
        "2026-12-04T10:00:00+08:00",
        "100.00",
    )
    .await;
    let (status, body) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{c}/confirm"),
            Some(&w.user),
            Some(json!({"voucher_amount": "0"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("unit_not_eligible"))
    );
}

#[tokio::test]
async fn booking_rules_are_enforced_with_field_messages() {
    let w = world("high_tech").await;
    let cases = [
        (
            "2026-12-05T09:00:00+08:00",
            "2026-12-05T10:00:00+08:00",
            "周末",
        ),
        (
            "2026-12-02T07:00:00+08:00",
            "2026-12-02T09:00:00+08:00",
            "开放时间",
        ),
        (
            "2026-12-02T09:10:00+08:00",
            "2026-12-02T10:00:00+08:00",
            "30 分钟",
        ),
        (
            "2026-12-01T08:30:00+08:00",
            "2026-12-01T09:30:00+08:00",
            "提前 1 小时",
        ),
        (
            "2027-04-01T09:00:00+08:00",
            "2027-04-01T10:00:00+08:00",
            "90 天",
        ),
        (
            "2026-12-02T11:00:00+08:00",
            "2026-12-02T10:00:00+08:00",
            "晚于开始",
        ),
        ("tomorrow", "2026-12-02T10:00:00+08:00", "RFC 3339"),
    ];
    for (start, end, expect) in cases {
        let (status, body) = book(&w, start, end).await;
        assert_eq!(status, 422, "{start}: {body}");
        let fields = body["error"]["fields"].to_string();
        assert!(fields.contains(expect), "{start}: {fields}");
    }
}

#[tokio::test]
async fn a_hundred_concurrent_bookings_of_one_slot_give_exactly_one() {
    let w = world("high_tech").await;
    let mut handles = Vec::new();
    for _ in 0..100 {
        let client = w.app.client.clone();
        let url = w.app.url("/api/v1/bookings");
        let token = w.user.clone();
        let body = json!({"instrument_id": w.instrument, "unit_id": w.user_unit,
            "start": "2026-12-02T09:00:00+08:00", "end": "2026-12-02T12:00:00+08:00", "purpose": "并发测试"});
        handles.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let v: Value = res.json().await.unwrap();
            (status, v)
        }));
    }
    let mut ok = 0;
    let mut taken = 0;
    for h in handles {
        let (status, v) = h.await.unwrap();
        match status {
            201 => ok += 1,
            409 => {
                assert_eq!(v["error"]["code"], "slot_taken");
                taken += 1
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!((ok, taken), (1, 99));
    // An overlapping slot is taken too; an adjacent one is free.
    assert_eq!(
        book(&w, "2026-12-02T11:30:00+08:00", "2026-12-02T13:00:00+08:00")
            .await
            .0,
        409
    );
    assert_eq!(
        book(&w, "2026-12-02T12:00:00+08:00", "2026-12-02T13:00:00+08:00")
            .await
            .0,
        201
    );
}

#[tokio::test]
async fn a_hundred_concurrent_confirmations_never_overspend_the_quota() {
    let w = world("tech_sme").await; // 30,000.00
    grant(&w, 2026).await;
    // 100 quoted bookings at 1,000.00, each wanting 400.00 of vouchers: 40,000.00 in all.
    let mut ids = Vec::new();
    for i in 0..100i64 {
        let start = 1_796_000_000 + i * 7200; // distinct slots, written directly (Arrange)
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, status, price_fen, created_at, updated_at) \
             VALUES ($1, $2, (SELECT id FROM users WHERE username = 'buyer'), $3, $4, '并发', 'quoted', 100000, 0, 0) RETURNING id",
        )
        .bind(w.instrument).bind(w.user_unit).bind(start).bind(start + 3600)
        .fetch_one(&w.app.db.pool).await.unwrap();
        ids.push(id);
    }
    let mut handles = Vec::new();
    for id in ids {
        let client = w.app.client.clone();
        let url = w.app.url(&format!("/api/v1/bookings/{id}/confirm"));
        let token = w.user.clone();
        handles.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"voucher_amount": "400.00"}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let v: Value = res.json().await.unwrap();
            (status, v)
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for h in handles {
        let (status, v) = h.await.unwrap();
        match status {
            200 => ok += 1,
            422 => {
                assert_eq!(v["error"]["code"], "voucher_quota_exceeded", "{v}");
                refused += 1
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!((ok, refused), (75, 25));
    assert_eq!(available(&w).await, "0.00");
    // The balance is the sum of the ledger.
    let sum: i64 = sqlx::query_scalar("SELECT CAST(SUM(delta_fen) AS BIGINT) FROM voucher_ledger WHERE unit_id = $1 AND year = 2026")
        .bind(w.user_unit).fetch_one(&w.app.db.pool).await.unwrap();
    assert_eq!(sum, 0);
    let reserves: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM voucher_ledger WHERE unit_id = $1 AND kind = 'reserve'",
    )
    .bind(w.user_unit)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(reserves, 75);
}

#[tokio::test]
async fn cancelling_releases_the_slot_and_the_vouchers() {
    let w = world("high_tech").await;
    grant(&w, 2026).await;
    let a = quoted(
        &w,
        "2026-12-02T09:00:00+08:00",
        "2026-12-02T10:00:00+08:00",
        "5000.00",
    )
    .await;
    w.app
        .api(
            "POST",
            &format!("/api/v1/bookings/{a}/confirm"),
            Some(&w.user),
            Some(json!({"voucher_amount": "2000.00"})),
        )
        .await;
    assert_eq!(available(&w).await, "48000.00");
    let (status, body) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{a}/cancel"),
            Some(&w.user),
            Some(json!({"reason": ""})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{a}/cancel"),
            Some(&w.user),
            Some(json!({"reason": "样品未能按时制备"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(available(&w).await, "50000.00");
    assert_eq!(
        book(&w, "2026-12-02T09:00:00+08:00", "2026-12-02T10:00:00+08:00")
            .await
            .0,
        201
    );
    let (_, ledger) = w
        .app
        .api(
            "GET",
            &format!("/api/v1/units/{}/voucher-ledger?year=2026", w.user_unit),
            Some(&w.user),
            None,
        )
        .await;
    let kinds: Vec<_> = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["release", "reserve", "grant"]);
}

#[tokio::test]
async fn customs_supervised_instruments_need_the_notice_number_for_external_use() {
    let w = world("high_tech").await;
    grant(&w, 2026).await;
    let owner_unit: i64 = sqlx::query_scalar("SELECT unit_id FROM instruments WHERE id = $1")
        .bind(w.instrument)
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap();
    let customs = instrument(&w.app, owner_unit, true).await;
    let (status, b) = w
        .app
        .api(
            "POST",
            "/api/v1/bookings",
            Some(&w.user),
            Some(json!({
        "instrument_id": customs, "unit_id": w.user_unit, "start": "2026-12-02T09:00:00+08:00",
        "end": "2026-12-02T10:00:00+08:00", "purpose": "检测"})),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_i64().unwrap();
    w.app
        .api(
            "POST",
            &format!("/api/v1/bookings/{id}/quote"),
            Some(&w.owner),
            Some(json!({"price": "800.00"})),
        )
        .await;
    let (status, body) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{id}/confirm"),
            Some(&w.user),
            Some(json!({"voucher_amount": "0"})),
        )
        .await;
    assert_eq!(status, 422);
    assert!(body["error"]["fields"]["customs_notice_no"].is_string());
    let (status, _) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{id}/confirm"),
            Some(&w.user),
            Some(json!({"voucher_amount": "0", "customs_notice_no": "HG2026-0173"})),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn completing_creates_the_service_record_and_the_settlement_follows_the_brief() {
    let w = world("high_tech").await;
    grant(&w, 2026).await;
    let a = quoted(
        &w,
        "2026-12-02T09:00:00+08:00",
        "2026-12-02T11:00:00+08:00",
        "10000.00",
    )
    .await;
    w.app
        .api(
            "POST",
            &format!("/api/v1/bookings/{a}/confirm"),
            Some(&w.user),
            Some(json!({"voucher_amount": "4000.00"})),
        )
        .await;
    let (status, body) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{a}/complete"),
            Some(&w.owner),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("too_early"))
    );
    let body = complete_after_service(&w, a).await;
    assert_eq!(body["status"], "completed");
    assert!(
        body["service_record"]["order_no"]
            .as_str()
            .unwrap()
            .starts_with("FW20261201")
    );
    let (status, _) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{a}/complete"),
            Some(&w.owner),
            None,
        )
        .await;
    assert_eq!(status, 409, "completing twice changes nothing");

    // Income of 120,000.00 on one instrument (this record's 4,000 plus earlier redeemed ones).
    let owner_unit: i64 = sqlx::query_scalar("SELECT unit_id FROM instruments WHERE id = $1")
        .bind(w.instrument)
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE service_records SET voucher_fen = 12000000 WHERE booking_id = $1")
        .bind(a)
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let rid: i64 = sqlx::query_scalar("INSERT INTO redemptions (managing_unit_id, status, total_fen, created_by, created_at) VALUES ($1, 'approved', 12000000, 1, 0) RETURNING id")
        .bind(owner_unit).fetch_one(&w.app.db.pool).await.unwrap();
    sqlx::query("INSERT INTO redemption_items (redemption_id, booking_id, voucher_fen) VALUES ($1, $2, 12000000)")
        .bind(rid).bind(a).execute(&w.app.db.pool).await.unwrap();

    w.app.create_user("bureau_money", "platform_admin").await;
    let admin = w.app.token("bureau_money").await;
    let (status, _) = w
        .app
        .api(
            "PUT",
            &format!("/api/v1/units/{owner_unit}/grades/2026"),
            Some(&admin),
            Some(json!({"grade": "good", "reason": "省级评价结果"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, s) = w
        .app
        .api(
            "POST",
            "/api/v1/subsidy-settlements",
            Some(&admin),
            Some(json!({"year": 2026})),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    assert_eq!(s["total"], "30000.00");
    assert_eq!(s["units"][0]["instruments"][0]["income"], "120000.00");
    assert_eq!(s["units"][0]["instruments"][0]["uncapped"], "36000.00");
    assert_eq!(s["units"][0]["instruments"][0]["amount"], "30000.00");
    let (status, again) = w
        .app
        .api(
            "GET",
            &format!("/api/v1/subsidy-settlements/{}", s["id"]),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        again["units"], s["units"],
        "the stored figures are reproducible"
    );
    let (status, _) = w
        .app
        .api(
            "POST",
            "/api/v1/subsidy-settlements",
            Some(&w.user),
            Some(json!({"year": 2026})),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_whole_booking_journey_works_through_the_pages() {
    let w = world("high_tech").await;
    grant(&w, 2026).await;
    let buyer = w.app.browser_login("buyer").await;
    let owner = w.app.browser_login("owner").await;
    let book_page = format!("/instruments/{}/book?week=2026-11-30", w.instrument);
    let (status, html) = w.app.get_page(&buyer, &book_page).await;
    assert_eq!(status, 200);
    assert!(html.contains("可约") && html.contains("提交预约申请"));

    // A weekend date is refused beside the field, the input kept.
    let action = format!("/instruments/{}/book", w.instrument);
    let unit = w.user_unit.to_string();
    let res = w
        .app
        .post_form(
            &buyer,
            &book_page,
            &action,
            &[
                ("unit_id", &unit),
                ("date", "2026-12-05"),
                ("start_time", "09:00"),
                ("end_time", "10:00"),
                ("purpose", "形貌观察"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("周末或法定节假日"));
    assert!(html.contains("形貌观察"));

    let res = w
        .app
        .post_form(
            &buyer,
            &book_page,
            &action,
            &[
                ("unit_id", &unit),
                ("date", "2026-12-02"),
                ("start_time", "09:00"),
                ("end_time", "11:00"),
                ("purpose", "形貌观察"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = w.app.get_page(&buyer, "/console/my-bookings").await;
    assert!(html.contains("待议价"), "{html}");
    let id: i64 = sqlx::query_scalar("SELECT id FROM bookings")
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap();

    let res = w
        .app
        .post_form(
            &owner,
            "/console/bookings",
            &format!("/console/bookings/{id}/quote"),
            &[("price", "2500.00"), ("back", "incoming")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let res = w
        .app
        .post_form(
            &buyer,
            "/console/my-bookings",
            &format!("/console/bookings/{id}/confirm"),
            &[("voucher_amount", "1000.00")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = w.app.get_page(&buyer, "/console/my-bookings").await;
    assert!(html.contains("已确认"), "{html}");
    let (_, html) = w.app.get_page(&buyer, "/console/vouchers?year=2026").await;
    assert!(html.contains("49,000.00"), "available after 1,000 reserved");

    let (status, html) = w.app.get_page(&buyer, &book_page).await;
    assert_eq!(status, 200);
    assert!(html.contains("已约"));
    let res = w
        .app
        .client
        .get(
            w.app
                .url(&format!("/instruments/{}/calendar.ics", w.instrument)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let ics = res.text().await.unwrap();
    assert!(ics.contains("DTSTART:20261202T010000Z"), "{ics}");
    assert!(
        !ics.contains("形貌观察"),
        "no personal data in the public feed"
    );
}

/// Approve every open task of `token`'s user until none is left; returns how many. A public
/// notice (公示) is not approved by hand: it passes when its period ends.
pub(crate) async fn approve_all(w: &World, token: &str) -> usize {
    let mut n = 0;
    loop {
        let (_, tasks) = w.app.api("GET", "/api/v1/tasks", Some(token), None).await;
        let items: Vec<Value> = tasks["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t["step"] != "publicity")
            .collect();
        if items.is_empty() || n > 20 {
            return n;
        }
        for t in items {
            let (status, body) = w
                .app
                .api(
                    "POST",
                    &format!("/api/v1/tasks/{}/actions", t["id"]),
                    Some(token),
                    Some(json!({"action": "approve", "comment": "同意"})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            n += 1;
        }
    }
}

#[tokio::test]
async fn the_whole_journey_book_quote_confirm_complete_redeem_evaluate_settle() {
    let w = world("high_tech").await;
    w.app.create_user("bureau_j", "platform_admin").await;
    let admin = w.app.token("bureau_j").await;
    // A second platform admin: 复核 needs someone other than 初审 (distinct_from), and the
    // settlement's starter never reviews it.
    w.app.create_user("bureau_j2", "platform_admin").await;
    let checker = w.app.token("bureau_j2").await;

    // Apply for vouchers: the review approves and the quota is granted from the policy.
    let (status, body) = w
        .app
        .api(
            "POST",
            "/api/v1/voucher-applications",
            Some(&w.user),
            Some(json!({"unit_id": w.user_unit, "year": 2026})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, _) = w
        .app
        .api(
            "POST",
            "/api/v1/voucher-applications",
            Some(&w.user),
            Some(json!({"unit_id": w.user_unit, "year": 2026})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(available(&w).await, "0.00");
    assert_eq!(approve_all(&w, &admin).await, 1);
    assert_eq!(available(&w).await, "50000.00");

    // Book, quote, confirm with 40%, complete.
    let a = quoted(
        &w,
        "2026-12-02T09:00:00+08:00",
        "2026-12-02T11:00:00+08:00",
        "12345.67",
    )
    .await;
    let (status, _) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{a}/confirm"),
            Some(&w.user),
            Some(json!({"voucher_amount": "4938.26"})),
        )
        .await;
    assert_eq!(status, 200);
    complete_after_service(&w, a).await;

    // Redeem: review, recheck, public notice — then it counts as income.
    let owner_unit: i64 = sqlx::query_scalar("SELECT unit_id FROM instruments WHERE id = $1")
        .bind(w.instrument)
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap();
    let (status, r) = w
        .app
        .api(
            "POST",
            "/api/v1/redemptions",
            Some(&w.owner),
            Some(json!({"unit_id": owner_unit, "booking_ids": [a]})),
        )
        .await;
    assert_eq!(status, 202, "{r}");
    assert_eq!(r["total"], "4938.26");
    let (status, _) = w
        .app
        .api(
            "POST",
            "/api/v1/redemptions",
            Some(&w.owner),
            Some(json!({"unit_id": owner_unit, "booking_ids": [a]})),
        )
        .await;
    assert_eq!(status, 422, "a booking is redeemed once");
    // Review needs the contract and the invoice.
    let rid = r["id"].as_i64().unwrap();
    for (kind, name) in [("contract", "合同.pdf"), ("invoice", "发票.pdf")] {
        let (status, body) =
            crate::redemptions::attach(&w.app, &w.owner, rid, kind, name, crate::redemptions::PDF)
                .await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(approve_all(&w, &admin).await, 1, "review");
    assert_eq!(
        approve_all(&w, &checker).await,
        1,
        "recheck by someone else"
    );
    // During the five working days of public notice only an objection can be upheld; the
    // notice passes by itself when the period ends.
    let (_, tasks) = w.app.api("GET", "/api/v1/tasks", Some(&admin), None).await;
    let notice = &tasks["items"][0];
    assert_eq!(notice["step"], "publicity");
    let (status, body) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/tasks/{}/actions", notice["id"]),
            Some(&admin),
            Some(json!({"action": "approve"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("form_incomplete")),
        "{body}"
    );
    // One notice task per voucher manager (both platform admins).
    assert_eq!(crate::common::notice_period_passes(&w.app).await, 2);
    let status: String = sqlx::query_scalar("SELECT status FROM redemptions WHERE id = $1")
        .bind(r["id"].as_i64().unwrap())
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "approved");
    let (_, ledger) = w
        .app
        .api(
            "GET",
            &format!("/api/v1/units/{}/voucher-ledger?year=2026", w.user_unit),
            Some(&w.user),
            None,
        )
        .await;
    assert_eq!(ledger["items"][0]["kind"], "redeem");
    assert_eq!(ledger["balance"]["available"], "45061.74");

    // Evaluate: the owner declares, three experts from the pool score 92, 91 and 95, the
    // trimmed mean 92.00 gives 优秀 and the bureau publishes it.
    let (status, ev) = w
        .app
        .api(
            "POST",
            "/api/v1/evaluations",
            Some(&w.owner),
            Some(json!({"unit_id": owner_unit, "year": 2026, "self_report": "全年开放共享，服务企业，制度健全。"})),
        )
        .await;
    assert_eq!(status, 202, "{ev}");
    let ev_id = ev["id"].as_i64().unwrap();
    let mut experts = Vec::new();
    for i in 0..3 {
        experts.push(
            crate::evaluations::expert(&w.app, &format!("jx{i}"), &format!("专家{i}"), "河南大学")
                .await,
        );
    }
    let (status, body) = w
        .app
        .api(
            "PUT",
            &format!("/api/v1/evaluations/{ev_id}/experts"),
            Some(&admin),
            Some(json!({"expert_ids": experts.iter().map(|e| e.0).collect::<Vec<_>>()})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(approve_all(&w, &admin).await, 1, "the assignment goes out");
    for ((_, token), results) in experts.iter().zip(["22", "21", "25"]) {
        let (status, out) = w
            .app
            .api(
                "POST",
                &format!("/api/v1/evaluations/{ev_id}/scores"),
                Some(token),
                Some(json!({"scores": {"usage": "25", "sharing": "25", "results": results, "satisfaction": "10", "management": "10"}})),
            )
            .await;
        assert_eq!(status, 200, "{out}");
    }
    let (_, tasks) = w.app.api("GET", "/api/v1/tasks", Some(&admin), None).await;
    let grading = tasks["items"][0]["id"].as_i64().unwrap();
    let (status, out) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/tasks/{grading}/actions"),
            Some(&admin),
            Some(json!({"action": "approve", "comment": "", "data": {"grade": "excellent"}})),
        )
        .await;
    assert_eq!(
        (status, out["state"].as_str()),
        (200, Some("published")),
        "{out}"
    );

    // Settle: 4,938.26 × 30% (优秀) = 1,481.478 → 1,481.48. The checker starts it, so the
    // review goes to the other subsidy manager.
    let (status, s) = w
        .app
        .api(
            "POST",
            "/api/v1/subsidy-settlements",
            Some(&checker),
            Some(json!({"year": 2026})),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    assert_eq!(
        s["units"][0]["grade"], "excellent",
        "the published evaluation's grade"
    );
    assert_eq!(s["total"], "1481.48");
    assert!(s["instance_id"].is_number());
    // The owning unit's manager confirms its lines, then the subsidy manager publishes.
    assert_eq!(s["units"][0]["confirmation"]["status"], "pending");
    let (status, c) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/subsidy-settlements/{}/confirm", s["id"]),
            Some(&w.owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["units"][0]["confirmation"]["status"], "confirmed");
    assert_eq!(approve_all(&w, &admin).await, 1);
    let (_, s2) = w
        .app
        .api(
            "GET",
            &format!("/api/v1/subsidy-settlements/{}", s["id"]),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s2["status"], "published");
    assert_eq!(s2["total"], "1481.48");

    // The platform admin's console pages show the same figures.
    let console = w.app.browser_login("bureau_j").await;
    let (status, html) = w
        .app
        .get_page(&console, "/console/voucher-admin?year=2026")
        .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("50000.00") && html.contains("4,938.26") && html.contains("已兑付"),
        "{html}"
    );
    let (status, html) = w.app.get_page(&console, "/console/subsidies").await;
    assert_eq!(status, 200);
    assert!(html.contains("1,481.48") && html.contains("已下达"));
    // The computation line by line: income, income × coefficient, amount.
    let (status, html) = w
        .app
        .get_page(&console, &format!("/console/subsidies/{}", s["id"]))
        .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("场发射扫描电子显微镜")
            && html.contains("4,938.26")
            && html.contains("1,481.48")
            && html.contains("优秀"),
        "{html}"
    );
    let owner_console = w.app.browser_login("owner").await;
    let (status, _) = w
        .app
        .get_page(&owner_console, &format!("/console/subsidies/{}", s["id"]))
        .await;
    assert_eq!(
        status, 403,
        "units see their own lines on the confirmation page"
    );
    let res = console
        .get(
            w.app
                .url(&format!("/console/subsidies/{}/export.xlsx", s["id"])),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("spreadsheetml")
    );
}

#[tokio::test]
async fn vouchers_on_a_booking_whose_units_share_a_member_need_a_platform_decision() {
    let w = world("high_tech").await;
    grant(&w, 2026).await;
    // The instrument unit's manager is also a member of the booking unit (关联交易).
    let owner_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'owner'")
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO unit_members (unit_id, user_id, role, created_at) VALUES ($1, $2, 'member', 0)")
        .bind(w.user_unit)
        .bind(owner_id)
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let a = quoted(
        &w,
        "2026-12-02T09:00:00+08:00",
        "2026-12-02T11:00:00+08:00",
        "10000.00",
    )
    .await;
    let confirm_path = format!("/api/v1/bookings/{a}/confirm");
    let confirm = || {
        w.app.api(
            "POST",
            &confirm_path,
            Some(&w.user),
            Some(json!({"voucher_amount": "4000.00"})),
        )
    };
    let (status, body) = confirm().await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "self_dealing");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("关联交易")
    );

    // Only the platform (voucher.manage) may allow it, with a reason.
    let path = format!("/api/v1/bookings/{a}/voucher-exception");
    let (status, _) = w
        .app
        .api(
            "POST",
            &path,
            Some(&w.user),
            Some(json!({"reason": "自己批准"})),
        )
        .await;
    assert_eq!(status, 403);
    w.app.create_user("voucher_admin", "platform_admin").await;
    let admin = w.app.token("voucher_admin").await;
    let (status, body) = w
        .app
        .api("POST", &path, Some(&admin), Some(json!({"reason": ""})))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = w
        .app
        .api(
            "POST",
            &path,
            Some(&admin),
            Some(json!({"reason": "兼职人员不参与该项服务，经审核同意"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = confirm().await;
    assert_eq!(status, 200, "after the platform's decision: {body}");
}
