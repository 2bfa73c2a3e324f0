//! Editing research platforms (科研平台), testing services (检测项目) and achievements
//! (科技成果) for unit managers. The three share one shape — a unit's record with a review
//! status and an onboarding flow — so their fields are described as data and one set of
//! functions validates, stores and submits them. The portal reads them in `resources`.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use crate::store::WriteQuery;
use crate::{
    error::{AppError, FieldErrors, Result},
    resources::Kind,
    store::Db,
};

/// How a field is entered and stored.
#[derive(Clone, Copy, Debug)]
pub enum Input {
    /// One line of text, 0..=max characters.
    Text(usize),
    /// Several lines of text.
    LongText,
    /// One of these values.
    Choice(&'static [&'static str]),
    /// Yuan entered, fen stored in the `*_fen` column; blank is NULL ("面议").
    Money,
    /// A whole number in a range.
    Int(i64, i64),
    /// `YYYY-MM-DD` or blank.
    Date,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Field {
    /// The form/JSON field name.
    pub name: &'static str,
    pub label: &'static str,
    #[serde(skip)]
    pub input: Input,
    pub required: bool,
    /// The stored column (for money: `price_fen`).
    #[serde(skip)]
    pub column: &'static str,
    pub widget: &'static str,
    pub choices: &'static [&'static str],
}

const fn f(
    name: &'static str,
    label: &'static str,
    input: Input,
    required: bool,
    column: &'static str,
) -> Field {
    let (widget, choices): (&'static str, &'static [&'static str]) = match input {
        Input::Text(_) => ("text", &[]),
        Input::LongText => ("textarea", &[]),
        Input::Choice(c) => ("select", c),
        Input::Money => ("money", &[]),
        Input::Int(_, _) => ("number", &[]),
        Input::Date => ("date", &[]),
    };
    Field {
        name,
        label,
        input,
        required,
        column,
        widget,
        choices,
    }
}

pub const PLATFORM_CATEGORIES: [&str; 6] = [
    "重点实验室",
    "工程技术研究中心",
    "企业技术中心",
    "检验检测中心",
    "新型研发机构",
    "其他",
];
pub const PLATFORM_TYPES: [&str; 4] = ["国家级", "省级", "市级", "其他"];
pub const SERVICE_CATEGORIES: [&str; 6] = [
    "材料检测",
    "化学分析",
    "生物医药检测",
    "环境检测",
    "计量校准",
    "其他",
];
pub const SERVICE_STATUSES: [&str; 3] = ["服务中", "暂停服务", "已下线"];
pub const PRICE_UNITS: [&str; 4] = ["样", "项", "小时", "次"];
pub const MATURITIES: [&str; 5] = ["实验室阶段", "小试", "中试", "可量产", "已产业化"];
pub const TRANSFER_MODES: [&str; 4] = ["转让", "许可", "作价入股", "合作开发"];

const PLATFORM_FIELDS: &[Field] = &[
    f("name", "平台名称", Input::Text(100), true, "name"),
    f(
        "category",
        "平台类别",
        Input::Choice(&PLATFORM_CATEGORIES),
        true,
        "category",
    ),
    f(
        "platform_type",
        "平台级别",
        Input::Choice(&PLATFORM_TYPES),
        true,
        "platform_type",
    ),
    f("joined_on", "入网日期", Input::Date, false, "joined_on"),
    f(
        "description",
        "平台简介",
        Input::LongText,
        true,
        "description",
    ),
];

const SERVICE_FIELDS: &[Field] = &[
    f("name", "检测项目名称", Input::Text(100), true, "name"),
    f(
        "category",
        "项目类别",
        Input::Choice(&SERVICE_CATEGORIES),
        true,
        "category",
    ),
    f(
        "price",
        "价格（元，空为面议）",
        Input::Money,
        false,
        "price_fen",
    ),
    f(
        "price_unit",
        "计价单位",
        Input::Choice(&PRICE_UNITS),
        true,
        "price_unit",
    ),
    f(
        "sample_requirements",
        "样品要求",
        Input::LongText,
        true,
        "sample_requirements",
    ),
    f(
        "turnaround_days",
        "检测周期（工作日）",
        Input::Int(1, 365),
        true,
        "turnaround_days",
    ),
    f(
        "service_status",
        "服务状态",
        Input::Choice(&SERVICE_STATUSES),
        true,
        "service_status",
    ),
    f(
        "description",
        "项目说明",
        Input::LongText,
        false,
        "description",
    ),
];

const ACHIEVEMENT_FIELDS: &[Field] = &[
    f("title", "成果名称", Input::Text(120), true, "title"),
    f("field", "所属领域", Input::Text(50), true, "field"),
    f(
        "maturity",
        "成熟度",
        Input::Choice(&MATURITIES),
        true,
        "maturity",
    ),
    f(
        "transfer_mode",
        "转化方式",
        Input::Choice(&TRANSFER_MODES),
        true,
        "transfer_mode",
    ),
    f(
        "price",
        "价格（元，空为面议）",
        Input::Money,
        false,
        "price_fen",
    ),
    f("holder", "成果持有人", Input::Text(100), true, "holder"),
    f(
        "contact_name",
        "联系人",
        Input::Text(30),
        false,
        "contact_name",
    ),
    f(
        "contact_phone",
        "联系电话",
        Input::Text(30),
        false,
        "contact_phone",
    ),
    f(
        "description",
        "成果简介",
        Input::LongText,
        true,
        "description",
    ),
];

pub fn fields(kind: Kind) -> &'static [Field] {
    match kind {
        Kind::Platform => PLATFORM_FIELDS,
        Kind::Service => SERVICE_FIELDS,
        Kind::Achievement => ACHIEVEMENT_FIELDS,
    }
}

