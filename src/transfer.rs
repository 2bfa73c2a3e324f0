//! Achievement transfer (成果转化对接): a certified user unit expresses interest (意向) in an
//! approved achievement; the owning unit's managers are notified, answer and track the
//! contact (`new` → `contacted` → `agreed` | `closed`); the platform sees the pipeline and
//! the agreements per unit.

use serde::Serialize;
use sqlx::Row;

use crate::{
    auth::{CurrentUser, Permission},
    error::{AppError, Result},
    notify::{self, Notice},
    store::Db,
};

/// Who sees every interest (the pipeline): the reviewers of achievements.
pub const ADMIN: Permission = Permission::ResourceReview;

pub const STATUSES: [(&str, &str); 4] = [
    ("new", "新意向"),
    ("contacted", "已联系"),
    ("agreed", "已达成合作"),
    ("closed", "已关闭"),
];

pub fn status_label(s: &str) -> &'static str {
    STATUSES
        .iter()
        .find(|(k, _)| *k == s)
        .map(|(_, l)| *l)
        .unwrap_or("未知")
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Interest {
    pub id: i64,
    pub achievement_id: i64,
    pub achievement_title: String,
    pub owner_unit_id: i64,
    pub owner_unit_name: String,
    pub unit_id: i64,
    pub unit_name: String,
    pub user_name: String,
    pub message: String,
    pub status: String,
    pub reply: String,
    pub created_at: i64,
    pub updated_at: i64,
    #[sqlx(skip)]
    pub status_label: &'static str,
}

const SELECT: &str = "SELECT i.id, i.achievement_id, a.title AS achievement_title, a.unit_id AS owner_unit_id, \
     o.name AS owner_unit_name, i.unit_id, u.name AS unit_name, us.display_name AS user_name, i.message, \
     i.status, i.reply, i.created_at, i.updated_at FROM achievement_interests i \
     JOIN achievements a ON a.id = i.achievement_id JOIN units o ON o.id = a.unit_id \
     JOIN units u ON u.id = i.unit_id JOIN users us ON us.id = i.user_id";

fn labelled(mut v: Vec<Interest>) -> Vec<Interest> {
    for i in &mut v {
        i.status_label = status_label(&i.status);
    }
    v
}

async fn managers(conn: &mut crate::store::Conn, unit_id: i64) -> Result<Vec<i64>> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT user_id FROM unit_members WHERE unit_id = $1 AND role = 'manager' ORDER BY user_id",
    )
    .bind(unit_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Express interest in an approved achievement on behalf of a certified user unit.
pub async fn express(
    app: &crate::app::App,
    user: &CurrentUser,
    achievement_id: i64,
    unit_id: Option<i64>,
    message: &str,
) -> Result<i64> {
    let message = message.trim();
    let Some(unit_id) = unit_id else {
        return Err(AppError::field("unit_id", "请选择意向单位"));
    };
    if !(5..=1000).contains(&message.chars().count()) {
        return Err(AppError::field("message", "请填写合作意向（5–1000 字）"));
    }
    let now = app.now();
    let mut tx = app.db.begin_write().await?;
    let ach = sqlx::query("SELECT unit_id, title, review_status FROM achievements WHERE id = $1")
        .bind(achievement_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(AppError::NotFound)?;
    if ach.get::<String, _>("review_status") != "approved" {
        return Err(AppError::NotFound);
    }
    let (owner, title): (i64, String) = (ach.get("unit_id"), ach.get("title"));
    if !user.acts_for(unit_id, false) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    let unit: (String, String, String) =
        sqlx::query_as("SELECT name, kind, certification_status FROM units WHERE id = $1")
            .bind(unit_id)
            .fetch_one(&mut *tx)
            .await?;
    if unit.1 != "user" || unit.2 != "certified" {
        return Err(AppError::unprocessable(
            "unit_not_eligible",
            "只有通过认证的用户单位（企业、团队）可以提交成果转化意向",
        ));
    }
    if unit_id == owner {
        return Err(AppError::field("unit_id", "不能对本单位的成果提交意向"));
    }
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM achievement_interests WHERE achievement_id = $1 AND unit_id = $2 \
         AND status IN ('new', 'contacted')",
    )
    .bind(achievement_id)
    .bind(unit_id)
    .fetch_one(&mut *tx)
    .await?;
    if open > 0 {
        return Err(AppError::conflict(
            "interest_exists",
            "本单位对该成果已有进行中的意向，请等待对方联系",
        ));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO achievement_interests (achievement_id, unit_id, user_id, message, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'new', $5, $5) RETURNING id",
    )
    .bind(achievement_id)
    .bind(unit_id)
    .bind(user.id)
    .bind(message)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    for m in managers(&mut tx, owner).await? {
        notify::notify(
            &mut tx,
            &app.mailer,
            &app.config.public_url,
            m,
            &Notice {
                kind: "transfer",
                title: format!("成果转化意向：{title}"),
                body: format!("{} 对成果“{title}”提交了合作意向：{message}", unit.0),
                link: "/console/transfer".into(),
            },
            None,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(id)
}

/// What `user` sees: interests in their managed units' achievements (`incoming`), the ones
/// their units sent (`sent`), and — for the platform — all of them (`all`, paged).
pub async fn incoming(db: &Db, user: &CurrentUser) -> Result<Vec<Interest>> {
    let ids: Vec<i64> = user
        .units
        .iter()
        .filter(|m| m.role == "manager")
        .map(|m| m.id)
        .collect();
    by_units(db, &ids, "a.unit_id").await
}

pub async fn sent(db: &Db, user: &CurrentUser) -> Result<Vec<Interest>> {
    let ids: Vec<i64> = user.units.iter().map(|m| m.id).collect();
    by_units(db, &ids, "i.unit_id").await
}

async fn by_units(db: &Db, ids: &[i64], column: &str) -> Result<Vec<Interest>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let list = ids
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE {column} IN ({list}) ORDER BY i.id DESC LIMIT 200"
    )))
    .fetch_all(&db.pool)
    .await?;
    Ok(labelled(rows))
}

