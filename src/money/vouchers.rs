//! Innovation vouchers (创新券): one account per unit and year with an append-only ledger
//! (grant, reserve, release, redeem, expire). The available balance is always the sum of the
//! ledger's `delta_fen`; every change first locks the account row, so concurrent
//! confirmations can never overspend.

use serde::Serialize;

use crate::{
    domain::Yuan,
    error::{AppError, Result},
    store::Db,
};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Balance {
    pub year: i64,
    pub quota: Yuan,
    /// Reserved or redeemed (what the unit spent or holds for confirmed bookings).
    pub used: Yuan,
    /// What the yearly close took back (未使用额度作废); not spent.
    pub expired: Yuan,
    pub available: Yuan,
}

/// Lock the (unit, year) account for the rest of the transaction; false if it has no account.
async fn lock(conn: &mut crate::store::Conn, unit_id: i64, year: i64) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE voucher_accounts SET lock_version = lock_version + 1 WHERE unit_id = $1 AND year = $2",
    )
    .bind(unit_id)
    .bind(year)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

async fn available_fen(conn: &mut crate::store::Conn, unit_id: i64, year: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(delta_fen), 0) AS BIGINT) FROM voucher_ledger WHERE unit_id = $1 AND year = $2",
    )
    .bind(unit_id)
    .bind(year)
    .fetch_one(&mut *conn)
    .await?)
}

#[allow(clippy::too_many_arguments)] // one ledger row's columns
async fn entry(
    conn: &mut crate::store::Conn,
    unit_id: i64,
    year: i64,
    kind: &str,
    amount_fen: i64,
    delta_fen: i64,
    booking_id: Option<i64>,
    note: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO voucher_ledger (unit_id, year, kind, amount_fen, delta_fen, booking_id, note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(unit_id)
    .bind(year)
    .bind(kind)
    .bind(amount_fen)
    .bind(delta_fen)
    .bind(booking_id)
    .bind(note)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Record that a booking's reserved vouchers were redeemed (兑付通过): the amount leaves the
/// reservation for good; the available balance does not change.
pub async fn redeem(
    conn: &mut crate::store::Conn,
    unit_id: i64,
    year: i64,
    amount_fen: i64,
    booking_id: i64,
    now: i64,
) -> Result<()> {
    entry(
        conn,
        unit_id,
        year,
        "redeem",
        amount_fen,
        0,
        Some(booking_id),
        "兑付通过",
        now,
    )
    .await
}

/// Grant a unit its yearly quota (once per year; a second grant changes nothing).
/// Returns the quota granted, or `None` if the account already existed.
pub async fn grant(
    conn: &mut crate::store::Conn,
    unit_id: i64,
    year: i64,
    quota: Yuan,
    policy_version_id: i64,
    now: i64,
) -> Result<Option<Yuan>> {
    if lock(conn, unit_id, year).await? {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO voucher_accounts (unit_id, year, quota_fen, granted_at, policy_version_id) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(unit_id)
    .bind(year)
    .bind(quota.fen())
    .bind(now)
    .bind(policy_version_id)
    .execute(&mut *conn)
    .await?;
    entry(
        conn,
        unit_id,
        year,
        "grant",
        quota.fen(),
        quota.fen(),
        None,
        "年度额度",
        now,
    )
    .await?;
    Ok(Some(quota))
}

/// Reserve vouchers for a booking; refuses with `voucher_quota_exceeded` past the balance.
pub async fn reserve(
    conn: &mut crate::store::Conn,
    unit_id: i64,
    year: i64,
    amount: Yuan,
    booking_id: i64,
    now: i64,
) -> Result<()> {
    if amount == Yuan::ZERO {
        return Ok(());
    }
    if !lock(conn, unit_id, year).await? {
        return Err(AppError::unprocessable(
            "voucher_quota_exceeded",
            format!("本单位 {year} 年度尚未获得创新券额度，请先申请创新券"),
        ));
    }
    let available = available_fen(conn, unit_id, year).await?;
    if amount.fen() > available {
        return Err(AppError::unprocessable(
            "voucher_quota_exceeded",
            format!(
                "创新券可用额度不足：本次 {amount} 元，{year} 年度可用 {} 元",
                Yuan::from_fen(available)
            ),
        ));
    }
    entry(
        conn,
        unit_id,
        year,
        "reserve",
        amount.fen(),
        -amount.fen(),
        Some(booking_id),
        "预约确认",
        now,
    )
    .await
}

/// Release a booking's reservation (cancellation).
pub async fn release(
    conn: &mut crate::store::Conn,
    unit_id: i64,
    year: i64,
    amount: Yuan,
    booking_id: i64,
    now: i64,
) -> Result<()> {
    if amount == Yuan::ZERO {
        return Ok(());
    }
    lock(conn, unit_id, year).await?;
    entry(
        conn,
        unit_id,
        year,
        "release",
        amount.fen(),
        amount.fen(),
        Some(booking_id),
        "预约取消",
        now,
    )
    .await
}

/// Expire what is still available in a closed year (yearly close); returns the fen expired.
pub async fn expire(
    conn: &mut crate::store::Conn,
    unit_id: i64,
    year: i64,
    now: i64,
) -> Result<i64> {
    if !lock(conn, unit_id, year).await? {
        return Ok(0);
    }
    let available = available_fen(conn, unit_id, year).await?;
    if available > 0 {
        entry(
            conn,
            unit_id,
            year,
            "expire",
            available,
            -available,
            None,
            "年度结转，未使用额度作废",
            now,
        )
        .await?;
    }
    Ok(available.max(0))
}

/// The account's quota, used, expired and available amounts: `quota = used + expired +
/// available`, where `expired` is what the yearly close took back.
pub async fn balance(db: &Db, unit_id: i64, year: i64) -> Result<Balance> {
    let quota: Option<i64> = sqlx::query_scalar(
        "SELECT quota_fen FROM voucher_accounts WHERE unit_id = $1 AND year = $2",
    )
    .bind(unit_id)
    .bind(year)
    .fetch_optional(&db.pool)
    .await?;
    let mut conn = db.acquire().await?;
    let available = available_fen(&mut conn, unit_id, year).await?;
    let expired: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM voucher_ledger \
         WHERE unit_id = $1 AND year = $2 AND kind = 'expire'",
    )
    .bind(unit_id)
    .bind(year)
    .fetch_one(&mut conn)
    .await?;
    let quota = quota.unwrap_or(0);
    Ok(Balance {
        year,
        quota: Yuan::from_fen(quota),
        used: Yuan::from_fen((quota - available - expired).max(0)),
        expired: Yuan::from_fen(expired),
        available: Yuan::from_fen(available),
    })
}

/// The ledger, newest first.
pub async fn ledger(db: &Db, unit_id: i64, year: i64) -> Result<Vec<serde_json::Value>> {
    #[derive(sqlx::FromRow)]
    struct Entry {
        id: i64,
        kind: String,
        amount_fen: i64,
        delta_fen: i64,
        booking_id: Option<i64>,
        note: String,
        created_at: i64,
    }
    let rows: Vec<Entry> = sqlx::query_as(
        "SELECT id, kind, amount_fen, delta_fen, booking_id, note, created_at FROM voucher_ledger \
         WHERE unit_id = $1 AND year = $2 ORDER BY id DESC",
    )
    .bind(unit_id)
    .bind(year)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| serde_json::json!({
            "id": r.id, "kind": r.kind,
            "amount": Yuan::from_fen(r.amount_fen), "delta": Yuan::from_fen(r.delta_fen).to_string(),
            "booking_id": r.booking_id, "note": r.note,
            "at": crate::clock::rfc3339(r.created_at),
        }))
        .collect())
}

