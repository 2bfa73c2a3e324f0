use crate::common::{new_client, spawn_app};
use labshare::demo;

#[tokio::test]
async fn demo_data_loads_once_and_fills_the_portal() {
    let app = spawn_app().await;
    assert!(demo::is_empty(&app.db).await.unwrap());
    let first = demo::load(&app.db, &app.state.clock).await.unwrap();
    app.state.search.rebuild(&app.db, &|_, _| {}).await.unwrap();
    assert!(first.units >= 12, "{first}");
    assert!(first.instruments >= 300, "{first}");
    assert_eq!(first.users, 9);
    let reviews = demo::start_pending_reviews(&app.state.engine)
        .await
        .unwrap();
    assert!(
        reviews >= 10,
        "the pending demo records are in review: {reviews}"
    );
    assert_eq!(
        demo::start_pending_reviews(&app.state.engine)
            .await
            .unwrap(),
        0
    );
    let second = demo::load(&app.db, &app.state.clock).await.unwrap();
    assert_eq!(
        (
            second.units,
            second.users,
            second.instruments,
            second.articles
        ),
        (0, 0, 0, 0)
    );

    let classes: i64 =
        sqlx::query_scalar("SELECT COUNT(DISTINCT SUBSTR(category_code, 1, 2)) FROM instruments")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(classes, 15);

    // One demo account per role can sign in.
    for (user, role) in [
        ("admin", "system_admin"),
        ("bureau", "platform_admin"),
        ("bureau_fund", "platform_admin"),
        ("xcu_lab", "unit_manager"),
        ("expert_zhang", "expert"),
        ("senyuan", "user"),
    ] {
        let res = app
            .client
            .post(app.url("/api/v1/session"))
            .json(&serde_json::json!({"username": user, "password": demo::DEMO_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{user}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["user"]["roles"][0], role);
    }

    let (status, html) = app.get_page(&new_client(), "/").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("场发射扫描电子显微镜")
            || html.contains("核磁共振波谱仪")
            || html.contains("透射电子显微镜")
    );
    let (status, html) = app
        .get_page(&new_client(), "/instruments?category=010000")
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("分析仪器"));
    let (status, html) = app.get_page(&new_client(), "/search?q=7890B").await;
    assert_eq!(status, 200);
    assert!(html.contains("7890B-5977B"));
    // The list page's keyword box uses the full-text engine: 电镜 finds 扫描电子显微镜,
    // which SQL LIKE cannot.
    let (status, html) = app
        .get_page(
            &new_client(),
            "/instruments?q=%E7%94%B5%E9%95%9C&category=010000",
        )
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("扫描电子显微镜"), "{html}");
    let (status, html) = app.get_page(&new_client(), "/notices").await;
    assert_eq!(status, 200);
    assert!(html.contains("创新券"));

    // The money history: the enterprise's vouchers used on completed services are exactly
    // what its ledger says, and a request, a quote and a confirmed service wait.
    let year = chrono::Datelike::year(&app.state.clock.today());
    let token = app.token_with("senyuan", demo::DEMO_PASSWORD).await;
    let (_, me) = app.api("GET", "/api/v1/me", Some(&token), None).await;
    let unit = me["units"][0]["id"].as_i64().unwrap();
    let (status, balance) = app
        .api(
            "GET",
            &format!("/api/v1/units/{unit}/vouchers?year={year}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{balance}");
    assert_eq!(balance["quota"], "50000.00");
    let used: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(voucher_fen), 0) AS BIGINT) FROM bookings WHERE unit_id = $1 AND status IN ('completed', 'confirmed')",
    )
    .bind(unit)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(used > 0);
    assert_eq!(
        balance["used"].as_str().unwrap(),
        labshare::domain::Yuan::from_fen(used).to_string()
    );
    let waiting: Vec<(String,)> = sqlx::query_as(
        "SELECT status FROM bookings WHERE status IN ('requested', 'quoted') ORDER BY status",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(waiting.len(), 2);
    let confirmed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM bookings WHERE status = 'confirmed' AND voucher_fen > 0",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(confirmed, 1, "a confirmed service waits for completion");
}
