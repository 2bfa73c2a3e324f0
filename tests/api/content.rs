//! Content publishing (资讯发布): sanitised rich text, publish and withdraw.

use crate::common::spawn_app;

#[tokio::test]
async fn a_script_never_survives_and_only_published_articles_reach_the_portal() {
    let app = spawn_app().await;
    app.create_user("editor", "platform_admin").await;
    let browser = app.browser_login("editor").await;

    // Missing title: error beside the field, body kept (sanitised).
    let res = app
        .post_form(
            &browser,
            "/console/content/new",
            "/console/content",
            &[
                ("kind", "notice"),
                ("title", ""),
                ("body_html", "<p>保留的正文</p>"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("请填写标题（2–120 字）"));
    assert!(html.contains("保留的正文"));

    let body = "<p>关于开展 2026 年度创新券申报的通知</p><script>alert('x')</script>\
                <img src=\"/static/a.png\" onerror=\"alert(1)\"><a href=\"javascript:alert(2)\">链接</a>";
    let res = app
        .post_form(
            &browser,
            "/console/content/new",
            "/console/content",
            &[
                ("kind", "notice"),
                ("title", "创新券申报通知"),
                ("body_html", body),
                ("pinned", "1"),
                ("publish_date", "2026-11-20"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let id: i64 = location.rsplit('/').next().unwrap().parse().unwrap();

    let stored: String = sqlx::query_scalar("SELECT body_html FROM articles WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(stored.contains("关于开展 2026 年度创新券申报的通知"));
    for bad in ["<script", "alert('x')", "onerror", "javascript:"] {
        assert!(!stored.contains(bad), "{bad} survived: {stored}");
    }

    // A draft is not on the portal.
    let anon = crate::common::new_client();
    let (status, _) = app.get_page(&anon, &format!("/notices/{id}")).await;
    assert_eq!(status, 404);

    let res = app
        .post_form(&browser, &location, &format!("{location}/publish"), &[])
        .await;
    assert_eq!(res.status(), 303);
    let (status, html) = app.get_page(&anon, &format!("/notices/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("关于开展 2026 年度创新券申报的通知"));
    assert!(!html.contains("alert("));
    let (_, html) = app.get_page(&anon, "/notices").await;
    assert!(html.contains("创新券申报通知"));
    let (_, html) = app.get_page(&browser, "/console/content?kind=notice").await;
    assert!(html.contains("创新券申报通知") && html.contains("已发布") && html.contains("置顶"));
    assert!(
        html.contains("2026年11月20日"),
        "the chosen publish date is kept"
    );

    let res = app
        .post_form(&browser, &location, &format!("{location}/unpublish"), &[])
        .await;
    assert_eq!(res.status(), 303);
    let (status, _) = app.get_page(&anon, &format!("/notices/{id}")).await;
    assert_eq!(status, 404);

    // A unit manager cannot publish.
    app.create_user("um_c", "unit_manager").await;
    let other = app.browser_login("um_c").await;
    let (status, _) = app.get_page(&other, &location).await;
    assert_eq!(status, 403);
}
