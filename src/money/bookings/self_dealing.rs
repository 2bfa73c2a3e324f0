//! Self-dealing (关联交易): vouchers on a booking between units that share a member need a
//! platform decision.

#[allow(unused_imports)]
use super::*;

/// Self-dealing (关联交易): when the booking unit and the instrument's unit share a member,
/// vouchers need a platform decision on the booking (`allow_vouchers_despite_shared_member`);
/// otherwise 422 `self_dealing`.
pub(super) async fn refuse_self_dealing(
    conn: &mut crate::store::Conn,
    id: i64,
    unit_id: i64,
    managing_unit_id: i64,
) -> Result<()> {
    let shared: Option<(i64,)> = sqlx::query_as(
        "SELECT a.user_id FROM unit_members a JOIN unit_members m ON m.user_id = a.user_id \
         WHERE a.unit_id = $1 AND m.unit_id = $2 LIMIT 1",
    )
    .bind(unit_id)
    .bind(managing_unit_id)
    .fetch_optional(&mut *conn)
    .await?;
    if shared.is_none() {
        return Ok(());
    }
    let allowed: Option<i64> =
        sqlx::query_scalar("SELECT voucher_exception_by FROM bookings WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    if allowed.is_some() {
        return Ok(());
    }
    Err(AppError::unprocessable(
        "self_dealing",
        "预约单位与仪器所属单位有共同成员（关联交易），须经平台管理员审核同意后才能使用创新券",
    ))
}

/// The platform's decision (创新券管理员, `voucher.manage`) that a booking whose units share a
/// member may still be paid with vouchers; the reason is kept on the booking. Only before
/// the booking is confirmed.
pub async fn allow_vouchers_despite_shared_member(
    db: &Db,
    user: &CurrentUser,
    id: i64,
    reason: &str,
    now: i64,
) -> Result<()> {
    user.require(crate::auth::Permission::VoucherManage)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AppError::field("reason", "请说明允许使用创新券的理由"));
    }
    let mut tx = db.begin_write().await?;
    let b = load(&mut tx, id).await?;
    if !matches!(b.status.as_str(), "requested" | "quoted") {
        return Err(wrong_state(&b.status, "审核关联交易"));
    }
    sqlx::query("UPDATE bookings SET voucher_exception_by = $1, voucher_exception_reason = $2, voucher_exception_at = $3 WHERE id = $4")
        .bind(user.id)
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
