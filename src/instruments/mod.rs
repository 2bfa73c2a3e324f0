//! Instruments (科研仪器): the records units publish. This module reads them for the portal
//! and console; only approved instruments are public.

use serde::{Deserialize, Serialize};

use crate::{
    catalog,
    error::{AppError, Result},
    store::Db,
};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Instrument {
    pub id: i64,
    pub unit_id: i64,
    pub unit_name: String,
    pub name: String,
    pub model: String,
    pub manufacturer: String,
    pub country: String,
    pub category_code: String,
    /// The category's name, filled in from `category_code` after reading.
    #[sqlx(skip)]
    pub category_label: String,
    pub department: String,
    pub value_fen: i64,
    #[sqlx(try_from = "crate::store::Flag")]
    pub open_to_public: bool,
    pub city: String,
    #[sqlx(try_from = "crate::store::Flag")]
    pub customs_supervised: bool,
    pub usage_status: String,
    pub sharing_mode: String,
    pub source: String,
    pub funding: String,
    pub instrument_type: String,
    pub description: String,
    pub service_content: String,
    pub typical_achievements: String,
    pub location: String,
    pub fee_standard: String,
    pub data_source: String,
    pub review_status: String,
    pub joined_on: Option<String>,
    pub purchase_date: Option<String>,
    pub service_count: i64,
    pub annual_running_hours: i64,
    pub annual_service_hours: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "i.id, i.unit_id, u.name AS unit_name, i.name, i.model, i.manufacturer, \
    i.country, i.category_code, i.department, i.value_fen, i.open_to_public, i.city, \
    i.customs_supervised, i.usage_status, i.sharing_mode, i.source, i.funding, i.instrument_type, \
    i.description, i.service_content, i.typical_achievements, i.location, i.fee_standard, \
    i.data_source, i.review_status, i.joined_on, i.purchase_date, i.service_count, \
    i.annual_running_hours, i.annual_service_hours, i.updated_at";

impl Instrument {
    /// Fill in what is derived from the stored columns.
    fn labelled(mut self) -> Instrument {
        self.category_label = catalog::class_label(&self.category_code);
        self
    }
}

/// Portal filters for the instrument list.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct Filter {
    #[serde(default)]
    pub q: String,
    /// A major class (`010000`) or a subclass code.
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub unit: Option<i64>,
    #[serde(default)]
    pub open: String,
    #[serde(default)]
    pub sort: String,
}

/// Approved instruments matching the filter, newest first; returns (page items, total).
pub async fn list_public(
    db: &Db,
    f: &Filter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Instrument>, i64)> {
    let mut wh = vec!["i.review_status = 'approved'".to_string()];
    let mut args: Vec<String> = Vec::new();
    let q = f.q.trim();
    if !q.is_empty() {
        args.push(format!("%{q}%"));
        let n = args.len();
        wh.push(format!(
            "(i.name LIKE ${n} OR i.model LIKE ${n} OR i.manufacturer LIKE ${n} OR u.name LIKE ${n})"
        ));
    }
    let cat = f.category.trim();
    if cat.len() == 6 && cat.chars().all(|c| c.is_ascii_digit()) {
        if cat.ends_with("0000") {
            args.push(format!("{}%", &cat[..2]));
        } else {
            args.push(cat.to_string());
        }
        wh.push(format!("i.category_code LIKE ${}", args.len()));
    }
    if !f.city.trim().is_empty() {
        args.push(f.city.trim().to_string());
        wh.push(format!("i.city = ${}", args.len()));
    }
    if let Some(unit) = f.unit {
        // An integer, so it can be inlined safely.
        wh.push(format!("i.unit_id = {unit}"));
    }
    if f.open == "1" {
        wh.push("i.open_to_public = 1".into());
    }
    let order = match f.sort.as_str() {
        "value" => "i.value_fen DESC, i.id",
        "name" => "i.name, i.id",
        _ => "i.joined_on DESC, i.id DESC",
    };
    let where_sql = wh.join(" AND ");
    let count_sql = format!(
        "SELECT COUNT(*) FROM instruments i JOIN units u ON u.id = i.unit_id WHERE {where_sql}"
    );
    let mut count = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql));
    for a in &args {
        count = count.bind(a.clone());
    }
    let total = count.fetch_one(&db.pool).await?;
    let n = args.len();
    let sql = format!(
        "SELECT {COLUMNS} FROM instruments i JOIN units u ON u.id = i.unit_id WHERE {where_sql} \
         ORDER BY {order} LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let mut query = sqlx::query_as::<_, Instrument>(sqlx::AssertSqlSafe(sql));
    for a in &args {
        query = query.bind(a.clone());
    }
    let rows = query.bind(limit).bind(offset).fetch_all(&db.pool).await?;
    Ok((rows.into_iter().map(Instrument::labelled).collect(), total))
}

