//! SQLite write transactions on the caller's own thread (rusqlite), seen by the application's
//! SQL as an ordinary `sqlx` executor over the `Any` driver.
//!
//! Why not sqlx's own SQLite driver for writes: it runs every connection on a thread of its
//! own and hands each statement over and each row back through channels. A decision is ten
//! such round trips, and each wakes a sleeping thread on the other core: on the 2-core
//! machines we run on that wake-up path was 61 % of the engine benchmark's time (`perf`;
//! pinned to one core the same binary ran three times faster). Here a write transaction's
//! statements run where its task runs, one after another, with no hand-over at all. Reads
//! outside write transactions stay on sqlx's pool, off the async threads.
//!
//! Only the glue is ours: statements are prepared, bound, cached and stepped by rusqlite, the
//! same SQLite library sqlx links (`libsqlite3-sys`), and rows and results are the `Any`
//! driver's own types, so `query`, `query_as`, `query_scalar`, `FromRow` and `QueryBuilder`
//! behave as they do on sqlx's driver (values are typed by what SQLite stored, as there).

use std::{borrow::Cow, sync::Arc};

use rusqlite::{
    fallible_iterator::FallibleIterator,
    types::{Value as SqlValue, ValueRef},
};
use sqlx::{
    Either,
    error::{DatabaseError, ErrorKind},
};
use sqlx_core::{
    any::{
        AnyArguments, AnyColumn, AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo,
        AnyTypeInfoKind, AnyValue, AnyValueKind,
    },
    ext::ustr::UStr,
};

/// Prepared statements kept per connection (rusqlite's LRU cache): more than the distinct
/// write statements the application has on its busy paths.
const STATEMENT_CACHE: usize = 256;

/// Commits between two checkpoints: about SQLite's default of 1,000 pages of log at the
/// fifteen pages a decision writes.
const CHECKPOINT_EVERY: u32 = 64;

/// Log pages past which a commit checkpoints on the writer's own thread after all (16 MB).
/// Under a steady stream of writes the checkpoint thread is always a few commits behind, and
/// SQLite starts the log over only after a checkpoint that caught up: this one does, since no
/// other write runs meanwhile. The log file is cut back to this size when it starts over.
const CHECKPOINT_INLINE_PAGES: u32 = 4_000;

/// How long a write transaction waits for another process's to finish (as `busy_timeout`
/// on sqlx's connections).
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The open connection, shared between write transactions of one process (they take turns,
/// `Db::begin_write`).
#[derive(Debug)]
pub struct Slot {
    path: String,
    conn: std::sync::Mutex<Option<rusqlite::Connection>>,
    commits: std::sync::atomic::AtomicU32,
    /// Wakes the checkpoint thread, which ends when the slot is dropped.
    checkpoint: std::sync::mpsc::SyncSender<()>,
}

impl Slot {
    /// Open the writer's connection and start its checkpoint thread. Copying the log back
    /// into the database file (a checkpoint, with its `fsync`) runs on a thread of its own
    /// instead of inside every 70th commit, where it took a third of the engine benchmark's
    /// time (`docs/benchmarks.md`).
    pub fn open(path: &str) -> Result<Slot, sqlx::Error> {
        let conn = connect(path)?;
        let (checkpoint, wake) = std::sync::mpsc::sync_channel::<()>(1);
        let checkpointer = rusqlite::Connection::open(path).map_err(error)?;
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while wake.recv().is_ok() {
                    // PASSIVE: copies what no reader still needs, never waits for anyone.
                    if let Err(e) =
                        checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "SQLite checkpoint failed");
                    }
                }
            })
            .map_err(sqlx::Error::Io)?;
        Ok(Slot {
            path: path.to_string(),
            conn: std::sync::Mutex::new(Some(conn)),
            commits: Default::default(),
            checkpoint,
        })
    }

    /// Begin a write transaction (`BEGIN IMMEDIATE`) on the slot's connection. The caller
    /// holds the process's write turn, so the slot is never empty unless a transaction was
    /// leaked; a fresh connection is opened then. While another process writes to the same
    /// file (a CLI command beside the server), this waits asleep, up to `BUSY_WAIT`, rather
    /// than in SQLite's busy handler on an async thread.
    pub async fn begin(self: &Arc<Self>) -> Result<Writer, sqlx::Error> {
        let taken = self.conn.lock().unwrap_or_else(|e| e.into_inner()).take();
        let conn = match taken {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let mut writer = Writer {
            conn: Some(conn),
            slot: self.clone(),
        };
        let since = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            match execute_cached(writer.conn(), "BEGIN IMMEDIATE") {
                Ok(_) => return Ok(writer),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && since.elapsed() < BUSY_WAIT =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(error(e)),
            }
        }
    }
}

