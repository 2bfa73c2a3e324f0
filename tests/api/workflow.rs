//! The approval engine end to end: definitions, unit certification, decisions with CAS,
//! return / withdraw / transfer / add signer, countersign and quorum, deadlines, versions,
//! the audit chain, and malformed YAML.

use serde_json::{Value, json};

use crate::common::{TestApp, spawn_app, spawn_app_with, unit_body};
use labshare::workflow::{self, audit, def};

fn workflows_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows")
}

/// A unit manager with a unit, and a platform admin; returns (manager token, admin token, unit id).
async fn unit_and_reviewer(app: &TestApp, n: u32, dishonest: bool) -> (String, String, i64) {
    app.create_user(&format!("mgr{n}"), "unit_manager").await;
    app.create_user(&format!("rev{n}"), "platform_admin").await;
    let mgr = app.token(&format!("mgr{n}")).await;
    let rev = app.token(&format!("rev{n}")).await;
    let mut body = unit_body(&format!("许昌测试单位{n}"), n, "managing");
    body["dishonest"] = json!(dishonest);
    let (status, unit) = app
        .api("POST", "/api/v1/units", Some(&mgr), Some(body))
        .await;
    assert_eq!(status, 201, "{unit}");
    (mgr, rev, unit["id"].as_i64().unwrap())
}

/// A quorum variant of `expert_evaluation`: two approvals of the pool's experts suffice, with
/// a guard on the trimmed mean of the scores.
const QUORUM_EVALUATION: &str = r#"
key: expert_evaluation
title: 绩效评价（多数通过）
subject: evaluation
initial: expert_review
states:
  expert_review:
    title: 专家评审
    task:
      assignees: { permission: evaluation.review }
      mode: { min_approvals: 2 }
      actions: [approve, reject, withdraw]
      on:
        approve:
          to: grading
          guard: "scores.count == 0 or scores.trimmed_mean >= 60"
          message: "专家评分去极值平均低于 60 分"
        reject: rejected
        withdraw: rejected
      deadline: 10 working days
  grading:
    title: 平台定级
    task:
      assignees: { permission: evaluation.manage }
      actions: [approve, reject]
      on:
        approve:
          to: finalised
          guard: "form.grade in ['excellent', 'good', 'qualified', 'unqualified']"
        reject: rejected
      deadline: 5 working days
  finalised:
    title: 已定级
    terminal: true
  rejected:
    title: 未通过
    terminal: true
"#;

/// A settlement row to run `subsidy_settlement` on, with one unit earning approved voucher
/// income whose manager (`smgr`, returned as a token) confirms its lines first.
async fn settlement_row(app: &TestApp, by: i64) -> (i64, String) {
    let mgr = app.create_user("smgr", "unit_manager").await;
    let unit: i64 = sqlx::query_scalar(
        "INSERT INTO units (name, kind, nature, credit_code, contact_name, contact_mobile, enterprise_type, created_at, updated_at) \
         VALUES ('结算测试大学', 'managing', '高校', $1, '联系人', '13800000000', 'other', 0, 0) RETURNING id",
    )
    .bind(crate::common::credit_code(880))
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO unit_members (unit_id, user_id, role, created_at) VALUES ($1, $2, 'manager', 0)")
        .bind(unit)
        .bind(mgr)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let instrument: i64 = sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, category_code, value_fen, review_status, created_at, updated_at) \
         VALUES ($1, '结算测试仪器', '010100', 100000000, 'approved', 0, 0) RETURNING id",
    )
    .bind(unit)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let booking: i64 = sqlx::query_scalar(
        "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, status, live, voucher_fen, voucher_year, created_at, updated_at) \
         VALUES ($1, $2, $3, 1780000000, 1780003600, '测试', 'completed', 0, 100000, 2026, 0, 0) RETURNING id",
    )
    .bind(instrument)
    .bind(unit)
    .bind(mgr)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO service_records (booking_id, order_no, instrument_id, managing_unit_id, user_unit_id, applicant_name, amount_fen, voucher_fen, \
         service_hours_x100, started_at, ended_at, completed_at, year, created_at) VALUES ($1, 'FWWF000001', $2, $3, $3, '张三', 300000, 100000, 100, 0, 0, 0, 2026, 0)",
    )
    .bind(booking)
    .bind(instrument)
    .bind(unit)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let rid: i64 = sqlx::query_scalar(
        "INSERT INTO redemptions (managing_unit_id, status, total_fen, created_by, created_at) VALUES ($1, 'approved', 100000, $2, 0) RETURNING id",
    )
    .bind(unit)
    .bind(mgr)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO redemption_items (redemption_id, booking_id, voucher_fen) VALUES ($1, $2, 100000)")
        .bind(rid)
        .bind(booking)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let id = sqlx::query_scalar(
        "INSERT INTO settlements (year, policy_version_id, total_fen, created_by, created_at) \
         VALUES (2026, (SELECT MAX(id) FROM policy_versions), 0, $1, 0) RETURNING id",
    )
    .bind(by)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    (id, app.token("smgr").await)
}