pub fn table(kind: Kind) -> &'static str {
    match kind {
        Kind::Platform => "platforms",
        Kind::Service => "services",
        Kind::Achievement => "achievements",
    }
}

/// The URL segment and API collection name (`platforms`, `services`, `achievements`).
pub fn slug(kind: Kind) -> &'static str {
    table(kind)
}

pub fn from_slug(slug: &str) -> Option<Kind> {
    match slug {
        "platforms" => Some(Kind::Platform),
        "services" => Some(Kind::Service),
        "achievements" => Some(Kind::Achievement),
        _ => None,
    }
}

/// The onboarding flow each kind's submission will start on the workflow engine.
pub fn flow(kind: Kind) -> &'static str {
    match kind {
        Kind::Platform => "platform_onboarding",
        Kind::Service => "service_onboarding",
        Kind::Achievement => "achievement_onboarding",
    }
}

fn title_column(kind: Kind) -> &'static str {
    match kind {
        Kind::Achievement => "title",
        _ => "name",
    }
}

/// A value ready to bind.
#[derive(Debug, Clone)]
enum Val {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

/// Validate raw input (form fields or JSON turned into strings): field errors in Chinese.
fn validate(kind: Kind, raw: &BTreeMap<String, String>) -> Result<Vec<(&'static str, Val)>> {
    let mut errors = FieldErrors::new();
    let mut out = Vec::new();
    for fld in fields(kind) {
        let v = raw.get(fld.name).map(|s| s.trim()).unwrap_or("");
        if fld.required && v.is_empty() {
            errors.insert(fld.name.into(), format!("请填写{}", fld.label));
            continue;
        }
        let val = match fld.input {
            Input::Text(max) => {
                if v.chars().count() > max {
                    errors.insert(fld.name.into(), format!("{}不超过 {max} 字", fld.label));
                }
                Val::Text(v.to_string())
            }
            Input::LongText => {
                if v.chars().count() > 5000 {
                    errors.insert(fld.name.into(), format!("{}不超过 5000 字", fld.label));
                }
                Val::Text(v.to_string())
            }
            Input::Choice(c) => {
                if !c.contains(&v) {
                    errors.insert(
                        fld.name.into(),
                        format!("{}应为：{}", fld.label, c.join("、")),
                    );
                }
                Val::Text(v.to_string())
            }
            Input::Money => {
                if v.is_empty() || v == "面议" {
                    Val::OptInt(None)
                } else {
                    match crate::domain::Yuan::parse(v) {
                        Ok(y) => Val::OptInt(Some(y.fen())),
                        Err(m) => {
                            errors.insert(fld.name.into(), m.into());
                            Val::OptInt(None)
                        }
                    }
                }
            }
            Input::Int(min, max) => match v.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Val::Int(n),
                _ => {
                    errors.insert(
                        fld.name.into(),
                        format!("{}应为 {min}–{max} 的整数", fld.label),
                    );
                    Val::Int(min)
                }
            },
            Input::Date => {
                if v.is_empty() {
                    Val::OptText(None)
                } else if chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok() {
                    Val::OptText(Some(v.to_string()))
                } else {
                    errors.insert(fld.name.into(), "日期格式应为 YYYY-MM-DD".into());
                    Val::OptText(None)
                }
            }
        };
        out.push((fld.column, val));
    }
    match AppError::fields(errors) {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    vals: &[(&'static str, Val)],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for (_, v) in vals {
        q = match v.clone() {
            Val::Text(s) => q.bind(s),
            Val::OptText(s) => q.bind(s),
            Val::Int(n) => q.bind(n),
            Val::OptInt(n) => q.bind(n),
        };
    }
    q
}

/// Create a draft for `unit_id` (the caller has checked the unit scope).
pub async fn create(
    db: &Db,
    kind: Kind,
    unit_id: i64,
    raw: &BTreeMap<String, String>,
    now: i64,
) -> Result<i64> {
    let vals = validate(kind, raw)?;
    let cols: Vec<&str> = vals.iter().map(|(c, _)| *c).collect();
    let n = cols.len();
    let placeholders: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {} ({}, unit_id, review_status, created_at, updated_at) \
         VALUES ({}, ${}, 'draft', ${}, ${}) RETURNING id",
        table(kind),
        cols.join(", "),
        placeholders.join(", "),
        n + 1,
        n + 2,
        n + 2
    );
    let q = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &vals);
    let mut tx = db.begin_write().await?;
    let row = q.bind(unit_id).bind(now).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(row.get::<i64, _>(0))
}

