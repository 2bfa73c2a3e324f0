//! The expert pool (专家库) and unit management rules (单位管理制度) in the console.

use crate::common::{spawn_app, unit_body};

#[tokio::test]
async fn the_expert_pool_is_filterable_by_field_and_certification_is_submitted_once() {
    let app = spawn_app().await;
    // Reviews run on the engine: someone must be there to review.
    app.create_user("reviewer_auto", "platform_admin").await;
    app.create_user("reviewer", "platform_admin").await;
    let browser = app.browser_login("reviewer").await;

    let res = app
        .post_form(
            &browser,
            "/console/experts/new",
            "/console/experts",
            &[
                ("name", "王"),
                ("unit_name", ""),
                ("title", "院士"),
                ("fields", ""),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("请填写专家姓名（2–30 字）"));
    assert!(html.contains("职称应为：正高级"));
    assert!(html.contains("请填写至少一个专业领域"));

    let mut first = String::new();
    for (name, fields) in [("李材料", "新材料，冶金"), ("赵环境", "环境检测、水处理")]
    {
        let res = app
            .post_form(
                &browser,
                "/console/experts/new",
                "/console/experts",
                &[
                    ("name", name),
                    ("unit_name", "许昌学院"),
                    ("title", "正高级"),
                    ("fields", fields),
                    ("joined_on", "2025-03-01"),
                ],
            )
            .await;
        assert_eq!(res.status(), 303);
        if first.is_empty() {
            first = res.headers()["location"].to_str().unwrap().to_string();
        }
    }
    let (_, html) = app
        .get_page(&browser, "/console/experts?field=新材料")
        .await;
    assert!(html.contains("李材料") && html.contains("新材料、冶金"));
    assert!(!html.contains("赵环境"));
    let (_, html) = app.get_page(&browser, "/console/experts").await;
    assert!(html.contains("李材料") && html.contains("赵环境"));

    let res = app
        .post_form(&browser, &first, &format!("{first}/certify"), &[])
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app.get_page(&browser, &first).await;
    assert!(html.contains("已提交专家认证") && html.contains("审核中"));
    let res = app
        .post_form(
            &browser,
            "/console/experts",
            &format!("{first}/certify"),
            &[],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app.get_page(&browser, &first).await;
    assert!(html.contains("该专家的认证正在审核中"));

    app.create_user("um_e", "unit_manager").await;
    let other = app.browser_login("um_e").await;
    let (status, _) = app.get_page(&other, "/console/experts").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_unit_manager_registers_a_rule_for_their_own_unit_only() {
    let app = spawn_app().await;
    // Reviews run on the engine: someone must be there to review.
    app.create_user("reviewer_auto", "platform_admin").await;
    app.create_user("um_rule", "unit_manager").await;
    let token = app.token("um_rule").await;
    let (_, unit) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&token),
            Some(unit_body("制度测试研究院", 41, "managing")),
        )
        .await;
    let unit = unit["id"].as_i64().unwrap().to_string();
    app.create_user("um_rule2", "unit_manager").await;
    let token2 = app.token("um_rule2").await;
    let (_, unit2) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&token2),
            Some(unit_body("别家研究院", 42, "managing")),
        )
        .await;
    let unit2 = unit2["id"].as_i64().unwrap().to_string();
    let browser = app.browser_login("um_rule").await;

    let post = |fields: Vec<(&'static str, String)>, file: Option<&'static [u8]>| {
        let browser = browser.clone();
        let url = app.url("/console/rules");
        async move {
            let html = browser
                .get(&url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let token = crate::common::csrf_from(&html).unwrap();
            let b = "----ruleBoundary";
            let mut body = format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n"
            )
            .into_bytes();
            for (k, v) in fields {
                body.extend_from_slice(
                    format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                        .as_bytes(),
                );
            }
            if let Some(bytes) = file {
                body.extend_from_slice(
                    format!("--{b}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"制度.pdf\"\r\n\r\n").as_bytes(),
                );
                body.extend_from_slice(bytes);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
            browser
                .post(&url)
                .header("content-type", format!("multipart/form-data; boundary={b}"))
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let res = post(
        vec![
            ("unit_id", unit.clone()),
            ("name", "大型仪器开放共享管理办法".into()),
            ("published_on", "2025-06-01".into()),
            ("effective_on", "2025-05-01".into()),
        ],
        None,
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("施行日期不能早于发布日期")
    );

    let res = post(
        vec![
            ("unit_id", unit.clone()),
            ("name", "大型仪器开放共享管理办法".into()),
            ("published_on", "2025-06-01".into()),
        ],
        Some(b"MZ\x90\x00 executable"),
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("附件只能是 PDF 文件"));

    let res = post(
        vec![
            ("unit_id", unit2),
            ("name", "越权制度".into()),
            ("published_on", "2025-06-01".into()),
        ],
        None,
    )
    .await;
    assert_eq!(res.status(), 403);

    let res = post(
        vec![
            ("unit_id", unit),
            ("name", "大型仪器开放共享管理办法".into()),
            ("number", "许院〔2025〕12号".into()),
            ("published_on", "2025-06-01".into()),
        ],
        Some(b"%PDF-1.4\n%%EOF"),
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app.get_page(&browser, "/console/rules").await;
    assert!(html.contains("大型仪器开放共享管理办法") && html.contains("许院〔2025〕12号"));
    assert!(html.contains("制度.pdf"));
    assert!(!html.contains("越权制度"));
}

#[tokio::test]
async fn demo_experts_and_rules_load_once_and_show_in_the_console() {
    let app = spawn_app().await;
    // Reviews run on the engine: someone must be there to review.
    app.create_user("reviewer_auto", "platform_admin").await;
    labshare::demo::load(&app.db, &app.state.clock)
        .await
        .unwrap();
    let second = labshare::demo::load(&app.db, &app.state.clock)
        .await
        .unwrap();
    assert_eq!(second.others, 0, "{second}");
    let experts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM experts")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(experts, 7);

    let client = crate::common::new_client();
    let res = app
        .post_form(
            &client,
            "/login",
            "/login",
            &[
                ("username", "bureau"),
                ("password", labshare::demo::DEMO_PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app
        .get_page(&client, "/console/experts?field=食品安全")
        .await;
    assert!(html.contains("李慧敏") && !html.contains("张建华"));

    let client = crate::common::new_client();
    app.post_form(
        &client,
        "/login",
        "/login",
        &[
            ("username", "xcu_lab"),
            ("password", labshare::demo::DEMO_PASSWORD),
        ],
    )
    .await;
    let (status, html) = app.get_page(&client, "/console/rules").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("许昌学院大型仪器设备开放共享管理办法"),
        "{html}"
    );
}
