//! Data docking (数据对接): API clients of other systems — a name, scopes, an expiry, a token
//! stored only as its hash and shown once, revocation — the log of their calls, and the
//! scoped reads in national field names (`/api/v1/docking/…`).

use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::Row;

use super::{Site, national};
use crate::{
    error::{AppError, FieldErrors, Result},
    store::{Db, WriteQuery},
};

pub const SCOPES: [(&str, &str); 4] = [
    ("read:instruments", "读取仪器信息"),
    ("read:service_records", "读取服务记录"),
    ("read:statistics", "读取统计数据"),
    ("write:reports", "提交上报数据"),
];

/// The docking routes (called with a client token, not a user's) and the scope each needs.
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/docking/instruments", "read:instruments"),
    (
        "GET",
        "/api/v1/docking/service-records",
        "read:service_records",
    ),
    ("GET", "/api/v1/docking/statistics", "read:statistics"),
    ("POST", "/api/v1/docking/reports", "write:reports"),
    ("GET", "/api/v1/docking/reports/{id}", "write:reports"),
    (
        "POST",
        "/api/v1/docking/reports/{id}/submit",
        "write:reports",
    ),
];

/// The scope a docking route needs; `None` for routes that are not docking routes.
pub fn scope_of(method: &str, path: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, s)| *s)
}

#[derive(Debug, Clone, Serialize)]
pub struct Client {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
    /// The managing unit a `write:reports` client reports for.
    pub unit_id: Option<i64>,
}

impl Client {
    pub fn to_json(&self) -> Value {
        let t = |v: Option<i64>| v.map(crate::clock::rfc3339);
        json!({
            "id": self.id, "name": self.name, "scopes": self.scopes,
            "expires_at": t(self.expires_at), "revoked_at": t(self.revoked_at),
            "last_used_at": t(self.last_used_at), "created_at": crate::clock::rfc3339(self.created_at),
            "unit_id": self.unit_id,
        })
    }
}

/// Parse an expiry: RFC 3339, or a date (valid through that day, Asia/Shanghai); blank: none.
pub fn parse_expiry(raw: &str) -> std::result::Result<Option<i64>, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.timestamp()));
    }
    let d = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| "有效期应为 YYYY-MM-DD 日期或 RFC 3339 时间")?;
    use chrono::TimeZone;
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&d.and_hms_opt(23, 59, 59).unwrap_or_default())
        .earliest()
        .map(|t| Some(t.timestamp()))
        .ok_or("有效期无效")
}

/// Create a client; returns its id and its token (shown once, only the hash is kept). A
/// client holding `write:reports` reports for one certified managing unit (`unit_id`).
pub async fn create(
    db: &Db,
    name: &str,
    scopes: &[String],
    expires_at: &str,
    unit_id: Option<i64>,
    created_by: i64,
    now: i64,
) -> Result<(i64, String)> {
    let mut e = FieldErrors::new();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        e.insert("name".into(), "请填写客户端名称（100 字以内）".into());
    }
    let mut scopes: Vec<String> = scopes.iter().map(|s| s.trim().to_string()).collect();
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        e.insert("scopes".into(), "请至少选择一项权限范围".into());
    } else if let Some(bad) = scopes.iter().find(|s| !SCOPES.iter().any(|(k, _)| k == s)) {
        e.insert("scopes".into(), format!("未知的权限范围：{bad}"));
    }
    let expires = match parse_expiry(expires_at) {
        Ok(Some(t)) if t <= now => {
            e.insert("expires_at".into(), "有效期应晚于现在".into());
            None
        }
        Ok(t) => t,
        Err(msg) => {
            e.insert("expires_at".into(), msg.into());
            None
        }
    };
    let unit_id = if scopes.iter().any(|s| s == "write:reports") {
        match unit_id {
            Some(u) if is_reporting_unit(db, u).await? => Some(u),
            _ => {
                e.insert(
                    "unit_id".into(),
                    "“提交上报数据”须指定一个已认证的管理单位".into(),
                );
                None
            }
        }
    } else {
        None
    };
    if let Some(err) = AppError::fields(e) {
        return Err(err);
    }
    let token = format!("lsd_{}", crate::auth::random_token());
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_clients (name, scopes, token_hash, expires_at, created_by, created_at, unit_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(name)
    .bind(scopes.join(" "))
    .bind(crate::auth::token_hash(&token))
    .bind(expires)
    .bind(created_by)
    .bind(now)
    .bind(unit_id)
    .write(db)
    .await?;
    Ok((id, token))
}

