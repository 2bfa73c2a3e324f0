//! The database (数据库): one `AnyPool` over SQLite or PostgreSQL, picked once from the URL.
//! Application SQL is portable (`$1` placeholders); each backend has its own migrations.
//!
//! Portability rules kept everywhere: integers are BIGINT (money in fen), timestamps are
//! unix seconds, dates are `YYYY-MM-DD` text, and aggregates are cast back to BIGINT.
//! Booleans are BIGINT 0/1 on both backends: the Any driver cannot decode SQLite's BOOLEAN,
//! so bind `flag as i64` and read it into a typed row's `bool` field with
//! `#[sqlx(try_from = "crate::store::Flag")]`.

use std::{future::Future, str::FromStr, sync::Arc, time::Duration};

use futures::{FutureExt, StreamExt, TryFutureExt, future::BoxFuture, stream::BoxStream};
use sqlx::{
    AnyPool, Either, Executor,
    any::{AnyConnectOptions, AnyPoolOptions, AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo},
    migrate::Migrator,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

mod deferred;
mod sqlite_writer;

pub use deferred::{Expect, Touch, Unexpected};

/// What every SQLite connection is set to, the pool's and the writer's alike.
const SQLITE_SETTINGS: &str =
    "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

/// A pool connection idle this long is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    /// SQLite only: the connection write transactions run on, on the caller's thread
    /// (`sqlite_writer`). PostgreSQL writes run on `pool`.
    sqlite_writer: Option<Arc<sqlite_writer::Slot>>,
    pub backend: Backend,
    /// Write transactions of this process take a turn here first. SQLite has one turn: its
    /// writers queue here instead of spinning in SQLite's busy handler, whose sleeps dominate
    /// under concurrency. PostgreSQL has two per core (at least four): more concurrent writers
    /// only queue on row locks inside the server, where a lock holder competes for the cores
    /// with the backends waiting on it (the engine benchmark with 16 decisions in flight went
    /// from 1,457 to 1,798 transitions/s; `docs/benchmarks.md`).
    writers: Arc<tokio::sync::Semaphore>,
    /// This database's published calendar and settings (see `crate::published`).
    pub published: Arc<crate::published::Published>,
}

/// A connection as the application's SQL sees it: `&mut Conn` is a `sqlx` executor over the
/// `Any` driver (`query(…).execute(&mut *conn)`), whichever of these it is.
#[derive(Debug)]
pub enum Conn {
    /// A pool connection (`Db::acquire`), for reads that need one connection throughout.
    Pooled(sqlx::pool::PoolConnection<sqlx::Any>),
    /// A PostgreSQL write transaction, with the writes it holds back (`Conn::defer`).
    Transaction(PgWrite),
    /// An SQLite write transaction, run on the caller's thread.
    Sqlite(sqlite_writer::Writer),
}

/// A PostgreSQL write transaction and the writes it holds back.
#[derive(Debug)]
pub struct PgWrite {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    pending: deferred::Pending,
}

impl PgWrite {
    async fn flush(&mut self) -> Result<(), sqlx::Error> {
        self.pending.flush(&mut self.tx).await
    }
}

impl Conn {
    /// "PostgreSQL" or "SQLite", as sqlx names them.
    pub fn backend_name(&self) -> &str {
        match self {
            Conn::Pooled(c) => c.backend_name(),
            Conn::Transaction(t) => t.tx.backend_name(),
            Conn::Sqlite(_) => "SQLite",
        }
    }

    /// Run a write whose result the caller does not need now: one INSERT, UPDATE or DELETE
    /// without `RETURNING`, changing the tables `touches` names (triggers included), and,
    /// with `expect`, exactly that many rows — another count aborts the transaction with
    /// [`Unexpected`]. In a PostgreSQL write transaction the write is held back and sent with
    /// the writes after it as one statement, before anything else runs on the transaction and
    /// before it commits (`deferred`); elsewhere it runs at once. So its errors may surface at
    /// the transaction's next statement or at its commit, never later.
    pub async fn defer(
        &mut self,
        mut query: sqlx::query::Query<'_, sqlx::Any, sqlx_core::any::AnyArguments>,
        touches: &[Touch],
        expect: Option<Expect>,
    ) -> Result<(), sqlx::Error> {
        let args = sqlx::Execute::take_arguments(&mut query)
            .map_err(sqlx::Error::Encode)?
            .unwrap_or_default();
        let sql = sqlx::Execute::sql(query).as_str().to_string();
        deferred::check_shape(&sql)?;
        match self {
            Conn::Transaction(w) => {
                if w.pending.clashes(touches) {
                    w.flush().await?;
                }
                w.pending.push(sql, args, touches, expect);
                Ok(())
            }
            conn => {
                let done = sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
                    .execute(&mut *conn)
                    .await?;
                expect.map_or(Ok(()), |e| e.check(done.rows_affected()))
            }
        }
    }
}

