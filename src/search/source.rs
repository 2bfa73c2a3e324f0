//! Searchable records (检索源) read from the database: only public ones — approved instruments,
//! platforms, services and achievements, certified managing units, published articles.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::{catalog, error::Result, store::Db};

/// One record as the indexer sees it: text columns by name plus facet and ranking values.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub doc_type: String,
    pub id: i64,
    pub url: String,
    pub text: BTreeMap<String, String>,
    /// Facet path segments: a major class then a subclass for instruments, else one value.
    pub category: Vec<String>,
    pub category_label: String,
    pub city: String,
    pub unit: String,
    pub open: bool,
    pub value_fen: i64,
    pub newest: i64,
    pub service_count: i64,
}

pub const TYPES: [&str; 7] = [
    "instrument",
    "platform",
    "service",
    "achievement",
    "unit",
    "article",
    "consultation",
];

fn select(doc_type: &str) -> Option<&'static str> {
    Some(match doc_type {
        "instrument" => {
            "SELECT i.id, i.name, i.model, i.manufacturer, i.category_code, i.department, \
             i.description, i.service_content, i.value_fen, i.open_to_public, i.city, \
             i.service_count, i.updated_at, i.national_json, u.name AS unit_name \
             FROM instruments i JOIN units u ON u.id = i.unit_id \
             WHERE i.review_status = 'approved'"
        }
        "platform" => {
            "SELECT p.id, p.name, p.category, p.platform_type, p.description, p.updated_at, \
             u.name AS unit_name, u.city FROM platforms p JOIN units u ON u.id = p.unit_id \
             WHERE p.review_status = 'approved'"
        }
        "service" => {
            "SELECT p.id, p.name, p.category, p.sample_requirements, p.description, p.price_fen, \
             p.updated_at, u.name AS unit_name, u.city FROM services p JOIN units u ON u.id = p.unit_id \
             WHERE p.review_status = 'approved'"
        }
        "achievement" => {
            "SELECT p.id, p.title, p.field, p.holder, p.description, p.price_fen, p.updated_at, \
             u.name AS unit_name, u.city FROM achievements p JOIN units u ON u.id = p.unit_id \
             WHERE p.review_status = 'approved'"
        }
        "unit" => {
            "SELECT u.id, u.name, u.nature, u.address, u.intro, u.city, u.updated_at FROM units u \
             WHERE u.kind = 'managing' AND u.certification_status = 'certified'"
        }
        "article" => {
            "SELECT a.id, a.kind, a.title, a.summary, a.body_html, a.published_at AS updated_at \
             FROM articles a WHERE a.status = 'published'"
        }
        // Closed consultations the asker agreed to show (专家问答); answers are added by
        // `consultations::answers_text` after reading.
        "consultation" => {
            "SELECT c.id, c.title, c.field, c.question, c.updated_at FROM consultations c \
             WHERE c.status = 'closed' AND c.public = 1"
        }
        _ => return None,
    })
}

