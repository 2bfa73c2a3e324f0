//! Uploads (上传): photos and PDFs checked by their bytes and size, served with their type,
//! never anything executable and never outside the data directory.

use serde_json::json;

use crate::common::{TestApp, csrf_from, spawn_app, unit_body};

/// Post a multipart form as a browser would: the CSRF token from `form_page`, one file.
pub(crate) async fn post_file(
    app: &TestApp,
    client: &reqwest::Client,
    (form_page, action): (&str, &str),
    field: &str,
    file_name: &str,
    content_type: &str,
    bytes: &[u8],
) -> reqwest::Response {
    let (_, html) = app.get_page(client, form_page).await;
    let token = csrf_from(&html).unwrap_or_default();
    let boundary = "----labshareTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    client
        .post(app.url(action))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("multipart post")
}

pub(crate) fn png(extra: usize) -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    v.extend(std::iter::repeat_n(7u8, extra));
    v
}

#[tokio::test]
async fn photos_are_checked_by_content_and_size_and_shown_on_the_portal() {
    let app = spawn_app().await;
    app.create_user("um_up", "unit_manager").await;
    let token = app.token("um_up").await;
    let (_, unit) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&token),
            Some(unit_body("上传测试研究院", 11, "managing")),
        )
        .await;
    let unit = unit["id"].as_i64().unwrap();
    let (_, created) = app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(&token),
            Some(json!({"unit_id": unit, "name": "高分辨质谱仪", "category_code": "010200", "value": "2000000"})),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    let page = format!("/console/instruments/{id}");
    let action = format!("/console/instruments/{id}/photos");
    let browser = app.browser_login("um_up").await;

    // A Windows executable dressed up as a JPEG is refused.
    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00".to_vec();
    exe.extend(std::iter::repeat_n(0u8, 2048));
    let res = post_file(
        &app,
        &browser,
        (&page, &action),
        "photo",
        "photo.jpg",
        "image/jpeg",
        &exe,
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app.get_page(&browser, &page).await;
    assert!(
        html.contains("照片只能是 JPEG、PNG 或 WebP 图片"),
        "the refusal is shown"
    );
    assert!(html.contains("还没有照片"));

    // Over 5 MB is refused, even though it really is a PNG.
    let big = png(5 * 1024 * 1024 + 10);
    let res = post_file(
        &app,
        &browser,
        (&page, &action),
        "photo",
        "big.png",
        "image/png",
        &big,
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app.get_page(&browser, &page).await;
    assert!(html.contains("照片不能超过 5 MB"));

    // Beyond any upload limit the request itself is refused, never a 500.
    let huge = png(22 * 1024 * 1024);
    let res = post_file(
        &app,
        &browser,
        (&page, &action),
        "photo",
        "huge.png",
        "image/png",
        &huge,
    )
    .await;
    assert!(
        matches!(res.status().as_u16(), 413 | 422),
        "{}",
        res.status()
    );

    // Without the CSRF token nothing is stored.
    let res = browser
        .post(app.url(&action))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n\r\n\u{89}PNG\r\n--x--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // A real PNG is stored under the data directory with a random name.
    let good = png(1000);
    let res = post_file(
        &app,
        &browser,
        (&page, &action),
        "photo",
        "正面照.png",
        "application/octet-stream",
        &good,
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app.get_page(&browser, &page).await;
    let start = html
        .find("src=\"/uploads/")
        .expect("photo shown in the console")
        + 5;
    let url = html[start..start + html[start..].find('"').unwrap()].to_string();
    let stored_name = url.trim_start_matches("/uploads/");
    assert!(
        stored_name.ends_with(".png") && stored_name.len() == 36,
        "{stored_name}"
    );
    // SQLite (one node): a file under the data directory; PostgreSQL (several nodes): the
    // bytes in the database, so every node serves it.
    let data_dir = app.state.config.data_dir.clone();
    let on_disk = data_dir.join("uploads").join(stored_name).exists();
    let in_db: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM upload_blobs b JOIN uploads u ON u.id = b.upload_id WHERE u.stored_name = $1",
    )
    .bind(stored_name)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    match app.db.backend {
        labshare::store::Backend::Sqlite => assert!(on_disk && in_db == 0),
        labshare::store::Backend::Postgres => assert!(!on_disk && in_db == 1),
    }

    // A draft's photo is for its unit (and reviewers), not for anyone with the URL.
    let anon = crate::common::new_client();
    let res = anon.get(app.url(&url)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = browser.get(app.url(&url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(disposition.starts_with("inline;"), "{disposition}");
    assert!(
        disposition.contains("UTF-8''%E6%AD%A3%E9%9D%A2%E7%85%A7.png"),
        "{disposition}"
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.bytes().await.unwrap().as_ref(), good.as_slice());

    // Nothing outside the upload directory can be named.
    for bad in [
        "/uploads/..%2Flabshare.db",
        "/uploads/labshare.db",
        "/uploads/..%2F..%2Fetc%2Fpasswd",
    ] {
        let res = anon.get(app.url(bad)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{bad}");
    }

    // Once approved the photo is on the portal's detail page.
    sqlx::query("UPDATE instruments SET review_status = 'approved' WHERE id = $1")
        .bind(id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (status, html) = app.get_page(&anon, &format!("/instruments/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("src=\"{url}\"")),
        "photo on the portal"
    );
    let res = anon.get(app.url(&url)).send().await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "an approved instrument's photo is public"
    );
}

#[tokio::test]
async fn an_article_takes_a_pdf_attachment_served_as_a_download() {
    let app = spawn_app().await;
    app.create_user("editor_up", "platform_admin").await;
    let browser = app.browser_login("editor_up").await;
    let res = app
        .post_form(
            &browser,
            "/console/content/new",
            "/console/content",
            &[
                ("kind", "policy"),
                ("title", "共享补贴办法"),
                ("body_html", "<p>办法全文见附件</p>"),
            ],
        )
        .await;
    let page = res.headers()["location"].to_str().unwrap().to_string();
    let action = format!("{page}/attachments");

    let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF".to_vec();
    let res = post_file(
        &app,
        &browser,
        (&page, &action),
        "file",
        "办法.pdf",
        "application/pdf",
        &pdf,
    )
    .await;
    assert_eq!(res.status(), 303);
    // An HTML page named .pdf is not a PDF.
    let html_file = b"<html><script>alert(1)</script></html>";
    post_file(
        &app,
        &browser,
        (&page, &action),
        "file",
        "x.pdf",
        "application/pdf",
        html_file,
    )
    .await;
    let (_, html) = app.get_page(&browser, &page).await;
    assert!(html.contains("附件只能是 PDF 文件"));
    assert!(html.contains("办法.pdf"));
    assert_eq!(html.matches("href=\"/uploads/").count(), 1);

    let res = app
        .post_form(&browser, &page, &format!("{page}/publish"), &[])
        .await;
    assert_eq!(res.status(), 303);
    let anon = crate::common::new_client();
    let id = page.rsplit('/').next().unwrap();
    let (_, html) = app.get_page(&anon, &format!("/policies/{id}")).await;
    let start = html.find("href=\"/uploads/").expect("attachment listed") + 6;
    let url = &html[start..start + html[start..].find('"').unwrap()];
    let res = anon.get(app.url(url)).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
}
