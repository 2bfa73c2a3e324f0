//! The money journey in the browser: book → quote → confirm with vouchers → complete →
//! redeem → evaluate → settle, each step on the page its user would use.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;

use crate::{
    Browser, click,
    common::{TestApp, certified_unit, spawn_app_with},
    journeys::{body_text as text, fill as set},
    submit, submit_confirmed,
};

/// Tuesday 1 December 2026, 08:00 in Xuchang.
const NOW: &str = "2026-12-01T08:00:00+08:00";

async fn login(b: &Browser, app: &TestApp, user: &str) {
    login_with(b, app, user, crate::common::PASSWORD).await;
}

async fn login_with(b: &Browser, app: &TestApp, user: &str, password: &str) {
    b.client.delete_all_cookies().await.unwrap();
    b.client.goto(&app.url("/login")).await.unwrap();
    set(b, "#f-username", user).await;
    set(b, "#f-password", password).await;
    submit(b, "//form[@action='/login']//button").await;
    b.client
        .wait()
        .for_element(Locator::Css(".console"))
        .await
        .unwrap();
}

/// Set a field's value directly (date inputs ignore typed text in some locales).
async fn set_value(b: &Browser, css: &str, value: &str) {
    b.client
        .execute(
            "document.querySelector(arguments[0]).value = arguments[1];",
            vec![json!(css), json!(value)],
        )
        .await
        .unwrap();
}

/// Wait for the flash message after a form and return it.
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

