//! Membership with consent (成员邀请): a unit's manager invites a registered user by username,
//! mobile or email; only the invitee's acceptance makes them a member. Members may leave, the
//! manager role may be handed over. Every change is a row in `membership_log` and — for
//! everything after the unit's creation — an entry of the hash-chained decision log.

use serde::Serialize;
use serde_json::json;

use crate::{
    app::App,
    auth::{CurrentUser, Permission},
    error::{AppError, Result},
    store::Db,
};

/// An invitation as the invitee's console and `GET /me` show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Invitation {
    pub id: i64,
    pub unit_id: i64,
    pub unit_name: String,
    pub user_id: i64,
    pub username: String,
    pub role: String,
    pub status: String,
    pub invited_by_name: String,
    pub created_at: i64,
}

const SELECT: &str = "SELECT i.id, i.unit_id, u.name AS unit_name, i.user_id, x.username, i.role, \
    i.status, y.display_name AS invited_by_name, i.created_at FROM unit_invitations i \
    JOIN units u ON u.id = i.unit_id JOIN users x ON x.id = i.user_id \
    JOIN users y ON y.id = i.invited_by";

pub fn role_label(role: &str) -> &'static str {
    if role == "manager" {
        "单位管理员"
    } else {
        "成员"
    }
}

/// Record a membership change: the membership log, and the decision log's hash chain.
async fn record(
    conn: &mut crate::store::Conn,
    unit_id: i64,
    user_id: i64,
    action: &str,
    role: &str,
    actor: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO membership_log (unit_id, user_id, action, role, actor_id, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(unit_id)
    .bind(user_id)
    .bind(action)
    .bind(role)
    .bind(actor)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let data = json!({"unit_id": unit_id, "user_id": user_id, "role": role}).to_string();
    crate::workflow::audit::append(
        conn,
        crate::workflow::audit::Entry {
            instance_id: 0,
            at: now,
            actor_id: Some(actor),
            workflow_key: "unit_membership",
            version: 0,
            state: role,
            action,
            to_state: "",
            comment: "",
            data: &data,
        },
    )
    .await
}

/// The user a manager means by a username, a mobile number or an email.
async fn find_user(db: &Db, who: &str) -> Result<Option<i64>> {
    let who = who.trim();
    if who.is_empty() {
        return Ok(None);
    }
    Ok(sqlx::query_scalar(
        "SELECT id FROM users WHERE is_active = 1 AND (username = $1 OR phone = $1 OR email = $1) \
         ORDER BY CASE WHEN username = $1 THEN 0 ELSE 1 END, id LIMIT 1",
    )
    .bind(who)
    .fetch_optional(&db.pool)
    .await?)
}

async fn is_member(
    conn: &mut crate::store::Conn,
    unit_id: i64,
    user_id: i64,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT role FROM unit_members WHERE unit_id = $1 AND user_id = $2")
            .bind(unit_id)
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Invite a user into the unit (its manager only). The invitee is told in the console and by
/// mail; they are not a member until they accept.
pub async fn invite(
    app: &App,
    actor: &CurrentUser,
    unit_id: i64,
    who: &str,
    role: &str,
) -> Result<Invitation> {
    let now = app.now();
    let unit = super::get(&app.db, unit_id).await?;
    actor.require_for(Permission::UnitManage, unit_id)?;
    if role != "manager" && role != "member" {
        return Err(AppError::field(
            "role",
            "角色应为 manager（单位管理员）或 member（成员）",
        ));
    }
    let Some(user_id) = find_user(&app.db, who).await? else {
        return Err(AppError::field(
            "username",
            format!("未找到用户“{}”，请让对方先注册账号", who.trim()),
        ));
    };
    let mut tx = app.db.begin_write().await?;
    if is_member(&mut tx, unit_id, user_id).await?.is_some() {
        return Err(AppError::conflict("already_member", "该用户已是本单位成员"));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO unit_invitations (unit_id, user_id, role, status, invited_by, created_at) \
         VALUES ($1, $2, $3, 'pending', $4, $5) RETURNING id",
    )
    .bind(unit_id)
    .bind(user_id)
    .bind(role)
    .bind(actor.id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if crate::store::is_unique_violation(&e) {
            AppError::conflict("invitation_pending", "已向该用户发出邀请，等待对方确认")
        } else {
            AppError::Database(e)
        }
    })?;
    record(&mut tx, unit_id, user_id, "invited", role, actor.id, now).await?;
    crate::notify::notify(
        &mut tx,
        &app.mailer,
        &app.config.public_url,
        user_id,
        &crate::notify::Notice {
            kind: "published",
            title: format!("{} 邀请您加入（{}）", unit.name, role_label(role)),
            body: format!(
                "{} 邀请您以“{}”身份加入“{}”。请在“我的单位”中接受或拒绝；接受前您不是该单位成员。",
                actor.display_name,
                role_label(role),
                unit.name
            ),
            link: "/console/units".into(),
        },
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    get(&app.db, id).await
}

pub async fn get(db: &Db, id: i64) -> Result<Invitation> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE i.id = $1")))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)
}

/// A user's open invitations, newest first.
pub async fn pending_for_user(db: &Db, user_id: i64) -> Result<Vec<Invitation>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE i.user_id = $1 AND i.status = 'pending' ORDER BY i.id DESC"
    )))
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?)
}

