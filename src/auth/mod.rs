//! Accounts (账户): users, passwords (argon2id), server-side sessions, API tokens, login
//! throttling, roles and unit membership. Nothing here knows about HTTP.

pub mod permissions;
pub mod roles;
pub mod scope;

use std::collections::{BTreeMap, BTreeSet};

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier},
};
use base64::Engine as _;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use self::{
    permissions::{BUILTIN_ROLES, Permission, builtin_role},
    roles::{RoleRow, list_roles},
};
use crate::store::WriteQuery;
use crate::{
    domain::valid_email,
    error::{AppError, FieldErrors, Result, on_unique},
    store::Db,
};

/// How long a browser session lives without use, and at most.
pub const SESSION_IDLE_SECS: i64 = 8 * 3600;
pub const SESSION_MAX_SECS: i64 = 7 * 24 * 3600;
/// How long an API bearer token from `POST /session` lives.
pub const API_TOKEN_SECS: i64 = 24 * 3600;
/// Failed logins per account and address within the window before it locks.
pub const THROTTLE_MAX_FAILURES: i64 = 5;
pub const THROTTLE_WINDOW_SECS: i64 = 15 * 60;

pub fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing password: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A random opaque token (256 bits), URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Tokens are stored only as their SHA-256.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Rules for a new password, shared by registration and password change.
pub fn check_password_strength(password: &str) -> Option<&'static str> {
    if password.chars().count() < 8 {
        return Some("密码至少 8 位");
    }
    if password.chars().count() > 128 {
        return Some("密码不能超过 128 位");
    }
    let has_letter = password.chars().any(|c| c.is_alphabetic());
    let has_digit = password.chars().any(|c| c.is_ascii_digit());
    if !(has_letter && has_digit) {
        return Some("密码需同时包含字母和数字");
    }
    None
}

/// What someone registering supplies.
#[derive(Debug, Default, Clone, serde::Deserialize, Serialize)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

impl NewUser {
    /// Validate and normalise; field errors are in Chinese.
    pub fn validate(&mut self) -> Result<()> {
        let mut errors = FieldErrors::new();
        self.username = self.username.trim().to_string();
        self.display_name = self.display_name.trim().to_string();
        let uname_ok = self
            .username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if self.username.len() < 3 || self.username.len() > 32 || !uname_ok {
            errors.insert(
                "username".into(),
                "用户名为 3–32 位字母、数字、下划线、点或连字符".into(),
            );
        }
        if let Some(msg) = check_password_strength(&self.password) {
            errors.insert("password".into(), msg.into());
        }
        if self.display_name.is_empty() {
            self.display_name = self.username.clone();
        }
        if self.display_name.chars().count() > 50 {
            errors.insert("display_name".into(), "姓名不能超过 50 个字".into());
        }
        self.email = self
            .email
            .take()
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty());
        if let Some(email) = &self.email
            && !valid_email(email)
        {
            errors.insert("email".into(), "请输入有效的电子邮箱".into());
        }
        self.phone = self
            .phone
            .take()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty());
        if let Some(phone) = &self.phone {
            match crate::domain::Mobile::parse(phone) {
                Ok(m) => self.phone = Some(m.as_str().to_string()),
                Err(msg) => {
                    errors.insert("phone".into(), msg.into());
                }
            }
        }
        match AppError::fields(errors) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Create a user with the given built-in or custom roles. Returns the new id.