impl<'c> Executor<'c> for &'c mut Conn {
    type Database = sqlx::Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        mut query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + sqlx::Execute<'q, sqlx::Any>,
    {
        match self {
            Conn::Pooled(c) => (&mut **c).fetch_many(query),
            Conn::Transaction(w) => {
                if w.pending.is_empty() {
                    return (&mut *w.tx).fetch_many(query);
                }
                // The held writes go first, so this statement sees them.
                Box::pin(async move {
                    w.flush().await?;
                    let tx = &mut w.tx;
                    Ok::<_, sqlx::Error>((&mut **tx).fetch_many(query))
                })
                .try_flatten_stream()
                .boxed()
            }
            Conn::Sqlite(w) => {
                let results = match query.take_arguments() {
                    Ok(args) => {
                        let persistent = query.persistent();
                        w.run(query.sql().as_str(), args, persistent, None)
                    }
                    Err(e) => vec![Err(sqlx::Error::Encode(e))],
                };
                Box::pin(async move {
                    // A long run of statements still lets the thread's other tasks in.
                    tokio::task::consume_budget().await;
                    futures::stream::iter(results)
                })
                .flatten_stream()
                .boxed()
            }
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        mut query: E,
    ) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + sqlx::Execute<'q, sqlx::Any>,
    {
        match self {
            Conn::Pooled(c) => (&mut **c).fetch_optional(query),
            Conn::Transaction(w) => {
                if w.pending.is_empty() {
                    return (&mut *w.tx).fetch_optional(query);
                }
                Box::pin(async move {
                    w.flush().await?;
                    let tx = &mut w.tx;
                    (&mut **tx).fetch_optional(query).await
                })
            }
            Conn::Sqlite(w) => {
                let result = query
                    .take_arguments()
                    .map_err(sqlx::Error::Encode)
                    .and_then(|args| {
                        let persistent = query.persistent();
                        let mut row = None;
                        for r in w.run(query.sql().as_str(), args, persistent, Some(1)) {
                            if let Either::Right(r) = r? {
                                row = Some(r);
                            }
                        }
                        Ok(row)
                    });
                Box::pin(async move {
                    tokio::task::consume_budget().await;
                    result
                })
            }
        }
    }

    fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        match self {
            Conn::Pooled(c) => (&mut **c).prepare_with(sql, parameters),
            Conn::Transaction(w) => (&mut *w.tx).prepare_with(sql, parameters),
            Conn::Sqlite(w) => Box::pin(std::future::ready(w.prepare(sql))),
        }
    }

    fn describe<'e>(
        self,
        sql: sqlx::SqlStr,
    ) -> BoxFuture<'e, Result<sqlx::Describe<sqlx::Any>, sqlx::Error>>
    where
        'c: 'e,
    {
        match self {
            Conn::Pooled(c) => (&mut **c).describe(sql),
            Conn::Transaction(w) => (&mut *w.tx).describe(sql),
            // Compile-time query checking describes through sqlx's own connections.
            Conn::Sqlite(_) => Box::pin(std::future::ready(Err(sqlx::Error::AnyDriverError(
                "describe runs on sqlx's SQLite driver, not inside a write transaction".into(),
            )))),
        }
    }
}

/// A write transaction, the one way to change the database (`Db::begin_write`). On SQLite
/// it is taken up front with `BEGIN IMMEDIATE`, so a read-then-write never fails on a stale
/// snapshot ("database is locked") and other processes on the same file wait their turn.
/// Dropped without `commit`, it rolls back.
pub struct WriteTx {
    conn: Conn,
    _turn: tokio::sync::OwnedSemaphorePermit,
}

impl std::ops::Deref for WriteTx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.conn {
            Conn::Transaction(mut w) => {
                w.flush().await?;
                w.tx.commit().await
            }
            Conn::Sqlite(w) => w.commit(),
            Conn::Pooled(_) => Ok(()),
        }
    }
}

