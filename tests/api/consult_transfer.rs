//! Issue 20: expert consultations (专家咨询) from question to public, searchable Q&A, the
//! platform's reassigning; achievement transfer (成果转化对接) from interest to agreement.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{TestApp, certified_unit, spawn_app_with};

const NOW: &str = "2026-12-01T08:00:00+08:00";

/// An expert of the pool with an account.
async fn expert(app: &TestApp, username: &str, name: &str, fields: &str) -> i64 {
    let id = app.create_user(username, "expert").await;
    sqlx::query(
        "INSERT INTO experts (user_id, name, unit_name, title, fields, status, certification_status, created_at, updated_at) \
         VALUES ($1, $2, '郑州大学', '正高级', $3, '在库', 'certified', 0, 0)",
    )
    .bind(id)
    .bind(name)
    .bind(fields)
    .execute(&app.db.pool)
    .await
    .unwrap();
    id
}

fn ids(list: &Value) -> Vec<i64> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

async fn ask(app: &TestApp, token: &str, unit: i64) -> i64 {
    let (s, c) = app
        .api(
            "POST",
            "/api/v1/consultations",
            Some(token),
            Some(json!({"field": "环境检测", "title": "土壤重金属检测该选哪台仪器",
                        "question": "我们要检测厂区土壤中的铅、镉、汞含量，送样前需要注意什么，选原子吸收还是 ICP-MS？",
                        "unit_id": unit})),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["status"], "open");
    c["id"].as_i64().unwrap()
}

