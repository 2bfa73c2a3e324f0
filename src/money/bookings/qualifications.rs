//! Qualifications (培训/资质): an instrument may require one; its managing unit records who is
//! qualified and until when; a booking by anyone else is refused (422
//! `qualification_required`) — they may ask for training instead, a booking of kind
//! `training` the managing unit confirms.

use chrono::NaiveDate;
use serde::Serialize;

use crate::{
    auth::CurrentUser,
    error::{AppError, Result},
    store::Db,
};

async fn managing_unit(conn: &mut crate::store::Conn, instrument_id: i64) -> Result<i64> {
    sqlx::query_scalar("SELECT unit_id FROM instruments WHERE id = $1")
        .bind(instrument_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(AppError::NotFound)
}

/// Whether the instrument requires a qualification (its managing unit decides).
pub async fn set_required(
    db: &Db,
    user: &CurrentUser,
    instrument_id: i64,
    required: bool,
    now: i64,
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let unit = managing_unit(&mut tx, instrument_id).await?;
    user.require_unit(unit)?;
    sqlx::query(
        "UPDATE instruments SET requires_qualification = $1, updated_at = $2 WHERE id = $3",
    )
    .bind(required as i64)
    .bind(now)
    .bind(instrument_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A recorded qualification.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Qualification {
    pub id: i64,
    pub instrument_id: i64,
    pub user_id: i64,
    pub display_name: String,
    pub username: String,
    pub expires_on: String,
}

/// Record (or renew) that `user_id` is qualified on the instrument until `expires_on`.
pub async fn grant(
    db: &Db,
    user: &CurrentUser,
    instrument_id: i64,
    user_id: i64,
    expires_on: &str,
    today: NaiveDate,
    now: i64,
) -> Result<Qualification> {
    let expires = NaiveDate::parse_from_str(expires_on.trim(), "%Y-%m-%d")
        .ok()
        .filter(|d| (2000..=2099).contains(&chrono::Datelike::year(d)))
        .ok_or_else(|| AppError::field("expires_on", "有效期应为 YYYY-MM-DD（2000–2099 年）"))?;
    if expires < today {
        return Err(AppError::field("expires_on", "有效期不能早于今天"));
    }
    let mut tx = db.begin_write().await?;
    let unit = managing_unit(&mut tx, instrument_id).await?;
    user.require_unit(unit)?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(AppError::field("user_id", "用户不存在"));
    }
    let e = expires.to_string();
    let updated = sqlx::query(
        "UPDATE instrument_qualifications SET expires_on = $1, granted_by = $2, created_at = $3 \
         WHERE instrument_id = $4 AND user_id = $5",
    )
    .bind(&e)
    .bind(user.id)
    .bind(now)
    .bind(instrument_id)
    .bind(user_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        sqlx::query(
            "INSERT INTO instrument_qualifications (instrument_id, user_id, expires_on, granted_by, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(instrument_id)
        .bind(user_id)
        .bind(&e)
        .bind(user.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let q = one(&mut tx, instrument_id, user_id).await?;
    tx.commit().await?;
    Ok(q)
}

async fn one(
    conn: &mut crate::store::Conn,
    instrument_id: i64,
    user_id: i64,
) -> Result<Qualification> {
    Ok(sqlx::query_as(
        "SELECT q.id, q.instrument_id, q.user_id, u.display_name, u.username, q.expires_on \
         FROM instrument_qualifications q JOIN users u ON u.id = q.user_id \
         WHERE q.instrument_id = $1 AND q.user_id = $2",
    )
    .bind(instrument_id)
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await?)
}

/// The instrument's qualified users (for its managing unit), by expiry.
pub async fn list(db: &Db, user: &CurrentUser, instrument_id: i64) -> Result<Vec<Qualification>> {
    let mut conn = db.acquire().await?;
    let unit = managing_unit(&mut conn, instrument_id).await?;
    user.require_unit(unit)?;
    Ok(sqlx::query_as(
        "SELECT q.id, q.instrument_id, q.user_id, u.display_name, u.username, q.expires_on \
         FROM instrument_qualifications q JOIN users u ON u.id = q.user_id \
         WHERE q.instrument_id = $1 ORDER BY q.expires_on, q.id LIMIT 500",
    )
    .bind(instrument_id)
    .fetch_all(&mut conn)
    .await?)
}

/// Whether the instrument requires a qualification (outside a transaction).
pub async fn is_required(db: &Db, instrument_id: i64) -> Result<bool> {
    let mut conn = db.acquire().await?;
    required(&mut conn, instrument_id).await
}

/// Whether the instrument requires a qualification.
pub async fn required(conn: &mut crate::store::Conn, instrument_id: i64) -> Result<bool> {
    let r: Option<i64> =
        sqlx::query_scalar("SELECT requires_qualification FROM instruments WHERE id = $1")
            .bind(instrument_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(r.unwrap_or(0) != 0)
}

/// 422 `qualification_required` unless the instrument needs none or the user holds one valid
/// on `day` (the booking's date).
pub async fn ensure_qualified(
    conn: &mut crate::store::Conn,
    instrument_id: i64,
    user_id: i64,
    day: NaiveDate,
) -> Result<()> {
    if !required(conn, instrument_id).await? {
        return Ok(());
    }
    let ok: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM instrument_qualifications WHERE instrument_id = $1 AND user_id = $2 AND expires_on >= $3",
    )
    .bind(instrument_id)
    .bind(user_id)
    .bind(day.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    if ok.is_some() {
        Ok(())
    } else {
        Err(AppError::unprocessable(
            "qualification_required",
            "该仪器须经培训取得使用资质后才能预约；您可以先申请培训",
        ))
    }
}

/// The managing unit confirms a training booking (no price, no vouchers).
pub async fn confirm_training(db: &Db, user: &CurrentUser, id: i64, now: i64) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let b = super::load(&mut tx, id).await?;
    user.require_unit(b.managing_unit_id)?;
    if b.kind != "training" {
        return Err(AppError::unprocessable(
            "not_training",
            "只有培训预约由管理单位直接确认",
        ));
    }
    if !super::transition(&mut tx, id, "requested", "confirmed", now).await? {
        return Err(super::wrong_state(&b.status, "确认培训"));
    }
    sqlx::query("UPDATE bookings SET price_fen = 0 WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Whether bookings of the instrument may span several days (its managing unit decides).
pub async fn set_multi_day(
    db: &Db,
    user: &CurrentUser,
    instrument_id: i64,
    allowed: bool,
    now: i64,
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let unit = managing_unit(&mut tx, instrument_id).await?;
    user.require_unit(unit)?;
    sqlx::query("UPDATE instruments SET multi_day = $1, updated_at = $2 WHERE id = $3")
        .bind(allowed as i64)
        .bind(now)
        .bind(instrument_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The instrument's booking settings of this module.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Settings {
    #[sqlx(try_from = "crate::store::Flag")]
    pub requires_qualification: bool,
    #[sqlx(try_from = "crate::store::Flag")]
    pub multi_day: bool,
}

pub async fn settings(db: &Db, instrument_id: i64) -> Result<Settings> {
    sqlx::query_as("SELECT requires_qualification, multi_day FROM instruments WHERE id = $1")
        .bind(instrument_id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)
}

/// Refuse unless the user manages the instrument's unit.
pub async fn ensure_manages(db: &Db, user: &CurrentUser, instrument_id: i64) -> Result<()> {
    let mut conn = db.acquire().await?;
    let unit = managing_unit(&mut conn, instrument_id).await?;
    user.require_unit(unit)
}
