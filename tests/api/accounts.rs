use serde_json::json;

use crate::common::{PASSWORD, csrf_from, new_client, spawn_app};

#[tokio::test]
async fn healthz_reports_the_database_as_ok() {
    let app = spawn_app().await;
    let (status, body) = app.api("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["database"], true);
}

#[tokio::test]
async fn register_then_login_then_me_shows_the_user_role() {
    let app = spawn_app().await;
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/users",
            None,
            Some(
                json!({"username": "qiye01", "password": PASSWORD, "display_name": "企业用户",
                        "email": "qiye01@test.example", "phone": "13912345678"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["username"], "qiye01");
    assert!(body["id"].is_number());

    let token = app.token("qiye01").await;
    let (status, me) = app.api("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "qiye01");
    assert_eq!(me["roles"], json!(["user"]));
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("booking.create"))
    );
    assert_eq!(me["units"], json!([]));
}

#[tokio::test]
async fn a_taken_username_is_409_and_bad_fields_are_422_with_field_messages() {
    let app = spawn_app().await;
    app.create_user("taken", "user").await;
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/users",
            None,
            Some(json!({"username": "taken", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "username_taken");

    let (status, body) = app
        .api(
            "POST",
            "/api/v1/users",
            None,
            Some(json!({"username": "x", "password": "short", "email": "not-an-email"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "validation_failed");
    let fields = &body["error"]["fields"];
    assert!(fields["username"].is_string());
    assert_eq!(fields["password"], "密码至少 8 位");
    assert_eq!(fields["email"], "请输入有效的电子邮箱");
}

#[tokio::test]
async fn a_wrong_password_is_401_invalid_credentials() {
    let app = spawn_app().await;
    app.create_user("wang", "user").await;
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"username": "wang", "password": "wrong-pass-1"})),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_credentials");
    // An unknown user looks the same.
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"username": "nobody", "password": "x"})),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_credentials");
}

#[tokio::test]
async fn repeated_failures_lock_the_account_from_that_address() {
    let app = spawn_app().await;
    app.create_user("lisi", "user").await;
    for _ in 0..5 {
        let (status, _) = app
            .api(
                "POST",
                "/api/v1/session",
                None,
                Some(json!({"username": "lisi", "password": "bad-guess-1"})),
            )
            .await;
        assert_eq!(status, 401);
    }
    // Even the right password is refused while locked, with a clear message.
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"username": "lisi", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 429);
    assert!(body["error"]["message"].as_str().unwrap().contains("锁定"));

    // The login page says the same.
    let client = new_client();
    let res = app
        .post_form(
            &client,
            "/login",
            "/login",
            &[("username", "lisi"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 429);
    assert!(res.text().await.unwrap().contains("登录失败次数过多"));
}

#[tokio::test]
async fn a_form_post_without_csrf_token_is_403() {
    let app = spawn_app().await;
    app.create_user("zhao", "user").await;
    let client = new_client();
    let res = client
        .post(app.url("/login"))
        .form(&[("username", "zhao"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("页面已过期"));

    // Signed in, a forged token is refused too and nothing changes.
    let client = app.browser_login("zhao").await;
    let res = client
        .post(app.url("/console/password"))
        .form(&[
            ("csrf_token", "forged"),
            ("current_password", PASSWORD),
            ("new_password", "Another1pass"),
            ("new_password_confirm", "Another1pass"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    app.token("zhao").await; // the old password still works
}

#[tokio::test]
async fn browser_login_renews_the_session_and_logout_ends_it() {
    let app = spawn_app().await;
    app.create_user("sun", "unit_manager").await;
    let client = new_client();
    let (_, html) = app.get_page(&client, "/login").await;
    assert!(html.contains("登录"));
    let res = app
        .post_form(
            &client,
            "/login",
            "/login?next=%2Fconsole",
            &[
                ("username", "sun"),
                ("password", PASSWORD),
                ("next", "/console/units"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/console/units");
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect::<Vec<_>>();
    assert!(cookie.iter().any(|c| c.starts_with("labshare_session=")
        && c.contains("HttpOnly")
        && c.contains("SameSite=Lax")));

    let (status, html) = app.get_page(&client, "/console").await;
    assert_eq!(status, 200);
    assert!(html.contains("工作台"));
    assert!(html.contains("测试sun"));

    let (_, html) = app.get_page(&client, "/console").await;
    let token = csrf_from(&html).unwrap();
    let res = client
        .post(app.url("/logout"))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let res = client.get(app.url("/console")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login?next=%2Fconsole");
}

#[tokio::test]
async fn next_never_leads_off_site() {
    let app = spawn_app().await;
    app.create_user("zhou", "user").await;
    // The decoded forms a browser would turn into another origin.
    for evil in [
        "//evil.example/x",
        "/\t/evil.example",
        "/\r\n/evil.example",
        "/\\evil",
        "//evil",
        "/%09/evil",
        "https://evil.example",
        "javascript:alert(1)",
    ] {
        let client = new_client();
        let res = app
            .post_form(
                &client,
                "/login",
                "/login",
                &[("username", "zhou"), ("password", PASSWORD), ("next", evil)],
            )
            .await;
        assert_eq!(res.status(), 303, "{evil:?}");
        assert_eq!(res.headers()["location"], "/console", "{evil:?}");
        // Signed in already, `GET /login?next=` goes the same way.
        let res = client
            .get(app.url("/login"))
            .query(&[("next", evil)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["location"], "/console", "{evil:?}");
    }
    let client = new_client();
    let res = app
        .post_form(
            &client,
            "/login",
            "/login",
            &[
                ("username", "zhou"),
                ("password", PASSWORD),
                ("next", "/console/units?page=2"),
            ],
        )
        .await;
    assert_eq!(res.headers()["location"], "/console/units?page=2");
}

#[tokio::test]
async fn registration_errors_are_shown_beside_fields_with_input_kept() {
    let app = spawn_app().await;
    let client = new_client();
    let res = app
        .post_form(
            &client,
            "/register",
            "/register",
            &[
                ("username", "new_user"),
                ("display_name", "钱七"),
                ("email", "bad@"),
                ("password", "abcdefgh1"),
                ("password_confirm", "abcdefgh2"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("请输入有效的电子邮箱") || html.contains("两次输入的密码不一致"));
    assert!(html.contains("value=\"new_user\""));
    assert!(html.contains("value=\"钱七\""));

    let res = app
        .post_form(
            &client,
            "/register",
            "/register",
            &[
                ("username", "new_user"),
                ("display_name", "钱七"),
                ("email", "qian@test.example"),
                ("password", "abcdefgh1"),
                ("password_confirm", "abcdefgh1"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (status, html) = app.get_page(&client, "/console").await;
    assert_eq!(status, 200);
    assert!(html.contains("注册成功"));
}

#[tokio::test]
async fn changing_the_password_ends_other_sessions_and_tokens() {
    let app = spawn_app().await;
    app.create_user("wuqi", "user").await;
    let token = app.token("wuqi").await;
    let other = app.browser_login("wuqi").await;
    let client = app.browser_login("wuqi").await;
    let res = app
        .post_form(
            &client,
            "/console/password",
            "/console/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "NewPassw0rd"),
                ("new_password_confirm", "NewPassw0rd"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (status, _) = app.get_page(&client, "/console").await;
    assert_eq!(status, 200, "the session that changed it stays");
    let (status, _) = app.get_page(&other, "/console").await;
    assert_eq!(status, 303, "other sessions end");
    let (status, _) = app.api("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_parallel_wrong_passwords_for_one_account_meet_the_lock() {
    let app = spawn_app().await;
    app.create_user("wangwu", "user").await;
    let attempts = (0..60).map(|i| {
        let client = app.client.clone();
        let url = app.url("/api/v1/session");
        async move {
            client
                .post(url)
                .json(&json!({"username": "wangwu", "password": format!("wrong-{i}")}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let refused = statuses.iter().filter(|s| **s == 429).count();
    let wrong = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(
        (wrong, refused),
        (
            labshare::auth::THROTTLE_MAX_FAILURES as usize,
            60 - labshare::auth::THROTTLE_MAX_FAILURES as usize
        ),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn forwarded_for_is_ignored_unless_the_proxy_is_trusted() {
    // Untrusted by default: a client rotating X-Forwarded-For still meets its lock.
    let app = spawn_app().await;
    app.create_user("zhaoliu", "user").await;
    let mut last = 0;
    for i in 0..6 {
        let res = app
            .client
            .post(app.url("/api/v1/session"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .json(&json!({"username": "zhaoliu", "password": "bad-guess"}))
            .send()
            .await
            .unwrap();
        last = res.status().as_u16();
    }
    assert_eq!(last, 429);

    // Behind a trusted proxy each forwarded client has its own count.
    let app = crate::common::spawn_app_with(&[("LABSHARE_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    app.create_user("zhaoliu", "user").await;
    for i in 0..6 {
        let res = app
            .client
            .post(app.url("/api/v1/session"))
            .header("x-forwarded-for", format!("6.6.6.6, 203.0.113.{i}"))
            .json(&json!({"username": "zhaoliu", "password": "bad-guess"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "client {i}");
    }
    // … and the left-most (spoofable) entry does not count: the same real client is locked.
    for i in 0..6 {
        let res = app
            .client
            .post(app.url("/api/v1/session"))
            .header("x-forwarded-for", format!("6.6.{i}.6, 198.51.100.7"))
            .json(&json!({"username": "zhaoliu", "password": "bad-guess"}))
            .send()
            .await
            .unwrap();
        last = res.status().as_u16();
    }
    assert_eq!(last, 429);
}
