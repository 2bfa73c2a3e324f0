//! `labshare bench statistics` (统计分析基准, issue 16): units, approved instruments and a
//! million bookings with their service records over 2025–2026 written through the triggers
//! that keep the aggregates current; then the statistics page and the national indicators
//! requested over HTTP from the real app (in this process, on a loopback port), and the
//! platform's measures counted both from the aggregates and from the source rows. Medians.
//!
//! [`load`] and [`measure`] are also run by the API tests at a small size on both databases,
//! where they check that the aggregates agree with the source rows.

use std::time::{Duration, Instant};

use crate::{
    config::Config,
    statistics::{Scope, measures},
    store::Db,
};

/// What [`load`] wrote.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub units: i64,
    pub instruments: i64,
    pub service_records: i64,
    pub first_unit: i64,
    pub took: Duration,
}

/// The medians of [`measure`].
#[derive(Debug, Clone)]
pub struct Report {
    pub loaded: Loaded,
    pub backend: String,
    pub runs: usize,
    pub page: Duration,
    pub unit_page: Duration,
    pub api: Duration,
    pub unit_api: Duration,
    pub aggregated: Duration,
    pub raw: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.loaded;
        writeln!(
            f,
            "statistics benchmark ({}): {} units, {} instruments, {} service records, loaded in {:.1?}; medians of {} runs",
            self.backend, l.units, l.instruments, l.service_records, l.took, self.runs
        )?;
        let rows = [
            ("GET /console/statistics?year=2026 (platform)", self.page),
            (
                "GET /console/statistics?year=2026&unit_id=… (unit)",
                self.unit_page,
            ),
            ("GET /api/v1/statistics/indicators?year=2026", self.api),
            (
                "GET /api/v1/statistics/indicators?…&unit_id=…",
                self.unit_api,
            ),
            ("platform measures, pre-aggregated", self.aggregated),
            ("platform measures, from service_records", self.raw),
        ];
        for (what, d) in rows {
            writeln!(f, "  {what:<54} {:>9.2} ms", d.as_secs_f64() * 1000.0)?;
        }
        write!(
            f,
            "  aggregates against source rows: {:.0}× faster",
            self.raw.as_secs_f64() / self.aggregated.as_secs_f64().max(1e-9)
        )
    }
}

const CITIES: &str =
    "CASE i % 4 WHEN 0 THEN '许昌市' WHEN 1 THEN '郑州市' WHEN 2 THEN '洛阳市' ELSE '新乡市' END";

