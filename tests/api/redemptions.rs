//! Redemption files (兑付材料): a redemption carries its contract and invoice files, review
//! cannot approve it before both are there, and reviewers download them from the task page.

use serde_json::{Value, json};

use crate::common::{TestApp, csrf_from, spawn_app_with, unit_body};

const NOW: &str = "2026-12-01T08:00:00+08:00";

pub(crate) const PDF: &[u8] =
    b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n";
const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];

/// A multipart body: text fields, then files as (field, file name, bytes).
fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----labshareRedemptionBoundary";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (field, name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// `POST /api/v1/redemptions/{id}/files` with `kind` and one file.
pub(crate) async fn attach(
    app: &TestApp,
    token: &str,
    id: i64,
    kind: &str,
    name: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let (ct, body) = multipart(&[("kind", kind)], &[("file", name, bytes)]);
    let res = app
        .client
        .post(app.url(&format!("/api/v1/redemptions/{id}/files")))
        .bearer_auth(token)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A page form with files, the CSRF token taken from `form_page`.
pub(crate) async fn post_multipart(
    app: &TestApp,
    client: &reqwest::Client,
    form_page: &str,
    action: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &str, &[u8])],
) -> reqwest::Response {
    let (_, html) = app.get_page(client, form_page).await;
    let token = csrf_from(&html).unwrap_or_default();
    let mut all = vec![("csrf_token", token.as_str())];
    all.extend_from_slice(fields);
    let (ct, body) = multipart(&all, files);
    client
        .post(app.url(action))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap()
}

struct World {
    app: TestApp,
    owner: String,
    unit: i64,
    admin: String,
    /// A second platform admin for 复核 (it must not be 初审's decider).
    checker: String,
    bookings: Vec<i64>,
}

/// A managing unit (manager `r_owner`) with three completed bookings paid partly with
/// vouchers (500.00, 600.00, 700.00), and a platform admin.
async fn world() -> World {
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    app.create_user("r_owner", "unit_manager").await;
    app.create_user("r_buyer", "user").await;
    app.create_user("r_admin", "platform_admin").await;
    let owner = app.token("r_owner").await;
    let buyer = app.token("r_buyer").await;
    let admin = app.token("r_admin").await;
    app.create_user("r_checker", "platform_admin").await;
    let checker = app.token("r_checker").await;
    let (_, u) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&owner),
            Some(unit_body("许昌兑付测试大学", 301, "managing")),
        )
        .await;
    let unit = u["id"].as_i64().unwrap();
    let (_, b) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&buyer),
            Some(unit_body("许昌兑付测试企业", 302, "user")),
        )
        .await;
    let buyer_unit = b["id"].as_i64().unwrap();
    let instrument: i64 = sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, category_code, value_fen, review_status, created_at, updated_at) \
         VALUES ($1, '激光共聚焦显微镜', '010100', 200000000, 'approved', 0, 0) RETURNING id",
    )
    .bind(unit)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let mut bookings = vec![];
    for (i, fen) in [50_000i64, 60_000, 70_000].into_iter().enumerate() {
        let start = 1_780_000_000 + i as i64 * 10_000;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, status, live, price_fen, voucher_fen, voucher_year, created_at, updated_at) \
             VALUES ($1, $2, 1, $3, $4, '测试', 'completed', 0, $5, $6, 2026, 0, 0) RETURNING id",
        )
        .bind(instrument)
        .bind(buyer_unit)
        .bind(start)
        .bind(start + 3600)
        .bind(fen * 3)
        .bind(fen)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        bookings.push(id);
    }
    World {
        app,
        owner,
        unit,
        admin,
        checker,
        bookings,
    }
}

async fn open_task(app: &TestApp, token: &str) -> Value {
    let (_, tasks) = app.api("GET", "/api/v1/tasks", Some(token), None).await;
    tasks["items"][0].clone()
}

