//! The two migrations folders describe one schema: the same migration files, and after
//! migrating a fresh SQLite file and a fresh PostgreSQL database, the same tables with the same
//! columns and the same nullability. Runs against PostgreSQL in both CI runs (the default URL
//! when `LABSHARE_TEST_DATABASE_URL` is unset) and fails when it cannot reach it.

use std::collections::{BTreeMap, BTreeSet};

use labshare::store::Db;
use sqlx::Row;

use crate::common::{drop_pg_database, fresh_pg_database};

/// The server CI and developers run; trust authentication.
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Table → column → nullable.
type Schema = BTreeMap<String, BTreeMap<String, bool>>;

fn migration_files(backend: &str) -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Columns of every table but sqlx's bookkeeping. A PRIMARY KEY column counts as NOT NULL
/// (PostgreSQL makes it so; SQLite's `notnull` flag only reflects an explicit NOT NULL).
async fn sqlite_schema(db: &Db) -> Schema {
    let rows = sqlx::query(
        "SELECT m.name, p.name, CAST(p.\"notnull\" AS BIGINT), CAST(p.pk AS BIGINT) \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
         AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(&db.pool)
    .await
    .expect("list SQLite columns");
    let mut schema = Schema::new();
    for row in rows {
        let not_null = row.get::<i64, _>(2) != 0 || row.get::<i64, _>(3) > 0;
        schema
            .entry(row.get(0))
            .or_default()
            .insert(row.get(1), !not_null);
    }
    schema
}

async fn postgres_schema(db: &Db) -> Schema {
    let rows = sqlx::query(
        "SELECT c.table_name::text, c.column_name::text, c.is_nullable::text \
         FROM information_schema.columns c JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
         AND c.table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&db.pool)
    .await
    .expect("list PostgreSQL columns");
    let mut schema = Schema::new();
    for row in rows {
        let nullable: String = row.get(2);
        schema
            .entry(row.get(0))
            .or_default()
            .insert(row.get(1), nullable == "YES");
    }
    schema
}

/// One line per difference, `table.column` first so a sorted diff reads by table.
fn schema_diff(sqlite: &Schema, postgres: &Schema) -> Vec<String> {
    let nullable = |n: bool| if n { "NULL" } else { "NOT NULL" };
    let mut diff = Vec::new();
    let tables: BTreeSet<_> = sqlite.keys().chain(postgres.keys()).collect();
    for table in tables {
        match (sqlite.get(table), postgres.get(table)) {
            (Some(_), None) => diff.push(format!("{table}: table only in migrations/sqlite")),
            (None, Some(_)) => diff.push(format!("{table}: table only in migrations/postgres")),
            (Some(s), Some(p)) => {
                let columns: BTreeSet<_> = s.keys().chain(p.keys()).collect();
                for column in columns {
                    match (s.get(column), p.get(column)) {
                        (Some(_), None) => {
                            diff.push(format!("{table}.{column}: column only in SQLite"))
                        }
                        (None, Some(_)) => {
                            diff.push(format!("{table}.{column}: column only in PostgreSQL"))
                        }
                        (Some(a), Some(b)) if a != b => diff.push(format!(
                            "{table}.{column}: {} in SQLite, {} in PostgreSQL",
                            nullable(*a),
                            nullable(*b)
                        )),
                        _ => {}
                    }
                }
            }
            (None, None) => {}
        }
    }
    diff
}

/// Drops the PostgreSQL database when the test ends, whether it passed or not.
struct DropDatabase(Option<(String, String)>);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.0.take() {
            drop_pg_database(admin, name);
        }
    }
}

#[test]
fn the_schema_diff_names_each_difference() {
    let schema = |tables: &[(&str, &[(&str, bool)])]| -> Schema {
        tables
            .iter()
            .map(|(t, cols)| {
                let cols = cols.iter().map(|(c, n)| (c.to_string(), *n)).collect();
                (t.to_string(), cols)
            })
            .collect()
    };
    let sqlite = schema(&[
        ("users", &[("id", false), ("email", true), ("phone", true)]),
        ("old", &[("id", false)]),
    ]);
    let postgres = schema(&[
        (
            "users",
            &[("id", false), ("email", false), ("mobile", true)],
        ),
        ("new", &[("id", false)]),
    ]);
    assert_eq!(
        schema_diff(&sqlite, &postgres),
        [
            "new: table only in migrations/postgres",
            "old: table only in migrations/sqlite",
            "users.email: NULL in SQLite, NOT NULL in PostgreSQL",
            "users.mobile: column only in PostgreSQL",
            "users.phone: column only in SQLite",
        ]
    );
    assert!(schema_diff(&sqlite, &sqlite).is_empty());
}

#[test]
fn both_backends_have_the_same_migration_files() {
    let sqlite = migration_files("sqlite");
    let postgres = migration_files("postgres");
    assert!(!sqlite.is_empty(), "no SQLite migrations found");
    let only_sqlite: Vec<_> = sqlite.difference(&postgres).collect();
    let only_postgres: Vec<_> = postgres.difference(&sqlite).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "migration files differ\n  only in migrations/sqlite: {only_sqlite:?}\n  only in \
         migrations/postgres: {only_postgres:?}"
    );
}

#[tokio::test]
async fn both_backends_migrate_to_the_same_tables_columns_and_nullability() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Db::connect(&format!(
        "sqlite://{}",
        dir.path().join("schema.db").display()
    ))
    .await
    .expect("open SQLite");
    sqlite.migrate().await.expect("migrate SQLite");
    let sqlite_tables = sqlite_schema(&sqlite).await;
    sqlite.pool.close().await;

    let admin = std::env::var("LABSHARE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES.to_string());
    // Reachable or fail: a schema check that skips itself would let the backends drift.
    if let Err(e) = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin).await {
        panic!(
            "PostgreSQL at {admin} is unreachable ({e}); this test compares both backends and \
             needs it (set LABSHARE_TEST_DATABASE_URL to another server)"
        );
    }
    let (url, name) = fresh_pg_database(&admin).await;
    let _drop = DropDatabase(Some((admin, name)));
    let postgres = Db::connect(&url).await.expect("open PostgreSQL");
    postgres.migrate().await.expect("migrate PostgreSQL");
    let postgres_tables = postgres_schema(&postgres).await;
    postgres.pool.close().await;

    assert!(
        sqlite_tables.contains_key("users") && postgres_tables.contains_key("users"),
        "the schema listing found no `users` table: SQLite {:?}, PostgreSQL {:?}",
        sqlite_tables.keys().collect::<Vec<_>>(),
        postgres_tables.keys().collect::<Vec<_>>()
    );
    let diff = schema_diff(&sqlite_tables, &postgres_tables);
    assert!(
        diff.is_empty(),
        "migrations/sqlite and migrations/postgres drifted apart:\n  {}",
        diff.join("\n  ")
    );
}
