//! Platforms (科研平台), services (检测项目) and achievements (科技成果): create, validate,
//! submit and the unit scope, as for instruments.

use serde_json::json;

use crate::common::{TestApp, spawn_app, unit_body};

async fn manager(app: &TestApp, username: &str, n: u32) -> (String, i64) {
    app.create_user(username, "unit_manager").await;
    let token = app.token(username).await;
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&token),
            Some(unit_body(&format!("{username}中心"), n, "managing")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (token, body["id"].as_i64().unwrap())
}

#[tokio::test]
async fn each_resource_kind_is_created_validated_and_submitted_through_the_api() {
    let app = spawn_app().await;
    // Reviews run on the engine: someone must be there to review.
    app.create_user("reviewer_auto", "platform_admin").await;
    let (token, unit) = manager(&app, "um_r", 31).await;
    let (other, _) = manager(&app, "um_r2", 32).await;
    let cases = [
        (
            "platforms",
            json!({"unit_id": unit, "name": "许昌市新材料重点实验室", "category": "重点实验室",
                   "platform_type": "市级", "description": "面向新材料的公共平台"}),
            (
                "platform_type",
                "国际级",
                "平台级别应为：国家级、省级、市级、其他",
            ),
        ),
        (
            "services",
            json!({"unit_id": unit, "name": "金属材料拉伸试验", "category": "材料检测",
                   "price": "350.5", "price_unit": "样", "sample_requirements": "标准试样 3 件",
                   "turnaround_days": 5, "service_status": "服务中"}),
            (
                "turnaround_days",
                "0",
                "检测周期（工作日）应为 1–365 的整数",
            ),
        ),
        (
            "achievements",
            json!({"unit_id": unit, "title": "高强度铝合金制备工艺", "field": "新材料",
                   "maturity": "中试", "transfer_mode": "许可", "holder": "某研究院",
                   "description": "一种铝合金热处理工艺"}),
            (
                "transfer_mode",
                "赠送",
                "转化方式应为：转让、许可、作价入股、合作开发",
            ),
        ),
    ];
    for (slug, body, (bad_field, bad_value, message)) in cases {
        let mut bad = body.clone();
        bad[bad_field] = json!(bad_value);
        let (status, res) = app
            .api("POST", &format!("/api/v1/{slug}"), Some(&token), Some(bad))
            .await;
        assert_eq!(status, 422, "{slug}: {res}");
        assert_eq!(res["error"]["fields"][bad_field], message, "{slug}");

        let (status, res) = app
            .api(
                "POST",
                &format!("/api/v1/{slug}"),
                Some(&other),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 403, "{slug}: another unit's manager");

        let (status, res2) = app
            .api(
                "POST",
                &format!("/api/v1/{slug}"),
                Some(&token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 201, "{slug}: {res2} {res}");
        assert_eq!(res2["review_status"], "draft");
        let id = res2["id"].as_i64().unwrap();
        let path = format!("/api/v1/{slug}/{id}");

        let (status, _) = app.api("GET", &path, None, None).await;
        assert_eq!(status, 401, "{slug}: a draft is not public");
        let (status, _) = app.api("GET", &path, Some(&other), None).await;
        assert_eq!(status, 403);
        let (status, _) = app
            .api("POST", &format!("{path}/submit"), Some(&other), None)
            .await;
        assert_eq!(status, 403);

        let (status, got) = app
            .api(
                "PATCH",
                &path,
                Some(&token),
                Some(json!({"description": "补充说明"})),
            )
            .await;
        assert_eq!(status, 200, "{slug}: {got}");
        assert_eq!(got["description"], "补充说明");

        let (status, res) = app
            .api("POST", &format!("{path}/submit"), Some(&token), None)
            .await;
        assert_eq!(status, 202, "{slug}: {res}");
        assert_eq!(res["state"], "review");
        assert!(res["instance_id"].is_number());
        let (_, got) = app.api("GET", &path, Some(&token), None).await;
        assert_eq!(got["review_status"], "pending");
        let (status, res) = app
            .api(
                "PATCH",
                &path,
                Some(&token),
                Some(json!({"description": "再改"})),
            )
            .await;
        assert_eq!(status, 409, "{slug}: {res}");
        assert_eq!(res["error"]["code"], "not_editable");
    }
    // Money: yuan in, fen stored, two places out.
    let (id, fen): (i64, Option<i64>) =
        sqlx::query_as("SELECT id, price_fen FROM services WHERE name = '金属材料拉伸试验'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(fen, Some(35050));
    let (_, res) = app
        .api("GET", &format!("/api/v1/services/{id}"), Some(&token), None)
        .await;
    assert_eq!(res["price"], "350.50");
}

#[tokio::test]
async fn a_unit_manager_keeps_platforms_services_and_achievements_in_the_console() {
    let app = spawn_app().await;
    // Reviews run on the engine: someone must be there to review.
    app.create_user("reviewer_auto", "platform_admin").await;
    let (_, unit) = manager(&app, "um_rc", 33).await;
    let browser = app.browser_login("um_rc").await;
    let unit_s = unit.to_string();
    let (status, html) = app.get_page(&browser, "/console/services/new").await;
    assert_eq!(status, 200);
    assert!(html.contains("样品要求") && html.contains("um_rc中心"));

    let res = app
        .post_form(
            &browser,
            "/console/services/new",
            "/console/services",
            &[
                ("unit_id", &unit_s),
                ("name", "水质检测"),
                ("category", "环境检测"),
                ("price", "abc"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("请输入金额"));
    assert!(html.contains("请填写样品要求"));
    assert!(html.contains("value=\"水质检测\""), "input kept");

    let res = app
        .post_form(
            &browser,
            "/console/services/new",
            "/console/services",
            &[
                ("unit_id", &unit_s),
                ("name", "水质检测"),
                ("category", "环境检测"),
                ("price", ""),
                ("price_unit", "项"),
                ("sample_requirements", "水样 2 L"),
                ("turnaround_days", "3"),
                ("service_status", "服务中"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let res = app
        .post_form(&browser, &location, &format!("{location}/submit"), &[])
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app.get_page(&browser, "/console/services").await;
    assert!(html.contains("水质检测") && html.contains("审核中"));

    let rows = crate::common::xlsx_rows(&app, &browser, "/console/services/export.xlsx").await;
    assert_eq!(rows[1][0], "水质检测");

    // Another manager sees neither the record nor its page.
    manager(&app, "um_rc2", 34).await;
    let other = app.browser_login("um_rc2").await;
    let (status, _) = app.get_page(&other, &location).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_platform_lists_its_own_units_instruments_on_the_portal_once_approved() {
    let app = spawn_app().await;
    // Reviews run on the engine: someone must be there to review.
    app.create_user("reviewer_auto", "platform_admin").await;
    let (token, unit) = manager(&app, "um_p", 35).await;
    let (token2, unit2) = manager(&app, "um_p2", 36).await;
    let mk = |t: String, u: i64, name: &'static str| {
        let app = &app;
        async move {
            let (_, b) = app
                .api(
                    "POST",
                    "/api/v1/instruments",
                    Some(&t),
                    Some(json!({"unit_id": u, "name": name, "category_code": "010100", "value": 500000})),
                )
                .await;
            b["id"].as_i64().unwrap()
        }
    };
    let own = mk(token.clone(), unit, "本单位电镜").await;
    let foreign = mk(token2, unit2, "别家光谱仪").await;
    let (_, p) = app
        .api(
            "POST",
            "/api/v1/platforms",
            Some(&token),
            Some(
                json!({"unit_id": unit, "name": "材料表征平台", "category": "重点实验室",
                        "platform_type": "市级", "description": "材料表征"}),
            ),
        )
        .await;
    let pid = p["id"].as_i64().unwrap();
    let page = format!("/console/platforms/{pid}");
    let browser = app.browser_login("um_p").await;
    let (_, html) = app.get_page(&browser, &page).await;
    assert!(
        html.contains("本单位电镜") && !html.contains("别家光谱仪"),
        "only own instruments offered"
    );

    let res = app
        .post_form(
            &browser,
            &page,
            &format!("{page}/instruments"),
            &[("instrument_id", &foreign.to_string())],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app.get_page(&browser, &page).await;
    assert!(html.contains("只能关联本单位的仪器"));

    let res = app
        .post_form(
            &browser,
            &page,
            &format!("{page}/instruments"),
            &[("instrument_id", &own.to_string())],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, got) = app
        .api(
            "GET",
            &format!("/api/v1/platforms/{pid}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(got["instrument_ids"], json!([own]));

    // On the portal: the platform once approved, its instrument once approved.
    sqlx::query("UPDATE platforms SET review_status = 'approved' WHERE id = $1")
        .bind(pid)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let anon = crate::common::new_client();
    let (status, html) = app.get_page(&anon, &format!("/platforms/{pid}")).await;
    assert_eq!(status, 200);
    assert!(
        !html.contains("本单位电镜"),
        "a draft instrument is not public"
    );
    sqlx::query("UPDATE instruments SET review_status = 'approved' WHERE id = $1")
        .bind(own)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (_, html) = app.get_page(&anon, &format!("/platforms/{pid}")).await;
    assert!(html.contains("本单位电镜") && html.contains(&format!("/instruments/{own}")));

    let res = app
        .post_form(
            &browser,
            &page,
            &format!("{page}/instruments/{own}/remove"),
            &[],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app.get_page(&anon, &format!("/platforms/{pid}")).await;
    assert!(!html.contains("本单位电镜"));
}
