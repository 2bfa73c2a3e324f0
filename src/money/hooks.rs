//! Workflow hooks of the money flows: `grant_voucher_quota` when a voucher application is
//! approved, `redeem_vouchers` when a redemption is approved (`release_redemption_items`
//! when it is withdrawn or rejected). Both run inside the deciding
//! transaction, so the ledger changes with the decision or not at all.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde_json::Value;
use sqlx::Row;

use super::vouchers;
use crate::{
    domain::Yuan,
    error::{AppError, Result},
    workflow::hooks::{Hook, HookCtx, Subject, UnitOf},
};

pub fn check_grant(
    subject_type: &str,
    _subject: Option<&Subject>,
    with: &BTreeMap<String, Value>,
) -> std::result::Result<(), String> {
    if subject_type != "voucher_application" {
        return Err("grant_voucher_quota 只能用于 voucher_application 流程".into());
    }
    if !with.is_empty() {
        return Err("grant_voucher_quota 不需要参数".into());
    }
    Ok(())
}

pub fn run_grant<'a, 'c>(ctx: &'a mut HookCtx<'c>) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        if ctx.dry_run {
            return Ok(());
        }
        let app = sqlx::query(
            "SELECT a.unit_id, a.year, u.enterprise_type, u.dishonest, u.abnormal_operation FROM voucher_applications a \
             JOIN units u ON u.id = a.unit_id WHERE a.id = $1",
        )
        .bind(ctx.subject_id)
        .fetch_optional(&mut *ctx.conn)
        .await?
        .ok_or(AppError::NotFound)?;
        if app.get::<i64, _>("dishonest") != 0 || app.get::<i64, _>("abnormal_operation") != 0 {
            return Err(AppError::unprocessable(
                "unit_not_eligible",
                "该单位被列为失信或经营异常单位，不能发放创新券",
            ));
        }
        let (pid, policy) = super::current_in(ctx.conn).await?;
        let quota = policy.quota_for(&app.get::<String, _>("enterprise_type"));
        if quota == Yuan::ZERO {
            return Err(AppError::unprocessable(
                "unit_not_eligible",
                "该单位的企业类型不享受创新券额度",
            ));
        }
        vouchers::grant(
            ctx.conn,
            app.get("unit_id"),
            app.get("year"),
            quota,
            pid,
            ctx.now,
        )
        .await?;
        Ok(())
    })
}

pub fn check_release(
    subject_type: &str,
    _subject: Option<&Subject>,
    with: &BTreeMap<String, Value>,
) -> std::result::Result<(), String> {
    if subject_type != "redemption" {
        return Err("release_redemption_items 只能用于 redemption 流程".into());
    }
    if !with.is_empty() {
        return Err("release_redemption_items 不需要参数".into());
    }
    Ok(())
}

/// `release_redemption_items`: a withdrawn or rejected redemption lets go of its bookings so
/// they can go into a new one; the items stay on the redemption (its history) as released.
pub fn run_release<'a, 'c>(ctx: &'a mut HookCtx<'c>) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        if ctx.dry_run {
            return Ok(());
        }
        sqlx::query(
            "UPDATE redemption_items SET released_at = $1 WHERE redemption_id = $2 AND released_at IS NULL",
        )
        .bind(ctx.now)
        .bind(ctx.subject_id)
        .execute(&mut *ctx.conn)
        .await?;
        Ok(())
    })
}

pub fn check_redeem(
    subject_type: &str,
    _subject: Option<&Subject>,
    with: &BTreeMap<String, Value>,
) -> std::result::Result<(), String> {
    if subject_type != "redemption" {
        return Err("redeem_vouchers 只能用于 redemption 流程".into());
    }
    if !with.is_empty() {
        return Err("redeem_vouchers 不需要参数".into());
    }
    Ok(())
}

/// Record a `redeem` ledger entry per booking (the reservation becomes redeemed: the
/// available balance does not change) and mark the redemption decided.
pub fn run_redeem<'a, 'c>(ctx: &'a mut HookCtx<'c>) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        if ctx.dry_run {
            return Ok(());
        }
        let items = sqlx::query(
            "SELECT ri.booking_id, ri.voucher_fen, b.unit_id, b.voucher_year FROM redemption_items ri \
             JOIN bookings b ON b.id = ri.booking_id WHERE ri.redemption_id = $1",
        )
        .bind(ctx.subject_id)
        .fetch_all(&mut *ctx.conn)
        .await?;
        for it in items {
            vouchers::redeem(
                ctx.conn,
                it.get::<i64, _>("unit_id"),
                it.get::<Option<i64>, _>("voucher_year").unwrap_or(0),
                it.get::<i64, _>("voucher_fen"),
                it.get::<i64, _>("booking_id"),
                ctx.now,
            )
            .await?;
        }
        sqlx::query("UPDATE redemptions SET decided_at = $1 WHERE id = $2")
            .bind(ctx.now)
            .bind(ctx.subject_id)
            .execute(&mut *ctx.conn)
            .await?;
        Ok(())
    })
}