/// The sum in fen of a year's ledger entries of one kind, over all units.
pub async fn year_total(db: &Db, year: i64, kind: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM voucher_ledger WHERE year = $1 AND kind = $2",
    )
    .bind(year)
    .bind(kind)
    .fetch_one(&db.pool)
    .await?)
}

/// A voucher application (创新券申领) as the admin's list shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApplicationRow {
    pub id: i64,
    pub unit_name: String,
    pub enterprise_type: String,
    pub status: String,
    pub instance_id: Option<i64>,
    pub created_at: i64,
}

/// A year's newest 200 voucher applications with their units.
pub async fn applications(db: &Db, year: i64) -> Result<Vec<ApplicationRow>> {
    Ok(sqlx::query_as(
        "SELECT a.id, u.name AS unit_name, u.enterprise_type, a.status, a.instance_id, a.created_at FROM voucher_applications a \
         JOIN units u ON u.id = a.unit_id WHERE a.year = $1 ORDER BY a.id DESC LIMIT 200",
    )
    .bind(year)
    .fetch_all(&db.pool)
    .await?)
}

/// A certified user unit applies for its yearly quota: the application is recorded and its
/// review (`voucher_application`) started in one transaction. One application per unit
/// and year (409 `already_applied`).
pub async fn apply(
    engine: &crate::workflow::Engine,
    user: &crate::auth::CurrentUser,
    unit_id: i64,
    year: i64,
    now: i64,
) -> Result<(i64, crate::workflow::Started)> {
    user.require(crate::auth::Permission::VoucherApply)?;
    let unit = crate::units::get(engine.db(), unit_id).await?;
    user.require_for(crate::auth::Permission::VoucherApply, unit.id)?;
    if unit.kind != "user" {
        return Err(AppError::unprocessable(
            "unit_not_eligible",
            "只有用户单位可以申领创新券",
        ));
    }
    if unit.certification_status != "certified" || unit.dishonest || unit.abnormal_operation {
        return Err(AppError::unprocessable(
            "unit_not_eligible",
            "单位须已通过认证，且未被列入失信名单或经营异常名录，才能申领创新券",
        ));
    }
    let mut tx = engine.db().begin_write().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO voucher_applications (unit_id, year, applicant_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(unit.id)
    .bind(year)
    .bind(user.id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if crate::store::is_unique_violation(&e) {
            AppError::conflict("already_applied", format!("本单位已申领过 {year} 年度创新券"))
        } else {
            AppError::Database(e)
        }
    })?;
    let started = engine
        .start_in(
            &mut tx,
            "voucher_application",
            "voucher_application",
            id,
            user.id,
            serde_json::json!({"year": year}),
        )
        .await?;
    sqlx::query("UPDATE voucher_applications SET instance_id = $1 WHERE id = $2")
        .bind(started.instance_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((id, started))
}
