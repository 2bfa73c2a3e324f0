//! Expert consultations (专家咨询): a signed-in user asks in a field on behalf of one of their
//! units; the pool's experts of that field (or the one the platform reassigned it to) are
//! notified and answer; the asker follows up and closes it with a rating, and may let it be
//! shown publicly as a Q&A (专家问答, searchable like the other public records).

use serde::{Deserialize, Serialize};

use crate::{
    auth::{CurrentUser, Permission},
    error::{AppError, FieldErrors, Result},
    mail::Mailer,
    notify::{self, Notice},
    store::Db,
};

/// Who sees every consultation and may reassign: the keepers of the expert pool.
pub const ADMIN: Permission = Permission::UnitReview;

#[derive(Debug, Clone, Deserialize)]
pub struct NewConsultation {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub question: String,
    pub unit_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Consultation {
    pub id: i64,
    pub field: String,
    pub title: String,
    pub question: String,
    pub unit_id: i64,
    pub unit_name: String,
    pub asker_id: i64,
    pub asker_name: String,
    pub status: String,
    pub assigned_user_id: Option<i64>,
    pub assigned_name: Option<String>,
    pub rating: Option<i64>,
    #[sqlx(try_from = "crate::store::Flag")]
    pub public: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Message {
    pub id: i64,
    pub author_id: i64,
    pub author_name: String,
    pub kind: String,
    pub body: String,
    pub created_at: i64,
}

pub fn status_label(s: &str) -> &'static str {
    match s {
        "open" => "待解答",
        "answered" => "已解答",
        "closed" => "已关闭",
        _ => "未知",
    }
}

const SELECT: &str = "SELECT c.id, c.field, c.title, c.question, c.unit_id, u.name AS unit_name, \
     c.asker_id, a.display_name AS asker_name, c.status, c.assigned_user_id, x.display_name AS assigned_name, \
     c.rating, c.public, c.created_at, c.updated_at FROM consultations c JOIN units u ON u.id = c.unit_id \
     JOIN users a ON a.id = c.asker_id LEFT JOIN users x ON x.id = c.assigned_user_id";

/// An expert of the pool (in the pool, with an account) whose fields cover `field`.
const EXPERT_MATCHES: &str = "EXISTS (SELECT 1 FROM experts e WHERE e.user_id = $1 AND e.status = '在库' \
     AND e.fields LIKE '%' || c.field || '%')";

fn text(s: &str) -> String {
    s.trim().to_string()
}

fn validate(n: &NewConsultation) -> Result<(String, String, String, i64)> {
    let mut e = FieldErrors::new();
    let (field, title, question) = (text(&n.field), text(&n.title), text(&n.question));
    if !(1..=30).contains(&field.chars().count()) {
        e.insert(
            "field".into(),
            "请选择或填写咨询领域（不超过 30 字）".into(),
        );
    }
    if !(4..=60).contains(&title.chars().count()) {
        e.insert("title".into(), "请填写标题（4–60 字）".into());
    }
    if !(10..=2000).contains(&question.chars().count()) {
        e.insert("question".into(), "请描述问题（10–2000 字）".into());
    }
    if n.unit_id.is_none() {
        e.insert("unit_id".into(), "请选择以哪个单位的名义咨询".into());
    }
    if let Some(err) = AppError::fields(e) {
        return Err(err);
    }
    Ok((field, title, question, n.unit_id.unwrap_or_default()))
}

/// The experts (user ids) a consultation goes to: its assignee, else the pool's experts of
/// its field.
async fn experts_for(conn: &mut crate::store::Conn, id: i64) -> Result<Vec<i64>> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT DISTINCT e.user_id FROM consultations c JOIN experts e ON e.user_id IS NOT NULL \
         AND e.status = '在库' AND ((c.assigned_user_id IS NULL AND e.fields LIKE '%' || c.field || '%') \
         OR e.user_id = c.assigned_user_id) WHERE c.id = $1 ORDER BY e.user_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

#[allow(clippy::too_many_arguments)]
async fn tell(
    conn: &mut crate::store::Conn,
    mailer: &Mailer,
    public_url: &str,
    users: &[i64],
    title: String,
    body: String,
    link: String,
    now: i64,
) -> Result<()> {
    for u in users {
        notify::notify(
            conn,
            mailer,
            public_url,
            *u,
            &Notice {
                kind: "consultation",
                title: title.clone(),
                body: body.clone(),
                link: link.clone(),
            },
            None,
            now,
        )
        .await?;
    }
    Ok(())
}

/// Ask: the consultation is `open` and the field's experts are notified.
pub async fn create(
    app: &crate::app::App,
    user: &CurrentUser,
    new: &NewConsultation,
) -> Result<i64> {
    let (field, title, question, unit_id) = validate(new)?;
    if !user.acts_for(unit_id, false) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    let now = app.now();
    let mut tx = app.db.begin_write().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO consultations (field, title, question, unit_id, asker_id, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'open', $6, $6) RETURNING id",
    )
    .bind(&field)
    .bind(&title)
    .bind(&question)
    .bind(unit_id)
    .bind(user.id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let experts = experts_for(&mut tx, id).await?;
    tell(
        &mut tx,
        &app.mailer,
        &app.config.public_url,
        &experts,
        format!("新的专家咨询（{field}）：{title}"),
        format!(
            "{} 提出了一个{field}领域的问题，请在专家咨询中解答。",
            user.display_name
        ),
        format!("/console/consultations/{id}"),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

async fn load(conn: &mut crate::store::Conn, id: i64) -> Result<Consultation> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE c.id = $1")))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(AppError::NotFound)
}

/// Whether `user` is an expert this consultation goes to.
async fn is_its_expert(conn: &mut crate::store::Conn, user: &CurrentUser, id: i64) -> Result<bool> {
    if !user.can(Permission::ExpertConsult) {
        return Ok(false);
    }
    Ok(experts_for(conn, id).await?.contains(&user.id))
}

/// What `user` may do with a consultation.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Rights {
    pub ask: bool,
    pub answer: bool,
    pub admin: bool,
}

/// A consultation with its messages, if `user` may see it (the asker, its experts, the
/// platform; anyone once it is a public Q&A). Others get 404.
pub async fn get(
    db: &Db,
    user: Option<&CurrentUser>,
    id: i64,
) -> Result<(Consultation, Vec<Message>, Rights)> {
    let mut conn = db.acquire().await?;
    let c = load(&mut conn, id).await?;
    let rights = match user {
        Some(u) => Rights {
            ask: u.id == c.asker_id,
            answer: is_its_expert(&mut conn, u, id).await?,
            admin: u.can(ADMIN),
        },
        None => Rights::default(),
    };
    let public = c.status == "closed" && c.public;
    if !(public || rights.ask || rights.answer || rights.admin) {
        return Err(AppError::NotFound);
    }
    let messages = messages(&mut conn, id).await?;
    Ok((c, messages, rights))
}

async fn messages(conn: &mut crate::store::Conn, id: i64) -> Result<Vec<Message>> {
    Ok(sqlx::query_as(
        "SELECT m.id, m.author_id, u.display_name AS author_name, m.kind, m.body, m.created_at \
         FROM consultation_messages m JOIN users u ON u.id = m.author_id \
         WHERE m.consultation_id = $1 ORDER BY m.id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?)
}

/// The answers of a consultation as one text (for the search index).
pub async fn answers_text(db: &Db, id: i64) -> Result<String> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT body FROM consultation_messages WHERE consultation_id = $1 AND kind = 'answer' ORDER BY id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n"))
}

/// The consultations `user` sees, newest first: with `mine`, those they asked and those
/// addressed to them as an expert; without, the same — or all of them for the platform.
pub async fn list(
    db: &Db,
    user: &CurrentUser,
    mine: bool,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Consultation>, i64)> {
    let all = !mine && user.can(ADMIN);
    let wh = if all {
        "($1 = $1)".to_string()
    } else {
        format!(
            "(c.asker_id = $1 OR c.assigned_user_id = $1 OR (c.assigned_user_id IS NULL AND {EXPERT_MATCHES}))"
        )
    };
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM consultations c WHERE {wh}"
    )))
    .bind(user.id)
    .fetch_one(&db.pool)
    .await?;
    let items = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE {wh} ORDER BY c.id DESC LIMIT $2 OFFSET $3"
    )))
    .bind(user.id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok((items, total))
}