impl Db {
    /// Connect to the database named by `url`, creating an SQLite file if needed.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let mut sqlite_file = None;
        let url = match backend {
            Backend::Sqlite => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                let file = path.split('?').next().unwrap_or(path);
                if let Some(parent) = std::path::Path::new(file).parent()
                    && !parent.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(parent)?;
                }
                sqlite_file = Some(file.to_string());
                if url.contains('?') {
                    url.to_string()
                } else {
                    format!("{url}?mode=rwc")
                }
            }
            Backend::Postgres => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = |max: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(15))
                // sqlx pings every connection it hands out: a round trip before each
                // statement on the pool and each transaction (on SQLite a hop to its
                // thread). One used within the last second is alive; only one idle longer
                // is pinged, and replaced if that fails (`docs/benchmarks.md`, fifth pass).
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        use sqlx::Connection;
                        Ok(meta.idle_for < PING_AFTER_IDLE || conn.ping().await.is_ok())
                    })
                })
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            conn.execute(SQLITE_SETTINGS).await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                        }
                        Ok(())
                    })
                })
                .connect_with(options.clone())
        };
        let pool = pool(match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        })
        .await?;
        // The process's writes take turns anyway: one connection of their own keeps its page
        // cache warm from one write to the next (another connection's commit would make SQLite
        // reread every page it touches). Opened after the pool, which created the file.
        let sqlite_writer = match &sqlite_file {
            Some(file) => Some(Arc::new(sqlite_writer::Slot::open(file)?)),
            None => None,
        };
        Ok(Db {
            pool,
            sqlite_writer,
            backend,
            writers: Arc::new(tokio::sync::Semaphore::new(match backend {
                Backend::Sqlite => 1,
                Backend::Postgres => std::thread::available_parallelism()
                    .map_or(2, |n| n.get())
                    .saturating_mul(2)
                    .max(4),
            })),
            published: Arc::default(),
        })
    }

    /// Begin a write transaction (see `WriteTx`).
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let turn = self
            .writers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let conn = match &self.sqlite_writer {
            Some(slot) => Conn::Sqlite(slot.begin().await?),
            None => Conn::Transaction(PgWrite {
                tx: self.pool.begin().await?,
                pending: deferred::Pending::default(),
            }),
        };
        Ok(WriteTx { conn, _turn: turn })
    }

    /// One pool connection, for reads that run several statements on one connection.
    pub async fn acquire(&self) -> Result<Conn, sqlx::Error> {
        Ok(Conn::Pooled(self.pool.acquire().await?))
    }

    /// Apply the backend's migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// `true` when a check query succeeds (used by `/healthz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// A BIGINT 0/1 column as read from the database. Typed rows turn it into a `bool` with
/// `#[sqlx(try_from = "crate::store::Flag")]` (the Any driver decodes no `bool` from an integer).
#[derive(Clone, Copy, Debug, sqlx::Type)]
#[sqlx(transparent)]
pub struct Flag(pub i64);

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0 != 0
    }
}

/// A money column in fen (BIGINT) as read from the database. Typed rows turn it into a
/// [`Yuan`](crate::domain::Yuan) field with `#[sqlx(try_from = "crate::store::Fen")]`.
#[derive(Clone, Copy, Debug, sqlx::Type)]
#[sqlx(transparent)]
pub struct Fen(pub i64);

impl From<Fen> for crate::domain::Yuan {
    fn from(fen: Fen) -> crate::domain::Yuan {
        crate::domain::Yuan::from_fen(fen.0)
    }
}

/// A single write statement outside an explicit transaction still takes the one write path:
/// `sqlx::query(…).bind(…).write(&db)` runs it as its own `begin_write` transaction.
pub trait WriteQuery {
    type Output;
    fn write(self, db: &Db) -> impl Future<Output = Result<Self::Output, sqlx::Error>> + Send;
}

impl<'q> WriteQuery for sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    type Output = sqlx::any::AnyQueryResult;
    fn write(self, db: &Db) -> impl Future<Output = Result<Self::Output, sqlx::Error>> + Send {
        let db = db.clone();
        async move {
            let mut tx = db.begin_write().await?;
            let done = self.execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done)
        }
    }
}

impl<'q, O> WriteQuery for sqlx::query::QueryScalar<'q, sqlx::Any, O, sqlx::any::AnyArguments>
where
    O: Send + Unpin + 'q,
    (O,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    /// The value of `RETURNING` (`INSERT … RETURNING id`).
    type Output = O;
    fn write(self, db: &Db) -> impl Future<Output = Result<O, sqlx::Error>> + Send {
        let db = db.clone();
        async move {
            let mut tx = db.begin_write().await?;
            let value = self.fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(value)
        }
    }
}

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.code().as_deref() == Some("23505")
                || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}
