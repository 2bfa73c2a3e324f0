//! Units (单位): managing units (管理单位, supply side) and user units (用户单位, demand side),
//! their members and the "acts for this unit" rule. Membership beyond the creator is by
//! invitation and consent ([`invitations`]).

pub mod invitations;

use crate::{
    domain::{CreditCode, Mobile},
    error::{AppError, FieldErrors, Result, on_unique},
    store::Db,
};
use serde::{Deserialize, Serialize};

pub const KINDS: [(&str, &str); 2] = [("managing", "管理单位"), ("user", "用户单位")];
pub const ENTERPRISE_TYPES: [(&str, &str); 4] = [
    ("high_tech", "国家高新技术企业"),
    ("tech_sme", "科技型中小企业"),
    ("innovation_team", "创新团队"),
    ("other", "其他"),
];
pub const NATURES: [&str; 6] = [
    "高等院校",
    "科研院所",
    "企业",
    "医疗机构",
    "检验检测机构",
    "其他",
];

pub fn certification_label(status: &str) -> &'static str {
    match status {
        "draft" => "未提交",
        "pending" => "审核中",
        "certified" => "已认证",
        "rejected" => "未通过",
        _ => "未知",
    }
}

/// What `POST /units` and the console form accept.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct NewUnit {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub nature: String,
    #[serde(default)]
    pub credit_code: String,
    #[serde(default)]
    pub contact_name: String,
    #[serde(default)]
    pub contact_mobile: String,
    #[serde(default)]
    pub enterprise_type: Option<String>,
    #[serde(default, deserialize_with = "crate::units::lenient_bool")]
    pub dishonest: bool,
    #[serde(default, deserialize_with = "crate::units::lenient_bool")]
    pub abnormal_operation: bool,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub intro: Option<String>,
}

/// Accept JSON booleans and the strings an HTML checkbox sends.
pub fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        B(bool),
        S(String),
    }
    Ok(match Option::<B>::deserialize(d)? {
        Some(B::B(b)) => b,
        Some(B::S(s)) => matches!(s.as_str(), "1" | "true" | "on" | "yes" | "是"),
        None => false,
    })
}

