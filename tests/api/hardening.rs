//! Web hardening (网页安全): security headers on every page, `Secure` cookies behind https,
//! bounded arithmetic on request input.

use crate::common::*;

#[tokio::test]
async fn every_page_carries_csp_referrer_policy_and_frame_denial() {
    let app = spawn_app().await;
    let client = new_client();
    for path in [
        "/",
        "/login",
        "/instruments",
        "/no-such-page",
        "/api/v1/search?q=x",
    ] {
        let res = client.get(app.url(path)).send().await.unwrap();
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
    // The pages need no inline script or style, so the policy breaks nothing.
    let (_, html) = app.get_page(&client, "/").await;
    assert!(!html.contains("<script>") && !html.contains(" style=\""));
    assert!(!html.contains("onsubmit=") && !html.contains("onclick="));
}

#[tokio::test]
async fn the_flash_cookie_is_secure_behind_https() {
    let app = spawn_app_with(&[("LABSHARE_PUBLIC_URL", "https://labshare.example")]).await;
    app.create_user("zhou", "user").await;
    let client = new_client();
    let res = app
        .post_form(
            &client,
            "/login",
            "/login",
            &[("username", "zhou"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 303);
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let flash = cookies
        .iter()
        .find(|c| c.starts_with("labshare_flash="))
        .expect("a flash cookie");
    assert!(flash.contains("; Secure"), "{flash}");
    assert!(flash.contains("HttpOnly"), "{flash}");
    assert!(
        cookies.iter().all(|c| c.contains("; Secure")),
        "{cookies:?}"
    );
}

#[tokio::test]
async fn far_away_weeks_on_the_booking_page_are_a_clear_refusal_not_a_500() {
    let w = crate::money::world("other").await;
    let client = new_client();
    let book = |week: &str| format!("/instruments/{}/book?week={week}", w.instrument);
    for week in [
        "%2B262142-12-31",
        "-262143-01-01",
        "1999-12-31",
        "2100-01-04",
    ] {
        let (status, html) = w.app.get_page(&client, &book(week)).await;
        assert_eq!(status, 422, "{week}: {html}");
        assert!(html.contains("超出可查看范围"), "{week}");
    }
    let (status, _) = w.app.get_page(&client, &book("not-a-date")).await;
    assert_eq!(status, 400);
    let (status, html) = w.app.get_page(&client, &book("2026-12-03")).await;
    assert_eq!(status, 200);
    assert!(html.contains("2026-11-30"), "the week starts on Monday");
}

#[tokio::test]
async fn huge_page_numbers_never_overflow() {
    let app = spawn_app().await;
    app.create_user("root", "system_admin").await;
    let admin = app.browser_login("root").await;
    let anonymous = new_client();
    for page in [
        "99999999999999",
        "9223372036854775807",
        "-9223372036854775808",
        "0",
    ] {
        for (client, path) in [
            (&anonymous, "/instruments"),
            (&anonymous, "/search?q=显微镜"),
            (&anonymous, "/api/v1/search?q=显微镜"),
            (&anonymous, "/notices"),
            (&anonymous, "/orgs"),
            (&admin, "/console/users"),
            (&admin, "/console/instruments"),
            (&admin, "/console/content"),
            (&admin, "/console/experts"),
            (&admin, "/console/notifications"),
            (&admin, "/console/evaluations"),
        ] {
            let (status, body) = app
                .get_page(
                    client,
                    &format!(
                        "{path}{}page={page}",
                        if path.contains('?') { "&" } else { "?" }
                    ),
                )
                .await;
            assert!(status < 500, "{path} page={page}: {status} {body}");
        }
    }
}
