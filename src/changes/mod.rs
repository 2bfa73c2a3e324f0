//! Change requests (变更申请) and retirements (下线/报废) of approved records: instruments,
//! platforms, services and achievements. While a request runs its flow (`record_change`,
//! `record_retirement`) the record keeps its approved values, so the portal and the search
//! index (both read the record) show them; approval writes the new values, or takes the record
//! off, in the deciding transaction ([`hooks`]). A rejected request leaves the record as it was.

mod hooks;

use serde::Serialize;
use serde_json::{Map, Value, json};

pub use self::hooks::{WORKFLOW_HOOKS, WORKFLOW_SUBJECTS};
use crate::{
    auth::{CurrentUser, Permission},
    error::{AppError, Result},
    instruments::{self, InstrumentInput},
    records,
    resources::Kind,
    store::Db,
    workflow::Engine,
};

/// What a request is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Instrument,
    Record(Kind),
}

impl Target {
    pub fn key(self) -> &'static str {
        match self {
            Target::Instrument => "instrument",
            Target::Record(Kind::Platform) => "platform",
            Target::Record(Kind::Service) => "service",
            Target::Record(Kind::Achievement) => "achievement",
        }
    }

    pub fn parse(key: &str) -> Option<Target> {
        Some(match key {
            "instrument" => Target::Instrument,
            "platform" => Target::Record(Kind::Platform),
            "service" => Target::Record(Kind::Service),
            "achievement" => Target::Record(Kind::Achievement),
            _ => return None,
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            Target::Instrument => "科研仪器",
            Target::Record(k) => k.label(),
        }
    }

    /// The record's public page.
    pub fn public_path(self, id: i64) -> String {
        match self {
            Target::Instrument => format!("/instruments/{id}"),
            Target::Record(k) => format!("{}/{id}", k.path()),
        }
    }
}

/// Instrument fields beyond the import template's columns, with their labels.
const INSTRUMENT_EXTRA_LABELS: [(&str, &str); 6] = [
    ("slot_minutes", "预约时段（分钟）"),
    ("min_lead_hours", "提前预约（小时）"),
    ("max_days_ahead", "最远可预约（天）"),
    ("max_duration_hours", "单次最长使用（小时）"),
    ("annual_running_hours", "年运行机时"),
    ("annual_service_hours", "年服务机时"),
];

/// Field name → label, in the order people read a record.
fn labels(target: Target) -> Vec<(&'static str, &'static str)> {
    match target {
        Target::Instrument => crate::spreadsheets::COLUMNS
            .iter()
            .map(|(h, f)| (*f, h.trim_end_matches('*')))
            .chain(INSTRUMENT_EXTRA_LABELS)
            .collect(),
        Target::Record(k) => records::fields(k)
            .iter()
            .map(|f| (f.name, f.label))
            .collect(),
    }
}

/// A value as people read it (booleans as 是/否).
fn show(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Bool(b)) => if *b { "是" } else { "否" }.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// One field that changes.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FieldChange {
    pub field: String,
    pub label: String,
    pub before: String,
    pub after: String,
}

/// The fields whose shown value differs, in reading order.
pub fn diff(
    target: Target,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Vec<FieldChange> {
    labels(target)
        .into_iter()
        .filter_map(|(field, label)| {
            let (b, a) = (show(before.get(field)), show(after.get(field)));
            (b != a).then(|| FieldChange {
                field: field.into(),
                label: label.into(),
                before: b,
                after: a,
            })
        })
        .collect()
}

/// A change request or retirement as pages and the API show it.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub id: i64,
    /// `change` or `retirement`.
    pub kind: String,
    pub kind_label: &'static str,
    pub record_type: String,
    pub record_id: i64,
    pub record_label: &'static str,
    pub public_path: String,
    pub unit_id: i64,
    pub status: String,
    pub status_label: &'static str,
    pub title: String,
    pub reason: String,
    pub requested_by: i64,
    pub created_at: i64,
    pub diff: Vec<FieldChange>,
    #[serde(skip)]
    pub after: Map<String, Value>,
}

