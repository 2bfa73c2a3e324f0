use fantoccini::Locator;

use crate::{Browser, common::spawn_app};

pub(crate) async fn fill(b: &Browser, selector: &str, value: &str) {
    let el = b
        .client
        .find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"));
    el.clear().await.unwrap();
    el.send_keys(value).await.unwrap();
}

pub(crate) async fn body_text(b: &Browser) -> String {
    b.client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run by .ci/run"]
async fn a_visitor_registers_logs_in_reaches_the_console_and_logs_out() {
    let app = spawn_app().await;
    labshare::demo::load(&app.db, &app.state.clock)
        .await
        .unwrap();
    let b = Browser::start().await;

    b.client.goto(&app.url("/")).await.unwrap();
    let text = body_text(&b).await;
    assert!(text.contains("科研仪器"));
    assert!(text.contains("入网仪器"));
    b.screenshot("home").await;
    if std::env::var("LABSHARE_SCREENSHOTS").is_ok() {
        app.state.search.rebuild(&app.db, &|_, _| {}).await.unwrap();
        for (name, path) in [
            ("search", "/search?q=%E7%94%B5%E9%95%9C"),
            ("instruments", "/instruments?category=010000"),
            ("orgs", "/orgs"),
            ("booking", "/instruments/1/book"),
        ] {
            b.client.goto(&app.url(path)).await.unwrap();
            b.screenshot(name).await;
        }
        b.client.goto(&app.url("/")).await.unwrap();
    }

    b.client
        .find(Locator::LinkText("注册"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&b, "#f-username", "browser_user").await;
    fill(&b, "#f-display_name", "浏览器用户").await;
    fill(&b, "#f-email", "browser@test.example").await;
    fill(&b, "#f-password", "Browser2026").await;
    fill(&b, "#f-password_confirm", "Browser2026").await;
    b.client
        .find(Locator::Css("form[action='/register'] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Css(".console"))
        .await
        .unwrap();
    assert!(body_text(&b).await.contains("注册成功"));

    // Log out, then log in again through the login form.
    b.client
        .find(Locator::Css("form[action='/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Css(".hero"))
        .await
        .unwrap();
    assert!(body_text(&b).await.contains("您已安全退出"));
    b.client.goto(&app.url("/console")).await.unwrap();
    b.client
        .wait()
        .for_element(Locator::Css("form[action='/login']"))
        .await
        .unwrap();
    fill(&b, "#f-username", "browser_user").await;
    fill(&b, "#f-password", "Browser2026").await;
    b.client
        .find(Locator::Css("form[action='/login'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Css(".console"))
        .await
        .unwrap();
    let text = body_text(&b).await;
    assert!(text.contains("工作台"));
    assert!(text.contains("浏览器用户"));
    assert!(b.client.current_url().await.unwrap().path() == "/console");
    b.screenshot("console").await;

    b.client
        .find(Locator::Css("form[action='/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Css(".hero"))
        .await
        .unwrap();
    b.client.goto(&app.url("/console")).await.unwrap();
    assert_eq!(b.client.current_url().await.unwrap().path(), "/login");
    b.close().await;
}

pub(crate) async fn login(b: &Browser, app: &crate::common::TestApp, user: &str) {
    b.client.goto(&app.url("/login")).await.unwrap();
    fill(b, "#f-username", user).await;
    fill(b, "#f-password", crate::common::PASSWORD).await;
    b.client
        .find(Locator::Css("form[action='/login'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Css(".console"))
        .await
        .unwrap();
}

pub(crate) async fn logout(b: &Browser) {
    b.client
        .find(Locator::Css("form[action='/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Css(".hero"))
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run by .ci/run"]
async fn a_manager_adds_an_instrument_an_admin_approves_it_and_the_portal_shows_it() {
    let app = spawn_app().await;
    app.create_user("lab_mgr", "unit_manager").await;
    app.create_user("bureau_b", "platform_admin").await;
    let token = app.token("lab_mgr").await;
    let (status, unit) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&token),
            Some(crate::common::unit_body(
                "许昌浏览器测试大学",
                77,
                "managing",
            )),
        )
        .await;
    assert_eq!(status, 201);
    sqlx::query("UPDATE units SET certification_status = 'certified' WHERE id = $1")
        .bind(unit["id"].as_i64().unwrap())
        .execute(&app.db.pool)
        .await
        .unwrap();
    let b = Browser::start().await;

    login(&b, &app, "lab_mgr").await;
    b.client
        .goto(&app.url("/console/instruments/new"))
        .await
        .unwrap();
    for (sel, v) in [
        ("#f-name", "台式扫描电子显微镜"),
        ("#f-model", "Phenom XL G2"),
        ("#f-manufacturer", "飞纳"),
        ("#f-value", "1180000"),
        ("#f-location", "分析测试中心 105 室"),
        ("#f-description", "背散射电子成像，分辨率 10 nm"),
        ("#f-service_content", "形貌观察、能谱分析"),
        ("#f-fee_standard", "校外 200 元/小时"),
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
    b.screenshot("instrument-form").await;
    b.client
        .find(Locator::XPath("//button[contains(., '保存草稿')]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    if b.client
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(Locator::XPath("//button[contains(., '提交入网审核')]"))
        .await
        .is_err()
    {
        b.screenshot("after-save").await;
        panic!(
            "saving the draft did not lead to the record page: {}",
            body_text(&b).await
        );
    }
    crate::submit(&b, "//button[contains(., '提交入网审核')]").await;
    b.client
        .wait()
        .for_element(Locator::Css(".flash"))
        .await
        .unwrap();
    let id: i64 = sqlx::query_scalar("SELECT id FROM instruments WHERE model = 'Phenom XL G2'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let status: String = sqlx::query_scalar("SELECT review_status FROM instruments WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "pending");
    logout(&b).await;

    login(&b, &app, "bureau_b").await;
    b.client.goto(&app.url("/console/tasks")).await.unwrap();
    b.screenshot("tasks").await;
    b.client
        .find(Locator::XPath("//a[contains(., '办理')]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Css("input[name=action][value=approve]"))
        .await
        .unwrap();
    b.client
        .find(Locator::Css("input[name=action][value=approve]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&b, "#t-comment", "资料齐全，同意入网").await;
    crate::submit(
        &b,
        "//form[starts-with(@action, '/console/tasks/')]//button[@type='submit']",
    )
    .await;
    b.client
        .wait()
        .for_element(Locator::Css(".flash"))
        .await
        .unwrap();
    logout(&b).await;

    b.client
        .goto(&app.url(&format!("/instruments/{id}")))
        .await
        .unwrap();
    let text = body_text(&b).await;
    assert!(text.contains("台式扫描电子显微镜"), "{text}");
    assert!(text.contains("Phenom XL G2"));
    b.screenshot("instrument").await;
    b.close().await;
}
