//! 信息上报 and 数据对接, second part: the OpenAPI document and its console page, the
//! per-client rate limit and the access log, `write:reports` clients, the national fields on
//! the instrument form, PATCH and the xlsx template, and per-unit reporting completeness.

use serde_json::{Value, json};

use crate::common::{certified_unit, credit_code, xlsx_rows};
use crate::reports::{World, instrument, national, world, world_with};

#[tokio::test]
async fn the_openapi_document_describes_every_api_route_and_the_console_renders_it() {
    let w = world(None).await;
    let res = w
        .app
        .client
        .get(w.app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = serde_json::from_str(&res.text().await.unwrap()).expect("valid JSON");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let routes = labshare::web::routes::all();
    let api: Vec<_> = routes
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/"))
        .collect();
    assert!(api.len() > 50);
    for r in &api {
        let op = &doc["paths"][&r.path][r.method.as_str().to_lowercase()];
        assert!(op.is_object(), "{} {} missing", r.method, r.path);
        assert!(op["summary"].is_string(), "{} {}", r.method, r.path);
    }
    // Nothing else: every documented operation is a route of the tables.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(
                api.iter()
                    .any(|r| r.path == *path && r.method.as_str().eq_ignore_ascii_case(method)),
                "{method} {path} is documented but not routed"
            );
        }
    }
    // The main bodies carry their schemas; docking routes their client token and scope.
    let create = &doc["paths"]["/api/v1/reports"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/NewBatch"
    );
    let batch = &doc["components"]["schemas"]["BatchView"];
    assert!(batch["properties"]["problems"].is_object(), "{batch}");
    assert!(doc["components"]["schemas"]["InstrumentInput"]["properties"]["name_en"].is_object());
    let read = &doc["paths"]["/api/v1/docking/instruments"]["get"];
    assert_eq!(read["security"][0]["client_token"][0], "read:instruments");
    assert!(read["responses"]["429"].is_object());

    // The console page renders it on the server, for any console user.
    let browser = w.app.browser_login("owner").await;
    let (status, html) = w.app.get_page(&browser, "/console/api-docs").await;
    assert_eq!(status, 200);
    let html = html.replace("&#x2f;", "/");
    assert!(html.contains("接口文档"));
    assert!(html.contains("/api/v1/reports/{id}/submit"));
    assert!(html.contains("提交平台审核"));
    assert!(html.contains("BatchView"));
    assert!(!html.contains("<script src=\"http"), "no CDN");
    // Anonymous visitors are sent to the login page.
    let (status, _) = w
        .app
        .get_page(&crate::common::new_client(), "/console/api-docs")
        .await;
    assert!(status == 303 || status == 200, "{status}");
}

async fn client(w: &World, sys: &str, body: Value) -> (u16, Value) {
    w.app
        .api("POST", "/api/v1/api-clients", Some(sys), Some(body))
        .await
}