#[tokio::test]
async fn review_needs_a_contract_and_an_invoice_which_reviewers_download_from_the_task() {
    let w = world().await;
    let app = &w.app;
    // The contract's request and answer are unchanged.
    let (status, r) = app
        .api(
            "POST",
            "/api/v1/redemptions",
            Some(&w.owner),
            Some(json!({"unit_id": w.unit, "booking_ids": [w.bookings[0], w.bookings[1]]})),
        )
        .await;
    assert_eq!(status, 202, "{r}");
    assert!(r["instance_id"].is_number());
    let id = r["id"].as_i64().unwrap();

    // Without files the reviewer cannot approve.
    let task = open_task(app, &w.admin).await;
    assert_eq!(task["subject"]["type"], "redemption");
    let approve = |comment: &'static str| {
        let task = task.clone();
        let admin = w.admin.clone();
        async move {
            app.api(
                "POST",
                &format!("/api/v1/tasks/{}/actions", task["id"]),
                Some(&admin),
                Some(json!({"action": "approve", "comment": comment})),
            )
            .await
        }
    };
    let (status, body) = approve("同意").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "guard_refused");
    assert!(body["error"]["message"].as_str().unwrap().contains("合同"));

    // Wrong kind, wrong content, wrong unit: refused.
    let (status, body) = attach(app, &w.owner, id, "receipt", "收据.pdf", PDF).await;
    assert_eq!(
        (status, body["error"]["fields"]["kind"].is_string()),
        (422, true),
        "{body}"
    );
    let (status, body) = attach(
        app,
        &w.owner,
        id,
        "contract",
        "合同.pdf",
        b"MZ\x90\x00 not a pdf",
    )
    .await;
    assert_eq!(
        (status, body["error"]["fields"]["file"].is_string()),
        (422, true),
        "{body}"
    );
    app.create_user("r_other", "unit_manager").await;
    let other = app.token("r_other").await;
    let (status, _) = attach(app, &other, id, "contract", "合同.pdf", PDF).await;
    assert_eq!(status, 403);

    // A contract alone is not enough.
    let (status, f) = attach(app, &w.owner, id, "contract", "技术服务合同.pdf", PDF).await;
    assert_eq!(status, 201, "{f}");
    assert_eq!(
        (f["contract_count"].as_i64(), f["invoice_count"].as_i64()),
        (Some(1), Some(0))
    );
    let (status, _) = approve("同意").await;
    assert_eq!(status, 422);
    let (status, f) = attach(app, &w.owner, id, "invoice", "增值税发票.png", PNG).await;
    assert_eq!(status, 201, "{f}");
    let invoice_url = f["url"].as_str().unwrap().to_string();

    // The reviewer sees and downloads the files from the task page.
    let console = app.browser_login("r_admin").await;
    let (status, html) = app
        .get_page(&console, &format!("/console/tasks/{}", task["id"]))
        .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("技术服务合同.pdf") && html.contains("增值税发票.png"),
        "{html}"
    );
    let (_, r) = app
        .api(
            "GET",
            &format!("/api/v1/redemptions/{id}"),
            Some(&w.admin),
            None,
        )
        .await;
    let contract = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "contract")
        .unwrap()
        .clone();
    let link = format!("/console/redemptions/{id}/files/{}", contract["id"]);
    assert!(html.contains(&link), "{html}");
    let res = console.get(app.url(&link)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), PDF);
    let res = app
        .client
        .get(app.url(&invoice_url))
        .bearer_auth(&w.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    // Another unit's manager sees neither the redemption nor its files.
    let res = app
        .client
        .get(app.url(&invoice_url))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let (status, _) = app
        .api(
            "GET",
            &format!("/api/v1/redemptions/{id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(status, 403);
    // The contract's stored file is private: `/uploads/{name}` serves it to nobody — not a
    // stranger, not even its owner or reviewer, who use the redemption's own route.
    let stored: String = sqlx::query_scalar(
        "SELECT u.stored_name FROM redemption_files f JOIN uploads u ON u.id = f.upload_id WHERE f.id = $1",
    )
    .bind(contract["id"].as_i64().unwrap())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let direct = app.url(&format!("/uploads/{stored}"));
    let res = crate::common::new_client()
        .get(&direct)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "a stranger fetched the contract");
    for token in [&other, &w.owner, &w.admin] {
        let res = app
            .client
            .get(&direct)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    }
    let contract_api = format!("/api/v1/redemptions/{id}/files/{}", contract["id"]);
    for (token, expected) in [(&w.owner, 200), (&w.admin, 200), (&other, 403)] {
        let res = app
            .client
            .get(app.url(&contract_api))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), expected, "{contract_api}");
    }

    // Now review passes; recheck follows, then the public notice passes when its period ends.
    let (status, body) = approve("材料齐全，同意").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "recheck");
    // 复核 goes to the other platform admin only: 初审's decider is left out.
    assert!(open_task(app, &w.admin).await.is_null());
    let t = open_task(app, &w.checker).await;
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{}/actions", t["id"]),
            Some(&w.checker),
            Some(json!({"action": "approve"})),
        )
        .await;
    assert_eq!((status, body["state"].as_str()), (200, Some("publicity")));
    // One notice task per voucher manager (both platform admins).
    assert_eq!(crate::common::notice_period_passes(app).await, 2);
    let (_, r) = app
        .api(
            "GET",
            &format!("/api/v1/redemptions/{id}"),
            Some(&w.owner),
            None,
        )
        .await;
    assert_eq!(r["status"], "approved");
    assert_eq!(r["total"], "1100.00");
    let (status, html) = app
        .get_page(&console, "/console/voucher-admin?year=2026")
        .await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("/console/redemptions/{id}")),
        "the list links to the files"
    );
    let (status, html) = app
        .get_page(&console, &format!("/console/redemptions/{id}"))
        .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("技术服务合同.pdf") && html.contains("已兑付") && !html.contains("补充材料")
    );
    let (status, body) = attach(app, &w.owner, id, "invoice", "补票.pdf", PDF).await;
    assert_eq!(
        status, 409,
        "a decided redemption takes no more files: {body}"
    );
}

