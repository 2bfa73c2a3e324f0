//! Serving and attaching uploads: `/uploads/{name}` (public files, and drafts' files for
//! those who work on them), instrument photos and article attachments from console forms.

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};

use super::{
    AppState,
    extract::{CsrfMultipart, PagePath},
    page::{PageResult, redirect_with_flash},
    routes::{Access, Route},
    session::{Auth, SignedIn},
};
use crate::{
    auth::Permission,
    error::AppError,
    instruments,
    uploads::{self, Purpose},
};

/// Room for a 20 MB PDF plus the form around it; each purpose has its own smaller limit.
pub const BODY_LIMIT: usize = uploads::MAX_PDF_BYTES + 512 * 1024;

/// Serving uploads, and the photo and attachment uploads.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/uploads/{name}", Access::Public, serve),
        Route::post(
            "/console/instruments/{id}/photos",
            Permission::InstrumentManage,
            add_photo,
        )
        .body_limit(BODY_LIMIT),
        Route::post(
            "/console/content/{id}/attachments",
            Permission::ContentManage,
            add_attachment,
        )
        .body_limit(BODY_LIMIT),
    ]
}

/// Public files to anyone, a draft's files to those who work on it; never contracts,
/// invoices or reports (their own routes serve them). Refused files are 404: the name of a
/// private file reveals nothing.
async fn serve(
    State(state): State<AppState>,
    auth: Auth,
    PagePath(name): PagePath<String>,
) -> PageResult {
    let (upload, bytes) = uploads::read(&state.db, &state.config.data_dir, &name).await?;
    if !uploads::may_read(&state.db, upload.id, auth.user.as_deref()).await? {
        return Err(AppError::NotFound.into());
    }
    Ok(file_response(&upload, bytes))
}

/// A stored file as a download: its sniffed type, images inline and documents as
/// attachments, under its original name, sandboxed.
pub fn file_response(upload: &uploads::Upload, bytes: Vec<u8>) -> Response {
    // Images show inline; documents download. Types come from the sniffed content only.
    let disposition = if upload.content_type.starts_with("image/") {
        "inline"
    } else {
        "attachment"
    };
    let fallback = format!(
        "file.{}",
        upload.stored_name.rsplit('.').next().unwrap_or("bin")
    );
    (
        [
            (header::CONTENT_TYPE, upload.content_type.clone()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{}",
                    super::page::encode_filename(&upload.original_name)
                ),
            ),
            (header::CACHE_CONTROL, "private, max-age=86400".to_string()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_string(),
            ),
        ],
        bytes,
    )
        .into_response()
}

async fn add_photo(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    form: CsrfMultipart,
) -> PageResult {
    user.require(Permission::InstrumentManage)?;
    let item = instruments::get(&state.db, id).await?;
    user.require_for(Permission::InstrumentManage, item.unit_id)?;
    let back = format!("/console/instruments/{id}");
    if let Err(e) = instruments::ensure_editable(&item.review_status) {
        return Ok(redirect_with_flash(&back, &e.to_string()));
    }
    let Some(file) = form.file("photo") else {
        return Ok(redirect_with_flash(&back, "请选择要上传的照片"));
    };
    let now = state.now();
    match uploads::store(
        &state.db,
        &state.config.data_dir,
        &file.file_name,
        &file.bytes,
        Purpose::Photo,
        user.id,
        now,
    )
    .await
    {
        Ok(upload) => {
            uploads::add_instrument_photo(&state.db, id, upload.id, now).await?;
            Ok(redirect_with_flash(&back, "照片已上传"))
        }
        Err(AppError::Validation { message, .. }) => Ok(redirect_with_flash(&back, &message)),
        Err(e) => Err(e.into()),
    }
}

async fn add_attachment(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    form: CsrfMultipart,
) -> PageResult {
    user.require(Permission::ContentManage)?;
    crate::content::get_any(&state.db, id).await?;
    let back = format!("/console/content/{id}");
    let Some(file) = form.file("file") else {
        return Ok(redirect_with_flash(&back, "请选择要上传的附件"));
    };
    let now = state.now();
    match uploads::store(
        &state.db,
        &state.config.data_dir,
        &file.file_name,
        &file.bytes,
        Purpose::Document,
        user.id,
        now,
    )
    .await
    {
        Ok(upload) => {
            uploads::add_article_attachment(&state.db, id, upload.id, now).await?;
            Ok(redirect_with_flash(&back, "附件已上传"))
        }
        Err(AppError::Validation { message, .. }) => Ok(redirect_with_flash(&back, &message)),
        Err(e) => Err(e.into()),
    }
}