async fn calls(w: &World) -> Vec<(Option<i64>, String, i64)> {
    sqlx::query_as("SELECT client_id, path, status FROM api_client_calls ORDER BY id")
        .fetch_all(&w.app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_over_its_rate_limit_gets_429_with_retry_after_and_every_call_is_logged() {
    let w = world_with(None, &[("LABSHARE_DOCKING_RATE_LIMIT", "3")]).await;
    w.app.create_user("sysadmin", "system_admin").await;
    let sys = w.app.token("sysadmin").await;
    instrument(&w, "场发射扫描电子显微镜", "990000", 186_000_000, false).await;
    let (_, a) = client(
        &w,
        &sys,
        json!({"name": "省平台", "scopes": ["read:instruments"]}),
    )
    .await;
    let (_, b) = client(
        &w,
        &sys,
        json!({"name": "市大数据局", "scopes": ["read:instruments"]}),
    )
    .await;
    let (a_id, a) = (a["id"].as_i64().unwrap(), a["token"].as_str().unwrap());
    let (b_id, b) = (b["id"].as_i64().unwrap(), b["token"].as_str().unwrap());

    for _ in 0..3 {
        let (status, body) = w
            .app
            .api("GET", "/api/v1/docking/instruments", Some(a), None)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let res = w
        .app
        .client
        .get(w.app.url("/api/v1/docking/instruments?page=1"))
        .bearer_auth(a)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry: i64 = res.headers()[reqwest::header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "too_many_requests");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("每分钟最多调用 3 次"),
        "{err}"
    );
    // The limit is per client: another client is answered; read:statistics reads statistics.
    let (_, st) = client(
        &w,
        &sys,
        json!({"name": "统计", "scopes": ["read:statistics"]}),
    )
    .await;
    let st_token = st["token"].as_str().unwrap().to_string();
    let (status, stats) = w
        .app
        .api(
            "GET",
            "/api/v1/docking/statistics?year=2026",
            Some(&st_token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert!(stats.is_object());
    let (status, _) = w
        .app
        .api("GET", "/api/v1/docking/instruments", Some(b), None)
        .await;
    assert_eq!(status, 200);
    // Refused calls are logged too: an unknown token, a bad query.
    let (status, _) = w
        .app
        .api("GET", "/api/v1/docking/instruments", Some("lsd_nope"), None)
        .await;
    assert_eq!(status, 401);
    let (status, _) = w
        .app
        .api(
            "GET",
            "/api/v1/docking/service-records?page=abc",
            Some(b),
            None,
        )
        .await;
    assert_eq!(status, 403, "read:instruments only");

    let log = calls(&w).await;
    let p = "/api/v1/docking/instruments".to_string();
    assert_eq!(
        log,
        vec![
            (Some(a_id), p.clone(), 200),
            (Some(a_id), p.clone(), 200),
            (Some(a_id), p.clone(), 200),
            (Some(a_id), p.clone(), 429),
            (st["id"].as_i64(), "/api/v1/docking/statistics".into(), 200),
            (Some(b_id), p.clone(), 200),
            (None, p.clone(), 401),
            (Some(b_id), "/api/v1/docking/service-records".into(), 403),
        ]
    );
    // The system admin reads them at 数据对接.
    let browser = w.app.browser_login("sysadmin").await;
    let (_, html) = w.app.get_page(&browser, "/console/docking").await;
    assert!(html.contains("429"));
    assert!(html.contains("每分钟 3 次"));
}

#[tokio::test]
async fn a_write_reports_client_builds_and_submits_its_units_batch_in_the_configured_province() {
    let w = world_with(None, &[("LABSHARE_REPORT_PROVINCE", "湖北省")]).await;
    w.app.create_user("sysadmin", "system_admin").await;
    let sys = w.app.token("sysadmin").await;
    let sem = instrument(&w, "场发射扫描电子显微镜", "990000", 186_000_000, false).await;

    // write:reports needs the unit it reports for.
    let (status, b) = client(
        &w,
        &sys,
        json!({"name": "学校仪器管理系统", "scopes": ["write:reports"]}),
    )
    .await;
    assert_eq!(status, 422, "{b}");
    assert_eq!(
        b["error"]["fields"]["unit_id"],
        "“提交上报数据”须指定一个已认证的管理单位"
    );
    let (status, b) = client(
        &w,
        &sys,
        json!({"name": "学校仪器管理系统", "scopes": ["write:reports"], "unit_id": w.unit}),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    let writer = b["token"].as_str().unwrap().to_string();
    let (_, b) = client(
        &w,
        &sys,
        json!({"name": "只读", "scopes": ["read:instruments"]}),
    )
    .await;
    let reader = b["token"].as_str().unwrap().to_string();

    let body = json!({"kind": "instruments", "period": "2026Q4"});
    let (status, e) = w
        .app
        .api(
            "POST",
            "/api/v1/docking/reports",
            Some(&reader),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 403, "{e}");
    assert_eq!(e["error"]["code"], "insufficient_scope");

    let (status, batch) = w
        .app
        .api("POST", "/api/v1/docking/reports", Some(&writer), Some(body))
        .await;
    assert_eq!(status, 201, "{batch}");
    assert_eq!(batch["unit_id"], w.unit);
    assert_eq!(batch["status"], "draft");
    let id = batch["id"].as_i64().unwrap();
    assert_eq!(batch["items"][0]["record_id"], sem);
    assert_eq!(batch["items"][0]["national"]["province"], "湖北省");
    assert!(
        batch["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["field"] == "ename")
    );
    let submit = format!("/api/v1/docking/reports/{id}/submit");
    let (status, e) = w.app.api("POST", &submit, Some(&writer), None).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["error"]["code"], "report_invalid");

    // The unit completes the record; the client refreshes by submitting again.
    national(
        &w,
        sem,
        json!({"name_en": "Field emission SEM", "technical": "分辨率 1.0 nm", "functions": "形貌观察"}),
    )
    .await;
    let (status, s) = w.app.api("POST", &submit, Some(&writer), None).await;
    assert_eq!(status, 202, "{s}");
    assert_eq!(s["state"], "review");
    let (status, b) = w
        .app
        .api(
            "GET",
            &format!("/api/v1/docking/reports/{id}"),
            Some(&writer),
            None,
        )
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["status"], "pending");
    // The platform reviews it like any batch; the unit's manager is its applicant.
    let (_, tasks) = w
        .app
        .api("GET", "/api/v1/tasks", Some(&w.admin), None)
        .await;
    assert_eq!(tasks["items"].as_array().unwrap().len(), 1, "{tasks}");

    // Another unit's batch is not the client's to see.
    let other_owner = w.app.create_user("other", "unit_manager").await;
    let _ = other_owner;
    let other_token = w.app.token("other").await;
    let other = certified_unit(
        &w.app,
        &other_token,
        "许昌另一大学",
        203,
        "managing",
        "other",
    )
    .await;
    let (status, ob) = w
        .app
        .api(
            "POST",
            "/api/v1/reports",
            Some(&other_token),
            Some(json!({"unit_id": other, "kind": "service_records", "period": "2026Q4"})),
        )
        .await;
    assert_eq!(status, 201, "{ob}");
    let (status, _) = w
        .app
        .api(
            "GET",
            &format!("/api/v1/docking/reports/{}", ob["id"]),
            Some(&writer),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(credit_code(203).len(), 18);
}

#[tokio::test]
async fn the_national_fields_are_on_patch_the_console_form_and_the_import_template() {
    let w = world(None).await;
    let (status, b) = w
        .app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(&w.owner),
            Some(
                json!({"unit_id": w.unit, "name": "激光共聚焦显微镜", "category_code": "990000",
                "value": "920000.00", "country": "德国"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_i64().unwrap();
    let path = format!("/api/v1/instruments/{id}");

    // Formats and the national limits are checked, in Chinese, per field.
    let (status, e) = w
        .app
        .api(
            "PATCH",
            &path,
            Some(&w.owner),
            Some(json!({"technical": "指".repeat(501), "postal_code": "4610", "contact_email": "lab@",
                "subject_codes": ["110", "120", "130", "140", "150"], "begin_date": "2024/06/01",
                "contact_phone": "电话 123"})),
        )
        .await;
    assert_eq!(status, 422, "{e}");
    let f = &e["error"]["fields"];
    assert_eq!(
        f["technical"],
        "主要技术指标不超过 500 字（国家上报要求，现 501 字）"
    );
    assert_eq!(f["postal_code"], "邮政编码应为 6 位数字");
    assert_eq!(f["contact_email"], "电子邮箱格式不正确");
    assert_eq!(f["subject_codes"], "主要学科领域最多 4 个（现 5 个）");
    assert_eq!(f["begin_date"], "启用日期格式应为 YYYY-MM-DD");
    assert_eq!(
        f["contact_phone"],
        "联系电话只能包含数字、“-”“+”和括号（30 位以内）"
    );

    let (status, b) = w
        .app
        .api(
            "PATCH",
            &path,
            Some(&w.owner),
            Some(json!({"name_en": "Confocal microscope", "technical": "分辨率 120 nm",
                "functions": "活细胞成像", "subject_codes": ["180", "310"], "begin_date": "2024-06-01",
                "annual_run_hours": 1200, "annual_service_hours": "800", "postal_code": "461000",
                "contact_name": "王老师", "contact_phone": "0374-1234567",
                "contact_email": "lab@xcu.edu.cn", "county": "魏都区", "address": "八一路 88 号"})),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["annual_running_hours"], 1200);
    let (_, n) = w
        .app
        .api("GET", &format!("{path}/national"), Some(&w.owner), None)
        .await;
    assert_eq!(n["name_en"], "Confocal microscope");
    assert_eq!(n["subject_codes"], json!(["180", "310"]));
    assert_eq!(n["postal_code"], "461000");
    assert_eq!(n["county"], "魏都区");

    // The console form shows them with Chinese labels, and refuses a bad one with its message.
    let browser = w.app.browser_login("owner").await;
    let form = format!("/console/instruments/{id}");
    let (status, html) = w.app.get_page(&browser, &form).await;
    assert_eq!(status, 200);
    for label in [
        "国家上报信息",
        "英文名称",
        "主要学科领域代码",
        "邮政编码",
        "联系邮箱",
    ] {
        assert!(html.contains(label), "{label}");
    }
    assert!(html.contains("Confocal microscope"));
    assert!(html.contains("180,310"));
    let res = w
        .app
        .post_form(
            &browser,
            &form,
            &form,
            &[
                ("name", "激光共聚焦显微镜"),
                ("category_code", "990000"),
                ("value", "920000.00"),
                ("name_en", "Confocal microscope"),
                ("contact_email", "not-an-email"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("电子邮箱格式不正确"));
    let res = w
        .app
        .post_form(
            &browser,
            &form,
            &form,
            &[
                ("name", "激光共聚焦显微镜"),
                ("category_code", "990000"),
                ("value", "920000.00"),
                ("name_en", "Confocal laser scanning microscope"),
                ("subject_codes", "180，310、520"),
                ("postal_code", "461000"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, n) = w
        .app
        .api("GET", &format!("{path}/national"), Some(&w.owner), None)
        .await;
    assert_eq!(n["name_en"], "Confocal laser scanning microscope");
    assert_eq!(n["subject_codes"], json!(["180", "310", "520"]));

    // The xlsx template has the national columns, and an import fills them.
    let rows = xlsx_rows(&w.app, &browser, "/console/instruments/template.xlsx").await;
    for h in [
        "英文名称",
        "主要技术指标（国家上报）",
        "学科领域代码",
        "联系邮箱",
        "年运行机时",
    ] {
        assert!(rows[0].iter().any(|c| c == h), "{h}: {:?}", rows[0]);
    }
    let headers: Vec<&str> = labshare::spreadsheets::COLUMNS
        .iter()
        .map(|(h, _)| *h)
        .collect();
    let mut row = vec![String::new(); headers.len()];
    let set = |row: &mut Vec<String>, field: &str, v: &str| {
        let k = labshare::spreadsheets::COLUMNS
            .iter()
            .position(|(_, f)| *f == field)
            .unwrap();
        row[k] = v.to_string();
    };
    set(&mut row, "name", "原子力显微镜");
    set(&mut row, "category_code", "990000");
    set(&mut row, "value", "1500000");
    set(&mut row, "name_en", "Atomic force microscope");
    set(&mut row, "technical", "分辨率 0.1 nm");
    set(&mut row, "subject_codes", "430,150");
    set(&mut row, "postal_code", "461000");
    let mut bad = row.clone();
    set(&mut bad, "postal_code", "46");
    let sheet = |rows: &[Vec<String>]| {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        for (c, h) in headers.iter().enumerate() {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                ws.write_string(r as u32 + 1, c as u16, v).unwrap();
            }
        }
        wb.save_to_buffer().unwrap()
    };
    let upload = |bytes: Vec<u8>| {
        let browser = browser.clone();
        let app = &w.app;
        let unit = w.unit.to_string();
        async move {
            let (_, html) = app.get_page(&browser, "/console/instruments/import").await;
            let token = crate::common::csrf_from(&html).unwrap();
            let b = "----xlsxBoundary";
            let mut body = format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
                 --{b}\r\nContent-Disposition: form-data; name=\"unit_id\"\r\n\r\n{unit}\r\n\
                 --{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.xlsx\"\r\n\r\n"
            )
            .into_bytes();
            body.extend_from_slice(&bytes);
            body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
            browser
                .post(app.url("/console/instruments/import"))
                .header("content-type", format!("multipart/form-data; boundary={b}"))
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let res = upload(sheet(std::slice::from_ref(&bad))).await;
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("第 2 行“邮政编码”：邮政编码应为 6 位数字")
    );
    let res = upload(sheet(&[row])).await;
    assert_eq!(res.status(), 303);
    let imported: String =
        sqlx::query_scalar("SELECT national_json FROM instruments WHERE name = '原子力显微镜'")
            .fetch_one(&w.app.db.pool)
            .await
            .unwrap();
    let imported: Value = serde_json::from_str(&imported).unwrap();
    assert_eq!(imported["name_en"], "Atomic force microscope");
    assert_eq!(imported["subject_codes"], json!(["430", "150"]));
}

#[tokio::test]
async fn the_platform_sees_each_units_reporting_completeness_and_what_is_overdue() {
    let w = world(None).await;
    // Joined 2026-11-20 (due 2027-01-05, not yet overdue) and one joined in September (overdue).
    instrument(&w, "场发射扫描电子显微镜", "990000", 186_000_000, false).await;
    let old = instrument(&w, "透射电子显微镜", "990000", 300_000_000, false).await;
    sqlx::query("UPDATE instruments SET joined_on = '2026-09-01' WHERE id = $1")
        .bind(old)
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    instrument(&w, "紫外分光光度计", "990000", 100_000, false).await;
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let all = labshare::reporting::completeness_by_unit(&w.app.db, today)
        .await
        .unwrap();
    let u = all.iter().find(|u| u.unit_id == w.unit).unwrap();
    assert_eq!(u.reportable, 2, "the instrument under 50 万元 is not owed");
    assert_eq!(u.reported, 0);
    assert_eq!(u.instruments_owed, 2);
    assert_eq!(u.instruments_overdue, 1);
    assert_eq!(u.period, "2026Q4");
    assert!(!u.is_complete());
    assert_eq!(all[0].unit_id, w.unit, "most overdue first");

    // The platform admin sees the table at 信息上报; a unit manager does not.
    let admin = w.app.browser_login("padmin").await;
    let (status, html) = w.app.get_page(&admin, "/console/reports").await;
    assert_eq!(status, 200);
    assert!(html.contains("各单位上报完成情况"));
    assert!(html.contains("许昌测试大学"));
    assert!(html.contains("有逾期"));
    let owner = w.app.browser_login("owner").await;
    let (_, html) = w.app.get_page(&owner, "/console/reports").await;
    assert!(!html.contains("各单位上报完成情况"));
}
