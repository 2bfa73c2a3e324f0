//! Redemptions (创新券兑付): a managing unit bundles its completed voucher-paid bookings and
//! carries the contract and invoice files (合同、发票) that review needs; the workflow's
//! guards refuse approval until at least one of each is attached.

use std::path::Path;

use serde::Serialize;

use crate::{
    auth::{CurrentUser, Permission},
    domain::Yuan,
    error::{AppError, Result},
    store::Db,
    uploads::{self, Purpose, Upload},
    workflow::{Engine, Started},
};

/// Kinds of redemption file.
pub const FILE_KINDS: [(&str, &str); 2] = [("contract", "合同"), ("invoice", "发票")];

pub fn kind_label(kind: &str) -> &'static str {
    FILE_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, l)| *l)
        .unwrap_or("")
}

/// Redemptions in these states are decided: nothing is attached any more.
const DECIDED: [&str; 3] = ["approved", "rejected", "withdrawn"];

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RedemptionFile {
    pub id: i64,
    pub kind: String,
    /// Filled in from `kind` after reading.
    #[sqlx(skip)]
    pub kind_label: &'static str,
    #[sqlx(rename = "original_name")]
    pub name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Item {
    pub booking_id: i64,
    pub instrument_name: String,
    pub user_unit: String,
    pub start_at: i64,
    #[sqlx(rename = "voucher_fen", try_from = "crate::store::Fen")]
    pub voucher: Yuan,
    /// Set when the redemption was withdrawn or rejected: the booking may be redeemed anew.
    pub released_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Redemption {
    pub id: i64,
    pub managing_unit_id: i64,
    pub unit_name: String,
    pub status: String,
    pub total: Yuan,
    pub instance_id: Option<i64>,
    pub created_at: i64,
    pub contract_count: i64,
    pub invoice_count: i64,
    pub items: Vec<Item>,
    pub files: Vec<RedemptionFile>,
}

impl Redemption {
    /// Members of the managing unit and the reviewers (voucher and subsidy managers).
    pub fn visible_to(&self, user: &CurrentUser) -> bool {
        user.acts_for(self.managing_unit_id, false)
            || user.can(Permission::VoucherManage)
            || user.can(Permission::SubsidyManage)
    }

    pub fn is_open(&self) -> bool {
        !DECIDED.contains(&self.status.as_str())
    }
}

/// A contract or invoice sent with a new redemption.
pub struct NewFile<'a> {
    pub kind: &'a str,
    pub file_name: &'a str,
    pub bytes: &'a [u8],
}

/// Create a redemption of `booking_ids` for managing unit `unit_id` with its first files
/// and start its review (`voucher_redemption`), all in one transaction: a refused flow or
/// a bad file leaves nothing behind. Returns its id, total and the started flow.
pub async fn create(
    engine: &Engine,
    data_dir: &Path,
    user: &CurrentUser,
    unit_id: i64,
    booking_ids: &[i64],
    files: &[NewFile<'_>],
    now: i64,
) -> Result<(i64, Yuan, Started)> {
    let db = engine.db();
    user.require(Permission::RedemptionApply)?;
    crate::units::get(db, unit_id).await?;
    user.require_for(Permission::RedemptionApply, unit_id)?;
    if booking_ids.is_empty() {
        return Err(AppError::field("booking_ids", "请选择要兑付的已完成预约"));
    }
    let mut tx = db.begin_write().await?;
    let mut total = 0i64;
    for b in booking_ids {
        let row: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT b.status, i.unit_id, b.voucher_fen FROM bookings b JOIN instruments i ON i.id = b.instrument_id WHERE b.id = $1",
        )
        .bind(b)
        .fetch_optional(&mut *tx)
        .await?;
        match row {
            Some((status, owner, voucher))
                if status == "completed" && owner == unit_id && voucher > 0 =>
            {
                total += voucher
            }
            _ => {
                return Err(AppError::field(
                    "booking_ids",
                    format!("预约 {b} 不是本单位已完成且使用了创新券的预约"),
                ));
            }
        }
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO redemptions (managing_unit_id, total_fen, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(unit_id)
    .bind(total)
    .bind(user.id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    for b in booking_ids {
        let voucher: i64 = sqlx::query_scalar("SELECT voucher_fen FROM bookings WHERE id = $1")
            .bind(b)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO redemption_items (redemption_id, booking_id, voucher_fen) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(b)
            .bind(voucher)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if crate::store::is_unique_violation(&e) {
                    AppError::field("booking_ids", format!("预约 {b} 已在其他兑付申请中"))
                } else {
                    AppError::Database(e)
                }
            })?;
    }
    for f in files {
        attach_in(&mut tx, data_dir, user.id, id, f, now).await?;
    }
    let total = Yuan::from_fen(total);
    let started = engine
        .start_in(
            &mut tx,
            "voucher_redemption",
            "redemption",
            id,
            user.id,
            serde_json::json!({"total": total}),
        )
        .await?;
    sqlx::query("UPDATE redemptions SET instance_id = $1 WHERE id = $2")
        .bind(started.instance_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((id, total, started))
}

/// A `redemptions` row with its unit's name.
#[derive(sqlx::FromRow)]
struct RedemptionRow {
    managing_unit_id: i64,
    unit_name: String,
    status: String,
    #[sqlx(rename = "total_fen", try_from = "crate::store::Fen")]
    total: Yuan,
    instance_id: Option<i64>,
    created_at: i64,
    contract_count: i64,
    invoice_count: i64,
}

pub async fn get(db: &Db, id: i64) -> Result<Redemption> {
    let r: RedemptionRow = sqlx::query_as(
        "SELECT r.managing_unit_id, u.name AS unit_name, r.status, r.total_fen, r.instance_id, r.created_at, r.contract_count, r.invoice_count \
         FROM redemptions r JOIN units u ON u.id = r.managing_unit_id WHERE r.id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    let items: Vec<Item> = sqlx::query_as(
        "SELECT ri.booking_id, i.name AS instrument_name, u.name AS user_unit, b.start_at, ri.voucher_fen, ri.released_at FROM redemption_items ri \
         JOIN bookings b ON b.id = ri.booking_id JOIN instruments i ON i.id = b.instrument_id JOIN units u ON u.id = b.unit_id \
         WHERE ri.redemption_id = $1 ORDER BY ri.booking_id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    Ok(Redemption {
        id,
        managing_unit_id: r.managing_unit_id,
        unit_name: r.unit_name,
        status: r.status,
        total: r.total,
        instance_id: r.instance_id,
        created_at: r.created_at,
        contract_count: r.contract_count,
        invoice_count: r.invoice_count,
        items,
        files: files(db, id).await?,
    })
}

pub async fn files(db: &Db, id: i64) -> Result<Vec<RedemptionFile>> {
    let mut files: Vec<RedemptionFile> = sqlx::query_as(
        "SELECT f.id, f.kind, f.created_at, u.original_name, u.content_type, u.size_bytes FROM redemption_files f \
         JOIN uploads u ON u.id = f.upload_id WHERE f.redemption_id = $1 ORDER BY f.kind, f.id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    for f in &mut files {
        f.kind_label = kind_label(&f.kind);
    }
    Ok(files)
}

/// A redemption as the voucher admin's list shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RedemptionListRow {
    pub id: i64,
    pub unit_name: String,
    pub status: String,
    pub total_fen: i64,
    pub instance_id: Option<i64>,
    pub created_at: i64,
}

/// The newest redemptions of all units.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<RedemptionListRow>> {
    Ok(sqlx::query_as(
        "SELECT r.id, u.name AS unit_name, r.status, r.total_fen, r.instance_id, r.created_at FROM redemptions r \
         JOIN units u ON u.id = r.managing_unit_id ORDER BY r.id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

/// Attach a contract or invoice file (PDF or image, checked by its bytes) to an undecided
/// redemption of a unit `user` manages.
#[allow(clippy::too_many_arguments)]
pub async fn attach(
    db: &Db,
    data_dir: &Path,
    user: &CurrentUser,
    id: i64,
    kind: &str,
    file_name: &str,
    bytes: &[u8],
    now: i64,
) -> Result<RedemptionFile> {
    user.require(Permission::RedemptionApply)?;
    let r = get(db, id).await?;
    user.require_for(Permission::RedemptionApply, r.managing_unit_id)?;
    if !FILE_KINDS.iter().any(|(k, _)| *k == kind) {
        return Err(AppError::field(
            "kind",
            "请选择材料类型：contract（合同）或 invoice（发票）",
        ));
    }
    if !r.is_open() {
        return Err(AppError::conflict(
            "redemption_decided",
            "该兑付申请已办结，不能再上传材料",
        ));
    }
    let mut tx = db.begin_write().await?;
    let file_id = attach_in(
        &mut tx,
        data_dir,
        user.id,
        id,
        &NewFile {
            kind,
            file_name,
            bytes,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    files(db, id)
        .await?
        .into_iter()
        .find(|f| f.id == file_id)
        .ok_or(AppError::NotFound)
}

/// Store a file and link it to redemption `id` inside the caller's transaction (kind and
/// access already checked); returns the link's id.
async fn attach_in(
    conn: &mut crate::store::Conn,
    data_dir: &Path,
    user_id: i64,
    id: i64,
    f: &NewFile<'_>,
    now: i64,
) -> Result<i64> {
    if !FILE_KINDS.iter().any(|(k, _)| *k == f.kind) {
        return Err(AppError::field(
            "kind",
            "请选择材料类型：contract（合同）或 invoice（发票）",
        ));
    }
    let upload_id = uploads::store_in(
        &mut *conn,
        data_dir,
        f.file_name,
        f.bytes,
        Purpose::Document,
        user_id,
        now,
    )
    .await?;
    let file_id: i64 = sqlx::query_scalar(
        "INSERT INTO redemption_files (redemption_id, upload_id, kind, created_by, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(id)
    .bind(upload_id)
    .bind(f.kind)
    .bind(user_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE redemptions SET \
         contract_count = (SELECT CAST(COUNT(*) AS BIGINT) FROM redemption_files WHERE redemption_id = $1 AND kind = 'contract'), \
         invoice_count = (SELECT CAST(COUNT(*) AS BIGINT) FROM redemption_files WHERE redemption_id = $1 AND kind = 'invoice'), \
         updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(file_id)
}

/// One file of a redemption with its bytes, for someone who may see the redemption.
pub async fn read_file(
    db: &Db,
    data_dir: &Path,
    user: &CurrentUser,
    id: i64,
    file_id: i64,
) -> Result<(Upload, Vec<u8>)> {
    let r = get(db, id).await?;
    if !r.visible_to(user) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    let stored: String = sqlx::query_scalar(
        "SELECT u.stored_name FROM redemption_files f JOIN uploads u ON u.id = f.upload_id WHERE f.id = $1 AND f.redemption_id = $2",
    )
    .bind(file_id)
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    uploads::read(db, data_dir, &stored).await
}

/// Completed voucher-paid bookings of the units `user` manages that are in no redemption yet.
pub async fn redeemable(db: &Db, user: &CurrentUser) -> Result<Vec<serde_json::Value>> {
    #[derive(sqlx::FromRow)]
    struct Redeemable {
        id: i64,
        unit_id: i64,
        owner: String,
        instrument: String,
        user_unit: String,
        start_at: i64,
        voucher_fen: i64,
    }
    let rows: Vec<Redeemable> = sqlx::query_as(
        "SELECT b.id, i.unit_id, o.name AS owner, i.name AS instrument, u.name AS user_unit, b.start_at, b.voucher_fen FROM bookings b \
         JOIN instruments i ON i.id = b.instrument_id JOIN units u ON u.id = b.unit_id JOIN units o ON o.id = i.unit_id \
         WHERE b.status = 'completed' AND b.voucher_fen > 0 \
         AND i.unit_id IN (SELECT unit_id FROM unit_members WHERE user_id = $1 AND role = 'manager') \
         AND NOT EXISTS (SELECT 1 FROM redemption_items ri WHERE ri.booking_id = b.id AND ri.released_at IS NULL) ORDER BY i.unit_id, b.id",
    )
    .bind(user.id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id, "unit_id": r.unit_id, "owner": r.owner,
                "instrument": r.instrument, "user_unit": r.user_unit,
                "start_at": r.start_at, "voucher": Yuan::from_fen(r.voucher_fen),
            })
        })
        .collect())
}

/// Redemptions of the units `user` belongs to, newest first.
pub async fn for_user(db: &Db, user: &CurrentUser) -> Result<Vec<Redemption>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM redemptions WHERE managing_unit_id IN (SELECT unit_id FROM unit_members WHERE user_id = $1) ORDER BY id DESC LIMIT 100",
    )
    .bind(user.id)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(get(db, id).await?);
    }
    Ok(out)
}
