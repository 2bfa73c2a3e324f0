//! Issue 20: the working-day calendar as data (工作日历) and the platform settings (平台配置):
//! publishing takes effect at once — on deadlines, booking grids and pages — on every node
//! sharing the database, without a restart; bad input is a Chinese field error.

use chrono::TimeZone;
use serde_json::{Value, json};

use crate::common::{TestApp, certified_unit, spawn_app_with, unit_body};

/// The State Council's 2027 notice as a test publishes it: the Spring Festival off from
/// Saturday 6 to Sunday 14 February, Saturday 20 February worked.
fn notice_2027() -> Value {
    json!({
        "holidays": ["2027-01-01", "2027-02-06", "2027-02-07", "2027-02-08", "2027-02-09",
                     "2027-02-10", "2027-02-11", "2027-02-12", "2027-02-13", "2027-02-14",
                     "2027-10-01", "2027-10-04"],
        "workdays": ["2027-02-20"],
    })
}

/// The date (Asia/Shanghai) of the open task's deadline of a workflow instance.
async fn due_date(app: &TestApp, instance: i64) -> String {
    let due: i64 = sqlx::query_scalar(
        "SELECT due_at FROM workflow_tasks WHERE instance_id = $1 AND status = 'open'",
    )
    .bind(instance)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    chrono_tz::Asia::Shanghai
        .timestamp_opt(due, 0)
        .unwrap()
        .date_naive()
        .to_string()
}

/// A new unit submitted for certification (5 working days for the platform to review).
async fn certification(app: &TestApp, token: &str, n: u32) -> i64 {
    let (s, unit) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(token),
            Some(unit_body(&format!("许昌测试企业{n}"), n, "user")),
        )
        .await;
    assert_eq!(s, 201, "{unit}");
    let (s, started) = app
        .api(
            "POST",
            &format!("/api/v1/units/{}/certification", unit["id"]),
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, 202, "{started}");
    started["instance_id"].as_i64().unwrap()
}

/// A second node on the same database (its own data directory).
async fn second_node(app: &TestApp) -> TestApp {
    spawn_app_with(&[
        ("LABSHARE_DATABASE_URL", &app.state.config.database_url),
        ("LABSHARE_NOW", "2027-02-03T10:00:00+08:00"),
    ])
    .await
}

