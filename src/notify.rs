//! Notifications (通知): every event becomes an in-app notification (the bell) and, by the
//! user's preference per kind, an immediate mail, a line in the daily digest, or nothing.
//! Mandatory kinds (tasks to act on) always mail immediately.

use serde::Serialize;
use sqlx::Row;

use crate::store::WriteQuery;
use crate::{error::Result, mail, store::Db};

/// Kinds of event, their Chinese names, and whether the mail can be turned off.
pub const KINDS: [(&str, &str, bool); 10] = [
    ("submitted", "申请已提交", false),
    ("assigned", "待办任务", true),
    ("decided", "审批结果", false),
    ("returned", "退回修改", true),
    ("withdrawn", "申请已撤回", false),
    ("due_soon", "任务即将到期", false),
    ("overdue", "任务已逾期", true),
    ("escalated", "任务已升级", false),
    ("certified", "认证结果", false),
    ("published", "发布通知", false),
];

pub fn kind_label(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map(|(_, l, _)| *l)
        .unwrap_or("通知")
}

fn mandatory(kind: &str) -> bool {
    KINDS.iter().any(|(k, _, m)| *k == kind && *m)
}

/// What to tell one user.
#[derive(Debug, Clone, Serialize)]
pub struct Notice<'a> {
    pub kind: &'a str,
    pub title: String,
    pub body: String,
    /// A path on the platform (`/console/tasks/12`); mails turn it into a full URL.
    pub link: String,
}

/// The user's mail mode for a kind: `immediate` (default), `digest` or `off`.
pub async fn mode(conn: &mut crate::store::Conn, user_id: i64, kind: &str) -> Result<String> {
    if mandatory(kind) {
        return Ok("immediate".into());
    }
    let m: Option<String> =
        sqlx::query_scalar("SELECT mode FROM notification_prefs WHERE user_id = $1 AND kind = $2")
            .bind(user_id)
            .bind(kind)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(m.unwrap_or_else(|| "immediate".into()))
}

/// Record the notification and queue its mail, inside the caller's transaction.
/// `extra_mail` is an already-rendered mail to send instead of the generic one (task mails
/// with action links).
pub async fn notify(
    conn: &mut crate::store::Conn,
    mailer: &mail::Mailer,
    public_url: &str,
    user_id: i64,
    notice: &Notice<'_>,
    extra_mail: Option<mail::Rendered>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO notifications (user_id, kind, title, body, link, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(user_id)
    .bind(notice.kind)
    .bind(&notice.title)
    .bind(&notice.body)
    .bind(&notice.link)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let m = mode(conn, user_id, notice.kind).await?;
    let row = sqlx::query("SELECT email, display_name FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(()) };
    let email: Option<String> = row.get("email");
    let (Some(email), "immediate") = (email, m.as_str()) else {
        return Ok(());
    };
    let rendered = match extra_mail {
        Some(r) => r,
        None => mailer.render(
            "notice",
            &crate::ctx! {
                name => row.get::<String, _>("display_name"), kind_label => kind_label(notice.kind),
                title => notice.title, body => notice.body,
                link => format!("{public_url}{}", notice.link), public_url => public_url,
            },
        )?,
    };
    mail::enqueue(conn, &email, Some(user_id), notice.kind, &rendered, now).await?;
    Ok(())
}

/// Unread count for the bell.
pub async fn unread_count(db: &Db, user_id: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(&db.pool)
    .await?)
}

/// One notification in the user's notification centre.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: i64,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link: String,
    pub read_at: Option<i64>,
    pub created_at: i64,
}

/// A page of a user's notifications, newest first: (total, page).
pub async fn list(
    db: &Db,
    user_id: i64,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<NotificationRow>)> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&db.pool)
        .await?;
    let rows = sqlx::query_as(
        "SELECT id, kind, title, body, link, read_at, created_at FROM notifications WHERE user_id = $1 \
         ORDER BY id DESC LIMIT $2 OFFSET $3",
    )
    .bind(user_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok((total, rows))
}

/// Mark all of a user's notifications read.
pub async fn mark_all_read(db: &Db, user_id: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL")
        .bind(now)
        .bind(user_id)
        .write(db)
        .await?;
    Ok(())
}

