//! Roles as the console manages them: custom roles with their permissions, and the roles
//! each user holds. Built-in roles are kept in step with the code by `sync_builtin_roles`.

use serde::Serialize;

use crate::store::WriteQuery;
use crate::{
    error::{AppError, Result, on_unique},
    store::Db,
};

/// A role with its permissions and how many users hold it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RoleRow {
    pub id: i64,
    pub key: String,
    pub name: String,
    pub description: String,
    #[sqlx(try_from = "crate::store::Flag")]
    pub builtin: bool,
    #[sqlx(skip)]
    pub permissions: Vec<String>,
    pub user_count: i64,
}

/// Every role, built-in ones first.
pub async fn list_roles(db: &Db) -> Result<Vec<RoleRow>> {
    let mut roles: Vec<RoleRow> = sqlx::query_as(
        "SELECT r.id, r.key, r.name, r.description, r.builtin, \
         (SELECT COUNT(*) FROM user_roles ur WHERE ur.role_id = r.id) AS user_count \
         FROM roles r ORDER BY r.builtin DESC, r.id",
    )
    .fetch_all(&db.pool)
    .await?;
    for role in &mut roles {
        role.permissions = sqlx::query_scalar(
            "SELECT permission FROM role_permissions WHERE role_id = $1 ORDER BY permission",
        )
        .bind(role.id)
        .fetch_all(&db.pool)
        .await?;
    }
    Ok(roles)
}

/// One role, or `NotFound`.
pub async fn find_role(db: &Db, id: i64) -> Result<RoleRow> {
    list_roles(db)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(AppError::NotFound)
}

/// The keys of the roles a user holds.
pub async fn role_keys(db: &Db, user_id: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT r.key FROM roles r JOIN user_roles ur ON ur.role_id = r.id WHERE ur.user_id = $1",
    )
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?)
}

/// Give a user exactly the roles named by `keys`; unknown keys are skipped.
pub async fn set_user_roles(db: &Db, user_id: i64, keys: &[String]) -> Result<()> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    for key in keys {
        let role_id: Option<i64> = sqlx::query_scalar("SELECT id FROM roles WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(role_id) = role_id {
            sqlx::query("INSERT INTO user_roles (user_id, role_id) VALUES ($1, $2)")
                .bind(user_id)
                .bind(role_id)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn save_permissions(
    conn: &mut crate::store::Conn,
    role_id: i64,
    perms: &[String],
) -> Result<()> {
    sqlx::query("DELETE FROM role_permissions WHERE role_id = $1")
        .bind(role_id)
        .execute(&mut *conn)
        .await?;
    for p in perms {
        sqlx::query("INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2)")
            .bind(role_id)
            .bind(p)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Create a custom role with its permissions; a taken key is a field error on `key`.
pub async fn create_role(
    db: &Db,
    key: &str,
    name: &str,
    description: &str,
    perms: &[String],
    now: i64,
) -> Result<i64> {
    let mut tx = db.begin_write().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO roles (key, name, description, builtin, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(key)
    .bind(name)
    .bind(description)
    .bind(0i64)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| on_unique(e, "key", "该角色标识已存在"))?;
    save_permissions(&mut tx, id, perms).await?;
    tx.commit().await?;
    Ok(id)
}

/// Rename a custom role and replace its permissions.
pub async fn update_role(
    db: &Db,
    id: i64,
    name: &str,
    description: &str,
    perms: &[String],
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE roles SET name = $1, description = $2 WHERE id = $3")
        .bind(name)
        .bind(description)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    save_permissions(&mut tx, id, perms).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn delete_role(db: &Db, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM roles WHERE id = $1")
        .bind(id)
        .write(db)
        .await?;
    Ok(())
}
