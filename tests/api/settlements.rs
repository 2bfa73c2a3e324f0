//! Subsidy settlement (补贴结算) confirmed by the units it pays: each unit's manager confirms
//! its lines or objects with a reason; the platform upholds the computation or recomputes it,
//! and recomputing the same inputs gives the same figures.

use serde_json::{Value, json};

use crate::common::{TestApp, certified_unit, spawn_app_with, unit_body};

/// Tuesday 1 December 2026, 08:00 in Xuchang.
const NOW: &str = "2026-12-01T08:00:00+08:00";

/// A managing unit with its manager `username`; returns (unit id, token).
async fn managing_unit(app: &TestApp, username: &str, name: &str, n: u32) -> (i64, String) {
    app.create_user(username, "unit_manager").await;
    let token = app.token(username).await;
    let id = certified_unit(app, &token, name, n, "managing", "high_tech").await;
    (id, token)
}

async fn instrument(app: &TestApp, unit: i64, name: &str, model: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, model, category_code, value_fen, review_status, created_at, updated_at) \
         VALUES ($1, $2, $3, '010100', 380000000, 'approved', 0, 0) RETURNING id",
    )
    .bind(unit)
    .bind(name)
    .bind(model)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

/// A completed 2026 service on `instrument` paid with `voucher_fen` of vouchers, in an
/// approved redemption: income for the settlement.
async fn income(
    app: &TestApp,
    instrument: i64,
    owner: i64,
    buyer_unit: i64,
    voucher_fen: i64,
    n: i64,
) {
    let start = 1_780_000_000 + n * 10_000;
    let booking: i64 = sqlx::query_scalar(
        "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, status, live, price_fen, voucher_fen, voucher_year, created_at, updated_at) \
         VALUES ($1, $2, 1, $3, $4, '测试', 'completed', 0, $5, $6, 2026, 0, 0) RETURNING id",
    )
    .bind(instrument)
    .bind(buyer_unit)
    .bind(start)
    .bind(start + 3600)
    .bind(voucher_fen * 3)
    .bind(voucher_fen)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO service_records (booking_id, order_no, instrument_id, managing_unit_id, user_unit_id, applicant_name, amount_fen, voucher_fen, \
         service_hours_x100, started_at, ended_at, completed_at, year, created_at) VALUES ($1, $2, $3, $4, $5, '张三', $6, $7, 100, $8, $9, $9, 2026, 0)",
    )
    .bind(booking)
    .bind(format!("FWTEST{n:06}"))
    .bind(instrument)
    .bind(owner)
    .bind(buyer_unit)
    .bind(voucher_fen * 3)
    .bind(voucher_fen)
    .bind(start)
    .bind(start + 3600)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let rid: i64 = sqlx::query_scalar(
        "INSERT INTO redemptions (managing_unit_id, status, total_fen, created_by, created_at) VALUES ($1, 'approved', $2, 1, 0) RETURNING id",
    )
    .bind(owner)
    .bind(voucher_fen)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO redemption_items (redemption_id, booking_id, voucher_fen) VALUES ($1, $2, $3)",
    )
    .bind(rid)
    .bind(booking)
    .bind(voucher_fen)
    .execute(&app.db.pool)
    .await
    .unwrap();
}

async fn grade(app: &TestApp, admin: &str, unit: i64, grade: &str) {
    let (status, b) = app
        .api(
            "PUT",
            &format!("/api/v1/units/{unit}/grades/2026"),
            Some(admin),
            Some(json!({"grade": grade, "reason": "省级评价结果"})),
        )
        .await;
    assert_eq!(status, 200, "{b}");
}