async fn is_reporting_unit(db: &Db, unit_id: i64) -> Result<bool> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM units WHERE id = $1 AND kind = 'managing' AND certification_status = 'certified'",
    )
    .bind(unit_id)
    .fetch_one(&db.pool)
    .await?
        > 0)
}

/// Certified managing units, for the unit choice of a `write:reports` client.
pub async fn reporting_units(db: &Db) -> Result<Vec<(i64, String)>> {
    Ok(sqlx::query_as(
        "SELECT id, name FROM units WHERE kind = 'managing' AND certification_status = 'certified' ORDER BY name, id",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// Whom a `write:reports` client's batches are created and submitted in the name of: the
/// unit's first manager (so returns and decisions reach a person of the unit). 409 when the
/// unit has no manager.
pub async fn reporting_user(db: &Db, unit_id: i64) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT m.user_id FROM unit_members m JOIN users u ON u.id = m.user_id \
         WHERE m.unit_id = $1 AND m.role = 'manager' AND u.is_active = $2 ORDER BY m.user_id LIMIT 1",
    )
    .bind(unit_id)
    .bind(1i64)
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| {
        AppError::conflict(
            "no_unit_manager",
            "该单位没有可用的管理员账号，无法通过对接接口上报",
        )
    })
}

/// The per-client rate limit: at most `per_minute` admitted calls (429s not counted) in the
/// last 60 s, counted in the access log, so the limit holds across nodes. `Err(seconds)`
/// until the next call is admitted. `per_minute` 0: unlimited.
pub async fn rate_check(
    db: &Db,
    client_id: i64,
    per_minute: u32,
    now: i64,
) -> Result<std::result::Result<(), i64>> {
    if per_minute == 0 {
        return Ok(Ok(()));
    }
    let recent: Vec<i64> = sqlx::query_scalar(
        "SELECT at FROM api_client_calls WHERE client_id = $1 AND at > $2 AND status <> 429 \
         ORDER BY at DESC LIMIT $3",
    )
    .bind(client_id)
    .bind(now - 60)
    .bind(per_minute as i64)
    .fetch_all(&db.pool)
    .await?;
    match recent.last() {
        Some(oldest) if recent.len() >= per_minute as usize => Ok(Err((oldest + 60 - now).max(1))),
        _ => Ok(Ok(())),
    }
}

fn client_from(r: &sqlx::any::AnyRow) -> Client {
    Client {
        id: r.get("id"),
        name: r.get("name"),
        scopes: r
            .get::<String, _>("scopes")
            .split_whitespace()
            .map(String::from)
            .collect(),
        expires_at: r.get("expires_at"),
        revoked_at: r.get("revoked_at"),
        last_used_at: r.get("last_used_at"),
        created_at: r.get("created_at"),
        unit_id: r.get("unit_id"),
    }
}

const CLIENT_COLUMNS: &str =
    "id, name, scopes, expires_at, revoked_at, last_used_at, created_at, unit_id FROM api_clients";

pub async fn list(db: &Db, limit: i64, offset: i64) -> Result<(Vec<Client>, i64)> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_clients")
        .fetch_one(&db.pool)
        .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CLIENT_COLUMNS} ORDER BY id DESC LIMIT $1 OFFSET $2"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows.iter().map(client_from).collect(), total))
}

/// Revoke a client: its token is refused from the next request on.
pub async fn revoke(db: &Db, id: i64, now: i64) -> Result<()> {
    let n =
        sqlx::query("UPDATE api_clients SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(now)
            .bind(id)
            .write(db)
            .await?
            .rows_affected();
    if n == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}

/// The client a bearer token belongs to, if it is live and holds `scope`: 401 for an
/// unknown, revoked or expired token, 403 `insufficient_scope` outside its scopes.
pub async fn authorize(db: &Db, token: Option<&str>, scope: &str, now: i64) -> Result<Client> {
    let token = token.ok_or(AppError::Unauthenticated)?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CLIENT_COLUMNS} WHERE token_hash = $1"
    )))
    .bind(crate::auth::token_hash(token))
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::Unauthenticated)?;
    let c = client_from(&row);
    if c.revoked_at.is_some() || c.expires_at.is_some_and(|t| t <= now) {
        return Err(AppError::Unauthenticated);
    }
    if !c.scopes.iter().any(|s| s == scope) {
        return Err(AppError::Forbidden {
            code: "insufficient_scope",
        });
    }
    sqlx::query("UPDATE api_clients SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(c.id)
        .write(db)
        .await?;
    Ok(c)
}

