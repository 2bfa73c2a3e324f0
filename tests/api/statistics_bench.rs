//! The statistics benchmark (issue 16), ignored by default: 1,000 managing units, 100,000
//! approved instruments, 1,000,000 bookings with their service records over 2025–2026, written
//! through the triggers that keep the aggregates current. Then the statistics page and the
//! national indicators are requested over HTTP from the real app, and the platform's measures
//! are counted both from the aggregates and from the source rows, each 15 times; medians print.
//!
//! `cargo test --release --test api statistics_bench -- --ignored --nocapture`
//! (`LABSHARE_BENCH_RECORDS=100000` for a smaller run).

use std::time::{Duration, Instant};

use labshare::statistics::{Scope, measures};

use crate::common::spawn_app;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn time<F, Fut>(n: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f().await; // warm-up
    let mut v = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        v.push(t.elapsed());
    }
    median(v)
}

#[tokio::test]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn statistics_benchmark() {
    let records: i64 = std::env::var("LABSHARE_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let instruments = (records / 10).max(100);
    let units = (instruments / 100).max(1);
    let app = spawn_app().await;
    let admin = app.create_user("bench_admin", "platform_admin").await;
    let pool = &app.db.pool;
    let t0 = Instant::now();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {units}) \
         INSERT INTO units (name, kind, nature, credit_code, contact_name, contact_mobile, certification_status, city, created_at, updated_at) \
         SELECT '基准单位' || i, 'managing', '高校', 'BENCH' || i, '联系人', '13800000000', 'certified', \
         CASE i % 4 WHEN 0 THEN '许昌市' WHEN 1 THEN '郑州市' WHEN 2 THEN '洛阳市' ELSE '新乡市' END, 0, 0 FROM n"
    )))
    .execute(pool)
    .await
    .unwrap();
    let first_unit: i64 =
        sqlx::query_scalar("SELECT MIN(id) FROM units WHERE credit_code LIKE 'BENCH%'")
            .fetch_one(pool)
            .await
            .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {} ) \
         INSERT INTO instruments (unit_id, name, category_code, value_fen, usage_status, instrument_type, city, review_status, created_at, updated_at) \
         SELECT {first_unit} + (i % {units}), '基准仪器' || i, substr('010203040506070809101112131415', (i % 15) * 2 + 1, 2) || '0100', \
         (i % 200) * 1000000 + 100000, CASE WHEN i % 10 = 0 THEN '待修' ELSE '正常' END, CASE WHEN i % 3 = 0 THEN '专用' ELSE '通用' END, \
         CASE i % 4 WHEN 0 THEN '许昌市' WHEN 1 THEN '郑州市' WHEN 2 THEN '洛阳市' ELSE '新乡市' END, 'approved', 0, 0 FROM n",
        instruments - 1
    )))
    .execute(pool)
    .await
    .unwrap();
    let first_instrument: i64 =
        sqlx::query_scalar("SELECT MIN(id) FROM instruments WHERE name LIKE '基准仪器%'")
            .fetch_one(pool)
            .await
            .unwrap();
    // Half the records in 2025, half in 2026; one in three for another unit (external).
    for (year, start) in [(2025_i64, 1_735_660_800_i64), (2026, 1_767_196_800)] {
        let half = records / 2;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {} ) \
             INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, status, live, price_fen, created_at, updated_at) \
             SELECT {first_instrument} + (i % {instruments}), {first_unit} + (((i % {instruments}) % {units}) + (CASE WHEN i % 3 = 0 THEN 1 ELSE 0 END)) % {units}, \
             {admin}, {start} + (i * 31) % 31400000, {start} + (i * 31) % 31400000 + 7200, '基准', 'completed', 0, 50000, {start}, {start} FROM n",
            half - 1
        )))
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO service_records (booking_id, order_no, instrument_id, managing_unit_id, user_unit_id, applicant_name, amount_fen, voucher_fen, \
             service_hours_x100, started_at, ended_at, completed_at, year, rating, created_at) \
             SELECT b.id, 'B' || b.id, b.instrument_id, i.unit_id, b.unit_id, '基准', 50000, 0, 200, \
             b.start_at, b.end_at, b.end_at, {year}, CASE b.id % 5 WHEN 0 THEN '一般' WHEN 1 THEN '基本满意' ELSE '非常满意' END, b.end_at \
             FROM bookings b JOIN instruments i ON i.id = b.instrument_id WHERE b.purpose = '基准' AND b.created_at = {start}"
        )))
        .execute(pool)
        .await
        .unwrap();
    }
    let load = t0.elapsed();
    let n_sr: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM service_records")
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query("ANALYZE").execute(pool).await.ok();

    let console = app.browser_login("bench_admin").await;
    let token = app.token("bench_admin").await;
    let page = time(15, || async {
        let (status, html) = app
            .get_page(&console, "/console/statistics?year=2026")
            .await;
        assert_eq!(status, 200);
        assert!(html.contains("chart-monthly_hours-t"));
    })
    .await;
    let unit_page = time(15, || async {
        let (status, _) = app
            .get_page(
                &console,
                &format!("/console/statistics?year=2026&unit_id={first_unit}"),
            )
            .await;
        assert_eq!(status, 200);
    })
    .await;
    let api = time(15, || async {
        let (status, _) = app
            .api(
                "GET",
                "/api/v1/statistics/indicators?year=2026",
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, 200);
    })
    .await;
    let unit_api = time(15, || async {
        let (status, _) = app
            .api(
                "GET",
                &format!("/api/v1/statistics/indicators?year=2026&unit_id={first_unit}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, 200);
    })
    .await;
    let (_, policy) = labshare::money::current(&app.db).await.unwrap();
    let scope = Scope::year(2026);
    let agg = time(15, || async {
        measures::aggregated(&app.db, &policy.indicators, &scope)
            .await
            .unwrap();
    })
    .await;
    let raw = time(5, || async {
        measures::raw(&app.db, &policy.indicators, &scope)
            .await
            .unwrap();
    })
    .await;
    let a = measures::aggregated(&app.db, &policy.indicators, &scope)
        .await
        .unwrap();
    let r = measures::raw(&app.db, &policy.indicators, &scope)
        .await
        .unwrap();
    assert_eq!(a, r, "the aggregates agree with the source rows");
    println!(
        "statistics benchmark ({:?}): {} units, {instruments} instruments, {n_sr} service records, loaded in {:.1?}",
        app.db.backend, units, load
    );
    println!("  GET /console/statistics?year=2026 (platform)         median {page:.1?}");
    println!("  GET /console/statistics?year=2026&unit_id=… (unit)    median {unit_page:.1?}");
    println!("  GET /api/v1/statistics/indicators?year=2026           median {api:.1?}");
    println!("  GET /api/v1/statistics/indicators?…&unit_id=…         median {unit_api:.1?}");
    println!("  platform measures, pre-aggregated                     median {agg:.1?}");
    println!("  platform measures, from service_records (no aggregate) median {raw:.1?}");
}
