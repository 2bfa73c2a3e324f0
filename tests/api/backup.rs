//! Backups restore into a working platform (docs/deploy.md): on PostgreSQL `pg_dump -Fc` and
//! `pg_restore` into a new database, on SQLite `VACUUM INTO` a new file; the restored copy
//! migrates, its decision log verifies and it holds the same records.

use std::process::Command;

use labshare::store::Db;

use crate::common::{PgDrop, fresh_database_url, process::labshare};

const TABLES: [&str; 6] = [
    "units",
    "instruments",
    "bookings",
    "voucher_ledger",
    "workflow_instances",
    "workflow_audit",
];

async fn counts(url: &str) -> Vec<i64> {
    let db = Db::connect(url).await.unwrap();
    let mut out = Vec::new();
    for t in TABLES {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM {t}"
        )))
        .fetch_one(&db.pool)
        .await
        .unwrap();
        out.push(n);
    }
    db.pool.close().await;
    out
}

#[tokio::test]
async fn a_backup_restores_into_a_platform_that_migrates_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _guard) = fresh_database_url(dir.path()).await;
    let out = labshare(&dir.path().join("a"), &url)
        .arg("demo-data")
        .output()
        .unwrap();
    assert!(out.status.success(), "demo-data");
    let (restored, _restored_guard): (String, PgDrop) =
        if std::env::var("LABSHARE_TEST_DATABASE_URL").is_ok() {
            let dump = dir.path().join("labshare.dump");
            let st = Command::new("pg_dump")
                .args(["-Fc", "--no-owner", "-d", &url, "-f"])
                .arg(&dump)
                .status()
                .expect("pg_dump installed");
            assert!(st.success(), "pg_dump");
            let (target, guard) = fresh_database_url(dir.path()).await;
            let st = Command::new("pg_restore")
                .args(["--no-owner", "-d", &target])
                .arg(&dump)
                .status()
                .expect("pg_restore installed");
            assert!(st.success(), "pg_restore");
            (target, guard)
        } else {
            let file = dir.path().join("backup.db");
            let db = Db::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "VACUUM INTO '{}'",
                file.display()
            )))
            .execute(&db.pool)
            .await
            .unwrap();
            db.pool.close().await;
            (
                format!("sqlite://{}", file.display()),
                crate::common::no_pg_drop(),
            )
        };
    for args in [&["migrate"][..], &["audit", "verify"][..]] {
        let out = labshare(&dir.path().join("b"), &restored)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?} on the restored copy: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let before = counts(&url).await;
    assert!(before.iter().all(|n| *n > 0), "{before:?}");
    assert_eq!(counts(&restored).await, before);
}
