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