#[tokio::test]
async fn the_console_form_applies_with_the_files_and_refuses_without_them() {
    let w = world().await;
    let app = &w.app;
    let console = app.browser_login("r_owner").await;
    let (status, html) = app.get_page(&console, "/console/redemptions").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("申请兑付") && html.contains("激光共聚焦显微镜") && html.contains("700.00"),
        "{html}"
    );
    let b2 = w.bookings[2].to_string();

    // No invoice: refused beside the field, the selection kept, nothing created.
    let res = post_multipart(
        app,
        &console,
        "/console/redemptions",
        "/console/redemptions",
        &[("booking_ids", &b2)],
        &[("contract", "合同.pdf", PDF)],
    )
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("请上传发票") && html.contains(&format!("value=\"{b2}\" checked")),
        "{html}"
    );
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM redemptions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);

    let res = post_multipart(
        app,
        &console,
        "/console/redemptions",
        "/console/redemptions",
        &[("booking_ids", &b2)],
        &[
            ("contract", "服务合同.pdf", PDF),
            ("invoice", "发票.pdf", PDF),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    let (status, html) = app.get_page(&console, &to).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("服务合同.pdf") && html.contains("发票.pdf") && html.contains("700.00"),
        "{html}"
    );
    let id: i64 = to.rsplit('/').next().unwrap().parse().unwrap();
    let (_, r) = app
        .api(
            "GET",
            &format!("/api/v1/redemptions/{id}"),
            Some(&w.owner),
            None,
        )
        .await;
    assert_eq!(
        (r["contract_count"].as_i64(), r["invoice_count"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(r["instance_id"].is_number(), "the review started");

    // A second invoice from the detail page; the reviewer's first step now passes.
    let res = post_multipart(
        app,
        &console,
        &to,
        &format!("{to}/files"),
        &[("kind", "invoice")],
        &[("file", "发票二.png", PNG)],
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, r) = app
        .api(
            "GET",
            &format!("/api/v1/redemptions/{id}"),
            Some(&w.owner),
            None,
        )
        .await;
    assert_eq!(r["invoice_count"], 2);
    let t = open_task(app, &w.admin).await;
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{}/actions", t["id"]),
            Some(&w.admin),
            Some(json!({"action": "approve"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// `POST /api/v1/redemptions` of `bookings` by the unit's manager.
async fn redeem(w: &World, bookings: &[i64]) -> (u16, Value) {
    w.app
        .api(
            "POST",
            "/api/v1/redemptions",
            Some(&w.owner),
            Some(json!({"unit_id": w.unit, "booking_ids": bookings})),
        )
        .await
}

#[tokio::test]
async fn a_withdrawn_or_rejected_redemption_releases_its_bookings_for_a_new_one() {
    let w = world().await;
    let app = &w.app;
    let (status, first) = redeem(&w, &w.bookings[..2]).await;
    assert_eq!(status, 202, "{first}");
    let (status, body) = redeem(&w, &w.bookings[..1]).await;
    assert_eq!(status, 422, "a booking is in one live redemption: {body}");

    // Withdrawn by the unit: its bookings are free again, the history keeps its items.
    let (status, body) = app
        .api(
            "POST",
            &format!(
                "/api/v1/workflow-instances/{}/withdraw",
                first["instance_id"]
            ),
            Some(&w.owner),
            Some(json!({"comment": "材料有误，撤回"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, old) = app
        .api(
            "GET",
            &format!("/api/v1/redemptions/{}", first["id"]),
            Some(&w.owner),
            None,
        )
        .await;
    assert_eq!(old["status"], "withdrawn");
    assert_eq!(old["booking_ids"], json!(&w.bookings[..2]), "{old}");
    assert_eq!(
        old["released_booking_ids"],
        json!(&w.bookings[..2]),
        "{old}"
    );
    let (status, second) = redeem(&w, &w.bookings[..2]).await;
    assert_eq!(status, 202, "{second}");

    // Rejected by the reviewer: released too.
    let t = open_task(app, &w.admin).await;
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{}/actions", t["id"]),
            Some(&w.admin),
            Some(json!({"action": "reject", "comment": "不符合兑付条件"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, third) = redeem(&w, &w.bookings[..1]).await;
    assert_eq!(status, 202, "{third}");
}

#[tokio::test]
async fn the_reviewer_of_a_redemption_cannot_also_recheck_it() {
    let w = world().await;
    let app = &w.app;
    let (status, r) = redeem(&w, &w.bookings[..1]).await;
    assert_eq!(status, 202, "{r}");
    let id = r["id"].as_i64().unwrap();
    for (kind, name) in [("contract", "合同.pdf"), ("invoice", "发票.pdf")] {
        let (status, body) = attach(app, &w.owner, id, kind, name, PDF).await;
        assert_eq!(status, 201, "{body}");
    }
    // The unit's manager is the applicant: transferring the review to them is refused.
    let t = open_task(app, &w.admin).await;
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{}/actions", t["id"]),
            Some(&w.admin),
            Some(json!({"action": "transfer", "data": {"user": "r_owner"}})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["fields"]["user"].is_string(), "{body}");
    // Both admins reviewed; r_admin approves, so only r_checker gets 复核.
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{}/actions", t["id"]),
            Some(&w.admin),
            Some(json!({"action": "approve", "comment": "初审同意"})),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("recheck")),
        "{body}"
    );
    assert!(open_task(app, &w.admin).await.is_null());
    let recheck = open_task(app, &w.checker).await;
    assert_eq!(recheck["step"], "recheck");

    // Adding 初审's decider as a signer is refused; a task somehow given to them is refused
    // when they decide it (same_decider).
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{}/actions", recheck["id"]),
            Some(&w.checker),
            Some(json!({"action": "add_signer", "data": {"user": "r_admin"}})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (instance, round): (i64, i64) = sqlx::query_as(
        "SELECT id, round FROM workflow_instances WHERE subject_type = 'redemption' AND subject_id = $1",
    )
    .bind(id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let admin_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'r_admin'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let sneaked: i64 = sqlx::query_scalar(
        "INSERT INTO workflow_tasks (instance_id, state, round, assignee_id, seq, status, created_at) VALUES ($1, 'recheck', $2, $3, 5, 'open', 0) RETURNING id",
    )
    .bind(instance)
    .bind(round)
    .bind(admin_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{sneaked}/actions"),
            Some(&w.admin),
            Some(json!({"action": "approve"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "same_decider");
    sqlx::query("DELETE FROM workflow_tasks WHERE id = $1")
        .bind(sneaked)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{}/actions", recheck["id"]),
            Some(&w.checker),
            Some(json!({"action": "approve", "comment": "复核同意"})),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("publicity")),
        "{body}"
    );
}
