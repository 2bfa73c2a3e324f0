//! Operational fields (运行信息) of an instrument — its usage status (运行状态) and whether it
//! takes bookings — change at once, without review, each change logged. Each field is one
//! entry of [`OperationPatch`] and one arm of [`apply`]: adding a field is adding both.
//! An instrument that stops taking bookings tells everyone with a booking still to come.

use serde::{Deserialize, Serialize};

use crate::{
    app::App,
    auth::{CurrentUser, Permission},
    catalog,
    error::{AppError, Result},
    store::Db,
};

/// `PATCH /instruments/{id}/operation`: every field optional, at least one given.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationPatch {
    #[serde(default)]
    pub usage_status: Option<String>,
    #[serde(default)]
    pub bookable: Option<bool>,
}

/// The operational fields as they are now.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Operation {
    pub id: i64,
    pub usage_status: String,
    #[sqlx(try_from = "crate::store::Flag")]
    pub bookable: bool,
    pub review_status: String,
    pub retired_at: Option<i64>,
    pub retired_reason: String,
}

pub async fn get(db: &Db, id: i64) -> Result<Operation> {
    get_in(&mut db.acquire().await?, id).await
}

async fn get_in(conn: &mut crate::store::Conn, id: i64) -> Result<Operation> {
    sqlx::query_as(
        "SELECT id, usage_status, bookable, review_status, retired_at, retired_reason \
         FROM instruments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AppError::NotFound)
}

/// One logged change.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LogEntry {
    pub field: String,
    pub before_value: String,
    pub after_value: String,
    pub user_name: String,
    pub at: i64,
}

/// The instrument's operational changes, newest first.
pub async fn log(db: &Db, id: i64) -> Result<Vec<LogEntry>> {
    Ok(sqlx::query_as(
        "SELECT l.field, l.before_value, l.after_value, u.display_name AS user_name, l.at \
         FROM instrument_operation_log l JOIN users u ON u.id = l.user_id \
         WHERE l.instrument_id = $1 ORDER BY l.id DESC LIMIT 50",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?)
}

fn yes_no(b: bool) -> String {
    if b { "是" } else { "否" }.to_string()
}

/// Apply the given fields at once (the instrument's unit manager; not a retired instrument).
/// Returns the fields as they are afterwards and how many people were told about bookings.
pub async fn update(
    app: &App,
    user: &CurrentUser,
    id: i64,
    patch: &OperationPatch,
) -> Result<(Operation, usize)> {
    let now = app.now();
    let current = get(&app.db, id).await?;
    let unit_id: i64 = sqlx::query_scalar("SELECT unit_id FROM instruments WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await?;
    user.require_for(Permission::InstrumentManage, unit_id)?;
    if current.review_status == "retired" {
        return Err(retired());
    }
    if patch.usage_status.is_none() && patch.bookable.is_none() {
        return Err(AppError::unprocessable(
            "nothing_to_change",
            "请至少填写一项：运行状态（usage_status）或是否接受预约（bookable）",
        ));
    }
    if let Some(s) = &patch.usage_status
        && !catalog::USAGE_STATUSES.contains(&s.trim())
    {
        return Err(AppError::field(
            "usage_status",
            format!("运行状态应为：{}", catalog::USAGE_STATUSES.join("、")),
        ));
    }
    let mut tx = app.db.begin_write().await?;
    // Re-read inside the write transaction: the values the log records as "before".
    let before = get_in(&mut tx, id).await?;
    let mut changes: Vec<(&str, String, String)> = Vec::new();
    if let Some(s) = patch.usage_status.as_deref().map(str::trim)
        && s != before.usage_status
    {
        sqlx::query("UPDATE instruments SET usage_status = $1, updated_at = $2 WHERE id = $3")
            .bind(s)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        changes.push(("usage_status", before.usage_status.clone(), s.to_string()));
    }
    if let Some(b) = patch.bookable
        && b != before.bookable
    {
        sqlx::query("UPDATE instruments SET bookable = $1, updated_at = $2 WHERE id = $3")
            .bind(b as i64)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        changes.push(("bookable", yes_no(before.bookable), yes_no(b)));
    }
    for (field, old, new) in &changes {
        sqlx::query(
            "INSERT INTO instrument_operation_log (instrument_id, field, before_value, after_value, user_id, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(*field)
        .bind(old)
        .bind(new)
        .bind(user.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let mut told = 0;
    if patch.bookable == Some(false) && before.bookable {
        let name: String = sqlx::query_scalar("SELECT name FROM instruments WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let users: Vec<(i64,)> = sqlx::query_as(
            "SELECT DISTINCT user_id FROM bookings WHERE instrument_id = $1 AND live = 1 \
             AND start_at > $2 ORDER BY user_id",
        )
        .bind(id)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        for (user_id,) in users {
            crate::notify::notify(
                &mut tx,
                &app.mailer,
                &app.config.public_url,
                user_id,
                &crate::notify::Notice {
                    kind: "decided",
                    title: format!("仪器暂停预约：{name}"),
                    body: format!(
                        "您预约的仪器“{name}”已暂停接受预约（运行状态：{}）。已有的预约请与仪器所属单位联系确认。",
                        patch.usage_status.as_deref().unwrap_or(&before.usage_status)
                    ),
                    link: "/console/my-bookings".into(),
                },
                None,
                now,
            )
            .await?;
            told += 1;
        }
    }
    if !changes.is_empty() {
        crate::search::enqueue(&mut tx, "instrument", id).await?;
    }
    let after = get_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok((after, told))
}

fn retired() -> AppError {
    AppError::conflict("instrument_retired", "该仪器已下线，不再接受预约或修改")
}

/// Refuse a new booking of an instrument that was retired (409 `instrument_retired`) or does
/// not take bookings now (409 `not_bookable`).
pub async fn refuse_booking(conn: &mut crate::store::Conn, id: i64) -> Result<()> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT review_status, bookable FROM instruments WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    match row {
        Some((status, _)) if status == "retired" => Err(retired()),
        Some((_, 0)) => Err(AppError::conflict(
            "not_bookable",
            "该仪器暂停接受预约，请稍后再试或联系仪器所属单位",
        )),
        _ => Ok(()),
    }
}
