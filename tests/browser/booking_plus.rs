//! Issue 17 in the browser: find a free SEM for next Tuesday 14:00–16:00, book it, a second
//! unit joins the waitlist, the first cancels (on the confirmation page), the second accepts
//! the offer.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;

use crate::{
    Browser, click,
    common::{TestApp, certified_unit, spawn_app_with},
    journeys::{body_text as text, fill as set},
    submit, submit_confirmed,
};

/// Tuesday 1 December 2026, 08:00 in Xuchang; "next Tuesday" is 8 December.
const NOW: &str = "2026-12-01T08:00:00+08:00";

async fn login(b: &Browser, app: &TestApp, user: &str) {
    b.client.delete_all_cookies().await.unwrap();
    b.client.goto(&app.url("/login")).await.unwrap();
    set(b, "#f-username", user).await;
    set(b, "#f-password", crate::common::PASSWORD).await;
    submit(b, "//form[@action='/login']//button").await;
    b.client
        .wait()
        .for_element(Locator::Css(".console"))
        .await
        .unwrap();
}

async fn set_value(b: &Browser, css: &str, value: &str) {
    b.client
        .execute(
            "document.querySelector(arguments[0]).value = arguments[1];",
            vec![json!(css), json!(value)],
        )
        .await
        .unwrap();
}

async fn flash(b: &Browser) -> String {
    b.client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(".flash"))
        .await
        .unwrap_or_else(|e| panic!("no flash message: {e}"))
        .text()
        .await
        .unwrap()
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run by .ci/run"]
async fn find_a_free_sem_book_it_wait_cancel_and_take_the_offer() {
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    app.create_user("owner", "unit_manager").await;
    app.create_user("buyer", "user").await;
    app.create_user("second", "user").await;
    let owner = app.token("owner").await;
    let buyer = app.token("buyer").await;
    let second = app.token("second").await;
    let owner_unit = certified_unit(&app, &owner, "许昌浏览器大学", 311, "managing", "other").await;
    certified_unit(&app, &buyer, "许昌浏览器企业", 312, "user", "high_tech").await;
    let second_unit = certified_unit(&app, &second, "许昌候补企业", 313, "user", "high_tech").await;
    let instrument: i64 = sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, category_code, value_fen, review_status, open_to_public, city, created_at, updated_at) \
         VALUES ($1, '场发射扫描电子显微镜', '010100', 380000000, 'approved', 1, '许昌市', 0, 0) RETURNING id",
    )
    .bind(owner_unit)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let b = Browser::start().await;

    // Which SEM is free next Tuesday 14:00–16:00?
    login(&b, &app, "buyer").await;
    b.client.goto(&app.url("/search")).await.unwrap();
    submit(&b, "//a[@href='/availability']").await;
    click(&b, "//select[@id='a-cat']/option[@value='010100']").await;
    set_value(&b, "#a-date", "2026-12-08").await;
    set_value(&b, "#a-from", "14:00").await;
    set_value(&b, "#a-to", "16:00").await;
    set_value(&b, "#a-min", "120").await;
    submit(&b, "//form[@action='/availability']//button").await;
    let page = text(&b).await;
    assert!(page.contains("场发射扫描电子显微镜"), "{page}");
    assert!(page.contains("14:00–16:00"), "{page}");
    b.screenshot("booking-availability").await;
    submit(&b, "//a[contains(@class, 'button') and .='预约']").await;
    set(&b, "#f-purpose", "断口形貌观察").await;
    submit(
        &b,
        "//form[contains(@action, '/book')]//button[@type='submit']",
    )
    .await;
    let msg = flash(&b).await;
    assert!(msg.contains("预约申请已提交"), "{msg}");

    // A second unit joins the waitlist for the same slot.
    login(&b, &app, "second").await;
    b.client
        .goto(&app.url(&format!("/instruments/{instrument}/book?week=2026-12-08")))
        .await
        .unwrap();
    set_value(&b, "#w-date", "2026-12-08").await;
    click(&b, "//select[@id='w-start']/option[.='14:00']").await;
    click(&b, "//select[@id='w-end']/option[.='16:00']").await;
    submit(&b, "//form[contains(@action, '/waitlist')]//button").await;
    let msg = flash(&b).await;
    assert!(msg.contains("已加入候补"), "{msg}");

    // The first cancels, through the confirmation page.
    login(&b, &app, "buyer").await;
    b.client
        .goto(&app.url("/console/my-bookings"))
        .await
        .unwrap();
    submit(&b, "//a[contains(@href, '/cancellation')]").await;
    set(&b, "#c-reason", "实验计划调整").await;
    b.screenshot("booking-cancel").await;
    submit_confirmed(&b, "//form[contains(@action, '/cancel')]//button").await;
    let msg = flash(&b).await;
    assert!(msg.contains("预约已取消"), "{msg}");

    // The second is offered the slot and accepts it.
    login(&b, &app, "second").await;
    b.client.goto(&app.url("/console/waitlist")).await.unwrap();
    submit(&b, "//a[.='接受或放弃']").await;
    set(&b, "#w-purpose", "候补上机").await;
    b.screenshot("booking-offer").await;
    submit_confirmed(&b, "//form[contains(@action, '/accept')]//button").await;
    let msg = flash(&b).await;
    assert!(msg.contains("已接受候补时段"), "{msg}");
    let live: Vec<i64> =
        sqlx::query_scalar("SELECT unit_id FROM bookings WHERE instrument_id = $1 AND live = 1")
            .bind(instrument)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(live, vec![second_unit]);
    b.close().await;
}