/// Only drafts and returned records may be edited (same rule as instruments).
pub fn ensure_editable(review_status: &str) -> Result<()> {
    match review_status {
        "draft" | "rejected" => Ok(()),
        "pending" => Err(AppError::conflict(
            "not_editable",
            "该记录正在审核中，审核结束前不能修改",
        )),
        "retired" => Err(AppError::conflict(
            "record_retired",
            "该记录已下线，不能修改",
        )),
        _ => Err(AppError::conflict(
            "not_editable",
            "该记录已审核通过并公开，请提交变更申请，审核通过后生效",
        )),
    }
}

/// Overwrite an editable record with the full set of fields.
pub async fn update(
    db: &Db,
    kind: Kind,
    id: i64,
    raw: &BTreeMap<String, String>,
    now: i64,
) -> Result<()> {
    let current = get(db, kind, id).await?;
    ensure_editable(&current.review_status)?;
    let mut tx = db.begin_write().await?;
    let n = write_fields(&mut tx, kind, id, raw, now, "('draft', 'rejected')").await?;
    tx.commit().await?;
    if n == 0 {
        return Err(AppError::conflict(
            "not_editable",
            "该记录已提交审核，不能修改",
        ));
    }
    Ok(())
}

/// Write an approved change request's values over an approved record, inside the deciding
/// transaction; 0 when the record is no longer approved.
pub async fn apply_approved(
    conn: &mut crate::store::Conn,
    kind: Kind,
    id: i64,
    raw: &BTreeMap<String, String>,
    now: i64,
) -> Result<u64> {
    write_fields(conn, kind, id, raw, now, "('approved')").await
}

/// Check `raw` as a whole record of this kind (what a change request will become).
pub fn check(kind: Kind, raw: &BTreeMap<String, String>) -> Result<()> {
    validate(kind, raw).map(|_| ())
}

/// The one UPDATE of a record's fields, for records in `statuses` (a constant SQL list).
async fn write_fields(
    conn: &mut crate::store::Conn,
    kind: Kind,
    id: i64,
    raw: &BTreeMap<String, String>,
    now: i64,
    statuses: &'static str,
) -> Result<u64> {
    let vals = validate(kind, raw)?;
    let sets: Vec<String> = vals
        .iter()
        .enumerate()
        .map(|(i, (c, _))| format!("{c} = ${}", i + 1))
        .collect();
    let n = vals.len();
    let sql = format!(
        "UPDATE {} SET {}, updated_at = ${} WHERE id = ${} AND review_status IN {statuses}",
        table(kind),
        sets.join(", "),
        n + 1,
        n + 2
    );
    let q = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &vals);
    let done = q.bind(now).bind(id).execute(&mut *conn).await?;
    Ok(done.rows_affected())
}

