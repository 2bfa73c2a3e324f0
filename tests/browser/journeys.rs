use fantoccini::Locator;

use crate::{Browser, common::spawn_app};

async fn fill(b: &Browser, selector: &str, value: &str) {
    let el = b
        .client
        .find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"));
    el.clear().await.unwrap();
    el.send_keys(value).await.unwrap();
}

async fn body_text(b: &Browser) -> String {
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
