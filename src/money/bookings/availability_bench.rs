//! `labshare bench availability` (空闲时段基准): N instruments with a realistic week of
//! bookings in a fresh SQLite database, then the week's availability of all of them timed
//! through [`availability::search`] (two queries and a merge) and through the naive
//! per-instrument way (one query per instrument, every slot checked one by one).

use std::{path::Path, time::Instant};

use chrono::TimeZone;
use chrono_tz::Asia::Shanghai;

use super::availability::{self, Search};
use crate::store::{Db, WriteQuery};

pub struct Report {
    pub n: usize,
    pub bookings: usize,
    pub runs: usize,
    pub with_free: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub naive_runs: usize,
    pub naive_median_ms: f64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "instruments:            {}", self.n)?;
        writeln!(f, "bookings in the week:   {}", self.bookings)?;
        writeln!(
            f,
            "instruments with free:  {} (min 60 minutes)",
            self.with_free
        )?;
        writeln!(
            f,
            "week availability:      median {:.2} ms (min {:.2}, max {:.2}) over {} runs",
            self.median_ms, self.min_ms, self.max_ms, self.runs
        )?;
        writeln!(
            f,
            "naive per-instrument:   median {:.2} ms over {} runs",
            self.naive_median_ms, self.naive_runs
        )?;
        write!(
            f,
            "speed-up:               {:.0}×",
            self.naive_median_ms / self.median_ms.max(1e-9)
        )
    }
}

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    Shanghai
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Run the benchmark in `dir` (a fresh directory).
pub async fn run(dir: &Path, n: usize, runs: usize) -> anyhow::Result<Report> {
    let db = Db::connect(&format!("sqlite://{}", dir.join("bench.db").display())).await?;
    db.migrate().await?;
    sqlx::query(
        "INSERT INTO units (name, kind, nature, credit_code, contact_name, contact_mobile, \
         certification_status, created_at, updated_at) VALUES ('基准测试单位', 'managing', '高等院校', \
         'BENCH0000000000000', '张三', '13800000000', 'certified', 0, 0)",
    )
    .write(&db)
    .await?;
    sqlx::query(
        "INSERT INTO users (username, password_hash, display_name, created_at) \
         VALUES ('bench', 'x', '基准', 0)",
    )
    .write(&db)
    .await?;
    let mut seed: u64 = 17;
    let mut next = move |m: i64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as i64) % m
    };
    let mut tx = db.begin_write().await?;
    let mut bookings = 0;
    for k in 0..n {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO instruments (unit_id, name, category_code, value_fen, review_status, city, created_at, updated_at) \
             VALUES (1, $1, '010100', 100000000, 'approved', '许昌市', 0, 0) RETURNING id",
        )
        .bind(format!("扫描电子显微镜 {k}"))
        .fetch_one(&mut *tx)
        .await?;
        // Monday 7 – Friday 11 December 2026: 0–3 bookings a day of 1–4 hours.
        for day in 7..=11 {
            let mut hour = 8;
            for _ in 0..next(4) {
                let start = hour + next(3) as u32;
                let len = 1 + next(4) as u32;
                if start + len > 18 {
                    break;
                }
                sqlx::query(
                    "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, status, created_at, updated_at) \
                     VALUES ($1, 1, 1, $2, $3, '基准', 'confirmed', 0, 0)",
                )
                .bind(id)
                .bind(at(2026, 12, day, start, 0))
                .bind(at(2026, 12, day, start + len, 0))
                .execute(&mut *tx)
                .await?;
                bookings += 1;
                hour = start + len;
            }
        }
    }
    tx.commit().await?;
    let now = at(2026, 12, 6, 8, 0);
    let s = Search {
        category: Some("010100".into()),
        city: Some("许昌市".into()),
        from: at(2026, 12, 7, 0, 0),
        to: at(2026, 12, 12, 0, 0),
        min_minutes: 60,
    };
    // Warm up, then time.
    let with_free = availability::search(&db, &s, now).await?.len();
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let r = availability::search(&db, &s, now).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(r.len() == with_free, "results differ between runs");
    }
    let naive_runs = runs.clamp(1, 5);
    let mut naive = Vec::new();
    for _ in 0..naive_runs {
        let t = Instant::now();
        let r = availability::search_naive(&db, &s, now).await?;
        naive.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            r.len() == with_free,
            "the naive way found {} instruments, the fast one {with_free}",
            r.len()
        );
    }
    let (min_ms, max_ms) = (
        times.iter().cloned().fold(f64::MAX, f64::min),
        times.iter().cloned().fold(0.0, f64::max),
    );
    Ok(Report {
        n,
        bookings,
        runs: times.len(),
        with_free,
        median_ms: median(times),
        min_ms,
        max_ms,
        naive_runs,
        naive_median_ms: median(naive),
    })
}
