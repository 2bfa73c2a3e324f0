//! Portal content (资讯): work news 工作动态, notices 通知公告 and policy explanations 政策宣讲.

use serde::Serialize;
use sqlx::Row;

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

#[derive(Debug, Clone, Serialize)]
pub struct Article {
    pub id: i64,
    pub kind: String,
    pub title: String,
    pub summary: String,
    pub body_html: String,
    pub source: String,
    pub pinned: bool,
    pub published_at: Option<i64>,
}

fn from_row(r: &sqlx::any::AnyRow) -> Article {
    Article {
        id: r.get("id"),
        kind: r.get("kind"),
        title: r.get("title"),
        summary: r.get("summary"),
        body_html: r.get("body_html"),
        source: r.get("source"),
        pinned: r.get::<i64, _>("pinned") != 0,
        published_at: r.get("published_at"),
    }
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
    let rows = sqlx::query(
        "SELECT id, kind, title, summary, body_html, source, pinned, published_at FROM articles \
         WHERE kind = $1 AND status = 'published' \
         ORDER BY pinned DESC, published_at DESC, id DESC LIMIT $2 OFFSET $3",
    )
    .bind(kind)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows.iter().map(from_row).collect(), total))
}

pub async fn get_published(db: &Db, kind: &str, id: i64) -> Result<Article> {
    let row = sqlx::query(
        "SELECT id, kind, title, summary, body_html, source, pinned, published_at FROM articles \
         WHERE id = $1 AND kind = $2 AND status = 'published'",
    )
    .bind(id)
    .bind(kind)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(from_row(&row))
}

/// Keep only safe markup in rich text (links, lists, tables, emphasis).
pub fn sanitize_html(html: &str) -> String {
    ammonia::clean(html)
}