/// A statement without parameters or rows, prepared once per connection.
fn execute_cached(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.raw_execute()
}

fn connect(path: &str) -> Result<rusqlite::Connection, sqlx::Error> {
    let conn = rusqlite::Connection::open(path).map_err(error)?;
    // Only `BEGIN IMMEDIATE` can meet another writer, and `Slot::begin` waits for that
    // itself; after it, a write transaction in WAL mode waits for no one.
    conn.busy_timeout(std::time::Duration::ZERO)
        .map_err(error)?;
    conn.execute_batch(&format!(
        "{} PRAGMA wal_autocheckpoint = {CHECKPOINT_INLINE_PAGES}; \
         PRAGMA journal_size_limit = {};",
        super::SQLITE_SETTINGS,
        CHECKPOINT_INLINE_PAGES * 4096
    ))
    .map_err(error)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// A write transaction's connection. Dropped without `commit`, it rolls back; either way the
/// connection goes back to its slot.
#[derive(Debug)]
pub struct Writer {
    conn: Option<rusqlite::Connection>,
    slot: Arc<Slot>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
                // A connection that cannot roll back is not given to the next writer.
                return;
            }
            *self.slot.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn);
        }
    }
}

impl Writer {
    fn conn(&mut self) -> &rusqlite::Connection {
        self.conn
            .as_ref()
            .expect("a writer holds its connection until dropped")
    }

    pub fn commit(mut self) -> Result<(), sqlx::Error> {
        execute_cached(self.conn(), "COMMIT").map_err(error)?;
        let commits = self
            .slot
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if commits % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1 {
            // Full: a checkpoint is already due and will see this commit too.
            let _ = self.slot.checkpoint.try_send(());
        }
        Ok(())
    }

    /// Run `sql` (one statement or several) with `args`, returning what sqlx's driver would
    /// stream: each statement's rows, then its result. `limit` stops after that many rows.
    pub fn run(
        &mut self,
        sql: &str,
        args: Option<AnyArguments>,
        persistent: bool,
        limit: Option<usize>,
    ) -> Vec<Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>> {
        let values: Vec<SqlValue> = args
            .map(|a| a.values.0.into_iter().map(value_of).collect())
            .unwrap_or_default();
        let conn = self.conn();
        let mut out = Vec::new();
        let mut positional = 0;
        let prepared = if persistent {
            conn.prepare_cached(sql)
                .map(|mut stmt| step(conn, &mut stmt, &values, &mut positional, limit, &mut out))
        } else {
            conn.prepare(sql)
                .map(|mut stmt| step(conn, &mut stmt, &values, &mut positional, limit, &mut out))
        };
        let done = match prepared {
            Ok(done) => done,
            // Several statements: prepared one by one (not cached).
            Err(rusqlite::Error::MultipleStatement) => batch(conn, sql, &values, limit, &mut out),
            Err(e) => Err(error(e)),
        };
        if let Err(e) = done {
            out.push(Err(e));
        }
        out
    }

    /// The statement's parameters and columns (`Executor::prepare`).
    pub fn prepare(&mut self, sql: sqlx::SqlStr) -> Result<AnyStatement, sqlx::Error> {
        let stmt = self.conn().prepare(sql.as_str()).map_err(error)?;
        let (column_names, columns) = columns(&stmt);
        let parameters = Some(Either::Right(stmt.parameter_count()));
        drop(stmt);
        Ok(AnyStatement {
            sql,
            parameters,
            column_names,
            columns,
        })
    }
}