/// A unit's open invitations.
pub async fn pending_for_unit(db: &Db, unit_id: i64) -> Result<Vec<Invitation>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE i.unit_id = $1 AND i.status = 'pending' ORDER BY i.id DESC"
    )))
    .bind(unit_id)
    .fetch_all(&db.pool)
    .await?)
}

/// Accept (`true`) or decline an invitation: only the invited user, only while it is open.
pub async fn answer(
    db: &Db,
    user: &CurrentUser,
    id: i64,
    accept: bool,
    now: i64,
) -> Result<Invitation> {
    let inv = get(db, id).await?;
    if inv.user_id != user.id {
        // Someone else's invitation is none of the caller's business.
        return Err(AppError::NotFound);
    }
    let mut tx = db.begin_write().await?;
    let status = if accept { "accepted" } else { "declined" };
    let n = sqlx::query(
        "UPDATE unit_invitations SET status = $1, decided_at = $2 WHERE id = $3 AND status = 'pending'",
    )
    .bind(status)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(AppError::conflict(
            "invitation_closed",
            "该邀请已处理或已失效",
        ));
    }
    if accept {
        if is_member(&mut tx, inv.unit_id, user.id).await?.is_some() {
            return Err(AppError::conflict("already_member", "您已是该单位成员"));
        }
        super::add_member(&mut tx, inv.unit_id, user.id, &inv.role, now).await?;
    }
    record(
        &mut tx,
        inv.unit_id,
        user.id,
        status,
        &inv.role,
        user.id,
        now,
    )
    .await?;
    tx.commit().await?;
    get(db, id).await
}

/// Number of managers a unit has.
async fn managers(conn: &mut crate::store::Conn, unit_id: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM unit_members WHERE unit_id = $1 AND role = 'manager'",
    )
    .bind(unit_id)
    .fetch_one(&mut *conn)
    .await?)
}

/// Leave a unit. Its last manager must hand the role over first.
pub async fn leave(db: &Db, user: &CurrentUser, unit_id: i64, now: i64) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let Some(role) = is_member(&mut tx, unit_id, user.id).await? else {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    };
    if role == "manager" && managers(&mut tx, unit_id).await? <= 1 {
        return Err(AppError::conflict(
            "last_manager",
            "您是本单位唯一的管理员，请先将管理员身份移交给其他成员再退出",
        ));
    }
    sqlx::query("DELETE FROM unit_members WHERE unit_id = $1 AND user_id = $2")
        .bind(unit_id)
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    record(&mut tx, unit_id, user.id, "left", &role, user.id, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Hand the manager role over to a member (who accepted earlier): they become manager, the
/// caller an ordinary member.
pub async fn hand_over(
    db: &Db,
    actor: &CurrentUser,
    unit_id: i64,
    to_user: i64,
    now: i64,
) -> Result<()> {
    super::get(db, unit_id).await?;
    actor.require_unit(unit_id)?;
    if to_user == actor.id {
        return Err(AppError::field("user_id", "不能移交给自己"));
    }
    let mut tx = db.begin_write().await?;
    match is_member(&mut tx, unit_id, to_user).await?.as_deref() {
        Some("member") => {}
        Some(_) => {
            return Err(AppError::conflict(
                "already_manager",
                "该成员已是单位管理员",
            ));
        }
        None => {
            return Err(AppError::field("user_id", "只能移交给本单位已加入的成员"));
        }
    }
    for (user_id, role) in [(to_user, "manager"), (actor.id, "member")] {
        sqlx::query("UPDATE unit_members SET role = $1 WHERE unit_id = $2 AND user_id = $3")
            .bind(role)
            .bind(unit_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    record(
        &mut tx,
        unit_id,
        to_user,
        "handed_over",
        "manager",
        actor.id,
        now,
    )
    .await?;
    record(
        &mut tx,
        unit_id,
        actor.id,
        "stepped_down",
        "member",
        actor.id,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One line of a unit's membership history.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LogLine {
    pub action: String,
    pub role: String,
    pub user_name: String,
    pub actor_name: Option<String>,
    pub at: i64,
}

pub fn action_label(action: &str) -> &'static str {
    match action {
        "created" => "创建单位",
        "invited" => "发出邀请",
        "accepted" => "接受邀请",
        "declined" => "拒绝邀请",
        "left" => "退出单位",
        "handed_over" => "接任管理员",
        "stepped_down" => "移交管理员",
        _ => "变更",
    }
}

/// A unit's membership history, newest first.
pub async fn history(db: &Db, unit_id: i64) -> Result<Vec<LogLine>> {
    Ok(sqlx::query_as(
        "SELECT l.action, l.role, u.display_name AS user_name, a.display_name AS actor_name, l.at \
         FROM membership_log l JOIN users u ON u.id = l.user_id LEFT JOIN users a ON a.id = l.actor_id \
         WHERE l.unit_id = $1 ORDER BY l.id DESC LIMIT 100",
    )
    .bind(unit_id)
    .fetch_all(&db.pool)
    .await?)
}