pub async fn create_user(db: &Db, mut new: NewUser, roles: &[&str], now: i64) -> Result<i64> {
    new.validate()?;
    let hash = hash_password(&new.password)?;
    let mut tx = db.begin_write().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, display_name, email, phone, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&new.username)
    .bind(&hash)
    .bind(&new.display_name)
    .bind(&new.email)
    .bind(&new.phone)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match on_unique(e, "username", "该用户名已被注册") {
        AppError::Validation { message, .. } => AppError::Conflict {
            code: "username_taken",
            message,
        },
        other => other,
    })?;
    for role in roles {
        let role_id: Option<i64> = sqlx::query_scalar("SELECT id FROM roles WHERE key = $1")
            .bind(*role)
            .fetch_optional(&mut *tx)
            .await?;
        let role_id =
            role_id.ok_or_else(|| AppError::field("role", format!("未知角色：{role}")))?;
        sqlx::query("INSERT INTO user_roles (user_id, role_id) VALUES ($1, $2)")
            .bind(id)
            .bind(role_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(id)
}

/// Make sure the built-in roles exist with exactly their code-defined permissions.
pub async fn sync_builtin_roles(db: &Db, now: i64) -> Result<()> {
    let mut tx = db.begin_write().await?;
    for role in &BUILTIN_ROLES {
        let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM roles WHERE key = $1")
            .bind(role.key)
            .fetch_optional(&mut *tx)
            .await?;
        let id = match existing {
            Some(id) => {
                sqlx::query(
                    "UPDATE roles SET name = $1, description = $2, builtin = $3 WHERE id = $4",
                )
                .bind(role.name)
                .bind(role.description)
                .bind(1i64)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                id
            }
            None => {
                sqlx::query_scalar(
                    "INSERT INTO roles (key, name, description, builtin, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(role.key)
                .bind(role.name)
                .bind(role.description)
                .bind(1i64)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        sqlx::query("DELETE FROM role_permissions WHERE role_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for p in role.permissions {
            sqlx::query("INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2)")
                .bind(id)
                .bind(p.key())
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// A unit the user belongs to, with their role inside it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Membership {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub role: String,
    /// The unit's certification status (`draft|pending|certified|rejected`).
    #[serde(skip)]
    pub certification_status: String,
}

/// The signed-in user as every request sees them.
#[derive(Clone, Debug, Serialize)]
pub struct CurrentUser {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub role_names: Vec<String>,
    /// Effective permissions: the global roles' plus those any certified unit of theirs gives
    /// (see [`scope`]). "May do this somewhere": route tables, the sidebar and `require` use it.
    pub permissions: BTreeSet<String>,
    /// What the global roles alone give (platform staff; any unit the user manages).
    #[serde(skip)]
    pub global_permissions: BTreeSet<String>,
    /// Per unit, what that certified unit gives its manager, scoped to that unit only.
    #[serde(skip)]
    pub unit_permissions: BTreeMap<i64, BTreeSet<String>>,
    pub units: Vec<Membership>,
}

impl CurrentUser {
    /// Whether the user may do `p` somewhere (globally, or for one of their certified units).
    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(p.key())
    }

    /// Whether the user may do `p` for this unit: they manage it, and either a global role or
    /// the unit itself (certified) gives `p`.
    pub fn can_for(&self, p: Permission, unit_id: i64) -> bool {
        self.acts_for(unit_id, true)
            && (self.global_permissions.contains(p.key())
                || self
                    .unit_permissions
                    .get(&unit_id)
                    .is_some_and(|ps| ps.contains(p.key())))
    }

    /// Refuse unless the user may do `p` for this unit ([`CurrentUser::can_for`]):
    /// `not_unit_member` when they do not manage it, plain 403 when it gives them no `p`.
    pub fn require_for(&self, p: Permission, unit_id: i64) -> Result<()> {
        self.require_unit(unit_id)?;
        if self.can_for(p, unit_id) {
            Ok(())
        } else {
            Err(AppError::forbidden())
        }
    }

    /// The units the user may do `p` for, as (id, name).
    pub fn units_for(&self, p: Permission) -> Vec<(i64, String)> {
        self.units
            .iter()
            .filter(|m| self.can_for(p, m.id))
            .map(|m| (m.id, m.name.clone()))
            .collect()
    }

    /// Refuse unless the user holds the permission.
    pub fn require(&self, p: Permission) -> Result<()> {
        if self.can(p) {
            Ok(())
        } else {
            Err(AppError::forbidden())
        }
    }

    pub fn has_role(&self, key: &str) -> bool {
        self.roles.iter().any(|r| r == key)
    }

    /// "Acts for this unit": the user is a member of the unit (a manager when `manage`).
    pub fn acts_for(&self, unit_id: i64, manage: bool) -> bool {
        self.units
            .iter()
            .any(|m| m.id == unit_id && (!manage || m.role == "manager"))
    }

    /// Refuse unless the user may act for the unit. Platform-wide reviewers are not members,
    /// so they do not pass this check: review happens through their own permissions.
    pub fn require_unit(&self, unit_id: i64) -> Result<()> {
        if self.acts_for(unit_id, true) {
            Ok(())
        } else {
            Err(AppError::Forbidden {
                code: "not_unit_member",
            })
        }
    }
}

/// A user's own columns, as `load_user` reads them.
#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    email: Option<String>,
}

/// A role's key and name.
#[derive(sqlx::FromRow)]
struct RoleName {
    key: String,
    name: String,
}

/// Load a user with roles, permissions and units; `None` if missing or disabled.
pub async fn load_user(db: &Db, user_id: i64) -> Result<Option<CurrentUser>> {
    let row: Option<UserRow> = sqlx::query_as(
        "SELECT id, username, display_name, email FROM users WHERE id = $1 AND is_active = $2",
    )
    .bind(user_id)
    .bind(1i64)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let roles: Vec<RoleName> = sqlx::query_as(
        "SELECT r.key, r.name FROM roles r JOIN user_roles ur ON ur.role_id = r.id \
         WHERE ur.user_id = $1 ORDER BY r.id",
    )
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?;
    let global: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT rp.permission FROM role_permissions rp \
         JOIN user_roles ur ON ur.role_id = rp.role_id WHERE ur.user_id = $1",
    )
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?;
    let units: Vec<Membership> = sqlx::query_as(
        "SELECT u.id, u.name, u.kind, m.role, u.certification_status FROM unit_members m \
         JOIN units u ON u.id = m.unit_id WHERE m.user_id = $1 ORDER BY u.id",
    )
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?;
    let global_permissions: BTreeSet<String> = global.into_iter().collect();
    let unit_permissions = scope::unit_grants(&units);
    let mut permissions = global_permissions.clone();
    for ps in unit_permissions.values() {
        permissions.extend(ps.iter().cloned());
    }
    Ok(Some(CurrentUser {
        id: row.id,
        username: row.username,
        display_name: row.display_name,
        email: row.email,
        roles: roles.iter().map(|r| r.key.clone()).collect(),
        role_names: roles.into_iter().map(|r| r.name).collect(),
        permissions,
        global_permissions,
        unit_permissions,
        units,
    }))
}

/// The id of the user with this username, if any.
pub async fn user_id_by_username(db: &Db, username: &str) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&db.pool)
            .await?,
    )
}

