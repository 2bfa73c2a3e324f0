//! Several `labshare serve` processes on one database, each with its own data directory (its
//! own search index): a change made anywhere is searchable on every node, also on a node that
//! was down while it happened. On PostgreSQL when `LABSHARE_TEST_DATABASE_URL` is set, else
//! several processes on one SQLite file.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use labshare::store::Db;
use serde_json::Value;

use crate::common::{
    fresh_database_url,
    process::{self, free_port},
};

/// A quiet `labshare` process.
fn labshare(data_dir: &std::path::Path, db_url: &str) -> Command {
    let mut c = process::labshare(data_dir, db_url);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// A serving node; killed when dropped.
struct Node {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl Node {
    fn start(dir: std::path::PathBuf, db_url: &str, port: u16) -> Node {
        std::fs::create_dir_all(&dir).unwrap();
        let child = labshare(&dir, db_url)
            .arg("serve")
            .env("LABSHARE_BIND", format!("127.0.0.1:{port}"))
            .spawn()
            .expect("start a node");
        Node {
            child: Some(child),
            port,
            dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn ready(&self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(r) = client.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node :{} not ready in 90 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn finds(&self, client: &reqwest::Client, q: &str, id: i64) -> bool {
        let Ok(r) = client
            .get(self.url(&format!("/api/v1/search?q={q}")))
            .send()
            .await
        else {
            return false;
        };
        let body: Value = r.json().await.unwrap_or_default();
        body["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|i| i["id"] == id && i["type"] == "instrument")
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An approved instrument, written as the approval writes it: the status and the change-log
/// row in one transaction.
async fn approved_instrument(db: &Db, name: &str, model: &str) -> i64 {
    let unit: i64 =
        sqlx::query_scalar("SELECT id FROM units WHERE kind = 'managing' ORDER BY id LIMIT 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let now = chrono::Utc::now().timestamp();
    let mut tx = db.begin_write().await.unwrap();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, model, manufacturer, category_code, value_fen, \
         review_status, created_at, updated_at) VALUES ($1, $2, $3, '测试厂商', '010100', 100000000, \
         'approved', $4, $4) RETURNING id",
    )
    .bind(unit)
    .bind(name)
    .bind(model)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    labshare::search::enqueue(&mut tx, "instrument", id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

/// How long until every node finds the instrument (panics after `limit`).
async fn visible_on_all(
    nodes: &[&Node],
    client: &reqwest::Client,
    q: &str,
    id: i64,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    for n in nodes {
        while !n.finds(client, q, id).await {
            assert!(
                started.elapsed() < limit,
                "instrument {id} not searchable on node :{} after {limit:?}",
                n.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    started.elapsed()
}

#[tokio::test]
async fn a_change_through_any_node_is_searchable_on_every_node_also_one_that_was_down() {
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _guard) = fresh_database_url(dir.path()).await;
    let out = labshare(&dir.path().join("loader"), &db_url)
        .arg("demo-data")
        .output()
        .expect("load demo data");
    assert!(out.status.success(), "demo-data failed");
    let client = reqwest::Client::new();
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| Node::start(dir.path().join(format!("node{i}")), &db_url, free_port()))
        .collect();
    for n in &nodes {
        n.ready(&client).await;
    }
    let db = Db::connect(&db_url).await.unwrap();

    // A change made once is applied by every node (each from its own cursor).
    let first = approved_instrument(&db, "同步测试电子显微镜", "SyncA-100").await;
    let took = visible_on_all(
        &nodes.iter().collect::<Vec<_>>(),
        &client,
        "SyncA-100",
        first,
        Duration::from_secs(10),
    )
    .await;
    assert!(took < Duration::from_secs(2), "took {took:?}");

    // Node C goes away (a rolling deploy); a change is made meanwhile …
    nodes[2].stop();
    let second = approved_instrument(&db, "同步测试质谱仪", "SyncB-200").await;
    visible_on_all(
        &[&nodes[0], &nodes[1]],
        &client,
        "SyncB-200",
        second,
        Duration::from_secs(10),
    )
    .await;
    // … and the others do not delete what C has not seen.
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM search_outbox WHERE doc_id = $1")
        .bind(second)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(kept, 1, "the change log row for C was removed");

    // C comes back with its own index and catches up before it says it is ready.
    let c_dir = nodes[2].dir.clone();
    nodes[2] = Node::start(c_dir, &db_url, free_port());
    nodes[2].ready(&client).await;
    assert!(
        nodes[2].finds(&client, "SyncB-200", second).await,
        "a ready node must already find what changed while it was down"
    );
    assert!(nodes[2].finds(&client, "SyncA-100", first).await);

    // Every node reported its cursor.
    let reported: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM search_nodes")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(reported >= 3, "{reported} nodes reported a cursor");
    db.pool.close().await;
}

async fn login(client: &reqwest::Client, node: &Node, user: &str) -> String {
    let res = client
        .post(node.url("/api/v1/session"))
        .json(&serde_json::json!({"username": user, "password": "Demo2026pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "login {user}");
    let body: Value = res.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

/// POST and return the status and body, or None once the node is gone.
async fn post(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
) -> Option<(u16, Value)> {
    let res = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .ok()?;
    let status = res.status().as_u16();
    let body = res.json().await.ok()?;
    Some((status, body))
}

#[tokio::test]
async fn a_node_killed_mid_stream_loses_no_acknowledged_change_and_leaves_nothing_half_done() {
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _guard) = fresh_database_url(dir.path()).await;
    let out = labshare(&dir.path().join("loader"), &db_url)
        .arg("demo-data")
        .output()
        .expect("load demo data");
    assert!(out.status.success(), "demo-data failed");
    let db = Db::connect(&db_url).await.unwrap();
    let client = reqwest::Client::new();
    let mut node = Node::start(dir.path().join("node"), &db_url, free_port());
    node.ready(&client).await;
    let user = login(&client, &node, "senyuan").await;
    let owner = login(&client, &node, "xcu_lab").await;
    let bureau = login(&client, &node, "bureau").await;
    let unit: i64 = sqlx::query_scalar(
        "SELECT m.unit_id FROM unit_members m JOIN users u ON u.id = m.user_id WHERE u.username = 'senyuan'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let instruments: Vec<i64> = sqlx::query_scalar(
        "SELECT i.id FROM instruments i JOIN unit_members m ON m.unit_id = i.unit_id JOIN users u ON u.id = m.user_id \
         WHERE u.username = 'xcu_lab' AND i.review_status = 'approved' AND i.open_to_public = 1 ORDER BY i.id LIMIT 12",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(!instruments.is_empty());
    // Working days from the day after tomorrow on, one hour each.
    let mut days = Vec::new();
    let mut d = chrono::Utc::now().date_naive() + chrono::Duration::days(2);
    while days.len() < 15 {
        if labshare::calendar::is_working_day(d) {
            days.push(d);
        }
        d += chrono::Duration::days(1);
    }
    let slots: Vec<(i64, String, String)> = days
        .iter()
        .flat_map(|d| {
            instruments.iter().map(move |i| {
                (
                    *i,
                    format!("{d}T09:00:00+08:00"),
                    format!("{d}T10:00:00+08:00"),
                )
            })
        })
        .collect();

    // Drive bookings (request → quote → confirm with vouchers) and approvals at the node …
    let base = node.url("");
    let booking_driver = {
        let (client, base, user, owner) =
            (client.clone(), base.clone(), user.clone(), owner.clone());
        tokio::spawn(async move {
            let mut acked: Vec<(i64, &'static str)> = Vec::new();
            for (instrument, start, end) in slots {
                let body = serde_json::json!({"instrument_id": instrument, "unit_id": unit,
                    "start": start, "end": end, "purpose": "断电测试"});
                let b = match post(&client, format!("{base}/api/v1/bookings"), &user, body).await {
                    Some((201, b)) => b,
                    Some(_) => continue,
                    None => break,
                };
                let id = b["id"].as_i64().unwrap();
                acked.push((id, "requested"));
                let url = format!("{base}/api/v1/bookings/{id}/quote");
                let r = post(
                    &client,
                    url,
                    &owner,
                    serde_json::json!({"price": "1000.00"}),
                )
                .await;
                match r {
                    Some((200, _)) => {}
                    // A rule of that instrument (e.g. customs supervision): the next one.
                    Some(_) => continue,
                    // The node is gone.
                    None => break,
                }
                acked.push((id, "quoted"));
                let url = format!("{base}/api/v1/bookings/{id}/confirm");
                let r = post(
                    &client,
                    url,
                    &user,
                    serde_json::json!({"voucher_amount": "100.00"}),
                )
                .await;
                match r {
                    Some((200, _)) => {}
                    // A rule of that instrument (e.g. customs supervision): the next one.
                    Some(_) => continue,
                    // The node is gone.
                    None => break,
                }
                acked.push((id, "confirmed"));
            }
            acked
        })
    };
    let approval_driver = {
        let (client, base, bureau) = (client.clone(), base.clone(), bureau.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let Ok(res) = client
                .get(format!("{base}/api/v1/tasks"))
                .bearer_auth(&bureau)
                .send()
                .await
            else {
                return acked;
            };
            let tasks: Value = res.json().await.unwrap_or_default();
            for t in tasks["items"].as_array().cloned().unwrap_or_default() {
                let id = t["id"].as_i64().unwrap();
                let url = format!("{base}/api/v1/tasks/{id}/actions");
                match post(
                    &client,
                    url,
                    &bureau,
                    serde_json::json!({"action": "approve", "comment": "同意"}),
                )
                .await
                {
                    Some((200, _)) => acked.push(id),
                    Some(_) => {}
                    None => break,
                }
            }
            acked
        })
    };
    // … and kill it with SIGKILL while they run.
    tokio::time::sleep(Duration::from_millis(700)).await;
    node.stop();
    let bookings = booking_driver.await.unwrap();
    let decided = approval_driver.await.unwrap();
    assert!(
        !bookings.is_empty(),
        "no request got through before the kill"
    );
    eprintln!(
        "killed after {} acknowledged booking steps and {} decisions",
        bookings.len(),
        decided.len()
    );

    // After a restart, every acknowledged change is there …
    let node = Node::start(node.dir.clone(), &db_url, free_port());
    node.ready(&client).await;
    for (id, state) in &bookings {
        let status: String = sqlx::query_scalar("SELECT status FROM bookings WHERE id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .unwrap_or_else(|_| panic!("acknowledged booking {id} is missing"));
        let order = ["requested", "quoted", "confirmed"];
        let at = |s: &str| order.iter().position(|o| *o == s).unwrap_or(usize::MAX);
        assert!(
            at(&status) >= at(state),
            "booking {id}: {status}, acknowledged {state}"
        );
    }
    for id in &decided {
        let status: String = sqlx::query_scalar("SELECT status FROM workflow_tasks WHERE id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(
            status, "approved",
            "acknowledged decision on task {id} lost"
        );
    }
    // … nothing is half-done: no confirmed booking paid with vouchers lacks its ledger entry,
    // no decided task lacks its audit entry …
    let unledgered: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM bookings b WHERE b.status = 'confirmed' AND b.voucher_fen > 0 \
         AND NOT EXISTS (SELECT 1 FROM voucher_ledger l WHERE l.booking_id = b.id)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(unledgered, 0, "confirmed bookings without ledger rows");
    let unaudited: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_tasks t WHERE t.decided_at IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM workflow_audit a WHERE a.instance_id = t.instance_id AND a.at >= t.decided_at)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(unaudited, 0, "decided tasks without an audit entry");
    // … and the decision log's hash chain verifies.
    let out = labshare(&dir.path().join("loader"), &db_url)
        .args(["audit", "verify"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    drop(node);
    db.pool.close().await;
}

#[tokio::test]
async fn a_job_fired_on_three_nodes_at_the_same_instant_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _guard) = fresh_database_url(dir.path()).await;
    let out = labshare(&dir.path().join("loader"), &db_url)
        .arg("demo-data")
        .output()
        .unwrap();
    assert!(out.status.success());
    // Three processes, each its own node, start the yearly close for the same period at once.
    let children: Vec<Child> = (0..3)
        .map(|i| {
            labshare(&dir.path().join(format!("node{i}")), &db_url)
                .args(["jobs", "run", "yearly-close", "--as-of", "2027-01-01"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "a node's job run failed");
            String::from_utf8_lossy(&out.stdout).to_string()
        })
        .collect();
    let ran = outputs.iter().filter(|o| o.contains("已执行：")).count();
    let skipped = outputs.iter().filter(|o| o.contains("此前已执行")).count();
    assert_eq!((ran, skipped), (1, 2), "{outputs:?}");
    let db = Db::connect(&db_url).await.unwrap();
    let runs: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM job_runs WHERE job = 'yearly-close' AND status = 'succeeded'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(runs, 1);
    // The close notified each managing unit's manager once, not three times.
    let notices: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT user_id, CAST(COUNT(*) AS BIGINT) FROM notifications WHERE title LIKE '%绩效评价申报已开始%' GROUP BY user_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(!notices.is_empty());
    assert!(notices.iter().all(|(_, n)| *n == 1), "{notices:?}");
    db.pool.close().await;
}

#[tokio::test]
async fn a_file_stored_through_one_node_is_served_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _guard) = fresh_database_url(dir.path()).await;
    let out = labshare(&dir.path().join("loader"), &db_url)
        .arg("demo-data")
        .output()
        .unwrap();
    assert!(out.status.success());
    let client = reqwest::Client::new();
    let a = Node::start(dir.path().join("a"), &db_url, free_port());
    let b = Node::start(dir.path().join("b"), &db_url, free_port());
    a.ready(&client).await;
    b.ready(&client).await;
    // A photo of an approved instrument, stored the way node A's upload handler stores it
    // (its data directory, its database).
    let db = Db::connect(&db_url).await.unwrap();
    let png: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R', 0,
        0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0a, b'I', b'D',
        b'A', b'T', 0x78, 0x9c, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0d, 0x0a, 0x2d, 0xb4, 0, 0, 0, 0,
        b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82,
    ];
    let upload = labshare::uploads::store(
        &db,
        &a.dir,
        "照片.png",
        png,
        labshare::uploads::Purpose::Photo,
        1,
        chrono::Utc::now().timestamp(),
    )
    .await
    .expect("store the photo");
    let instrument: i64 = sqlx::query_scalar(
        "SELECT id FROM instruments WHERE review_status = 'approved' ORDER BY id LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let mut tx = db.begin_write().await.unwrap();
    sqlx::query(
        "INSERT INTO instrument_photos (instrument_id, upload_id, created_at) VALUES ($1, $2, $3)",
    )
    .bind(instrument)
    .bind(upload.id)
    .bind(chrono::Utc::now().timestamp())
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let url = format!("/uploads/{}", upload.stored_name);
    let from_a = client.get(a.url(&url)).send().await.unwrap();
    assert_eq!(from_a.status(), 200);
    let from_b = client.get(b.url(&url)).send().await.unwrap();
    match db.backend {
        // Several nodes on PostgreSQL: the bytes live in the database, every node serves them.
        labshare::store::Backend::Postgres => {
            assert_eq!(from_b.status(), 200, "node B cannot serve node A's upload");
            assert_eq!(from_b.bytes().await.unwrap().as_ref(), png);
        }
        // The embedded default keeps files in the node's own data directory.
        labshare::store::Backend::Sqlite => assert_eq!(from_b.status(), 404),
    }
    db.pool.close().await;
}

#[tokio::test]
async fn three_nodes_deliver_each_queued_mail_once_to_a_real_smtp_server() {
    // Several serving nodes are a PostgreSQL deployment (docs/deploy.md); CI runs this with
    // LABSHARE_TEST_DATABASE_URL. On SQLite one process sends (tests/api/jobs.rs covers two
    // concurrent passes there).
    if std::env::var("LABSHARE_TEST_DATABASE_URL").is_err() {
        eprintln!("three_nodes_deliver…: PostgreSQL only, run with LABSHARE_TEST_DATABASE_URL");
        return;
    }
    let server = crate::common::smtp::SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _guard) = fresh_database_url(dir.path()).await;
    let out = labshare(&dir.path().join("loader"), &db_url)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(out.status.success());
    let db = Db::connect(&db_url).await.unwrap();
    // Queued before the nodes start, so all three senders find them at once.
    let now = chrono::Utc::now().timestamp();
    let mut tx = db.begin_write().await.unwrap();
    for i in 0..30 {
        let m = labshare::mail::Rendered {
            subject: format!("多节点邮件 {i}"),
            text: format!("第 {i} 封"),
            html: format!("<p>第 {i} 封</p>"),
        };
        labshare::mail::enqueue(
            &mut tx,
            &format!("n{i}@test.example"),
            None,
            "test",
            &m,
            now,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let client = reqwest::Client::new();
    let nodes: Vec<Node> = (0..3)
        .map(|i| {
            let dir = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let port = free_port();
            let child = labshare(&dir, &db_url)
                .arg("serve")
                .env("LABSHARE_BIND", format!("127.0.0.1:{port}"))
                .env("LABSHARE_SMTP_URL", server.url())
                .spawn()
                .unwrap();
            Node {
                child: Some(child),
                port,
                dir,
            }
        })
        .collect();
    for n in &nodes {
        n.ready(&client).await;
    }
    let got = server.wait_for(30).await;
    // Give a double send the time to show up.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got_after = server.messages();
    assert_eq!(got.len(), 30);
    assert_eq!(got_after.len(), 30, "a mail was sent twice");
    let sent: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM mail_outbox WHERE status = 'sent'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(sent, 30);
    drop(nodes);
    db.pool.close().await;
}

#[tokio::test]
async fn nodes_starting_together_on_a_new_database_record_each_workflow_version_once() {
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _guard) = fresh_database_url(dir.path()).await;
    let out = labshare(&dir.path().join("m"), &db_url)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(out.status.success());
    // Four processes that each load (and record) the workflow definitions at the same time.
    let children: Vec<Child> = (0..4)
        .map(|i| {
            labshare(&dir.path().join(format!("n{i}")), &db_url)
                .args(["jobs", "run", "index-check"])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let db = Db::connect(&db_url).await.unwrap();
    let dupes: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT key FROM workflow_definitions GROUP BY key HAVING COUNT(*) > 1) d",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(dupes, 0, "one content recorded as several versions");
    db.pool.close().await;
}