/// A voucher application row (with a fresh user unit) to run `voucher_application` on.
async fn voucher_application_row(app: &TestApp, applicant: i64, n: u32) -> i64 {
    let unit: i64 = sqlx::query_scalar(
        "INSERT INTO units (name, kind, nature, credit_code, contact_name, contact_mobile, enterprise_type, created_at, updated_at) \
         VALUES ($1, 'user', '企业', $2, '联系人', '13800000000', 'tech_sme', 0, 0) RETURNING id",
    )
    .bind(format!("申领测试企业{n}"))
    .bind(crate::common::credit_code(900 + n))
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    sqlx::query_scalar(
        "INSERT INTO voucher_applications (unit_id, year, applicant_id, created_at, updated_at) VALUES ($1, 2026, $2, 0, 0) RETURNING id",
    )
    .bind(unit)
    .bind(applicant)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

async fn open_tasks(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = app.api("GET", "/api/v1/tasks", Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

async fn act(app: &TestApp, token: &str, task: i64, action: &str, data: Value) -> (u16, Value) {
    app.api(
        "POST",
        &format!("/api/v1/tasks/{task}/actions"),
        Some(token),
        Some(json!({"action": action, "comment": "意见", "data": data})),
    )
    .await
}

async fn unit_status(app: &TestApp, token: &str, id: i64) -> Value {
    app.api("GET", &format!("/api/v1/units/{id}"), Some(token), None)
        .await
        .1
}

#[test]
fn every_workflow_file_passes_the_checks() {
    let defs = def::load_dir(
        &workflows_dir(),
        &def::builtin_roles(),
        &labshare::server::workflow_catalog(),
    )
    .unwrap_or_else(|p| panic!("{p:?}"));
    let keys: Vec<_> = defs.iter().map(|d| d.key.as_str()).collect();
    for k in [
        "unit_certification",
        "expert_certification",
        "instrument_onboarding",
        "platform_onboarding",
        "service_onboarding",
        "achievement_onboarding",
        "service_record_report",
        "expert_evaluation",
        "voucher_application",
        "voucher_redemption",
        "subsidy_settlement",
    ] {
        assert!(keys.contains(&k), "missing {k}");
    }
}

#[test]
fn check_reports_errors_with_file_and_line() {
    let src = std::fs::read_to_string(workflows_dir().join("unit_certification.yaml")).unwrap();
    let bad = src
        .replace("reject: rejected", "reject: nowhere")
        .replace("deadline: 5 working days", "deadline: soon");
    let problems = def::parse(
        "unit_certification.yaml",
        &bad,
        &def::builtin_roles(),
        &labshare::server::workflow_catalog(),
    )
    .unwrap_err();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let line_of = |needle: &str| bad.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(
        text.contains(&format!(
            "unit_certification.yaml:{}: 未知的状态 `nowhere`",
            line_of("reject: nowhere")
        )),
        "{text:?}"
    );
    assert!(
        text.iter().any(|t| t.starts_with(&format!(
            "unit_certification.yaml:{}:",
            line_of("deadline: soon")
        ))),
        "{text:?}"
    );
    let unknown_hook = src.replace("hook: notify", "hook: send_fax");
    let p = def::parse(
        "unit_certification.yaml",
        &unknown_hook,
        &def::builtin_roles(),
        &labshare::server::workflow_catalog(),
    )
    .unwrap_err();
    assert!(p[0].message.contains("未知的钩子 `send_fax`"), "{p:?}");
}

/// Mutations of a real file (deleted, duplicated and truncated spans, swapped lines) are
/// reported as problems and never panic.
#[test]
fn malformed_yaml_never_panics() {
    let src = std::fs::read_to_string(workflows_dir().join("expert_evaluation.yaml")).unwrap();
    let bytes = src.as_bytes();
    let mut seed: u64 = 0x2545F4914F6CDD1D;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let roles = def::builtin_roles();
    let mut refused = 0;
    for _ in 0..400 {
        let a = (next() as usize) % bytes.len();
        let b = (a + (next() as usize) % 40).min(bytes.len());
        let mut m: Vec<u8> = match next() % 4 {
            0 => [&bytes[..a], &bytes[b..]].concat(),
            1 => [&bytes[..b], &bytes[a..]].concat(),
            2 => bytes[..a].to_vec(),
            _ => {
                let mut lines: Vec<&str> = src.lines().collect();
                let (i, j) = (
                    (next() as usize) % lines.len(),
                    (next() as usize) % lines.len(),
                );
                lines.swap(i, j);
                lines.join("\n").into_bytes()
            }
        };
        m.retain(|_| true);
        let text = String::from_utf8_lossy(&m).to_string();
        if let Err(p) = def::parse(
            "expert_evaluation.yaml",
            &text,
            &roles,
            &labshare::server::workflow_catalog(),
        ) {
            assert!(!p.is_empty() && p.iter().all(|p| p.line >= 1));
            refused += 1;
        }
    }
    assert!(refused > 100, "only {refused} mutations were refused");
}

#[tokio::test]
async fn unit_certification_is_approved_by_a_platform_admin() {
    let app = spawn_app().await;
    let (mgr, rev, unit) = unit_and_reviewer(&app, 1, false).await;
    let (status, started) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/certification"),
            Some(&mgr),
            None,
        )
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["state"], "review");
    assert_eq!(
        unit_status(&app, &mgr, unit).await["certification_status"],
        "pending"
    );
    // Submitting twice is refused while the first is running.
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/certification"),
            Some(&mgr),
            None,
        )
        .await;
    assert_eq!(status, 409);
    // The applicant has no task; the reviewer has one.
    assert!(open_tasks(&app, &mgr).await.is_empty());
    let tasks = open_tasks(&app, &rev).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["workflow"], "unit_certification");
    assert_eq!(tasks[0]["subject"], json!({"type": "unit", "id": unit}));
    assert!(tasks[0]["due_at"].is_string());
    let task = tasks[0]["id"].as_i64().unwrap();
    // Another user's attempt is 403 not_assignee.
    let (status, body) = act(&app, &mgr, task, "approve", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("not_assignee"))
    );
    let (status, out) = act(&app, &rev, task, "approve", json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["state"], "certified");
    assert_eq!(out["status"], "completed");
    let u = unit_status(&app, &mgr, unit).await;
    assert_eq!(u["certification_status"], "certified");
    assert_eq!(
        u["joined_on"],
        json!(app.state.clock.today().format("%Y-%m-%d").to_string())
    );
    let (status, inst) = app
        .api(
            "GET",
            &format!("/api/v1/workflow-instances/{}", out["instance_id"]),
            Some(&mgr),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(inst["status"], "completed");
    assert_eq!(inst["version"], 1);
    let actions: Vec<_> = inst["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["start", "approve"]);
    // Acting again on the closed task is 409.
    let (status, body) = act(&app, &rev, task, "approve", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("task_closed"))
    );
    assert_eq!(
        audit::verify(&app.db).await.unwrap(),
        audit::Verdict::Intact { entries: 2 }
    );
}

