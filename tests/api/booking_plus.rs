//! Issue 17: availability, weekly repeats, waitlists and their race, qualifications and
//! training, check-in, no-shows (the job run twice) and suspensions, measured hours. Both
//! databases (`LABSHARE_TEST_DATABASE_URL`).

use serde_json::{Value, json};

use crate::common::certified_unit;
use crate::money::{World, quoted, world};

async fn post(w: &World, path: &str, token: &str, body: Value) -> (u16, Value) {
    w.app.api("POST", path, Some(token), Some(body)).await
}

async fn book(w: &World, token: &str, unit: i64, start: &str, end: &str) -> (u16, Value) {
    post(
        w,
        "/api/v1/bookings",
        token,
        json!({"instrument_id": w.instrument, "unit_id": unit, "start": start, "end": end, "purpose": "材料形貌表征"}),
    )
    .await
}

/// A second enterprise with its own user (Arrange).
async fn another(w: &World, name: &str, n: u32) -> (String, i64) {
    w.app.create_user(name, "user").await;
    let token = w.app.token(name).await;
    let unit = certified_unit(
        &w.app,
        &token,
        &format!("许昌{name}企业"),
        n,
        "user",
        "high_tech",
    )
    .await;
    (token, unit)
}

fn enc(s: &str) -> String {
    s.replace('+', "%2B")
}

async fn availability(w: &World, from: &str, to: &str, min: i64) -> (u16, Value) {
    w.app
        .api(
            "GET",
            &format!(
                "/api/v1/availability?category=010100&city=许昌市&from={}&to={}&min_minutes={min}",
                enc(from),
                enc(to)
            ),
            None,
            None,
        )
        .await
}

async fn run_job(w: &World, at_offset: i64) -> labshare::jobs::Outcome {
    let at = chrono::DateTime::from_timestamp(w.app.now() + at_offset, 0).unwrap();
    labshare::jobs::run(&w.app.state, "booking-no-shows", at)
        .await
        .unwrap()
}