/// Whether a user with this id exists (active or not).
pub async fn user_exists(db: &Db, user_id: i64) -> Result<bool> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(id.is_some())
}

/// A user as the console's user list shows them.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct UserSummary {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    #[sqlx(try_from = "crate::store::Flag")]
    pub is_active: bool,
    pub created_at: i64,
}

/// Whether any account exists (an empty database needs its first system admin).
pub async fn has_users(db: &Db) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&db.pool)
        .await?;
    Ok(n > 0)
}

/// Users whose username or name contains `q`, by id: (total, one page).
pub async fn search_users(
    db: &Db,
    q: &str,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<UserSummary>)> {
    let pattern = format!("%{}%", q.trim());
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE username LIKE $1 OR display_name LIKE $1",
    )
    .bind(&pattern)
    .fetch_one(&db.pool)
    .await?;
    let users = sqlx::query_as(
        "SELECT id, username, display_name, email, is_active, created_at FROM users \
         WHERE username LIKE $1 OR display_name LIKE $1 ORDER BY id LIMIT $2 OFFSET $3",
    )
    .bind(&pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok((total, users))
}

/// Check a username and password, with throttling per account and address.
/// Returns the user id on success.
pub async fn authenticate(
    db: &Db,
    username: &str,
    password: &str,
    ip: &str,
    now: i64,
) -> Result<i64> {
    let username = username.trim();
    if username.chars().any(char::is_control) {
        // No account has such a name (and PostgreSQL refuses NUL in text).
        return Err(AppError::InvalidCredentials);
    }
    let since = now - THROTTLE_WINDOW_SECS;
    // Record the attempt first, then count, in one write transaction: parallel attempts for
    // one account and address cannot all see a count below the limit. SQLite serialises
    // write transactions; on PostgreSQL a transaction-scoped advisory lock on the pair does.
    let mut tx = db.begin_write().await?;
    if db.backend == crate::store::Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("login:{}:{username}:{ip}", username.len()))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DELETE FROM login_failures WHERE username = $1 AND ip = $2 AND at <= $3")
        .bind(username)
        .bind(ip)
        .bind(since)
        .execute(&mut *tx)
        .await?;
    let attempt: i64 = sqlx::query_scalar(
        "INSERT INTO login_failures (username, ip, at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(username)
    .bind(ip)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let attempts: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM login_failures WHERE username = $1 AND ip = $2 AND at > $3",
    )
    .bind(username)
    .bind(ip)
    .bind(since)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    if attempts > THROTTLE_MAX_FAILURES {
        return Err(AppError::TooManyRequests {
            message: format!(
                "登录失败次数过多，该账号在此地址已被暂时锁定，请 {} 分钟后再试",
                THROTTLE_WINDOW_SECS / 60
            ),
        });
    }
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT id, password_hash FROM users WHERE username = $1 AND is_active = $2",
    )
    .bind(username)
    .bind(1i64)
    .fetch_optional(&db.pool)
    .await?;
    // Verify against a fixed hash when the user is unknown, so timing reveals nothing.
    let (id, hash) = match row {
        Some((id, hash)) => (Some(id), hash),
        None => (None, decoy_hash().to_string()),
    };
    let pw = password.to_string();
    let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    match (id, ok) {
        (Some(id), true) => {
            // A success forgives the failures before it (and this attempt's own record).
            sqlx::query("DELETE FROM login_failures WHERE username = $1 AND ip = $2 AND id <= $3")
                .bind(username)
                .bind(ip)
                .bind(attempt)
                .write(db)
                .await?;
            Ok(id)
        }
        // The attempt is already recorded as a failure.
        _ => Err(AppError::InvalidCredentials),
    }
}

