use labshare::{
    jobs::{self, Outcome},
    mail, notify,
};

use crate::common::{
    smtp::{SmtpServer, decoded},
    spawn_app, spawn_app_with,
};

/// A certified managing unit with a manager who has an email address.
async fn certified_unit_manager(app: &crate::common::TestApp, username: &str, n: u32) -> i64 {
    let uid = app.create_user(username, "unit_manager").await;
    let token = app.token(username).await;
    let name = format!("测试大学{n}");
    crate::common::certified_unit(app, &token, &name, n, "managing", "high_tech").await;
    uid
}

#[tokio::test]
async fn yearly_close_closes_2026_exactly_once() {
    let app = spawn_app().await;
    let manager = certified_unit_manager(&app, "mgr_close", 11).await;
    // A user unit with 2026 vouchers partly used: the rest expires at the close.
    let unit: i64 = sqlx::query_scalar("SELECT unit_id FROM unit_members WHERE user_id = $1")
        .bind(manager)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let (pid, _) = labshare::money::current(&app.db).await.unwrap();
    {
        let mut conn = app.db.acquire().await.unwrap();
        labshare::money::vouchers::grant(
            &mut conn,
            unit,
            2026,
            labshare::domain::Yuan::parse("30000").unwrap(),
            pid,
            app.now(),
        )
        .await
        .unwrap();
    }
    let as_of = jobs::as_of_date(chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap());
    assert_eq!(jobs::period("yearly-close", as_of).unwrap(), "2026");

    let first = jobs::run(&app.state, "yearly-close", as_of).await.unwrap();
    let Outcome::Done(text) = first else {
        panic!("first run should act")
    };
    assert!(text.contains("2026 年度已关闭"), "{text}");
    let second = jobs::run(&app.state, "yearly-close", as_of).await.unwrap();
    assert_eq!(second, Outcome::AlreadyDone);

    let status: String = sqlx::query_scalar("SELECT status FROM fiscal_years WHERE year = 2026")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "closed");
    let next: String = sqlx::query_scalar("SELECT status FROM fiscal_years WHERE year = 2027")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(next, "open");
    let notices: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE user_id = $1")
        .bind(manager)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(notices, 1, "the evaluation round is announced once");
    let balance = labshare::money::vouchers::balance(&app.db, unit, 2026)
        .await
        .unwrap();
    assert_eq!(
        balance.available.to_string(),
        "0.00",
        "unused 2026 vouchers expired once"
    );
    let expired: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM voucher_ledger WHERE kind = 'expire'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(expired, 1);
    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_runs WHERE job = 'yearly-close'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(runs, 1);
}

#[tokio::test]
async fn mail_goes_to_a_real_smtp_server_and_survives_an_outage() {
    // Reserve a port with nothing listening: the SMTP server is "down".
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let app = spawn_app_with(&[("LABSHARE_SMTP_URL", &format!("smtp://{addr}"))]).await;
    certified_unit_manager(&app, "mgr_mail", 12).await;
    let as_of = jobs::as_of_date(chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap());
    assert!(matches!(
        jobs::run(&app.state, "yearly-close", as_of).await.unwrap(),
        Outcome::Done(_)
    ));

    // Delivery fails; the decision (the year closed, the notification) stands.
    let now = app.now();
    let d = mail::deliver_due(&app.db, &app.state.mailer, now, 10)
        .await
        .unwrap();
    assert_eq!((d.sent, d.retried), (0, 1));
    let status: String = sqlx::query_scalar("SELECT status FROM fiscal_years WHERE year = 2026")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "closed");
    let (pending, err): (String, String) = {
        let r: (String, String) = sqlx::query_as("SELECT status, last_error FROM mail_outbox")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        r
    };
    assert_eq!(pending, "pending");
    assert!(!err.is_empty());

    // The server comes back; the retry after the backoff delivers it.
    let server = SmtpServer::start_on(std::net::TcpListener::bind(addr).unwrap());
    let d = mail::deliver_due(&app.db, &app.state.mailer, now + mail::backoff_secs(1), 10)
        .await
        .unwrap();
    assert_eq!(d.sent, 1);
    let msgs = server.wait_for(1).await;
    assert_eq!(msgs.len(), 1);
    let text = decoded(&msgs[0]);
    assert!(
        text.contains("2026 年度大型科研仪器开放共享绩效评价申报已开始"),
        "{text}"
    );
    assert!(msgs[0].contains("mgr_mail@test.example"));
    // Nothing is sent twice.
    let d = mail::deliver_due(&app.db, &app.state.mailer, now + 7200, 10)
        .await
        .unwrap();
    assert_eq!(d.sent, 0);
}