#[tokio::test]
async fn availability_leaves_out_bookings_holidays_and_short_gaps() {
    let w = world("high_tech").await;
    let (s, b) = book(
        &w,
        &w.user,
        w.user_unit,
        "2026-12-08T14:00:00+08:00",
        "2026-12-08T16:00:00+08:00",
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = availability(
        &w,
        "2026-12-08T08:00:00+08:00",
        "2026-12-08T18:00:00+08:00",
        120,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let item = &b["items"][0];
    assert_eq!(item["instrument_id"], w.instrument);
    let free = crate::common::free_hours(item);
    assert_eq!(
        free,
        vec![
            ("08:00".to_string(), "14:00".to_string()),
            ("16:00".to_string(), "18:00".to_string())
        ]
    );
    // The booked window itself, and a public holiday (New Year's Day 2027), have nothing.
    for (from, to) in [
        ("2026-12-08T14:00:00+08:00", "2026-12-08T16:00:00+08:00"),
        ("2027-01-01T08:00:00+08:00", "2027-01-01T18:00:00+08:00"),
    ] {
        let (s, b) = availability(&w, from, to, 30).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["items"], json!([]), "{from}");
    }
    // Another class has nothing either; a backwards window is a Chinese 422.
    let (s, b) = w
        .app
        .api(
            "GET",
            "/api/v1/availability?category=020000&from=2026-12-08T08:00:00%2B08:00&to=2026-12-08T18:00:00%2B08:00",
            None,
            None,
        )
        .await;
    assert_eq!((s, b["items"].clone()), (200, json!([])), "{b}");
    let (s, b) = availability(
        &w,
        "2026-12-08T18:00:00+08:00",
        "2026-12-08T08:00:00+08:00",
        30,
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("结束时间"),
        "{b}"
    );
    // The page shows the same search.
    let (s, html) = w
        .app
        .get_page(
            &w.app.client,
            "/availability?category=010100&date=2026-12-08&start_time=14:00&end_time=16:00&min_minutes=120",
        )
        .await;
    assert_eq!(s, 200);
    assert!(html.contains("没有满足条件的空闲仪器"), "{html}");
    let (s, html) = w
        .app
        .get_page(
            &w.app.client,
            "/availability/grid?category=010100&week=2026-12-08",
        )
        .await;
    assert_eq!(s, 200);
    assert!(html.contains("场发射扫描电子显微镜"));
}

#[tokio::test]
async fn weekly_repeat_skips_holidays_and_taken_weeks_with_reasons() {
    let w = world("high_tech").await;
    let (other, other_unit) = another(&w, "rival", 201).await;
    // Friday 25 December is taken by another unit; Friday 1 January 2027 is a holiday.
    let (s, b) = book(
        &w,
        &other,
        other_unit,
        "2026-12-25T09:00:00+08:00",
        "2026-12-25T10:00:00+08:00",
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = post(
        &w,
        "/api/v1/bookings",
        &w.user,
        json!({"instrument_id": w.instrument, "unit_id": w.user_unit, "start": "2026-12-18T09:00:00+08:00",
               "end": "2026-12-18T10:00:00+08:00", "purpose": "长期表征", "repeat": {"weekly": 4}}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let created: Vec<&str> = b["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["start"].as_str().unwrap()[..10])
        .collect();
    assert_eq!(created, vec!["2026-12-18", "2027-01-08"], "{b}");
    let skipped = b["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{b}");
    assert_eq!(&skipped[0]["start"].as_str().unwrap()[..10], "2026-12-25");
    assert_eq!(skipped[0]["reason"], "该时段已被预约");
    assert_eq!(&skipped[1]["start"].as_str().unwrap()[..10], "2027-01-01");
    assert!(skipped[1]["reason"].as_str().unwrap().contains("节假日"));
    // Both created bookings are one series.
    let ids: Vec<i64> = b["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    let series: Vec<Option<i64>> =
        sqlx::query_scalar("SELECT series_id FROM bookings WHERE id IN ($1, $2) ORDER BY id")
            .bind(ids[0])
            .bind(ids[1])
            .fetch_all(&w.app.db.pool)
            .await
            .unwrap();
    assert_eq!(series, vec![Some(ids[0]), Some(ids[0])]);
    // Out of range is refused as a whole.
    let (s, _) = post(
        &w,
        "/api/v1/bookings",
        &w.user,
        json!({"instrument_id": w.instrument, "unit_id": w.user_unit, "start": "2026-12-15T09:00:00+08:00",
               "end": "2026-12-15T10:00:00+08:00", "purpose": "x", "repeat": {"weekly": 99}}),
    )
    .await;
    assert_eq!(s, 422);
}

const SLOT: (&str, &str) = ("2026-12-08T14:00:00+08:00", "2026-12-08T16:00:00+08:00");

async fn join(w: &World, token: &str, unit: i64) -> i64 {
    let (s, b) = post(
        w,
        &format!("/api/v1/instruments/{}/waitlist", w.instrument),
        token,
        json!({"start": SLOT.0, "end": SLOT.1, "unit_id": unit}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["status"], "waiting");
    b["id"].as_i64().unwrap()
}

async fn status_of(w: &World, token: &str, id: i64) -> String {
    let (s, b) = w
        .app
        .api("GET", &format!("/api/v1/waitlist/{id}"), Some(token), None)
        .await;
    assert_eq!(s, 200, "{b}");
    b["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_cancellation_is_offered_to_the_first_waiter_then_the_next() {
    let w = world("high_tech").await;
    let (first, first_unit) = another(&w, "first", 201).await;
    let (second, second_unit) = another(&w, "second", 202).await;
    let (s, b) = book(&w, &w.user, w.user_unit, SLOT.0, SLOT.1).await;
    assert_eq!(s, 201, "{b}");
    let booking = b["id"].as_i64().unwrap();
    // A free slot cannot be waited for; a taken one can, once per unit.
    let (s, b) = post(
        &w,
        &format!("/api/v1/instruments/{}/waitlist", w.instrument),
        &first,
        json!({"start": "2026-12-08T08:00:00+08:00", "end": "2026-12-08T09:00:00+08:00", "unit_id": first_unit}),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("slot_free")),
        "{b}"
    );
    let a = join(&w, &first, first_unit).await;
    let b2 = join(&w, &second, second_unit).await;
    let (s, _) = post(
        &w,
        &format!("/api/v1/instruments/{}/waitlist", w.instrument),
        &first,
        json!({"start": SLOT.0, "end": SLOT.1, "unit_id": first_unit}),
    )
    .await;
    assert_eq!(s, 409);
    // Someone else's unit cannot wait in first's name.
    let (s, _) = post(
        &w,
        &format!("/api/v1/instruments/{}/waitlist", w.instrument),
        &second,
        json!({"start": SLOT.0, "end": SLOT.1, "unit_id": first_unit}),
    )
    .await;
    assert_eq!(s, 403);

    let (s, b) = post(
        &w,
        &format!("/api/v1/bookings/{booking}/cancel"),
        &w.user,
        json!({"reason": "实验计划调整"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(status_of(&w, &first, a).await, "offered");
    assert_eq!(status_of(&w, &second, b2).await, "waiting");
    // The offer is a notification and a mail to the first waiter.
    let mails: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM mail_outbox WHERE to_addr = 'first@test.example' AND subject LIKE '%候补%'",
    )
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(mails, 1);
    // The slot is held: neither the second waiter nor anyone else can take it meanwhile.
    let (s, b) = post(
        &w,
        &format!("/api/v1/waitlist/{b2}/accept"),
        &second,
        json!({}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    let (s, b) = book(&w, &w.user, w.user_unit, SLOT.0, SLOT.1).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("slot_taken")),
        "{b}"
    );
    // The offer lapses (Arrange: its hold ends now); the job passes it on.
    sqlx::query("UPDATE booking_waitlist SET offer_expires_at = $1 WHERE id = $2")
        .bind(w.app.now() - 1)
        .bind(a)
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    assert!(matches!(
        run_job(&w, 0).await,
        labshare::jobs::Outcome::Done(_)
    ));
    assert_eq!(status_of(&w, &first, a).await, "expired");
    assert_eq!(status_of(&w, &second, b2).await, "offered");
    let (s, b) = post(
        &w,
        &format!("/api/v1/waitlist/{a}/accept"),
        &first,
        json!({}),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("offer_expired")),
        "{b}"
    );
    let (s, b) = post(
        &w,
        &format!("/api/v1/waitlist/{b2}/accept"),
        &second,
        json!({"purpose": "候补上机"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let won = b["booking_id"].as_i64().unwrap();
    let (s, b) = w
        .app
        .api(
            "GET",
            &format!("/api/v1/bookings/{won}"),
            Some(&second),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["unit_id"].as_i64(), b["status"].as_str()),
        (Some(second_unit), Some("requested"))
    );
    assert_eq!(status_of(&w, &second, b2).await, "accepted");
}

#[tokio::test]
async fn only_one_can_win_a_released_slot() {
    let w = world("high_tech").await;
    let (first, first_unit) = another(&w, "first", 201).await;
    let (third, third_unit) = another(&w, "third", 203).await;
    let (s, b) = book(&w, &w.user, w.user_unit, SLOT.0, SLOT.1).await;
    assert_eq!(s, 201, "{b}");
    let booking = b["id"].as_i64().unwrap();
    let a = join(&w, &first, first_unit).await;
    let (s, _) = post(
        &w,
        &format!("/api/v1/bookings/{booking}/cancel"),
        &w.user,
        json!({"reason": "取消"}),
    )
    .await;
    assert_eq!(s, 200);
    // The waiter accepts from several tabs at once while another unit tries to book the slot.
    let mut tasks = Vec::new();
    for k in 0..8 {
        let app_url = w.app.url("");
        let (token, path, body) = if k % 2 == 0 {
            (
                first.clone(),
                format!("/api/v1/waitlist/{a}/accept"),
                json!({}),
            )
        } else {
            (
                third.clone(),
                "/api/v1/bookings".to_string(),
                json!({"instrument_id": w.instrument, "unit_id": third_unit, "start": SLOT.0, "end": SLOT.1, "purpose": "抢约"}),
            )
        };
        tasks.push(tokio::spawn(async move {
            let res = reqwest::Client::new()
                .post(format!("{app_url}{path}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            res.status().as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 201 || *c == 409), "{codes:?}");
    let live: Vec<i64> =
        sqlx::query_scalar("SELECT unit_id FROM bookings WHERE instrument_id = $1 AND live = 1")
            .bind(w.instrument)
            .fetch_all(&w.app.db.pool)
            .await
            .unwrap();
    assert_eq!(live, vec![first_unit]);
}

#[tokio::test]
async fn a_qualification_is_required_then_trained_then_granted() {
    let w = world("high_tech").await;
    let path = format!("/api/v1/instruments/{}/operation", w.instrument);
    // Only the managing unit switches it on.
    let (s, _) = w
        .app
        .api(
            "PATCH",
            &path,
            Some(&w.user),
            Some(json!({"requires_qualification": true})),
        )
        .await;
    assert_eq!(s, 403);
    let (s, b) = w
        .app
        .api(
            "PATCH",
            &path,
            Some(&w.owner),
            Some(json!({"requires_qualification": true})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["requires_qualification"], true);
    let (s, b) = book(&w, &w.user, w.user_unit, SLOT.0, SLOT.1).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("qualification_required")),
        "{b}"
    );
    // Training instead: a booking the unit confirms.
    let (s, b) = post(
        &w,
        &format!("/api/v1/instruments/{}/training", w.instrument),
        &w.user,
        json!({"unit_id": w.user_unit, "start": "2026-12-03T09:00:00+08:00", "end": "2026-12-03T10:00:00+08:00"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let training = b["id"].as_i64().unwrap();
    let (s, _) = post(
        &w,
        &format!("/api/v1/bookings/{training}/confirm-training"),
        &w.user,
        json!({}),
    )
    .await;
    assert_eq!(s, 403);
    let (s, b) = post(
        &w,
        &format!("/api/v1/bookings/{training}/confirm-training"),
        &w.owner,
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = w
        .app
        .api(
            "GET",
            &format!("/api/v1/bookings/{training}"),
            Some(&w.user),
            None,
        )
        .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("confirmed")), "{b}");
    // The unit records the qualification; one that ends before the booking does not count.
    let buyer: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'buyer'")
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap();
    let qpath = format!("/api/v1/instruments/{}/qualifications", w.instrument);
    let (s, _) = post(
        &w,
        &qpath,
        &w.user,
        json!({"user_id": buyer, "expires_on": "2027-12-31"}),
    )
    .await;
    assert_eq!(s, 403);
    let (s, b) = post(
        &w,
        &qpath,
        &w.owner,
        json!({"user_id": buyer, "expires_on": "2026-12-05"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = book(&w, &w.user, w.user_unit, SLOT.0, SLOT.1).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("qualification_required")),
        "{b}"
    );
    let (s, b) = post(
        &w,
        &qpath,
        &w.owner,
        json!({"user_id": buyer, "expires_on": "2027-12-31"}),
    )
    .await;
    assert_eq!(
        (s, b["expires_on"].as_str()),
        (201, Some("2027-12-31")),
        "{b}"
    );
    let (s, b) = post(
        &w,
        &qpath,
        &w.owner,
        json!({"user_id": buyer, "expires_on": "31/12/2027"}),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    let (s, b) = book(&w, &w.user, w.user_unit, SLOT.0, SLOT.1).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = w.app.api("GET", &qpath, Some(&w.owner), None).await;
    assert_eq!(
        (s, b["items"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{b}"
    );
}

/// A confirmed booking (quoted, confirmed without vouchers) of `start`–`end`.
async fn confirmed(w: &World, start: &str, end: &str) -> i64 {
    let id = quoted(w, start, end, "300.00").await;
    let (s, b) = post(
        w,
        &format!("/api/v1/bookings/{id}/confirm"),
        &w.user,
        json!({"voucher_amount": "0.00"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    id
}

async fn shift(w: &World, id: i64, start_from_now: i64) {
    sqlx::query("UPDATE bookings SET start_at = $1, end_at = $1 + 7200 WHERE id = $2")
        .bind(w.app.now() + start_from_now)
        .bind(id)
        .execute(&w.app.db.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn check_in_window_measured_hours_and_check_out() {
    let w = world("high_tech").await;
    let id = confirmed(&w, "2026-12-02T10:00:00+08:00", "2026-12-02T12:00:00+08:00").await;
    let path = format!("/api/v1/bookings/{id}/check-in");
    let (s, b) = post(&w, &path, &w.user, json!({})).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("too_early")),
        "{b}"
    );
    let (s, _) = post(&w, &path, &w.owner, json!({})).await;
    assert_eq!(s, 403, "the managing unit does not check in for the user");
    // Ten minutes before the start (Arrange): within the 15 minutes.
    shift(&w, id, 600).await;
    let (s, b) = post(&w, &path, &w.user, json!({})).await;
    assert_eq!(s, 200, "{b}");
    // The user checked in 90 minutes ago and the booking began 80 minutes ago (Arrange).
    sqlx::query("UPDATE bookings SET start_at = $1 - 4800, end_at = $1 + 2400, checked_in_at = $1 - 5400 WHERE id = $2")
        .bind(w.app.now())
        .bind(id)
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let (s, b) = post(
        &w,
        &format!("/api/v1/bookings/{id}/check-out"),
        &w.user,
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = post(
        &w,
        &format!("/api/v1/bookings/{id}/complete"),
        &w.owner,
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let hours: i64 =
        sqlx::query_scalar("SELECT service_hours_x100 FROM service_records WHERE booking_id = $1")
            .bind(id)
            .fetch_one(&w.app.db.pool)
            .await
            .unwrap();
    assert!(
        (150..=151).contains(&hours),
        "measured 1.5 h, not the booked 2 h: {hours}"
    );
    // Nobody checked in to this booking: the job leaves it alone.
    assert_eq!(
        sqlx::query_scalar::<_, String>("SELECT status FROM bookings WHERE id = $1")
            .bind(id)
            .fetch_one(&w.app.db.pool)
            .await
            .unwrap(),
        "completed"
    );
}

#[tokio::test]
async fn no_shows_release_the_slot_once_and_three_suspend_the_unit() {
    let w = world("high_tech").await;
    let (first, first_unit) = another(&w, "first", 201).await;
    let days = ["02", "03", "04"];
    let mut ids = Vec::new();
    for d in days {
        ids.push(
            confirmed(
                &w,
                &format!("2026-12-{d}T10:00:00+08:00"),
                &format!("2026-12-{d}T12:00:00+08:00"),
            )
            .await,
        );
    }
    // A waiter for the first one's slot.
    let (s, b) = post(
        &w,
        &format!("/api/v1/instruments/{}/waitlist", w.instrument),
        &first,
        json!({"start": "2026-12-02T10:00:00+08:00", "end": "2026-12-02T12:00:00+08:00", "unit_id": first_unit}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let waiter = b["id"].as_i64().unwrap();
    // While the booking is live (and not yet due) the waiter is offered nothing.
    assert!(matches!(
        run_job(&w, -3600).await,
        labshare::jobs::Outcome::Done(_)
    ));
    assert_eq!(status_of(&w, &first, waiter).await, "waiting");
    // Arrange the clock's view: the first began 31 minutes ago and runs on, the second began
    // 80 minutes ago, the third begins in two hours; nobody checked in. The waiter wants half
    // an hour inside the first one's time.
    let now = w.app.now();
    for (id, start, end) in [
        (ids[0], now - 31 * 60, now + 89 * 60),
        (ids[1], now - 80 * 60, now - 60 * 60),
        (ids[2], now + 120 * 60, now + 150 * 60),
    ] {
        sqlx::query("UPDATE bookings SET start_at = $1, end_at = $2 WHERE id = $3")
            .bind(start)
            .bind(end)
            .bind(id)
            .execute(&w.app.db.pool)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE booking_waitlist SET start_at = $1, end_at = $2 WHERE id = $3")
        .bind(now + 30 * 60)
        .bind(now + 60 * 60)
        .bind(waiter)
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let out = run_job(&w, 0).await;
    let labshare::jobs::Outcome::Done(text) = out else {
        panic!("{out:?}")
    };
    assert!(text.contains("记为爽约 2 个"), "{text}");
    // Run twice in the same period: nothing; in the next period: nothing new.
    assert_eq!(run_job(&w, 0).await, labshare::jobs::Outcome::AlreadyDone);
    let labshare::jobs::Outcome::Done(text) = run_job(&w, 300).await else {
        panic!()
    };
    assert!(text.contains("记为爽约 0 个"), "{text}");
    let statuses: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, live FROM bookings WHERE id IN ($1, $2, $3) ORDER BY id")
            .bind(ids[0])
            .bind(ids[1])
            .bind(ids[2])
            .fetch_all(&w.app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        vec![
            ("no_show".to_string(), 0),
            ("no_show".to_string(), 0),
            ("confirmed".to_string(), 1)
        ]
    );
    // The released slot was offered to the waiter.
    let (s, b) = w
        .app
        .api(
            "GET",
            &format!("/api/v1/waitlist/{waiter}"),
            Some(&first),
            None,
        )
        .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("offered")), "{b}");
    // Two no-shows: still allowed to book. The third: suspended (policy: 3 in 90 days → 30 days).
    let (s, b) = book(&w, &w.user, w.user_unit, SLOT.0, SLOT.1).await;
    assert_eq!(s, 201, "{b}");
    // The third is a no-show too (Arrange: it began 31 minutes ago, after the second).
    sqlx::query("UPDATE bookings SET start_at = $1, end_at = $2 WHERE id = $3")
        .bind(w.app.now() - 31 * 60)
        .bind(w.app.now() - 10 * 60)
        .bind(ids[2])
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let labshare::jobs::Outcome::Done(text) = run_job(&w, 600).await else {
        panic!()
    };
    assert!(
        text.contains("记为爽约 1 个") && text.contains("暂停 1 个"),
        "{text}"
    );
    let (s, b) = book(
        &w,
        &w.user,
        w.user_unit,
        "2026-12-09T14:00:00+08:00",
        "2026-12-09T15:00:00+08:00",
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("booking_suspended")),
        "{b}"
    );
    assert!(
        b["error"]["message"].as_str().unwrap().contains("暂停至"),
        "{b}"
    );
    // Another run suspends nobody twice.
    let labshare::jobs::Outcome::Done(text) = run_job(&w, 900).await else {
        panic!()
    };
    assert!(text.contains("暂停 0 个"), "{text}");
}
