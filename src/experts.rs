//! Experts (专家) and the expert pool (专家库): name, unit, professional title, fields of
//! expertise, date joined, status; filterable by field for assigning evaluations later.
//! Unit management rules (单位管理制度) live here too: both are small registers kept in
//! the console.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::WriteQuery;
use crate::{
    error::{AppError, FieldErrors, Result},
    store::Db,
};

pub const STATUSES: [&str; 3] = ["在库", "暂停", "退出"];
pub const TITLES: [&str; 5] = ["正高级", "副高级", "中级", "初级", "其他"];

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Expert {
    pub id: i64,
    pub name: String,
    pub unit_name: String,
    pub title: String,
    pub fields: String,
    pub joined_on: Option<String>,
    pub status: String,
    pub certification_status: String,
    /// Filled in from `certification_status` after reading.
    #[sqlx(skip)]
    pub certification_label: &'static str,
}

fn date_ok(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

fn opt_date(raw: &BTreeMap<String, String>, key: &str, e: &mut FieldErrors) -> Option<String> {
    let v = raw.get(key).map(|s| s.trim()).unwrap_or("");
    if v.is_empty() {
        None
    } else if date_ok(v) {
        Some(v.to_string())
    } else {
        e.insert(key.into(), "日期格式应为 YYYY-MM-DD".into());
        None
    }
}

fn text(raw: &BTreeMap<String, String>, key: &str) -> String {
    raw.get(key)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

struct ExpertInput {
    name: String,
    unit_name: String,
    title: String,
    fields: String,
    joined_on: Option<String>,
    status: String,
}

fn validate_expert(raw: &BTreeMap<String, String>) -> Result<ExpertInput> {
    let mut e = FieldErrors::new();
    let name = text(raw, "name");
    if !(2..=30).contains(&name.chars().count()) {
        e.insert("name".into(), "请填写专家姓名（2–30 字）".into());
    }
    let unit_name = text(raw, "unit_name");
    if unit_name.is_empty() {
        e.insert("unit_name".into(), "请填写所在单位".into());
    }
    let title = text(raw, "title");
    if !TITLES.contains(&title.as_str()) {
        e.insert("title".into(), format!("职称应为：{}", TITLES.join("、")));
    }
    // Fields of expertise: separated by 、，, ; or spaces; stored '、'-joined.
    let fields: Vec<String> = text(raw, "fields")
        .split(['、', '，', ',', ';', '；', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if fields.is_empty() {
        e.insert("fields".into(), "请填写至少一个专业领域".into());
    }
    let joined_on = opt_date(raw, "joined_on", &mut e);
    let mut status = text(raw, "status");
    if status.is_empty() {
        status = "在库".into();
    }
    if !STATUSES.contains(&status.as_str()) {
        e.insert(
            "status".into(),
            format!("状态应为：{}", STATUSES.join("、")),
        );
    }
    if let Some(err) = AppError::fields(e) {
        return Err(err);
    }
    Ok(ExpertInput {
        name,
        unit_name,
        title,
        fields: fields.join("、"),
        joined_on,
        status,
    })
}

pub async fn create_expert(db: &Db, raw: &BTreeMap<String, String>, now: i64) -> Result<i64> {
    let v = validate_expert(raw)?;
    Ok(sqlx::query_scalar(
        "INSERT INTO experts (name, unit_name, title, fields, joined_on, status, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(v.name)
    .bind(v.unit_name)
    .bind(v.title)
    .bind(v.fields)
    .bind(v.joined_on)
    .bind(v.status)
    .bind(now)
    .write(db)
    .await?)
}

pub async fn update_expert(
    db: &Db,
    id: i64,
    raw: &BTreeMap<String, String>,
    now: i64,
) -> Result<()> {
    let v = validate_expert(raw)?;
    let done = sqlx::query(
        "UPDATE experts SET name = $1, unit_name = $2, title = $3, fields = $4, joined_on = $5, \
         status = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(v.name)
    .bind(v.unit_name)
    .bind(v.title)
    .bind(v.fields)
    .bind(v.joined_on)
    .bind(v.status)
    .bind(now)
    .bind(id)
    .write(db)
    .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}

impl Expert {
    /// Fill in what is derived from the stored columns.
    fn labelled(mut self) -> Expert {
        self.certification_label = crate::units::certification_label(&self.certification_status);
        self
    }
}

const EXPERT_COLUMNS: &str =
    "id, name, unit_name, title, fields, joined_on, status, certification_status";

pub async fn get_expert(db: &Db, id: i64) -> Result<Expert> {
    let row: Expert = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {EXPERT_COLUMNS} FROM experts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(row.labelled())
}

/// The pool, filtered by a field of expertise (substring) and status; (page, total).
pub async fn pool(
    db: &Db,
    field: &str,
    status: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Expert>, i64)> {
    let field = field.trim();
    let pattern = format!("%{field}%");
    let status = if STATUSES.contains(&status) {
        status
    } else {
        ""
    };
    let wh = "($1 = '' OR fields LIKE $2) AND ($3 = '' OR status = $3)";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM experts WHERE {wh}"
    )))
    .bind(field)
    .bind(&pattern)
    .bind(status)
    .fetch_one(&db.pool)
    .await?;
    let rows: Vec<Expert> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {EXPERT_COLUMNS} FROM experts WHERE {wh} ORDER BY id DESC LIMIT $4 OFFSET $5"
    )))
    .bind(field)
    .bind(&pattern)
    .bind(status)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows.into_iter().map(Expert::labelled).collect(), total))
}