#[tokio::test]
async fn a_dishonest_unit_cannot_apply_and_rejection_marks_the_unit() {
    let app = spawn_app().await;
    let (mgr, _, bad) = unit_and_reviewer(&app, 2, true).await;
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/units/{bad}/certification"),
            Some(&mgr),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "guard_refused");
    assert!(body["error"]["message"].as_str().unwrap().contains("失信"));
    assert_eq!(
        unit_status(&app, &mgr, bad).await["certification_status"],
        "draft"
    );
    // Someone else's unit: not allowed.
    app.create_user("other", "unit_manager").await;
    let other = app.token("other").await;
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/units/{bad}/certification"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(status, 403);

    let (mgr3, rev3, unit) = unit_and_reviewer(&app, 3, false).await;
    app.api(
        "POST",
        &format!("/api/v1/units/{unit}/certification"),
        Some(&mgr3),
        None,
    )
    .await;
    let task = open_tasks(&app, &rev3).await[0]["id"].as_i64().unwrap();
    // Flagged dishonest while in review: the approve guard refuses.
    sqlx::query("UPDATE units SET dishonest = 1 WHERE id = $1")
        .bind(unit)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (status, body) = act(&app, &rev3, task, "approve", json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("不能通过认证")
    );
    let (status, out) = act(&app, &rev3, task, "reject", json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["state"], "rejected");
    assert_eq!(
        unit_status(&app, &mgr3, unit).await["certification_status"],
        "rejected"
    );
}

