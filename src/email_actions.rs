//! Acting on a task from email (邮件审批): opaque random tokens (256 bits) stored only as
//! hashes, bound to one task, its assignee, one action and the instance version, expiring and
//! single-use. A GET never acts; the confirmation page's POST does.

use sqlx::Row;

use crate::store::WriteQuery;
use crate::{
    auth,
    error::{AppError, Result},
    store::Db,
};

/// Default lifetime of an email link, in days (`LABSHARE_EMAIL_LINK_DAYS`).
pub fn link_days() -> i64 {
    std::env::var("LABSHARE_EMAIL_LINK_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|d: &i64| (1..=60).contains(d))
        .unwrap_or(7)
}

/// Failed token look-ups allowed per address per 10 minutes. Only unknown tokens count and
/// only unknown tokens are refused: a reviewer's real link keeps working however many
/// guesses someone else made from the same address (an office NAT, a proxy).
pub const MAX_BAD_ATTEMPTS: i64 = 20;

/// Issue a token for (task, user, action); returns the raw token for the link.
pub async fn issue(
    conn: &mut crate::store::Conn,
    task_id: i64,
    user_id: i64,
    action: &str,
    instance_version: i64,
    now: i64,
) -> Result<String> {
    let token = auth::random_token();
    sqlx::query(
        "INSERT INTO email_action_tokens (token_hash, task_id, user_id, action, instance_version, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(auth::token_hash(&token))
    .bind(task_id)
    .bind(user_id)
    .bind(action)
    .bind(instance_version)
    .bind(now + link_days() * 86_400)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(token)
}

/// What a valid link stands for.
#[derive(Debug, Clone)]
pub struct Link {
    pub task_id: i64,
    pub user_id: i64,
    pub action: String,
    pub instance_id: i64,
}

/// Why a link cannot be used: the page says so and offers the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Unknown, tampered or expired: nothing is revealed.
    Expired,
    /// The task was decided, withdrawn or transferred, or the link was used.
    Handled,
}

/// Resolve a token; checks attempts from `ip`, expiry, single use, the task still open for
/// this assignee and the instance still on the version the link was made for. The throttle is
/// keyed by address *and* token: an unknown token is recorded first, then the address's
/// recent unknown tokens are counted (atomic under concurrency); a known token is never
/// refused because of other tokens' failures.
pub async fn resolve(
    db: &Db,
    token: &str,
    ip: &str,
    now: i64,
) -> Result<std::result::Result<Link, Invalid>> {
    let row = sqlx::query(
        "SELECT e.task_id, e.user_id, e.action, e.instance_version, e.expires_at, e.used_at, \
         t.status, t.assignee_id, t.instance_id, i.version, i.status AS istatus \
         FROM email_action_tokens e JOIN workflow_tasks t ON t.id = e.task_id \
         JOIN workflow_instances i ON i.id = t.instance_id WHERE e.token_hash = $1",
    )
    .bind(auth::token_hash(token))
    .fetch_optional(&db.pool)
    .await?;
    let Some(r) = row else {
        let mut tx = db.begin_write().await?;
        if db.backend == crate::store::Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("email-link:{ip}"))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM token_attempts WHERE ip = $1 AND at <= $2")
            .bind(ip)
            .bind(now - 600)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO token_attempts (ip, at) VALUES ($1, $2)")
            .bind(ip)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let bad: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM token_attempts WHERE ip = $1 AND at > $2")
                .bind(ip)
                .bind(now - 600)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        if bad > MAX_BAD_ATTEMPTS {
            return Err(AppError::TooManyRequests {
                message: "尝试次数过多，请 10 分钟后再试，或登录平台处理待办".into(),
            });
        }
        return Ok(Err(Invalid::Expired));
    };
    if r.get::<i64, _>("expires_at") <= now {
        return Ok(Err(Invalid::Expired));
    }
    let handled = r.get::<Option<i64>, _>("used_at").is_some()
        || r.get::<String, _>("status") != "open"
        || r.get::<i64, _>("assignee_id") != r.get::<i64, _>("user_id")
        || r.get::<i64, _>("version") != r.get::<i64, _>("instance_version")
        || r.get::<String, _>("istatus") != "running";
    if handled {
        return Ok(Err(Invalid::Handled));
    }
    Ok(Ok(Link {
        task_id: r.get("task_id"),
        user_id: r.get("user_id"),
        action: r.get("action"),
        instance_id: r.get("instance_id"),
    }))
}

/// Mark every link to the task used (single use, and siblings stop working too).
pub async fn consume(db: &Db, task_id: i64, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE email_action_tokens SET used_at = $1 WHERE task_id = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(task_id)
    .write(db)
    .await?;
    Ok(())
}
