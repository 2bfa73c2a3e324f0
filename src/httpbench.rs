//! `labshare bench http` (页面吞吐基准): start this binary as `serve --demo` on a fresh SQLite
//! database under the data directory, then measure each public page's requests per second
//! and print it as a share of `/healthz` measured in the same run (the machine's noise cancels
//! out of the ratio). Uses `wrk` when it is installed (the issue's `wrk -t2 -c32`), else a
//! built-in keep-alive client. With `--uncached` the same pages are measured a second time
//! against a node started with `LABSHARE_PAGE_CACHE=0`. Loopback only; every load is bounded
//! in time and the servers are stopped at the end.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::config::Config;

/// Options of one benchmark run.
#[derive(Debug, Clone)]
pub struct Options {
    pub seconds: u64,
    pub connections: usize,
    pub runs: usize,
    pub uncached: bool,
    /// `wrk`, `builtin` or `auto` (wrk when installed).
    pub tool: String,
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start(
    config: &Config,
    dir: &Path,
    db_url: &str,
    cache: bool,
) -> anyhow::Result<(Server, String)> {
    let port = free_port()?;
    std::fs::create_dir_all(dir)?;
    let child = Command::new(std::env::current_exe()?)
        .args(["serve", "--demo"])
        .env("LABSHARE_DATA_DIR", dir)
        .env("LABSHARE_DATABASE_URL", db_url)
        .env("LABSHARE_BIND", format!("127.0.0.1:{port}"))
        .env("LABSHARE_TEMPLATES_DIR", &config.templates_dir)
        .env("LABSHARE_STATIC_DIR", &config.static_dir)
        .env("LABSHARE_WORKFLOWS_DIR", &config.workflows_dir)
        .env("LABSHARE_LOG", "error")
        .env("LABSHARE_PAGE_CACHE", if cache { "1" } else { "0" })
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok((Server(child), format!("http://127.0.0.1:{port}")))
}

async fn ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "server {base} not ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn has_wrk() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Requests per second of `url` under `wrk -t2 -cC -dSs`.
fn wrk(url: &str, o: &Options) -> anyhow::Result<f64> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{}", o.connections),
            &format!("-d{}s", o.seconds),
            url,
        ])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        !text.contains("Non-2xx"),
        "{url}: non-2xx answers under load:\n{text}"
    );
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("{url}: no Requests/sec in wrk output:\n{text}"))
}

/// Requests per second of `url` with `connections` keep-alive clients for `seconds`.
async fn builtin(url: &str, o: &Options) -> anyhow::Result<f64> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(o.seconds);
    let mut tasks = Vec::new();
    for _ in 0..o.connections {
        let (client, url, done, errors) = (
            client.clone(),
            url.to_string(),
            done.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    anyhow::ensure!(
        errors.load(Ordering::Relaxed) == 0,
        "{url}: errors under load"
    );
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The pages measured, `/healthz` first (the baseline).
fn pages(instrument: i64) -> Vec<(String, String)> {
    let q = "%E7%94%B5%E9%95%9C"; // 电镜
    vec![
        ("/healthz".into(), "/healthz".into()),
        ("/ home".into(), "/".into()),
        ("/instruments".into(), "/instruments".into()),
        ("/search?q=电镜".into(), format!("/search?q={q}")),
        (
            "/api/v1/search?q=电镜".into(),
            format!("/api/v1/search?q={q}"),
        ),
        (
            "/instruments/{id}".into(),
            format!("/instruments/{instrument}"),
        ),
        (
            "/instruments/{id}/book".into(),
            format!("/instruments/{instrument}/book"),
        ),
    ]
}

/// Measure one server: per page, the req/s of each run and its share of that run's `/healthz`.
async fn measure(base: &str, instrument: i64, o: &Options, wrk_ok: bool) -> anyhow::Result<String> {
    let client = reqwest::Client::new();
    let pages = pages(instrument);
    for (label, path) in &pages {
        let r = client.get(format!("{base}{path}")).send().await?;
        anyhow::ensure!(r.status().is_success(), "{label}: {}", r.status());
    }
    let mut rates = vec![Vec::new(); pages.len()];
    for _ in 0..o.runs.max(1) {
        for (i, (_, path)) in pages.iter().enumerate() {
            let url = format!("{base}{path}");
            let rate = if wrk_ok {
                wrk(&url, o)?
            } else {
                builtin(&url, o).await?
            };
            rates[i].push(rate);
        }
    }
    let mut out = String::new();
    out.push_str(&format!(
        "{:<26} {:>12} {:>10}   per run (req/s)\n",
        "page", "median req/s", "of /healthz"
    ));
    for (i, (label, _)) in pages.iter().enumerate() {
        let mut shares: Vec<f64> = rates[i]
            .iter()
            .zip(&rates[0])
            .map(|(r, h)| r / h.max(1e-9))
            .collect();
        let runs: Vec<String> = rates[i].iter().map(|r| format!("{r:.0}")).collect();
        let med = median(&mut rates[i].clone());
        out.push_str(&format!(
            "{label:<26} {med:>12.0} {:>9.1}%   {}\n",
            median(&mut shares) * 100.0,
            runs.join(", ")
        ));
    }
    Ok(out)
}

/// Run the benchmark and return the report.
pub async fn run(config: Config, o: Options) -> anyhow::Result<String> {
    let root = config
        .data_dir
        .join(format!("bench-http-{}", std::process::id()));
    let db_url = format!("sqlite://{}", root.join("bench.db").display());
    let wrk_ok = match o.tool.as_str() {
        "wrk" => true,
        "builtin" => false,
        _ => has_wrk(),
    };
    let result = async {
        let client = reqwest::Client::new();
        let (server, base) = start(&config, &root.join("cached"), &db_url, true)?;
        ready(&client, &base).await?;
        let found: serde_json::Value = client
            .get(format!(
                "{base}/api/v1/search?q=%E7%94%B5%E9%95%9C&type=instrument"
            ))
            .send()
            .await?
            .json()
            .await?;
        let instrument = found["items"][0]["id"]
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("no instrument found in the demo data"))?;
        let mut report = format!(
            "labshare bench http — demo data on SQLite, {} × {} s per page, {} connections, {}\n\n\
             page cache on:\n",
            o.runs,
            o.seconds,
            o.connections,
            if wrk_ok { "wrk -t2" } else { "built-in client" }
        );
        report.push_str(&measure(&base, instrument, &o, wrk_ok).await?);
        drop(server);
        if o.uncached {
            let (server, base) = start(&config, &root.join("uncached"), &db_url, false)?;
            ready(&client, &base).await?;
            report.push_str("\npage cache off (LABSHARE_PAGE_CACHE=0):\n");
            report.push_str(&measure(&base, instrument, &o, wrk_ok).await?);
            drop(server);
        }
        anyhow::Ok(report)
    }
    .await;
    let _ = std::fs::remove_dir_all(&root);
    result
}