/// Open one of the user's notifications: mark it read and return its link (`NotFound` if it
/// is not theirs).
pub async fn open(db: &Db, user_id: i64, id: i64, now: i64) -> Result<String> {
    let link: Option<String> =
        sqlx::query_scalar("SELECT link FROM notifications WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .fetch_optional(&db.pool)
            .await?;
    let link = link.ok_or(crate::error::AppError::NotFound)?;
    sqlx::query("UPDATE notifications SET read_at = $1 WHERE id = $2 AND read_at IS NULL")
        .bind(now)
        .bind(id)
        .write(db)
        .await?;
    Ok(link)
}

/// Save the user's mail modes from `(kind, mode)` pairs; mandatory kinds and kinds not in
/// `pairs` are left alone, an unknown mode is a field error on its kind.
pub async fn save_modes(db: &Db, user_id: i64, pairs: &[(String, String)]) -> Result<()> {
    let mut tx = db.begin_write().await?;
    for (key, _, mandatory) in KINDS {
        if mandatory {
            continue;
        }
        let Some((_, mode)) = pairs.iter().find(|(k, _)| k == key) else {
            continue;
        };
        if !matches!(mode.as_str(), "immediate" | "digest" | "off") {
            return Err(crate::error::AppError::field(
                key,
                "请选择：立即发送、每日汇总或不发送",
            ));
        }
        sqlx::query("DELETE FROM notification_prefs WHERE user_id = $1 AND kind = $2")
            .bind(user_id)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO notification_prefs (user_id, kind, mode) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(key)
            .bind(mode)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Send each user who chose `digest` one mail with their undigested notifications.
pub async fn send_digests(
    db: &Db,
    mailer: &mail::Mailer,
    public_url: &str,
    now: i64,
) -> Result<u64> {
    let users: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT n.user_id FROM notifications n JOIN notification_prefs p \
         ON p.user_id = n.user_id AND p.kind = n.kind AND p.mode = 'digest' \
         WHERE n.digest_sent_at IS NULL",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut sent = 0;
    for user_id in users {
        let mut tx = db.begin_write().await?;
        let items = sqlx::query(
            "SELECT n.id, n.kind, n.title, n.link FROM notifications n JOIN notification_prefs p \
             ON p.user_id = n.user_id AND p.kind = n.kind AND p.mode = 'digest' \
             WHERE n.user_id = $1 AND n.digest_sent_at IS NULL ORDER BY n.id",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT email, display_name FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
        let lines: Vec<serde_json::Value> = items
            .iter()
            .map(|r| {
                serde_json::json!({
                    "kind_label": kind_label(&r.get::<String, _>("kind")),
                    "title": r.get::<String, _>("title"),
                    "link": format!("{public_url}{}", r.get::<String, _>("link")),
                })
            })
            .collect();
        if let Some(email) = row.get::<Option<String>, _>("email") {
            let rendered = mailer.render(
                "digest",
                &crate::ctx! { name => row.get::<String, _>("display_name"), items => lines, public_url => public_url },
            )?;
            mail::enqueue(&mut tx, &email, Some(user_id), "digest", &rendered, now).await?;
            sent += 1;
        }
        for r in &items {
            sqlx::query("UPDATE notifications SET digest_sent_at = $1 WHERE id = $2")
                .bind(now)
                .bind(r.get::<i64, _>("id"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    Ok(sent)
}

/// Workflow events not yet turned into notifications and mails.
pub async fn events_backlog(db: &Db) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_events WHERE delivered_at IS NULL",
    )
    .fetch_one(&db.pool)
    .await?)
}

/// Turn undelivered workflow events into notifications and mails; task assignments get
/// one-click 同意 / 驳回 links. Each event is claimed first, so several nodes never
/// deliver one twice. Returns how many were delivered.
pub async fn deliver_workflow_events(app: &crate::app::App, limit: i64) -> Result<u64> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM workflow_events WHERE delivered_at IS NULL ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&app.db.pool)
    .await?;
    let now = app.now();
    let public = app.config.public_url.clone();
    let mut delivered = 0;
    for id in ids {
        let mut tx = app.db.begin_write().await?;
        let claimed = sqlx::query(
            "UPDATE workflow_events SET delivered_at = $1 WHERE id = $2 AND delivered_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            continue;
        }
        let ev = sqlx::query(
            "SELECT e.kind, e.task_id, e.user_id, i.id AS instance_id, i.workflow_key, i.version, i.subject_type, i.subject_id, i.state \
             FROM workflow_events e JOIN workflow_instances i ON i.id = e.instance_id WHERE e.id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let Some(user_id) = ev.get::<Option<i64>, _>("user_id") else {
            tx.commit().await?;
            continue;
        };
        let key: String = ev.get("workflow_key");
        let version: i64 = ev.get("version");
        let def = app
            .engine
            .definitions
            .version(&app.db, &key, version)
            .await?;
        let subject = app
            .engine
            .definitions
            .catalog()
            .label(
                &mut tx,
                &ev.get::<String, _>("subject_type"),
                ev.get("subject_id"),
            )
            .await?;
        let instance_id: i64 = ev.get("instance_id");
        let event: String = ev.get("kind");
        let step = def.state_title(&ev.get::<String, _>("state"));
        let (kind, title, link) = match event.as_str() {
            "task_assigned" => (
                "assigned",
                format!("待办：{}（{subject}）", def.title),
                ev.get::<Option<i64>, _>("task_id")
                    .map(|t| format!("/console/tasks/{t}"))
                    .unwrap_or_default(),
            ),
            "cc" => (
                "published",
                format!("抄送：{}（{subject}）", def.title),
                format!("/console/workflow-instances/{instance_id}"),
            ),
            "decided" => (
                "decided",
                format!("{}：{subject} 当前为“{step}”", def.title),
                format!("/console/workflow-instances/{instance_id}"),
            ),
            "returned" => (
                "returned",
                format!("{}被退回修改：{subject}", def.title),
                format!("/console/workflow-instances/{instance_id}"),
            ),
            "withdrawn" => (
                "withdrawn",
                format!("{}已撤回：{subject}", def.title),
                format!("/console/workflow-instances/{instance_id}"),
            ),
            "due_soon" => (
                "due_soon",
                format!("待办即将到期：{}（{subject}）", def.title),
                format!("/console/workflow-instances/{instance_id}"),
            ),
            "overdue" => (
                "overdue",
                format!("待办已逾期：{}（{subject}）", def.title),
                format!("/console/workflow-instances/{instance_id}"),
            ),
            "escalated" => (
                "escalated",
                format!("待办已升级：{}（{subject}）", def.title),
                format!("/console/workflow-instances/{instance_id}"),
            ),
            // A retirement approved (下线报废): those with a booking still to come are told.
            "record_retired" => (
                "decided",
                format!("{subject}：该仪器已下线，您的预约无法继续，请与仪器所属单位联系"),
                "/console/my-bookings".to_string(),
            ),
            other => (
                "decided",
                format!("{}：{other}", def.title),
                format!("/console/workflow-instances/{instance_id}"),
            ),
        };
        let body = format!("流程：{}；对象：{subject}；当前环节：{step}。", def.title);
        let mut extra = None;
        if event == "task_assigned"
            && let Some(task_id) = ev.get::<Option<i64>, _>("task_id")
        {
            let step_key: String = ev.get("state");
            let actions: Vec<String> = def
                .state(&step_key)
                .and_then(|s| s.task.as_ref())
                .map(|t| {
                    t.actions
                        .iter()
                        .filter(|a| *a == "approve" || *a == "reject")
                        // A one-click link carries no form: leave out decisions that need one
                        // (an expert's scores, a grade); the mail links to the page instead.
                        .filter(|a| t.on.get(*a).is_none_or(|tr| !tr.needs_form()))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let mut links = Vec::new();
            for action in &actions {
                let token =
                    crate::email_actions::issue(&mut tx, task_id, user_id, action, version, now)
                        .await?;
                let label = if action == "approve" {
                    "同意"
                } else {
                    "驳回"
                };
                links.push(serde_json::json!({"label": label, "url": format!("{public}/email-actions/{token}")}));
            }
            let row = sqlx::query("SELECT display_name FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
            extra = Some(app.mailer.render(
                "task_assigned",
                &crate::ctx! {
                    name => row.get::<String, _>("display_name"), workflow => def.title, subject => subject,
                    step => step, links => links, detail => format!("{public}{link}"), public_url => public,
                    days => crate::email_actions::link_days(),
                },
            )?);
        }
        notify(
            &mut tx,
            &app.mailer,
            &public,
            user_id,
            &Notice {
                kind,
                title,
                body,
                link,
            },
            extra,
            now,
        )
        .await?;
        tx.commit().await?;
        delivered += 1;
    }
    Ok(delivered)
}