/// Several statements in one string: each is prepared in turn, `?` parameters numbered
/// across them as sqlx numbers them.
fn batch(
    conn: &rusqlite::Connection,
    sql: &str,
    values: &[SqlValue],
    limit: Option<usize>,
    out: &mut Vec<Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>,
) -> Result<(), sqlx::Error> {
    let mut positional = 0;
    let mut statements = rusqlite::Batch::new(conn, sql);
    while let Some(mut stmt) = statements.next().map_err(error)? {
        step(conn, &mut stmt, values, &mut positional, limit, out)?;
    }
    Ok(())
}

fn step(
    conn: &rusqlite::Connection,
    stmt: &mut rusqlite::Statement<'_>,
    values: &[SqlValue],
    positional: &mut usize,
    limit: Option<usize>,
    out: &mut Vec<Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>,
) -> Result<(), sqlx::Error> {
    for i in 1..=stmt.parameter_count() {
        // `$N` and `?N` name the Nth argument; a bare `?` takes the next one.
        let index = match stmt.parameter_name(i) {
            Some(name) => name
                .get(1..)
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|_| name.starts_with('$') || name.starts_with('?'))
                .ok_or_else(|| sqlx::Error::Protocol(format!("unsupported parameter {name}")))?,
            None => {
                *positional += 1;
                *positional
            }
        };
        let value = values.get(index - 1).ok_or_else(|| {
            sqlx::Error::Protocol(format!(
                "statement parameter {index} has no value ({} bound)",
                values.len()
            ))
        })?;
        stmt.raw_bind_parameter(i, value).map_err(error)?;
    }
    let readonly = stmt.readonly();
    let (names, columns) = columns(stmt);
    let mut rows = stmt.raw_query();
    let mut returned = 0;
    while let Some(row) = rows.next().map_err(error)? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let kind = match row.get_ref(i).map_err(error)? {
                ValueRef::Null => AnyValueKind::Null(AnyTypeInfoKind::Null),
                ValueRef::Integer(v) => AnyValueKind::BigInt(v),
                ValueRef::Real(v) => AnyValueKind::Double(v),
                ValueRef::Text(t) => AnyValueKind::Text(Arc::new(
                    String::from_utf8(t.to_vec()).map_err(|e| sqlx::Error::Decode(e.into()))?,
                )),
                ValueRef::Blob(b) => AnyValueKind::Blob(Arc::new(b.to_vec())),
            };
            values.push(AnyValue { kind });
        }
        let mut columns = columns.clone();
        for (col, value) in columns.iter_mut().zip(&values) {
            col.type_info = type_of(&value.kind);
        }
        out.push(Ok(Either::Right(AnyRow {
            column_names: names.clone(),
            columns,
            values,
        })));
        returned += 1;
        if limit.is_some_and(|l| returned >= l) {
            return Ok(());
        }
    }
    drop(rows);
    out.push(Ok(Either::Left(AnyQueryResult {
        rows_affected: if readonly { 0 } else { conn.changes() },
        last_insert_id: None,
    })));
    Ok(())
}

type Columns = (Arc<sqlx_core::HashMap<UStr, usize>>, Vec<AnyColumn>);

fn columns(stmt: &rusqlite::Statement<'_>) -> Columns {
    let mut names = sqlx_core::HashMap::default();
    let mut columns = Vec::with_capacity(stmt.column_count());
    for (ordinal, name) in stmt.column_names().into_iter().enumerate() {
        let name = UStr::new(name);
        names.insert(name.clone(), ordinal);
        columns.push(AnyColumn {
            ordinal,
            name,
            type_info: AnyTypeInfo {
                kind: AnyTypeInfoKind::Null,
            },
        });
    }
    (Arc::new(names), columns)
}

