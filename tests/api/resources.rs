//! Instruments (科研仪器) for unit managers: create, validate, submit and the unit scope, over
//! the API and the console.

use serde_json::{Value, json};

use crate::common::{TestApp, spawn_app, unit_body};

/// A unit manager with a managing unit of their own; returns (token, unit id).
async fn manager_with_unit(app: &TestApp, username: &str, n: u32) -> (String, i64) {
    app.create_user(username, "unit_manager").await;
    let token = app.token(username).await;
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&token),
            Some(unit_body(&format!("{username}研究院"), n, "managing")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (token, body["id"].as_i64().expect("unit id"))
}

fn complete_instrument(unit_id: i64) -> Value {
    json!({
        "unit_id": unit_id, "name": "场发射扫描电子显微镜", "model": "Sigma 300",
        "manufacturer": "蔡司", "category_code": "010100", "department": "分析测试中心",
        "value": "1250000.00", "open_to_public": true, "city": "许昌市",
        "customs_supervised": false, "usage_status": "正常",
        "description": "分辨率 1.2 nm", "location": "实验楼 101", "fee_standard": "300 元/小时",
        "service_content": "形貌观察、能谱分析",
    })
}

#[tokio::test]
async fn an_instrument_is_created_as_draft_completed_and_submitted_for_review() {
    let app = spawn_app().await;
    // Reviews run on the engine: someone must be there to review.
    app.create_user("reviewer_auto", "platform_admin").await;
    let (token, unit) = manager_with_unit(&app, "um_a", 1).await;

    // A draft needs the basics only; location, fees etc. are checked at submission.
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(&token),
            Some(json!({"unit_id": unit, "name": "电镜", "category_code": "010100", "value": 1250000})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["review_status"], "draft");
    let id = body["id"].as_i64().unwrap();

    let (status, got) = app
        .api(
            "GET",
            &format!("/api/v1/instruments/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["value"], "1250000.00");
    assert_eq!(got["value_wan"], "125.00");
    assert_eq!(got["review_status"], "draft");
    assert_eq!(got["booking_rules"]["slot_minutes"], 30);

    // Incomplete: submission names the missing fields and leaves the record a draft.
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/instruments/{id}/submit"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["fields"]["location"], "请填写安放地点");
    assert_eq!(body["error"]["fields"]["fee_standard"], "请填写收费标准");

    let mut patch = complete_instrument(unit);
    patch["slot_minutes"] = json!(60);
    let (status, body) = app
        .api(
            "PATCH",
            &format!("/api/v1/instruments/{id}"),
            Some(&token),
            Some(patch),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "场发射扫描电子显微镜");
    assert_eq!(body["booking_rules"]["slot_minutes"], 60);

    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/instruments/{id}/submit"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["state"], "review");
    assert!(body["instance_id"].is_number());

    let (_, got) = app
        .api(
            "GET",
            &format!("/api/v1/instruments/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(got["review_status"], "pending");

    // Under review: no edits, no second submission.
    let (status, body) = app
        .api(
            "PATCH",
            &format!("/api/v1/instruments/{id}"),
            Some(&token),
            Some(json!({"name": "改名"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "not_editable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("审核中")
    );
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/instruments/{id}/submit"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn bad_instrument_fields_are_422_with_chinese_messages_per_field() {
    let app = spawn_app().await;
    // Reviews run on the engine: someone must be there to review.
    app.create_user("reviewer_auto", "platform_admin").await;
    let (token, unit) = manager_with_unit(&app, "um_v", 2).await;
    let mut body = complete_instrument(unit);
    body["category_code"] = json!("999999");
    body["value"] = json!("12.345");
    body["usage_status"] = json!("很好");
    body["customs_supervised"] = json!(true);
    body["slot_minutes"] = json!(0);
    let (status, res) = app
        .api("POST", "/api/v1/instruments", Some(&token), Some(body))
        .await;
    assert_eq!(status, 422, "{res}");
    let f = &res["error"]["fields"];
    assert_eq!(f["category_code"], "请选择仪器分类（六位分类代码）");
    assert!(f["value"].as_str().unwrap().contains("两位小数"), "{f}");
    assert_eq!(f["usage_status"], "运行状态不在可选范围内");
    assert_eq!(
        f["customs_declaration_no"],
        "海关监管仪器须填写进口报关单编号"
    );
    assert!(
        f["customs_release_date"]
            .as_str()
            .unwrap()
            .contains("放行日期")
    );
    assert_eq!(f["slot_minutes"], "预约时段长度应为 5–1440 分钟");

    // With the declaration the customs-supervised instrument is accepted.
    let mut ok = complete_instrument(unit);
    ok["customs_supervised"] = json!(true);
    ok["customs_declaration_no"] = json!("460120231234567890");
    ok["customs_release_date"] = json!("2023-05-06");
    let (status, res) = app
        .api("POST", "/api/v1/instruments", Some(&token), Some(ok))
        .await;
    assert_eq!(status, 201, "{res}");
    let id = res["id"].as_i64().unwrap();
    let (_, got) = app
        .api(
            "GET",
            &format!("/api/v1/instruments/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(got["customs_declaration_no"], "460120231234567890");
    assert_eq!(got["customs_release_date"], "2023-05-06");
    assert_eq!(got["customs_supervised"], true);
}

#[tokio::test]
async fn other_units_and_other_roles_cannot_touch_an_instrument() {
    let app = spawn_app().await;
    // Reviews run on the engine: someone must be there to review.
    app.create_user("reviewer_auto", "platform_admin").await;
    let (token_a, unit_a) = manager_with_unit(&app, "um_own", 3).await;
    let (token_b, _) = manager_with_unit(&app, "um_other", 4).await;
    app.create_user("plain", "user").await;
    let token_user = app.token("plain").await;

    // Creating for someone else's unit.
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(&token_b),
            Some(complete_instrument(unit_a)),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "not_unit_member");
    let (status, _) = app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(&token_user),
            Some(complete_instrument(unit_a)),
        )
        .await;
    assert_eq!(status, 403);

    let (_, body) = app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(&token_a),
            Some(complete_instrument(unit_a)),
        )
        .await;
    let id = body["id"].as_i64().unwrap();
    for (method, path, body) in [
        ("GET", format!("/api/v1/instruments/{id}"), None),
        (
            "PATCH",
            format!("/api/v1/instruments/{id}"),
            Some(json!({"name": "抢占"})),
        ),
        ("POST", format!("/api/v1/instruments/{id}/submit"), None),
    ] {
        let (status, res) = app.api(method, &path, Some(&token_b), body).await;
        assert_eq!(status, 403, "{method} {path}: {res}");
    }
    // A draft is not public.
    let (status, _) = app
        .api("GET", &format!("/api/v1/instruments/{id}"), None, None)
        .await;
    assert_eq!(status, 401);
    let (_, got) = app
        .api(
            "GET",
            &format!("/api/v1/instruments/{id}"),
            Some(&token_a),
            None,
        )
        .await;
    assert_eq!(got["name"], "场发射扫描电子显微镜", "nothing was changed");

    // Once approved (by the review flow) it is public and no longer editable in place.
    sqlx::query("UPDATE instruments SET review_status = 'approved' WHERE id = $1")
        .bind(id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (status, got) = app
        .api("GET", &format!("/api/v1/instruments/{id}"), None, None)
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["review_status"], "approved");
    let (status, body) = app
        .api(
            "PATCH",
            &format!("/api/v1/instruments/{id}"),
            Some(&token_a),
            Some(json!({"name": "新名"})),
        )
        .await;
    // An approved instrument takes the edit as a change request (issue 13); the public record
    // keeps its name until the change is approved.
    assert_eq!(status, 202, "{body}");
    assert!(body["change_id"].is_number());
    let (_, got) = app
        .api("GET", &format!("/api/v1/instruments/{id}"), None, None)
        .await;
    assert_ne!(got["name"], "新名");
}

#[tokio::test]
async fn a_unit_manager_registers_and_submits_an_instrument_in_the_console() {
    let app = spawn_app().await;
    // Reviews run on the engine: someone must be there to review.
    app.create_user("reviewer_auto", "platform_admin").await;
    let (_, unit) = manager_with_unit(&app, "um_web", 5).await;
    let browser = app.browser_login("um_web").await;

    let (status, html) = app.get_page(&browser, "/console/instruments/new").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("010100 电子光学仪器"),
        "class select is offered"
    );
    assert!(html.contains("um_web研究院"));

    let unit_s = unit.to_string();
    let mut fields = vec![
        ("unit_id", unit_s.as_str()),
        ("name", "激光共聚焦显微镜"),
        ("category_code", "010800"),
        ("value", "八十万"),
        ("customs_supervised", "1"),
    ];
    let res = app
        .post_form(
            &browser,
            "/console/instruments/new",
            "/console/instruments",
            &fields,
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("仪器原值（元）：请输入金额"),
        "value error beside the field"
    );
    assert!(html.contains("海关监管仪器须填写进口报关单编号"));
    assert!(html.contains("value=\"激光共聚焦显微镜\""), "input is kept");

    fields[3] = ("value", "800000");
    fields[4] = ("customs_supervised", "0");
    let res = app
        .post_form(
            &browser,
            "/console/instruments/new",
            "/console/instruments",
            &fields,
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/console/instruments/"), "{location}");

    let (status, html) = app.get_page(&browser, "/console/instruments").await;
    assert_eq!(status, 200);
    assert!(html.contains("激光共聚焦显微镜"));
    assert!(html.contains("80.00"), "value shown in 万元");
    assert!(html.contains("草稿"));

    // Submitting the incomplete draft shows what is missing.
    let res = app
        .post_form(&browser, &location, &format!("{location}/submit"), &[])
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("请填写安放地点"));

    let complete = [
        ("name", "激光共聚焦显微镜"),
        ("category_code", "010800"),
        ("value", "800000"),
        ("model", "LSM 980"),
        ("manufacturer", "蔡司"),
        ("location", "生命科学楼 204"),
        ("description", "四通道激光"),
        ("service_content", "活细胞成像"),
        ("fee_standard", "200 元/小时"),
    ];
    let res = app
        .post_form(&browser, &location, &location, &complete)
        .await;
    assert_eq!(res.status(), 303);
    let res = app
        .post_form(&browser, &location, &format!("{location}/submit"), &[])
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app
        .get_page(&browser, "/console/instruments?status=pending")
        .await;
    assert!(html.contains("激光共聚焦显微镜"));
    assert!(html.contains("审核中"));
    let (_, html) = app
        .get_page(&browser, "/console/instruments?status=draft")
        .await;
    assert!(!html.contains("激光共聚焦显微镜"));

    // Another unit's manager cannot open it.
    manager_with_unit(&app, "um_web2", 6).await;
    let other = app.browser_login("um_web2").await;
    let (status, _) = app.get_page(&other, &location).await;
    assert_eq!(status, 403);
    let (_, html) = app.get_page(&other, "/console/instruments").await;
    assert!(!html.contains("激光共聚焦显微镜"));
}

fn sheet(rows: &[Vec<&str>]) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, (h, _)) in labshare::spreadsheets::COLUMNS.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if let Ok(n) = v.parse::<f64>() {
                ws.write_number(r as u32 + 1, c as u16, n).unwrap();
            } else {
                ws.write_string(r as u32 + 1, c as u16, *v).unwrap();
            }
        }
    }
    wb.save_to_buffer().unwrap()
}

async fn instrument_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM instruments")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_xlsx_import_with_a_bad_row_imports_nothing_and_names_the_row() {
    let app = spawn_app().await;
    // Reviews run on the engine: someone must be there to review.
    app.create_user("reviewer_auto", "platform_admin").await;
    let (_, unit) = manager_with_unit(&app, "um_xl", 21).await;
    let browser = app.browser_login("um_xl").await;

    // The template downloads as xlsx with the columns the importer reads.
    let res = browser
        .get(app.url("/console/instruments/template.xlsx"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("spreadsheetml")
    );
    let bytes = res.bytes().await.unwrap().to_vec();
    use calamine::Reader;
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let range = wb.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(range.get_value((0, 0)).unwrap().to_string(), "仪器名称*");

    let good = |name: &'static str| {
        vec![
            name,
            "M1",
            "厂商",
            "中国",
            "010100",
            "中心",
            "350000.50",
            "是",
            "许昌市",
            "否",
        ]
    };
    let mut bad = good("坏行仪器");
    bad[4] = "123";
    bad[6] = "很多钱";
    let unit_s = unit.to_string();
    let file = sheet(&[good("第一台"), bad, good("第三台")]);
    let res = crate::uploads::post_file(
        &app,
        &browser,
        ("/console/instruments/import", "/console/instruments/import"),
        "file",
        "仪器.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &file,
    )
    .await;
    // The helper sends no unit field; the form's default unit is required.
    assert_eq!(res.status(), 422);
    assert_eq!(instrument_count(&app).await, 0);

    // Send the unit too (as the form does).
    let post = |bytes: Vec<u8>| {
        let browser = browser.clone();
        let app_url = app.url("/console/instruments/import");
        let page = app.url("/console/instruments/import");
        let unit_s = unit_s.clone();
        async move {
            let html = browser
                .get(page)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let token = crate::common::csrf_from(&html).unwrap();
            let b = "----xlsxBoundary";
            let mut body = format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
                 --{b}\r\nContent-Disposition: form-data; name=\"unit_id\"\r\n\r\n{unit_s}\r\n\
                 --{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.xlsx\"\r\n\r\n"
            )
            .into_bytes();
            body.extend_from_slice(&bytes);
            body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
            browser
                .post(app_url)
                .header("content-type", format!("multipart/form-data; boundary={b}"))
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let res = post(file.clone()).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("未导入任何仪器"), "{html}");
    assert!(html.contains("第 3 行“分类代码”"), "the bad row is named");
    assert!(html.contains("第 3 行“原值（元）”"));
    assert!(
        !html.contains("第 2 行") && !html.contains("第 4 行"),
        "{html}"
    );
    assert_eq!(instrument_count(&app).await, 0, "nothing half-imported");

    // Not a spreadsheet at all: a clear message, never a 500.
    let res = post(b"MZ not an xlsx".to_vec()).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("无法读取文件"));

    let fixed = sheet(&[good("第一台"), good("第二台"), good("第三台")]);
    let res = post(fixed).await;
    assert_eq!(res.status(), 303);
    assert_eq!(instrument_count(&app).await, 3);
    let (_, html) = app
        .get_page(&browser, "/console/instruments?status=draft")
        .await;
    assert!(html.contains("已导入 3 台仪器"));
    assert!(html.contains("第二台") && html.contains("35.00"));

    // The list exports as xlsx.
    let rows = crate::common::xlsx_rows(&app, &browser, "/console/instruments/export.xlsx").await;
    assert_eq!(rows.len(), 4);
    let names: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert!(names.contains(&"第二台"));
    assert_eq!(rows[1][3], "35.00");
}