pub fn status_label(status: &str) -> &'static str {
    match status {
        "pending" => "审核中",
        "approved" => "已通过",
        "rejected" => "未通过",
        "withdrawn" => "已撤回",
        _ => "未知",
    }
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    id: i64,
    kind: String,
    record_type: String,
    record_id: i64,
    unit_id: i64,
    status: String,
    title: String,
    before_json: String,
    after_json: String,
    reason: String,
    requested_by: i64,
    created_at: i64,
}

const CHANGE_COLUMNS: &str = "id, kind, record_type, record_id, unit_id, status, title, \
    before_json, after_json, reason, requested_by, created_at";

fn object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

impl From<ChangeRow> for Change {
    fn from(r: ChangeRow) -> Change {
        let target = Target::parse(&r.record_type).unwrap_or(Target::Instrument);
        let (before, after) = (object(&r.before_json), object(&r.after_json));
        Change {
            diff: if r.kind == "change" {
                diff(target, &before, &after)
            } else {
                Vec::new()
            },
            kind_label: if r.kind == "change" {
                "变更申请"
            } else {
                "下线报废"
            },
            record_label: target.label(),
            public_path: target.public_path(r.record_id),
            status_label: status_label(&r.status),
            id: r.id,
            kind: r.kind,
            record_type: r.record_type,
            record_id: r.record_id,
            unit_id: r.unit_id,
            status: r.status,
            title: r.title,
            reason: r.reason,
            requested_by: r.requested_by,
            created_at: r.created_at,
            after,
        }
    }
}

pub async fn get(db: &Db, id: i64) -> Result<Change> {
    let sql = format!("SELECT {CHANGE_COLUMNS} FROM record_changes WHERE id = $1");
    let row: ChangeRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(row.into())
}

/// A record's requests, newest first (its change history).
pub async fn for_record(db: &Db, target: Target, id: i64) -> Result<Vec<Change>> {
    let sql = format!(
        "SELECT {CHANGE_COLUMNS} FROM record_changes WHERE record_type = $1 AND record_id = $2 \
         ORDER BY id DESC LIMIT 50"
    );
    let rows: Vec<ChangeRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(target.key())
        .bind(id)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.into_iter().map(Change::from).collect())
}

/// A request that was started: its id and the flow's instance.
#[derive(Clone, Debug, Serialize)]
pub struct Requested {
    pub change_id: i64,
    pub instance_id: i64,
    pub state: String,
}

/// The approved record as a snapshot (field → value), its unit and its name.
async fn snapshot(
    db: &Db,
    target: Target,
    id: i64,
) -> Result<(Map<String, Value>, i64, String, String)> {
    Ok(match target {
        Target::Instrument => {
            let i = instruments::get(db, id).await?;
            let extra = instruments::extras(db, id).await?;
            let input = InstrumentInput::from_record(&i, &extra);
            (as_map(&input)?, i.unit_id, i.name, i.review_status)
        }
        Target::Record(k) => {
            let r = records::get(db, k, id).await?;
            let map = r
                .values
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            (map, r.unit_id, r.title, r.review_status)
        }
    })
}

fn as_map(input: &InstrumentInput) -> Result<Map<String, Value>> {
    match serde_json::to_value(input).map_err(anyhow::Error::from)? {
        Value::Object(mut m) => {
            m.remove("unit_id");
            Ok(m)
        }
        _ => Ok(Map::new()),
    }
}