fn type_of(kind: &AnyValueKind) -> AnyTypeInfo {
    AnyTypeInfo {
        kind: match kind {
            AnyValueKind::BigInt(_) => AnyTypeInfoKind::BigInt,
            AnyValueKind::Double(_) => AnyTypeInfoKind::Double,
            AnyValueKind::Text(_) => AnyTypeInfoKind::Text,
            AnyValueKind::Blob(_) => AnyTypeInfoKind::Blob,
            _ => AnyTypeInfoKind::Null,
        },
    }
}

/// An argument as SQLite stores it (as sqlx's SQLite driver binds it).
fn value_of(kind: AnyValueKind) -> SqlValue {
    match kind {
        AnyValueKind::Bool(b) => SqlValue::Integer(b as i64),
        AnyValueKind::SmallInt(i) => SqlValue::Integer(i.into()),
        AnyValueKind::Integer(i) => SqlValue::Integer(i.into()),
        AnyValueKind::BigInt(i) => SqlValue::Integer(i),
        AnyValueKind::Real(r) => SqlValue::Real(r.into()),
        AnyValueKind::Double(d) => SqlValue::Real(d),
        AnyValueKind::Text(t) => SqlValue::Text(t.to_string()),
        AnyValueKind::TextSlice(t) => SqlValue::Text(t.to_string()),
        AnyValueKind::Blob(b) => SqlValue::Blob(b.to_vec()),
        // `Null(_)` and any kind a later sqlx adds: bound as NULL.
        _ => SqlValue::Null,
    }
}

/// A rusqlite error as sqlx reports SQLite's: a database error carrying SQLite's extended
/// code and message, so `is_unique_violation` and friends work unchanged.
fn error(e: rusqlite::Error) -> sqlx::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            sqlx::Error::Database(Box::new(SqliteError {
                code: code.extended_code,
                message: message.unwrap_or_else(|| code.to_string()),
            }))
        }
        other => sqlx::Error::AnyDriverError(Box::new(other)),
    }
}

#[derive(Debug)]
struct SqliteError {
    code: i32,
    message: String,
}

impl std::fmt::Display for SqliteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for SqliteError {}

