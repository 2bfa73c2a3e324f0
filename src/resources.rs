//! Research platforms (科研平台), testing services (检测项目) and achievements (科技成果) as
//! the portal shows them: only approved records are public.

use serde::Serialize;
use sqlx::Row;

use crate::{
    error::{AppError, Result},
    store::Db,
};

/// Which resource table a portal list reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Platform,
    Service,
    Achievement,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Platform => "科研平台",
            Kind::Service => "检测服务",
            Kind::Achievement => "科技成果",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Kind::Platform => "/platforms",
            Kind::Service => "/services",
            Kind::Achievement => "/achievements",
        }
    }

    fn select(self) -> &'static str {
        match self {
            Kind::Platform => {
                "SELECT p.id, p.name AS title, p.unit_id, u.name AS unit_name, p.category, \
                 p.platform_type AS subtitle, p.description, p.joined_on AS date, NULL AS price_fen \
                 FROM platforms p JOIN units u ON u.id = p.unit_id"
            }
            Kind::Service => {
                "SELECT p.id, p.name AS title, p.unit_id, u.name AS unit_name, p.category, \
                 p.sample_requirements AS subtitle, p.description, NULL AS date, p.price_fen \
                 FROM services p JOIN units u ON u.id = p.unit_id"
            }
            Kind::Achievement => {
                "SELECT p.id, p.title, p.unit_id, u.name AS unit_name, p.field AS category, \
                 p.transfer_mode AS subtitle, p.description, p.maturity AS date, p.price_fen \
                 FROM achievements p JOIN units u ON u.id = p.unit_id"
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Resource {
    pub id: i64,
    pub title: String,
    pub unit_id: i64,
    pub unit_name: String,
    pub category: String,
    pub subtitle: String,
    pub description: String,
    pub date: Option<String>,
    pub price_fen: Option<i64>,
}

fn from_row(r: &sqlx::any::AnyRow) -> Resource {
    Resource {
        id: r.get("id"),
        title: r.get("title"),
        unit_id: r.get("unit_id"),
        unit_name: r.get("unit_name"),
        category: r.get("category"),
        subtitle: r.get("subtitle"),
        description: r.get("description"),
        date: r.try_get("date").ok().flatten(),
        price_fen: r.try_get("price_fen").ok().flatten(),
    }
}

fn table(kind: Kind) -> &'static str {
    match kind {
        Kind::Platform => "platforms",
        Kind::Service => "services",
        Kind::Achievement => "achievements",
    }
}

pub async fn list_public(
    db: &Db,
    kind: Kind,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Resource>, i64)> {
    let count_sql = format!(
        "SELECT COUNT(*) FROM {} WHERE review_status = 'approved'",
        table(kind)
    );
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql))
        .fetch_one(&db.pool)
        .await?;
    let sql = format!(
        "{} WHERE p.review_status = 'approved' ORDER BY p.id LIMIT $1 OFFSET $2",
        kind.select()
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(limit)
        .bind(offset)
        .fetch_all(&db.pool)
        .await?;
    Ok((rows.iter().map(from_row).collect(), total))
}

pub async fn get_public(db: &Db, kind: Kind, id: i64) -> Result<Resource> {
    let sql = format!(
        "{} WHERE p.id = $1 AND p.review_status = 'approved'",
        kind.select()
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(from_row(&row))
}
