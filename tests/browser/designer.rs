//! Issue 18: an administrator who never sees YAML adds a 复核 step after 平台审核 in
//! `instrument_onboarding` with another approver role and a 3-working-day deadline, and
//! publishes; the next instrument passes both steps, the running one keeps its version.

use fantoccini::Locator;
use serde_json::json;

use crate::{
    Browser,
    common::{TestApp, spawn_app_with, unit_body},
    journeys::fill,
};

async fn select(b: &Browser, css: &str, value: &str) {
    b.client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("{css} = {value}: {e}"));
}

async fn submitted_instrument(app: &TestApp, token: &str, unit: i64, name: &str) -> i64 {
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(token),
            Some(json!({
                "unit_id": unit, "name": name, "model": "Sigma 300", "manufacturer": "蔡司",
                "category_code": "010100", "department": "分析测试中心", "value": "1250000.00",
                "open_to_public": true, "city": "许昌市", "customs_supervised": false,
                "usage_status": "正常", "description": "分辨率 1.2 nm", "location": "实验楼 101",
                "fee_standard": "300 元/小时", "service_content": "形貌观察",
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();
    let (status, b) = app
        .api(
            "POST",
            &format!("/api/v1/instruments/{id}/submit"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 202, "{b}");
    id
}

async fn open_task(app: &TestApp, instrument: i64) -> (i64, String, i64) {
    sqlx::query_as(
        "SELECT t.id, t.state, i.version FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id \
         WHERE i.subject_type = 'instrument' AND i.subject_id = $1 AND t.status = 'open'",
    )
    .bind(instrument)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run by .ci/run"]
async fn an_administrator_adds_a_recheck_step_in_the_designer_without_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows");
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let app = spawn_app_with(&[("LABSHARE_WORKFLOWS_DIR", dir.path().to_str().unwrap())]).await;
    app.create_user("wfadmin", "system_admin").await;
    app.create_user("plat", "platform_admin").await;
    app.create_user("imgr", "unit_manager").await;
    let mgr = app.token("imgr").await;
    let (_, unit) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&mgr),
            Some(unit_body("许昌浏览器单位", 71, "managing")),
        )
        .await;
    let unit = unit["id"].as_i64().unwrap();
    let running = submitted_instrument(&app, &mgr, unit, "已在审核的电镜").await;

    let b = Browser::start().await;
    b.client.goto(&app.url("/login")).await.unwrap();
    fill(&b, "#f-username", "wfadmin").await;
    fill(&b, "#f-password", crate::common::PASSWORD).await;
    crate::submit(&b, "//form[@action='/login']//button").await;
    crate::submit(&b, "//nav[@class='console-nav']//a[.='流程定义']").await;
    crate::submit(&b, "//a[@href='/console/workflows/instrument_onboarding']").await;
    crate::submit(&b, "//nav[@class='tabs']//a[.='设计器']").await;
    crate::submit(&b, "//button[@value='add:0']").await;
    fill(&b, "#s1-title", "复核").await;
    fill(&b, "#s1-name", "recheck").await;
    select(&b, "#s1-who", "role").await;
    select(&b, "#s1-wr", "system_admin").await;
    fill(&b, "#s1-dln", "3").await;
    select(&b, "#s1-dlu", "working days").await;
    crate::submit(&b, "//button[@value='check']").await;
    let text = crate::journeys::body_text(&b).await;
    assert!(
        text.contains("校验通过") && text.contains("第 2 步：复核"),
        "{text}"
    );
    b.screenshot("workflow-designer").await;
    crate::submit_confirmed(&b, "//button[@value='publish']").await;
    let text = crate::journeys::body_text(&b).await;
    assert!(text.contains("已发布版本 2"), "{text}");
    assert!(
        !text.contains("assignees:"),
        "the administrator never sees YAML: {text}"
    );
    b.close().await;

    // The next instrument passes 平台审核 and then 复核 (by the system admin's role).
    let next = submitted_instrument(&app, &mgr, unit, "新提交的电镜").await;
    let (task, state, version) = open_task(&app, next).await;
    assert_eq!((state.as_str(), version), ("review", 2));
    let plat = app.token("plat").await;
    let (status, out) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{task}/actions"),
            Some(&plat),
            Some(json!({"action": "approve"})),
        )
        .await;
    assert_eq!(
        (status, out["state"].as_str()),
        (200, Some("recheck")),
        "{out}"
    );
    let (task, _, _) = open_task(&app, next).await;
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{task}/actions"),
            Some(&plat),
            Some(json!({"action": "approve"})),
        )
        .await;
    assert_eq!(status, 403, "a platform admin does not hold the 复核 role");
    let sys = app.token("wfadmin").await;
    let (status, out) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{task}/actions"),
            Some(&sys),
            Some(json!({"action": "approve"})),
        )
        .await;
    assert_eq!(
        (status, out["state"].as_str()),
        (200, Some("approved")),
        "{out}"
    );

    // The running one keeps version 1: one approval finishes it.
    let (task, state, version) = open_task(&app, running).await;
    assert_eq!((state.as_str(), version), ("review", 1));
    let (status, out) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{task}/actions"),
            Some(&plat),
            Some(json!({"action": "approve"})),
        )
        .await;
    assert_eq!(
        (status, out["state"].as_str()),
        (200, Some("approved")),
        "{out}"
    );
}