fn decoy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not-a-real-password-0").unwrap_or_default())
}

/// A new browser session: returns (cookie token, csrf token).
pub async fn create_session(db: &Db, user_id: i64, now: i64) -> Result<(String, String)> {
    let token = random_token();
    let csrf = random_token();
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $4)",
    )
    .bind(token_hash(&token))
    .bind(user_id)
    .bind(&csrf)
    .bind(now)
    .bind(now + SESSION_MAX_SECS)
    .write(db)
    .await?;
    Ok((token, csrf))
}

/// A live session: (user id, csrf token). Touches `last_seen_at` at most once a minute.
pub async fn find_session(db: &Db, token: &str, now: i64) -> Result<Option<(i64, String)>> {
    let hash = token_hash(token);
    let row: Option<(i64, String, i64)> = sqlx::query_as(
        "SELECT user_id, csrf_token, last_seen_at FROM sessions \
         WHERE token_hash = $1 AND expires_at > $2 AND last_seen_at > $3",
    )
    .bind(&hash)
    .bind(now)
    .bind(now - SESSION_IDLE_SECS)
    .fetch_optional(&db.pool)
    .await?;
    let Some((user_id, csrf_token, last_seen)) = row else {
        return Ok(None);
    };
    if now - last_seen > 60 {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(now)
            .bind(&hash)
            .write(db)
            .await?;
    }
    Ok(Some((user_id, csrf_token)))
}

pub async fn delete_session(db: &Db, token: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash(token))
        .write(db)
        .await?;
    Ok(())
}

/// A bearer token for the API; stored hashed, expiring.
pub async fn create_api_token(db: &Db, user_id: i64, label: &str, now: i64) -> Result<String> {
    let token = random_token();
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, user_id, label, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash(&token))
    .bind(user_id)
    .bind(label)
    .bind(now)
    .bind(now + API_TOKEN_SECS)
    .write(db)
    .await?;
    Ok(token)
}

pub async fn find_api_token(db: &Db, token: &str, now: i64) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT user_id FROM api_tokens WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(token_hash(token))
    .bind(now)
    .fetch_optional(&db.pool)
    .await?)
}

pub async fn delete_api_token(db: &Db, token: &str) -> Result<()> {
    sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1")
        .bind(token_hash(token))
        .write(db)
        .await?;
    Ok(())
}

/// Change a password after checking the current one; ends the user's other sessions.
pub async fn change_password(
    db: &Db,
    user_id: i64,
    current: &str,
    new: &str,
    keep_session: Option<&str>,
    now: i64,
) -> Result<()> {
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut errors = FieldErrors::new();
    if !verify_password(current, &hash) {
        errors.insert("current_password".into(), "当前密码不正确".into());
    }
    if let Some(msg) = check_password_strength(new) {
        errors.insert("new_password".into(), msg.into());
    } else if current == new {
        errors.insert("new_password".into(), "新密码不能与当前密码相同".into());
    }
    if let Some(e) = AppError::fields(errors) {
        return Err(e);
    }
    let new_hash = hash_password(new)?;
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
        .bind(&new_hash)
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let keep = keep_session.map(token_hash).unwrap_or_default();
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id)
        .bind(&keep)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM api_tokens WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash_password("correct horse 1").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse 1", &h));
        assert!(!verify_password("correct horse 2", &h));
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        assert_eq!(check_password_strength("short1"), Some("密码至少 8 位"));
        assert_eq!(
            check_password_strength("onlyletters"),
            Some("密码需同时包含字母和数字")
        );
        assert_eq!(check_password_strength("letters123"), None);
    }

    #[test]
    fn tokens_are_long_random_and_stored_hashed() {
        let a = random_token();
        let b = random_token();
        assert_ne!(a, b);
        assert!(a.len() >= 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