/// A record as the console and API see it: its fields as entered, plus status.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub id: i64,
    pub unit_id: i64,
    pub unit_name: String,
    pub title: String,
    pub review_status: String,
    pub review_label: &'static str,
    pub updated_at: i64,
    /// Field name → value as text (money in yuan with two places; blank when 面议).
    pub values: BTreeMap<String, String>,
}

fn record_from_row(kind: Kind, r: &sqlx::any::AnyRow) -> Record {
    let mut values = BTreeMap::new();
    for fld in fields(kind) {
        let v = match fld.input {
            Input::Money => r
                .get::<Option<i64>, _>(fld.column)
                .map(|fen| crate::domain::Yuan::from_fen(fen).to_string())
                .unwrap_or_default(),
            Input::Int(_, _) => r.get::<i64, _>(fld.column).to_string(),
            Input::Date => r.get::<Option<String>, _>(fld.column).unwrap_or_default(),
            _ => r.get::<String, _>(fld.column),
        };
        values.insert(fld.name.to_string(), v);
    }
    let st: String = r.get("review_status");
    Record {
        id: r.get("id"),
        unit_id: r.get("unit_id"),
        unit_name: r.get("unit_name"),
        title: r.get("record_title"),
        review_label: crate::instruments::review_label(&st),
        review_status: st,
        updated_at: r.get("updated_at"),
        values,
    }
}

fn select(kind: Kind) -> String {
    let cols: Vec<String> = fields(kind)
        .iter()
        .map(|f| format!("p.{}", f.column))
        .collect();
    format!(
        "SELECT p.id, p.unit_id, u.name AS unit_name, p.{} AS record_title, p.review_status, \
         p.updated_at, {} FROM {} p JOIN units u ON u.id = p.unit_id",
        title_column(kind),
        cols.join(", "),
        table(kind)
    )
}

pub async fn get(db: &Db, kind: Kind, id: i64) -> Result<Record> {
    let sql = format!("{} WHERE p.id = $1", select(kind));
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(record_from_row(kind, &row))
}

/// Records of the given units, newest change first; (page, total).
pub async fn list_for_units(
    db: &Db,
    kind: Kind,
    unit_ids: &[i64],
    offset: i64,
    limit: i64,
) -> Result<(Vec<Record>, i64)> {
    if unit_ids.is_empty() {
        return Ok((vec![], 0));
    }
    // Integers from the session: safe to inline.
    let ids = unit_ids
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {} WHERE unit_id IN ({ids})",
        table(kind)
    )))
    .fetch_one(&db.pool)
    .await?;
    let sql = format!(
        "{} WHERE p.unit_id IN ({ids}) ORDER BY p.updated_at DESC, p.id DESC LIMIT $1 OFFSET $2",
        select(kind)
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(limit)
        .bind(offset)
        .fetch_all(&db.pool)
        .await?;
    Ok((
        rows.iter().map(|r| record_from_row(kind, r)).collect(),
        total,
    ))
}

/// Submit a record for onboarding review: it must be editable and complete; it becomes
/// `pending`. The caller has checked the unit scope.
pub async fn submit(
    engine: &crate::workflow::Engine,
    user: &crate::auth::CurrentUser,
    kind: Kind,
    id: i64,
) -> Result<crate::instruments::Submission> {
    let record = get(engine.db(), kind, id).await?;
    ensure_editable(&record.review_status)?;
    // Completeness: everything a create needs (older or imported rows may lack it).
    validate(kind, &record.values)?;
    let data = serde_json::json!({"title": record.title, "unit_id": record.unit_id, "submitted_by": user.id});
    let subject = match kind {
        Kind::Platform => "platform",
        Kind::Service => "service",
        Kind::Achievement => "achievement",
    };
    let started = engine.start(flow(kind), subject, id, user.id, data).await?;
    Ok(crate::instruments::Submission {
        instance_id: Some(started.instance_id),
        state: started.state,
    })
}

/// Turn a JSON object into the string map `validate` reads (numbers as their text).
pub fn raw_from_json(v: &serde_json::Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(obj) = v.as_object() {
        for (k, v) in obj {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            out.insert(k.clone(), s);
        }
    }
    out
}

// ---- instruments attached to a platform ------------------------------------------------------

/// An instrument as a platform lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AttachedInstrument {
    pub id: i64,
    pub name: String,
    pub model: String,
    pub value_fen: i64,
    pub review_status: String,
}

