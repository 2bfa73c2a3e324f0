//! Portal content (资讯): work news 工作动态, notices 通知公告 and policy explanations 政策宣讲.

use serde::Serialize;

use crate::store::WriteQuery;
use crate::{
    error::{AppError, Result},
    store::Db,
};

pub const KINDS: [(&str, &str); 3] = [
    ("news", "工作动态"),
    ("notice", "通知公告"),
    ("policy", "政策宣讲"),
];

pub fn kind_label(kind: &str) -> Option<&'static str> {
    KINDS.iter().find(|(k, _)| *k == kind).map(|(_, l)| *l)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Article {
    pub id: i64,
    pub kind: String,
    pub title: String,
    pub summary: String,
    pub body_html: String,
    pub source: String,
    #[sqlx(try_from = "crate::store::Flag")]
    pub pinned: bool,
    pub published_at: Option<i64>,
}

/// Published articles of a kind, pinned first then newest.
pub async fn list_published(
    db: &Db,
    kind: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Article>, i64)> {
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM articles WHERE kind = $1 AND status = 'published'",
    )
    .bind(kind)
    .fetch_one(&db.pool)
    .await?;
    let rows = sqlx::query_as(
        "SELECT id, kind, title, summary, body_html, source, pinned, published_at FROM articles \
         WHERE kind = $1 AND status = 'published' \
         ORDER BY pinned DESC, published_at DESC, id DESC LIMIT $2 OFFSET $3",
    )
    .bind(kind)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows, total))
}

pub async fn get_published(db: &Db, kind: &str, id: i64) -> Result<Article> {
    sqlx::query_as(
        "SELECT id, kind, title, summary, body_html, source, pinned, published_at FROM articles \
         WHERE id = $1 AND kind = $2 AND status = 'published'",
    )
    .bind(id)
    .bind(kind)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)
}

/// Keep only safe markup in rich text (links, lists, tables, emphasis).
pub fn sanitize_html(html: &str) -> String {
    ammonia::clean(html)
}

// ---- editing (platform admins, `content.manage`) ----------------------------------------

/// What the console's article form sends.
#[derive(Debug, Default, Clone, serde::Deserialize, Serialize)]
pub struct ArticleInput {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub body_html: String,
    #[serde(default)]
    pub source: String,
    #[serde(default, deserialize_with = "crate::units::lenient_bool")]
    pub pinned: bool,
    /// `YYYY-MM-DD`; blank means "the day it is published".
    #[serde(default)]
    pub publish_date: String,
}

/// Midnight of a date in Asia/Shanghai, as unix seconds.
fn date_ts(date: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let offset = chrono::FixedOffset::east_opt(8 * 3600)?;
    d.and_hms_opt(0, 0, 0)?
        .and_local_timezone(offset)
        .single()
        .map(|t| t.timestamp())
}

/// The `YYYY-MM-DD` (Asia/Shanghai) of a timestamp.
pub fn ts_date(ts: i64) -> String {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.with_timezone(&offset).format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

impl ArticleInput {
    /// Check the fields and sanitise the body; returns the publish timestamp if a date was given.
    pub fn validate(&mut self) -> Result<Option<i64>> {
        let mut e = crate::error::FieldErrors::new();
        if kind_label(&self.kind).is_none() {
            e.insert(
                "kind".into(),
                "请选择栏目：工作动态、通知公告或政策宣讲".into(),
            );
        }
        self.title = self.title.trim().to_string();
        let n = self.title.chars().count();
        if !(2..=120).contains(&n) {
            e.insert("title".into(), "请填写标题（2–120 字）".into());
        }
        self.summary = self.summary.trim().to_string();
        if self.summary.chars().count() > 300 {
            e.insert("summary".into(), "摘要不超过 300 字".into());
        }
        self.source = self.source.trim().to_string();
        // Sanitised on save, so what is stored is what the portal may show as-is.
        self.body_html = sanitize_html(self.body_html.trim());
        if self.body_html.trim().is_empty() {
            e.insert("body_html".into(), "请填写正文".into());
        }
        self.publish_date = self.publish_date.trim().to_string();
        let ts = if self.publish_date.is_empty() {
            None
        } else {
            match date_ts(&self.publish_date) {
                Some(ts) => Some(ts),
                None => {
                    e.insert("publish_date".into(), "发布日期格式应为 YYYY-MM-DD".into());
                    None
                }
            }
        };
        match AppError::fields(e) {
            Some(err) => Err(err),
            None => Ok(ts),
        }
    }
}

/// An article as the console sees it, whatever its status.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ArticleRow {
    pub id: i64,
    pub kind: String,
    /// Filled in from `kind` after reading.
    #[sqlx(skip)]
    pub kind_label: &'static str,
    pub title: String,
    pub status: String,
    #[sqlx(try_from = "crate::store::Flag")]
    pub pinned: bool,
    pub published_at: Option<i64>,
    pub updated_at: i64,
}