impl DatabaseError for SqliteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        use rusqlite::ffi;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::Row;

    use crate::store::{Db, is_unique_violation};

    async fn fresh() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("w.db").display()))
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, n BIGINT, x REAL, b BLOB)",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn a_write_transaction_answers_as_sqlx_does() {
        let (_dir, db) = fresh().await;
        let mut tx = db.begin_write().await.unwrap();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO t (name, n, x, b) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind("甲")
        .bind(None::<i64>)
        .bind(1.5f64)
        .bind(vec![1u8, 2, 3])
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        // `$2` used twice and `$1` after it, as PostgreSQL numbers them.
        let done = sqlx::query("INSERT INTO t (name, n) VALUES ($2 || '乙', $1), ($2 || '丙', $1)")
            .bind(7i64)
            .bind("x")
            .execute(&mut *tx)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 2);
        let changed = sqlx::query("UPDATE t SET n = n + 1 WHERE n = $1")
            .bind(7i64)
            .execute(&mut *tx)
            .await
            .unwrap();
        assert_eq!(changed.rows_affected(), 2);
        // A read inside the transaction sees its own writes, typed by what SQLite stored.
        let row = sqlx::query("SELECT name, n, x, b FROM t WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>("name"), "甲");
        assert_eq!(row.get::<Option<i64>, _>("n"), None);
        assert_eq!(row.get::<f64, _>("x"), 1.5);
        assert_eq!(row.get::<Vec<u8>, _>("b"), vec![1, 2, 3]);
        let select = sqlx::query("SELECT id FROM t")
            .execute(&mut *tx)
            .await
            .unwrap();
        assert_eq!(select.rows_affected(), 0, "a SELECT changes nothing");
        let all: Vec<(String, Option<i64>)> = sqlx::query_as("SELECT name, n FROM t ORDER BY id")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert_eq!(
            all,
            vec![
                ("甲".to_string(), None),
                ("x乙".to_string(), Some(8)),
                ("x丙".to_string(), Some(8))
            ]
        );
        let none: Option<(i64,)> = sqlx::query_as("SELECT id FROM t WHERE name = $1")
            .bind("无")
            .fetch_optional(&mut *tx)
            .await
            .unwrap();
        assert!(none.is_none());
        // Several statements in one string, as migrations and `raw_sql` send them.
        sqlx::raw_sql("UPDATE t SET n = 1 WHERE id = 1; UPDATE t SET n = 2 WHERE id = 2;")
            .execute(&mut *tx)
            .await
            .unwrap();
        let dup = sqlx::query("INSERT INTO t (name) VALUES ($1)")
            .bind("甲")
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert!(is_unique_violation(&dup), "{dup}");
        let missing = sqlx::query("SELECT $1, $2")
            .bind(1i64)
            .fetch_one(&mut *tx)
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(missing.to_string().contains("parameter 2"), "{missing}");
        tx.commit().await.unwrap();
        // Committed: the pool's own connections see it.
        let n: i64 = sqlx::query_scalar("SELECT n FROM t WHERE id = 2")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn a_dropped_or_failed_transaction_leaves_nothing_and_the_next_one_runs() {
        let (_dir, db) = fresh().await;
        {
            let mut tx = db.begin_write().await.unwrap();
            sqlx::query("INSERT INTO t (name) VALUES ('丢弃')")
                .execute(&mut *tx)
                .await
                .unwrap();
            // dropped without commit
        }
        let mut tx = db.begin_write().await.unwrap();
        sqlx::query("INSERT INTO t (name) VALUES ('保留')")
            .execute(&mut *tx)
            .await
            .unwrap();
        let err = sqlx::query("INSERT INTO t (name) VALUES (NULL)")
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("NOT NULL"), "{err}");
        tx.commit().await.unwrap();
        let names: Vec<(String,)> = sqlx::query_as("SELECT name FROM t")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert_eq!(names, vec![("保留".to_string(),)]);
    }

    /// Another process holding the write lock: `begin_write` waits asleep, so the thread's
    /// other tasks go on, and begins once the lock is released.
    #[tokio::test(flavor = "current_thread")]
    async fn waiting_for_another_writer_keeps_the_thread_free() {
        let (dir, db) = fresh().await;
        let other = rusqlite::Connection::open(dir.path().join("w.db")).unwrap();
        other
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO t (name) VALUES ('另一进程');")
            .unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            other.execute_batch("COMMIT").unwrap();
        });
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        };
        let started = std::time::Instant::now();
        let mut tx = db.begin_write().await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert!(
            ticks.load(std::sync::atomic::Ordering::Relaxed) >= 5,
            "the runtime's only thread ran other tasks while waiting"
        );
        sqlx::query("INSERT INTO t (name) VALUES ('本进程')")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        ticker.abort();
        release.join().unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(n, 2);
    }

    /// The checkpoint thread copies committed writes into the database file itself: a copy of
    /// that file alone, without its log, holds them.
    #[tokio::test]
    async fn committed_writes_reach_the_database_file_without_the_writer_checkpointing() {
        let (dir, db) = fresh().await;
        let commits = super::CHECKPOINT_EVERY as i64 * 2;
        for i in 0..commits {
            let mut tx = db.begin_write().await.unwrap();
            sqlx::query("INSERT INTO t (name) VALUES ($1)")
                .bind(format!("记录{i}"))
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        let copy = dir.path().join("copy.db");
        let mut found = 0;
        for _ in 0..100 {
            std::fs::copy(dir.path().join("w.db"), &copy).unwrap();
            let c = rusqlite::Connection::open(&copy).unwrap();
            found = c
                .query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0))
                .unwrap_or(0);
            if found >= super::CHECKPOINT_EVERY as i64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            found >= super::CHECKPOINT_EVERY as i64,
            "{found} of {commits} rows in the database file"
        );
    }
}
