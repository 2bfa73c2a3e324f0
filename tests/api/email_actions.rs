use serde_json::json;

use crate::common::{
    TestApp, csrf_from, new_client,
    smtp::{SmtpServer, decoded},
    spawn_app_with, unit_body,
};

/// A user unit submitted for certification; returns (unit id, reviewer user id).
async fn submitted_unit(app: &TestApp, n: u32) -> i64 {
    let token = app.token("applicant").await;
    let (status, b) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&token),
            Some(unit_body(&format!("许昌邮件测试企业{n}"), n, "user")),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_i64().unwrap();
    let (status, b) = app
        .api(
            "POST",
            &format!("/api/v1/units/{id}/certification"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 202, "{b}");
    id
}

fn links(mail: &str) -> (String, String) {
    let text = decoded(mail);
    let find = |label: &str| {
        let start = text
            .find(&format!("{label}："))
            .unwrap_or_else(|| panic!("no {label} link in {text}"));
        let rest = &text[start + label.len() + 3..];
        rest.split_whitespace().next().unwrap().to_string()
    };
    (find("同意"), find("驳回"))
}

async fn certification_status(app: &TestApp, id: i64) -> String {
    sqlx::query_scalar("SELECT certification_status FROM units WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_reviewer_approves_from_the_link_in_a_real_mail() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(&[
        ("LABSHARE_SMTP_URL", &smtp.url()),
        ("LABSHARE_PUBLIC_URL", "http://platform.test"),
    ])
    .await;
    app.create_user("reviewer", "platform_admin").await;
    app.create_user("applicant", "user").await;
    let unit = submitted_unit(&app, 31).await;

    labshare::notify::deliver_workflow_events(&app.state, 100)
        .await
        .unwrap();
    labshare::mail::deliver_due(&app.db, &app.state.mailer, app.now(), 100)
        .await
        .unwrap();
    let mails = smtp.wait_for(1).await;
    let mail = mails
        .iter()
        .find(|m| m.contains("reviewer@test.example"))
        .expect("the reviewer got a mail");
    assert!(decoded(mail).contains("许昌邮件测试企业31"));
    let (approve, reject) = links(mail);
    assert!(approve.starts_with("http://platform.test/email-actions/"));
    let path = |u: &str| u.trim_start_matches("http://platform.test").to_string();

    // GET never acts: a link scanner opening both links changes nothing.
    let browser = new_client();
    let (status, html) = app.get_page(&browser, &path(&reject)).await;
    assert_eq!(status, 200);
    assert!(html.contains("确认驳回"));
    let (status, html) = app.get_page(&browser, &path(&approve)).await;
    assert_eq!(status, 200);
    assert!(html.contains("确认同意"));
    assert_eq!(certification_status(&app, unit).await, "pending");

    // The POST decides, as the reviewer, via email.
    let token = csrf_from(&html).unwrap();
    let res = browser
        .post(app.url(&path(&approve)))
        .form(&[
            ("csrf_token", token.as_str()),
            ("comment", "材料齐全，同意认证"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("已同意"));
    assert_eq!(certification_status(&app, unit).await, "certified");
    let actor: String = sqlx::query_scalar(
        "SELECT u.username FROM workflow_tasks t JOIN users u ON u.id = t.assignee_id WHERE t.action = 'approve'",
    ).fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(actor, "reviewer");

    // The same link, and its sibling, now change nothing and say so.
    let (status, html) = app.get_page(&browser, &path(&approve)).await;
    assert_eq!(status, 410);
    assert!(html.contains("该任务已处理"));
    let res = browser
        .post(app.url(&path(&reject)))
        .form(&[("csrf_token", token.as_str()), ("comment", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
    assert_eq!(certification_status(&app, unit).await, "certified");
}

#[tokio::test]
async fn expired_tampered_and_transferred_links_change_nothing() {
    let app = spawn_app_with(&[]).await;
    app.create_user("reviewer", "platform_admin").await;
    app.create_user("applicant", "user").await;
    let unit = submitted_unit(&app, 32).await;
    // Created after the submission, so the task can be transferred to them (a transfer goes
    // only to someone the step's rule allows, unit.review here).
    app.create_user("reviewer2", "platform_admin").await;
    labshare::notify::deliver_workflow_events(&app.state, 100)
        .await
        .unwrap();
    let (task_id, reviewer): (i64, i64) = sqlx::query_as(
        "SELECT t.id, t.assignee_id FROM workflow_tasks t JOIN users u ON u.id = t.assignee_id WHERE u.username = 'reviewer' AND t.status = 'open'",
    ).fetch_one(&app.db.pool).await.unwrap();
    let mut conn = app.db.acquire().await.unwrap();
    let fresh =
        labshare::email_actions::issue(&mut conn, task_id, reviewer, "approve", 1, app.now())
            .await
            .unwrap();
    let expired = labshare::email_actions::issue(
        &mut conn,
        task_id,
        reviewer,
        "approve",
        1,
        app.now() - 30 * 86_400,
    )
    .await
    .unwrap();
    drop(conn);
    let browser = new_client();

    let (status, html) = app
        .get_page(&browser, &format!("/email-actions/{expired}"))
        .await;
    assert_eq!(status, 410);
    assert!(html.contains("链接已失效"));
    let mut tampered = fresh.clone();
    tampered.replace_range(0..1, if fresh.starts_with('A') { "B" } else { "A" });
    let (status, html) = app
        .get_page(&browser, &format!("/email-actions/{tampered}"))
        .await;
    assert_eq!(status, 410);
    assert!(html.contains("链接已失效"));

    // The reviewer transfers the task in the console: the mailed link stops working.
    let reviewer_token = app.token("reviewer").await;
    let (status, body) = app
        .api("POST", &format!("/api/v1/tasks/{task_id}/actions"), Some(&reviewer_token), Some(json!({"action": "transfer", "comment": "请王科长处理", "data": {"user": "reviewer2"}})))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, html) = app
        .get_page(&browser, &format!("/email-actions/{fresh}"))
        .await;
    assert_eq!(status, 410);
    assert!(html.contains("该任务已处理"));
    assert_eq!(certification_status(&app, unit).await, "pending");
}

#[tokio::test]
async fn guessing_tokens_is_rate_limited() {
    let app = spawn_app_with(&[]).await;
    let browser = new_client();
    for i in 0..labshare::email_actions::MAX_BAD_ATTEMPTS {
        let (status, _) = app
            .get_page(&browser, &format!("/email-actions/guess{i}"))
            .await;
        assert_eq!(status, 410);
    }
    let (status, html) = app.get_page(&browser, "/email-actions/guess-more").await;
    assert_eq!(status, 429);
    assert!(html.contains("尝试次数过多"));
}

#[tokio::test]
async fn a_reviewer_approves_an_instrument_from_a_real_mail() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(&[
        ("LABSHARE_SMTP_URL", &smtp.url()),
        ("LABSHARE_PUBLIC_URL", "http://platform.test"),
    ])
    .await;
    app.create_user("reviewer", "platform_admin").await;
    app.create_user("lab", "unit_manager").await;
    let token = app.token("lab").await;
    let (status, unit) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&token),
            Some(unit_body("许昌邮件测试大学", 33, "managing")),
        )
        .await;
    assert_eq!(status, 201);
    let unit = unit["id"].as_i64().unwrap();
    let (status, created) = app
        .api("POST", "/api/v1/instruments", Some(&token), Some(json!({
            "unit_id": unit, "name": "X射线衍射仪", "model": "D8 ADVANCE", "manufacturer": "布鲁克",
            "category_code": "010300", "value": "2100000.00", "open_to_public": true, "city": "许昌市",
            "customs_supervised": false, "usage_status": "正常", "description": "粉末衍射",
            "location": "实验楼 203", "fee_standard": "200 元/样", "service_content": "物相分析"
        })))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/instruments/{id}/submit"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 202);

    labshare::notify::deliver_workflow_events(&app.state, 100)
        .await
        .unwrap();
    labshare::mail::deliver_due(&app.db, &app.state.mailer, app.now(), 100)
        .await
        .unwrap();
    let mails = smtp.wait_for(1).await;
    let mail = mails
        .iter()
        .find(|m| m.contains("reviewer@test.example"))
        .expect("the reviewer got the task mail");
    assert!(decoded(mail).contains("X射线衍射仪"));
    let (approve, _) = links(mail);
    let path = approve
        .trim_start_matches("http://platform.test")
        .to_string();
    let browser = new_client();
    let (status, html) = app.get_page(&browser, &path).await;
    assert_eq!(status, 200);
    let status_now: String =
        sqlx::query_scalar("SELECT review_status FROM instruments WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(status_now, "pending", "opening the link changes nothing");
    let csrf = csrf_from(&html).unwrap();
    let res = browser
        .post(app.url(&path))
        .form(&[("csrf_token", csrf.as_str()), ("comment", "同意入网")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let status_now: String =
        sqlx::query_scalar("SELECT review_status FROM instruments WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(status_now, "approved");
    let (status, _) = app
        .get_page(&new_client(), &format!("/instruments/{id}"))
        .await;
    assert_eq!(status, 200, "approved from email, the instrument is public");
}

#[tokio::test]
async fn guesses_from_one_address_do_not_lock_a_reviewer_out_of_their_link() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(&[
        ("LABSHARE_SMTP_URL", &smtp.url()),
        ("LABSHARE_PUBLIC_URL", "http://platform.test"),
    ])
    .await;
    app.create_user("reviewer", "platform_admin").await;
    app.create_user("applicant", "user").await;
    submitted_unit(&app, 32).await;
    labshare::notify::deliver_workflow_events(&app.state, 100)
        .await
        .unwrap();
    labshare::mail::deliver_due(&app.db, &app.state.mailer, app.now(), 100)
        .await
        .unwrap();
    let mails = smtp.wait_for(1).await;
    let mail = mails
        .iter()
        .find(|m| m.contains("reviewer@test.example"))
        .expect("the reviewer got a mail");
    let (approve, _) = links(mail);
    let path = approve
        .trim_start_matches("http://platform.test")
        .to_string();

    // An attacker on the same address (all tests come from 127.0.0.1) guesses in parallel.
    let attacker = new_client();
    let guesses = (0..labshare::email_actions::MAX_BAD_ATTEMPTS + 10).map(|i| {
        let c = attacker.clone();
        let url = app.url(&format!("/email-actions/guess{i}"));
        async move { c.get(url).send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(guesses).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        10,
        "{statuses:?}"
    );
    // The reviewer's real link still opens its confirmation page.
    let (status, html) = app.get_page(&new_client(), &path).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("许昌邮件测试企业32"), "{html}");
}
