//! The change and retirement flows' subject (`record_change`) and their hooks: approval
//! writes the requested values over the record (`apply_record_change`) or takes it off the
//! portal and search and tells those who booked it (`retire_record`).

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde_json::Value;

use super::{Target, object};
use crate::{
    error::{AppError, Result},
    instruments::{self, InstrumentInput},
    records,
    workflow::hooks::{self, Hook, HookCtx, Subject, UnitOf},
};

/// Change requests and retirements under review (变更申请、下线报废).
pub const WORKFLOW_SUBJECTS: &[Subject] = &[Subject {
    kind: "record_change",
    table: "record_changes",
    status_column: "status",
    unit: UnitOf::Column("unit_id"),
    has_joined_on: false,
    searchable: false,
    label: |conn, id| {
        Box::pin(hooks::label_by(
            conn,
            "SELECT title FROM record_changes WHERE id = $1",
            id,
        ))
    },
}];

pub const WORKFLOW_HOOKS: &[Hook] = &[
    Hook {
        name: "apply_record_change",
        check: only_on_changes,
        run: run_apply,
    },
    Hook {
        name: "retire_record",
        check: only_on_changes,
        run: run_retire,
    },
];

fn run_apply<'a, 'c>(ctx: &'a mut HookCtx<'c>) -> BoxFuture<'a, Result<()>> {
    Box::pin(apply_change(ctx))
}

fn run_retire<'a, 'c>(ctx: &'a mut HookCtx<'c>) -> BoxFuture<'a, Result<()>> {
    Box::pin(retire(ctx))
}

fn only_on_changes(
    subject_type: &str,
    _: Option<&Subject>,
    with: &BTreeMap<String, Value>,
) -> std::result::Result<(), String> {
    if subject_type != "record_change" {
        return Err(format!(
            "该钩子只用于变更申请（subject: record_change），不能用于 `{subject_type}`"
        ));
    }
    match with.keys().next() {
        Some(k) => Err(format!("该钩子不接受参数 `{k}`")),
        None => Ok(()),
    }
}

/// The request row as the hooks need it.
#[derive(sqlx::FromRow)]
struct Pending {
    kind: String,
    record_type: String,
    record_id: i64,
    after_json: String,
    reason: String,
}

async fn load(ctx: &mut HookCtx<'_>) -> Result<(Pending, Target)> {
    let row: Pending = sqlx::query_as(
        "SELECT kind, record_type, record_id, after_json, reason FROM record_changes WHERE id = $1",
    )
    .bind(ctx.subject_id)
    .fetch_optional(&mut *ctx.conn)
    .await?
    .ok_or(AppError::NotFound)?;
    let target = Target::parse(&row.record_type)
        .ok_or_else(|| anyhow::anyhow!("unknown record type {}", row.record_type))?;
    Ok((row, target))
}

async fn decided(ctx: &mut HookCtx<'_>) -> Result<()> {
    sqlx::query("UPDATE record_changes SET decided_at = $1 WHERE id = $2")
        .bind(ctx.now)
        .bind(ctx.subject_id)
        .execute(&mut *ctx.conn)
        .await?;
    Ok(())
}

fn gone() -> AppError {
    AppError::conflict(
        "not_approved",
        "该记录已不在已入网状态，申请不能生效；请驳回本申请",
    )
}

/// Write the requested values over the approved record and re-index it.
async fn apply_change(ctx: &mut HookCtx<'_>) -> Result<()> {
    if ctx.dry_run {
        return Ok(());
    }
    let (row, target) = load(ctx).await?;
    if row.kind != "change" {
        return Err(anyhow::anyhow!("apply_record_change on a {} request", row.kind).into());
    }
    let after = object(&row.after_json);
    let n = match target {
        Target::Instrument => {
            let unit_id: i64 = sqlx::query_scalar("SELECT unit_id FROM instruments WHERE id = $1")
                .bind(row.record_id)
                .fetch_one(&mut *ctx.conn)
                .await?;
            let mut full = after;
            full.insert("unit_id".into(), unit_id.into());
            let input: InstrumentInput =
                serde_json::from_value(Value::Object(full)).map_err(anyhow::Error::from)?;
            let valid = input.validate()?;
            instruments::apply_approved(ctx.conn, row.record_id, &valid, ctx.now).await?
        }
        Target::Record(k) => {
            let raw = records::raw_from_json(&Value::Object(after));
            records::apply_approved(ctx.conn, k, row.record_id, &raw, ctx.now).await?
        }
    };
    if n == 0 {
        return Err(gone());
    }
    crate::search::enqueue(ctx.conn, target.key(), row.record_id).await?;
    decided(ctx).await
}

/// Take the record off (review status `retired`): it leaves the portal and search, takes no
/// new bookings; its history (bookings, service records) stays. Everyone with a live booking
/// still to come is told.
async fn retire(ctx: &mut HookCtx<'_>) -> Result<()> {
    if ctx.dry_run {
        return Ok(());
    }
    let (row, target) = load(ctx).await?;
    let n = match target {
        Target::Instrument => sqlx::query(
            "UPDATE instruments SET review_status = 'retired', bookable = 0, retired_at = $1, \
             retired_reason = $2, updated_at = $1 WHERE id = $3 AND review_status = 'approved'",
        )
        .bind(ctx.now)
        .bind(&row.reason)
        .bind(row.record_id)
        .execute(&mut *ctx.conn)
        .await?
        .rows_affected(),
        Target::Record(k) => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {} SET review_status = 'retired', updated_at = $1 WHERE id = $2 \
             AND review_status = 'approved'",
            records::table(k)
        )))
        .bind(ctx.now)
        .bind(row.record_id)
        .execute(&mut *ctx.conn)
        .await?
        .rows_affected(),
    };
    if n == 0 {
        return Err(gone());
    }
    crate::search::enqueue(ctx.conn, target.key(), row.record_id).await?;
    if target == Target::Instrument {
        let users: Vec<(i64,)> = sqlx::query_as(
            "SELECT DISTINCT user_id FROM bookings WHERE instrument_id = $1 AND live = 1 \
             AND end_at > $2 ORDER BY user_id",
        )
        .bind(row.record_id)
        .bind(ctx.now)
        .fetch_all(&mut *ctx.conn)
        .await?;
        for (user_id,) in users {
            let payload = serde_json::json!({"instrument_id": row.record_id, "reason": row.reason});
            hooks::emit(
                ctx.conn,
                "record_retired",
                ctx.instance_id,
                None,
                Some(user_id),
                payload,
                ctx.now,
            )
            .await?;
        }
    }
    decided(ctx).await
}
