//! `labshare bench load`: a bounded load run against several real nodes on one database. It
//! starts N `labshare serve` processes (this binary) with their own data directories on the
//! configured database (demo data loaded when empty), then C concurrent clients run a mixed
//! workload for S seconds — search, portal pages, bookings (request → cancel) and task
//! decisions — spread over the nodes, and reports throughput, p50/p99 and errors per kind.
//! Only loopback addresses are used; the run stops by itself.

use std::{
    collections::BTreeMap,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{app::Base, config::Config};

/// Latencies (µs) and errors of one kind of request.
#[derive(Default)]
struct Tally {
    micros: Vec<u64>,
    errors: u64,
}

struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn token(client: &reqwest::Client, base: &str, user: &str) -> anyhow::Result<String> {
    let body: Value = client
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": user, "password": "Demo2026pass"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    body["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no token for {user} (demo data needed)"))
}

/// Run the load and return the report.
pub async fn run(
    config: Config,
    nodes: usize,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<String> {
    let exe = std::env::current_exe()?;
    let base = Base::open(config.clone()).await?;
    if crate::demo::is_empty(&base.db).await? {
        crate::demo::load(&base.db, &base.clock).await?;
    }
    let root = config.data_dir.join(format!("load-{}", std::process::id()));
    let mut children = Vec::new();
    let mut urls = Vec::new();
    for i in 0..nodes.max(1) {
        let port = free_port()?;
        let dir = root.join(format!("node{i}"));
        std::fs::create_dir_all(&dir)?;
        children.push(
            Command::new(&exe)
                .arg("serve")
                .env("LABSHARE_DATA_DIR", &dir)
                .env("LABSHARE_DATABASE_URL", &config.database_url)
                .env("LABSHARE_BIND", format!("127.0.0.1:{port}"))
                .env("LABSHARE_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()?,
        );
        urls.push(format!("http://127.0.0.1:{port}"));
    }
    let _nodes = Nodes(children);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .timeout(Duration::from_secs(30))
        .build()?;
    for u in &urls {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = client.get(format!("{u}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "node {u} not ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let user = token(&client, &urls[0], "senyuan").await?;
    let reviewer = token(&client, &urls[0], "bureau").await?;
    let unit: i64 = sqlx::query_scalar(
        "SELECT m.unit_id FROM unit_members m JOIN users u ON u.id = m.user_id WHERE u.username = 'senyuan'",
    )
    .fetch_one(&base.db.pool)
    .await?;
    let instruments: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM instruments WHERE review_status = 'approved' AND open_to_public = 1 ORDER BY id LIMIT 200",
    )
    .fetch_all(&base.db.pool)
    .await?;
    anyhow::ensure!(!instruments.is_empty(), "no bookable instrument");
    let tallies: Arc<Mutex<BTreeMap<&'static str, Tally>>> = Arc::default();
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds.max(1));
    let mut tasks = Vec::new();
    for c in 0..clients.max(1) {
        let (client, urls, user, reviewer, tallies, instruments) = (
            client.clone(),
            urls.clone(),
            user.clone(),
            reviewer.clone(),
            tallies.clone(),
            instruments.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while Instant::now() < until {
                let base = &urls[i % urls.len()];
                i += 1;
                let kind: &'static str = match i % 10 {
                    0..=3 => "search",
                    4..=6 => "page",
                    7 | 8 => "booking",
                    _ => "approval",
                };
                let t0 = Instant::now();
                let ok = match kind {
                    "search" => {
                        let q = ["电镜", "色谱", "质谱仪", "光谱", "SEM"][i % 5];
                        client
                            .get(format!("{base}/api/v1/search?q={q}"))
                            .send()
                            .await
                            .is_ok_and(|r| r.status().is_success())
                    }
                    "page" => {
                        let path = ["/", "/instruments", "/search?q=显微镜"][i % 3];
                        client
                            .get(format!("{base}{path}"))
                            .send()
                            .await
                            .is_ok_and(|r| r.status().is_success())
                    }
                    "booking" => book_and_cancel(&client, base, &user, unit, &instruments, i).await,
                    _ => decide_one(&client, base, &reviewer).await,
                };
                let us = t0.elapsed().as_micros() as u64;
                if let Ok(mut t) = tallies.lock() {
                    let e = t.entry(kind).or_default();
                    if ok {
                        e.micros.push(us);
                    } else {
                        e.errors += 1;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&root);
    let tallies = tallies.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut out = format!(
        "{} 个节点，{} 个并发客户端，{elapsed:.1} 秒（{:?}）\n| kind | ok | errors | req/s | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- | --- |\n",
        urls.len(),
        clients,
        base.db.backend
    );
    let mut all = Tally::default();
    for (kind, t) in tallies.iter() {
        out.push_str(&row(kind, t, elapsed));
        all.micros.extend(&t.micros);
        all.errors += t.errors;
    }
    out.push_str(&row("all", &all, elapsed));
    Ok(out)
}

fn row(kind: &str, t: &Tally, elapsed: f64) -> String {
    let mut v = t.micros.clone();
    v.sort_unstable();
    let pct = |p: f64| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i] as f64 / 1000.0
    };
    format!(
        "| {kind} | {} | {} | {:.0} | {:.1} | {:.1} |\n",
        v.len(),
        t.errors,
        v.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    )
}

/// Request a booking on a working day ahead, then cancel it (so the calendar does not fill).
/// A taken slot (409) or a rule of the instrument (422) is an answer, not an error.
async fn book_and_cancel(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    unit: i64,
    instruments: &[i64],
    i: usize,
) -> bool {
    let mut day = chrono::Utc::now().date_naive() + chrono::Duration::days(2 + (i % 20) as i64);
    while !crate::calendar::is_working_day(day) {
        day += chrono::Duration::days(1);
    }
    let hour = 9 + (i / 20) % 7;
    let body = json!({"instrument_id": instruments[i % instruments.len()], "unit_id": unit,
        "start": format!("{day}T{hour:02}:00:00+08:00"), "end": format!("{day}T{:02}:00:00+08:00", hour + 1),
        "purpose": "压力测试"});
    let Ok(res) = client
        .post(format!("{base}/api/v1/bookings"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
    else {
        return false;
    };
    match res.status().as_u16() {
        201 => {}
        409 | 422 => return true,
        _ => return false,
    }
    let Ok(b) = res.json::<Value>().await else {
        return false;
    };
    let id = b["id"].as_i64().unwrap_or(0);
    client
        .post(format!("{base}/api/v1/bookings/{id}/cancel"))
        .bearer_auth(token)
        .json(&json!({"reason": "压力测试结束"}))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Decide the reviewer's first open task (approve); no open task left is an answer too.
async fn decide_one(client: &reqwest::Client, base: &str, token: &str) -> bool {
    let Ok(r) = client
        .get(format!("{base}/api/v1/tasks"))
        .bearer_auth(token)
        .send()
        .await
    else {
        return false;
    };
    let Ok(tasks) = r.json::<Value>().await else {
        return false;
    };
    let Some(id) = tasks["items"][0]["id"].as_i64() else {
        return true;
    };
    match client
        .post(format!("{base}/api/v1/tasks/{id}/actions"))
        .bearer_auth(token)
        .json(&json!({"action": "approve", "comment": "压测"}))
        .send()
        .await
    {
        // 409 task_closed: another client decided it first.
        Ok(r) => r.status().is_success() || r.status().as_u16() == 409,
        Err(_) => false,
    }
}