/// Start expert certification (专家认证): the profile must be complete and not already
/// pending or certified; it becomes `pending`.
pub async fn submit_certification(
    engine: &crate::workflow::Engine,
    user: &crate::auth::CurrentUser,
    id: i64,
) -> Result<crate::instruments::Submission> {
    let expert = get_expert(engine.db(), id).await?;
    match expert.certification_status.as_str() {
        "pending" => {
            return Err(AppError::conflict(
                "already_pending",
                "该专家的认证正在审核中",
            ));
        }
        "certified" => {
            return Err(AppError::conflict("already_certified", "该专家已通过认证"));
        }
        _ => {}
    }
    if expert.status != "在库" {
        return Err(AppError::unprocessable(
            "expert_inactive",
            format!("该专家状态为“{}”，不能提交认证", expert.status),
        ));
    }
    let data = serde_json::json!({"name": expert.name, "submitted_by": user.id});
    let started = engine
        .start("expert_certification", "expert", id, user.id, data)
        .await?;
    Ok(crate::instruments::Submission {
        instance_id: Some(started.instance_id),
        state: started.state,
    })
}

// ---- unit management rules (单位管理制度) ------------------------------------------------

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Rule {
    pub id: i64,
    pub unit_id: i64,
    pub unit_name: String,
    pub name: String,
    pub number: String,
    pub published_on: Option<String>,
    pub effective_on: Option<String>,
    pub data_source: String,
    #[sqlx(rename = "stored_name")]
    pub attachment: Option<String>,
    #[sqlx(rename = "original_name")]
    pub attachment_name: Option<String>,
}

/// Validate a rule's fields (the attachment is stored by the caller first).
pub async fn create_rule(
    db: &Db,
    unit_id: i64,
    raw: &BTreeMap<String, String>,
    attachment_id: Option<i64>,
    now: i64,
) -> Result<i64> {
    let mut e = FieldErrors::new();
    let name = text(raw, "name");
    if !(2..=100).contains(&name.chars().count()) {
        e.insert("name".into(), "请填写制度名称（2–100 字）".into());
    }
    let number = text(raw, "number");
    let published_on = opt_date(raw, "published_on", &mut e);
    let effective_on = opt_date(raw, "effective_on", &mut e);
    if published_on.is_none() && !e.contains_key("published_on") {
        e.insert("published_on".into(), "请填写发布日期".into());
    }
    if let (Some(p), Some(f)) = (&published_on, &effective_on)
        && f < p
    {
        e.insert("effective_on".into(), "施行日期不能早于发布日期".into());
    }
    let mut data_source = text(raw, "data_source");
    if data_source.is_empty() {
        data_source = "单位填报".into();
    }
    if let Some(err) = AppError::fields(e) {
        return Err(err);
    }
    Ok(sqlx::query_scalar(
        "INSERT INTO unit_rules (unit_id, name, number, published_on, effective_on, data_source, \
         attachment_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
         RETURNING id",
    )
    .bind(unit_id)
    .bind(name)
    .bind(number)
    .bind(published_on)
    .bind(effective_on)
    .bind(data_source)
    .bind(attachment_id)
    .bind(now)
    .fetch_one(&db.pool)
    .await?)
}

/// Rules of the given units, newest publish date first.
pub async fn rules_for_units(db: &Db, unit_ids: &[i64]) -> Result<Vec<Rule>> {
    if unit_ids.is_empty() {
        return Ok(vec![]);
    }
    let ids = unit_ids
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT r.id, r.unit_id, u.name AS unit_name, r.name, r.number, r.published_on, \
         r.effective_on, r.data_source, f.stored_name, f.original_name FROM unit_rules r \
         JOIN units u ON u.id = r.unit_id LEFT JOIN uploads f ON f.id = r.attachment_id \
         WHERE r.unit_id IN ({ids}) ORDER BY r.published_on DESC, r.id DESC"
    )))
    .fetch_all(&db.pool)
    .await?)
}

// ---- as a workflow subject ---------------------------------------------------------------

/// Experts under certification review (专家认证). They record their unit by name only, so
/// nobody is recused by unit.
pub const WORKFLOW_SUBJECTS: &[crate::workflow::hooks::Subject] =
    &[crate::workflow::hooks::Subject {
        kind: "expert",
        table: "experts",
        status_column: "certification_status",
        unit: crate::workflow::hooks::UnitOf::Nothing,
        has_joined_on: true,
        searchable: false,
        label: |conn, id| {
            Box::pin(crate::workflow::hooks::label_by(
                conn,
                "SELECT name FROM experts WHERE id = $1",
                id,
            ))
        },
    }];