async fn settlement(app: &TestApp, token: &str, id: i64) -> Value {
    let (status, s) = app
        .api(
            "GET",
            &format!("/api/v1/subsidy-settlements/{id}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{s}");
    s
}

fn confirmation(s: &Value, unit: i64) -> Value {
    s["confirmations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["unit_id"] == unit)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The figures alone (each unit's lines and totals, without the confirmation state).
fn figures(s: &Value) -> Value {
    let mut units = s["units"].clone();
    for u in units.as_array_mut().unwrap() {
        u.as_object_mut().unwrap().remove("confirmation");
    }
    json!({"total": s["total"], "units": units})
}

/// The only open task of `token`'s user.
async fn only_task(app: &TestApp, token: &str) -> Value {
    let (_, tasks) = app.api("GET", "/api/v1/tasks", Some(token), None).await;
    let items = tasks["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{tasks}");
    items[0].clone()
}

async fn act(
    app: &TestApp,
    token: &str,
    task: &Value,
    action: &str,
    comment: &str,
) -> (u16, Value) {
    app.api(
        "POST",
        &format!("/api/v1/tasks/{}/actions", task["id"]),
        Some(token),
        Some(json!({"action": action, "comment": comment})),
    )
    .await
}

struct World {
    app: TestApp,
    /// The subsidy manager who decides (objection, review).
    admin: String,
    /// The one who starts the settlements: as its applicant, never its reviewer (职责分离).
    starter: String,
    unit_a: i64,
    owner_a: String,
    unit_b: i64,
    owner_b: String,
}

/// Unit A: one instrument earning 120,000.00 (good: 30% capped at 30,000.00). Unit B: two
/// instruments earning 10,000.05 and 20,000.00 (qualified: 15%).
async fn world() -> World {
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    app.create_user("bureau_s", "platform_admin").await;
    let admin = app.token("bureau_s").await;
    app.create_user("starter_s", "platform_admin").await;
    let starter = app.token("starter_s").await;
    let (unit_a, owner_a) = managing_unit(&app, "owner_a", "许昌学院", 201).await;
    let (unit_b, owner_b) = managing_unit(&app, "owner_b", "许昌职业技术学院", 202).await;
    app.create_user("buyer_s", "user").await;
    let buyer = app.token("buyer_s").await;
    let (_, b) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&buyer),
            Some(unit_body("许昌测试企业", 203, "user")),
        )
        .await;
    let buyer_unit = b["id"].as_i64().unwrap();
    let ia = instrument(&app, unit_a, "场发射扫描电子显微镜", "Sigma 300").await;
    let ib1 = instrument(&app, unit_b, "气相色谱质谱联用仪", "7890B-5977B").await;
    let ib2 = instrument(&app, unit_b, "X射线衍射仪", "D8 Advance").await;
    income(&app, ia, unit_a, buyer_unit, 12_000_000, 1).await;
    income(&app, ib1, unit_b, buyer_unit, 1_000_005, 2).await;
    income(&app, ib2, unit_b, buyer_unit, 2_000_000, 3).await;
    grade(&app, &admin, unit_a, "good").await;
    grade(&app, &admin, unit_b, "qualified").await;
    World {
        app,
        admin,
        starter,
        unit_a,
        owner_a,
        unit_b,
        owner_b,
    }
}

#[tokio::test]
async fn units_confirm_or_object_and_recomputing_the_same_inputs_gives_the_same_figures() {
    let w = world().await;
    let app = &w.app;
    let (status, s) = app
        .api(
            "POST",
            "/api/v1/subsidy-settlements",
            Some(&w.starter),
            Some(json!({"year": 2026})),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_i64().unwrap();
    assert_eq!(s["status"], "confirming");
    assert_eq!(s["total"], "34500.01", "30,000.00 + 1,500.01 + 3,000.00");
    assert_eq!(s["computations"], 1);
    assert_eq!(s["units"][0]["unit_id"], w.unit_a);
    assert_eq!(s["units"][0]["confirmation"]["status"], "pending");
    assert_eq!(confirmation(&s, w.unit_b)["status"], "pending");
    assert_eq!(confirmation(&s, w.unit_b)["unit_name"], "许昌职业技术学院");
    let first = figures(&s);

    // Each manager sees only their own unit's lines; others see nothing.
    let mine = settlement(app, &w.owner_a, id).await;
    assert_eq!(mine["units"].as_array().unwrap().len(), 1);
    assert_eq!(mine["units"][0]["unit_id"], w.unit_a);
    app.create_user("stranger_s", "unit_manager").await;
    let stranger = app.token("stranger_s").await;
    let (status, _) = app
        .api(
            "GET",
            &format!("/api/v1/subsidy-settlements/{id}"),
            Some(&stranger),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/subsidy-settlements/{id}/confirm"),
            Some(&stranger),
            None,
        )
        .await;
    assert_eq!(status, 403, "only the units' managers confirm");

    // An objection needs a reason, through this API and through the generic task action.
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/subsidy-settlements/{id}/objection"),
            Some(&w.owner_b),
            Some(json!({"reason": "  "})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["fields"]["reason"].is_string());
    let task_b = only_task(app, &w.owner_b).await;
    assert_eq!(task_b["workflow"], "subsidy_settlement");
    let (status, body) = act(app, &w.owner_b, &task_b, "reject", "").await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["fields"]["comment"].is_string(), "{body}");

    // A confirms; twice is refused.
    let (status, s) = app
        .api(
            "POST",
            &format!("/api/v1/subsidy-settlements/{id}/confirm"),
            Some(&w.owner_a),
            None,
        )
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["units"][0]["confirmation"]["status"], "confirmed");
    assert_eq!(s["status"], "confirming", "B has not answered");
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/subsidy-settlements/{id}/confirm"),
            Some(&w.owner_a),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");

    // B objects: the platform admin gets the objection.
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/subsidy-settlements/{id}/objection"),
            Some(&w.owner_b),
            Some(json!({"reason": "X射线衍射仪 收入漏算一笔"})),
        )
        .await;
    assert_eq!(status, 200);
    let s = settlement(app, &w.admin, id).await;
    assert_eq!(s["status"], "objection");
    assert_eq!(confirmation(&s, w.unit_b)["status"], "objected");
    assert_eq!(
        confirmation(&s, w.unit_b)["reason"],
        "X射线衍射仪 收入漏算一笔"
    );
    assert_eq!(confirmation(&s, w.unit_a)["status"], "confirmed");
    let admin_page = app.browser_login("bureau_s").await;
    let (status, html) = app.get_page(&admin_page, "/console/subsidies").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("异议处理中")
            && html.contains("有异议")
            && html.contains("X射线衍射仪 收入漏算一笔"),
        "{html}"
    );
    assert!(html.contains("许昌学院") && html.contains("已确认"));
    let objection = only_task(app, &w.admin).await;
    assert_eq!(objection["step"], "objection");
    let (status, html) = app
        .get_page(&admin_page, &format!("/console/tasks/{}", objection["id"]))
        .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("X射线衍射仪 收入漏算一笔") && html.contains("重新核算"),
        "{html}"
    );

    // Recompute without any change: the same figures, everyone asked again.
    let (status, body) = act(app, &w.admin, &objection, "return", "按当前数据重新核算").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "unit_confirm");
    let s = settlement(app, &w.admin, id).await;
    assert_eq!(s["computations"], 2);
    assert_eq!(figures(&s), first, "same inputs, same figures");
    assert_eq!(confirmation(&s, w.unit_a)["status"], "pending");
    assert_eq!(confirmation(&s, w.unit_b)["status"], "pending");

    // B objects to its grade; the grade is corrected and the settlement recomputed.
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/subsidy-settlements/{id}/objection"),
            Some(&w.owner_b),
            Some(json!({"reason": "本单位省级评价为良好"})),
        )
        .await;
    assert_eq!(status, 200);
    grade(app, &w.admin, w.unit_b, "good").await;
    let objection = only_task(app, &w.admin).await;
    let (status, _) = act(app, &w.admin, &objection, "return", "等级已更正，重新核算").await;
    assert_eq!(status, 200);
    let s = settlement(app, &w.admin, id).await;
    assert_eq!(s["computations"], 3);
    // 10,000.05 × 30% = 3,000.015 → 3,000.02; 20,000.00 × 30% = 6,000.00.
    let b = s["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit_id"] == w.unit_b)
        .unwrap()
        .clone();
    assert_eq!(b["grade"], "good");
    assert_eq!(b["total"], "9000.02");
    assert_eq!(s["total"], "39000.02");

    // A confirms by the API, B on its console page after the confirmation step.
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/subsidy-settlements/{id}/confirm"),
            Some(&w.owner_a),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let console_b = app.browser_login("owner_b").await;
    let (status, html) = app.get_page(&console_b, "/console/subsidies").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("本单位的补贴结算")
            && html.contains("核对明细并确认")
            && html.contains("9,000.02"),
        "{html}"
    );
    assert!(
        !html.contains("30,000.00"),
        "another unit's figures are not shown"
    );
    let page = format!("/console/subsidies/{id}/confirm");
    let (status, html) = app.get_page(&console_b, &page).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("气相色谱质谱联用仪")
            && html.contains("10,000.05")
            && html.contains("3,000.02")
            && html.contains("X射线衍射仪")
            && html.contains("6,000.00")
            && html.contains("9,000.02"),
        "{html}"
    );
    assert!(html.contains("确认本单位明细") && html.contains("提出异议"));
    let (status, _) = app
        .get_page(&app.browser_login("owner_a").await, &page)
        .await;
    assert_eq!(status, 200, "A's page exists too");
    let res = app
        .post_form(&console_b, &page, &page, &[("decision", "confirm")])
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("请再次确认") && html.contains("9,000.02") && html.contains("确认无误，提交"),
        "{html}"
    );
    assert_eq!(
        confirmation(&settlement(app, &w.admin, id).await, w.unit_b)["status"],
        "pending",
        "not yet decided"
    );
    let res = app
        .post_form(
            &console_b,
            &page,
            &page,
            &[("decision", "confirm"), ("confirmed", "1")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let s = settlement(app, &w.admin, id).await;
    assert_eq!(confirmation(&s, w.unit_b)["status"], "confirmed");
    assert_eq!(confirmation(&s, w.unit_b)["decided_by"], "测试owner_b");
    assert_eq!(s["status"], "review", "every unit confirmed");

    // The subsidy manager publishes.
    let review = only_task(app, &w.admin).await;
    assert_eq!(review["step"], "review");
    let (status, body) = act(app, &w.admin, &review, "approve", "同意下达").await;
    assert_eq!(status, 200, "{body}");
    let s = settlement(app, &w.admin, id).await;
    assert_eq!(s["status"], "published");
    assert_eq!(s["total"], "39000.02");
}

#[tokio::test]
async fn an_upheld_objection_stays_on_record_and_the_settlement_goes_on_to_review() {
    let w = world().await;
    let app = &w.app;
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/subsidy-settlements",
            Some(&w.starter),
            Some(json!({"year": 2025})),
        )
        .await;
    assert_eq!(status, 422, "nothing was redeemed in 2025: {body}");
    assert_eq!(body["error"]["code"], "nothing_to_settle");
    let (_, s) = app
        .api(
            "POST",
            "/api/v1/subsidy-settlements",
            Some(&w.starter),
            Some(json!({"year": 2026})),
        )
        .await;
    let id = s["id"].as_i64().unwrap();

    // A objects on its page: no reason is refused beside the field; then the confirmation step.
    let console_a = app.browser_login("owner_a").await;
    let page = format!("/console/subsidies/{id}/confirm");
    let res = app
        .post_form(
            &console_a,
            &page,
            &page,
            &[("decision", "object"), ("reason", "")],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("请写明异议理由"));
    let reason = "场发射扫描电子显微镜 的收入应为 130000.00";
    let res = app
        .post_form(
            &console_a,
            &page,
            &page,
            &[("decision", "object"), ("reason", reason)],
        )
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("请再次确认") && html.contains(reason) && html.contains("提交异议"));
    let res = app
        .post_form(
            &console_a,
            &page,
            &page,
            &[
                ("decision", "object"),
                ("reason", reason),
                ("confirmed", "1"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let s = settlement(app, &w.admin, id).await;
    assert_eq!(s["status"], "objection");
    assert_eq!(confirmation(&s, w.unit_a)["reason"], reason);
    // B's confirmation step is over: its task was closed with the objection.
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/subsidy-settlements/{id}/confirm"),
            Some(&w.owner_b),
            None,
        )
        .await;
    assert_eq!(status, 409);

    // The admin upholds the computation: on to review, the objection kept.
    let objection = only_task(app, &w.admin).await;
    let (status, body) = act(
        app,
        &w.admin,
        &objection,
        "approve",
        "收入以审核通过的兑付为准，维持原核算",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "review");
    let s = settlement(app, &w.admin, id).await;
    assert_eq!(s["status"], "review");
    assert_eq!(s["computations"], 1, "upholding does not recompute");
    assert_eq!(confirmation(&s, w.unit_a)["status"], "objected");
    let (_, inst) = app
        .api(
            "GET",
            &format!("/api/v1/workflow-instances/{}", s["instance_id"]),
            Some(&w.admin),
            None,
        )
        .await;
    let history = inst["history"].as_array().unwrap();
    assert!(history.iter().any(|h| h["comment"] == reason), "{inst}");
    assert!(
        history
            .iter()
            .any(|h| h["comment"] == "收入以审核通过的兑付为准，维持原核算")
    );
    let review = only_task(app, &w.admin).await;
    let (status, _) = act(app, &w.admin, &review, "approve", "同意下达").await;
    assert_eq!(status, 200);
    assert_eq!(settlement(app, &w.admin, id).await["status"], "published");
    let (_, html) = app.get_page(&console_a, &page).await;
    assert!(
        html.contains("结算已下达") && html.contains("有异议") && html.contains(reason),
        "{html}"
    );
}

/// A unit whose nine instruments earn 225,000.03 of subsidy before the unit cap (one exactly
/// at the instrument cap, one above it, one x.xx5 rounding half-up): the amounts are scaled
/// to 200,000.00 exactly, the missing fen going to the largest remainders — on both databases.
#[tokio::test]
async fn the_unit_cap_scales_nine_instruments_to_200000_exactly() {
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    app.create_user("bureau_c", "platform_admin").await;
    let admin = app.token("bureau_c").await;
    let (unit, _) = managing_unit(&app, "owner_c", "郑州大学", 211).await;
    app.create_user("buyer_c", "user").await;
    let buyer = app.token("buyer_c").await;
    let buyer_unit =
        certified_unit(&app, &buyer, "许昌封顶测试企业", 212, "user", "high_tech").await;
    // Incomes in fen and the expected subsidy in yuan.
    let cases = [
        (10_000_000, "26666.66"), // 100,000.00 × 30% = 30,000.00, exactly the instrument cap
        (12_000_000, "26666.66"), // 36,000.00 → capped at 30,000.00
        (9_000_001, "24000.00"),  // 27,000.003 → 27,000.00
        (8_000_005, "21333.35"),  // 24,000.015 → 24,000.02 (half-up)
        (7_000_000, "18666.67"),
        (6_000_000, "16000.00"),
        (10_000_000, "26666.66"),
        (5_000_003, "13333.34"), // 15,000.009 → 15,000.01
        (10_000_000, "26666.66"),
    ];
    let mut ids = Vec::new();
    for (n, (fen, _)) in cases.iter().enumerate() {
        let id = instrument(&app, unit, &format!("封顶测试仪器{n}"), "M1").await;
        income(&app, id, unit, buyer_unit, *fen, 100 + n as i64).await;
        ids.push(id);
    }
    grade(&app, &admin, unit, "good").await;
    let (status, s) = app
        .api(
            "POST",
            "/api/v1/subsidy-settlements",
            Some(&admin),
            Some(json!({"year": 2026})),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    assert_eq!(s["total"], "200000.00");
    let u = &s["units"][0];
    assert_eq!(
        (u["unit_id"].as_i64(), u["total"].as_str()),
        (Some(unit), Some("200000.00"))
    );
    let got: Vec<(i64, String)> = u["instruments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["instrument_id"].as_i64().unwrap(),
                l["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(i64, String)> = ids
        .iter()
        .zip(cases.iter())
        .map(|(id, (_, yuan))| (*id, yuan.to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(u["instruments"][3]["income"], "80000.05");
}

#[tokio::test]
async fn two_concurrent_settlements_for_one_year_give_one_and_its_starter_never_reviews_it() {
    let w = world().await;
    let app = &w.app;
    let post = || {
        app.api(
            "POST",
            "/api/v1/subsidy-settlements",
            Some(&w.starter),
            Some(json!({"year": 2026})),
        )
    };
    let ((a, body_a), (b, body_b)) = tokio::join!(post(), post());
    let mut got = [a, b];
    got.sort();
    assert_eq!(got, [201, 409], "{body_a} {body_b}");
    let (created, refused) = if a == 201 {
        (&body_a, &body_b)
    } else {
        (&body_b, &body_a)
    };
    assert_eq!(refused["error"]["code"], "settlement_exists");
    let live: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM settlements WHERE year = 2026 AND status <> 'cancelled'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(live, 1);

    // The units confirm; the review goes to the other subsidy manager, never to the starter.
    for owner in [&w.owner_a, &w.owner_b] {
        let t = only_task(app, owner).await;
        let (status, body) = act(app, owner, &t, "approve", "").await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, tasks) = app
        .api("GET", "/api/v1/tasks", Some(&w.starter), None)
        .await;
    assert!(
        tasks["items"].as_array().unwrap().is_empty(),
        "the applicant got a task on their own settlement: {tasks}"
    );
    let review = only_task(app, &w.admin).await;
    assert_eq!(review["step"], "review");

    // A cancelled settlement does not count: the year can be settled again.
    let (status, body) = act(app, &w.admin, &review, "reject", "数据有误，作废").await;
    assert_eq!(status, 200, "{body}");
    let s = settlement(app, &w.admin, created["id"].as_i64().unwrap()).await;
    assert_eq!(s["status"], "cancelled");
    let (status, body) = post().await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_published_evaluation_grade_is_changed_only_with_a_reason_and_every_change_is_logged() {
    let w = world().await;
    let app = &w.app;
    let applicant: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'owner_a'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO evaluations (unit_id, year, self_report, indicators, status, grade, applicant_id, created_at) \
         VALUES ($1, 2026, '自评', '{}', 'published', 'good', $2, 0)",
    )
    .bind(w.unit_a)
    .bind(applicant)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let path = format!("/api/v1/units/{}/grades/2026", w.unit_a);
    let (status, body) = app
        .api(
            "PUT",
            &path,
            Some(&w.admin),
            Some(json!({"grade": "excellent", "reason": "复议"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "grade_published");
    let (status, body) = app
        .api(
            "PUT",
            &path,
            Some(&w.admin),
            Some(json!({"grade": "excellent", "override_reason": "省厅复核结果更正"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let changes: Vec<(Option<String>, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT old_grade, new_grade, override_reason, changed_by FROM grade_changes WHERE unit_id = $1 AND year = 2026 ORDER BY id",
    )
    .bind(w.unit_a)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let admin: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'bureau_s'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        changes,
        vec![
            (None, "good".into(), String::new(), Some(admin)),
            (
                Some("good".into()),
                "excellent".into(),
                "省厅复核结果更正".into(),
                Some(admin)
            ),
        ],
        "the world's first grade and the override"
    );
}
