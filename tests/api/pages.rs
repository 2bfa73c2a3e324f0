use crate::common::{new_client, spawn_app};

#[tokio::test]
async fn the_portal_home_is_chinese_with_the_full_navigation() {
    let app = spawn_app().await;
    let (status, html) = app.get_page(&new_client(), "/").await;
    assert_eq!(status, 200);
    for label in [
        "首页",
        "科研仪器",
        "科研平台",
        "检测服务",
        "服务机构",
        "科技成果",
        "通知公告",
        "政策宣讲",
        "工作动态",
        "登录",
        "注册",
    ] {
        assert!(html.contains(label), "missing {label}");
    }
    assert!(html.contains("lang=\"zh-CN\""));
    assert!(html.contains("role=\"search\""));
}

#[tokio::test]
async fn unknown_pages_are_a_chinese_404_and_unknown_api_paths_are_json() {
    let app = spawn_app().await;
    let (status, html) = app.get_page(&new_client(), "/no/such/page").await;
    assert_eq!(status, 404);
    assert!(html.contains("页面不存在"));
    let (status, html) = app
        .get_page(&new_client(), "/instruments/not-a-number")
        .await;
    assert_eq!(status, 404);
    assert!(html.contains("页面不存在"));
    let (status, body) = app.api("GET", "/api/v1/nothing", None, None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = app.api("POST", "/api/v1/users", None, None).await;
    assert!(status == 400 || status == 415, "{status}");
    assert!(body["error"]["code"].is_string());
}

#[tokio::test]
async fn static_files_are_served_with_caching_headers() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/static/site.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}