pub async fn get(db: &Db, id: i64) -> Result<Instrument> {
    let sql = format!(
        "SELECT {COLUMNS} FROM instruments i JOIN units u ON u.id = i.unit_id WHERE i.id = $1"
    );
    let row: Instrument = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(row.labelled())
}

/// An instrument's name, `None` if there is no such instrument.
pub async fn name(db: &Db, id: i64) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT name FROM instruments WHERE id = $1")
            .bind(id)
            .fetch_optional(&db.pool)
            .await?,
    )
}

/// An existing instrument's name and model.
pub async fn name_and_model(db: &Db, id: i64) -> Result<(String, String)> {
    Ok(
        sqlx::query_as("SELECT name, model FROM instruments WHERE id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await?,
    )
}

/// Approved instrument counts per major class, for the home page's quick entries.
pub async fn counts_by_class(db: &Db) -> Result<Vec<(String, String, i64)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT SUBSTR(category_code, 1, 2) AS major, COUNT(*) AS n FROM instruments \
         WHERE review_status = 'approved' GROUP BY SUBSTR(category_code, 1, 2)",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for class in catalog::classes() {
        let n = rows
            .iter()
            .find(|(major, _)| *major == class.code[..2])
            .map(|(_, n)| *n)
            .unwrap_or(0);
        out.push((class.code.clone(), class.name.clone(), n));
    }
    Ok(out)
}

/// Distinct cities of approved instruments (for the filter).
pub async fn cities(db: &Db) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT city FROM instruments WHERE review_status = 'approved' ORDER BY city",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// Figures for the home page strip: approved instruments, their total value (fen),
/// certified managing units, approved services.
pub async fn figures(db: &Db) -> Result<(i64, i64, i64, i64)> {
    let (n, v): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(value_fen), 0) AS BIGINT) AS v \
         FROM instruments WHERE review_status = 'approved'",
    )
    .fetch_one(&db.pool)
    .await?;
    let units: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM units WHERE certification_status = 'certified' AND kind = 'managing'",
    )
    .fetch_one(&db.pool)
    .await?;
    let services: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM services WHERE review_status = 'approved'")
            .fetch_one(&db.pool)
            .await?;
    Ok((n, v, units, services))
}

mod edit;
mod input;
pub mod operation;

pub use edit::*;
pub use input::*;

// ---- as a workflow subject ---------------------------------------------------------------

/// Instruments under onboarding review (仪器入网审核).
pub const WORKFLOW_SUBJECTS: &[crate::workflow::hooks::Subject] =
    &[crate::workflow::hooks::Subject {
        kind: "instrument",
        table: "instruments",
        status_column: "review_status",
        unit: crate::workflow::hooks::UnitOf::Column("unit_id"),
        has_joined_on: true,
        searchable: true,
        label: |conn, id| {
            Box::pin(crate::workflow::hooks::label_by(
                conn,
                "SELECT name || ' ' || model FROM instruments WHERE id = $1",
                id,
            ))
        },
    }];
