//! Expert performance evaluation (绩效评价): declaration with computed indicators, expert
//! assignment with recusal, scoring sheets, the trimmed mean, grading with the override
//! rule, publication and the grade the settlement uses — through the API and the pages.

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::money::{World, complete_after_service, grant, quoted, world};

/// A certified expert of the pool with an account; `unit_name` is where they work.
pub(crate) async fn expert(
    app: &TestApp,
    username: &str,
    name: &str,
    unit_name: &str,
) -> (i64, String) {
    let id = app.create_user(username, "expert").await;
    sqlx::query(
        "INSERT INTO experts (user_id, name, unit_name, title, fields, status, certification_status, created_at, updated_at) \
         VALUES ($1, $2, $3, '正高级', '材料科学', '在库', 'certified', 0, 0)",
    )
    .bind(id)
    .bind(name)
    .bind(unit_name)
    .execute(&app.db.pool)
    .await
    .unwrap();
    (id, app.token(username).await)
}

async fn evaluation_instance(app: &TestApp, id: i64) -> i64 {
    sqlx::query_scalar("SELECT instance_id FROM evaluations WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn owner_unit(w: &World) -> i64 {
    sqlx::query_scalar("SELECT unit_id FROM instruments WHERE id = $1")
        .bind(w.instrument)
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap()
}

/// One completed, rated booking (2 hours for the user unit) so the indicators have data.
async fn served(w: &World) {
    grant(w, 2026).await;
    let b = quoted(
        w,
        "2026-12-02T09:00:00+08:00",
        "2026-12-02T11:00:00+08:00",
        "1000.00",
    )
    .await;
    let (status, body) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{b}/confirm"),
            Some(&w.user),
            Some(json!({"voucher_amount": "400.00"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    complete_after_service(w, b).await;
    let (status, body) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{b}/rating"),
            Some(&w.user),
            Some(json!({"rating": "非常满意", "comment": "数据质量好"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn tasks(app: &TestApp, token: &str) -> Vec<Value> {
    let (_, t) = app.api("GET", "/api/v1/tasks", Some(token), None).await;
    t["items"].as_array().cloned().unwrap_or_default()
}

fn sheet(usage: &str, sharing: &str, results: &str, sat: &str, mgmt: &str) -> Value {
    json!({"scores": {"usage": usage, "sharing": sharing, "results": results, "satisfaction": sat, "management": mgmt},
           "comment": "开放共享成效明显"})
}

#[tokio::test]
async fn an_evaluation_goes_from_declaration_through_three_experts_to_a_published_grade() {
    let w = world("high_tech").await;
    served(&w).await;
    let app = &w.app;
    let unit = owner_unit(&w).await;
    let unit_name: String = sqlx::query_scalar("SELECT name FROM units WHERE id = $1")
        .bind(unit)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    app.create_user("bureau_e", "platform_admin").await;
    let admin = app.token("bureau_e").await;

    // Declaration: validation, the user unit may not declare, one live declaration a year.
    let path = "/api/v1/evaluations";
    let (status, body) = app
        .api(
            "POST",
            path,
            Some(&w.owner),
            Some(json!({"unit_id": unit, "year": 2026, "self_report": "短"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["fields"]["self_report"].is_string());
    let (status, _) = app
        .api("POST", path, Some(&w.user), Some(json!({"unit_id": unit, "year": 2026, "self_report": "本单位年度开放共享情况良好，制度健全。"})))
        .await;
    assert_eq!(status, 403, "a user unit's account cannot declare");
    let report = "本单位全年开放共享大型仪器，建立了预约、收费和安全管理制度，服务企业多家。";
    let (status, started) = app
        .api(
            "POST",
            path,
            Some(&w.owner),
            Some(json!({"unit_id": unit, "year": 2026, "self_report": report})),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["state"], "assign");
    let id = started["id"].as_i64().unwrap();
    let (status, body) = app
        .api(
            "POST",
            path,
            Some(&w.owner),
            Some(json!({"unit_id": unit, "year": 2026, "self_report": report})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_declared"))
    );

    // The indicators come from the platform's own data.
    let (status, ev) = app
        .api("GET", &format!("{path}/{id}"), Some(&w.owner), None)
        .await;
    assert_eq!(status, 200, "{ev}");
    let ind = &ev["indicators"];
    assert_eq!(ind["effective_hours"], "2.00");
    assert_eq!(ind["external_hours"], "2.00");
    assert_eq!(ind["sharing_rate"], "100.00");
    assert_eq!(ind["services"], 1);
    assert_eq!(ind["service_income"], "1000.00");
    assert_eq!(ind["ratings"], 1);
    assert_eq!(ind["satisfaction_rate"], "100.00");
    assert_eq!(ev["status"], "assigning");

    // The pool: one expert is a member of the unit, one works there; both are recused.
    let (member, _) = expert(app, "ex_member", "本单位专家", "其他单位").await;
    sqlx::query("INSERT INTO unit_members (unit_id, user_id, role, created_at) VALUES ($1, $2, 'member', 0)")
        .bind(unit)
        .bind(member)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (colleague, _) = expert(app, "ex_colleague", "同单位专家", &unit_name).await;
    let mut experts = Vec::new();
    for (i, name) in ["张教授", "刘研究员", "陈高工", "王教授"]
        .iter()
        .enumerate()
    {
        experts.push(expert(app, &format!("ex_{i}"), name, "郑州大学").await);
    }
    let (_, ev) = app
        .api("GET", &format!("{path}/{id}"), Some(&admin), None)
        .await;
    let candidates = ev["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 6, "{ev}");
    let recused: Vec<i64> = candidates
        .iter()
        .filter(|c| c["recused"].is_string())
        .map(|c| c["user_id"].as_i64().unwrap())
        .collect();
    assert_eq!(recused, [member, colleague]);

    let assign = |ids: Vec<i64>| {
        let admin = admin.clone();
        async move {
            app.api(
                "PUT",
                &format!("/api/v1/evaluations/{id}/experts"),
                Some(&admin),
                Some(json!({"expert_ids": ids})),
            )
            .await
        }
    };
    let (status, body) = assign(vec![experts[0].0, member, experts[1].0]).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["fields"]["expert_ids"]
            .as_str()
            .unwrap()
            .contains("回避")
    );
    let (status, body) = assign(vec![experts[0].0, experts[1].0]).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app
        .api(
            "PUT",
            &format!("{path}/{id}/experts"),
            Some(&w.owner),
            Some(json!({"expert_ids": [experts[2].0]})),
        )
        .await;
    assert_eq!(status, 403, "the unit cannot choose its experts");

    // Two experts are not enough to send the review out.
    let assign_task = tasks(app, &admin).await[0]["id"].as_i64().unwrap();
    let act = |token: String, task: i64, action: &'static str, data: Value| async move {
        app.api(
            "POST",
            &format!("/api/v1/tasks/{task}/actions"),
            Some(&token),
            Some(json!({"action": action, "comment": "", "data": data})),
        )
        .await
    };
    let (status, body) = act(admin.clone(), assign_task, "approve", json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("三位专家")
    );
    assert_eq!(
        assign(vec![experts[0].0, experts[1].0, experts[2].0])
            .await
            .0,
        200
    );
    let (status, out) = act(admin.clone(), assign_task, "approve", json!({})).await;
    assert_eq!(
        (status, out["state"].as_str()),
        (200, Some("expert_review")),
        "{out}"
    );
    let (status, _) = assign(vec![experts[3].0]).await;
    assert_eq!(status, 409, "experts are fixed once the review is out");

    // Each assigned expert has a task; the fourth has none and the recused never had one.
    for (_, token) in &experts[..3] {
        assert_eq!(tasks(app, token).await.len(), 1);
    }
    assert!(tasks(app, &experts[3].1).await.is_empty());
    // Their mails link to the page: a one-click approval could not carry the scores.
    labshare::notify::deliver_workflow_events(&app.state, 100)
        .await
        .unwrap();
    let (tokens, notices): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT CAST(COUNT(*) AS BIGINT) FROM email_action_tokens k JOIN workflow_tasks t ON t.id = k.task_id WHERE t.state = 'expert_review'), \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM notifications WHERE user_id = $1 AND kind = 'assigned')",
    )
    .bind(experts[0].0)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((tokens, notices), (0, 1));
    let score = |token: String, body: Value| async move {
        app.api(
            "POST",
            &format!("/api/v1/evaluations/{id}/scores"),
            Some(&token),
            Some(body),
        )
        .await
    };
    let (status, body) = score(experts[3].1.clone(), sheet("20", "20", "20", "8", "8")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("not_assignee"))
    );
    // A sheet outside the points is refused item by item; a bare approval has no score.
    let (status, body) = score(experts[0].1.clone(), sheet("26", "20", "", "8", "8.25")).await;
    assert_eq!(status, 422, "{body}");
    let f = &body["error"]["fields"];
    assert!(
        f["scores.usage"].is_string()
            && f["scores.results"].is_string()
            && f["scores.management"].is_string(),
        "{f}"
    );
    let t0 = tasks(app, &experts[0].1).await[0]["id"].as_i64().unwrap();
    let (status, body) = act(experts[0].1.clone(), t0, "approve", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("form_incomplete"))
    );

    // 95, 80 and 70.5: the trimmed mean keeps 80.00 → 良好.
    let (status, out) = score(experts[0].1.clone(), sheet("25", "30", "24", "9", "7")).await;
    assert_eq!(
        (status, out["state"].as_str()),
        (200, Some("expert_review")),
        "{out}"
    );
    let (_, out) = score(experts[1].1.clone(), sheet("20", "25", "20", "8", "7")).await;
    assert_eq!(out["state"], "expert_review");
    let (status, body) = score(experts[1].1.clone(), sheet("20", "25", "20", "8", "7")).await;
    assert_eq!(status, 403, "scored once: {body}");
    let (_, out) = score(experts[2].1.clone(), sheet("18", "20.5", "18", "7", "7")).await;
    assert_eq!(out["state"], "grading", "{out}");

    let (_, ev) = app
        .api("GET", &format!("{path}/{id}"), Some(&admin), None)
        .await;
    assert_eq!(ev["score"], "80.00", "{ev}");
    assert_eq!(ev["suggested_grade"], "good");
    let totals: Vec<&str> = ev["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["total"].as_str().unwrap())
        .collect();
    assert_eq!(totals, ["95", "80", "70.5"]);
    // The unit sees neither the experts nor the score before publication; an expert sees
    // only their own sheet.
    let (_, mine) = app
        .api("GET", &format!("{path}/{id}"), Some(&w.owner), None)
        .await;
    assert!(
        mine["score"].is_null() && mine["experts"].as_array().unwrap().is_empty(),
        "{mine}"
    );
    assert!(mine["scores"].as_array().unwrap().is_empty());
    let (_, theirs) = app
        .api("GET", &format!("{path}/{id}"), Some(&experts[1].1), None)
        .await;
    assert_eq!(theirs["scores"].as_array().unwrap().len(), 1);
    assert!(
        theirs["score"].is_null(),
        "no aggregate for experts before publication"
    );
    assert_eq!(theirs["scores"][0]["total"], "80");

    // Grading: a grade other than the score's needs a reason.
    let g = tasks(app, &admin).await[0]["id"].as_i64().unwrap();
    let (status, body) = act(admin.clone(), g, "approve", json!({"grade": "excellent"})).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["fields"]["reason"]
            .as_str()
            .unwrap()
            .contains("80.00"),
        "{body}"
    );
    let (status, out) = act(admin.clone(), g, "approve", json!({"grade": "good"})).await;
    assert_eq!(
        (status, out["state"].as_str(), out["status"].as_str()),
        (200, Some("published"), Some("completed")),
        "{out}"
    );

    let (_, ev) = app
        .api("GET", &format!("{path}/{id}"), Some(&w.owner), None)
        .await;
    assert_eq!(
        (
            ev["status"].as_str(),
            ev["grade"].as_str(),
            ev["score"].as_str()
        ),
        (Some("published"), Some("good"), Some("80.00"))
    );
    let (grade, source): (String, String) =
        sqlx::query_as("SELECT grade, source FROM unit_grades WHERE unit_id = $1 AND year = 2026")
            .bind(unit)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((grade.as_str(), source.as_str()), ("good", "evaluation"));
    let html = app
        .client
        .get(app.url("/evaluations?year=2026"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&unit_name) && html.contains("良好") && html.contains("80.00"),
        "{html}"
    );

    let html = app
        .client
        .get(app.url(&format!("/orgs/{unit}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("2026 年度 良好（80.00 分）"), "{html}");

    // The year's statistics count the same records.
    let (status, st) = app
        .api("GET", "/api/v1/statistics?year=2026", Some(&admin), None)
        .await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(
        (st["services"].as_i64(), st["external_services"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(st["service_hours"], "2.00");
    assert_eq!(st["service_income"], "1000.00");
    assert_eq!(st["ratings"]["非常满意"], 1);
    assert_eq!(st["vouchers"]["grant"], "50000.00");
    assert_eq!(st["vouchers"]["reserve"], "400.00");
    assert_eq!(st["grades"]["good"], 1);
    assert_eq!(st["top_instruments"][0]["income"], "1000.00");
    let (status, _) = app
        .api("GET", "/api/v1/statistics?year=2026", Some(&w.owner), None)
        .await;
    assert_eq!(status, 403);
    let console = app.browser_login("bureau_e").await;
    let (status, html) = app
        .get_page(&console, "/console/statistics?year=2026")
        .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("50,000.00") && html.contains("良好：1"),
        "{html}"
    );
    let cells: Vec<(String, String)> =
        crate::common::xlsx_rows(app, &console, "/console/statistics/export.xlsx?year=2026")
            .await
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect();
    assert!(
        cells.contains(&("创新券发放（元）".into(), "50000.00".into())),
        "{cells:?}"
    );
    assert!(
        cells.contains(&("绩效评价：良好".into(), "1".into())),
        "{cells:?}"
    );
}

/// Post a console form (the helper fetches the CSRF token from `page`); (status, body).
async fn submit(
    app: &TestApp,
    client: &reqwest::Client,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let res = app.post_form(client, page, action, fields).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn the_pages_declare_assign_score_and_grade_with_an_override_reason() {
    let w = world("high_tech").await;
    let app = &w.app;
    let unit = owner_unit(&w).await;
    app.create_user("bureau_p", "platform_admin").await;
    let mut experts = Vec::new();
    for i in 0..3 {
        experts.push(
            expert(app, &format!("pex_{i}"), &format!("专家{i}"), "河南大学")
                .await
                .0,
        );
    }

    // The unit declares on 绩效评价申报; a short report is refused and the text kept.
    let owner = app.browser_login("owner").await;
    let list = "/console/evaluations";
    let unit_s = unit.to_string();
    let (status, html) = submit(
        app,
        &owner,
        list,
        list,
        &[
            ("unit_id", &unit_s),
            ("year", "2026"),
            ("self_report", "太短了"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        html.contains("不少于 10 个字") && html.contains("太短了"),
        "{html}"
    );
    let report = "年度内仪器对外开放，制度完善，服务本地企业十余家。";
    let (status, _) = submit(
        app,
        &owner,
        list,
        list,
        &[
            ("unit_id", &unit_s),
            ("year", "2026"),
            ("self_report", report),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let id: i64 = sqlx::query_scalar("SELECT id FROM evaluations WHERE unit_id = $1")
        .bind(unit)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let page = format!("/console/evaluations/{id}");
    let (status, html) = app.get_page(&owner, list).await;
    assert_eq!(status, 200);
    assert!(html.contains("待指派专家"), "{html}");

    // The admin picks three experts and sends the review out in one step.
    let admin = app.browser_login("bureau_p").await;
    let (status, html) = app.get_page(&admin, "/console/evaluation-admin").await;
    assert_eq!(status, 200);
    assert!(html.contains("待指派专家"));
    let (_, html) = app.get_page(&admin, &page).await;
    assert!(
        html.contains("专家0") && html.contains("指派并发出评审"),
        "{html}"
    );
    let ids: Vec<String> = experts.iter().map(i64::to_string).collect();
    let experts_action = format!("{page}/experts");
    let (status, html) = submit(
        app,
        &admin,
        &page,
        &experts_action,
        &[("expert_id", &ids[0]), ("submit", "1")],
    )
    .await;
    assert_eq!(status, 422, "one expert is not enough");
    assert!(html.contains("三位专家"), "{html}");
    let (status, _) = submit(
        app,
        &admin,
        &page,
        &experts_action,
        &[
            ("expert_id", &ids[0]),
            ("expert_id", &ids[1]),
            ("expert_id", &ids[2]),
            ("submit", "1"),
        ],
    )
    .await;
    assert_eq!(status, 303);

    // Each expert scores on the page (a bad item is shown beside the field).
    let scores_action = format!("{page}/scores");
    for (i, results) in [("0", "15"), ("1", "17"), ("2", "16")] {
        let client = app.browser_login(&format!("pex_{i}")).await;
        let (status, html) = app.get_page(&client, "/console/expert-reviews").await;
        assert_eq!(status, 200);
        assert!(html.contains("去评分"), "{html}");
        if i == "0" {
            let (status, html) = submit(
                app,
                &client,
                &page,
                &scores_action,
                &[("score_usage", "99")],
            )
            .await;
            assert_eq!(status, 422);
            assert!(html.contains("0 到 25") && html.contains("请为"), "{html}");
        }
        let (status, _) = submit(
            app,
            &client,
            &page,
            &scores_action,
            &[
                ("score_usage", "25"),
                ("score_sharing", "30"),
                ("score_results", results),
                ("score_satisfaction", "10"),
                ("score_management", "10"),
                ("comment", "同意"),
            ],
        )
        .await;
        assert_eq!(status, 303);
    }

    // 90, 92, 91 → 91.00 → 优秀; the admin lowers it to 良好 and must say why.
    let (_, html) = app.get_page(&admin, &page).await;
    assert!(
        html.contains("91.00") && html.contains("定级并公示"),
        "{html}"
    );
    let grade_action = format!("{page}/grade");
    let (status, html) = submit(
        app,
        &admin,
        &page,
        &grade_action,
        &[("action", "approve"), ("grade", "good"), ("reason", "")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("请说明调整理由"), "{html}");
    let (status, _) = submit(
        app,
        &admin,
        &page,
        &grade_action,
        &[
            ("action", "approve"),
            ("grade", "good"),
            ("reason", "年内发生一次安全事故"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, html) = app.get_page(&owner, &page).await;
    assert!(
        html.contains("良好") && html.contains("年内发生一次安全事故") && html.contains("91.00"),
        "{html}"
    );
    assert!(
        !html.contains("专家0"),
        "the experts stay anonymous to the unit"
    );
    assert!(
        html.contains("提交申报（申报 → 指派专家）")
            && html.contains("同意（平台定级 → 已定级公示）"),
        "the record speaks Chinese: {html}"
    );
    assert!(
        !html.contains("测试pex_") && html.contains("评审专家"),
        "the record names no expert to the unit"
    );
    let owner_token = app.token("owner").await;
    let (_, inst) = app
        .api(
            "GET",
            &format!(
                "/api/v1/workflow-instances/{}",
                evaluation_instance(app, id).await
            ),
            Some(&owner_token),
            None,
        )
        .await;
    let actors: Vec<&str> = inst["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["step"] == "expert_review")
        .map(|h| h["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["评审专家"; 3], "{inst}");
    // An expert sees their own name; the bureau (an auditor) sees all.
    let (_, html) = app.get_page(&app.browser_login("pex_1").await, &page).await;
    assert!(html.contains("测试pex_1") && !html.contains("测试pex_0"));
    let (_, html) = app.get_page(&admin, &page).await;
    assert!(html.contains("测试pex_0") && html.contains("测试pex_2"));
}

/// The platform sends a declaration back for more material: the unit rewrites its report
/// (the indicators are recomputed) and resubmits; a grade can also go back to the experts.
#[tokio::test]
async fn a_declaration_returned_for_more_material_is_revised_and_resubmitted() {
    let w = world("high_tech").await;
    let app = &w.app;
    let unit = owner_unit(&w).await;
    app.create_user("bureau_r", "platform_admin").await;
    let admin = app.token("bureau_r").await;
    let (status, started) = app
        .api("POST", "/api/v1/evaluations", Some(&w.owner), Some(json!({"unit_id": unit, "year": 2026, "self_report": "初次申报的自评报告，内容较简略。"})))
        .await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_i64().unwrap();
    let act = |token: String, action: &'static str, comment: &'static str| async move {
        let t = tasks(app, &token).await[0]["id"].as_i64().unwrap();
        app.api(
            "POST",
            &format!("/api/v1/tasks/{t}/actions"),
            Some(&token),
            Some(json!({"action": action, "comment": comment})),
        )
        .await
    };
    let (status, out) = act(admin.clone(), "return", "请补充管理制度与典型案例").await;
    assert_eq!(
        (status, out["state"].as_str()),
        (200, Some("revise")),
        "{out}"
    );

    // Rewriting is for the revise step only, by the unit; the services done meanwhile count.
    let report =
        json!({"self_report": "补充后的自评报告：新增开放共享管理办法与三个典型服务案例。"});
    let (status, _) = app
        .api(
            "PUT",
            &format!("/api/v1/evaluations/{id}/report"),
            Some(&admin),
            Some(report.clone()),
        )
        .await;
    assert_eq!(status, 403);
    served(&w).await;
    let (status, body) = app
        .api(
            "PUT",
            &format!("/api/v1/evaluations/{id}/report"),
            Some(&w.owner),
            Some(report),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, ev) = app
        .api(
            "GET",
            &format!("/api/v1/evaluations/{id}"),
            Some(&w.owner),
            None,
        )
        .await;
    assert!(ev["self_report"].as_str().unwrap().starts_with("补充后"));
    assert_eq!(
        ev["indicators"]["effective_hours"], "2.00",
        "recomputed at revision"
    );
    let (status, out) = act(w.owner.clone(), "approve", "已补充").await;
    assert_eq!(
        (status, out["state"].as_str()),
        (200, Some("assign")),
        "{out}"
    );
    let (status, body) = app
        .api(
            "PUT",
            &format!("/api/v1/evaluations/{id}/report"),
            Some(&w.owner),
            Some(json!({"self_report": "再次修改的自评报告内容。"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_revising"))
    );

    // Three experts score; the bureau sends it back to them once, and they score again.
    let mut experts = Vec::new();
    for i in 0..3 {
        experts.push(expert(app, &format!("rx{i}"), &format!("复评专家{i}"), "河南大学").await);
    }
    let (status, _) = app
        .api(
            "PUT",
            &format!("/api/v1/evaluations/{id}/experts"),
            Some(&admin),
            Some(json!({"expert_ids": experts.iter().map(|e| e.0).collect::<Vec<_>>()})),
        )
        .await;
    assert_eq!(status, 200);
    act(admin.clone(), "approve", "").await;
    let score_all = |sharing: &'static str| {
        let experts = experts.clone();
        async move {
            for (_, token) in &experts {
                let (status, out) = app
                    .api(
                        "POST",
                        &format!("/api/v1/evaluations/{id}/scores"),
                        Some(token),
                        Some(sheet("20", sharing, "20", "8", "8")),
                    )
                    .await;
                assert_eq!(status, 200, "{out}");
            }
        }
    };
    score_all("10").await;
    let (_, ev) = app
        .api(
            "GET",
            &format!("/api/v1/evaluations/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (ev["score"].as_str(), ev["suggested_grade"].as_str()),
        (Some("66.00"), Some("qualified"))
    );
    let (status, out) = act(admin.clone(), "return", "评分依据不足，请复评").await;
    assert_eq!(
        (status, out["state"].as_str()),
        (200, Some("expert_review")),
        "{out}"
    );
    let (_, ev) = app
        .api(
            "GET",
            &format!("/api/v1/evaluations/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert!(
        ev["score"].is_null(),
        "a new round starts without scores: {ev}"
    );
    score_all("24").await;
    let (_, ev) = app
        .api(
            "GET",
            &format!("/api/v1/evaluations/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (ev["score"].as_str(), ev["suggested_grade"].as_str()),
        (Some("80.00"), Some("good"))
    );
}