/// The client id of a token, live or not (for the access log of refused calls).
pub async fn client_of(db: &Db, token: &str) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM api_clients WHERE token_hash = $1")
            .bind(crate::auth::token_hash(token))
            .fetch_optional(&db.pool)
            .await?,
    )
}

pub async fn log_call(
    db: &Db,
    client_id: Option<i64>,
    method: &str,
    path: &str,
    status: u16,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_client_calls (client_id, method, path, status, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(client_id)
    .bind(method)
    .bind(path.chars().take(500).collect::<String>())
    .bind(status as i64)
    .bind(now)
    .write(db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct Call {
    pub client_name: Option<String>,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub at: i64,
}

pub async fn calls(db: &Db, limit: i64, offset: i64) -> Result<(Vec<Call>, i64)> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_client_calls")
        .fetch_one(&db.pool)
        .await?;
    let rows = sqlx::query(
        "SELECT c.name, l.method, l.path, l.status, l.at FROM api_client_calls l \
         LEFT JOIN api_clients c ON c.id = l.client_id ORDER BY l.id DESC LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok((
        rows.iter()
            .map(|r| Call {
                client_name: r.get("name"),
                method: r.get("method"),
                path: r.get("path"),
                status: r.get("status"),
                at: r.get("at"),
            })
            .collect(),
        total,
    ))
}

/// Docking reads: approved reportable instruments, or service records, changed at or after
/// `since`, oldest change first, in national field names with the unit's `insCode`.
pub async fn read(
    db: &Db,
    kind: &str,
    since: i64,
    limit: i64,
    offset: i64,
    site: &Site,
) -> Result<(Vec<Value>, i64)> {
    let instruments = kind == "instruments";
    // Instruments: approved and reportable ($1 the threshold); service records: all completed.
    let (from, wh, order, cols) = if instruments {
        (
            "instruments i JOIN units u ON u.id = i.unit_id",
            "i.review_status = 'approved' AND i.value_fen >= $1 AND i.updated_at >= $2",
            "i.updated_at, i.id",
            format!(
                "{}, u.credit_code, i.updated_at AS changed_at",
                super::INSTRUMENT_SOURCE
            ),
        )
    } else {
        (
            "service_records sr JOIN bookings b ON b.id = sr.booking_id \
             JOIN instruments i ON i.id = sr.instrument_id JOIN units uu ON uu.id = sr.user_unit_id \
             JOIN units u ON u.id = sr.managing_unit_id LEFT JOIN users us ON us.id = b.user_id",
            "sr.created_at >= $2 AND $1 = 0",
            "sr.created_at, sr.id",
            format!(
                "{}, u.credit_code, sr.created_at AS changed_at",
                super::SERVICE_SOURCE
            ),
        )
    };
    let min = if instruments {
        national::reportable_min_fen()
    } else {
        0
    };
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {from} WHERE {wh}"
    )))
    .bind(min)
    .bind(since)
    .fetch_one(&db.pool)
    .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {cols} FROM {from} WHERE {wh} ORDER BY {order} LIMIT $3 OFFSET $4"
    )))
    .bind(min)
    .bind(since)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    let items = rows
        .iter()
        .map(|r| {
            let source = if instruments {
                super::instrument_source(r, site)
            } else {
                super::service_source(r)
            };
            let (mut n, _) = national::map(kind, &source);
            let mut out = Map::new();
            n.insert("insCode".into(), json!(r.get::<String, _>("credit_code")));
            out.insert("id".into(), json!(r.get::<i64, _>("id")));
            out.insert(
                "updated_at".into(),
                json!(crate::clock::rfc3339(r.get("changed_at"))),
            );
            out.insert("national".into(), Value::Object(n));
            Value::Object(out)
        })
        .collect();
    Ok((items, total))
}
