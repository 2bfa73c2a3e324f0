//! Redemption pages (创新券兑付): a managing unit applies for redemption of its completed
//! voucher-paid bookings with the contract and invoice files, adds files later, and everyone
//! who may see a redemption downloads its files here (never by a public URL).

use axum::{extract::State, http::StatusCode, response::IntoResponse};

use super::{
    AppState,
    extract::{CsrfMultipart, PagePath},
    page::{Page, PageResult, redirect_with_flash},
    routes::{Access, Route},
    session::SignedIn,
    uploads::BODY_LIMIT,
};
use crate::{
    auth::{CurrentUser, Permission},
    error::{AppError, FieldErrors},
    money::redemptions,
};

/// Voucher redemption pages.
pub fn routes() -> Vec<Route> {
    let apply = Permission::RedemptionApply;
    let s = Access::SignedIn;
    vec![
        Route::get("/console/redemptions", apply, list).nav("创新券兑付", 120),
        Route::post("/console/redemptions", apply, create).body_limit(2 * BODY_LIMIT),
        Route::get("/console/redemptions/{id}", s, detail),
        Route::post("/console/redemptions/{id}/files", s, add_file).body_limit(BODY_LIMIT),
        Route::get("/console/redemptions/{id}/files/{file_id}", s, download),
    ]
}

pub fn status_label(status: &str) -> &'static str {
    match status {
        "approved" => "已兑付",
        "rejected" => "不予兑付",
        "publicity" => "公示中",
        "withdrawn" => "已撤回",
        _ => "审核中",
    }
}

async fn render_list(
    state: &AppState,
    user: &CurrentUser,
    errors: FieldErrors,
    selected: Vec<i64>,
) -> PageResult {
    let items: Vec<_> = redemptions::for_user(&state.db, user)
        .await?
        .into_iter()
        .map(|r| serde_json::json!({"r": r, "status_label": status_label(&r.status)}))
        .collect();
    let bookings = redemptions::redeemable(&state.db, user).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(Page::new(
        "console/redemptions.html",
        crate::ctx! { items => items, bookings => bookings, errors => errors, selected => selected },
    )
    .with_status(status)
    .into_response())
}

async fn list(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::RedemptionApply)?;
    render_list(&state, &user, FieldErrors::new(), vec![]).await
}

/// 申请兑付: the chosen bookings, one contract and one invoice file at least; the review
/// starts once the files are stored.
async fn create(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    form: CsrfMultipart,
) -> PageResult {
    user.require(Permission::RedemptionApply)?;
    let ids: Vec<i64> = form
        .fields
        .get("booking_ids")
        .map(|v| v.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default();
    let mut errors = FieldErrors::new();
    let contracts: Vec<_> = form
        .files
        .iter()
        .filter(|f| f.field == "contract" && !f.bytes.is_empty())
        .collect();
    let invoices: Vec<_> = form
        .files
        .iter()
        .filter(|f| f.field == "invoice" && !f.bytes.is_empty())
        .collect();
    if ids.is_empty() {
        errors.insert("booking_ids".into(), "请选择要兑付的已完成预约".into());
    }
    if contracts.is_empty() {
        errors.insert("contract".into(), "请上传服务合同（PDF 或图片）".into());
    }
    if invoices.is_empty() {
        errors.insert("invoice".into(), "请上传发票（PDF 或图片）".into());
    }
    for f in contracts.iter().chain(&invoices) {
        if let Err(AppError::Validation { fields, .. }) =
            crate::uploads::check(&f.bytes, crate::uploads::Purpose::Document)
            && let Some(msg) = fields.values().next()
        {
            errors.insert(f.field.clone(), format!("{}：{msg}", f.file_name));
        }
    }
    // All bookings of one managing unit: the unit of the first one.
    let unit_id = match ids.first() {
        Some(b) => crate::money::bookings::managing_unit(&state.db, *b).await?,
        None => None,
    };
    if !errors.is_empty() {
        return render_list(&state, &user, errors, ids).await;
    }
    let files: Vec<redemptions::NewFile> = [("contract", &contracts), ("invoice", &invoices)]
        .into_iter()
        .flat_map(|(kind, files)| {
            files.iter().map(move |f| redemptions::NewFile {
                kind,
                file_name: &f.file_name,
                bytes: &f.bytes,
            })
        })
        .collect();
    let created = redemptions::create(
        &state.engine,
        &state.config.data_dir,
        &user,
        unit_id.unwrap_or(0),
        &ids,
        &files,
        state.now(),
    )
    .await;
    match created {
        Ok((id, total, _)) => Ok(redirect_with_flash(
            &format!("/console/redemptions/{id}"),
            &format!("兑付申请已提交（合计 {total} 元），进入审核"),
        )),
        Err(AppError::Validation { fields, .. }) => render_list(&state, &user, fields, ids).await,
        Err(AppError::NotFound) => {
            let errors = [("booking_ids".to_string(), "所选预约不存在".to_string())].into();
            render_list(&state, &user, errors, ids).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn visible(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> crate::error::Result<redemptions::Redemption> {
    let r = redemptions::get(&state.db, id).await?;
    if !r.visible_to(user) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    Ok(r)
}

async fn detail(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let r = visible(&state, &user, id).await?;
    let can_upload = r.is_open()
        && user.can(Permission::RedemptionApply)
        && user.acts_for(r.managing_unit_id, true);
    Ok(Page::new(
        "console/redemption.html",
        crate::ctx! { r => r, status_label => status_label(&r.status), can_upload => can_upload,
        kinds => redemptions::FILE_KINDS },
    )
    .into_response())
}

async fn add_file(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    form: CsrfMultipart,
) -> PageResult {
    let back = format!("/console/redemptions/{id}");
    let kind = form.fields.get("kind").map(|k| k.trim()).unwrap_or("");
    let Some(file) = form.file("file") else {
        return Ok(redirect_with_flash(&back, "请选择要上传的文件"));
    };
    match redemptions::attach(
        &state.db,
        &state.config.data_dir,
        &user,
        id,
        kind,
        &file.file_name,
        &file.bytes,
        state.now(),
    )
    .await
    {
        Ok(f) => Ok(redirect_with_flash(
            &back,
            &format!("{}“{}”已上传", f.kind_label, f.name),
        )),
        Err(AppError::Validation { fields, .. }) => Ok(redirect_with_flash(
            &back,
            &fields.values().cloned().collect::<Vec<_>>().join("；"),
        )),
        Err(e @ AppError::Conflict { .. }) => Ok(redirect_with_flash(&back, &e.to_string())),
        Err(e) => Err(e.into()),
    }
}

async fn download(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath((id, file_id)): PagePath<(i64, i64)>,
) -> PageResult {
    let (upload, bytes) =
        redemptions::read_file(&state.db, &state.config.data_dir, &user, id, file_id).await?;
    Ok(super::uploads::file_response(&upload, bytes))
}