#[tokio::test]
async fn two_concurrent_decisions_give_one_transition_and_one_task_closed() {
    let app = spawn_app().await;
    let (mgr, rev, unit) = unit_and_reviewer(&app, 4, false).await;
    app.api(
        "POST",
        &format!("/api/v1/units/{unit}/certification"),
        Some(&mgr),
        None,
    )
    .await;
    let task = open_tasks(&app, &rev).await[0]["id"].as_i64().unwrap();
    let (a, b) = tokio::join!(
        act(&app, &rev, task, "approve", json!({})),
        act(&app, &rev, task, "reject", json!({}))
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let closed = if a.0 == 409 { &a.1 } else { &b.1 };
    assert_eq!(closed["error"]["code"], "task_closed");
    let (transitions,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_audit WHERE action IN ('approve', 'reject')",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(transitions, 1);
    assert!(matches!(
        audit::verify(&app.db).await.unwrap(),
        audit::Verdict::Intact { .. }
    ));
}

#[tokio::test]
async fn two_reviewers_deciding_sibling_tasks_at_once_give_one_transition() {
    let app = spawn_app().await;
    let (mgr, rev, unit) = unit_and_reviewer(&app, 10, false).await;
    app.create_user("rev_sib", "platform_admin").await;
    let sib = app.token("rev_sib").await;
    app.api(
        "POST",
        &format!("/api/v1/units/{unit}/certification"),
        Some(&mgr),
        None,
    )
    .await;
    let t1 = open_tasks(&app, &rev).await[0]["id"].as_i64().unwrap();
    let t2 = open_tasks(&app, &sib).await[0]["id"].as_i64().unwrap();
    let (a, b) = tokio::join!(
        act(&app, &rev, t1, "approve", json!({})),
        act(&app, &sib, t2, "reject", json!({}))
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let winner = if a.0 == 200 { &a.1 } else { &b.1 };
    let expected = if a.0 == 200 { "certified" } else { "rejected" };
    assert_eq!(winner["state"], expected);
    assert_eq!(
        unit_status(&app, &mgr, unit).await["certification_status"],
        expected
    );
    assert!(matches!(
        audit::verify(&app.db).await.unwrap(),
        audit::Verdict::Intact { entries: 2 }
    ));
}

#[tokio::test]
async fn return_resubmit_transfer_add_signer_withdraw_and_recusal() {
    let app = spawn_app().await;
    let (mgr, rev, unit) = unit_and_reviewer(&app, 5, false).await;
    app.create_user("rev_b", "platform_admin").await;
    let rev_b = app.token("rev_b").await;
    // A platform admin who belongs to the unit is never its reviewer (回避).
    let insider = app.create_user("insider", "platform_admin").await;
    let insider_token = app.token("insider").await;
    sqlx::query("INSERT INTO unit_members (unit_id, user_id, role, created_at) VALUES ($1, $2, 'member', 0)")
        .bind(unit).bind(insider).execute(&app.db.pool).await.unwrap();

    let (_, started) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/certification"),
            Some(&mgr),
            None,
        )
        .await;
    let instance = started["instance_id"].as_i64().unwrap();
    assert!(
        open_tasks(&app, &insider_token).await.is_empty(),
        "an insider got a task"
    );
    assert_eq!(
        open_tasks(&app, &rev_b).await.len(),
        1,
        "any-mode: every reviewer gets a task"
    );
    let task = open_tasks(&app, &rev).await[0]["id"].as_i64().unwrap();
    // Transfer to an insider is refused; to nobody too.
    let (status, body) = act(&app, &rev, task, "transfer", json!({"user": "insider"})).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["fields"]["user"]
            .as_str()
            .unwrap()
            .contains("回避")
    );
    let (status, _) = act(&app, &rev, task, "transfer", json!({"user": "nobody"})).await;
    assert_eq!(status, 422);
    // Return (退回) to the applicant, who resubmits.
    let (status, out) = act(&app, &rev, task, "return", json!({})).await;
    assert_eq!((status, out["state"].as_str()), (200, Some("revise")));
    assert!(
        open_tasks(&app, &rev_b).await.is_empty(),
        "the other reviewer's task closes"
    );
    assert_eq!(
        unit_status(&app, &mgr, unit).await["certification_status"],
        "draft"
    );
    let revise = open_tasks(&app, &mgr).await;
    assert_eq!(revise[0]["step"], "revise");
    let (status, out) = act(
        &app,
        &mgr,
        revise[0]["id"].as_i64().unwrap(),
        "approve",
        json!({}),
    )
    .await;
    assert_eq!((status, out["state"].as_str()), (200, Some("review")));
    // Transfer (转办) from rev to a new reviewer; add signer (加签).
    // A transfer or an added signer must satisfy the step's rule (unit.review here).
    app.create_user("rev_c", "platform_admin").await;
    let rev_c = app.token("rev_c").await;
    let task = open_tasks(&app, &rev).await[0]["id"].as_i64().unwrap();
    let (status, body) = act(&app, &rev, task, "transfer", json!({"user": "rev_c"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(open_tasks(&app, &rev).await.is_empty());
    let c_task = open_tasks(&app, &rev_c).await[0]["id"].as_i64().unwrap();
    let (status, _) = act(&app, &rev_c, c_task, "add_signer", json!({"user": "rev5"})).await;
    assert_eq!(status, 200);
    assert_eq!(open_tasks(&app, &rev).await.len(), 1);
    let (status, _) = act(&app, &rev_c, c_task, "comment", json!({})).await;
    assert_eq!(status, 200);
    // Withdraw (撤回) while nobody has decided in this step.
    let (status, out) = app
        .api(
            "POST",
            &format!("/api/v1/workflow-instances/{instance}/withdraw"),
            Some(&mgr),
            Some(json!({"comment": "材料有误"})),
        )
        .await;
    assert_eq!(
        (status, out["state"].as_str()),
        (200, Some("withdrawn")),
        "{out}"
    );
    assert!(open_tasks(&app, &rev).await.is_empty() && open_tasks(&app, &rev_c).await.is_empty());
    assert_eq!(
        unit_status(&app, &mgr, unit).await["certification_status"],
        "draft"
    );
    let (_, inst) = app
        .api(
            "GET",
            &format!("/api/v1/workflow-instances/{instance}"),
            Some(&mgr),
            None,
        )
        .await;
    let actions: Vec<_> = inst["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions,
        [
            "start",
            "return",
            "approve",
            "transfer",
            "add_signer",
            "comment",
            "withdraw"
        ]
    );
    let kinds: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT kind FROM workflow_events ORDER BY kind")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    let kinds: Vec<_> = kinds.into_iter().map(|k| k.0).collect();
    for k in ["decided", "returned", "task_assigned", "withdrawn"] {
        assert!(kinds.contains(&k.to_string()), "{kinds:?}");
    }
}

#[tokio::test]
async fn countersign_quorum_and_deadline_actions() {
    // A copy of the definitions: this test publishes its own variant of one.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(workflows_dir()).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let app = spawn_app_with(&[("LABSHARE_WORKFLOWS_DIR", dir.path().to_str().unwrap())]).await;
    let admin = app.create_user("padm", "platform_admin").await;
    let pa = app.token("padm").await;
    app.create_user("padm2", "platform_admin").await;
    let pa2 = app.token("padm2").await;
    // 会签 (all): the unit confirms, then both platform admins must approve the review. A
    // third one starts it: as the applicant, it gets no task (职责分离).
    let starter = app.create_user("padm_start", "platform_admin").await;
    let (settlement, smgr) = settlement_row(&app, admin).await;
    let s = app
        .state
        .engine
        .start(
            "subsidy_settlement",
            "subsidy_settlement",
            settlement,
            starter,
            json!({}),
        )
        .await
        .unwrap();
    let t0 = open_tasks(&app, &smgr).await[0]["id"].as_i64().unwrap();
    let (_, out) = act(&app, &smgr, t0, "approve", json!({})).await;
    assert_eq!(out["state"], "review");
    let t1 = open_tasks(&app, &pa).await[0]["id"].as_i64().unwrap();
    let (_, out) = act(&app, &pa, t1, "approve", json!({})).await;
    assert_eq!(out["state"], "review");
    let t2 = open_tasks(&app, &pa2).await[0]["id"].as_i64().unwrap();
    let (_, out) = act(&app, &pa2, t2, "approve", json!({})).await;
    assert_eq!(
        (out["state"].as_str(), out["instance_id"].as_i64()),
        (Some("published"), Some(s.instance_id))
    );

    // Quorum: two of three experts, with a score guard on the trimmed mean.
    let mut experts = vec![];
    for i in 0..3 {
        app.create_user(&format!("ex{i}"), "expert").await;
        experts.push(app.token(&format!("ex{i}")).await);
    }
    let mgr = app.create_user("evmgr", "unit_manager").await;
    let mgr_token = app.token("evmgr").await;
    // An administrator's own variant of the evaluation flow: any two of the experts decide.
    app.state
        .engine
        .definitions
        .publish(&app.db, "expert_evaluation", QUORUM_EVALUATION, app.now())
        .await
        .unwrap();
    let application = voucher_application_row(&app, mgr, 6).await;
    let evaluation: i64 = sqlx::query_scalar(
        "INSERT INTO evaluations (unit_id, year, self_report, indicators, applicant_id, created_at) \
         SELECT unit_id, 2026, '自评', '{}', $1, 0 FROM voucher_applications WHERE id = $2 RETURNING id",
    )
    .bind(mgr)
    .bind(application)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let e = app
        .state
        .engine
        .start(
            "expert_evaluation",
            "evaluation",
            evaluation,
            mgr,
            json!({}),
        )
        .await
        .unwrap();
    let task_of = |i: usize| {
        let tok = experts[i].clone();
        let app = &app;
        async move { open_tasks(app, &tok).await[0]["id"].as_i64().unwrap() }
    };
    let (_, out) = act(
        &app,
        &experts[0],
        task_of(0).await,
        "approve",
        json!({"score": 90}),
    )
    .await;
    assert_eq!(out["state"], "expert_review");
    let (_, out) = act(
        &app,
        &experts[1],
        task_of(1).await,
        "approve",
        json!({"score": 80}),
    )
    .await;
    assert_eq!(out["state"], "grading", "{out}");
    assert!(open_tasks(&app, &experts[2]).await.is_empty());
    let g = open_tasks(&app, &pa).await[0]["id"].as_i64().unwrap();
    let (status, body) = act(&app, &pa, g, "approve", json!({})).await;
    assert_eq!(status, 422, "grade required: {body}");
    let (status, out) = act(&app, &pa, g, "approve", json!({"grade": "good"})).await;
    assert_eq!(
        (status, out["state"].as_str(), out["instance_id"].as_i64()),
        (200, Some("finalised"), Some(e.instance_id))
    );

    // Timeout auto-action: the applicant's revise step withdraws itself at its deadline.
    let application = voucher_application_row(&app, mgr, 7).await;
    let v = app
        .state
        .engine
        .start(
            "voucher_application",
            "voucher_application",
            application,
            mgr,
            json!({}),
        )
        .await
        .unwrap();
    let t = open_tasks(&app, &pa).await[0]["id"].as_i64().unwrap();
    act(&app, &pa, t, "return", json!({})).await;
    assert_eq!(open_tasks(&app, &mgr_token).await.len(), 1);
    sqlx::query("UPDATE workflow_tasks SET due_at = $1 WHERE instance_id = $2 AND status = 'open'")
        .bind(app.now() - 10)
        .bind(v.instance_id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(app.state.engine.process_deadlines().await.unwrap(), 1);
    assert_eq!(
        app.state.engine.process_deadlines().await.unwrap(),
        0,
        "running twice does nothing twice"
    );
    let inst = workflow::get_instance(&app.db, v.instance_id)
        .await
        .unwrap();
    assert_eq!(
        (inst.state.as_str(), inst.status.as_str()),
        ("withdrawn", "completed")
    );
    assert!(matches!(
        audit::verify(&app.db).await.unwrap(),
        audit::Verdict::Intact { .. }
    ));
}

#[tokio::test]
async fn instances_finish_on_the_version_they_started_on() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(workflows_dir()).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let app = spawn_app_with(&[("LABSHARE_WORKFLOWS_DIR", dir.path().to_str().unwrap())]).await;
    let (mgr, rev, unit) = unit_and_reviewer(&app, 6, false).await;
    let applicant: i64 = sqlx::query_scalar("SELECT user_id FROM unit_members WHERE unit_id = $1")
        .bind(unit)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let instrument = |name: &'static str| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("INSERT INTO instruments (unit_id, name, category_code, value_fen, created_at, updated_at) VALUES ($1, $2, '0301', 5000000, 0, 0) RETURNING id")
                .bind(unit).bind(name).fetch_one(&db.pool).await.unwrap()
        }
    };
    let first = instrument("液相色谱仪").await;
    let s1 = app
        .state
        .engine
        .start(
            "instrument_onboarding",
            "instrument",
            first,
            applicant,
            json!({}),
        )
        .await
        .unwrap();
    let status: String = sqlx::query_scalar("SELECT review_status FROM instruments WHERE id = $1")
        .bind(first)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "pending");

    // Publish version 2: an extra expert check after the platform review.
    let v1 = std::fs::read_to_string(dir.path().join("instrument_onboarding.yaml")).unwrap();
    let v2 = v1.replacen("        approve: approved\n", "        approve: expert_check\n", 1).replace(
        "  approved:\n",
        "  expert_check:\n    title: 专家复核\n    task:\n      assignees: { role: expert }\n      actions: [approve, reject]\n      on:\n        approve: approved\n        reject: rejected\n      deadline: 3 working days\n  approved:\n",
    );
    let bad = v2.replace(
        "reject: rejected\n      deadline: 3",
        "reject: gone\n      deadline: 3",
    );
    let err = app
        .state
        .engine
        .definitions
        .publish(&app.db, "instrument_onboarding", &bad, app.now())
        .await;
    assert!(matches!(err, Err(workflow::ReloadError::Invalid(_))));
    assert_eq!(
        app.state
            .engine
            .definitions
            .get("instrument_onboarding")
            .unwrap()
            .version,
        1,
        "an invalid definition leaves the running one"
    );
    // Through the API reload too: a broken file is refused with file:line details.
    std::fs::write(dir.path().join("broken.yaml"), "key: broken\n  x: [\n").unwrap();
    app.create_user("sys", "system_admin").await;
    let sys = app.token("sys").await;
    let (status, body) = app
        .api("POST", "/api/v1/workflows/reload", Some(&sys), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_workflow")),
        "{body}"
    );
    assert_eq!(body["error"]["details"][0]["line"], 2);
    std::fs::remove_file(dir.path().join("broken.yaml")).unwrap();
    // The system admin publishes version 2 from the console (流程定义).
    let browser = app.browser_login("sys").await;
    let page = "/console/workflows/instrument_onboarding";
    let res = app
        .post_form(
            &browser,
            page,
            page,
            &[("source", &v2), ("intent", "publish")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = app.get_page(&browser, page).await;
    assert!(
        html.contains("已发布版本 2") && html.contains("专家复核"),
        "{html}"
    );
    assert_eq!(
        app.state
            .engine
            .definitions
            .get("instrument_onboarding")
            .unwrap()
            .version,
        2
    );
    let (status, list) = app.api("GET", "/api/v1/workflows", Some(&sys), None).await;
    assert_eq!(status, 200);
    let io = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == "instrument_onboarding")
        .unwrap();
    assert_eq!(io["version"], 2);

    app.create_user("expert1", "expert").await;
    let second = instrument("气相色谱仪").await;
    let s2 = app
        .state
        .engine
        .start(
            "instrument_onboarding",
            "instrument",
            second,
            applicant,
            json!({}),
        )
        .await
        .unwrap();
    let tasks = open_tasks(&app, &rev).await;
    let task_for = |inst: i64| {
        tasks.iter().find(|t| t["instance_id"] == inst).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (_, out1) = act(&app, &rev, task_for(s1.instance_id), "approve", json!({})).await;
    assert_eq!(out1["state"], "approved", "version 1 finishes on version 1");
    let (_, out2) = act(&app, &rev, task_for(s2.instance_id), "approve", json!({})).await;
    assert!(out2["error"].is_null(), "{out2}");
    assert_eq!(
        out2["state"], "expert_check",
        "version 2 takes the new step"
    );
    assert_eq!(
        workflow::get_instance(&app.db, s1.instance_id)
            .await
            .unwrap()
            .version,
        1
    );
    assert_eq!(
        workflow::get_instance(&app.db, s2.instance_id)
            .await
            .unwrap()
            .version,
        2
    );
    let status: String = sqlx::query_scalar("SELECT review_status FROM instruments WHERE id = $1")
        .bind(first)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "approved");
    let _ = mgr;
}

#[tokio::test]
async fn a_tampered_audit_log_is_reported_at_the_first_broken_entry() {
    let app = spawn_app().await;
    let (mgr, rev, unit) = unit_and_reviewer(&app, 8, false).await;
    app.api(
        "POST",
        &format!("/api/v1/units/{unit}/certification"),
        Some(&mgr),
        None,
    )
    .await;
    let task = open_tasks(&app, &rev).await[0]["id"].as_i64().unwrap();
    act(&app, &rev, task, "return", json!({})).await;
    assert_eq!(
        audit::verify(&app.db).await.unwrap(),
        audit::Verdict::Intact { entries: 2 }
    );
    sqlx::query("UPDATE workflow_audit SET comment = '同意' WHERE seq = 2")
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert!(matches!(
        audit::verify(&app.db).await.unwrap(),
        audit::Verdict::Broken { seq: 2, .. }
    ));
}

#[tokio::test]
async fn reviewers_use_the_console_task_pages() {
    let app = spawn_app().await;
    let (_, _, unit) = unit_and_reviewer(&app, 9, false).await;
    let mgr = app.browser_login("mgr9").await;
    let res = app
        .post_form(
            &mgr,
            &format!("/console/units/{unit}"),
            &format!("/console/units/{unit}/certification"),
            &[],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, page) = app.get_page(&mgr, &format!("/console/units/{unit}")).await;
    assert!(page.contains("审核中"), "{page}");
    let (_, started) = app.get_page(&mgr, "/console/tasks/started").await;
    assert!(started.contains("单位认证") && started.contains("平台审核"));

    let rev = app.browser_login("rev9").await;
    let (status, list) = app.get_page(&rev, "/console/tasks").await;
    assert_eq!(status, 200);
    assert!(list.contains("单位认证") && list.contains("办理"));
    let task: i64 = sqlx::query_scalar("SELECT id FROM workflow_tasks WHERE status = 'open'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let res = app
        .post_form(
            &rev,
            &format!("/console/tasks/{task}"),
            &format!("/console/tasks/{task}"),
            &[("action", "approve"), ("comment", "材料齐全")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let (_, inst) = app.get_page(&rev, &location).await;
    assert!(
        inst.contains("已认证") && inst.contains("材料齐全"),
        "{inst}"
    );
    let (status, svg) = app.get_page(&rev, &format!("{location}/diagram.svg")).await;
    assert_eq!(status, 200);
    assert!(svg.contains("<svg") && svg.contains("state current"));
    let (_, done) = app.get_page(&rev, "/console/tasks/done").await;
    assert!(done.contains("材料齐全"));
    let (_, u) = app.get_page(&mgr, &format!("/console/units/{unit}")).await;
    assert!(u.contains("已认证"));
}

#[tokio::test]
async fn a_system_admin_edits_validates_and_publishes_a_definition_in_the_console() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(workflows_dir()).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let app = spawn_app_with(&[("LABSHARE_WORKFLOWS_DIR", dir.path().to_str().unwrap())]).await;
    app.create_user("sysadm", "system_admin").await;
    let b = app.browser_login("sysadm").await;
    let (status, list) = app.get_page(&b, "/console/workflows").await;
    assert_eq!(status, 200);
    assert!(list.contains("仪器入网"));
    let (status, page) = app
        .get_page(&b, "/console/workflows/instrument_onboarding")
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("diagram.svg") && page.contains("key: instrument_onboarding"));
    let src = std::fs::read_to_string(dir.path().join("instrument_onboarding.yaml")).unwrap();
    let bad = src.replace("reject: rejected", "reject: limbo");
    let res = app
        .post_form(
            &b,
            "/console/workflows/instrument_onboarding",
            "/console/workflows/instrument_onboarding",
            &[("source", &bad), ("intent", "publish")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("未知的状态 `limbo`") && html.contains("instrument_onboarding.yaml:"),
        "{html}"
    );
    let good = src.replace("title: 仪器入网", "title: 仪器入网审核");
    let res = app
        .post_form(
            &b,
            "/console/workflows/instrument_onboarding",
            "/console/workflows/instrument_onboarding",
            &[("source", &good), ("intent", "validate")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("+ title: 仪器入网审核"));
    let res = app
        .post_form(
            &b,
            "/console/workflows/instrument_onboarding",
            "/console/workflows/instrument_onboarding",
            &[("source", &good), ("intent", "publish")],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        app.state
            .engine
            .definitions
            .get("instrument_onboarding")
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        app.state
            .engine
            .definitions
            .get("instrument_onboarding")
            .unwrap()
            .title,
        "仪器入网审核"
    );
}

#[tokio::test]
async fn deadlines_remind_first_and_then_escalate() {
    let app = spawn_app().await;
    app.create_user("vman", "platform_admin").await;
    let vman = app.token("vman").await;
    let applicant = app.create_user("vapp", "user").await;
    let application = voucher_application_row(&app, applicant, 11).await;
    let v = app
        .state
        .engine
        .start(
            "voucher_application",
            "voucher_application",
            application,
            applicant,
            json!({}),
        )
        .await
        .unwrap();
    let task = open_tasks(&app, &vman).await[0]["id"].as_i64().unwrap();
    // Due within a day: a due_soon event, once.
    sqlx::query("UPDATE workflow_tasks SET due_at = $1 WHERE id = $2")
        .bind(app.now() + 3600)
        .bind(task)
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(app.state.engine.process_deadlines().await.unwrap(), 1);
    assert_eq!(app.state.engine.process_deadlines().await.unwrap(), 0);
    // Past due: overdue, and escalated to platform admins who do not hold the task yet.
    app.create_user("vboss", "platform_admin").await;
    let vboss = app.token("vboss").await;
    sqlx::query("UPDATE workflow_tasks SET due_at = $1 WHERE id = $2")
        .bind(app.now() - 1)
        .bind(task)
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(app.state.engine.process_deadlines().await.unwrap(), 1);
    let boss_tasks = open_tasks(&app, &vboss).await;
    assert_eq!(boss_tasks.len(), 1);
    assert_eq!(
        open_tasks(&app, &vman).await.len(),
        1,
        "no duplicate task for the original reviewer"
    );
    let kinds: Vec<(String,)> =
        sqlx::query_as("SELECT kind FROM workflow_events WHERE instance_id = $1 ORDER BY id")
            .bind(v.instance_id)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    let kinds: Vec<_> = kinds.into_iter().map(|k| k.0).collect();
    assert_eq!(kinds, ["task_assigned", "due_soon", "overdue", "escalated"]);
    let (status, out) = act(
        &app,
        &vboss,
        boss_tasks[0]["id"].as_i64().unwrap(),
        "approve",
        json!({}),
    )
    .await;
    assert_eq!((status, out["state"].as_str()), (200, Some("approved")));
}

/// Every role against the workflow pages and API: 403 exactly when the role lacks the
/// route's permission.
#[tokio::test]
async fn workflow_routes_check_their_permissions() {
    let app = spawn_app().await;
    for role in [
        "system_admin",
        "platform_admin",
        "unit_manager",
        "expert",
        "user",
    ] {
        let name = format!("r_{role}");
        app.create_user(&name, role).await;
        let perms = labshare::auth::builtin_role(role).unwrap().permissions;
        let browser = app.browser_login(&name).await;
        let routes: Vec<_> = labshare::web::workflows::routes()
            .into_iter()
            .filter(|r| !r.has_path_params())
            .collect();
        for r in routes.iter().filter(|r| !r.is_api() && r.method == "GET") {
            let path = &r.path;
            let (status, _) = app.get_page(&browser, path).await;
            let allowed = r.access.allows(|p| perms.contains(&p));
            assert_eq!(status, if allowed { 200 } else { 403 }, "{role} GET {path}");
        }
        let token = app.token(&name).await;
        for r in routes.iter().filter(|r| r.is_api()) {
            let (method, path) = (r.method.as_str(), &r.path);
            let (status, body) = app.api(method, path, Some(&token), None).await;
            let allowed = r.access.allows(|p| perms.contains(&p));
            assert_eq!(
                status == 403,
                !allowed,
                "{role} {method} {path}: {status} {body}"
            );
            assert!(status < 500, "{role} {method} {path}: {status}");
        }
    }
}

#[tokio::test]
async fn the_applicant_never_reviews_their_own_request_and_a_reviewer_without_the_permission_is_rerouted()
 {
    let app = spawn_app().await;
    let (_mgr, rev, unit) = unit_and_reviewer(&app, 21, false).await;
    // A platform admin applies (the engine's start, as a domain module would): no task for
    // them, even though they hold unit.review.
    let applicant = app.create_user("admin_applicant", "platform_admin").await;
    let own = app.token("admin_applicant").await;
    app.state
        .engine
        .start("unit_certification", "unit", unit, applicant, json!({}))
        .await
        .unwrap();
    assert!(
        open_tasks(&app, &own).await.is_empty(),
        "the applicant got a task"
    );
    let tasks = open_tasks(&app, &rev).await;
    assert_eq!(tasks.len(), 1);
    let task = tasks[0]["id"].as_i64().unwrap();
    for action in ["transfer", "add_signer"] {
        let (status, body) =
            act(&app, &rev, task, action, json!({"user": "admin_applicant"})).await;
        assert_eq!(status, 422, "{action}: {body}");
        assert!(
            body["error"]["fields"]["user"]
                .as_str()
                .unwrap()
                .contains("申请人"),
            "{body}"
        );
    }
    // A task that reached the applicant anyway is refused when they decide it.
    let (instance, round): (i64, i64) = sqlx::query_as(
        "SELECT id, round FROM workflow_instances WHERE subject_type = 'unit' AND subject_id = $1",
    )
    .bind(unit)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let sneaked: i64 = sqlx::query_scalar(
        "INSERT INTO workflow_tasks (instance_id, state, round, assignee_id, seq, status, created_at) VALUES ($1, 'review', $2, $3, 0, 'open', 0) RETURNING id",
    )
    .bind(instance)
    .bind(round)
    .bind(applicant)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let (status, body) = act(&app, &own, sneaked, "approve", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("not_eligible")),
        "{body}"
    );
    sqlx::query("DELETE FROM workflow_tasks WHERE id = $1")
        .bind(sneaked)
        .execute(&app.db.pool)
        .await
        .unwrap();

    // The reviewer loses the role: deciding is refused (email links take the same path), and
    // the reminders job hands the task to whoever is eligible now.
    let rev_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'rev21'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
        .bind(rev_id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (status, body) = act(&app, &rev, task, "approve", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("not_eligible")),
        "{body}"
    );
    app.create_user("rev_new", "platform_admin").await;
    let fresh = app.token("rev_new").await;
    assert!(app.state.engine.process_deadlines().await.unwrap() >= 1);
    let status: String = sqlx::query_scalar("SELECT status FROM workflow_tasks WHERE id = $1")
        .bind(task)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "cancelled");
    assert!(
        open_tasks(&app, &own).await.is_empty(),
        "never to the applicant"
    );
    let moved = open_tasks(&app, &fresh).await;
    assert_eq!(moved.len(), 1);
    let (status, out) = act(
        &app,
        &fresh,
        moved[0]["id"].as_i64().unwrap(),
        "approve",
        json!({}),
    )
    .await;
    assert_eq!(
        (status, out["state"].as_str()),
        (200, Some("certified")),
        "{out}"
    );
    // Running the job again changes nothing.
    assert_eq!(app.state.engine.process_deadlines().await.unwrap(), 0);
}

/// `labshare workflows bench` (issue 19) drives real decisions: each instance ends approved,
/// the applicant is not the reviewer, and the hash chain (the head's hash now set by the
/// entry's insert) stays intact with the audit appended last.
#[tokio::test]
async fn the_engine_benchmark_approves_every_instance_with_an_intact_chain() {
    let app = spawn_app().await;
    let before: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_audit")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let r = workflow::bench::run(&app.state.engine, 6, 3).await.unwrap();
    assert_eq!(r.instances, 6);
    assert!(r.transitions_per_sec > 0.0 && r.starts_per_sec > 0.0);
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT status, state FROM workflow_instances WHERE workflow_key = 'service_record_report'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 6);
    assert!(
        rows.iter()
            .all(|(status, state)| status == "completed" && state == "approved"),
        "{rows:?}"
    );
    // A start and an approval per instance, in order, and the head carries the last hash.
    assert_eq!(
        audit::verify(&app.db).await.unwrap(),
        audit::Verdict::Intact {
            entries: before + 12
        }
    );
    let (head, last): (String, String) = sqlx::query_as(
        "SELECT h.hash, a.hash FROM workflow_audit_head h, workflow_audit a WHERE h.id = 1 AND a.seq = h.seq",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(head, last);
    // The approved state's effects notify the applicant (`notify`, event `decided`): the
    // engine adds no second notice of its own for the same move.
    let decided: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT e.instance_id, CAST(COUNT(*) AS BIGINT) FROM workflow_events e \
         JOIN workflow_instances i ON i.id = e.instance_id \
         WHERE i.workflow_key = 'service_record_report' AND e.kind = 'decided' \
         AND e.user_id = i.applicant_id GROUP BY e.instance_id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(decided.len(), 6);
    assert!(decided.iter().all(|(_, n)| *n == 1), "{decided:?}");
}

/// The audit chain is one chain whoever extends it: on PostgreSQL the server numbers and
/// hashes each entry (migration 0024), on SQLite the engine does, and `audit verify` checks
/// both with the engine's own digest — here on entries without an actor, with Chinese text,
/// quotes and an empty comment.
#[tokio::test]
async fn the_audit_chain_verifies_whoever_hashed_its_entries() {
    let app = spawn_app().await;
    let before = match audit::verify(&app.db).await.unwrap() {
        audit::Verdict::Intact { entries } => entries,
        broken => panic!("{broken:?}"),
    };
    let entries = [
        (
            None,
            "同意，材料齐全。",
            "{\"意见\":\"通过\",\"score\":9.5}",
        ),
        (Some(1), "", "{}"),
        (None, "引号 ' 与 \" 以及 $1", "{\"note\":\"✓\"}"),
    ];
    for (actor_id, comment, data) in entries {
        let mut tx = app.db.begin_write().await.unwrap();
        audit::append(
            &mut tx,
            audit::Entry {
                instance_id: 424242,
                at: app.now(),
                actor_id,
                workflow_key: "unit_certification",
                version: 3,
                state: "审核",
                action: "approve",
                to_state: "已通过",
                comment,
                data,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(
        audit::verify(&app.db).await.unwrap(),
        audit::Verdict::Intact {
            entries: before + 3
        }
    );
    let (head, last, seq): (String, String, i64) = sqlx::query_as(
        "SELECT h.hash, a.hash, h.seq FROM workflow_audit_head h, workflow_audit a WHERE h.id = 1 AND a.seq = h.seq",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((head, seq), (last, before + 3));
}