async fn searched(app: &TestApp, q: &str, id: i64) -> bool {
    let started = Instant::now();
    loop {
        let (_, body) = app
            .api(
                "GET",
                &format!("/api/v1/search?q={q}&type=consultation"),
                None,
                None,
            )
            .await;
        let found = body["items"].as_array().is_some_and(|a| {
            a.iter()
                .any(|i| i["type"] == "consultation" && i["id"] == id)
        });
        if found || started.elapsed() > Duration::from_secs(8) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_question_reaches_the_fields_experts_and_a_closed_public_one_is_a_searchable_qa() {
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    let li = expert(&app, "expert_li", "李环", "环境检测、土壤分析").await;
    expert(&app, "expert_wang", "王生", "生物医药").await;
    app.create_user("ent", "user").await;
    app.create_user("other", "user").await;
    let ent = app.token("ent").await;
    let unit = certified_unit(&app, &ent, "许昌森源", 31, "user", "high_tech").await;
    let (li_t, wang_t, other) = (
        app.token("expert_li").await,
        app.token("expert_wang").await,
        app.token("other").await,
    );

    // Bad input first: Chinese field messages.
    let (s, e) = app
        .api(
            "POST",
            "/api/v1/consultations",
            Some(&ent),
            Some(json!({"field": "", "title": "短", "question": "太短", "unit_id": unit})),
        )
        .await;
    assert_eq!(s, 422);
    for f in ["field", "title", "question"] {
        assert!(e["error"]["fields"][f].is_string(), "{f}: {e}");
    }
    let (s, _) = app
        .api("POST", "/api/v1/consultations", Some(&other), Some(json!({"field": "环境检测", "title": "土壤重金属检测", "question": "以别人的单位名义提问是不行的。", "unit_id": unit})))
        .await;
    assert_eq!(s, 403, "only for one's own unit");

    let id = ask(&app, &ent, unit).await;
    let (_, mine) = app
        .api("GET", "/api/v1/consultations?mine=1", Some(&li_t), None)
        .await;
    assert_eq!(ids(&mine), vec![id], "the field's expert sees it");
    let (_, theirs) = app
        .api("GET", "/api/v1/consultations?mine=1", Some(&wang_t), None)
        .await;
    assert!(ids(&theirs).is_empty(), "another field's expert does not");
    let notified: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND kind = 'consultation'",
    )
    .bind(li)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(notified, 1);

    let answer = |token: String, text: &'static str| {
        let app = &app;
        async move {
            app.api(
                "POST",
                &format!("/api/v1/consultations/{id}/answers"),
                Some(&token),
                Some(json!({"answer": text})),
            )
            .await
        }
    };
    assert_eq!(answer(wang_t.clone(), "我来答一下").await.0, 404);
    assert_eq!(answer(ent.clone(), "自问自答一下").await.0, 403);
    let (s, a) = answer(
        li_t.clone(),
        "铅、镉建议用石墨炉原子吸收，汞用原子荧光；多元素同时测用 ICP-MS，样品需风干过筛。",
    )
    .await;
    assert_eq!(s, 201, "{a}");

    let (s, c) = app
        .api(
            "GET",
            &format!("/api/v1/consultations/{id}"),
            Some(&ent),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(c["status"], "answered");
    assert_eq!(c["answers"].as_array().unwrap().len(), 1);
    assert!(c["answers"][0]["body"].as_str().unwrap().contains("ICP-MS"));
    let (s, _) = app
        .api(
            "GET",
            &format!("/api/v1/consultations/{id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(s, 404, "a stranger does not see it");

    let (s, _) = app
        .api(
            "POST",
            &format!("/api/v1/consultations/{id}/followups"),
            Some(&ent),
            Some(json!({"body": "样品量需要多少克？"})),
        )
        .await;
    assert_eq!(s, 201);
    let (_, c) = app
        .api(
            "GET",
            &format!("/api/v1/consultations/{id}"),
            Some(&li_t),
            None,
        )
        .await;
    assert_eq!(c["status"], "open");
    assert_eq!(c["messages"].as_array().unwrap().len(), 2);

    let (s, e) = app
        .api(
            "POST",
            &format!("/api/v1/consultations/{id}/close"),
            Some(&ent),
            Some(json!({"rating": 6})),
        )
        .await;
    assert_eq!(s, 422);
    assert!(
        e["error"]["fields"]["rating"]
            .as_str()
            .unwrap()
            .contains("1–5")
    );
    let (s, _) = app
        .api(
            "POST",
            &format!("/api/v1/consultations/{id}/close"),
            Some(&li_t),
            Some(json!({"rating": 5})),
        )
        .await;
    assert_eq!(s, 403, "only the asker closes");
    assert_eq!(
        app.get_page(&app.client, &format!("/qa/{id}")).await.0,
        404,
        "not public yet"
    );
    let (s, c) = app
        .api(
            "POST",
            &format!("/api/v1/consultations/{id}/close"),
            Some(&ent),
            Some(json!({"rating": 5, "public": true})),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(
        (c["status"].as_str(), c["rating"].as_i64()),
        (Some("closed"), Some(5))
    );
    let (s, _) = app
        .api(
            "POST",
            &format!("/api/v1/consultations/{id}/close"),
            Some(&ent),
            Some(json!({"rating": 4})),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(answer(li_t.clone(), "补充一句").await.0, 409);

    let (s, html) = app.get_page(&app.client, &format!("/qa/{id}")).await;
    assert_eq!(s, 200);
    assert!(html.contains("土壤重金属检测该选哪台仪器") && html.contains("原子荧光"));
    let (_, html) = app.get_page(&app.client, "/qa").await;
    assert!(html.contains(&format!("/qa/{id}")));
    assert!(searched(&app, "重金属", id).await, "the Q&A is searchable");
    assert!(
        searched(&app, "原子荧光", id).await,
        "answers are searchable too"
    );
}

#[tokio::test]
async fn the_platform_sees_every_consultation_and_reassigns_it_to_one_expert() {
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    expert(&app, "expert_li", "李环", "环境检测").await;
    let wang = expert(&app, "expert_wang", "王生", "生物医药").await;
    let plain = app.create_user("plain", "user").await;
    app.create_user("bureau", "platform_admin").await;
    app.create_user("ent", "user").await;
    let ent = app.token("ent").await;
    let unit = certified_unit(&app, &ent, "许昌森源", 32, "user", "high_tech").await;
    let (bureau, li_t, wang_t) = (
        app.token("bureau").await,
        app.token("expert_li").await,
        app.token("expert_wang").await,
    );
    let id = ask(&app, &ent, unit).await;
    let (_, all) = app
        .api("GET", "/api/v1/consultations", Some(&bureau), None)
        .await;
    assert_eq!(ids(&all), vec![id]);
    assert_eq!(all["total"], 1);
    let (s, _) = app
        .api(
            "POST",
            &format!("/api/v1/consultations/{id}/reassign"),
            Some(&li_t),
            Some(json!({"expert_user_id": wang})),
        )
        .await;
    assert_eq!(s, 403, "experts do not reassign");
    let (s, e) = app
        .api(
            "POST",
            &format!("/api/v1/consultations/{id}/reassign"),
            Some(&bureau),
            Some(json!({"expert_user_id": plain})),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    let (s, c) = app
        .api(
            "POST",
            &format!("/api/v1/consultations/{id}/reassign"),
            Some(&bureau),
            Some(json!({"expert_user_id": wang})),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["assigned_user_id"], wang);
    let (_, mine) = app
        .api("GET", "/api/v1/consultations?mine=1", Some(&wang_t), None)
        .await;
    assert_eq!(ids(&mine), vec![id]);
    let (_, mine) = app
        .api("GET", "/api/v1/consultations?mine=1", Some(&li_t), None)
        .await;
    assert!(
        ids(&mine).is_empty(),
        "the field's other experts no longer see it"
    );
    let (s, _) = app
        .api(
            "POST",
            &format!("/api/v1/consultations/{id}/answers"),
            Some(&wang_t),
            Some(json!({"answer": "可以先做 XRF 快速筛查。"})),
        )
        .await;
    assert_eq!(s, 201);
    // The console: the platform's list and the asker's page.
    let client = app.browser_login("bureau").await;
    let (s, html) = app.get_page(&client, "/console/consultations?all=1").await;
    assert_eq!(s, 200);
    assert!(html.contains("土壤重金属检测该选哪台仪器") && html.contains("测试expert_wang"));
}

async fn achievement(app: &TestApp, unit: i64, status: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO achievements (unit_id, title, field, maturity, transfer_mode, holder, description, review_status, created_at, updated_at) \
         VALUES ($1, '低压开关柜在线监测技术', '智能电网', '小试', '技术许可', '许昌学院', '开关柜局放在线监测', $2, 0, 0) RETURNING id",
    )
    .bind(unit)
    .bind(status)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_certified_enterprise_expresses_interest_and_the_owner_tracks_it_to_an_agreement() {
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    let lab_id = app.create_user("lab", "unit_manager").await;
    app.create_user("ent", "user").await;
    app.create_user("bureau", "platform_admin").await;
    let (lab, ent, bureau) = (
        app.token("lab").await,
        app.token("ent").await,
        app.token("bureau").await,
    );
    let owner = certified_unit(&app, &lab, "许昌学院", 41, "managing", "other").await;
    let buyer = certified_unit(&app, &ent, "许昌森源", 42, "user", "high_tech").await;
    let (s, draft) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&ent),
            Some(crate::common::unit_body("未认证企业", 43, "user")),
        )
        .await;
    assert_eq!(s, 201);
    let ach = achievement(&app, owner, "approved").await;
    let hidden = achievement(&app, owner, "draft").await;
    let interest = |token: &str, achievement: i64, body: Value| {
        let token = token.to_string();
        let app = &app;
        async move {
            app.api(
                "POST",
                &format!("/api/v1/achievements/{achievement}/interest"),
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    let msg = "我公司希望以技术许可方式合作，联系人张三 13800000000";
    assert_eq!(
        interest(&ent, hidden, json!({"unit_id": buyer, "message": msg}))
            .await
            .0,
        404
    );
    let (s, e) = interest(&ent, ach, json!({"unit_id": buyer, "message": "好"})).await;
    assert_eq!(s, 422);
    assert!(e["error"]["fields"]["message"].is_string());
    let (s, e) = interest(&ent, ach, json!({"unit_id": draft["id"], "message": msg})).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("unit_not_eligible"))
    );
    assert_eq!(
        interest(&bureau, ach, json!({"unit_id": buyer, "message": msg}))
            .await
            .0,
        403
    );
    let (s, i) = interest(&ent, ach, json!({"unit_id": buyer, "message": msg})).await;
    assert_eq!(s, 201, "{i}");
    assert_eq!(i["status"], "new");
    let iid = i["id"].as_i64().unwrap();
    let (s, e) = interest(&ent, ach, json!({"unit_id": buyer, "message": msg})).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("interest_exists"))
    );
    let notified: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND kind = 'transfer'",
    )
    .bind(lab_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(notified, 1, "the owning unit's manager is told");

    let (_, list) = app
        .api("GET", "/api/v1/achievement-interests", Some(&lab), None)
        .await;
    assert_eq!(list["incoming"][0]["id"], iid);
    let (_, list) = app
        .api("GET", "/api/v1/achievement-interests", Some(&ent), None)
        .await;
    assert_eq!(list["sent"][0]["id"], iid);
    let patch = |token: &str, body: Value| {
        let token = token.to_string();
        let app = &app;
        async move {
            app.api(
                "PATCH",
                &format!("/api/v1/achievement-interests/{iid}"),
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    assert_eq!(
        patch(&ent, json!({"status": "agreed"})).await.0,
        404,
        "not the owner"
    );
    assert_eq!(patch(&lab, json!({"status": "maybe"})).await.0, 422);
    let (s, i) = patch(
        &lab,
        json!({"status": "contacted", "reply": "已电话联系，下周面谈"}),
    )
    .await;
    assert_eq!(s, 200, "{i}");
    assert_eq!(
        (i["status"].as_str(), i["reply"].as_str()),
        (Some("contacted"), Some("已电话联系，下周面谈"))
    );
    assert_eq!(patch(&lab, json!({"status": "agreed"})).await.0, 200);
    let (s, e) = patch(&lab, json!({"status": "closed"})).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("interest_finished"))
    );

    let counts = labshare::transfer::agreements_per_unit(&app.db, None)
        .await
        .unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!((counts[0].unit_id, counts[0].agreements), (owner, 1));
    let (s, stats) = app
        .api(
            "GET",
            "/api/v1/statistics/transfer-agreements",
            Some(&bureau),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(stats["items"][0]["agreements"], 1);
    let (_, all) = app
        .api("GET", "/api/v1/achievement-interests", Some(&bureau), None)
        .await;
    assert_eq!(all["all"]["total"], 1);
    let client = app.browser_login("bureau").await;
    let (_, html) = app.get_page(&client, "/console/transfer").await;
    assert!(html.contains("各单位达成合作数") && html.contains("许昌学院"));
    assert!(
        html.contains("<td>1</td>"),
        "the pipeline page shows the count"
    );
}

#[tokio::test]
async fn the_achievement_page_takes_the_interest_form() {
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    app.create_user("lab", "unit_manager").await;
    app.create_user("ent", "user").await;
    let (lab, ent) = (app.token("lab").await, app.token("ent").await);
    let owner = certified_unit(&app, &lab, "许昌学院", 51, "managing", "other").await;
    let buyer = certified_unit(&app, &ent, "许昌森源", 52, "user", "high_tech").await;
    let ach = achievement(&app, owner, "approved").await;
    let (_, html) = app
        .get_page(&app.client, &format!("/achievements/{ach}"))
        .await;
    assert!(html.contains("登录</a>后，认证企业可提交合作意向"));
    let client = app.browser_login("ent").await;
    let page = format!("/achievements/{ach}");
    let (_, html) = app.get_page(&client, &page).await;
    assert!(html.contains("提交合作意向") && html.contains("许昌森源"));
    let res = app
        .post_form(
            &client,
            &page,
            &format!("/achievements/{ach}/interest"),
            &[
                ("unit_id", &buyer.to_string()),
                ("message", "希望合作，请联系 13800000000"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app.get_page(&client, &page).await;
    assert!(html.contains("合作意向已提交"), "flash");
    let lab_client = app.browser_login("lab").await;
    let (_, html) = app.get_page(&lab_client, "/console/transfer").await;
    assert!(html.contains("希望合作，请联系 13800000000"));
    let id: i64 = sqlx::query_scalar("SELECT id FROM achievement_interests")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let res = app
        .post_form(
            &lab_client,
            "/console/transfer",
            &format!("/console/transfer/{id}"),
            &[("status", "agreed"), ("reply", "已签约")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app.get_page(&lab_client, "/console/transfer").await;
    assert!(html.contains("已达成合作"));
}