pub async fn all(db: &Db, offset: i64, limit: i64) -> Result<(Vec<Interest>, i64)> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM achievement_interests")
        .fetch_one(&db.pool)
        .await?;
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} ORDER BY i.id DESC LIMIT $1 OFFSET $2"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok((labelled(rows), total))
}

pub async fn get(db: &Db, user: &CurrentUser, id: i64) -> Result<Interest> {
    let i: Interest = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE i.id = $1")))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    if user.can(ADMIN) || user.acts_for(i.owner_unit_id, true) || user.acts_for(i.unit_id, false) {
        Ok(labelled(vec![i]).remove(0))
    } else {
        Err(AppError::NotFound)
    }
}

/// The owning unit's manager answers and moves the interest on: from `new` to
/// `contacted`, `agreed` or `closed`, from `contacted` to `agreed` or `closed`; `agreed`
/// and `closed` are final. The interested user is notified.
pub async fn update(
    app: &crate::app::App,
    user: &CurrentUser,
    id: i64,
    status: &str,
    reply: &str,
) -> Result<Interest> {
    let reply = reply.trim();
    let now = app.now();
    let mut tx = app.db.begin_write().await?;
    let row = sqlx::query(
        "SELECT i.status, i.user_id, a.unit_id, a.title FROM achievement_interests i \
         JOIN achievements a ON a.id = i.achievement_id WHERE i.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(AppError::NotFound)?;
    let (current, asker, owner, title): (String, i64, i64, String) = (
        row.get("status"),
        row.get("user_id"),
        row.get("unit_id"),
        row.get("title"),
    );
    if !user.acts_for(owner, true) {
        return Err(if user.can(ADMIN) {
            AppError::Forbidden {
                code: "not_owner_manager",
            }
        } else {
            AppError::NotFound
        });
    }
    if reply.chars().count() > 1000 {
        return Err(AppError::field("reply", "答复不超过 1000 字"));
    }
    if !STATUSES.iter().any(|(k, _)| *k == status) || status == "new" {
        return Err(AppError::field(
            "status",
            "状态应为：已联系、已达成合作或已关闭",
        ));
    }
    let allowed = match current.as_str() {
        "new" => ["contacted", "agreed", "closed"].contains(&status),
        "contacted" => ["contacted", "agreed", "closed"].contains(&status),
        _ => false,
    };
    if !allowed {
        return Err(AppError::conflict(
            "interest_finished",
            format!("该意向已{}，不能再更改", status_label(&current)),
        ));
    }
    sqlx::query(
        "UPDATE achievement_interests SET status = $1, reply = CASE WHEN $2 = '' THEN reply ELSE $2 END, \
         handled_by = $3, updated_at = $4, agreed_at = CASE WHEN $1 = 'agreed' THEN $4 ELSE agreed_at END \
         WHERE id = $5",
    )
    .bind(status)
    .bind(reply)
    .bind(user.id)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    notify::notify(
        &mut tx,
        &app.mailer,
        &app.config.public_url,
        asker,
        &Notice {
            kind: "transfer",
            title: format!("成果转化意向{}：{title}", status_label(status)),
            body: if reply.is_empty() {
                format!("成果单位已将您的意向标记为“{}”。", status_label(status))
            } else {
                format!("成果单位答复：{reply}")
            },
            link: "/console/transfer".into(),
        },
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    get(&app.db, user, id).await
}

/// Agreements reached per owning unit (统计：成果转化达成数), most first.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct UnitAgreements {
    pub unit_id: i64,
    pub unit_name: String,
    pub agreements: i64,
}

/// Agreements per owning unit, all time or reached within `[from, to)` (unix seconds).
pub async fn agreements_per_unit(
    db: &Db,
    range: Option<(i64, i64)>,
) -> Result<Vec<UnitAgreements>> {
    let (from, to) = range.unwrap_or((i64::MIN / 2, i64::MAX / 2));
    Ok(sqlx::query_as(
        "SELECT a.unit_id, o.name AS unit_name, CAST(COUNT(*) AS BIGINT) AS agreements \
         FROM achievement_interests i JOIN achievements a ON a.id = i.achievement_id \
         JOIN units o ON o.id = a.unit_id WHERE i.status = 'agreed' AND i.agreed_at >= $1 AND i.agreed_at < $2 \
         GROUP BY a.unit_id, o.name ORDER BY agreements DESC, a.unit_id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&db.pool)
    .await?)
}
