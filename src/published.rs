//! What the system admin publishes and every node applies at once (发布即生效): the
//! working-day calendar and the site settings. Each `Db` carries a snapshot of both; every
//! publication bumps `published_revision` in its transaction, and each node compares that
//! counter with its snapshot on every request and before every job, reloading when it moved
//! — so a publication through one node is in force on all of them from their next request.

use std::sync::{
    Arc, RwLock,
    atomic::{AtomicI64, Ordering},
};

use crate::{calendar::Calendar, error::Result, settings::Settings, store::Db};

/// One database's published calendar and settings.
pub struct Published {
    /// The `published_revision` the snapshot was read at; -1 before the first load.
    revision: AtomicI64,
    calendar: RwLock<Arc<Calendar>>,
    settings: RwLock<Arc<Settings>>,
    reload: tokio::sync::Mutex<()>,
}

impl Default for Published {
    fn default() -> Published {
        Published {
            revision: AtomicI64::new(-1),
            calendar: RwLock::new(Arc::new(Calendar::builtin())),
            settings: RwLock::new(Arc::new(Settings::default())),
            reload: tokio::sync::Mutex::new(()),
        }
    }
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published")
            .field("revision", &self.revision.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Published {
    /// The calendar in force (built-in years plus published ones).
    pub fn calendar(&self) -> Arc<Calendar> {
        self.calendar
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

/// Bring `db`'s snapshot up to the database's published revision (one small read when
/// nothing changed).
pub async fn refresh(db: &Db) -> Result<()> {
    let current: i64 = sqlx::query_scalar("SELECT revision FROM published_revision WHERE id = 1")
        .fetch_optional(&db.pool)
        .await?
        .unwrap_or(0);
    let p = &db.published;
    if p.revision.load(Ordering::Acquire) == current {
        return Ok(());
    }
    let _one = p.reload.lock().await;
    if p.revision.load(Ordering::Acquire) == current {
        return Ok(());
    }
    // Read after the revision: the data is at least as new as `current`.
    let calendar = Calendar::with_published(crate::calendar::load_published(db).await?);
    let settings = crate::settings::load(db).await?;
    if let Ok(mut c) = p.calendar.write() {
        *c = Arc::new(calendar);
    }
    if let Ok(mut s) = p.settings.write() {
        *s = Arc::new(settings);
    }
    p.revision.store(current, Ordering::Release);
    Ok(())
}

/// Record a change in the audit trail and move the published revision, inside the
/// publishing transaction.
pub async fn record_change(
    conn: &mut crate::store::Conn,
    kind: &str,
    subject: &str,
    before: &str,
    after: &str,
    by: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO platform_changes (kind, subject, before_value, after_value, changed_by, changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(kind)
    .bind(subject)
    .bind(before)
    .bind(after)
    .bind(by)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE published_revision SET revision = revision + 1 WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A change in the audit trail, for the console.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct Change {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub before_value: String,
    pub after_value: String,
    pub changed_by_name: Option<String>,
    pub changed_at: i64,
}

/// The latest changes of a kind (`settings` or `calendar`).
pub async fn changes(db: &Db, kind: &str, limit: i64) -> Result<Vec<Change>> {
    Ok(sqlx::query_as(
        "SELECT c.id, c.kind, c.subject, c.before_value, c.after_value, u.display_name AS changed_by_name, \
         c.changed_at FROM platform_changes c LEFT JOIN users u ON u.id = c.changed_by \
         WHERE c.kind = $1 ORDER BY c.id DESC LIMIT $2",
    )
    .bind(kind)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

static DEFAULT: RwLock<Option<Arc<Published>>> = RwLock::new(None);

/// Make `db`'s snapshot the one the free functions (`calendar::is_working_day`, …) read: the
/// process's database. Called once a database is opened (`Base::open`); in a process with
/// several databases (the test harness) the last one opened wins, so code that has a `Db`
/// should ask `db.published` instead.
pub fn install_default(db: &Db) {
    if let Ok(mut d) = DEFAULT.write() {
        *d = Some(db.published.clone());
    }
}

/// The process's calendar in force (built-in only before a database was opened).
pub fn default_calendar() -> Arc<Calendar> {
    DEFAULT
        .read()
        .ok()
        .and_then(|d| d.as_ref().map(|p| p.calendar()))
        .unwrap_or_else(|| Arc::new(Calendar::builtin()))
}
