//! Issue 20's journey: an enterprise asks the experts, an expert of the field answers, the
//! enterprise rates and publishes the Q&A, and a visitor finds it by search.

use std::time::{Duration, Instant};

use fantoccini::Locator;

use crate::{
    Browser, click,
    common::{certified_unit, spawn_app},
    journeys::{body_text, fill},
    submit, submit_confirmed,
};

async fn login(b: &Browser, app: &crate::common::TestApp, user: &str) {
    b.client.goto(&app.url("/login")).await.unwrap();
    fill(b, "#f-username", user).await;
    fill(b, "#f-password", crate::common::PASSWORD).await;
    submit(b, "//form[@action='/login']//button").await;
}

async fn logout(b: &Browser) {
    submit(b, "//form[@action='/logout']//button").await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run by .ci/run"]
async fn an_enterprise_asks_an_expert_answers_and_the_published_qa_is_found_by_search() {
    let app = spawn_app().await;
    let expert = app.create_user("expert_env", "expert").await;
    sqlx::query(
        "INSERT INTO experts (user_id, name, unit_name, title, fields, status, certification_status, created_at, updated_at) \
         VALUES ($1, '刘晓燕', '河南省科学院', '副高级', '环境检测、水处理', '在库', 'certified', 0, 0)",
    )
    .bind(expert)
    .execute(&app.db.pool)
    .await
    .unwrap();
    app.create_user("ent_b", "user").await;
    let token = app.token("ent_b").await;
    let unit = certified_unit(&app, &token, "许昌浏览器测试企业", 88, "user", "high_tech").await;
    let b = Browser::start().await;

    // The enterprise asks.
    login(&b, &app, "ent_b").await;
    b.client
        .goto(&app.url("/console/consultations/new"))
        .await
        .unwrap();
    click(
        &b,
        &format!("//select[@id='f-unit_id']/option[@value='{unit}']"),
    )
    .await;
    fill(&b, "#f-field", "环境检测").await;
    fill(&b, "#f-title", "电镀废水中六价铬怎么检测").await;
    fill(
        &b,
        "#f-question",
        "我公司电镀车间废水需要检测六价铬和总铬，送检前样品应如何保存？",
    )
    .await;
    submit(&b, "//button[contains(., '提交咨询')]").await;
    let page = b.client.current_url().await.unwrap().path().to_string();
    assert!(page.starts_with("/console/consultations/"), "{page}");
    assert!(body_text(&b).await.contains("待解答"));
    b.screenshot("consult-asked").await;
    logout(&b).await;

    // The expert of the field sees it in the list and answers.
    login(&b, &app, "expert_env").await;
    b.client
        .goto(&app.url("/console/consultations"))
        .await
        .unwrap();
    submit(&b, "//a[contains(., '电镀废水中六价铬怎么检测')]").await;
    fill(
        &b,
        "#f-answer",
        "六价铬用二苯碳酰二肼分光光度法测定，样品调至 pH 8–9 冷藏，24 小时内送检。",
    )
    .await;
    submit(&b, "//button[contains(., '提交解答')]").await;
    assert!(body_text(&b).await.contains("解答已发送给提问人"));
    logout(&b).await;

    // The enterprise reads the answer, rates it and agrees to publish it.
    login(&b, &app, "ent_b").await;
    b.client.goto(&app.url(&page)).await.unwrap();
    assert!(body_text(&b).await.contains("二苯碳酰二肼"));
    click(&b, "//input[@name='rating' and @value='4']").await;
    click(&b, "//input[@name='public']").await;
    b.screenshot("consult-answered").await;
    submit_confirmed(&b, "//button[contains(., '关闭咨询')]").await;
    assert!(body_text(&b).await.contains("咨询已关闭并公开为专家问答"));
    logout(&b).await;

    // A visitor finds it by search and opens the Q&A.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        b.client.goto(&app.url("/search?q=六价铬")).await.unwrap();
        if b.client
            .find(Locator::XPath(
                "//a[contains(., '电镀废水中六价铬怎么检测')]",
            ))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not found by search: {}",
            body_text(&b).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.screenshot("consult-search").await;
    submit(&b, "//a[contains(., '电镀废水中六价铬怎么检测')]").await;
    assert!(
        b.client
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/qa/")
    );
    let text = body_text(&b).await;
    assert!(text.contains("专家问答") && text.contains("二苯碳酰二肼"));
    b.close().await;
}