pub fn check_compute_settlement(
    subject_type: &str,
    _subject: Option<&Subject>,
    with: &BTreeMap<String, Value>,
) -> std::result::Result<(), String> {
    if subject_type != "subsidy_settlement" {
        return Err("compute_settlement 只能用于 subsidy_settlement 流程".into());
    }
    if !with.is_empty() {
        return Err("compute_settlement 不需要参数".into());
    }
    Ok(())
}

/// Compute (or recompute) the settlement from the current inputs and open the units'
/// confirmation: run on entering the confirmation step, the first time and after each return.
pub fn run_compute_settlement<'a, 'c>(ctx: &'a mut HookCtx<'c>) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        if ctx.dry_run {
            return Ok(());
        }
        super::settlement::recompute(ctx.conn, ctx.subject_id, ctx.now).await
    })
}

pub fn check_record_unit_confirmation(
    subject_type: &str,
    _subject: Option<&Subject>,
    with: &BTreeMap<String, Value>,
) -> std::result::Result<(), String> {
    if subject_type != "subsidy_settlement" {
        return Err("record_unit_confirmation 只能用于 subsidy_settlement 流程".into());
    }
    if !with.is_empty() {
        return Err("record_unit_confirmation 不需要参数".into());
    }
    Ok(())
}

/// On a unit manager's decision: approve confirms their units, reject objects with the
/// comment as the reason (refused without one).
pub fn run_record_unit_confirmation<'a, 'c>(ctx: &'a mut HookCtx<'c>) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let Some(decision) = ctx.decision.clone() else {
            return Err(AppError::Internal(anyhow::anyhow!(
                "record_unit_confirmation runs only as an on_decision hook"
            )));
        };
        if ctx.dry_run {
            return Ok(());
        }
        super::settlement::record_decision(ctx.conn, ctx.subject_id, &decision, ctx.now).await
    })
}

// ---- registration ------------------------------------------------------------------------

/// The money flows' subjects: voucher applications, redemptions, yearly settlements.
pub const WORKFLOW_SUBJECTS: &[Subject] = &[
    Subject {
        kind: "voucher_application",
        table: "voucher_applications",
        status_column: "status",
        unit: UnitOf::Column("unit_id"),
        has_joined_on: false,
        searchable: false,
        label: |conn, id| {
            Box::pin(crate::workflow::hooks::label_by(
                conn,
                "SELECT u.name || ' 创新券申请（#' || CAST(a.id AS TEXT) || '）' FROM voucher_applications a JOIN units u ON u.id = a.unit_id WHERE a.id = $1",
                id,
            ))
        },
    },
    Subject {
        kind: "redemption",
        table: "redemptions",
        status_column: "status",
        unit: UnitOf::Column("managing_unit_id"),
        has_joined_on: false,
        searchable: false,
        label: |conn, id| {
            Box::pin(crate::workflow::hooks::label_by(
                conn,
                "SELECT u.name || ' 创新券兑付（#' || CAST(r.id AS TEXT) || '）' FROM redemptions r JOIN units u ON u.id = r.managing_unit_id WHERE r.id = $1",
                id,
            ))
        },
    },
    Subject {
        kind: "subsidy_settlement",
        table: "settlements",
        status_column: "status",
        unit: UnitOf::Column("unit_id"),
        has_joined_on: false,
        searchable: false,
        label: |conn, id| {
            Box::pin(crate::workflow::hooks::label_by(
                conn,
                "SELECT CAST(year AS TEXT) || ' 年度补贴结算（#' || CAST(id AS TEXT) || '）' FROM settlements WHERE id = $1",
                id,
            ))
        },
    },
];

/// The money flows' hooks.
pub const WORKFLOW_HOOKS: &[Hook] = &[
    Hook {
        name: "grant_voucher_quota",
        check: check_grant,
        run: run_grant,
    },
    Hook {
        name: "redeem_vouchers",
        check: check_redeem,
        run: run_redeem,
    },
    Hook {
        name: "release_redemption_items",
        check: check_release,
        run: run_release,
    },
    Hook {
        name: "compute_settlement",
        check: check_compute_settlement,
        run: run_compute_settlement,
    },
    Hook {
        name: "record_unit_confirmation",
        check: check_record_unit_confirmation,
        run: run_record_unit_confirmation,
    },
];