impl NewUnit {
    pub fn validate(&mut self) -> Result<()> {
        let mut errors = FieldErrors::new();
        self.name = self.name.trim().to_string();
        if self.name.chars().count() < 2 || self.name.chars().count() > 100 {
            errors.insert("name".into(), "请填写单位全称（2–100 字）".into());
        }
        if !KINDS.iter().any(|(k, _)| *k == self.kind) {
            errors.insert("kind".into(), "请选择单位类型：管理单位或用户单位".into());
        }
        self.nature = self.nature.trim().to_string();
        if self.nature.is_empty() {
            errors.insert("nature".into(), "请填写单位性质".into());
        }
        match CreditCode::parse(&self.credit_code) {
            Ok(c) => self.credit_code = c.as_str().to_string(),
            Err(msg) => {
                errors.insert("credit_code".into(), msg.into());
            }
        }
        self.contact_name = self.contact_name.trim().to_string();
        if self.contact_name.is_empty() {
            errors.insert("contact_name".into(), "请填写联系人".into());
        }
        match Mobile::parse(&self.contact_mobile) {
            Ok(m) => self.contact_mobile = m.as_str().to_string(),
            Err(msg) => {
                errors.insert("contact_mobile".into(), msg.into());
            }
        }
        let et = self
            .enterprise_type
            .clone()
            .unwrap_or_else(|| "other".into());
        if !ENTERPRISE_TYPES.iter().any(|(k, _)| *k == et) {
            errors.insert("enterprise_type".into(), "企业类型不正确".into());
        }
        self.enterprise_type = Some(et);
        match AppError::fields(errors) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Create a unit in `draft`; the creator becomes its manager.
pub async fn create(db: &Db, mut new: NewUnit, creator: i64, now: i64) -> Result<i64> {
    new.validate()?;
    let mut tx = db.begin_write().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO units (name, kind, nature, credit_code, contact_name, contact_mobile, \
         enterprise_type, dishonest, abnormal_operation, city, address, intro, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING id",
    )
    .bind(&new.name)
    .bind(&new.kind)
    .bind(&new.nature)
    .bind(&new.credit_code)
    .bind(&new.contact_name)
    .bind(&new.contact_mobile)
    .bind(new.enterprise_type.as_deref().unwrap_or("other"))
    .bind(new.dishonest as i64)
    .bind(new.abnormal_operation as i64)
    .bind(new.city.as_deref().filter(|c| !c.trim().is_empty()).unwrap_or("许昌市"))
    .bind(new.address.as_deref().unwrap_or(""))
    .bind(new.intro.as_deref().unwrap_or(""))
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        let msg = e.to_string();
        if msg.contains("credit_code") {
            on_unique(e, "credit_code", "该统一社会信用代码已登记")
        } else {
            on_unique(e, "name", "该单位名称已登记")
        }
    })?;
    add_member(&mut tx, id, creator, "manager", now).await?;
    sqlx::query(
        "INSERT INTO membership_log (unit_id, user_id, action, role, actor_id, at) \
         VALUES ($1, $2, 'created', 'manager', $2, $3)",
    )
    .bind(id)
    .bind(creator)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    crate::search::enqueue(&mut tx, "unit", id).await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn add_member(
    conn: &mut crate::store::Conn,
    unit_id: i64,
    user_id: i64,
    role: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO unit_members (unit_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(unit_id)
    .bind(user_id)
    .bind(role)
    .bind(now)
    .execute(conn)
    .await
    .map_err(|e| on_unique(e, "username", "该用户已是本单位成员"))?;
    Ok(())
}

/// A unit as the API and pages show it.
#[derive(Debug, Clone, Serialize)]
pub struct Unit {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub kind_label: &'static str,
    pub nature: String,
    pub credit_code: String,
    pub contact_name: String,
    pub contact_mobile: String,
    pub enterprise_type: String,
    pub enterprise_type_label: &'static str,
    pub dishonest: bool,
    pub abnormal_operation: bool,
    pub certification_status: String,
    pub certification_label: &'static str,
    pub city: String,
    pub address: String,
    pub intro: String,
    pub joined_on: Option<String>,
}

const UNIT_COLUMNS: &str = "id, name, kind, nature, credit_code, contact_name, contact_mobile, \
    enterprise_type, dishonest, abnormal_operation, certification_status, city, address, intro, joined_on";

/// A `units` row as stored; [`Unit`] adds the labels.
#[derive(sqlx::FromRow)]
struct UnitRow {
    id: i64,
    name: String,
    kind: String,
    nature: String,
    credit_code: String,
    contact_name: String,
    contact_mobile: String,
    enterprise_type: String,
    #[sqlx(try_from = "crate::store::Flag")]
    dishonest: bool,
    #[sqlx(try_from = "crate::store::Flag")]
    abnormal_operation: bool,
    certification_status: String,
    city: String,
    address: String,
    intro: String,
    joined_on: Option<String>,
}

impl From<UnitRow> for Unit {
    fn from(r: UnitRow) -> Unit {
        Unit {
            id: r.id,
            name: r.name,
            kind_label: KINDS
                .iter()
                .find(|(k, _)| *k == r.kind)
                .map(|(_, l)| *l)
                .unwrap_or(""),
            kind: r.kind,
            nature: r.nature,
            credit_code: r.credit_code,
            contact_name: r.contact_name,
            contact_mobile: r.contact_mobile,
            enterprise_type_label: ENTERPRISE_TYPES
                .iter()
                .find(|(k, _)| *k == r.enterprise_type)
                .map(|(_, l)| *l)
                .unwrap_or(""),
            enterprise_type: r.enterprise_type,
            dishonest: r.dishonest,
            abnormal_operation: r.abnormal_operation,
            certification_label: certification_label(&r.certification_status),
            certification_status: r.certification_status,
            city: r.city,
            address: r.address,
            intro: r.intro,
            joined_on: r.joined_on,
        }
    }
}

pub async fn get(db: &Db, id: i64) -> Result<Unit> {
    let sql = format!("SELECT {UNIT_COLUMNS} FROM units WHERE id = $1");
    let row: UnitRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(row.into())
}

/// A unit's certification status (`draft`, `pending`, `certified`, `rejected`).
pub async fn certification_status(db: &Db, id: i64) -> Result<String> {
    Ok(
        sqlx::query_scalar("SELECT certification_status FROM units WHERE id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await?,
    )
}

/// A unit's name.
pub async fn name(db: &Db, id: i64) -> Result<String> {
    Ok(sqlx::query_scalar("SELECT name FROM units WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await?)
}

/// A member of a unit as the console lists them.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Member {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: String,
}

/// A unit's members, oldest first.
pub async fn members(db: &Db, unit_id: i64) -> Result<Vec<Member>> {
    Ok(sqlx::query_as(
        "SELECT u.id, u.username, u.display_name, u.email, m.role FROM unit_members m \
         JOIN users u ON u.id = m.user_id WHERE m.unit_id = $1 ORDER BY m.created_at, u.id",
    )
    .bind(unit_id)
    .fetch_all(&db.pool)
    .await?)
}

/// Certified managing units (服务机构) for the portal, with their approved instrument counts.
pub async fn list_service_orgs(
    db: &Db,
    offset: i64,
    limit: i64,
) -> Result<(Vec<serde_json::Value>, i64)> {
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM units WHERE kind = 'managing' AND certification_status = 'certified'",
    )
    .fetch_one(&db.pool)
    .await?;
    let sql = format!(
        "SELECT {UNIT_COLUMNS}, (SELECT COUNT(*) FROM instruments i WHERE i.unit_id = units.id \
         AND i.review_status = 'approved') AS instrument_count FROM units \
         WHERE kind = 'managing' AND certification_status = 'certified' ORDER BY id LIMIT $1 OFFSET $2"
    );
    #[derive(sqlx::FromRow)]
    struct ServiceOrgRow {
        #[sqlx(flatten)]
        unit: UnitRow,
        instrument_count: i64,
    }
    let rows: Vec<ServiceOrgRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(limit)
        .bind(offset)
        .fetch_all(&db.pool)
        .await?;
    let items = rows
        .into_iter()
        .map(|r| {
            let mut v = serde_json::to_value(Unit::from(r.unit)).unwrap_or_default();
            v["instrument_count"] = r.instrument_count.into();
            v
        })
        .collect();
    Ok((items, total))
}

/// Units a user belongs to.
pub async fn for_user(db: &Db, user_id: i64) -> Result<Vec<Unit>> {
    let sql = format!(
        "SELECT {UNIT_COLUMNS} FROM units WHERE id IN (SELECT unit_id FROM unit_members WHERE user_id = $1) ORDER BY id"
    );
    let rows: Vec<UnitRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user_id)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.into_iter().map(Unit::from).collect())
}

/// Contact details a unit manager may change on their own unit.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ContactUpdate {
    #[serde(default)]
    pub contact_name: String,
    #[serde(default)]
    pub contact_mobile: String,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub intro: Option<String>,
}

