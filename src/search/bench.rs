//! `labshare bench search` (检索基准): generate N realistic instruments in a fresh SQLite
//! database, build the index, then time a fixed query mix through the engine and through
//! SQLite `LIKE` on the same rows.

use std::{path::Path, time::Instant};

use crate::store::WriteQuery;
use crate::{demo, search::SearchIndex, search::SearchParams, store::Db};

/// The fixed query mix: Chinese terms, abbreviations, acronyms, models, pinyin, mixed input.
pub const QUERY_MIX: &[&str] = &[
    "电镜",
    "扫描电子显微镜",
    "SEM",
    "GC-MS",
    "色质联用",
    "气相色谱",
    "7890B",
    "Sigma 300",
    "smdj",
    "顯微鏡",
    "蔡司 电镜",
    "XRD",
    "核磁共振",
    "液相色谱",
    "安捷伦",
    "拉曼光谱仪",
    "示波器",
    "万能试验机",
    "原子力显微镜",
    "流式细胞仪",
];

pub struct BenchReport {
    pub n: usize,
    pub insert_s: f64,
    pub build_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub qps: f64,
    pub like_mean_ms: f64,
    pub engine_mean_ms: f64,
    /// SQLite FTS5 with the trigram tokenizer over the same rows: build time, p50/p99 and the
    /// queries of the mix it returns nothing for.
    pub fts_build_s: f64,
    pub fts_p50_ms: f64,
    pub fts_p99_ms: f64,
    pub fts_empty: Vec<String>,
    pub engine_empty: Vec<String>,
    /// RSS right after the index build, at the end, and the peak (VmHWM).
    pub rss_after_build_mb: f64,
    pub rss_mb: f64,
    pub peak_rss_mb: f64,
    /// Reopening the built index and answering the first query.
    pub cold_start_ms: f64,
    pub runs: usize,
    /// Mean latency per query of the mix, slowest first.
    pub per_query: Vec<(String, f64)>,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "instruments:        {}", self.n)?;
        writeln!(f, "insert rows:        {:.1} s", self.insert_s)?;
        writeln!(f, "index build:        {:.1} s", self.build_s)?;
        writeln!(
            f,
            "query mix:          {} queries × {} runs (page of 20 with all facets)",
            QUERY_MIX.len(),
            self.runs
        )?;
        writeln!(f, "latency p50:        {:.2} ms", self.p50_ms)?;
        writeln!(f, "latency p99:        {:.2} ms", self.p99_ms)?;
        writeln!(
            f,
            "throughput:         {:.0} queries/s (one thread)",
            self.qps
        )?;
        writeln!(f, "engine mean:        {:.2} ms", self.engine_mean_ms)?;
        writeln!(
            f,
            "SQLite LIKE mean:   {:.2} ms (page of 20 + COUNT)",
            self.like_mean_ms
        )?;
        writeln!(
            f,
            "speed-up vs LIKE:   {:.0}×",
            self.like_mean_ms / self.engine_mean_ms.max(1e-9)
        )?;
        writeln!(
            f,
            "FTS5 trigram:       build {:.1} s, p50 {:.2} ms, p99 {:.2} ms, {} of {} queries return nothing: {}",
            self.fts_build_s,
            self.fts_p50_ms,
            self.fts_p99_ms,
            self.fts_empty.len(),
            QUERY_MIX.len(),
            self.fts_empty.join(", ")
        )?;
        writeln!(
            f,
            "engine empty:       {} of {} queries{}",
            self.engine_empty.len(),
            QUERY_MIX.len(),
            if self.engine_empty.is_empty() {
                String::new()
            } else {
                format!(": {}", self.engine_empty.join(", "))
            }
        )?;
        writeln!(
            f,
            "cold start:         {:.0} ms (reopen the index + first query)",
            self.cold_start_ms
        )?;
        writeln!(f, "RSS after build:    {:.0} MB", self.rss_after_build_mb)?;
        writeln!(f, "RSS at the end:     {:.0} MB", self.rss_mb)?;
        writeln!(f, "peak RSS (VmHWM):   {:.0} MB", self.peak_rss_mb)?;
        let slowest: Vec<String> = self
            .per_query
            .iter()
            .take(5)
            .map(|(q, ms)| format!("{q} {ms:.1} ms"))
            .collect();
        write!(f, "slowest queries:    {}", slowest.join(", "))
    }
}

fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Run the benchmark in `dir` (a fresh directory) with `n` instruments.
pub async fn run(
    dir: &Path,
    config_dir: &Path,
    n: usize,
    runs: usize,
) -> anyhow::Result<BenchReport> {
    let db = Db::connect(&format!("sqlite://{}", dir.join("bench.db").display())).await?;
    db.migrate().await?;
    sqlx::query(
        "INSERT INTO units (name, kind, nature, credit_code, contact_name, contact_mobile, \
         certification_status, created_at, updated_at) VALUES ('基准测试单位', 'managing', '高等院校', \
         'BENCH0000000000000', '张三', '13800000000', 'certified', 0, 0)",
    )
    .write(&db)
    .await?;
    let cities = ["许昌市", "郑州市", "洛阳市", "新乡市", "开封市", "南阳市"];
    let depts = [
        "分析测试中心",
        "材料学院",
        "化学化工学院",
        "生命科学学院",
        "物理与电子学院",
        "机械工程学院",
    ];
    let started = Instant::now();
    let mut seed: u64 = 42;
    let mut next = move |m: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % m
    };
    let mut tx = db.begin_write().await?;
    for k in 0..n {
        let (name, code, variants) = demo::TEMPLATES[next(demo::TEMPLATES.len())];
        let (model, maker, country, wan) = variants[next(variants.len())];
        let dept = depts[next(depts.len())];
        let year = 2010 + next(15);
        sqlx::query(
            "INSERT INTO instruments (unit_id, name, model, manufacturer, country, category_code, department, \
             value_fen, open_to_public, city, description, service_content, review_status, service_count, \
             created_at, updated_at) VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'approved', $12, $13, $13)",
        )
        .bind(name)
        .bind(model)
        .bind(maker)
        .bind(country)
        .bind(code)
        .bind(dept)
        .bind(wan as i64 * 1_000_000 + next(90) as i64 * 10_000)
        .bind((k % 9 != 4) as i64)
        .bind(cities[next(cities.len())])
        .bind(format!(
            "{maker} {model} {name}，{year} 年购置，安装于{dept}，由专职技术人员管理，可提供{name}相关的测试与技术咨询。"
        ))
        .bind(format!("{name}常规测试、方法开发、数据分析与结果解读；可承接企业委托检测与科研合作。"))
        .bind(next(120) as i64)
        .bind(1_700_000_000 + k as i64)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let insert_s = started.elapsed().as_secs_f64();

    let index = SearchIndex::open(&dir.join("index"), config_dir)?;
    let started = Instant::now();
    index.rebuild(&db, &|_, _| {}).await?;
    let build_s = started.elapsed().as_secs_f64();
    let rss_after_build_mb = rss_mb();

    // Cold start: a new process finds the index built; open it and answer a first query.
    drop(index);
    let started = Instant::now();
    let index = SearchIndex::open(&dir.join("index"), config_dir)?;
    index.rebuild_if_stale(&db).await?;
    index.search(
        &SearchParams {
            q: "电镜".into(),
            ..Default::default()
        },
        0,
        20,
    )?;
    let cold_start_ms = started.elapsed().as_secs_f64() * 1000.0;

    // Warm up once, then time every query of the mix `runs` times.
    let params = |q: &str| SearchParams {
        q: q.to_string(),
        ..Default::default()
    };
    let mut engine_empty = Vec::new();
    for q in QUERY_MIX {
        if index.search(&params(q), 0, 20)?.total == 0 {
            engine_empty.push(q.to_string());
        }
    }
    let mut lat = Vec::new();
    let mut per_query = vec![0f64; QUERY_MIX.len()];
    let started = Instant::now();
    for _ in 0..runs {
        for (i, q) in QUERY_MIX.iter().enumerate() {
            let t = Instant::now();
            index.search(&params(q), 0, 20)?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            per_query[i] += ms / runs as f64;
            lat.push(ms);
        }
    }
    let mut per_query: Vec<(String, f64)> = QUERY_MIX
        .iter()
        .map(|q| q.to_string())
        .zip(per_query)
        .collect();
    per_query.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total_s = started.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let engine_mean_ms = lat.iter().sum::<f64>() / lat.len() as f64;

    // The same mix as municipal portals run it: LIKE over the text columns, a page and a count.
    let mut like = Vec::new();
    for q in QUERY_MIX {
        let pattern = format!("%{}%", q.trim());
        let t = Instant::now();
        let where_ = "review_status = 'approved' AND (name LIKE $1 OR model LIKE $1 OR \
                      manufacturer LIKE $1 OR description LIKE $1)";
        let _: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM instruments WHERE {where_} ORDER BY id DESC LIMIT 20"
        )))
        .bind(&pattern)
        .fetch_all(&db.pool)
        .await?;
        let _: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM instruments WHERE {where_}"
        )))
        .bind(&pattern)
        .fetch_one(&db.pool)
        .await?;
        like.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let like_mean_ms = like.iter().sum::<f64>() / like.len() as f64;

    // SQLite FTS5 with the trigram tokenizer on the same rows, the same mix, a page + COUNT.
    let started = Instant::now();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "CREATE VIRTUAL TABLE instruments_fts USING fts5(name, model, manufacturer, description, \
         content='instruments', content_rowid='id', tokenize='trigram')",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO instruments_fts (rowid, name, model, manufacturer, description) \
         SELECT id, name, model, manufacturer, description FROM instruments WHERE review_status = 'approved'",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let fts_build_s = started.elapsed().as_secs_f64();
    let mut fts = Vec::new();
    let mut fts_empty = Vec::new();
    for q in QUERY_MIX {
        // Each word as a quoted phrase (FTS5 syntax would reject `GC-MS` otherwise).
        let matched: String = q
            .split_whitespace()
            .map(|w| format!("\"{}\"", w.replace('"', "")))
            .collect::<Vec<_>>()
            .join(" ");
        for _ in 0..runs.clamp(1, 5) {
            let t = Instant::now();
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT rowid FROM instruments_fts WHERE instruments_fts MATCH $1 ORDER BY rank LIMIT 20",
            )
            .bind(&matched)
            .fetch_all(&db.pool)
            .await?;
            let _: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM instruments_fts WHERE instruments_fts MATCH $1",
            )
            .bind(&matched)
            .fetch_one(&db.pool)
            .await?;
            fts.push(t.elapsed().as_secs_f64() * 1000.0);
            if ids.is_empty() && !fts_empty.contains(&q.to_string()) {
                fts_empty.push(q.to_string());
            }
        }
    }
    fts.sort_by(|a, b| a.total_cmp(b));
    let fpct = |p: f64| fts[((fts.len() as f64 * p) as usize).min(fts.len() - 1)];
    Ok(BenchReport {
        fts_build_s,
        fts_p50_ms: fpct(0.5),
        fts_p99_ms: fpct(0.99),
        fts_empty,
        engine_empty,
        rss_after_build_mb,
        peak_rss_mb: status_mb("VmHWM:"),
        cold_start_ms,
        n,
        insert_s,
        build_s,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        qps: lat.len() as f64 / total_s,
        like_mean_ms,
        engine_mean_ms,
        rss_mb: rss_mb(),
        runs,
        per_query,
    })
}
