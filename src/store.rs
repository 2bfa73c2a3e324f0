//! The database (数据库): one `AnyPool` over SQLite or PostgreSQL, picked once from the URL.
//! Application SQL is portable (`$1` placeholders); each backend has its own migrations.
//!
//! Portability rules kept everywhere: integers are BIGINT (money in fen), timestamps are
//! unix seconds, dates are `YYYY-MM-DD` text, and aggregates are cast back to BIGINT.
//! Booleans are BIGINT 0/1 on both backends: the Any driver cannot decode SQLite's BOOLEAN,
//! so bind `flag as i64` and read it into a typed row's `bool` field with
//! `#[sqlx(try_from = "crate::store::Flag")]`.

use std::{future::Future, str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    AnyPool, Executor,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    /// Where write transactions run: on SQLite a pool of one connection, on PostgreSQL `pool`.
    write_pool: AnyPool,
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

/// A write transaction, the one way to change the database (`Db::begin_write`). On SQLite
/// it is taken up front with `BEGIN IMMEDIATE`, so a read-then-write never fails on a stale
/// snapshot ("database is locked") and other processes on the same file wait their turn.
/// Dropped without `commit`, it rolls back.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: tokio::sync::OwnedSemaphorePermit,
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
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
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            conn.execute(
                                "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                                 PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
                            )
                            .await?;
                        }
                        Ok(())
                    })
                })
                .connect_with(options.clone())
        };
        let (pool, write_pool) = match backend {
            // The process's writes take turns anyway: one connection of their own keeps its
            // page cache warm from one write to the next (another connection's commit would
            // make SQLite reread every page it touches).
            Backend::Sqlite => (pool(8).await?, pool(1).await?),
            Backend::Postgres => {
                let p = pool(16).await?;
                (p.clone(), p)
            }
        };
        Ok(Db {
            pool,
            write_pool,
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
        let tx = match self.backend {
            Backend::Sqlite => self.write_pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write_pool.begin().await?,
        };
        Ok(WriteTx { tx, _turn: turn })
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
