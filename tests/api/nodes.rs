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

use crate::common::fresh_database_url;

const BIN: &str = env!("CARGO_BIN_EXE_labshare");

fn crate_path(p: &str) -> String {
    format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))
}

fn labshare(data_dir: &std::path::Path, db_url: &str) -> Command {
    let mut c = Command::new(BIN);
    c.env("LABSHARE_DATA_DIR", data_dir)
        .env("LABSHARE_DATABASE_URL", db_url)
        .env("LABSHARE_TEMPLATES_DIR", crate_path("templates"))
        .env("LABSHARE_STATIC_DIR", crate_path("static"))
        .env("LABSHARE_WORKFLOWS_DIR", crate_path("workflows"))
        .env("LABSHARE_INDEX_CONFIG_DIR", crate_path("index-config"))
        .env("LABSHARE_DEMO_ON_EMPTY", "0")
        .env("LABSHARE_LOG", "warn")
        .env_remove("LABSHARE_NOW")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
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