/// Instruments attached to a platform; `approved_only` for the portal.
pub async fn platform_instruments(
    db: &Db,
    platform_id: i64,
    approved_only: bool,
) -> Result<Vec<AttachedInstrument>> {
    let rows = sqlx::query(
        "SELECT i.id, i.name, i.model, i.value_fen, i.review_status FROM platform_instruments p \
         JOIN instruments i ON i.id = p.instrument_id \
         WHERE p.platform_id = $1 AND ($2 = 0 OR i.review_status = 'approved') ORDER BY i.name, i.id",
    )
    .bind(platform_id)
    .bind(approved_only as i64)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| AttachedInstrument {
            id: r.get("id"),
            name: r.get("name"),
            model: r.get("model"),
            value_fen: r.get("value_fen"),
            review_status: r.get("review_status"),
        })
        .collect())
}

/// Attach an instrument of the platform's own unit (the caller has checked the unit scope).
pub async fn attach_instrument(
    db: &Db,
    platform_id: i64,
    instrument_id: i64,
    now: i64,
) -> Result<()> {
    let platform = get(db, Kind::Platform, platform_id).await?;
    let instrument = crate::instruments::get(db, instrument_id).await?;
    if instrument.unit_id != platform.unit_id {
        return Err(AppError::field("instrument_id", "只能关联本单位的仪器"));
    }
    let exists: Option<i64> = sqlx::query_scalar(
        "SELECT instrument_id FROM platform_instruments WHERE platform_id = $1 AND instrument_id = $2",
    )
    .bind(platform_id)
    .bind(instrument_id)
    .fetch_optional(&db.pool)
    .await?;
    if exists.is_some() {
        return Err(AppError::field("instrument_id", "该仪器已关联到本平台"));
    }
    sqlx::query(
        "INSERT INTO platform_instruments (platform_id, instrument_id, created_at) VALUES ($1, $2, $3)",
    )
    .bind(platform_id)
    .bind(instrument_id)
    .bind(now)
    .write(db)
    .await?;
    Ok(())
}

pub async fn detach_instrument(db: &Db, platform_id: i64, instrument_id: i64) -> Result<()> {
    sqlx::query("DELETE FROM platform_instruments WHERE platform_id = $1 AND instrument_id = $2")
        .bind(platform_id)
        .bind(instrument_id)
        .write(db)
        .await?;
    Ok(())
}

/// The unit's instruments, for the "attach" select.
pub async fn unit_instruments(db: &Db, unit_id: i64) -> Result<Vec<(i64, String)>> {
    let rows =
        sqlx::query("SELECT id, name, model FROM instruments WHERE unit_id = $1 ORDER BY name, id")
            .bind(unit_id)
            .fetch_all(&db.pool)
            .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let model: String = r.get("model");
            let name: String = r.get("name");
            (
                r.get("id"),
                if model.is_empty() {
                    name
                } else {
                    format!("{name}（{model}）")
                },
            )
        })
        .collect())
}

// ---- as a workflow subject ---------------------------------------------------------------

/// Platforms, testing services and achievements under onboarding review.
pub const WORKFLOW_SUBJECTS: &[crate::workflow::hooks::Subject] = &[
    crate::workflow::hooks::Subject {
        kind: "platform",
        table: "platforms",
        status_column: "review_status",
        unit: crate::workflow::hooks::UnitOf::Column("unit_id"),
        has_joined_on: true,
        searchable: true,
        label: |conn, id| {
            Box::pin(crate::workflow::hooks::label_by(
                conn,
                "SELECT name FROM platforms WHERE id = $1",
                id,
            ))
        },
    },
    crate::workflow::hooks::Subject {
        kind: "service",
        table: "services",
        status_column: "review_status",
        unit: crate::workflow::hooks::UnitOf::Column("unit_id"),
        has_joined_on: false,
        searchable: true,
        label: |conn, id| {
            Box::pin(crate::workflow::hooks::label_by(
                conn,
                "SELECT name FROM services WHERE id = $1",
                id,
            ))
        },
    },
    crate::workflow::hooks::Subject {
        kind: "achievement",
        table: "achievements",
        status_column: "review_status",
        unit: crate::workflow::hooks::UnitOf::Column("unit_id"),
        has_joined_on: false,
        searchable: true,
        label: |conn, id| {
            Box::pin(crate::workflow::hooks::label_by(
                conn,
                "SELECT title FROM achievements WHERE id = $1",
                id,
            ))
        },
    },
];