pub async fn create(db: &Db, mut input: ArticleInput, author: i64, now: i64) -> Result<i64> {
    let ts = input.validate()?;
    Ok(sqlx::query_scalar(
        "INSERT INTO articles (kind, title, summary, body_html, source, status, pinned, \
         published_at, author_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'draft', $6, $7, $8, $9, $9) RETURNING id",
    )
    .bind(&input.kind)
    .bind(&input.title)
    .bind(&input.summary)
    .bind(&input.body_html)
    .bind(&input.source)
    .bind(input.pinned as i64)
    .bind(ts)
    .bind(author)
    .bind(now)
    .fetch_one(&db.pool)
    .await?)
}

pub async fn update(db: &Db, id: i64, mut input: ArticleInput, now: i64) -> Result<()> {
    let ts = input.validate()?;
    let done = sqlx::query(
        "UPDATE articles SET kind = $1, title = $2, summary = $3, body_html = $4, source = $5, \
         pinned = $6, published_at = COALESCE($7, published_at), updated_at = $8 WHERE id = $9",
    )
    .bind(&input.kind)
    .bind(&input.title)
    .bind(&input.summary)
    .bind(&input.body_html)
    .bind(&input.source)
    .bind(input.pinned as i64)
    .bind(ts)
    .bind(now)
    .bind(id)
    .write(db)
    .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}

/// Publish (keeping a chosen publish date, else now) or withdraw an article.
pub async fn set_published(db: &Db, id: i64, publish: bool, now: i64) -> Result<()> {
    let done = if publish {
        sqlx::query(
            "UPDATE articles SET status = 'published', published_at = COALESCE(published_at, $1), \
             updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .write(db)
        .await?
    } else {
        sqlx::query("UPDATE articles SET status = 'draft', updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .write(db)
            .await?
    };
    if done.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}

/// Any article with its editable fields (for the console form).
pub async fn get_any(db: &Db, id: i64) -> Result<(ArticleInput, String)> {
    #[derive(sqlx::FromRow)]
    struct Editable {
        kind: String,
        title: String,
        summary: String,
        body_html: String,
        source: String,
        #[sqlx(try_from = "crate::store::Flag")]
        pinned: bool,
        published_at: Option<i64>,
        status: String,
    }
    let r: Editable = sqlx::query_as(
        "SELECT kind, title, summary, body_html, source, pinned, published_at, status \
         FROM articles WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok((
        ArticleInput {
            kind: r.kind,
            title: r.title,
            summary: r.summary,
            body_html: r.body_html,
            source: r.source,
            pinned: r.pinned,
            publish_date: r.published_at.map(ts_date).unwrap_or_default(),
        },
        r.status,
    ))
}

/// Every article of a kind (or all kinds), newest change first; (page, total).
pub async fn list_all(
    db: &Db,
    kind: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ArticleRow>, i64)> {
    let kind = if kind_label(kind).is_some() { kind } else { "" };
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM articles WHERE ($1 = '' OR kind = $1)")
            .bind(kind)
            .fetch_one(&db.pool)
            .await?;
    let mut rows: Vec<ArticleRow> = sqlx::query_as(
        "SELECT id, kind, title, status, pinned, published_at, updated_at FROM articles \
         WHERE ($1 = '' OR kind = $1) ORDER BY updated_at DESC, id DESC LIMIT $2 OFFSET $3",
    )
    .bind(kind)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    for r in &mut rows {
        r.kind_label = kind_label(&r.kind).unwrap_or("其他");
    }
    Ok((rows, total))
}