async fn exec(db: &Db, sql: String) -> anyhow::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Write `records` service records (half in 2025, half in 2026; one in three for another
/// unit, i.e. external), `records / 10` instruments and one managing unit per 100 of them.
/// `user_id` books them all.
pub async fn load(db: &Db, records: i64, user_id: i64) -> anyhow::Result<Loaded> {
    let t0 = Instant::now();
    let instruments = (records / 10).max(100);
    let units = (instruments / 100).max(1);
    exec(db, format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {units}) \
         INSERT INTO units (name, kind, nature, credit_code, contact_name, contact_mobile, certification_status, city, created_at, updated_at) \
         SELECT '基准单位' || i, 'managing', '高校', 'BENCH' || i, '联系人', '13800000000', 'certified', {CITIES}, 0, 0 FROM n"
    ))
    .await?;
    let first_unit: i64 =
        sqlx::query_scalar("SELECT MIN(id) FROM units WHERE credit_code LIKE 'BENCH%'")
            .fetch_one(&db.pool)
            .await?;
    exec(db, format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {} ) \
         INSERT INTO instruments (unit_id, name, category_code, value_fen, usage_status, instrument_type, city, review_status, created_at, updated_at) \
         SELECT {first_unit} + (i % {units}), '基准仪器' || i, substr('010203040506070809101112131415', (i % 15) * 2 + 1, 2) || '0100', \
         (i % 200) * 1000000 + 100000, CASE WHEN i % 10 = 0 THEN '待修' ELSE '正常' END, CASE WHEN i % 3 = 0 THEN '专用' ELSE '通用' END, \
         {CITIES}, 'approved', 0, 0 FROM n",
        instruments - 1
    ))
    .await?;
    let first_instrument: i64 =
        sqlx::query_scalar("SELECT MIN(id) FROM instruments WHERE name LIKE '基准仪器%'")
            .fetch_one(&db.pool)
            .await?;
    for (year, start) in [(2025_i64, 1_735_660_800_i64), (2026, 1_767_196_800)] {
        let half = records / 2;
        exec(db, format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {} ) \
             INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, status, live, price_fen, created_at, updated_at) \
             SELECT {first_instrument} + (i % {instruments}), {first_unit} + (((i % {instruments}) % {units}) + (CASE WHEN i % 3 = 0 THEN 1 ELSE 0 END)) % {units}, \
             {user_id}, {start} + (i * 31) % 31400000, {start} + (i * 31) % 31400000 + 7200, '基准', 'completed', 0, 50000, {start}, {start} FROM n",
            half - 1
        ))
        .await?;
        exec(db, format!(
            "INSERT INTO service_records (booking_id, order_no, instrument_id, managing_unit_id, user_unit_id, applicant_name, amount_fen, voucher_fen, \
             service_hours_x100, started_at, ended_at, completed_at, year, rating, created_at) \
             SELECT b.id, 'B' || b.id, b.instrument_id, i.unit_id, b.unit_id, '基准', 50000, 0, 200, \
             b.start_at, b.end_at, b.end_at, {year}, CASE b.id % 5 WHEN 0 THEN '一般' WHEN 1 THEN '基本满意' ELSE '非常满意' END, b.end_at \
             FROM bookings b JOIN instruments i ON i.id = b.instrument_id WHERE b.purpose = '基准' AND b.created_at = {start}"
        ))
        .await?;
    }
    let service_records: i64 =
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM service_records")
            .fetch_one(&db.pool)
            .await?;
    sqlx::query("ANALYZE").execute(&db.pool).await?;
    Ok(Loaded {
        units,
        instruments,
        service_records,
        first_unit,
        took: t0.elapsed(),
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One warm-up, then the median of `runs` calls of `f`.
async fn time<F, Fut>(runs: usize, mut f: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    f().await?;
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        f().await?;
        v.push(t.elapsed());
    }
    Ok(median(v))
}

/// GET `url` and fail unless it answers 200 with `needle` in the body.
async fn get(req: reqwest::RequestBuilder, needle: &str) -> anyhow::Result<()> {
    let res = req.send().await?;
    let status = res.status();
    let body = res.text().await?;
    anyhow::ensure!(
        status.is_success() && body.contains(needle),
        "{status}: expected {needle:?} in the answer"
    );
    Ok(())
}

/// Time the pages (as `cookie`, a platform administrator's session) and the indicators API
/// (as `token`) at `base`, and the measures from the aggregates and from the source rows,
/// which must agree.
pub async fn measure(
    db: &Db,
    base: &str,
    cookie: &str,
    token: &str,
    loaded: Loaded,
    runs: usize,
) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie = format!("{}={cookie}", crate::server::SESSION_COOKIE);
    let unit = loaded.first_unit;
    let page_of = |path: String| {
        let (client, cookie) = (client.clone(), cookie.clone());
        move || {
            let req = client
                .get(format!("{base}{path}"))
                .header(reqwest::header::COOKIE, cookie.clone());
            async move { get(req, "chart-").await }
        }
    };
    let api_of = |path: String| {
        let client = client.clone();
        move || {
            let req = client.get(format!("{base}{path}")).bearer_auth(token);
            async move { get(req, "\"normal_ratio\"").await }
        }
    };
    let page = time(runs, page_of("/console/statistics?year=2026".into())).await?;
    let unit_page = time(
        runs,
        page_of(format!("/console/statistics?year=2026&unit_id={unit}")),
    )
    .await?;
    let api = time(
        runs,
        api_of("/api/v1/statistics/indicators?year=2026".into()),
    )
    .await?;
    let unit_api = time(
        runs,
        api_of(format!(
            "/api/v1/statistics/indicators?year=2026&unit_id={unit}"
        )),
    )
    .await?;
    let (_, policy) = crate::money::current(db).await?;
    let scope = Scope::year(2026);
    let aggregated = time(runs, || async {
        measures::aggregated(db, &policy.indicators, &scope).await?;
        Ok(())
    })
    .await?;
    let raw = time(runs.div_ceil(3), || async {
        measures::raw(db, &policy.indicators, &scope).await?;
        Ok(())
    })
    .await?;
    let a = measures::aggregated(db, &policy.indicators, &scope).await?;
    let r = measures::raw(db, &policy.indicators, &scope).await?;
    anyhow::ensure!(
        a == r,
        "the aggregates disagree with the source rows:\n{a:?}\n{r:?}"
    );
    Ok(Report {
        loaded,
        backend: format!("{:?}", db.backend),
        runs,
        page,
        unit_page,
        api,
        unit_api,
        aggregated,
        raw,
    })
}

/// The command: a fresh SQLite database in `dir`, the app serving it on a loopback port in
/// this process, a platform administrator, [`load`] and [`measure`].
pub async fn run(
    config: &Config,
    dir: &std::path::Path,
    records: i64,
    runs: usize,
) -> anyhow::Result<Report> {
    let mut config = config.clone();
    config.data_dir = dir.to_path_buf();
    config.database_url = format!("sqlite://{}", dir.join("bench.db").display());
    let state = crate::server::prepare(config).await?;
    let db = state.db.clone();
    let now = state.now();
    let password = "Bench-Passw0rd";
    let admin = crate::auth::create_user(
        &db,
        crate::auth::NewUser {
            username: "bench_admin".into(),
            password: password.into(),
            display_name: "基准管理员".into(),
            email: None,
            phone: None,
        },
        &["platform_admin"],
        now,
    )
    .await?;
    let loaded = load(&db, records, admin).await?;
    let (cookie, _) = crate::auth::create_session(&db, admin, now).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::server::serve(state, listener, async {
        let _ = stopped.await;
    }));
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"username": "bench_admin", "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let token = token["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no API token for the benchmark administrator"))?
        .to_string();
    let report = measure(&db, &base, &cookie, &token, loaded, runs).await;
    let _ = stop.send(());
    let _ = server.await;
    report
}