pub async fn update_contact(db: &Db, id: i64, upd: ContactUpdate, now: i64) -> Result<()> {
    let mut errors = FieldErrors::new();
    let name = upd.contact_name.trim().to_string();
    if name.is_empty() {
        errors.insert("contact_name".into(), "请填写联系人".into());
    }
    let mobile = match Mobile::parse(&upd.contact_mobile) {
        Ok(m) => m.as_str().to_string(),
        Err(msg) => {
            errors.insert("contact_mobile".into(), msg.into());
            String::new()
        }
    };
    if let Some(e) = AppError::fields(errors) {
        return Err(e);
    }
    let mut tx = db.begin_write().await?;
    let n = sqlx::query(
        "UPDATE units SET contact_name = $1, contact_mobile = $2, address = COALESCE($3, address), \
         intro = COALESCE($4, intro), updated_at = $5 WHERE id = $6",
    )
    .bind(&name)
    .bind(&mobile)
    .bind(upd.address)
    .bind(upd.intro)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(AppError::NotFound);
    }
    // A certified service organisation's address and intro are searchable.
    crate::search::enqueue(&mut tx, "unit", id).await?;
    tx.commit().await?;
    Ok(())
}

/// Revoke a unit's certification (撤销认证, `unit.review`): the unit is no longer certified
/// (status `rejected`, it may apply again), so what it gave its managers ends with their next
/// request; certified managing units also leave the portal and search. Recorded in the
/// hash-chained decision log with the reason.
pub async fn revoke_certification(
    db: &Db,
    actor: &crate::auth::CurrentUser,
    id: i64,
    reason: &str,
    now: i64,
) -> Result<()> {
    actor.require(crate::auth::Permission::UnitReview)?;
    get(db, id).await?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(AppError::field(
            "reason",
            "请填写撤销认证的原因（不超过 500 字）",
        ));
    }
    let mut tx = db.begin_write().await?;
    let n = sqlx::query(
        "UPDATE units SET certification_status = 'rejected', updated_at = $1 \
         WHERE id = $2 AND certification_status = 'certified'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(AppError::conflict(
            "not_certified",
            "该单位当前不是已认证状态",
        ));
    }
    let data = serde_json::json!({"unit_id": id}).to_string();
    crate::workflow::audit::append(
        &mut tx,
        crate::workflow::audit::Entry {
            instance_id: 0,
            at: now,
            actor_id: Some(actor.id),
            workflow_key: "unit_certification",
            version: 0,
            state: "certified",
            action: "revoke",
            to_state: "rejected",
            comment: reason,
            data: &data,
        },
    )
    .await?;
    crate::search::enqueue(&mut tx, "unit", id).await?;
    tx.commit().await?;
    Ok(())
}

// ---- as a workflow subject ---------------------------------------------------------------

/// Units under certification review (单位认证).
pub const WORKFLOW_SUBJECTS: &[crate::workflow::hooks::Subject] =
    &[crate::workflow::hooks::Subject {
        kind: "unit",
        table: "units",
        status_column: "certification_status",
        unit: crate::workflow::hooks::UnitOf::Itself,
        has_joined_on: true,
        searchable: true,
        label: |conn, id| {
            Box::pin(crate::workflow::hooks::label_by(
                conn,
                "SELECT name FROM units WHERE id = $1",
                id,
            ))
        },
    }];