/// Approve every open task of the signed-in user on the task page, one by one.
async fn approve_tasks(b: &Browser, app: &TestApp, expected: usize) {
    for n in 0..expected {
        b.client.goto(&app.url("/console/tasks")).await.unwrap();
        let link = "//a[starts-with(@href, '/console/tasks/') and .='办理']";
        if b.client.find(Locator::XPath(link)).await.is_err() {
            panic!("task {n} of {expected} missing: {}", text(b).await);
        }
        submit(b, link).await;
        click(b, "//input[@name='action' and @value='approve']").await;
        set(b, "#t-comment", "同意").await;
        submit(
            b,
            "//form[starts-with(@action, '/console/tasks/')]//button[@type='submit']",
        )
        .await;
        let msg = flash(b).await;
        assert!(msg.contains("已"), "task {n}: {msg}");
    }
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run by .ci/run"]
async fn the_money_journey_book_quote_confirm_complete_redeem_evaluate_settle() {
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    app.create_user("owner", "unit_manager").await;
    app.create_user("buyer", "user").await;
    app.create_user("bureau", "platform_admin").await;
    // 复核 needs someone other than 初审, and a settlement's starter never reviews it.
    app.create_user("fund", "platform_admin").await;
    let owner = app.token("owner").await;
    let buyer = app.token("buyer").await;
    let owner_unit = certified_unit(&app, &owner, "许昌浏览器大学", 301, "managing", "other").await;
    let buyer_unit = certified_unit(&app, &buyer, "许昌浏览器企业", 302, "user", "high_tech").await;
    let instrument: i64 = sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, category_code, value_fen, review_status, open_to_public, created_at, updated_at) \
         VALUES ($1, '场发射扫描电子显微镜', '010100', 380000000, 'approved', 1, 0, 0) RETURNING id",
    )
    .bind(owner_unit)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    for i in 0..3 {
        let id = app.create_user(&format!("expert{i}"), "expert").await;
        sqlx::query(
            "INSERT INTO experts (user_id, name, unit_name, title, fields, status, certification_status, created_at, updated_at) \
             VALUES ($1, $2, '郑州大学', '正高级', '材料', '在库', 'certified', 0, 0)",
        )
        .bind(id)
        .bind(format!("评审专家{i}"))
        .execute(&app.db.pool)
        .await
        .unwrap();
    }
    let b = Browser::start().await;

    // The enterprise applies for its vouchers; the bureau approves on the task page.
    login(&b, &app, "buyer").await;
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/voucher-applications",
            Some(&buyer),
            Some(json!({"unit_id": buyer_unit, "year": 2026})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    login(&b, &app, "bureau").await;
    approve_tasks(&b, &app, 1).await;

    // Book two hours on Wednesday.
    login(&b, &app, "buyer").await;
    b.client
        .goto(&app.url(&format!("/instruments/{instrument}/book")))
        .await
        .unwrap();
    set_value(&b, "#f-date", "2026-12-02").await;
    click(&b, "//select[@id='f-start']/option[.='09:00']").await;
    click(&b, "//select[@id='f-end']/option[.='11:00']").await;
    set(&b, "#f-purpose", "镀层形貌观察").await;
    b.screenshot("money-book").await;
    submit(
        &b,
        "//form[contains(@action, '/book')]//button[@type='submit']",
    )
    .await;
    assert!(flash(&b).await.contains("预约"));
    let booking: i64 = sqlx::query_scalar("SELECT id FROM bookings WHERE instrument_id = $1")
        .bind(instrument)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();

    // The owner quotes 10,000.00.
    login(&b, &app, "owner").await;
    b.client.goto(&app.url("/console/bookings")).await.unwrap();
    set(&b, &format!("#p-{booking}"), "10000.00").await;
    submit(
        &b,
        &format!("//form[@action='/console/bookings/{booking}/quote']//button"),
    )
    .await;
    assert!(flash(&b).await.contains("已报价"));

    // The enterprise confirms, paying 4,000.00 (40%) with vouchers; 4,000.01 is refused.
    login(&b, &app, "buyer").await;
    b.client
        .goto(&app.url("/console/my-bookings"))
        .await
        .unwrap();
    set(&b, &format!("#v-{booking}"), "4000.01").await;
    submit(
        &b,
        &format!("//form[@action='/console/bookings/{booking}/confirm']//button"),
    )
    .await;
    assert!(flash(&b).await.contains("40%"));
    set(&b, &format!("#v-{booking}"), "4000.00").await;
    submit(
        &b,
        &format!("//form[@action='/console/bookings/{booking}/confirm']//button"),
    )
    .await;
    assert!(flash(&b).await.contains("4000.00"));
    b.screenshot("money-confirmed").await;

    // The service happens (the clock moves past the slot), and the owner completes it.
    sqlx::query(
        "UPDATE bookings SET start_at = start_at - 172800, end_at = end_at - 172800 WHERE id = $1",
    )
    .bind(booking)
    .execute(&app.db.pool)
    .await
    .unwrap();
    login(&b, &app, "owner").await;
    b.client.goto(&app.url("/console/bookings")).await.unwrap();
    submit_confirmed(
        &b,
        &format!("//form[@action='/console/bookings/{booking}/complete']//button"),
    )
    .await;
    assert!(flash(&b).await.contains("服务记录单号"));

    // The owner redeems the vouchers with the contract and the invoice; the bureau reviews and
    // rechecks, and the public notice passes.
    let dir = tempfile::tempdir().unwrap();
    let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
    let (contract, invoice) = (dir.path().join("合同.pdf"), dir.path().join("发票.pdf"));
    std::fs::write(&contract, pdf).unwrap();
    std::fs::write(&invoice, pdf).unwrap();
    b.client
        .goto(&app.url("/console/redemptions"))
        .await
        .unwrap();
    click(&b, &format!("//input[@id='b-{booking}']")).await;
    b.client
        .find(Locator::Css("#f-contract"))
        .await
        .unwrap()
        .send_keys(contract.to_str().unwrap())
        .await
        .unwrap();
    b.client
        .find(Locator::Css("#f-invoice"))
        .await
        .unwrap()
        .send_keys(invoice.to_str().unwrap())
        .await
        .unwrap();
    b.screenshot("money-redeem").await;
    submit(&b, "//button[contains(., '提交兑付申请')]").await;
    let msg = flash(&b).await;
    assert!(msg.contains("兑付"), "{msg}");
    login(&b, &app, "bureau").await;
    approve_tasks(&b, &app, 1).await;
    login(&b, &app, "fund").await;
    approve_tasks(&b, &app, 1).await;
    // Five working days of public notice pass without objection.
    // One notice task per voucher manager (both platform admins).
    assert_eq!(crate::common::notice_period_passes(&app).await, 2);
    let status: String = sqlx::query_scalar("SELECT status FROM redemptions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "approved");
    login(&b, &app, "owner").await;

    // The owner declares its evaluation; the bureau assigns three experts.
    b.client
        .goto(&app.url("/console/evaluations"))
        .await
        .unwrap();
    set(
        &b,
        "#f-report",
        "全年开放共享大型仪器，服务企业多家，制度健全。",
    )
    .await;
    submit(&b, "//form[@action='/console/evaluations']//button").await;
    assert!(flash(&b).await.contains("申报已提交"));
    let evaluation: i64 = sqlx::query_scalar("SELECT id FROM evaluations WHERE unit_id = $1")
        .bind(owner_unit)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let page = app.url(&format!("/console/evaluations/{evaluation}"));
    login(&b, &app, "bureau").await;
    b.client.goto(&page).await.unwrap();
    for i in 0..3 {
        click(
            &b,
            &format!("//label[.='评审专家{i}']/ancestor::tr//input[@type='checkbox']"),
        )
        .await;
    }
    b.screenshot("evaluation-assign").await;
    submit_confirmed(&b, "//button[contains(., '指派并发出评审')]").await;
    assert!(flash(&b).await.contains("已指派 3 位专家"));

    // Each expert scores the sheet: totals 80, 85 and 78 → trimmed mean 80.00 → 良好.
    for (i, results) in [(0, "15"), (1, "20"), (2, "13")] {
        login(&b, &app, &format!("expert{i}")).await;
        b.client
            .goto(&app.url("/console/expert-reviews"))
            .await
            .unwrap();
        submit(&b, "//a[contains(., '去评分')]").await;
        for (key, v) in [
            ("usage", "20"),
            ("sharing", "25"),
            ("results", results),
            ("satisfaction", "10"),
            ("management", "10"),
        ] {
            set(&b, &format!("#s-{key}"), v).await;
        }
        if i == 0 {
            b.screenshot("evaluation-score").await;
        }
        submit_confirmed(&b, "//button[contains(., '提交评分')]").await;
        assert!(flash(&b).await.contains("评分已提交"));
    }

    // The bureau grades with the suggested 良好 and publishes.
    login(&b, &app, "bureau").await;
    b.client.goto(&page).await.unwrap();
    let body = text(&b).await;
    assert!(
        body.contains("80.00") && body.contains("对应等级：良好"),
        "{body}"
    );
    b.screenshot("evaluation-grade").await;
    submit_confirmed(&b, "//button[contains(., '定级并公示')]").await;
    assert!(flash(&b).await.contains("良好"));
    b.client.goto(&app.url("/evaluations")).await.unwrap();
    assert!(text(&b).await.contains("许昌浏览器大学"));

    // The bureau settles 2026: 4,000.00 × 30% (良好) = 1,200.00; the owner confirms its lines
    // (with a second look) and the other subsidy manager publishes.
    b.client.goto(&app.url("/console/subsidies")).await.unwrap();
    click(&b, "//select[@id='s-year']/option[.='2026']").await;
    submit_confirmed(&b, "//button[contains(., '发起年度结算')]").await;
    let msg = flash(&b).await;
    assert!(msg.contains("已核算"), "{msg}");
    login(&b, &app, "owner").await;
    b.client.goto(&app.url("/console/subsidies")).await.unwrap();
    submit(&b, "//a[contains(., '核对明细并确认')]").await;
    let body = text(&b).await;
    assert!(
        body.contains("1,200.00") && body.contains("4,000.00"),
        "{body}"
    );
    submit(&b, "//button[contains(., '确认本单位明细')]").await;
    submit(&b, "//button[contains(., '确认无误，提交')]").await;
    flash(&b).await;
    login(&b, &app, "fund").await;
    approve_tasks(&b, &app, 1).await;
    b.client.goto(&app.url("/console/subsidies")).await.unwrap();
    let body = text(&b).await;
    assert!(
        body.contains("1,200.00") && body.contains("已下达"),
        "{body}"
    );
    b.screenshot("money-settled").await;

    b.close().await;
}

/// The same journey by hand on the demo data set, with the demo accounts: 许昌学院 completes
/// yesterday's confirmed service for 森源 and redeems it, declares its evaluation, the bureau
/// assigns the three demo experts, they score, the bureau grades and settles, 许昌学院 confirms.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run by .ci/run"]
async fn the_journey_works_by_hand_on_the_demo_data() {
    // A fixed day, so "yesterday's service" and the year are the same on every run.
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    labshare::demo::load(&app.db, &app.state.clock)
        .await
        .unwrap();
    let pw = labshare::demo::DEMO_PASSWORD;
    let year = chrono::Datelike::year(&app.state.clock.today());
    let b = Browser::start().await;

    // 许昌学院 completes the confirmed service and redeems its vouchers.
    let (booking, voucher): (i64, i64) = sqlx::query_as(
        "SELECT id, voucher_fen FROM bookings WHERE status = 'confirmed' AND voucher_fen > 0",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(voucher, 80_000);
    login_with(&b, &app, "xcu_lab", pw).await;
    b.client.goto(&app.url("/console/bookings")).await.unwrap();
    submit_confirmed(
        &b,
        &format!("//form[@action='/console/bookings/{booking}/complete']//button"),
    )
    .await;
    assert!(flash(&b).await.contains("服务记录单号"));
    let dir = tempfile::tempdir().unwrap();
    let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
    let file = dir.path().join("材料.pdf");
    std::fs::write(&file, pdf).unwrap();
    b.client
        .goto(&app.url("/console/redemptions"))
        .await
        .unwrap();
    click(&b, &format!("//input[@id='b-{booking}']")).await;
    for input in ["#f-contract", "#f-invoice"] {
        b.client
            .find(Locator::Css(input))
            .await
            .unwrap()
            .send_keys(file.to_str().unwrap())
            .await
            .unwrap();
    }
    submit(&b, "//button[contains(., '提交兑付申请')]").await;
    assert!(flash(&b).await.contains("兑付"));
    login_with(&b, &app, "bureau", pw).await;
    approve_tasks(&b, &app, 1).await;
    // 复核 by the second platform admin: 初审's decider may not recheck.
    login_with(&b, &app, "bureau_fund", pw).await;
    approve_tasks(&b, &app, 1).await;
    // Five working days of public notice pass without objection.
    // One notice task per voucher manager (both platform admins).
    assert_eq!(crate::common::notice_period_passes(&app).await, 2);

    // The evaluation with the demo experts 张建华, 刘晓燕 and 陈国栋.
    login_with(&b, &app, "xcu_lab", pw).await;
    b.client
        .goto(&app.url("/console/evaluations"))
        .await
        .unwrap();
    click(&b, &format!("//select[@id='f-year']/option[.='{year}']")).await;
    set(
        &b,
        "#f-report",
        "学院大型仪器全年对外开放，建立预约与收费制度，服务地方企业。",
    )
    .await;
    submit(&b, "//form[@action='/console/evaluations']//button").await;
    assert!(flash(&b).await.contains("申报已提交"));
    let evaluation: i64 = sqlx::query_scalar(
        "SELECT e.id FROM evaluations e JOIN units u ON u.id = e.unit_id WHERE u.name = '许昌学院'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let page = app.url(&format!("/console/evaluations/{evaluation}"));
    login_with(&b, &app, "bureau", pw).await;
    b.client.goto(&page).await.unwrap();
    let body = text(&b).await;
    assert!(body.contains("对外服务机时"), "{body}");
    for name in ["张建华", "刘晓燕", "陈国栋"] {
        click(
            &b,
            &format!("//label[.='{name}']/ancestor::tr//input[@type='checkbox']"),
        )
        .await;
    }
    submit_confirmed(&b, "//button[contains(., '指派并发出评审')]").await;
    assert!(flash(&b).await.contains("已指派 3 位专家"));
    for expert in ["expert_zhang", "expert_liu", "expert_chen"] {
        login_with(&b, &app, expert, pw).await;
        b.client.goto(&page).await.unwrap();
        for (key, v) in [
            ("usage", "22"),
            ("sharing", "26"),
            ("results", "20"),
            ("satisfaction", "8"),
            ("management", "9"),
        ] {
            set(&b, &format!("#s-{key}"), v).await;
        }
        submit_confirmed(&b, "//button[contains(., '提交评分')]").await;
        assert!(flash(&b).await.contains("评分已提交"));
    }
    login_with(&b, &app, "bureau", pw).await;
    b.client.goto(&page).await.unwrap();
    assert!(text(&b).await.contains("85.00"));
    submit_confirmed(&b, "//button[contains(., '定级并公示')]").await;
    assert!(flash(&b).await.contains("良好"));

    // The settlement: 许昌学院's redeemed vouchers 2,400.00 + 800.00 at 30%.
    b.client.goto(&app.url("/console/subsidies")).await.unwrap();
    click(&b, &format!("//select[@id='s-year']/option[.='{year}']")).await;
    submit_confirmed(&b, "//button[contains(., '发起年度结算')]").await;
    let msg = flash(&b).await;
    assert!(msg.contains("已核算"), "{msg}");
    login_with(&b, &app, "xcu_lab", pw).await;
    b.client.goto(&app.url("/console/subsidies")).await.unwrap();
    submit(&b, "//a[contains(., '核对明细并确认')]").await;
    assert!(text(&b).await.contains("960.00"));
    submit(&b, "//button[contains(., '确认本单位明细')]").await;
    submit(&b, "//button[contains(., '确认无误，提交')]").await;
    flash(&b).await;
    // The bureau started the settlement, so the other platform admin reviews it.
    login_with(&b, &app, "bureau_fund", pw).await;
    approve_tasks(&b, &app, 1).await;
    login_with(&b, &app, "bureau", pw).await;
    b.client
        .goto(&app.url("/console/statistics"))
        .await
        .unwrap();
    let body = text(&b).await;
    assert!(
        body.contains("960.00") && body.contains("良好：1"),
        "{body}"
    );
    b.close().await;
}
