//! Mail (邮件): templates under `templates/email/<name>/`, an outbox table written in the same
//! transaction as the state change, and a sender that delivers with retries and backoff over
//! SMTP (`LABSHARE_SMTP_URL`) or, when that is unset, into `.eml` files under `data/outbox/`.

use std::path::PathBuf;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};
use minijinja::Environment;
use sqlx::Row;

use crate::store::WriteQuery;
use crate::{
    config::Config,
    error::{AppError, Result},
    store::Db,
};

/// Attempts before a mail is marked failed (the console can resend it).
pub const MAX_ATTEMPTS: i64 = 8;

/// Where mails go.
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

/// The mail sender with its own templates (`templates/email/`).
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    templates: Environment<'static>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.transport {
            Transport::Smtp(_) => f.write_str("Mailer(smtp)"),
            Transport::Files(dir) => write!(f, "Mailer(files: {})", dir.display()),
        }
    }
}

impl Mailer {
    pub fn from_config(config: &Config) -> anyhow::Result<Mailer> {
        let from: Mailbox = std::env::var("LABSHARE_MAIL_FROM")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "许昌市科研设施与仪器共享服务平台 <noreply@labshare.local>".into())
            .parse()?;
        let transport = match &config.smtp_url {
            Some(url) => {
                tracing::info!("mail: delivering over SMTP");
                Transport::Smtp(
                    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
                        .timeout(Some(std::time::Duration::from_secs(10)))
                        .build(),
                )
            }
            None => {
                let dir = config.data_dir.join("outbox");
                tracing::info!(dir = %dir.display(), "mail: LABSHARE_SMTP_URL is unset, writing mails as .eml files");
                Transport::Files(dir)
            }
        };
        Ok(Mailer {
            transport,
            from,
            templates: crate::templating::base_env(&config.templates_dir),
        })
    }

    /// Render `templates/email/<name>/{subject.txt,body.txt,body.html}.j2` with `ctx`.
    pub fn render(&self, name: &str, ctx: &minijinja::Value) -> Result<Rendered> {
        render(&self.templates, name, ctx)
    }

    async fn send(
        &self,
        id: i64,
        to: &str,
        subject: &str,
        text: &str,
        html: &str,
        sender_name: &str,
    ) -> anyhow::Result<()> {
        // The display name is the one set at 平台配置; the address stays the configured one.
        let from = if sender_name.is_empty() {
            self.from.clone()
        } else {
            Mailbox::new(Some(sender_name.to_string()), self.from.email.clone())
        };
        let message = Message::builder()
            .from(from)
            .to(to.parse()?)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(
                text.to_string(),
                html.to_string(),
            ))?;
        match &self.transport {
            Transport::Smtp(t) => {
                t.send(message).await?;
            }
            Transport::Files(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                let path = dir.join(format!("{id:08}.eml"));
                tokio::fs::write(&path, message.formatted()).await?;
            }
        }
        Ok(())
    }
}

/// A rendered mail: subject, plain text and HTML.
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn render(env: &Environment<'static>, name: &str, ctx: &minijinja::Value) -> Result<Rendered> {
    let get = |part: &str| -> Result<String> {
        env.get_template(&format!("email/{name}/{part}.j2"))
            .and_then(|t| t.render(ctx))
            .map_err(|e| AppError::Internal(anyhow::anyhow!("mail template {name}/{part}: {e:#}")))
    };
    Ok(Rendered {
        subject: get("subject.txt")?.trim().replace(['\r', '\n'], " "),
        text: get("body.txt")?,
        html: get("body.html")?,
    })
}

/// Queue a mail inside the caller's transaction; it is delivered after commit.
pub async fn enqueue(
    conn: &mut crate::store::Conn,
    to_addr: &str,
    to_user_id: Option<i64>,
    kind: &str,
    mail: &Rendered,
    now: i64,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO mail_outbox (to_addr, to_user_id, kind, subject, body_text, body_html, \
         next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(to_addr)
    .bind(to_user_id)
    .bind(kind)
    .bind(&mail.subject)
    .bind(&mail.text)
    .bind(&mail.html)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
}

/// Backoff after `attempts` failures: 1, 2, 4 … minutes, at most an hour.
pub fn backoff_secs(attempts: i64) -> i64 {
    (60i64 << (attempts - 1).clamp(0, 6)).min(3600)
}

/// A claim older than this (a sender that died mid-send) is given up: the mail is pending again.
pub const STALE_CLAIM_SECS: i64 = 10 * 60;

/// Who claims mails in this process: the process id and a start-up nonce, so two nodes (or two
/// processes on one host) never share a name.
fn claimant() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("{}-{nonce:x}", std::process::id())
    })
}