#[tokio::test]
async fn publishing_2027_moves_a_five_working_day_deadline_across_the_spring_festival() {
    // Wednesday 3 February 2027, 10:00 in Xuchang.
    let app = spawn_app_with(&[("LABSHARE_NOW", "2027-02-03T10:00:00+08:00")]).await;
    app.create_user("admin", "system_admin").await;
    app.create_user("bureau", "platform_admin").await;
    app.create_user("ent", "user").await;
    let (admin, ent) = (app.token("admin").await, app.token("ent").await);

    // The built-in 2027 knows only the statutory days (5–8 February): Thu 4, Tue 9, Wed 10,
    // Thu 11, Fri 12.
    let (s, y) = app.api("GET", "/api/v1/calendar/2027", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(y["source"], "builtin");
    let before = certification(&app, &ent, 1).await;
    assert_eq!(due_date(&app, before).await, "2027-02-12");

    let (s, y) = app
        .api(
            "PUT",
            "/api/v1/calendar/2027",
            Some(&admin),
            Some(notice_2027()),
        )
        .await;
    assert_eq!(s, 200, "{y}");
    assert_eq!(y["source"], "published");
    assert_eq!(y["workdays"], json!(["2027-02-20"]));
    assert_eq!(y["holidays"].as_array().unwrap().len(), 12);

    // Same process, no restart: Thu 4, Fri 5, then the festival, Mon 15, Tue 16, Wed 17.
    let after = certification(&app, &ent, 2).await;
    assert_eq!(due_date(&app, after).await, "2027-02-17");
    assert_eq!(
        due_date(&app, before).await,
        "2027-02-12",
        "a deadline already set keeps its date"
    );
    let (s, y) = app.api("GET", "/api/v1/calendar/2027", None, None).await;
    assert_eq!((s, y["source"].as_str()), (200, Some("published")));

    // A second node on the same database computes with the published year too.
    let node_b = second_node(&app).await;
    let third = certification(&node_b, &ent, 3).await;
    assert_eq!(due_date(&node_b, third).await, "2027-02-17");
    let (_, y) = node_b.api("GET", "/api/v1/calendar/2027", None, None).await;
    assert_eq!(y["source"], "published");
    // The audit trail names the year and who published it.
    let (kind, subject): (String, String) =
        sqlx::query_as("SELECT kind, subject FROM platform_changes ORDER BY id DESC LIMIT 1")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((kind.as_str(), subject.as_str()), ("calendar", "2027"));
}

#[tokio::test]
async fn a_publication_through_one_node_reaches_the_other_nodes_booking_grid_at_once() {
    let app = spawn_app_with(&[("LABSHARE_NOW", "2027-02-03T10:00:00+08:00")]).await;
    app.create_user("admin", "system_admin").await;
    app.create_user("lab", "unit_manager").await;
    let lab = app.token("lab").await;
    let unit = certified_unit(&app, &lab, "许昌学院", 11, "managing", "other").await;
    let instrument: i64 = sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, model, category_code, value_fen, review_status, location, created_at, updated_at) \
         VALUES ($1, '扫描电子显微镜', 'Sigma 300', '010100', 380000000, 'approved', '理工楼 101', 0, 0) RETURNING id",
    )
    .bind(unit)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let node_b = second_node(&app).await;
    let page = format!("/instruments/{instrument}/book?week=2027-02-15");
    let festival = format!("/instruments/{instrument}/book?week=2027-02-08");
    let (s, html) = node_b.get_page(&node_b.client, &page).await;
    assert_eq!(s, 200);
    assert!(!html.contains("02-20（周六）"), "no Saturday column before");
    let (_, html) = node_b.get_page(&node_b.client, &festival).await;
    assert!(
        html.contains("slot-free"),
        "9–12 February are working days in the file"
    );

    let admin = app.token("admin").await;
    let (s, _) = app
        .api(
            "PUT",
            "/api/v1/calendar/2027",
            Some(&admin),
            Some(notice_2027()),
        )
        .await;
    assert_eq!(s, 200);
    // Node B's very next request shows the adjusted working Saturday and the festival closed.
    let (_, html) = node_b.get_page(&node_b.client, &page).await;
    assert!(
        html.contains("02-20（周六）"),
        "the adjusted working Saturday"
    );
    let (_, html) = node_b.get_page(&node_b.client, &festival).await;
    assert!(!html.contains("slot-free"), "the whole week is off");
    assert!(html.contains("slot-closed"));
}