#[tokio::test]
async fn without_smtp_mails_are_written_as_eml_files() {
    let app = spawn_app().await;
    certified_unit_manager(&app, "mgr_file", 13).await;
    let as_of = jobs::as_of_date(chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap());
    jobs::run(&app.state, "yearly-close", as_of).await.unwrap();
    let d = mail::deliver_due(&app.db, &app.state.mailer, app.now(), 10)
        .await
        .unwrap();
    assert_eq!(d.sent, 1);
    let dir = app.state.config.data_dir.join("outbox");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
    assert!(eml.contains("To: mgr_file@test.example"));
}

#[tokio::test]
async fn a_digest_preference_turns_immediate_mail_into_one_daily_digest() {
    let app = spawn_app().await;
    let uid = certified_unit_manager(&app, "mgr_digest", 14).await;
    sqlx::query(
        "INSERT INTO notification_prefs (user_id, kind, mode) VALUES ($1, 'published', 'digest')",
    )
    .bind(uid)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let as_of = jobs::as_of_date(chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap());
    jobs::run(&app.state, "yearly-close", as_of).await.unwrap();
    let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(queued, 0, "digest users get no immediate mail");
    let sent = notify::send_digests(&app.db, &app.state.mailer, "http://x", app.now())
        .await
        .unwrap();
    assert_eq!(sent, 1);
    let subject: String = sqlx::query_scalar("SELECT subject FROM mail_outbox")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(subject.contains("每日汇总"));
    assert_eq!(
        notify::send_digests(&app.db, &app.state.mailer, "http://x", app.now())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn operators_run_jobs_and_see_failed_mail_in_the_console() {
    let app = spawn_app().await;
    app.create_user("ops_admin", "system_admin").await;
    let admin = app.browser_login("ops_admin").await;
    let res = app
        .post_form(
            &admin,
            "/console/jobs",
            "/console/jobs/mail-outbox/run",
            &[],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (status, html) = app.get_page(&admin, "/console/jobs").await;
    assert_eq!(status, 200);
    assert!(html.contains("mail-outbox"));
    assert!(html.contains("已执行") || html.contains("成功"));
    app.create_user("plain_user", "user").await;
    let user = app.browser_login("plain_user").await;
    let (status, _) = app.get_page(&user, "/console/jobs").await;
    assert_eq!(status, 403);
    let (status, html) = app.get_page(&user, "/console/notifications/settings").await;
    assert_eq!(status, 200);
    assert!(html.contains("每日汇总"));
}

/// Every scheduled job has a period, so the scheduler and `labshare jobs run NAME` can run
/// it; `task-reminders` runs the engine's deadlines — here a returned voucher application
/// withdraws itself when its 15 days pass — and does nothing twice in one period.
#[tokio::test]
async fn every_job_runs_and_task_reminders_acts_on_deadlines_once_per_period() {
    let app = spawn_app().await;
    let now = app.state.clock.now();
    for (name, _, _) in jobs::JOBS {
        assert!(jobs::period(name, now).is_ok(), "{name} has no period");
    }
    app.create_user("tr_admin", "platform_admin").await;
    let admin = app.token("tr_admin").await;
    app.create_user("tr_user", "user").await;
    let user = app.token("tr_user").await;
    let unit =
        crate::common::certified_unit(&app, &user, "时限测试企业", 501, "user", "high_tech").await;
    let (status, started) = app
        .api(
            "POST",
            "/api/v1/voucher-applications",
            Some(&user),
            Some(serde_json::json!({"unit_id": unit, "year": 2026})),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let (_, tasks) = app.api("GET", "/api/v1/tasks", Some(&admin), None).await;
    let (status, out) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{}/actions", tasks["items"][0]["id"]),
            Some(&admin),
            Some(serde_json::json!({"action": "return", "comment": "请补充材料"})),
        )
        .await;
    assert_eq!(
        (status, out["state"].as_str()),
        (200, Some("revise")),
        "{out}"
    );
    sqlx::query("UPDATE workflow_tasks SET due_at = $1 WHERE status = 'open'")
        .bind(app.now() - 1)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let outcome = jobs::run(&app.state, "task-reminders", now).await.unwrap();
    assert!(matches!(outcome, Outcome::Done(_)), "{outcome:?}");
    let (_, inst) = app
        .api(
            "GET",
            &format!("/api/v1/workflow-instances/{}", started["instance_id"]),
            Some(&user),
            None,
        )
        .await;
    assert_eq!(
        (inst["state"].as_str(), inst["status"].as_str()),
        (Some("withdrawn"), Some("completed")),
        "{inst}"
    );
    assert_eq!(
        jobs::run(&app.state, "task-reminders", now).await.unwrap(),
        Outcome::AlreadyDone
    );
    assert!(matches!(
        jobs::run(&app.state, "index-check", now).await.unwrap(),
        Outcome::Done(_)
    ));
}

#[tokio::test]
async fn two_concurrent_delivery_passes_send_each_mail_once() {
    let server = SmtpServer::start();
    let app = spawn_app_with(&[("LABSHARE_SMTP_URL", &server.url())]).await;
    let now = app.now();
    let mut tx = app.db.begin_write().await.unwrap();
    for i in 0..20 {
        let m = mail::Rendered {
            subject: format!("测试邮件 {i}"),
            text: format!("第 {i} 封"),
            html: format!("<p>第 {i} 封</p>"),
        };
        mail::enqueue(
            &mut tx,
            &format!("r{i}@test.example"),
            None,
            "test",
            &m,
            now,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let (a, b) = tokio::join!(
        mail::deliver_due(&app.db, &app.state.mailer, now, 100),
        mail::deliver_due(&app.db, &app.state.mailer, now, 100),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 20, "{a:?} {b:?}");
    let msgs = server.wait_for(20).await;
    assert_eq!(msgs.len(), 20);
    for i in 0..20 {
        let to = format!("r{i}@test.example");
        assert_eq!(msgs.iter().filter(|m| m.contains(&to)).count(), 1, "{to}");
    }
    let sent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox WHERE status = 'sent'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(sent, 20);
}

#[tokio::test]
async fn a_stale_claim_is_given_up_and_the_mail_sent() {
    let server = SmtpServer::start();
    let app = spawn_app_with(&[("LABSHARE_SMTP_URL", &server.url())]).await;
    let now = app.now();
    let mut tx = app.db.begin_write().await.unwrap();
    let m = mail::Rendered {
        subject: "测试".into(),
        text: "正文".into(),
        html: "<p>正文</p>".into(),
    };
    let id = mail::enqueue(&mut tx, "stale@test.example", None, "test", &m, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // A sender claimed it and died; a fresh claim is left alone.
    let mut tx = app.db.begin_write().await.unwrap();
    sqlx::query("UPDATE mail_outbox SET status = 'sending', claimed_at = $1, claimed_by = 'dead' WHERE id = $2")
        .bind(now - 60)
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let d = mail::deliver_due(&app.db, &app.state.mailer, now, 10)
        .await
        .unwrap();
    assert_eq!(d.sent, 0);
    let later = now + mail::STALE_CLAIM_SECS;
    let d = mail::deliver_due(&app.db, &app.state.mailer, later, 10)
        .await
        .unwrap();
    assert_eq!(d.sent, 1);
    assert_eq!(server.wait_for(1).await.len(), 1);
}
