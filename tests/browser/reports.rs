//! 信息上报 in a browser: a unit manager builds the quarter's instrument batch, sees the
//! flagged record, fixes it, regenerates and submits the batch; the platform admin approves it
//! in 待办任务; the upstream platform (a real HTTP server started here) receives it.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Json, extract::State, http::HeaderMap};
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::{Browser, journeys::body_text, submit, submit_confirmed};

/// What the upstream received: the idempotency key and the body of every push.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

async fn upstream(
    State(got): State<Received>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let ids: Vec<Value> = body["records"]
        .as_array()
        .map(|r| r.iter().map(|x| x["innerId"].clone()).collect())
        .unwrap_or_default();
    got.lock().unwrap().push((key, body));
    Json(json!({"accepted": ids, "rejected": []}))
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run by .ci/run"]
async fn a_unit_fixes_a_flagged_record_submits_the_platform_approves_and_the_upstream_receives_it()
{
    let got: Received = Arc::default();
    let router = axum::Router::new()
        .route("/national/instruments", axum::routing::post(upstream))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/national", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let app = crate::common::spawn_app_with(&[
        ("LABSHARE_NOW", "2026-12-01T08:00:00+08:00"),
        ("LABSHARE_UPSTREAM_URL", &url),
        ("LABSHARE_UPSTREAM_TOKEN", "journey-secret"),
        ("LABSHARE_UPSTREAM_POLL_MS", "50"),
        ("LABSHARE_UPSTREAM_BACKOFF_MS", "100"),
    ])
    .await;
    app.create_user("lab_mgr", "unit_manager").await;
    app.create_user("bureau_r", "platform_admin").await;
    let token = app.token("lab_mgr").await;
    let (status, unit) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&token),
            Some(crate::common::unit_body("许昌上报测试大学", 78, "managing")),
        )
        .await;
    assert_eq!(status, 201, "{unit}");
    let unit = unit["id"].as_i64().unwrap();
    sqlx::query("UPDATE units SET certification_status = 'certified' WHERE id = $1")
        .bind(unit)
        .execute(&app.db.pool)
        .await
        .unwrap();
    // An approved instrument of 186 万元 that lacks its English name.
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, category_code, value_fen, review_status, joined_on, \
         national_json, created_at, updated_at) VALUES ($1, '场发射扫描电子显微镜', '990000', 186000000, \
         'approved', '2026-11-20', $2, $3, $3) RETURNING id",
    )
    .bind(unit)
    .bind(json!({"technical": "分辨率 1.0 nm", "functions": "形貌观察"}).to_string())
    .bind(app.now())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();

    let b = Browser::start().await;
    crate::journeys::login(&b, &app, "lab_mgr").await;
    b.client.goto(&app.url("/console/reports")).await.unwrap();
    let text = body_text(&b).await;
    assert!(text.contains("场发射扫描电子显微镜"), "owed: {text}");
    submit(&b, "//button[contains(., '生成批次')]").await;
    let text = body_text(&b).await;
    assert!(text.contains("缺少英文名称"), "{text}");
    b.screenshot("report-problems").await;

    // Fix the flagged record from the problem list, then regenerate the batch.
    submit(&b, "//a[contains(., '补充国家字段')]").await;
    let field = b.client.find(Locator::Css("#f-name_en")).await.unwrap();
    field
        .send_keys("Field emission scanning electron microscope")
        .await
        .unwrap();
    submit(
        &b,
        "//form[contains(@action, '/national')]//button[@type='submit']",
    )
    .await;
    assert!(body_text(&b).await.contains("国家上报补充信息已保存"));
    submit(&b, "//button[contains(., '按最新数据重新生成')]").await;
    let text = body_text(&b).await;
    assert!(text.contains("没有问题，可以提交"), "{text}");
    submit_confirmed(&b, "//button[contains(., '提交平台审核')]").await;
    assert!(body_text(&b).await.contains("已提交平台审核"));
    crate::journeys::logout(&b).await;

    // The platform approves it in 待办任务.
    crate::journeys::login(&b, &app, "bureau_r").await;
    b.client.goto(&app.url("/console/tasks")).await.unwrap();
    assert!(body_text(&b).await.contains("信息上报"));
    submit(&b, "//a[contains(., '办理')]").await;
    b.client
        .find(Locator::Css("input[name=action][value=approve]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    crate::journeys::fill(&b, "#t-comment", "数据完整，同意上报").await;
    submit(
        &b,
        "//form[starts-with(@action, '/console/tasks/')]//button[@type='submit']",
    )
    .await;

    // The upstream receives the batch once, with the fixed record.
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the upstream never received the batch"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let batch: i64 = sqlx::query_scalar("SELECT id FROM report_batches")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    {
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, format!("labshare-report-{batch}"));
        let record = &got[0].1["records"][0];
        assert_eq!(record["innerId"], id.to_string());
        assert_eq!(
            record["ename"],
            "Field emission scanning electron microscope"
        );
        assert_eq!(got[0].1["insCode"], crate::common::credit_code(78));
    }
    // The batch page shows it pushed and accepted.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        b.client
            .goto(&app.url(&format!("/console/reports/{batch}")))
            .await
            .unwrap();
        let text = body_text(&b).await;
        if text.contains("已推送") && text.contains("已接收") {
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.screenshot("report-pushed").await;
    b.close().await;
}