/// Deliver the mails that are due. An SMTP outage leaves them queued for a later pass. Each
/// mail is claimed (`pending` → `sending`) before it is sent, so concurrent passes — the
/// scheduler's loop, `jobs run mail-outbox`, another node — send it once.
pub async fn deliver_due(db: &Db, mailer: &Mailer, now: i64, limit: i64) -> Result<Delivery> {
    let me = claimant();
    sqlx::query(
        "UPDATE mail_outbox SET status = 'pending', claimed_at = NULL, claimed_by = NULL \
         WHERE status = 'sending' AND claimed_at < $1",
    )
    .bind(now - STALE_CLAIM_SECS)
    .write(db)
    .await?;
    let rows = sqlx::query(
        "SELECT id, to_addr, subject, body_text, body_html, attempts FROM mail_outbox \
         WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Delivery::default();
    if !rows.is_empty() {
        crate::published::refresh(db).await?;
    }
    let sender_name = db.published.settings().mail_sender_name.clone();
    for r in rows {
        let id: i64 = r.get("id");
        let claimed = sqlx::query(
            "UPDATE mail_outbox SET status = 'sending', claimed_at = $1, claimed_by = $2 \
             WHERE id = $3 AND status = 'pending' AND next_attempt_at <= $1",
        )
        .bind(now)
        .bind(me)
        .bind(id)
        .write(db)
        .await?;
        if claimed.rows_affected() != 1 {
            continue; // another sender has it
        }
        let attempts: i64 = r.get::<i64, _>("attempts") + 1;
        let result = mailer
            .send(
                id,
                &r.get::<String, _>("to_addr"),
                &r.get::<String, _>("subject"),
                &r.get::<String, _>("body_text"),
                &r.get::<String, _>("body_html"),
                &sender_name,
            )
            .await;
        match result {
            Ok(()) => {
                sqlx::query(
                    "UPDATE mail_outbox SET status = 'sent', attempts = $1, sent_at = $2, \
                     last_error = '', claimed_at = NULL, claimed_by = NULL WHERE id = $3",
                )
                .bind(attempts)
                .bind(now)
                .bind(id)
                .write(db)
                .await?;
                out.sent += 1;
            }
            Err(e) => {
                let failed = attempts >= MAX_ATTEMPTS;
                tracing::warn!(mail = id, attempts, error = %e, "mail delivery failed");
                sqlx::query(
                    "UPDATE mail_outbox SET status = $1, attempts = $2, next_attempt_at = $3, \
                     last_error = $4, claimed_at = NULL, claimed_by = NULL WHERE id = $5",
                )
                .bind(if failed { "failed" } else { "pending" })
                .bind(attempts)
                .bind(now + backoff_secs(attempts))
                .bind(format!("{e:#}").chars().take(500).collect::<String>())
                .bind(id)
                .write(db)
                .await?;
                if failed {
                    out.failed += 1;
                } else {
                    out.retried += 1;
                }
            }
        }
    }
    Ok(out)
}

/// A queued mail as the operator's page lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub to_addr: String,
    pub kind: String,
    pub subject: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: String,
    pub created_at: i64,
    pub next_attempt_at: i64,
}

/// The newest mails not (yet) sent: pending or failed.
pub async fn unsent(db: &Db, limit: i64) -> Result<Vec<OutboxRow>> {
    Ok(sqlx::query_as(
        "SELECT id, to_addr, kind, subject, status, attempts, last_error, created_at, next_attempt_at FROM mail_outbox \
         WHERE status <> 'sent' ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

/// Mails waiting to be sent, and mails that failed for good.
pub struct Backlog {
    pub pending: i64,
    pub failed: i64,
}

pub async fn backlog(db: &Db) -> Result<Backlog> {
    let (pending, failed): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) FROM mail_outbox",
    )
    .fetch_one(&db.pool)
    .await?;
    Ok(Backlog { pending, failed })
}

/// How many mails have been sent.
pub async fn sent_count(db: &Db) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox WHERE status = 'sent'")
            .fetch_one(&db.pool)
            .await?,
    )
}

/// Put a failed (or pending) mail back in the queue for immediate delivery (one being sent
/// right now is left to its sender).
pub async fn resend(db: &Db, id: i64, now: i64) -> Result<()> {
    let n = sqlx::query(
        "UPDATE mail_outbox SET status = 'pending', attempts = 0, next_attempt_at = $1 \
         WHERE id = $2 AND status IN ('pending', 'failed')",
    )
    .bind(now)
    .bind(id)
    .write(db)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff_secs(1), 60);
        assert_eq!(backoff_secs(2), 120);
        assert_eq!(backoff_secs(4), 480);
        assert_eq!(backoff_secs(20), 3600);
    }
}