/// The journey through the API: a unit manager submits an instrument, a platform
/// admin approves it on the engine, and it is on the portal and in search within a second.
#[tokio::test]
async fn an_approved_instrument_is_public_and_searchable_within_a_second() {
    let app = spawn_app().await;
    app.create_user("bureau_pub", "platform_admin").await;
    let admin = app.token("bureau_pub").await;
    let (token, unit) = manager_with_unit(&app, "um_pub", 41).await;
    let mut body = complete_instrument(unit);
    body["name"] = json!("超高分辨场发射扫描电子显微镜");
    body["model"] = json!("GeminiSEM 560");
    let (status, created) = app
        .api("POST", "/api/v1/instruments", Some(&token), Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    let (status, _) = app
        .get_page(&crate::common::new_client(), &format!("/instruments/{id}"))
        .await;
    assert_eq!(status, 404, "a draft is not public");

    let (status, sub) = app
        .api(
            "POST",
            &format!("/api/v1/instruments/{id}/submit"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 202, "{sub}");
    // The reviewer may preview the pending record; the public may not.
    let reviewer = app.browser_login("bureau_pub").await;
    let (status, html) = app.get_page(&reviewer, &format!("/instruments/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("预览") && html.contains("审核中"));
    let (status, _) = app
        .get_page(&crate::common::new_client(), &format!("/instruments/{id}"))
        .await;
    assert_eq!(status, 404);
    let (status, html) = app.get_page(&reviewer, "/console/tasks").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("超高分辨场发射扫描电子显微镜"),
        "tasks name their subject"
    );

    let (_, tasks) = app.api("GET", "/api/v1/tasks", Some(&admin), None).await;
    let task = tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["subject"]["type"] == "instrument" && t["subject"]["id"] == id)
        .expect("the platform admin has the onboarding task")
        .clone();
    let (status, out) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{}/actions", task["id"]),
            Some(&admin),
            Some(json!({"action": "approve", "comment": "同意入网"})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let approved_at = std::time::Instant::now();
    let (_, got) = app
        .api(
            "GET",
            &format!("/api/v1/instruments/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(got["review_status"], "approved");
    let (status, html) = app
        .get_page(&crate::common::new_client(), &format!("/instruments/{id}"))
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("GeminiSEM 560"));

    // Searchable within a second (polling, no sleep-and-hope).
    let deadline = approved_at + std::time::Duration::from_secs(1);
    loop {
        let (_, res) = app
            .api("GET", "/api/v1/search?q=GeminiSEM%20560", None, None)
            .await;
        let hit = res["items"]
            .as_array()
            .map(|a| a.iter().any(|i| i["type"] == "instrument" && i["id"] == id))
            .unwrap_or(false);
        if hit {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not searchable within 1 s: {res}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn two_concurrent_submissions_of_one_instrument_start_one_review() {
    let app = spawn_app().await;
    app.create_user("reviewer_race", "platform_admin").await;
    let (token, unit) = manager_with_unit(&app, "um_race", 7).await;
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(&token),
            Some(json!({"unit_id": unit, "name": "电镜", "category_code": "010100", "value": 1250000})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();
    let (status, body) = app
        .api(
            "PATCH",
            &format!("/api/v1/instruments/{id}"),
            Some(&token),
            Some(complete_instrument(unit)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let path = format!("/api/v1/instruments/{id}/submit");
    let submit = || app.api("POST", &path, Some(&token), None);
    let ((a, body_a), (b, body_b)) = tokio::join!(submit(), submit());
    let mut got = [a, b];
    got.sort();
    assert_eq!(got, [202, 409], "{body_a} {body_b}");
    let refused = if a == 409 { &body_a } else { &body_b };
    let code = refused["error"]["code"].as_str().unwrap_or("");
    assert!(
        ["already_running", "not_editable"].contains(&code),
        "{refused}"
    );
    let running: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_instances WHERE subject_type = 'instrument' AND subject_id = $1 AND status = 'running'",
    )
    .bind(id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(running, 1, "exactly one running instance");
}

#[tokio::test]
async fn control_characters_in_an_instrument_name_are_refused_in_chinese() {
    let app = spawn_app().await;
    let (token, unit) = manager_with_unit(&app, "um_ctl", 7).await;
    for name in ["显微镜\r\nBEGIN:VEVENT", "显微镜\t镜", "显微\u{0}镜"] {
        let mut body = complete_instrument(unit);
        body["name"] = json!(name);
        let (status, b) = app
            .api("POST", "/api/v1/instruments", Some(&token), Some(body))
            .await;
        assert_eq!(status, 422, "{name:?}: {b}");
        assert!(b.to_string().contains("控制字符"), "{b}");
    }
}