#[tokio::test]
async fn a_calendar_with_a_weekday_as_adjusted_working_day_or_a_bad_date_is_refused() {
    let app = spawn_app_with(&[("LABSHARE_NOW", "2026-12-01T08:00:00+08:00")]).await;
    app.create_user("admin", "system_admin").await;
    app.create_user("bureau", "platform_admin").await;
    let (admin, bureau) = (app.token("admin").await, app.token("bureau").await);
    let put = |body: Value| {
        let admin = admin.clone();
        let app = &app;
        async move {
            app.api("PUT", "/api/v1/calendar/2031", Some(&admin), Some(body))
                .await
        }
    };
    let (s, e) = put(json!({"holidays": [], "workdays": ["2031-02-03"]})).await;
    assert_eq!(s, 422, "{e}");
    assert!(
        e["error"]["fields"]["workdays"]
            .as_str()
            .unwrap()
            .contains("周六或周日"),
        "{e}"
    );
    let (s, e) = put(json!({"holidays": ["2031-02-30"], "workdays": []})).await;
    assert_eq!(s, 422);
    assert!(
        e["error"]["fields"]["holidays"]
            .as_str()
            .unwrap()
            .contains("不是有效日期")
    );
    let (s, e) = put(json!({"holidays": ["2030-10-01"], "workdays": []})).await;
    assert_eq!(s, 422);
    assert!(
        e["error"]["fields"]["holidays"]
            .as_str()
            .unwrap()
            .contains("不在 2031 年内")
    );
    let (s, e) = put(json!({"holidays": ["2031-10-01"], "workdays": ["2031-10-01"]})).await;
    assert_eq!(s, 422, "{e}");
    let (s, _) = app
        .api(
            "PUT",
            "/api/v1/calendar/1999",
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = app
        .api(
            "PUT",
            "/api/v1/calendar/2031",
            Some(&bureau),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 403, "only the system admin publishes");
    let (s, _) = app
        .api("PUT", "/api/v1/calendar/2031", None, Some(json!({})))
        .await;
    assert_eq!(s, 401);
    // Nothing was published.
    let (_, y) = app.api("GET", "/api/v1/calendar/2031", None, None).await;
    assert_eq!(y["source"], "builtin");
    assert_eq!(y["holidays"], json!([]));
}

#[tokio::test]
async fn the_console_imports_a_notice_previews_the_year_and_publishes_it() {
    let app = spawn_app_with(&[("LABSHARE_NOW", "2026-12-01T08:00:00+08:00")]).await;
    app.create_user("admin", "system_admin").await;
    let client = app.browser_login("admin").await;
    let (s, html) = app.get_page(&client, "/console/calendar?year=2027").await;
    assert_eq!(s, 200);
    assert!(html.contains("内置日历（未发布）"));
    let notice = "二、春节：2月6日（周六）至14日（周日）放假调休，共9天。2月20日（周六）上班。";
    let res = app
        .post_form(
            &client,
            "/console/calendar?year=2027",
            "/console/calendar",
            &[
                ("year", "2027"),
                ("notice", notice),
                ("holidays", ""),
                ("workdays", ""),
                ("action", "import"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("2027-02-14") && html.contains("2027-02-20"),
        "imported"
    );
    assert!(
        html.contains("day-adjusted"),
        "the preview marks the working Saturday"
    );
    let holidays: Vec<String> = (6..=14).map(|d| format!("2027-02-{d:02}")).collect();
    let res = app
        .post_form(
            &client,
            "/console/calendar?year=2027",
            "/console/calendar",
            &[
                ("year", "2027"),
                ("holidays", &holidays.join("\n")),
                ("workdays", "2027-02-20"),
                ("action", "publish"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, y) = app.api("GET", "/api/v1/calendar/2027", None, None).await;
    assert_eq!(y["source"], "published");
    assert_eq!(y["holidays"].as_array().unwrap().len(), 9);
    // A wrong entry is shown back with the message, nothing published over it.
    let res = app
        .post_form(
            &client,
            "/console/calendar?year=2027",
            "/console/calendar",
            &[
                ("year", "2027"),
                ("holidays", "2027-02-31"),
                ("workdays", ""),
                ("action", "publish"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("不是有效日期"));
    let (_, y) = app.api("GET", "/api/v1/calendar/2027", None, None).await;
    assert_eq!(y["holidays"].as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn december_reminds_the_system_admins_once_a_week_until_next_year_is_published() {
    let app = spawn_app_with(&[("LABSHARE_NOW", "2026-12-01T08:00:00+08:00")]).await;
    let admin_id = app.create_user("admin", "system_admin").await;
    app.create_user("bureau", "platform_admin").await;
    let run = |date: &str| {
        let at = labshare::jobs::as_of_date(
            chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
        );
        let app = &app;
        async move {
            labshare::jobs::run(&app.state, "calendar-reminder", at)
                .await
                .unwrap()
        }
    };
    let first = run("2026-12-01").await;
    assert_eq!(
        first,
        labshare::jobs::Outcome::Done("2027 年工作日历未发布，已提醒 1 位系统管理员".into())
    );
    assert_eq!(
        run("2026-12-02").await,
        labshare::jobs::Outcome::AlreadyDone
    );
    let notes: Vec<(i64, String)> =
        sqlx::query_as("SELECT user_id, link FROM notifications WHERE title LIKE '%工作日历%'")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        notes,
        vec![(admin_id, "/console/calendar?year=2027".to_string())]
    );
    let admin = app.token("admin").await;
    let (s, _) = app
        .api(
            "PUT",
            "/api/v1/calendar/2027",
            Some(&admin),
            Some(notice_2027()),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        run("2026-12-08").await,
        labshare::jobs::Outcome::Done("2027 年工作日历已发布".into())
    );
    assert_eq!(
        run("2026-11-20").await,
        labshare::jobs::Outcome::Done("不在 12 月，无需提醒".into())
    );
}

#[tokio::test]
async fn settings_show_in_header_and_footer_at_once_on_every_node_and_are_audited() {
    let app = spawn_app_with(&[("LABSHARE_NOW", "2026-12-01T08:00:00+08:00")]).await;
    app.create_user("admin", "system_admin").await;
    app.create_user("bureau", "platform_admin").await;
    let (admin, bureau) = (app.token("admin").await, app.token("bureau").await);
    let node_b = second_node(&app).await;

    let (s, public) = app.api("GET", "/api/v1/settings", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(public["site_name"], "许昌市科研设施与仪器共享服务平台");
    assert!(public.get("mail_sender_name").is_none(), "not public");

    let body = json!({
        "site_name": "许昌市科技资源共享平台", "site_name_en": "Xuchang Sci-Tech Sharing",
        "contact_phone": "0374-2968001", "contact_email": "kjj@xuchang.gov.cn",
        "address": "许昌市魏都区建安大道 1 号", "icp_number": "豫ICP备12345678号-1",
        "police_record_number": "豫公网安备41100202000123号", "footer_note": "主办：许昌市科学技术局",
        "notice_banner": "2027 年度创新券申领已开始",
    });
    let (s, saved) = app
        .api("PUT", "/api/v1/settings", Some(&admin), Some(body.clone()))
        .await;
    assert_eq!(s, 200, "{saved}");
    for (k, v) in body.as_object().unwrap() {
        assert_eq!(&saved[k], v, "{k}");
    }
    // Node B's next page has them: header, footer, home banner.
    let (_, html) = node_b.get_page(&node_b.client, "/").await;
    assert!(html.contains("许昌市科技资源共享平台"));
    assert!(html.contains("豫ICP备12345678号-1"));
    assert!(html.contains("豫公网安备41100202000123号"));
    assert!(html.contains("2027 年度创新券申领已开始"));
    assert!(html.contains("kjj@xuchang.gov.cn"));
    let (_, public) = node_b.api("GET", "/api/v1/settings", None, None).await;
    assert_eq!(public["icp_number"], "豫ICP备12345678号-1");

    // Bad input: Chinese field messages, nothing saved.
    let (s, e) = app
        .api(
            "PUT",
            "/api/v1/settings",
            Some(&admin),
            Some(json!({"icp_number": "ICP 12345", "contact_email": "not-mail", "booking_open_hour": 19})),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    let fields = &e["error"]["fields"];
    assert!(fields["icp_number"].as_str().unwrap().contains("ICP备"));
    assert!(fields["contact_email"].as_str().unwrap().contains("邮箱"));
    assert!(
        fields["booking_close_hour"]
            .as_str()
            .unwrap()
            .contains("开放时间")
    );
    let (_, public) = app.api("GET", "/api/v1/settings", None, None).await;
    assert_eq!(public["icp_number"], "豫ICP备12345678号-1");
    let (s, _) = app
        .api(
            "PUT",
            "/api/v1/settings",
            Some(&bureau),
            Some(json!({"site_name": "别的名字"})),
        )
        .await;
    assert_eq!(s, 403);
    let changes: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM platform_changes WHERE kind = 'settings'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(changes, 1, "one accepted change, audited");
}

#[tokio::test]
async fn the_settings_page_saves_and_shows_errors_beside_the_fields() {
    let app = spawn_app_with(&[("LABSHARE_NOW", "2026-12-01T08:00:00+08:00")]).await;
    app.create_user("admin", "system_admin").await;
    let client = app.browser_login("admin").await;
    let (s, html) = app.get_page(&client, "/console/settings").await;
    assert_eq!(s, 200);
    assert!(html.contains("平台配置") && html.contains("ICP 备案号"));
    let res = app
        .post_form(
            &client,
            "/console/settings",
            "/console/settings",
            &[
                ("site_name", "许昌科创平台"),
                ("booking_slot_minutes", "25"),
                ("upload_pdf_mb", "abc"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("应为非负整数") || html.contains("PDF 上传上限"),
        "{html}"
    );
    let res = app
        .post_form(
            &client,
            "/console/settings",
            "/console/settings",
            &[
                ("site_name", "许昌科创平台"),
                ("booking_slot_minutes", "15"),
                ("mail_sender_name", "Xuchang Kejiju"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app.get_page(&client, "/console/settings").await;
    assert!(
        html.contains("<title>平台配置 - 许昌科创平台</title>"),
        "{html}"
    );
}

#[tokio::test]
async fn booking_hours_follow_the_settings() {
    let app = spawn_app_with(&[("LABSHARE_NOW", "2026-12-01T08:00:00+08:00")]).await;
    app.create_user("admin", "system_admin").await;
    app.create_user("lab", "unit_manager").await;
    app.create_user("ent", "user").await;
    let (admin, lab, ent) = (
        app.token("admin").await,
        app.token("lab").await,
        app.token("ent").await,
    );
    let unit = certified_unit(&app, &lab, "许昌学院", 21, "managing", "other").await;
    let buyer = certified_unit(&app, &ent, "许昌森源", 22, "user", "high_tech").await;
    let instrument: i64 = sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, model, category_code, value_fen, review_status, location, created_at, updated_at) \
         VALUES ($1, '气相色谱仪', '7890B', '010100', 38000000, 'approved', '理工楼 101', 0, 0) RETURNING id",
    )
    .bind(unit)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let (s, _) = app
        .api(
            "PUT",
            "/api/v1/settings",
            Some(&admin),
            Some(json!({"booking_open_hour": 9, "booking_close_hour": 17})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, e) = app
        .api(
            "POST",
            "/api/v1/bookings",
            Some(&ent),
            Some(json!({"instrument_id": instrument, "unit_id": buyer, "start": "2026-12-03T08:00:00+08:00",
                        "end": "2026-12-03T09:00:00+08:00", "purpose": "成分分析"})),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    assert!(
        e["error"]["fields"]["start"]
            .as_str()
            .unwrap()
            .contains("09:00–17:00")
    );
    let (s, b) = app
        .api(
            "POST",
            "/api/v1/bookings",
            Some(&ent),
            Some(json!({"instrument_id": instrument, "unit_id": buyer, "start": "2026-12-03T09:00:00+08:00",
                        "end": "2026-12-03T10:00:00+08:00", "purpose": "成分分析"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (_, html) = app
        .get_page(
            &app.client,
            &format!("/instruments/{instrument}/book?week=2026-11-30"),
        )
        .await;
    assert!(
        html.contains("09:00") && !html.contains(">08:00<"),
        "the grid starts at 09:00"
    );
    // The availability search follows the same published hours: free from the end of the
    // booking to 17:00, nothing before 09:00 or after 17:00.
    let (s, b) = app
        .api(
            "GET",
            "/api/v1/availability?category=010100&from=2026-12-03T07:00:00%2B08:00&to=2026-12-03T19:00:00%2B08:00&min_minutes=30",
            None,
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let item = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instrument_id"] == instrument)
        .cloned()
        .unwrap_or_else(|| panic!("{b}"));
    let free = crate::common::free_hours(&item);
    assert_eq!(
        free,
        vec![("10:00".to_string(), "17:00".to_string())],
        "{b}"
    );
}