fn body_ok(body: &str, field: &str) -> Result<String> {
    let b = body.trim();
    if !(2..=5000).contains(&b.chars().count()) {
        return Err(AppError::field(field, "请填写内容（2–5000 字）"));
    }
    Ok(b.to_string())
}

fn closed() -> AppError {
    AppError::conflict("consultation_closed", "该咨询已关闭")
}

/// An expert of the consultation answers: it becomes `answered`, the asker is notified.
pub async fn answer(app: &crate::app::App, user: &CurrentUser, id: i64, body: &str) -> Result<i64> {
    let now = app.now();
    let mut tx = app.db.begin_write().await?;
    let c = load(&mut tx, id).await?;
    if !is_its_expert(&mut tx, user, id).await? {
        if c.asker_id == user.id || user.can(ADMIN) {
            return Err(AppError::Forbidden {
                code: "not_an_expert_of_this_field",
            });
        }
        return Err(AppError::NotFound);
    }
    if c.status == "closed" {
        return Err(closed());
    }
    let body = body_ok(body, "answer")?;
    let mid = add_message(&mut tx, id, user.id, "answer", &body, now).await?;
    sqlx::query("UPDATE consultations SET status = 'answered', updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tell(
        &mut tx,
        &app.mailer,
        &app.config.public_url,
        &[c.asker_id],
        format!("专家已解答：{}", c.title),
        format!(
            "{} 解答了您的咨询，可查看、追问或关闭并评价。",
            user.display_name
        ),
        format!("/console/consultations/{id}"),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(mid)
}

async fn add_message(
    conn: &mut crate::store::Conn,
    id: i64,
    author: i64,
    kind: &str,
    body: &str,
    now: i64,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO consultation_messages (consultation_id, author_id, kind, body, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(id)
    .bind(author)
    .bind(kind)
    .bind(body)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?)
}

fn asker_only(c: &Consultation, user: &CurrentUser) -> Result<()> {
    if c.asker_id == user.id {
        Ok(())
    } else if user.can(ADMIN) || user.can(Permission::ExpertConsult) {
        Err(AppError::Forbidden { code: "not_asker" })
    } else {
        Err(AppError::NotFound)
    }
}

/// The asker follows up: the consultation is `open` again and its experts are notified.
pub async fn follow_up(
    app: &crate::app::App,
    user: &CurrentUser,
    id: i64,
    body: &str,
) -> Result<i64> {
    let now = app.now();
    let mut tx = app.db.begin_write().await?;
    let c = load(&mut tx, id).await?;
    asker_only(&c, user)?;
    if c.status == "closed" {
        return Err(closed());
    }
    let body = body_ok(body, "body")?;
    let mid = add_message(&mut tx, id, user.id, "followup", &body, now).await?;
    sqlx::query("UPDATE consultations SET status = 'open', updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let experts = experts_for(&mut tx, id).await?;
    tell(
        &mut tx,
        &app.mailer,
        &app.config.public_url,
        &experts,
        format!("咨询有追问：{}", c.title),
        "提问人对解答提出了追问，请查看并回复。".into(),
        format!("/console/consultations/{id}"),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(mid)
}

/// The asker closes with a rating (1–5) and, with `public`, consents to the public Q&A.
pub async fn close(
    db: &Db,
    user: &CurrentUser,
    id: i64,
    rating: Option<i64>,
    public: bool,
    now: i64,
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let c = load(&mut tx, id).await?;
    asker_only(&c, user)?;
    if c.status == "closed" {
        return Err(closed());
    }
    let Some(rating) = rating.filter(|r| (1..=5).contains(r)) else {
        return Err(AppError::field("rating", "请给出 1–5 分的评价"));
    };
    let answers: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM consultation_messages WHERE consultation_id = $1 AND kind = 'answer'",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if public && answers == 0 {
        return Err(AppError::field("public", "尚无专家解答，不能公开为问答"));
    }
    sqlx::query(
        "UPDATE consultations SET status = 'closed', rating = $1, public = $2, closed_at = $3, updated_at = $3 WHERE id = $4",
    )
    .bind(rating)
    .bind(public as i64)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    crate::search::enqueue(&mut tx, "consultation", id).await?;
    tx.commit().await?;
    Ok(())
}

/// The platform gives the consultation to one expert of the pool (who is notified); from
/// then on only that expert sees and answers it.
pub async fn reassign(
    app: &crate::app::App,
    user: &CurrentUser,
    id: i64,
    expert_user: i64,
) -> Result<()> {
    user.require(ADMIN)?;
    let now = app.now();
    let mut tx = app.db.begin_write().await?;
    let c = load(&mut tx, id).await?;
    if c.status == "closed" {
        return Err(closed());
    }
    let in_pool: Option<i64> = sqlx::query_scalar(
        "SELECT user_id FROM experts WHERE user_id = $1 AND status = '在库' LIMIT 1",
    )
    .bind(expert_user)
    .fetch_optional(&mut *tx)
    .await?;
    if in_pool.is_none() {
        return Err(AppError::field(
            "expert_user_id",
            "请选择专家库中在库且有账号的专家",
        ));
    }
    sqlx::query("UPDATE consultations SET assigned_user_id = $1, updated_at = $2 WHERE id = $3")
        .bind(expert_user)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tell(
        &mut tx,
        &app.mailer,
        &app.config.public_url,
        &[expert_user],
        format!("平台请您解答专家咨询：{}", c.title),
        format!("平台管理员将{}领域的咨询转交给您，请解答。", c.field),
        format!("/console/consultations/{id}"),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The experts of the pool with an account (for the reassign form): (user id, name, fields).
pub async fn pool_experts(db: &Db) -> Result<Vec<(i64, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT user_id, name, fields FROM experts WHERE user_id IS NOT NULL AND status = '在库' ORDER BY name",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// Public Q&A (专家问答): closed consultations shown with the asker's consent.
pub async fn public_list(db: &Db, offset: i64, limit: i64) -> Result<(Vec<Consultation>, i64)> {
    let wh = "c.status = 'closed' AND c.public = 1";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM consultations c WHERE {wh}"
    )))
    .fetch_one(&db.pool)
    .await?;
    let items = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE {wh} ORDER BY c.closed_at DESC, c.id DESC LIMIT $1 OFFSET $2"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok((items, total))
}
