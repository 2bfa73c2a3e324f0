//! Units run themselves (issue 13), in the browser from a fresh registration: register →
//! managing unit → certified by the platform admin → add an instrument → submitted → approved
//! → public → change its fee → approved → the portal shows the new fee.

use fantoccini::Locator;

use crate::{
    Browser,
    common::{credit_code, spawn_app},
    journeys::{body_text, fill},
};

async fn click(b: &Browser, xpath: &str) {
    crate::submit(b, xpath).await;
    b.client
        .wait()
        .for_element(Locator::Css("body"))
        .await
        .unwrap();
}

async fn sign_in(b: &Browser, app: &crate::common::TestApp, user: &str, password: &str) {
    b.client.goto(&app.url("/login")).await.unwrap();
    fill(b, "#f-username", user).await;
    fill(b, "#f-password", password).await;
    click(b, "//form[@action='/login']//button").await;
    b.client
        .wait()
        .for_element(Locator::Css(".console"))
        .await
        .unwrap();
}

async fn sign_out(b: &Browser) {
    click(b, "//form[@action='/logout']//button").await;
}

/// The platform admin approves the first open task whose row names `subject`.
async fn approve_task(b: &Browser, app: &crate::common::TestApp, subject: &str) {
    b.client.goto(&app.url("/console/tasks")).await.unwrap();
    let link = format!("//tr[contains(., '{subject}')]//a[contains(., '办理')]");
    click(b, &link).await;
    b.client
        .find(Locator::Css("input[name=action][value=approve]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(b, "#t-comment", "同意").await;
    click(
        b,
        "//form[starts-with(@action, '/console/tasks/')]//button[@type='submit']",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run by .ci/run"]
async fn a_new_user_registers_a_unit_publishes_an_instrument_and_changes_its_fee() {
    let app = spawn_app().await;
    app.create_user("city_bureau", "platform_admin").await;
    let b = Browser::start().await;

    // Register.
    b.client.goto(&app.url("/register")).await.unwrap();
    fill(&b, "#f-username", "new_lab").await;
    fill(&b, "#f-display_name", "新实验室管理员").await;
    fill(&b, "#f-email", "new_lab@test.example").await;
    fill(&b, "#f-password", "Newlab2026").await;
    fill(&b, "#f-password_confirm", "Newlab2026").await;
    click(&b, "//form[@action='/register']//button[@type='submit']").await;
    b.client
        .wait()
        .for_element(Locator::Css(".console"))
        .await
        .unwrap();

    // A managing unit, submitted for certification.
    b.client.goto(&app.url("/console/units/new")).await.unwrap();
    fill(&b, "#f-name", "许昌自助测试学院").await;
    b.client
        .find(Locator::Css("#f-kind option[value='managing']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&b, "#f-credit_code", &credit_code(501)).await;
    fill(&b, "#f-contact_name", "李老师").await;
    fill(&b, "#f-contact_mobile", "13800000001").await;
    click(
        &b,
        "//form[@action='/console/units']//button[@type='submit']",
    )
    .await;
    click(&b, "//button[contains(., '提交认证')]").await;
    assert!(
        !body_text(&b).await.contains("仪器管理"),
        "nothing to publish before certification"
    );
    sign_out(&b).await;

    sign_in(&b, &app, "city_bureau", crate::common::PASSWORD).await;
    approve_task(&b, &app, "许昌自助测试学院").await;
    sign_out(&b).await;

    // Certified: the console offers 仪器管理 to the unit's manager, without any global role.
    sign_in(&b, &app, "new_lab", "Newlab2026").await;
    assert!(body_text(&b).await.contains("仪器管理"));
    b.client
        .goto(&app.url("/console/instruments/new"))
        .await
        .unwrap();
    for (sel, v) in [
        ("#f-name", "自助登记荧光光谱仪"),
        ("#f-model", "FLS1000"),
        ("#f-manufacturer", "爱丁堡"),
        ("#f-value", "860000"),
        ("#f-location", "化学楼 203 室"),
        ("#f-description", "稳态瞬态荧光光谱"),
        ("#f-service_content", "荧光寿命测试"),
        ("#f-fee_standard", "校外 260 元/样"),
    ] {
        fill(&b, sel, v).await;
    }
    b.client
        .find(Locator::Css("#f-category_code option[value='010100']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(&b, "//button[contains(., '保存草稿')]").await;
    click(&b, "//button[contains(., '提交入网审核')]").await;
    sign_out(&b).await;

    sign_in(&b, &app, "city_bureau", crate::common::PASSWORD).await;
    approve_task(&b, &app, "自助登记荧光光谱仪").await;
    sign_out(&b).await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM instruments WHERE model = 'FLS1000'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    b.client
        .goto(&app.url(&format!("/instruments/{id}")))
        .await
        .unwrap();
    assert!(body_text(&b).await.contains("校外 260 元/样"), "public");

    // Change the fee: a change request; the portal keeps the approved fee until approval.
    sign_in(&b, &app, "new_lab", "Newlab2026").await;
    b.client
        .goto(&app.url(&format!("/console/instruments/{id}")))
        .await
        .unwrap();
    fill(&b, "#f-fee_standard", "校外 300 元/样").await;
    click(&b, "//button[contains(., '提交变更申请')]").await;
    assert!(body_text(&b).await.contains("变更申请"));
    sign_out(&b).await;
    b.client
        .goto(&app.url(&format!("/instruments/{id}")))
        .await
        .unwrap();
    let text = body_text(&b).await;
    assert!(text.contains("校外 260 元/样") && !text.contains("校外 300 元/样"));

    sign_in(&b, &app, "city_bureau", crate::common::PASSWORD).await;
    b.client.goto(&app.url("/console/tasks")).await.unwrap();
    click(
        &b,
        "//tr[contains(., '变更：自助登记荧光光谱仪')]//a[contains(., '办理')]",
    )
    .await;
    let text = body_text(&b).await;
    assert!(
        text.contains("变更前")
            && text.contains("校外 260 元/样")
            && text.contains("校外 300 元/样")
    );
    b.screenshot("change-request").await;
    b.client
        .find(Locator::Css("input[name=action][value=approve]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(
        &b,
        "//form[starts-with(@action, '/console/tasks/')]//button[@type='submit']",
    )
    .await;
    sign_out(&b).await;

    b.client
        .goto(&app.url(&format!("/instruments/{id}")))
        .await
        .unwrap();
    let text = body_text(&b).await;
    assert!(
        text.contains("校外 300 元/样"),
        "the portal shows the new fee: {text}"
    );
    b.close().await;
}
