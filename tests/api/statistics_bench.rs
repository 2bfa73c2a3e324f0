//! The statistics benchmark's loader and measurements (`labshare bench statistics`, issue 16)
//! at a small size on both databases: the generated units, instruments and service records
//! go through the triggers that keep the aggregates current, the page and the indicators API
//! answer over HTTP, and the pre-aggregated measures equal those counted from the rows.
//! The full-size run: `labshare bench statistics --records 1000000` (docs/benchmarks.md).

use crate::common::spawn_app;

#[tokio::test]
async fn the_benchmark_loads_and_its_aggregates_agree_with_the_rows() {
    let app = spawn_app().await;
    let admin = app.create_user("bench_admin", "platform_admin").await;
    let loaded = labshare::statsbench::load(&app.db, 4_000, admin)
        .await
        .unwrap();
    assert_eq!(
        (loaded.units, loaded.instruments, loaded.service_records),
        (4, 400, 4_000)
    );
    let (cookie, _) = labshare::auth::create_session(&app.db, admin, app.now())
        .await
        .unwrap();
    let token = app.token("bench_admin").await;
    let report = labshare::statsbench::measure(&app.db, &app.base, &cookie, &token, loaded, 1)
        .await
        .unwrap();
    let text = report.to_string();
    assert!(text.contains("4000 service records"), "{text}");
    assert!(report.raw > std::time::Duration::ZERO);
}