fn s(r: &sqlx::any::AnyRow, col: &str) -> String {
    r.try_get::<Option<String>, _>(col)
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn i(r: &sqlx::any::AnyRow, col: &str) -> i64 {
    r.try_get::<Option<i64>, _>(col)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Strip tags from stored article HTML for indexing.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn record(doc_type: &str, r: &sqlx::any::AnyRow) -> Record {
    let id: i64 = r.get("id");
    let mut rec = Record {
        doc_type: doc_type.to_string(),
        id,
        newest: i(r, "updated_at"),
        city: s(r, "city"),
        unit: s(r, "unit_name"),
        open: true,
        ..Default::default()
    };
    let cols: &[&str] = match doc_type {
        "instrument" => &[
            "name",
            "model",
            "manufacturer",
            "department",
            "description",
            "service_content",
            "unit_name",
        ],
        "platform" => &[
            "name",
            "category",
            "platform_type",
            "description",
            "unit_name",
        ],
        "service" => &[
            "name",
            "category",
            "sample_requirements",
            "description",
            "unit_name",
        ],
        "achievement" => &["title", "field", "holder", "description", "unit_name"],
        "unit" => &["name", "nature", "address", "intro"],
        "consultation" => &["title", "field", "question"],
        _ => &["title", "summary"],
    };
    for c in cols {
        rec.text.insert(c.to_string(), s(r, c));
    }
    match doc_type {
        "instrument" => {
            let code = s(r, "category_code");
            rec.category = vec![catalog::major_code(&code), code.clone()];
            rec.category_label = catalog::class_label(&code);
            rec.text
                .insert("category_label".into(), rec.category_label.clone());
            // The national English name (`ename`), kept in the national supplements.
            let national: serde_json::Value =
                serde_json::from_str(&s(r, "national_json")).unwrap_or_default();
            let name_en = national["name_en"].as_str().unwrap_or_default();
            rec.text.insert("name_en".into(), name_en.to_string());
            rec.value_fen = i(r, "value_fen");
            rec.open = i(r, "open_to_public") != 0;
            rec.service_count = i(r, "service_count");
            rec.url = format!("/instruments/{id}");
        }
        "platform" | "service" | "achievement" => {
            let cat = s(
                r,
                if doc_type == "achievement" {
                    "field"
                } else {
                    "category"
                },
            );
            rec.category = vec![cat.clone()];
            rec.category_label = cat;
            rec.value_fen = i(r, "price_fen");
            rec.url = format!("/{doc_type}s/{id}");
        }
        "unit" => {
            rec.url = format!("/orgs/{id}");
        }
        "consultation" => {
            let field = s(r, "field");
            rec.category = vec![field.clone()];
            rec.category_label = field;
            rec.url = format!("/qa/{id}");
        }
        _ => {
            let kind = s(r, "kind");
            let label = crate::content::kind_label(&kind).unwrap_or("资讯");
            rec.category = vec![label.to_string()];
            rec.category_label = label.to_string();
            rec.text
                .insert("body".into(), strip_tags(&s(r, "body_html")));
            let base = match kind.as_str() {
                "news" => "news",
                "notice" => "notices",
                _ => "policies",
            };
            rec.url = format!("/{base}/{id}");
        }
    }
    rec
}

/// Every public record of a type.
pub async fn load_all(db: &Db, doc_type: &str) -> Result<Vec<Record>> {
    let Some(sql) = select(doc_type) else {
        return Ok(vec![]);
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_all(&db.pool)
        .await?;
    let mut out: Vec<Record> = rows.iter().map(|r| record(doc_type, r)).collect();
    with_answers(db, doc_type, &mut out).await?;
    Ok(out)
}

/// The alias of a type's main table in its `select`.
fn alias(doc_type: &str) -> &'static str {
    match doc_type {
        "instrument" => "i",
        "unit" => "u",
        "article" => "a",
        "consultation" => "c",
        _ => "p",
    }
}

/// Public records of a type with ids above `after`, in id order, at most `limit` (a full
/// rebuild reads page by page, so memory stays flat however many records there are).
pub async fn load_page(db: &Db, doc_type: &str, after: i64, limit: i64) -> Result<Vec<Record>> {
    let Some(sql) = select(doc_type) else {
        return Ok(vec![]);
    };
    let a = alias(doc_type);
    // Walk the primary key: the status test is written so that no planner (SQLite without
    // statistics especially) prefers the status index and sorts every approved row per page.
    let sql = sql.replace(
        "WHERE i.review_status = 'approved'",
        "WHERE COALESCE(i.review_status, '') = 'approved'",
    );
    let sql = format!("{sql} AND {a}.id > $1 ORDER BY {a}.id LIMIT $2");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
    let mut out: Vec<Record> = rows.iter().map(|r| record(doc_type, r)).collect();
    with_answers(db, doc_type, &mut out).await?;
    Ok(out)
}

/// A consultation's answers are part of its searchable text (专家咨询 Q&A).
async fn with_answers(db: &Db, doc_type: &str, out: &mut [Record]) -> Result<()> {
    if doc_type == "consultation" {
        for rec in out.iter_mut() {
            let answers = crate::consultations::answers_text(db, rec.id).await?;
            rec.text.insert("answers".into(), answers);
        }
    }
    Ok(())
}

/// One record if it exists and is public.
pub async fn load_one(db: &Db, doc_type: &str, id: i64) -> Result<Option<Record>> {
    let Some(sql) = select(doc_type) else {
        return Ok(None);
    };
    let sql = format!("{sql} AND {}.id = $1", alias(doc_type));
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    let mut rec = row.map(|r| record(doc_type, &r));
    if doc_type == "consultation"
        && let Some(rec) = rec.as_mut()
    {
        let answers = crate::consultations::answers_text(db, rec.id).await?;
        rec.text.insert("answers".into(), answers);
    }
    Ok(rec)
}

/// How many public records there are (to tell whether the index is stale).
pub async fn count_public(db: &Db) -> Result<u64> {
    let mut n = 0u64;
    for t in TYPES {
        let sql = format!("SELECT COUNT(*) FROM ({}) x", select(t).unwrap_or_default());
        let c: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&db.pool)
            .await?;
        n += c as u64;
    }
    Ok(n)
}
