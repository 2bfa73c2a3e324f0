//! Issue 19: the public page cache. Home, the instrument list, search and instrument pages are
//! served from the cache to visitors who are not signed in — and are never stale after a write,
//! whether the write went through this node or through another node on the same database.

use std::time::{Duration, Instant};

use labshare::demo;

use crate::common::{TestApp, new_client, spawn_app, spawn_app_with};

async fn demo_app() -> TestApp {
    let app = spawn_app().await;
    demo::load(&app.db, &app.state.clock).await.unwrap();
    app.state.search.rebuild(&app.db, &|_, _| {}).await.unwrap();
    app
}

/// GET a page as an anonymous visitor: status, `x-page-cache` and the HTML.
async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String, String) {
    let res = client.get(app.url(path)).send().await.expect("request");
    let status = res.status().as_u16();
    let cache = res
        .headers()
        .get("x-page-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, cache, res.text().await.unwrap_or_default())
}

/// Ask twice: the second answer must come from the cache and be the same page.
async fn cached(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let (s1, _, first) = page(app, client, path).await;
    let (s2, c2, second) = page(app, client, path).await;
    assert_eq!((s1, s2), (200, 200), "{path}");
    assert_eq!(c2, "hit", "{path} was not served from the cache");
    assert_eq!(first, second, "{path}: the cached page differs");
    second
}

async fn approved_instrument(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT id FROM instruments WHERE review_status = 'approved' AND open_to_public = 1 ORDER BY id LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn cached_pages_are_never_stale_after_a_write() {
    let app = demo_app().await;
    let client = new_client();
    let id = approved_instrument(&app).await;
    let path = format!("/instruments/{id}");

    // The instrument page: a write to the instrument is on the very next request.
    let before = cached(&app, &client, &path).await;
    assert!(!before.contains("缓存失效验证仪"));
    sqlx::query("UPDATE instruments SET name = '缓存失效验证仪' WHERE id = $1")
        .bind(id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (status, cache, after) = page(&app, &client, &path).await;
    assert_eq!(status, 200);
    assert_eq!(cache, "miss");
    assert!(after.contains("缓存失效验证仪"), "stale instrument page");

    // Withdrawn: the cached page is not served any more (the page is gone for visitors).
    sqlx::query("UPDATE instruments SET review_status = 'rejected' WHERE id = $1")
        .bind(id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (status, _, _) = page(&app, &client, &path).await;
    assert_eq!(
        status, 404,
        "a withdrawn instrument was served from the cache"
    );

    // The home page: a newly published notice shows at once.
    let home = cached(&app, &client, "/").await;
    assert!(!home.contains("页面缓存测试通知"));
    let now = app.now();
    sqlx::query(
        "INSERT INTO articles (kind, title, summary, body_html, source, status, pinned, published_at, created_at, updated_at) \
         VALUES ('notice', '页面缓存测试通知', '摘要', '<p>正文</p>', '市科技局', 'published', 1, $1, $1, $1)",
    )
    .bind(now + 10)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let (_, cache, home) = page(&app, &client, "/").await;
    assert_eq!(cache, "miss");
    assert!(home.contains("页面缓存测试通知"), "stale home page");

    // The instrument list: a changed city shows in its city filter at once.
    let list = cached(&app, &client, "/instruments").await;
    assert!(!list.contains("缓存市"));
    let other = sqlx::query_scalar::<_, i64>(
        "SELECT id FROM instruments WHERE review_status = 'approved' AND id <> $1 ORDER BY id LIMIT 1",
    )
    .bind(id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE instruments SET city = '缓存市' WHERE id = $1")
        .bind(other)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (_, _, list) = page(&app, &client, "/instruments").await;
    assert!(list.contains("缓存市"), "stale instrument list");

    // Search: a newly approved instrument appears as soon as the index has it (the page is
    // exactly as current as the index, cached or not).
    let q = "/search?q=%E7%BC%93%E5%AD%98%E9%AA%8C%E8%AF%81%E5%8F%B0"; // 缓存验证台
    cached(&app, &client, q).await;
    let unit: i64 =
        sqlx::query_scalar("SELECT id FROM units WHERE kind = 'managing' ORDER BY id LIMIT 1")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let mut tx = app.db.begin_write().await.unwrap();
    let new_id: i64 = sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, model, manufacturer, category_code, value_fen, \
         review_status, created_at, updated_at) VALUES ($1, '缓存验证台', 'PC-1', '测试厂', '010100', \
         100000000, 'approved', $2, $2) RETURNING id",
    )
    .bind(unit)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    labshare::search::enqueue(&mut tx, "instrument", new_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let started = Instant::now();
    loop {
        let (_, _, html) = page(&app, &client, q).await;
        // (minijinja escapes `/` in attributes as `&#x2f;`.)
        if html.contains(&format!("/instruments/{new_id}\""))
            || html.contains(&format!("&#x2f;instruments&#x2f;{new_id}\""))
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(5) {
            let (_, api) = app
                .api(
                    "GET",
                    "/api/v1/search?q=%E7%BC%93%E5%AD%98%E9%AA%8C%E8%AF%81%E5%8F%B0",
                    None,
                    None,
                )
                .await;
            panic!(
                "the search page still misses instrument {new_id} after 5 s; the API says {api}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn signed_in_users_and_flash_messages_bypass_the_cache() {
    let app = demo_app().await;
    app.create_user("cache_user", "user").await;
    let signed_in = app.browser_login("cache_user").await;
    for _ in 0..2 {
        let (status, cache, html) = page(&app, &signed_in, "/").await;
        assert_eq!(status, 200);
        assert_eq!(cache, "", "a signed-in page went through the cache");
        assert!(html.contains("退出"), "the signed-in header is shown");
    }
    // An anonymous page cached meanwhile never shows a signed-in header, and vice versa.
    let anon = cached(&app, &new_client(), "/").await;
    assert!(!anon.contains("退出"));
    let (_, _, html) = page(&app, &signed_in, "/").await;
    assert!(html.contains("退出"));
    // A first visit still receives its CSRF cookie from a cached page.
    let res = reqwest::Client::new()
        .get(app.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-page-cache"], "hit");
    assert!(
        res.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap_or("").starts_with("labshare_csrf=")),
        "no CSRF cookie on a cached page"
    );
}

#[tokio::test]
async fn a_write_through_another_node_is_seen_by_this_nodes_cache() {
    let a = demo_app().await;
    // A second node on the same database, with its own data directory and index.
    let url = a.state.config.database_url.clone();
    let b = spawn_app_with(&[("LABSHARE_DATABASE_URL", url.as_str())]).await;
    let client = new_client();
    let id = approved_instrument(&a).await;
    let path = format!("/instruments/{id}");
    cached(&a, &client, &path).await;
    cached(&a, &client, "/").await;
    // Written through node B's own connections.
    sqlx::query("UPDATE instruments SET model = 'NODE-B-42' WHERE id = $1")
        .bind(id)
        .execute(&b.db.pool)
        .await
        .unwrap();
    let (_, cache, html) = page(&a, &client, &path).await;
    assert_eq!(cache, "miss");
    assert!(html.contains("NODE-B-42"), "node A served a stale page");
    // And node B renders the same fresh page.
    let (_, _, html) = page(&b, &client, &path).await;
    assert!(html.contains("NODE-B-42"));
    sqlx::query("UPDATE units SET name = '节点B改名单位' WHERE id = (SELECT unit_id FROM instruments WHERE id = $1)")
        .bind(id)
        .execute(&b.db.pool)
        .await
        .unwrap();
    let (_, _, html) = page(&a, &client, &path).await;
    assert!(html.contains("节点B改名单位"), "unit name stale on node A");
}