/// The record as it will be: the patch over the snapshot, validated as a whole (field errors
/// in Chinese, 422). The unit never changes.
fn merged(
    target: Target,
    unit_id: i64,
    before: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Map<String, Value>> {
    let mut m = before.clone();
    for (k, v) in patch {
        if k != "unit_id" && labels(target).iter().any(|(f, _)| f == k) {
            m.insert(k.clone(), v.clone());
        }
    }
    match target {
        Target::Instrument => {
            let mut full = m.clone();
            full.insert("unit_id".into(), json!(unit_id));
            let input: InstrumentInput =
                serde_json::from_value(Value::Object(full)).map_err(|e| {
                    AppError::unprocessable("invalid_body", format!("请求字段不正确：{e}"))
                })?;
            let valid = input.validate()?;
            as_map(&valid.input)
        }
        Target::Record(k) => {
            let raw = records::raw_from_json(&Value::Object(m));
            records::check(k, &raw)?;
            Ok(raw
                .into_iter()
                .map(|(k, v)| (k, Value::String(v.trim().to_string())))
                .collect())
        }
    }
}

fn ensure_approved(target: Target, status: &str) -> Result<()> {
    match status {
        "approved" => Ok(()),
        "retired" => Err(AppError::conflict(
            if target == Target::Instrument {
                "instrument_retired"
            } else {
                "record_retired"
            },
            "该记录已下线",
        )),
        _ => Err(AppError::conflict(
            "not_approved",
            "只有已审核入网的记录才能提交变更或下线申请",
        )),
    }
}

/// Insert the request and start its flow in one transaction; a second open request on the
/// same record is `409 change_pending`.
#[allow(clippy::too_many_arguments)]
async fn start(
    engine: &Engine,
    user: &CurrentUser,
    target: Target,
    id: i64,
    unit_id: i64,
    kind: &str,
    title: String,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    reason: &str,
    now: i64,
) -> Result<Requested> {
    let mut tx = engine.db().begin_write().await?;
    let change_id: i64 = sqlx::query_scalar(
        "INSERT INTO record_changes (kind, record_type, record_id, unit_id, status, title, \
         before_json, after_json, reason, requested_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $10) RETURNING id",
    )
    .bind(kind)
    .bind(target.key())
    .bind(id)
    .bind(unit_id)
    .bind(&title)
    .bind(Value::Object(before.clone()).to_string())
    .bind(Value::Object(after.clone()).to_string())
    .bind(reason)
    .bind(user.id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if crate::store::is_unique_violation(&e) {
            AppError::conflict(
                "change_pending",
                "该记录已有一项变更或下线申请在审核中，请等待审核结束",
            )
        } else {
            AppError::Database(e)
        }
    })?;
    let flow = if kind == "change" {
        "record_change"
    } else {
        "record_retirement"
    };
    let data =
        json!({"title": title, "record_type": target.key(), "record_id": id, "unit_id": unit_id});
    let started = engine
        .start_in(&mut tx, flow, "record_change", change_id, user.id, data)
        .await?;
    tx.commit().await?;
    Ok(Requested {
        change_id,
        instance_id: started.instance_id,
        state: started.state,
    })
}

/// Request a change of an approved record (`PATCH` on it): `None` when the patch changes no
/// reviewed field. The caller may edit drafts in place instead.
pub async fn request_change(
    engine: &Engine,
    user: &CurrentUser,
    target: Target,
    id: i64,
    patch: &Map<String, Value>,
    now: i64,
) -> Result<Option<Requested>> {
    let (before, unit_id, name, status) = snapshot(engine.db(), target, id).await?;
    user.require_for(Permission::InstrumentManage, unit_id)?;
    ensure_approved(target, &status)?;
    let after = merged(target, unit_id, &before, patch)?;
    if diff(target, &before, &after).is_empty() {
        return Ok(None);
    }
    let title = format!("{}变更：{name}", target.label());
    start(
        engine, user, target, id, unit_id, "change", title, &before, &after, "", now,
    )
    .await
    .map(Some)
}

/// Request the retirement (下线/报废) of an approved record, with a reason.
pub async fn request_retirement(
    engine: &Engine,
    user: &CurrentUser,
    target: Target,
    id: i64,
    reason: &str,
    now: i64,
) -> Result<Requested> {
    let (before, unit_id, name, status) = snapshot(engine.db(), target, id).await?;
    user.require_for(Permission::InstrumentManage, unit_id)?;
    ensure_approved(target, &status)?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(AppError::field("reason", "请填写下线原因（不超过 500 字）"));
    }
    let title = format!("{}下线：{name}", target.label());
    start(
        engine,
        user,
        target,
        id,
        unit_id,
        "retirement",
        title,
        &before,
        &before,
        reason,
        now,
    )
    .await
}
